@testable import CairnRedis
import NIOCore
import Testing

@Suite struct RESPTests {
    /// Replies of every kind, including a bulk string holding CRLF, empty and nil values, and
    /// nested arrays.
    static let wire = Array(
        ("+OK\r\n-ERR unknown command 'FOO'\r\n:42\r\n:-7\r\n$5\r\nhe\r\nl\r\n$0\r\n\r\n$-1\r\n*-1\r\n"
            + "*3\r\n$1\r\na\r\n*2\r\n:1\r\n$-1\r\n*0\r\n"
            + "*2\r\n*2\r\n$7\r\nstream1\r\n*1\r\n*2\r\n$3\r\n1-0\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n+PONG\r\n").utf8)

    static let expected: [RESPValue] = [
        .simpleString("OK"),
        .error("ERR unknown command 'FOO'"),
        .integer(42),
        .integer(-7),
        .bulkString(Array("he\r\nl".utf8)),
        .bulkString([]),
        .null,
        .null,
        .array([.bulkString([97]), .array([.integer(1), .null]), .array([])]),
        .array([
            .array([
                .bulkString(Array("stream1".utf8)),
                .array([.array([.bulkString(Array("1-0".utf8)), .array([.bulkString([102]), .bulkString([118])])])]),
            ]),
            .simpleString("PONG"),
        ]),
    ]

    private func decode(_ chunks: [ArraySlice<UInt8>]) throws -> [RESPValue] {
        let reader = RESPReader()
        var values: [RESPValue] = []
        for chunk in chunks {
            try chunk.withUnsafeBytes { bytes in try reader.feed(bytes) }
            while let value = try reader.next() { values.append(value) }
        }
        return values
    }

    @Test func readerDecodesEveryReplyKind() throws {
        #expect(try decode([Self.wire[...]]) == Self.expected)
    }

    @Test func readerGivesTheSameValuesWhateverTheSplit() throws {
        let wire = Self.wire
        for split in 0...wire.count {
            let values = try decode([wire[..<split], wire[split...]])
            #expect(values == Self.expected, "split at byte \(split)")
        }
        let byteByByte = try decode(wire.indices.map { wire[$0...$0] })
        #expect(byteByByte == Self.expected)
    }

    @Test func readerHoldsBackAPartialReply() throws {
        let reader = RESPReader()
        let partial = Array("*2\r\n$3\r\nabc\r\n".utf8)
        try partial.withUnsafeBytes { bytes in try reader.feed(bytes) }
        #expect(try reader.next() == nil)
        let rest = Array(":5\r\n".utf8)
        try rest.withUnsafeBytes { bytes in try reader.feed(bytes) }
        #expect(try reader.next() == .array([.bulkString(Array("abc".utf8)), .integer(5)]))
        #expect(try reader.next() == nil)
    }

    /// An array announcing a billion elements (the fuzzer's find: hiredis allocated 8 GB of slots
    /// on reading the count) is refused before anything is allocated; one at the bound is read.
    @Test func anArrayAnnouncingTooManyElementsIsAProtocolError() throws {
        let reader = RESPReader()
        let huge = Array("*1000000000\r\n".utf8)
        try huge.withUnsafeBytes { bytes in try reader.feed(bytes) }
        #expect(throws: RedisError.self) { _ = try reader.next() }
        let bounded = RESPReader()
        let wire = Array("*\(RESPReader.maximumArrayElements)\r\n".utf8) + Array(repeating: Array(":1\r\n".utf8), count: 3).flatMap { $0 }
        try wire.withUnsafeBytes { bytes in try bounded.feed(bytes) }
        #expect(try bounded.next() == nil, "a partial array of the largest accepted size waits for its elements")
    }

    @Test func readerReportsProtocolErrors() throws {
        let reader = RESPReader()
        let garbage = Array("!oops\r\n".utf8)
        try garbage.withUnsafeBytes { bytes in try reader.feed(bytes) }
        do {
            _ = try reader.next()
            Issue.record("expected a protocol error")
        } catch {
            #expect(error.code == .protocolError)
            #expect(error.isRetryable)
            #expect(error.message.contains("Protocol error"), "\(error.message)")
        }
    }

    @Test func encodesCommandsAsArraysOfBulkStrings() {
        var buffer = ByteBufferAllocator().buffer(capacity: 64)
        RESPCommandEncoder.encode(["SET", .bytes([0, 1, 13, 10]), -12, 1.5], into: &buffer)
        let expected =
            Array("*4\r\n$3\r\nSET\r\n$4\r\n".utf8) + [0, 1, 13, 10]
            + Array("\r\n$3\r\n-12\r\n$3\r\n1.5\r\n".utf8)
        #expect(buffer.readableBytesView.elementsEqual(expected))
    }

    @Test(arguments: [0, 1, 9, 10, 11, 99, 100, 101, 999, 1000, 12345, 70000])
    func encodedCommandsRoundTripThroughTheReader(length: Int) throws {
        let payload = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let arguments: [RedisArgument] = [
            "XADD", .string("stream:é"), .bytes(payload), .integer(Int64.min), .double(-0.25), .double(.infinity),
        ]
        var buffer = ByteBufferAllocator().buffer(capacity: RESPCommandEncoder.estimatedSize(of: arguments))
        let capacity = buffer.capacity
        RESPCommandEncoder.encode(arguments, into: &buffer)
        #expect(buffer.capacity == capacity, "the size estimate must avoid reallocation")
        let bytes = Array(buffer.readableBytesView)
        let decoded = try decode([bytes[...]])
        #expect(
            decoded == [
                .array([
                    .bulkString(Array("XADD".utf8)), .bulkString(Array("stream:é".utf8)), .bulkString(payload),
                    .bulkString(Array("-9223372036854775808".utf8)), .bulkString(Array("-0.25".utf8)),
                    .bulkString(Array("inf".utf8)),
                ])
            ])
    }

    @Test func valueAccessors() {
        #expect(RESPValue.bulkString(Array("12".utf8)).int64 == 12)
        #expect(RESPValue.integer(3).string == "3")
        #expect(RESPValue.simpleString("OK").bytes == Array("OK".utf8))
        #expect(RESPValue.null.isNull)
        #expect(RESPValue.array([.null]).array == [.null])
        #expect(RESPValue.error("ERR x").string == nil)
    }

    @Test(arguments: [
        ("", "da39a3ee5e6b4b0d3255bfef95601890afd80709"),
        ("abc", "a9993e364706816aba3e25717850c26c9cd0d89d"),
        (
            "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
            "84983e441c3bd26ebaae4aa1f95129e5e54670f1"
        ),
        ("return 1", "e0e1f9fabfc9d4800c877a703b823ac0578ff8db"),
    ])
    func sha1MatchesKnownDigests(input: String, digest: String) {
        #expect(RedisScript(input).sha1 == digest)
    }

    @Test func sha1OfAMillionLetters() {
        // Many 64-byte blocks, and a length whose padding needs a block of its own.
        let million = String(repeating: "a", count: 1_000_000)
        #expect(RedisScript(million).sha1 == "34aa973cd4c4daa4f61eeb2bdbad27316534016f")
        #expect(RedisScript(String(repeating: "a", count: 56)).sha1 == "c2db330f6083854c99d4b5bfb6e8f29f201be699")
    }
}
