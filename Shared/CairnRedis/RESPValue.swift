/// One reply from Redis, as RESP2 describes it.
///
/// Contract:
/// - Produced by the connection's reply decoder (hiredis's reader) and never by callers; a reply
///   is complete — arrays hold every element.
/// - Redis sends a nil bulk string (`$-1`) and a nil array (`*-1`) for "nothing"; both arrive as
///   `.null`, so callers never have to tell the two apart.
/// - `.error` carries Redis's own text, e.g. `ERR unknown command 'NOPE'` or
///   `BUSYGROUP Consumer Group name already exists`. `RedisClient.send` turns it into a thrown
///   `RedisError` with code `.server`; `RedisConnection`'s raw form keeps it as a value.
public enum RESPValue: Sendable, Hashable {
    /// A status reply (`+OK`), decoded as UTF-8.
    case simpleString(String)
    /// An error reply (`-ERR ...`) with Redis's text, without the leading `-`.
    case error(String)
    /// An integer reply (`:42`).
    case integer(Int64)
    /// A bulk string reply (`$3\r\nabc`), as raw bytes: Redis strings are binary-safe.
    case bulkString([UInt8])
    /// A nil bulk string or nil array.
    case null
    /// An array reply; elements may be any value, including nested arrays and `.null`.
    case array([RESPValue])
}

extension RESPValue {
    /// The reply as text: a status reply or a bulk string decoded as UTF-8 (invalid sequences are
    /// replaced with U+FFFD); an integer reply in decimal; `nil` for anything else.
    public var string: String? {
        switch self {
        case .simpleString(let text): text
        case .bulkString(let bytes): String(decoding: bytes, as: UTF8.self)
        case .integer(let value): String(value)
        case .error, .null, .array: nil
        }
    }

    /// The reply's bytes: a bulk string as is, a status reply's UTF-8; `nil` for anything else.
    public var bytes: [UInt8]? {
        switch self {
        case .bulkString(let bytes): bytes
        case .simpleString(let text): Array(text.utf8)
        case .error, .null, .integer, .array: nil
        }
    }

    /// The reply as an integer: an integer reply, or a status/bulk string holding a decimal
    /// integer (Redis returns numbers as bulk strings in some replies, e.g. `XPENDING`'s count).
    public var int64: Int64? {
        switch self {
        case .integer(let value): value
        case .bulkString, .simpleString: string.flatMap { Int64($0) }
        case .error, .null, .array: nil
        }
    }

    /// The elements of an array reply; `nil` for anything else (including `.null`).
    public var array: [RESPValue]? {
        if case .array(let elements) = self { return elements }
        return nil
    }

    /// Whether this is a nil reply.
    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }

    /// A short, human-readable rendering for error messages: the kind and a clipped value.
    var summary: String {
        switch self {
        case .simpleString(let text): "status \"\(text.prefix(64))\""
        case .error(let text): "error \"\(text.prefix(64))\""
        case .integer(let value): "integer \(value)"
        case .bulkString(let bytes): "bulk string \"\(String(decoding: bytes.prefix(64), as: UTF8.self))\""
        case .null: "nil"
        case .array(let elements): "array of \(elements.count)"
        }
    }
}
