public import Foundation

/// A 128-bit Universally Unique Lexicographically Sortable Identifier.
///
/// Layout, most significant bit first: a 48-bit timestamp in milliseconds since the Unix epoch,
/// then 80 bits of entropy. The canonical text form is 26 characters of Crockford base32 in upper
/// case (`01ARZ3NDEKTSV4RRFFQ69G5FAV`); the first character is always `0`–`7` because 26 × 5 =
/// 130 bits leaves two unused leading bits.
///
/// Ordering (`<`) is the order of the 16 big-endian bytes, which is also the lexicographic order
/// of the canonical strings, so ULIDs sort by creation time and, within one millisecond, by
/// entropy. `Codable` uses the canonical string.
public struct ULID: Sendable, Hashable, Comparable {
    /// The 128-bit value: timestamp in the top 48 bits, entropy in the low 80 bits.
    public let rawValue: UInt128

    /// The largest timestamp a ULID can hold: 2^48 − 1 ms (the year 10889).
    public static let maxMilliseconds: UInt64 = (1 << 48) - 1

    static let entropyMask: UInt128 = (1 << 80) - 1

    /// Wraps a raw 128-bit value; every value is a valid ULID.
    public init(rawValue: UInt128) {
        self.rawValue = rawValue
    }

    /// Builds a ULID from a timestamp and exactly 10 bytes of entropy (big-endian).
    ///
    /// - Precondition: `milliseconds <= ULID.maxMilliseconds` and `entropy.count == 10`;
    ///   violating either is a programmer error and traps.
    public init(milliseconds: UInt64, entropy: some Collection<UInt8>) {
        precondition(milliseconds <= ULID.maxMilliseconds, "ULID timestamp exceeds 48 bits")
        precondition(entropy.count == 10, "ULID entropy must be exactly 10 bytes")
        var value = UInt128(milliseconds)
        for byte in entropy {
            value = value << 8 | UInt128(byte)
        }
        self.rawValue = value
    }

    init(milliseconds: UInt64, entropyBits: UInt128) {
        precondition(milliseconds <= ULID.maxMilliseconds, "ULID timestamp exceeds 48 bits")
        self.rawValue = UInt128(milliseconds) << 80 | (entropyBits & ULID.entropyMask)
    }

    /// Builds a ULID from its 16 big-endian bytes; returns nil unless there are exactly 16.
    public init?(bytes: some Collection<UInt8>) {
        guard bytes.count == 16 else { return nil }
        var value: UInt128 = 0
        for byte in bytes {
            value = value << 8 | UInt128(byte)
        }
        self.rawValue = value
    }

    /// The timestamp part: milliseconds since 1970-01-01T00:00:00Z, at most `maxMilliseconds`.
    public var milliseconds: UInt64 {
        UInt64(truncatingIfNeeded: rawValue >> 80)
    }

    /// The timestamp part as a `Date` (millisecond precision).
    public var date: Date {
        Date(timeIntervalSince1970: Double(milliseconds) / 1000)
    }

    /// The 10 entropy bytes, big-endian.
    public var entropy: [UInt8] {
        (0..<10).map { UInt8(truncatingIfNeeded: rawValue >> (8 * (9 - $0))) }
    }

    var entropyBits: UInt128 {
        rawValue & ULID.entropyMask
    }

    /// The 16 big-endian bytes; their order is the ULID order.
    public var bytes: [UInt8] {
        (0..<16).map { UInt8(truncatingIfNeeded: rawValue >> (8 * (15 - $0))) }
    }

    /// Orders by the 128-bit value, which equals byte order and canonical-string order.
    public static func < (lhs: ULID, rhs: ULID) -> Bool {
        lhs.rawValue < rhs.rawValue
    }
}

// MARK: - Text form

extension ULID: CustomStringConvertible, LosslessStringConvertible {
    /// The Crockford base32 digits in value order; `I`, `L`, `O` and `U` are not used.
    static let alphabet: [UInt8] = Array("0123456789ABCDEFGHJKMNPQRSTVWXYZ".utf8)

