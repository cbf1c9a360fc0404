import CairnCore
import Foundation
import Testing

/// A random source that replays a fixed script of values, cycling when it runs out.
struct ScriptedRandom: RandomNumberGenerator, Sendable {
    var values: [UInt64]
    var draws = 0

    init(_ values: [UInt64]) {
        self.values = values
    }

    mutating func next() -> UInt64 {
        defer { draws += 1 }
        return values[draws % values.count]
    }
}

@Suite("ULID text form")
struct ULIDTextTests {
    @Test(
        "formats known values",
        arguments: [
            (UInt64(1_469_918_176_385), [UInt8](repeating: 0, count: 10), "01ARYZ6S410000000000000000"),
            (0, [UInt8](repeating: 0, count: 10), "00000000000000000000000000"),
            (ULID.maxMilliseconds, [UInt8](repeating: 0xFF, count: 10), "7ZZZZZZZZZZZZZZZZZZZZZZZZZ"),
            (1_700_000_000_000, Array(0..<10), "01HF7YAT00000G40R40M30E209"),
            (1_700_000_000_123, [0xDE, 0xAD, 0xBE, 0xEF, 0x01, 0x02, 0xFF, 0xFF, 0xFF, 0xFF], "01HF7YAT3VVTPVXVR10BZZZZZZ"),
        ] as [(UInt64, [UInt8], String)])
    func formatsKnownValues(milliseconds: UInt64, entropy: [UInt8], text: String) throws {
        let id = ULID(milliseconds: milliseconds, entropy: entropy)
        #expect(id.description == text)
        #expect(id.milliseconds == milliseconds)
        #expect(id.entropy == entropy)
        let parsed = try ULID(parsing: text)
        #expect(parsed == id)
        #expect(try ULID(parsing: text.lowercased()) == id)
        #expect(ULID(text) == id)
    }

    @Test(
        "rejects malformed text with a typed error",
        arguments: [
            ("", ULIDParseError.Code.invalidLength, nil),
            ("01ARYZ6S41000000000000000", .invalidLength, nil),
            ("01ARYZ6S4100000000000000000", .invalidLength, nil),
            ("01ARYZ6S41TSV4RRFFQ69G5FAU", .invalidCharacter, 25),
            ("I1ARYZ6S41TSV4RRFFQ69G5FAV", .invalidCharacter, 0),
            ("01ARYZ6S41TSV4RRFFQ69G5FAL", .invalidCharacter, 25),
            ("01ARYZ6S41TSV4RRFFQ69GOFAV", .invalidCharacter, 22),
            ("01ARYZ6S41-SV4RRFFQ69G5FAV", .invalidCharacter, 10),
            ("01ARYZ6S41 SV4RRFFQ69G5FAV", .invalidCharacter, 10),
            ("01ARYZ6S41éSV4RRFFQ69G5FA", .invalidCharacter, 10),
            ("80000000000000000000000000", .overflow, 0),
            ("ZZZZZZZZZZZZZZZZZZZZZZZZZZ", .overflow, 0),
        ] as [(String, ULIDParseError.Code, Int?)])
    func rejectsMalformed(text: String, code: ULIDParseError.Code, offset: Int?) {
        do {
            let id = try ULID(parsing: text)
            Issue.record("parsed \(text) as \(id)")
        } catch {
            #expect(error.code == code)
            #expect(error.offset == offset)
            #expect(error.input == text)
        }
        #expect(ULID(text) == nil)
    }

