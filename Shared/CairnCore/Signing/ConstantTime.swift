import Crypto

/// Comparison of secrets (keys, tokens, signatures) that does not tell an attacker how close a
/// guess was.
public enum ConstantTime {
    /// Whether `lhs` and `rhs` are equal. Both are reduced to their SHA-256 digests first, so
    /// the time taken depends neither on where they differ nor on their lengths; the digests
    /// are compared without an early exit.
    public static func equals(_ lhs: some Sequence<UInt8>, _ rhs: some Sequence<UInt8>) -> Bool {
        let left = Array(SHA256.hash(data: Array(lhs))), right = Array(SHA256.hash(data: Array(rhs)))
        var difference: UInt8 = 0
        for index in left.indices { difference |= left[index] ^ right[index] }
        return difference == 0
    }

    /// Whether `candidate` equals any of `secrets`; every secret is compared, whichever matches.
    public static func contains(_ secrets: some Sequence<some Sequence<UInt8>>, _ candidate: some Sequence<UInt8>) -> Bool {
        var found = false
        for secret in secrets { found = equals(secret, candidate) || found }
        return found
    }
}