    /// Maps an ASCII byte to its digit value, or 0xFF when the byte is not a digit.
    /// Lower-case letters map like upper case.
    static let digitValues: [UInt8] = {
        var table = [UInt8](repeating: 0xFF, count: 256)
        for (index, byte) in alphabet.enumerated() {
            table[Int(byte)] = UInt8(index)
            if byte >= UInt8(ascii: "A") {
                table[Int(byte | 0x20)] = UInt8(index)
            }
        }
        return table
    }()

    /// Parses the 26-character text form, case-insensitively.
    ///
    /// Only the 32 canonical Crockford digits are accepted (in either case); the Crockford
    /// aliases `I`, `L`, `O` and hyphens are rejected so that every accepted string names one
    /// ULID and formats back to itself up to case.
    ///
    /// - Throws: `ULIDParseError` with code `.invalidLength` (not 26 characters),
    ///   `.invalidCharacter` (with the offending offset), or `.overflow` (first character above
    ///   `7`, i.e. the value needs more than 128 bits).
    public init(parsing text: some StringProtocol) throws(ULIDParseError) {
        let utf8 = text.utf8
        guard utf8.count == 26 else {
            throw ULIDParseError(code: .invalidLength, input: String(text), offset: nil)
        }
        var value: UInt128 = 0
        for (offset, byte) in utf8.enumerated() {
            let digit = ULID.digitValues[Int(byte)]
            guard digit != 0xFF else {
                throw ULIDParseError(code: .invalidCharacter, input: String(text), offset: offset)
            }
            if offset == 0, digit > 7 {
                throw ULIDParseError(code: .overflow, input: String(text), offset: 0)
            }
            value = value << 5 | UInt128(digit)
        }
        self.rawValue = value
    }

    /// Parses the text form; nil when it is not a valid ULID (see `init(parsing:)`).
    public init?(_ description: String) {
        guard let parsed = try? ULID(parsing: description) else { return nil }
        self = parsed
    }

    /// The canonical 26-character upper-case Crockford base32 form.
    public var description: String {
        var digits = [UInt8](repeating: 0, count: 26)
        var value = rawValue
        for index in stride(from: 25, through: 0, by: -1) {
            digits[index] = ULID.alphabet[Int(value & 31)]
            value >>= 5
        }
        return String(decoding: digits, as: UTF8.self)
    }
}

extension ULID: Codable {
    /// Decodes the canonical string form (case-insensitive).
    ///
    /// - Throws: `DecodingError.dataCorrupted` naming the parse problem when the string is not
    ///   a ULID.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        do {
            self = try ULID(parsing: text)
        } catch {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: error.description)
        }
    }

    /// Encodes the canonical upper-case string form.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

/// The reason a string is not a ULID.
///
/// `description` names the problem and quotes at most the first 40 characters of the input.
public struct ULIDParseError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What is wrong with the text.
    public enum Code: String, Sendable, Hashable {
        /// The text is not exactly 26 characters (UTF-8 bytes) long.
        case invalidLength
        /// A character is not one of the 32 Crockford base32 digits.
        case invalidCharacter
        /// The first character is above `7`, so the value would not fit in 128 bits.
        case overflow
    }

    /// What is wrong.
    public let code: Code
    /// The rejected text.
    public let input: String
    /// The UTF-8 offset of the offending character; nil for `.invalidLength`.
    public let offset: Int?

    /// Creates an error; `offset` is the UTF-8 offset of the offending character, if any.
    public init(code: Code, input: String, offset: Int?) {
        self.code = code
        self.input = input
        self.offset = offset
    }

    /// A message such as `invalid ULID "01AR…": character "U" at offset 4 is not base32`.
    public var description: String {
        let quoted = "\"\(input.count > 40 ? String(input.prefix(40)) + "…" : input)\""
        switch code {
        case .invalidLength:
            return "invalid ULID \(quoted): must be 26 characters, got \(input.utf8.count)"
        case .invalidCharacter:
            let offset = offset ?? 0
            let byte = input.utf8[input.utf8.index(input.utf8.startIndex, offsetBy: offset)]
            let shown = byte < 0x80 ? "\"\(Character(Unicode.Scalar(byte)))\"" : "a non-ASCII byte"
            return "invalid ULID \(quoted): character \(shown) at offset \(offset) is not a Crockford base32 digit"
        case .overflow:
            return "invalid ULID \(quoted): first character must be 0-7, the value exceeds 128 bits"
        }
    }
}

