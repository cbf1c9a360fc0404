import CHiredis

/// hiredis's streaming reply reader, wrapped: feed bytes as they arrive, take complete replies.
///
/// Contract:
/// - Owns one `redisReader`; it is freed by `close()` or on deinit, whichever is first.
/// - `next()` returns `nil` while a reply is still partial; it never loses bytes between calls.
/// - A protocol error (bytes that are not RESP) is sticky: `next()` and `feed` throw
///   `RedisError(code: .protocolError)` with hiredis's description from then on.
/// - Not thread-safe: one owner (the channel handler, on its event loop).
/// - RESP2 only (hiredis 0.14); arrays nest at most 7 levels deep, more than any command Cairn
///   sends needs (a stream read nests 5).
/// - An array announcing more than `maximumArrayElements` elements is a protocol error.
///   hiredis 0.14 allocates an array's slots when it reads the count, so `*1000000000` would
///   ask for 8 GB at once (the RESP fuzzer found this).
final class RESPReader {
    private var reader: UnsafeMutablePointer<redisReader>?
    /// The most elements one array may announce: 16,777,216 (128 MiB of slots).
    static let maximumArrayElements: Int32 = 1 << 24

    init() {
        guard let reader = redisReaderCreate() else {
            fatalError("hiredis could not allocate a reply reader (out of memory)")
        }
        reader.pointee.fn = boundedReplyFunctions
        self.reader = reader
    }

    deinit {
        close()
    }

    /// Frees the hiredis reader; later calls throw.
    func close() {
        if let reader {
            redisReaderFree(reader)
            self.reader = nil
        }
    }

    /// Hands bytes to the reader (hiredis copies them into its own buffer).
    func feed(_ bytes: UnsafeRawBufferPointer) throws(RedisError) {
        let reader = try openReader()
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        let status = redisReaderFeed(reader, base.assumingMemoryBound(to: CChar.self), bytes.count)
        if status != REDIS_OK {
            throw protocolError(reader)
        }
    }

    /// The next complete reply, or `nil` if the bytes fed so far end mid-reply.
    func next() throws(RedisError) -> RESPValue? {
        let reader = try openReader()
        var raw: UnsafeMutableRawPointer?
        guard redisReaderGetReply(reader, &raw) == REDIS_OK else {
            throw protocolError(reader)
        }
        guard let raw else { return nil }
        defer { freeReplyObject(raw) }
        return Self.convert(raw.assumingMemoryBound(to: redisReply.self))
    }

    private func openReader() throws(RedisError) -> UnsafeMutablePointer<redisReader> {
        guard let reader else {
            throw RedisError(code: .protocolError, message: "the reply reader is closed")
        }
        return reader
    }

    private func protocolError(_ reader: UnsafeMutablePointer<redisReader>) -> RedisError {
        let text = withUnsafeBytes(of: &reader.pointee.errstr) { raw -> String in
            let bytes = raw.prefix(while: { $0 != 0 })
            return String(decoding: bytes, as: UTF8.self)
        }
        return RedisError(code: .protocolError, message: "invalid reply from server: \(text)")
    }

    /// Converts a hiredis reply tree to a `RESPValue` (the tree is freed by the caller).
    private static func convert(_ reply: UnsafeMutablePointer<redisReply>) -> RESPValue {
        let node = reply.pointee
        switch node.type {
        case REDIS_REPLY_STRING:
            return .bulkString(bytes(node.str, node.len))
        case REDIS_REPLY_STATUS:
            return .simpleString(String(decoding: bytes(node.str, node.len), as: UTF8.self))
        case REDIS_REPLY_ERROR:
            return .error(String(decoding: bytes(node.str, node.len), as: UTF8.self))
        case REDIS_REPLY_INTEGER:
            return .integer(Int64(node.integer))
        case REDIS_REPLY_NIL:
            return .null
        case REDIS_REPLY_ARRAY:
            var elements: [RESPValue] = []
            elements.reserveCapacity(node.elements)
            for index in 0..<node.elements {
                if let child = node.element[index] {
                    elements.append(convert(child))
                } else {
                    elements.append(.null)
                }
            }
            return .array(elements)
        default:
            // hiredis 0.14 produces only the six RESP2 types above.
            return .error("ERR unsupported reply type \(node.type) from hiredis")
        }
    }

    private static func bytes(_ pointer: UnsafeMutablePointer<CChar>?, _ count: Int) -> [UInt8] {
        guard let pointer, count > 0 else { return [] }
        return Array(UnsafeRawBufferPointer(start: pointer, count: count))
    }
}

/// hiredis's own reply constructors, read once from a fresh reader.
private let hiredisReplyFunctions: redisReplyObjectFunctions = {
    guard let reader = redisReaderCreate() else { fatalError("hiredis could not allocate a reply reader (out of memory)") }
    defer { redisReaderFree(reader) }
    return reader.pointee.fn.pointee
}()

/// hiredis's constructors, except that an array announcing more than
/// `RESPReader.maximumArrayElements` elements is refused before anything is allocated (hiredis
/// then reports an error and the reader stops). Shared by every reader, never written after it
/// is made (hence `nonisolated(unsafe)`), never freed.
nonisolated(unsafe) private let boundedReplyFunctions: UnsafeMutablePointer<redisReplyObjectFunctions> = {
    var functions = hiredisReplyFunctions
    functions.createArray = { task, elements in
        guard elements <= RESPReader.maximumArrayElements else { return nil }
        return hiredisReplyFunctions.createArray(task, elements)
    }
    let pointer = UnsafeMutablePointer<redisReplyObjectFunctions>.allocate(capacity: 1)
    pointer.initialize(to: functions)
    return pointer
}()
