import Crypto
import Foundation

/// A signing key as configured: `signkey-<env>-<hex>` or bare hex of even length
/// (docs/protocol.md §5).
///
/// The HMAC key is the hex text itself (not decoded); the API bearer form is the SHA-256 of the
/// decoded bytes, in hex.
public struct SigningKey: Sendable, Hashable, CustomStringConvertible {
    /// The key exactly as configured, with its prefix if it had one.
    public let raw: String
    /// The hex part, without the `signkey-<env>-` prefix; this text is the HMAC key.
    public let hex: String

    /// Validates `raw`.
    public init(_ raw: String) throws(SigningKeyError) {
        let hex = Self.removingPrefix(raw)
        if raw.hasPrefix("signkey-") && hex.count == raw.count - "signkey-".count {
            throw SigningKeyError(rule: "must look like signkey-<env>-<hex>")
        }
        guard !hex.isEmpty, hex.count % 2 == 0, hex.allSatisfy(\.isHexDigit) else {
            throw SigningKeyError(rule: "must be an even-length hex string, optionally prefixed signkey-<env>-")
        }
        self.raw = raw
        self.hex = String(hex)
    }

    /// Never the key itself: only its environment prefix, so logs stay safe.
    public var description: String {
        let prefix = raw.dropLast(hex.count)
        return "\(prefix)<redacted>"
    }

    /// `sha256_hex(hex_decode(key))`: what SDKs send as `Authorization: Bearer …` (Python
    /// without the prefix, JS with it).
    public var hashed: String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(hex.utf8.count / 2)
        var high: UInt8?
        for character in hex.utf8 {
            let nibble = Self.nibble(character)
            if let upper = high {
                bytes.append(upper << 4 | nibble)
                high = nil
            } else {
                high = nibble
            }
        }
        return Self.hex(SHA256.hash(data: bytes))
    }

    /// `X-Inngest-Signature` for `body` sent at `unixSeconds`: `t=<seconds>&s=<hex HMAC-SHA256>`.
    public func signatureHeader(body: some Collection<UInt8>, unixSeconds: Int64) -> String {
        "t=\(unixSeconds)&s=\(signature(body: body, unixSeconds: unixSeconds))"
    }

    /// The hex HMAC-SHA256 of `body ‖ decimal(unixSeconds)` under the key's hex text.
    public func signature(body: some Collection<UInt8>, unixSeconds: Int64) -> String {
        var hmac = HMAC<SHA256>(key: SymmetricKey(data: Array(hex.utf8)))
        hmac.update(data: Array(body))
        hmac.update(data: Array(String(unixSeconds).utf8))
        return Self.hex(hmac.finalize())
    }

    /// The text after an optional `signkey-<env>-` prefix.
    static func removingPrefix(_ text: String) -> Substring {
        guard text.hasPrefix("signkey-") else { return Substring(text) }
        let afterPrefix = text.dropFirst("signkey-".count)
        guard let dash = afterPrefix.firstIndex(of: "-"), dash != afterPrefix.startIndex else {
            return Substring(text)
        }
        return afterPrefix[afterPrefix.index(after: dash)...]
    }

    static func nibble(_ character: UInt8) -> UInt8 {
        switch character {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): character - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): character - UInt8(ascii: "a") + 10
        default: character - UInt8(ascii: "A") + 10
        }
    }

    static func hex(_ digest: some Sequence<UInt8>) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        for byte in digest {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// A signing key that is not of the accepted form.
public struct SigningKeyError: Error, Sendable, Hashable {
    /// The rule the key breaks.
    public let rule: String
}

/// The keys a server accepts: the primary and, during rotation, a fallback.
public struct SigningKeys: Sendable, Hashable {
    /// Signs outgoing requests and is tried first.
    public let primary: SigningKey
    /// Also accepted; tried second.
    public let fallback: SigningKey?

    /// Creates the set.
    public init(primary: SigningKey, fallback: SigningKey? = nil) {
        self.primary = primary
        self.fallback = fallback
    }

    var all: [SigningKey] { [primary] + (fallback.map { [$0] } ?? []) }

    /// Whether an `Authorization` header value authenticates an SDK or API caller: `Bearer `
    /// followed by a key or its hashed form, with or without the `signkey-<env>-` prefix
    /// (docs/protocol.md §5). Compared in constant time.
    public func authorizes(authorization: String?) -> Bool {
        guard let token = Self.bearerToken(authorization) else { return false }
        let presented = Array(SigningKey.removingPrefix(token.trimmingCharacters(in: .whitespaces)).lowercased().utf8)
        return ConstantTime.contains(all.flatMap { [Array($0.hashed.utf8), Array($0.hex.lowercased().utf8)] }, presented)
    }

    /// The token of an `Authorization: Bearer <token>` header value (the scheme in any case).
    public static func bearerToken(_ authorization: String?) -> String? {
        guard let parts = authorization?.split(separator: " ", maxSplits: 1), parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
        return String(parts[1])
    }

    /// Checks `X-Inngest-Signature` on `body` against both keys. Signatures older or newer
    /// than `maximumAge` relative to `nowSeconds` are refused, when `maximumAge` is given.
    public func verify(
        signatureHeader: String?, body: some Collection<UInt8>, nowSeconds: Int64, maximumAge: Int64? = 300
    ) -> SignatureCheck {
        guard let signatureHeader, !signatureHeader.isEmpty else { return .missing }
        var timestamp: Int64?
        var signature: String?
        for pair in signatureHeader.split(separator: "&") {
            if pair.hasPrefix("t=") { timestamp = Int64(pair.dropFirst(2)) }
            if pair.hasPrefix("s=") { signature = String(pair.dropFirst(2)).lowercased() }
        }
        guard let timestamp, let signature else { return .malformed }
        if let maximumAge, abs(nowSeconds - timestamp) > maximumAge { return .expired }
        let presented = Array(signature.utf8)
        return ConstantTime.contains(all.map { Array($0.signature(body: body, unixSeconds: timestamp).utf8) }, presented) ? .valid : .mismatch
    }

}

/// The outcome of checking a request or response signature.
public enum SignatureCheck: Sendable, Hashable {
    case valid
    case missing
    case malformed
    case expired
    case mismatch
}