// MARK: - Generation

/// Generates ULIDs that strictly increase, even within one millisecond or when the clock steps
/// back.
///
/// Rules for `next(milliseconds:)`, given the previously generated ULID `last`:
/// - first call, or `now > last.milliseconds`: timestamp `now`, fresh random entropy;
/// - `now <= last.milliseconds` (same millisecond, or the clock went backwards): keep
///   `last.milliseconds` and use `last`'s entropy + 1;
/// - if that increment overflows 80 bits: timestamp `last.milliseconds + 1`, fresh entropy.
///
/// Time is injected; the generator never reads a clock. It is a value type: copies generate
/// independently, so keep one per producer (for example behind a `Mutex`). Randomness comes
/// from `Random`; `SystemRandomNumberGenerator` is the default, tests inject a seeded one.
public struct ULIDGenerator<Random: RandomNumberGenerator> {
    /// The entropy source; two draws make one 80-bit entropy value.
    public var random: Random
    /// The most recently generated ULID, nil before the first call.
    public private(set) var last: ULID?

    /// Creates a generator that draws entropy from `random`.
    public init(random: Random) {
        self.random = random
        self.last = nil
    }

    /// Returns the next ULID for a clock reading in milliseconds since the Unix epoch.
    ///
    /// - Precondition: `milliseconds <= ULID.maxMilliseconds`, and the monotonic bump never
    ///   needs to pass it (the year 10889); otherwise this traps.
    public mutating func next(milliseconds: UInt64) -> ULID {
        let id: ULID
        if let last, milliseconds <= last.milliseconds {
            let bumped = last.entropyBits &+ 1
            if bumped > ULID.entropyMask {
                id = ULID(milliseconds: last.milliseconds + 1, entropyBits: freshEntropy())
            } else {
                id = ULID(milliseconds: last.milliseconds, entropyBits: bumped)
            }
        } else {
            id = ULID(milliseconds: milliseconds, entropyBits: freshEntropy())
        }
        last = id
        return id
    }

    /// Returns the next ULID for a clock reading given as a `Date`.
    ///
    /// The date is truncated to whole milliseconds; dates before 1970 count as 0 and dates past
    /// the 48-bit range trap (see `next(milliseconds:)`).
    public mutating func next(now: Date) -> ULID {
        next(milliseconds: UInt64(max(0, now.unixMilliseconds)))
    }

    private mutating func freshEntropy() -> UInt128 {
        let high = UInt128(UInt16(truncatingIfNeeded: random.next()))
        let low = UInt128(random.next() as UInt64)
        return high << 64 | low
    }
}

extension ULIDGenerator: Sendable where Random: Sendable {}

extension ULIDGenerator where Random == SystemRandomNumberGenerator {
    /// Creates a generator that draws entropy from the system's secure random source.
    public init() {
        self.init(random: SystemRandomNumberGenerator())
    }
}

// MARK: - Inngest event id seed

/// The seed an SDK sends so that the server derives deterministic event ULIDs.
///
/// SDKs send the header `x-inngest-event-id-seed: <millis>,<base64 of 10 random bytes>`.
/// The event at index `i` gets `ULID(milliseconds: millis, entropy: e)` where `e` is the
/// seed's entropy with `i` added to its last 4 bytes read as a big-endian `UInt32`, wrapping
/// modulo 2^32. A retried request with the same seed therefore yields the same ids.
public struct ULIDSeed: Sendable, Hashable {
    /// The HTTP header that carries the seed (lower case).
    public static let headerName = "x-inngest-event-id-seed"

    /// The timestamp of every derived ULID, in milliseconds since the Unix epoch.
    public let milliseconds: UInt64
    /// The 10 entropy bytes the index is added to.
    public let entropy: [UInt8]

