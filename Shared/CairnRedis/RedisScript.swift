/// A Lua script and its SHA-1, for `EVALSHA`.
///
/// Contract: `sha1` is the lowercase hex SHA-1 of the UTF-8 source — the same digest Redis uses
/// to name cached scripts — computed once at creation. Create scripts once (e.g. as `static let`)
/// and reuse them.
public struct RedisScript: Sendable, Hashable {
    /// The Lua source.
    public let source: String
    /// Lowercase hex SHA-1 of `source`.
    public let sha1: String

    /// Creates a script and computes its digest.
    public init(_ source: String) {
        self.source = source
        self.sha1 = SHA1.hexDigest(of: Array(source.utf8))
    }
}

extension RedisClient {
    /// Runs a script by digest (`EVALSHA sha numkeys key ... arg ...`); if Redis does not have it
    /// cached (`NOSCRIPT`, e.g. after a restart, `FLUSHALL` or `SCRIPT FLUSH`), runs it once
    /// with its source (`EVAL`), which caches it again. One command either way, so a flush
    /// racing the call cannot make it fail.
    ///
    /// - Returns: the script's reply.
    /// - Throws: `RedisError` `.server` with Redis's text for a script error.
    public func evalsha(_ script: RedisScript, keys: [String] = [], args: [RedisArgument] = []) async throws
        -> RESPValue
    {
        var operands: [RedisArgument] = [.int(keys.count)]
        operands.reserveCapacity(1 + keys.count + args.count)
        for key in keys { operands.append(.string(key)) }
        operands += args
        do {
            return try await send(["EVALSHA", .string(script.sha1)] + operands)
        } catch let error as RedisError where error.serverErrorPrefix == "NOSCRIPT" {
            logger.debug("redis script not cached; running it by source", metadata: ["redis.script": "\(script.sha1)"])
            return try await send(["EVAL", .string(script.source)] + operands)
        }
    }

    /// `SCRIPT LOAD source`: caches a script; returns its SHA-1.
    @discardableResult
    public func scriptLoad(_ source: String) async throws -> String {
        try RESPDecoding.text(try await send(["SCRIPT", "LOAD", .string(source)]), command: "SCRIPT LOAD")
    }

    /// `SCRIPT FLUSH`: empties the server's script cache (for tests; `evalsha` reloads).
    public func scriptFlush() async throws {
        _ = try await send(["SCRIPT", "FLUSH"])
    }
}

/// SHA-1 (FIPS 180-4), enough to name Lua scripts the way Redis does. Not for security.
enum SHA1 {
    static func hexDigest(of message: [UInt8]) -> String {
        var h0: UInt32 = 0x6745_2301
        var h1: UInt32 = 0xEFCD_AB89
        var h2: UInt32 = 0x98BA_DCFE
        var h3: UInt32 = 0x1032_5476
        var h4: UInt32 = 0xC3D2_E1F0

        var padded = message
        padded.append(0x80)
        while padded.count % 64 != 56 { padded.append(0) }
        let bitLength = UInt64(message.count) &* 8
        for shift in stride(from: 56, through: 0, by: -8) {
            padded.append(UInt8(truncatingIfNeeded: bitLength >> UInt64(shift)))
        }

        var w = [UInt32](repeating: 0, count: 80)
        for chunk in stride(from: 0, to: padded.count, by: 64) {
            for i in 0..<16 {
                let base = chunk + i * 4
                w[i] =
                    UInt32(padded[base]) << 24 | UInt32(padded[base + 1]) << 16 | UInt32(padded[base + 2]) << 8
                    | UInt32(padded[base + 3])
            }
            for i in 16..<80 {
                w[i] = rotateLeft(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], by: 1)
            }
            var a = h0
            var b = h1
            var c = h2
            var d = h3
            var e = h4
            for i in 0..<80 {
                let f: UInt32
                let k: UInt32
                switch i {
                case 0..<20:
                    f = (b & c) | (~b & d)
                    k = 0x5A82_7999
                case 20..<40:
                    f = b ^ c ^ d
                    k = 0x6ED9_EBA1
                case 40..<60:
                    f = (b & c) | (b & d) | (c & d)
                    k = 0x8F1B_BCDC
                default:
                    f = b ^ c ^ d
                    k = 0xCA62_C1D6
                }
                let temp = rotateLeft(a, by: 5) &+ f &+ e &+ k &+ w[i]
                e = d
                d = c
                c = rotateLeft(b, by: 30)
                b = a
                a = temp
            }
            h0 = h0 &+ a
            h1 = h1 &+ b
            h2 = h2 &+ c
            h3 = h3 &+ d
            h4 = h4 &+ e
        }

        let digits: [UInt8] = Array("0123456789abcdef".utf8)
        var hex: [UInt8] = []
        hex.reserveCapacity(40)
        for word in [h0, h1, h2, h3, h4] {
            for shift in stride(from: 28, through: 0, by: -4) {
                hex.append(digits[Int((word >> UInt32(shift)) & 0xF)])
            }
        }
        return String(decoding: hex, as: UTF8.self)
    }

    @inline(__always)
    private static func rotateLeft(_ value: UInt32, by amount: UInt32) -> UInt32 {
        (value << amount) | (value >> (32 - amount))
    }
}
