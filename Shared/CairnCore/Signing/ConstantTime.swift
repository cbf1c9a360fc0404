import Crypto

/// Comparison of secrets (keys, tokens, signatures) that does not tell an attacker how close a
/// guess was. Both sides are reduced to their SHA-256 digests first, so the time taken depends
/// neither on where they differ nor on their lengths; digests are compared without an early exit.
public enum ConstantTime {
    /// Whether `lhs` and `rhs` are equal.
    public static func equals(_ lhs: some Sequence<UInt8>, _ rhs: some Sequence<UInt8>) -> Bool {
        digestsEqual(digest(lhs), digest(rhs))
    }

    /// Whether `candidate` equals any of `secrets`; every secret is compared, whichever matches.
    public static func contains(_ secrets: some Sequence<some Sequence<UInt8>>, _ candidate: some Sequence<UInt8>) -> Bool {
        SecretSet(secrets).contains(candidate)
    }

    /// A fixed set of secrets, digested once (for checks on a hot path, such as event keys).
    public struct SecretSet: Sendable {
        let digests: [[UInt8]]

        public init(_ secrets: some Sequence<some Sequence<UInt8>>) {
            digests = secrets.map(ConstantTime.digest)
        }

        public var isEmpty: Bool { digests.isEmpty }

        /// Whether `candidate` equals any secret; every one is compared, whichever matches.
        public func contains(_ candidate: some Sequence<UInt8>) -> Bool {
            let presented = ConstantTime.digest(candidate)
            var found = false
            for digest in digests { found = ConstantTime.digestsEqual(digest, presented) || found }
            return found
        }
    }

    static func digest(_ bytes: some Sequence<UInt8>) -> [UInt8] {
        Array(SHA256.hash(data: Array(bytes)))
    }

    static func digestsEqual(_ left: [UInt8], _ right: [UInt8]) -> Bool {
        var difference: UInt8 = 0
        for index in left.indices { difference |= left[index] ^ right[index] }
        return difference == 0
    }
}
