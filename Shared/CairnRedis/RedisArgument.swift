public import NIOCore

/// One argument of a Redis command, sent as a RESP bulk string.
///
/// Contract:
/// - Every argument travels as a bulk string (`$<len>\r\n<bytes>\r\n`); Redis parses numbers
///   from their decimal text, so `.integer(5)` and `.string("5")` are the same on the wire.
/// - `.double` is written in Swift's shortest round-tripping form (`0.1`, `1e+20`, `inf`,
///   `-inf`), all of which Redis accepts; a NaN is sent as `nan` and Redis rejects it with its
///   own error.
/// - Literals work: `["SET", "key", 5]`.
public enum RedisArgument: Sendable, Hashable {
    /// Raw bytes, sent as they are.
    case bytes([UInt8])
    /// Text, sent as its UTF-8 bytes.
    case string(String)
    /// An integer, sent as decimal text.
    case integer(Int64)
    /// A floating-point number, sent as decimal text.
    case double(Double)
}

extension RedisArgument: ExpressibleByStringLiteral {
    /// Creates a `.string` argument from a literal.
    public init(stringLiteral value: String) {
        self = .string(value)
    }
}

extension RedisArgument: ExpressibleByIntegerLiteral {
    /// Creates an `.integer` argument from a literal.
    public init(integerLiteral value: Int64) {
        self = .integer(value)
    }
}

extension RedisArgument: ExpressibleByFloatLiteral {
    /// Creates a `.double` argument from a literal.
    public init(floatLiteral value: Double) {
        self = .double(value)
    }
}

extension RedisArgument {
    /// Creates an `.integer` argument from any integer that fits in 64 bits.
    ///
    /// Traps if the value does not fit in an `Int64` (a programmer error).
    public static func int<T: BinaryInteger>(_ value: T) -> RedisArgument {
        .integer(Int64(value))
    }
}

/// RESP2 command encoding: an array of bulk strings, written straight into a `ByteBuffer`.
///
/// Contract: pure and allocation-light — the only heap work is growing the target buffer (callers
/// size it with `estimatedSize`); integers and doubles are rendered into small inline strings.
public enum RESPCommandEncoder {
    /// Appends one command (`*<n>\r\n` followed by one bulk string per argument) to `buffer`.
    ///
    /// - Precondition: `arguments` is not empty (Redis has no empty command).
    public static func encode(_ arguments: [RedisArgument], into buffer: inout ByteBuffer) {
        precondition(!arguments.isEmpty, "a Redis command needs at least its name")
        buffer.writeInteger(UInt8(ascii: "*"))
        writeDecimal(arguments.count, into: &buffer)
        writeCRLF(into: &buffer)
        for argument in arguments {
            switch argument {
            case .bytes(let bytes):
                writeBulkHeader(bytes.count, into: &buffer)
                buffer.writeBytes(bytes)
            case .string(let text):
                writeBulkHeader(text.utf8.count, into: &buffer)
                buffer.writeString(text)
            case .integer(let value):
                let text = String(value)
                writeBulkHeader(text.utf8.count, into: &buffer)
                buffer.writeString(text)
            case .double(let value):
                let text = value.isNaN ? "nan" : value.description
                writeBulkHeader(text.utf8.count, into: &buffer)
                buffer.writeString(text)
            }
            writeCRLF(into: &buffer)
        }
    }

    /// An upper-bound guess of the encoded size of `arguments` in bytes, used to size buffers so
    /// encoding does not reallocate.
    public static func estimatedSize(of arguments: [RedisArgument]) -> Int {
        var size = 16
        for argument in arguments {
            switch argument {
            case .bytes(let bytes): size += bytes.count + 16
            case .string(let text): size += text.utf8.count + 16
            case .integer, .double: size += 48
            }
        }
        return size
    }

    @inline(__always)
    private static func writeBulkHeader(_ length: Int, into buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt8(ascii: "$"))
        writeDecimal(length, into: &buffer)
        writeCRLF(into: &buffer)
    }

    @inline(__always)
    private static func writeCRLF(into buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt16(0x0D0A))  // "\r\n", big-endian by default
    }

    /// Writes a non-negative integer's decimal digits without allocating.
    @inline(__always)
    private static func writeDecimal(_ value: Int, into buffer: inout ByteBuffer) {
        if value < 10 {
            buffer.writeInteger(UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: value))
            return
        }
        var divisor = 1
        while divisor <= value / 10 { divisor &*= 10 }
        var remaining = value
        while divisor > 0 {
            buffer.writeInteger(UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: remaining / divisor))
            remaining %= divisor
            divisor /= 10
        }
    }
}