    @Test("error messages name the problem")
    func errorMessages() throws {
        let length = try #require(throws: ULIDParseError.self) { try ULID(parsing: "ABC") }
        #expect(length.description == "invalid ULID \"ABC\": must be 26 characters, got 3")
        let character = try #require(throws: ULIDParseError.self) { try ULID(parsing: "01ARYZ6S41TSV4RRFFQ69G5FAU") }
        #expect(
            character.description
                == "invalid ULID \"01ARYZ6S41TSV4RRFFQ69G5FAU\": character \"U\" at offset 25 is not a Crockford base32 digit")
        let overflow = try #require(throws: ULIDParseError.self) { try ULID(parsing: "80000000000000000000000000") }
        #expect(overflow.description.contains("first character must be 0-7"))
    }

    @Test("bytes round-trip and need exactly 16")
    func bytesRoundTrip() throws {
        let id = try ULID(parsing: "01HF7YAT3VVTPVXVR10BZZZZZZ")
        let bytes = id.bytes
        #expect(bytes.count == 16)
        #expect(Array(bytes[6...]) == [0xDE, 0xAD, 0xBE, 0xEF, 0x01, 0x02, 0xFF, 0xFF, 0xFF, 0xFF])
        #expect(ULID(bytes: bytes) == id)
        #expect(ULID(bytes: bytes.dropLast()) == nil)
        #expect(ULID(bytes: bytes + [0]) == nil)
    }

    @Test("date is the timestamp in milliseconds")
    func dateAccessor() {
        let id = ULID(milliseconds: 1_700_000_000_123, entropy: [UInt8](repeating: 0, count: 10))
        #expect(id.date == Date(timeIntervalSince1970: 1_700_000_000.123))
    }

    @Test("Codable uses the canonical string")
    func codable() throws {
        let id = try ULID(parsing: "01HF7YAT00000G40R40M30E209")
        let encoded = try JSONEncoder().encode([id])
        #expect(String(decoding: encoded, as: UTF8.self) == "[\"01HF7YAT00000G40R40M30E209\"]")
        let decoded = try JSONDecoder().decode([ULID].self, from: Data("[\"01hf7yat00000g40r40m30e209\"]".utf8))
        #expect(decoded == [id])
        #expect(throws: DecodingError.self) {
            try JSONDecoder().decode([ULID].self, from: Data("[\"not-a-ulid\"]".utf8))
        }
    }
}

@Suite("ULID ordering")
struct ULIDOrderingTests {
    @Test("order equals byte order and string order")
    func orderMatchesBytesAndStrings() {
        var random = SystemRandomNumberGenerator()
        var ids: [ULID] = []
        for _ in 0..<500 {
            // Few distinct timestamps so many ULIDs share one and order by entropy.
            let millis = UInt64.random(in: 0...3, using: &random) * 1_000_000_007
            let entropy = (0..<10).map { _ in UInt8.random(in: 0...255, using: &random) }
            ids.append(ULID(milliseconds: millis, entropy: entropy))
        }
        let byValue = ids.sorted()
        let byBytes = ids.sorted { $0.bytes.lexicographicallyPrecedes($1.bytes) }
        let byString = ids.sorted { $0.description < $1.description }
        #expect(byValue == byBytes)
        #expect(byValue == byString)
    }

    @Test(
        "pairs compare by timestamp first, then entropy",
        arguments: [
            ("01ARYZ6S410000000000000000", "01ARYZ6S410000000000000001"),
            ("01ARYZ6S41ZZZZZZZZZZZZZZZZ", "01ARYZ6S420000000000000000"),
            ("00000000000000000000000000", "7ZZZZZZZZZZZZZZZZZZZZZZZZZ"),
            ("0123456789ABCDEFGHJKMNPQRS", "0123456789ABCDEFGHJKMNPQRT"),
        ])
    func pairOrder(smaller: String, larger: String) throws {
        let a = try ULID(parsing: smaller)
        let b = try ULID(parsing: larger)
        #expect(a < b)
        #expect(!(b < a))
        #expect(a != b)
        #expect(Set([a, b, a]).count == 2)
    }
}

@Suite("ULID generator")
struct ULIDGeneratorTests {
    @Test("a new millisecond draws fresh entropy")
    func freshEntropyPerMillisecond() {
        var generator = ULIDGenerator(random: ScriptedRandom([0x1_0001, 2, 0xAAAA, 7]))
        let first = generator.next(milliseconds: 1000)
        #expect(first.description == "00000000Z8000G000000000002")
        let second = generator.next(milliseconds: 1001)
        #expect(second.milliseconds == 1001)
        #expect(second.entropy == [0xAA, 0xAA, 0, 0, 0, 0, 0, 0, 0, 7])
    }

