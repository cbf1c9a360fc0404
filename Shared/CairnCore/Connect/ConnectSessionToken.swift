import Crypto
public import Foundation

/// The session token `POST /v0/connect/start` hands a worker and the gateway checks in its
/// `WORKER_CONNECT` (docs/connect.md): a JWT signed with HMAC-SHA256 (HS256), so any API and
/// any gateway replica sharing the secret can issue and check it without shared state.
///
/// The secret is derived from the primary signing key, or is a fixed development secret
/// when Cairn runs without keys (dev mode accepts any worker anyway).
public struct ConnectSessionToken: Sendable, Hashable {
    /// The environment the worker named with `X-Inngest-Env`, or empty.
    public var environment: String
    /// When the token was issued and when it stops being accepted.
    public var issuedAt: Date
    public var expiresAt: Date
    /// The token's own id (a ULID).
    public var id: String

    static let issuer = "cairn"
    static let audience = "cairn-gateway"
    /// How long a token is accepted: a worker connects right after `start`.
    public static let lifetime: TimeInterval = 300

    public init(environment: String, issuedAt: Date, id: String) {
        self.environment = environment
        self.issuedAt = issuedAt
        self.expiresAt = issuedAt.addingTimeInterval(Self.lifetime)
        self.id = id
    }


    /// The compact JWT: `base64url(header).base64url(claims).base64url(signature)`.
    public func encoded(secret: ConnectSessionSecret) -> String {
        let header = #"{"alg":"HS256","typ":"JWT"}"#
        let claims = JSONValue.object([
            "iss": .string(Self.issuer), "aud": .string(Self.audience), "env": .string(environment),
            "iat": .number(JSONNumber(Int64(issuedAt.timeIntervalSince1970))), "exp": .number(JSONNumber(Int64(expiresAt.timeIntervalSince1970))),
            "jti": .string(id),
        ]).serialized()
        let signingInput = Self.base64URL(Array(header.utf8)) + "." + Self.base64URL(claims)
        let signature = HMAC<SHA256>.authenticationCode(for: Array(signingInput.utf8), using: secret.key)
        return signingInput + "." + Self.base64URL(Array(signature))
    }

    /// Checks `token`'s signature, issuer, audience and lifetime at `now`.
    public init(verifying token: String, secret: ConnectSessionSecret, now: Date) throws(ConnectSessionTokenError) {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let signature = Self.decodeBase64URL(parts[2]), let claimBytes = Self.decodeBase64URL(parts[1]) else {
            throw ConnectSessionTokenError(rule: "must be a JWT of three base64url parts")
        }
        let signingInput = Array((parts[0] + "." + parts[1]).utf8)
        guard HMAC<SHA256>.isValidAuthenticationCode(signature, authenticating: signingInput, using: secret.key) else {
            throw ConnectSessionTokenError(rule: "signature does not match: the token was not issued by this Cairn")
        }
        guard let claims = try? JSONValue(parsing: claimBytes), claims["iss"]?.stringValue == Self.issuer, claims["aud"]?.stringValue == Self.audience,
            let issued = claims["iat"]?.int64Value, let expires = claims["exp"]?.int64Value, let id = claims["jti"]?.stringValue
        else {
            throw ConnectSessionTokenError(rule: "claims must name Cairn's issuer and audience, with iat, exp and jti")
        }
        guard Double(expires) > now.timeIntervalSince1970 else {
            throw ConnectSessionTokenError(rule: "expired: call /v0/connect/start again")
        }
        self.environment = claims["env"]?.stringValue ?? ""
        self.issuedAt = Date(timeIntervalSince1970: Double(issued))
        self.expiresAt = Date(timeIntervalSince1970: Double(expires))
        self.id = id
    }

    static func base64URL(_ bytes: [UInt8]) -> String {
        var text = Data(bytes).base64EncodedString()
        text = text.replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
        while text.hasSuffix("=") { text.removeLast() }
        return text
    }

    static func decodeBase64URL(_ text: Substring) -> [UInt8]? {
        var standard = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while standard.count % 4 != 0 { standard += "=" }
        return Data(base64Encoded: standard).map(Array.init)
    }
}

/// Why a session token was refused.
public struct ConnectSessionTokenError: Error, Sendable, Hashable, CustomStringConvertible {
    public let rule: String
    public var description: String { "auth_data.session_token: \(rule)" }
}

/// The HMAC key session tokens are signed with: a derivation of the primary signing key, never
/// the key itself, or a fixed development secret without keys.
public struct ConnectSessionSecret: Sendable {
    let key: SymmetricKey

    public init(keys: SigningKeys?) {
        guard let keys else {
            key = SymmetricKey(data: Array("cairn-dev-connect-session".utf8))
            return
        }
        let derived = HMAC<SHA256>.authenticationCode(for: Array("cairn connect session token".utf8), using: SymmetricKey(data: Array(keys.primary.hex.utf8)))
        key = SymmetricKey(data: Array(derived))
    }
}
