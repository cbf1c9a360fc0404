import Crypto
import Foundation
import _CryptoExtras

/// A password hash in its stored form: PBKDF2-HMAC-SHA256 with a 16-byte salt and a 32-byte
/// key, written `pbkdf2-sha256$<rounds>$<salt base64>$<key base64>` (standard base64 with
/// padding).
///
/// The string describes itself, so a hash made with one round count still verifies after the
/// default changes. Computing one is deliberately slow (`defaultRounds`, about a fifth of a
/// second on a server core): callers in a task run it off their event loop. Salt comes from
/// the caller, as CairnCore draws no randomness of its own.
public enum PasswordHash {
    /// The PBKDF2-HMAC-SHA256 iteration count OWASP's Password Storage Cheat Sheet recommends.
    public static let defaultRounds = 600_000

    /// The most rounds a stored hash may ask for. A string asking for more is malformed, so a
    /// tampered row cannot make one verification cost minutes.
    public static let maximumRounds = 10_000_000

    /// The salt length, in bytes.
    public static let saltByteCount = 16

    /// The derived key length, in bytes.
    public static let keyByteCount = 32

    /// The scheme name that starts every encoding.
    public static let scheme = "pbkdf2-sha256"

    /// The encoded hash of `password` under `salt` with `rounds` iterations.
    ///
    /// - Precondition: `salt` holds `saltByteCount` bytes and `rounds` is from 1 to
    ///   `maximumRounds`; otherwise this traps (the caller chose them).
    public static func encode(password: String, salt: [UInt8], rounds: Int = defaultRounds) -> String {
        precondition(salt.count == saltByteCount, "a password salt must be \(saltByteCount) bytes")
        precondition((1...maximumRounds).contains(rounds), "PBKDF2 rounds must be from 1 to \(maximumRounds)")
        let key = derive(password: password, salt: salt, rounds: rounds)
        return "\(scheme)$\(rounds)$\(Data(salt).base64EncodedString())$\(Data(key).base64EncodedString())"
    }

    /// Whether `password` is the one `encoded` was made from, derived with the rounds stored in
    /// `encoded`. The keys are compared in constant time. A malformed encoding (another scheme,
    /// rounds out of range or not canonical decimal, salt or key of the wrong length, bad
    /// base64) verifies no password.
    public static func verify(password: String, encoded: String) -> Bool {
        guard let parts = Parts(encoded) else { return false }
        return ConstantTime.equals(derive(password: password, salt: parts.salt, rounds: parts.rounds), parts.key)
    }

    /// The rounds `encoded` was made with; nil when it is malformed (see `verify`).
    public static func rounds(of encoded: String) -> Int? {
        Parts(encoded)?.rounds
    }

    /// A well-formed encoding that matches no password likely to be tried (its key is all
    /// zeros): verifying against it costs what verifying a real hash of `rounds` costs, which
    /// is what a sign-in for an unknown account spends so that it takes as long as one for a
    /// known account.
    public static func placeholder(rounds: Int = defaultRounds) -> String {
        let salt = Data(repeating: 0, count: saltByteCount).base64EncodedString()
        let key = Data(repeating: 0, count: keyByteCount).base64EncodedString()
        return "\(scheme)$\(rounds)$\(salt)$\(key)"
    }

    struct Parts {
        var rounds: Int
        var salt: [UInt8]
        var key: [UInt8]

        init?(_ encoded: String) {
            let fields = encoded.split(separator: "$", omittingEmptySubsequences: false)
            guard fields.count == 4, fields[0] == PasswordHash.scheme else { return nil }
            let digits = fields[1]
            // Canonical decimal only: no sign, no leading zero, no more digits than the maximum has.
            guard !digits.isEmpty, digits.count <= 8, digits.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
                digits.first != "0", let rounds = Int(digits), rounds <= PasswordHash.maximumRounds
            else { return nil }
            guard let salt = Data(base64Encoded: String(fields[2])), salt.count == PasswordHash.saltByteCount,
                let key = Data(base64Encoded: String(fields[3])), key.count == PasswordHash.keyByteCount
            else { return nil }
            self.rounds = rounds
            self.salt = Array(salt)
            self.key = Array(key)
        }
    }

    static func derive(password: String, salt: [UInt8], rounds: Int) -> [UInt8] {
        // `unsafeUncheckedRounds`: the checked variant refuses fewer than 210,000 rounds, and
        // tests hash with a few hundred. Production hashes use `defaultRounds` (the engine's
        // settings), and stored counts are bounded by `Parts`. BoringSSL fails only on
        // allocation failure or a zero count, both excluded here, so a failure traps.
        do {
            let key = try KDF.Insecure.PBKDF2.deriveKey(
                from: Array(password.utf8), salt: salt, using: .sha256, outputByteCount: keyByteCount, unsafeUncheckedRounds: rounds)
            return key.withUnsafeBytes { Array($0) }
        } catch {
            preconditionFailure("PBKDF2 failed with valid parameters: \(error)")
        }
    }
}

/// The secret tokens that sign a caller in (session cookies, API tokens): their text form and
/// the digest that is stored in their place, so that a copy of the database signs nobody in.
public enum AccountToken {
    /// `bytes` in base64url without padding (RFC 4648 §5): safe in a cookie, a URL or a header.
    public static func text(_ bytes: [UInt8]) -> String {
        var text = Data(bytes).base64EncodedString()
        text = text.replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
        while text.hasSuffix("=") { text.removeLast() }
        return text
    }

    /// The SHA-256 digest of the token's UTF-8 text (32 bytes): what a store keeps and looks up.
    public static func digest(_ token: String) -> [UInt8] {
        Array(SHA256.hash(data: Array(token.utf8)))
    }
}

/// What a signed-in account or API token may do. Each role allows everything the roles below
/// it allow: `admin` ≥ `operator` ≥ `viewer`.
///
/// - `viewer`: reads runs, functions, events and the audit log;
/// - `operator`: also acts on runs and functions (cancel, rerun, replay, pause, invoke, send);
/// - `admin`: also manages accounts and any API token.
public enum AccountRole: String, Sendable, Hashable, CaseIterable, Comparable, CustomStringConvertible {
    case viewer
    case `operator`
    case admin

    /// Whether this role may do what `needed` may.
    public func allows(_ needed: AccountRole) -> Bool {
        rank >= needed.rank
    }

    /// Parses a role's name, exactly as written in the raw values (lower case).
    ///
    /// - Throws: `AccountRoleError` naming the field `role`, the allowed values and `text`.
    public init(parsing text: String) throws(AccountRoleError) {
        guard let role = AccountRole(rawValue: text) else { throw AccountRoleError(value: text) }
        self = role
    }

    public static func < (lhs: AccountRole, rhs: AccountRole) -> Bool {
        lhs.rank < rhs.rank
    }

    public var description: String { rawValue }

    var rank: Int {
        switch self {
        case .viewer: 0
        case .operator: 1
        case .admin: 2
        }
    }
}

/// A role name that is not one of `AccountRole`'s.
public struct AccountRoleError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The text that was given.
    public let value: String

    public init(value: String) {
        self.value = value
    }

    /// `role: must be one of viewer, operator, admin, got "owner"`.
    public var description: String {
        "role: must be one of \(AccountRole.allCases.map(\.rawValue).joined(separator: ", ")), got \(JSONValue.string(value).jsonString)"
    }
}