    @Test("the same millisecond increments the previous entropy")
    func sameMillisecondIncrements() {
        var generator = ULIDGenerator(random: ScriptedRandom([1, 2]))
        let first = generator.next(milliseconds: 1000)
        let second = generator.next(milliseconds: 1000)
        let third = generator.next(milliseconds: 1000)
        #expect(second.description == "00000000Z8000G000000000003")
        #expect(second.milliseconds == 1000)
        #expect(first < second && second < third)
        #expect(third.entropy.last == 4)
        #expect(generator.random.draws == 2)
    }

    @Test("a backwards clock keeps the last timestamp and increments")
    func backwardsClock() {
        var generator = ULIDGenerator(random: ScriptedRandom([0, 10]))
        let first = generator.next(milliseconds: 5000)
        let second = generator.next(milliseconds: 4000)
        #expect(second.milliseconds == 5000)
        #expect(second.entropy.last == 11)
        #expect(first < second)
        #expect(generator.last == second)
    }

    @Test("increment carries across entropy bytes")
    func incrementCarries() {
        var generator = ULIDGenerator(random: ScriptedRandom([0x0000, UInt64.max]))
        _ = generator.next(milliseconds: 77)
        let second = generator.next(milliseconds: 77)
        #expect(second.milliseconds == 77)
        #expect(second.entropy == [0, 1, 0, 0, 0, 0, 0, 0, 0, 0])
    }

    @Test("80-bit overflow advances the timestamp by one millisecond")
    func overflowAdvancesTimestamp() {
        var generator = ULIDGenerator(random: ScriptedRandom([0xFFFF, UInt64.max, 0x0102, 3]))
        let first = generator.next(milliseconds: 9000)
        #expect(first.entropy == [UInt8](repeating: 0xFF, count: 10))
        let second = generator.next(milliseconds: 9000)
        #expect(second.milliseconds == 9001)
        #expect(second.entropy == [0x01, 0x02, 0, 0, 0, 0, 0, 0, 0, 3])
        #expect(first < second)
        let third = generator.next(milliseconds: 8999)
        #expect(third.milliseconds == 9001)
        #expect(third.entropy.last == 4)
    }

    @Test("stays strictly increasing under a jittering clock")
    func strictlyIncreasing() {
        var generator = ULIDGenerator()
        var clock: UInt64 = 1_700_000_000_000
        var previous = generator.next(milliseconds: clock)
        var random = SystemRandomNumberGenerator()
        for _ in 0..<5000 {
            clock = clock + UInt64.random(in: 0...2, using: &random) - 1
            let next = generator.next(milliseconds: clock)
            #expect(previous < next)
            #expect(next.description > previous.description)
            previous = next
        }
    }

    @Test("next(now:) truncates a Date to whole milliseconds")
    func dateInput() {
        var generator = ULIDGenerator(random: ScriptedRandom([0, 0]))
        #expect(generator.next(now: Date(timeIntervalSince1970: 1.0019)).milliseconds == 1001)
        var early = ULIDGenerator(random: ScriptedRandom([0, 0]))
        #expect(early.next(now: Date(timeIntervalSince1970: -5)).milliseconds == 0)
    }
}

@Suite("Inngest event id seed")
struct ULIDSeedTests {
    @Test(
        "parses well-formed headers",
        arguments: [
            ("1700000000000,AAECAwQFBgcICQ==", UInt64(1_700_000_000_000), [UInt8](0..<10)),
            ("1700000000000,AAECAwQFBgcICQ", 1_700_000_000_000, [UInt8](0..<10)),
            (" 1700000000123,3q2+7wEC/////w== ", 1_700_000_000_123, [0xDE, 0xAD, 0xBE, 0xEF, 0x01, 0x02, 0xFF, 0xFF, 0xFF, 0xFF]),
            ("0,AAAAAAAAAAAAAA==", 0, [UInt8](repeating: 0, count: 10)),
        ] as [(String, UInt64, [UInt8])])
    func parses(header: String, milliseconds: UInt64, entropy: [UInt8]) throws {
        let seed = try #require(ULIDSeed(header: header))
        #expect(seed.milliseconds == milliseconds)
        #expect(seed.entropy == entropy)
    }