    /// Creates a seed from its parts.
    ///
    /// - Precondition: `milliseconds <= ULID.maxMilliseconds` and `entropy.count == 10`.
    public init(milliseconds: UInt64, entropy: [UInt8]) {
        precondition(milliseconds <= ULID.maxMilliseconds, "ULID timestamp exceeds 48 bits")
        precondition(entropy.count == 10, "ULID entropy must be exactly 10 bytes")
        self.milliseconds = milliseconds
        self.entropy = entropy
    }

    /// Parses a header value `<millis>,<base64>`; nil when it is malformed.
    ///
    /// Accepted: optional surrounding spaces/tabs; `millis` is 1–15 decimal digits not above
    /// `ULID.maxMilliseconds`; the base64 part uses the standard alphabet (`+`, `/`), padding
    /// optional, and decodes to exactly 10 bytes. Anything else returns nil, and callers fall
    /// back to random ids.
    public init?(header: String) {
        let trimmed = header.utf8.drop { $0 == 0x20 || $0 == 0x09 }
        var bytes = Array(trimmed)
        while let lastByte = bytes.last, lastByte == 0x20 || lastByte == 0x09 {
            bytes.removeLast()
        }
        guard let comma = bytes.firstIndex(of: UInt8(ascii: ",")) else { return nil }
        let digits = bytes[..<comma]
        guard !digits.isEmpty, digits.count <= 15 else { return nil }
        var millis: UInt64 = 0
        for byte in digits {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            millis = millis * 10 + UInt64(byte - UInt8(ascii: "0"))
        }
        guard millis <= ULID.maxMilliseconds,
              let decoded = Base64.decode(bytes[(comma + 1)...]),
              decoded.count == 10
        else { return nil }
        self.init(milliseconds: millis, entropy: decoded)
    }

    /// The ULID for the event at `index`: the seed's timestamp, and its entropy with `index`
    /// added (wrapping) to the last 4 bytes as a big-endian `UInt32`.
    ///
    /// The index is added as given; a negative index wraps like its two's-complement `UInt32`.
    /// Which numbering to use (from 0 or from 1) is the caller's decision.
    public func ulid(forIndex index: Int) -> ULID {
        var bytes = entropy
        var tail = UInt32(bytes[6]) << 24 | UInt32(bytes[7]) << 16 | UInt32(bytes[8]) << 8 | UInt32(bytes[9])
        tail &+= UInt32(truncatingIfNeeded: index)
        bytes[6] = UInt8(truncatingIfNeeded: tail >> 24)
        bytes[7] = UInt8(truncatingIfNeeded: tail >> 16)
        bytes[8] = UInt8(truncatingIfNeeded: tail >> 8)
        bytes[9] = UInt8(truncatingIfNeeded: tail)
        return ULID(milliseconds: milliseconds, entropy: bytes)
    }
}

/// Standard-alphabet base64 decoding for the event id seed.
enum Base64 {
    /// Decodes RFC 4648 base64 (`+`, `/`); `=` padding is optional but, when present, must
    /// complete the final quantum. Returns nil on any other character or a bad length.
    static func decode(_ text: some Collection<UInt8>) -> [UInt8]? {
        var input = Array(text)
        var padding = 0
        while input.last == UInt8(ascii: "=") {
            input.removeLast()
            padding += 1
        }
        guard padding <= 2, input.count % 4 != 1 else { return nil }
        if padding > 0, (input.count + padding) % 4 != 0 { return nil }
        var output: [UInt8] = []
        output.reserveCapacity(input.count * 3 / 4)
        var accumulator: UInt32 = 0
        var bits = 0
        for byte in input {
            let value: UInt8
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): value = byte - UInt8(ascii: "A")
            case UInt8(ascii: "a")...UInt8(ascii: "z"): value = byte - UInt8(ascii: "a") + 26
            case UInt8(ascii: "0")...UInt8(ascii: "9"): value = byte - UInt8(ascii: "0") + 52
            case UInt8(ascii: "+"): value = 62
            case UInt8(ascii: "/"): value = 63
            default: return nil
            }
            accumulator = accumulator << 6 | UInt32(value)
            bits += 6
            if bits >= 8 {
                bits -= 8
                output.append(UInt8(truncatingIfNeeded: accumulator >> UInt32(bits)))
            }
        }
        return output
    }
}