    @Test(
        "rejects malformed headers",
        arguments: [
            "",
            "1700000000000",
            "1700000000000;AAECAwQFBgcICQ==",
            ",AAECAwQFBgcICQ==",
            "17000x0000000,AAECAwQFBgcICQ==",
            "-1,AAECAwQFBgcICQ==",
            "281474976710656,AAECAwQFBgcICQ==",
            "1700000000000,AAAAAAAAAAAA",
            "1700000000000,AAAAAAAAAAAAAAA=",
            "1700000000000,AAECAwQFBgcIC*==",
            "1700000000000,AAECAwQFBgcICQ=",
            "1700000000000,",
        ])
    func rejects(header: String) {
        #expect(ULIDSeed(header: header) == nil)
    }

    @Test(
        "derives the ULID for an index by adding to the last 4 entropy bytes",
        arguments: [
            ("1700000000000,AAECAwQFBgcICQ==", 0, "01HF7YAT00000G40R40M30E209"),
            ("1700000000000,AAECAwQFBgcICQ==", 1, "01HF7YAT00000G40R40M30E20A"),
            ("1700000000123,3q2+7wEC/////w==", 0, "01HF7YAT3VVTPVXVR10BZZZZZZ"),
            // 0xFFFFFFFF + 1 wraps to 0 without carrying into byte 5.
            ("1700000000123,3q2+7wEC/////w==", 1, "01HF7YAT3VVTPVXVR108000000"),
        ] as [(String, Int, String)])
    func derives(header: String, index: Int, expected: String) throws {
        let seed = try #require(ULIDSeed(header: header))
        #expect(seed.ulid(forIndex: index).description == expected)
    }

    @Test(
        "index arithmetic on the entropy tail",
        arguments: [
            ([0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF], 1, [0, 0, 0, 0, 0, 0, 0, 0, 1, 0]),
            ([9, 9, 9, 9, 9, 9, 0, 0, 0, 0], 5000, [9, 9, 9, 9, 9, 9, 0, 0, 0x13, 0x88]),
            ([9, 9, 9, 9, 9, 9, 0xFF, 0xFF, 0xFF, 0xFE], 3, [9, 9, 9, 9, 9, 9, 0, 0, 0, 1]),
            ([1, 2, 3, 4, 5, 6, 0, 0, 0, 5], -1, [1, 2, 3, 4, 5, 6, 0, 0, 0, 4]),
        ] as [([UInt8], Int, [UInt8])])
    func tailArithmetic(entropy: [UInt8], index: Int, expected: [UInt8]) {
        let seed = ULIDSeed(milliseconds: 42, entropy: entropy)
        let id = seed.ulid(forIndex: index)
        #expect(id.entropy == expected)
        #expect(id.milliseconds == 42)
    }
}

@Suite("Unix milliseconds")
struct UnixMillisecondsTests {
    @Test("a date is rounded down to the millisecond, before the epoch too")
    func roundsDown() {
        #expect(Date(timeIntervalSince1970: 1_800_000_000.9999).unixMilliseconds == 1_800_000_000_999)
        #expect(Date(timeIntervalSince1970: 1_800_000_000).unixMilliseconds == 1_800_000_000_000)
        #expect(Date(timeIntervalSince1970: -0.0005).unixMilliseconds == -1)
        var generator = ULIDGenerator()
        #expect(generator.next(now: Date(timeIntervalSince1970: -5)).milliseconds == 0)
        #expect(generator.next(now: Date(timeIntervalSince1970: 1_800_000_000.0015)).milliseconds == 1_800_000_000_001)
    }
}
