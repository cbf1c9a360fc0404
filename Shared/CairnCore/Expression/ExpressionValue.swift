/// A value an expression computes: the CEL value model.
///
/// Values read from the activation's JSON keep their JSON form until they are used: a list or
/// map taken from an event wraps the JSON array or object without copying it (see
/// `ExpressionList` and `ExpressionMap`). JSON numbers become `int` when the literal is an
/// integer in Int64's range and `double` otherwise, so integers up to 2^63−1 are compared
/// exactly; larger ones are rounded to the nearest double.
///
/// `==` on this type is structural (same case, same payload; lists element-wise, maps by key
/// regardless of order; `int(1) != double(1)`). The language's own `==`, which compares
/// numbers across types, is what expressions use.
public enum ExpressionValue: Sendable, Equatable {
    /// `null`, and what a missing field reads as.
    case null
    /// `true` or `false`.
    case bool(Bool)
    /// A signed 64-bit integer; arithmetic that leaves the range is an evaluation error.
    case int(Int64)
    /// An unsigned 64-bit integer (literals with a `u` suffix, `uint()`).
    case uint(UInt64)
    /// A 64-bit IEEE double.
    case double(Double)
    /// Unicode text.
    case string(String)
    /// A byte sequence (`b'…'` literals, `bytes()`).
    case bytes([UInt8])
    /// A list.
    case list(ExpressionList)
    /// A map with keys of type string, int, uint or bool.
    case map(ExpressionMap)
    /// A point in time (`now()`, `timestamp()`, `date()`).
    case timestamp(ExpressionTimestamp)
    /// A span of time (`duration()`, timestamp differences).
    case duration(ExpressionDuration)

    /// Converts JSON: objects and arrays are wrapped without copying, numbers become `int`
    /// when the literal is an integer in Int64's range and `double` otherwise.
    public init(_ json: JSONValue) {
        switch json {
        case .null: self = .null
        case .bool(let value): self = .bool(value)
        case .number(let number):
            // `Int64(_:)` accepts exactly the integer literals in range (JSON has no `+`), so
            // it doubles as the integer test.
            if let integer = Int64(number.literal) {
                self = .int(integer)
            } else {
                self = .double(number.doubleValue)
            }
        case .string(let value): self = .string(value)
        case .array(let elements): self = .list(ExpressionList(json: elements))
        case .object(let object): self = .map(ExpressionMap(json: object))
        }
    }

    /// The CEL type name: `null_type`, `bool`, `int`, `uint`, `double`, `string`, `bytes`,
    /// `list`, `map`, `google.protobuf.Timestamp` or `google.protobuf.Duration`.
    public var typeName: String {
        switch self {
        case .null: "null_type"
        case .bool: "bool"
        case .int: "int"
        case .uint: "uint"
        case .double: "double"
        case .string: "string"
        case .bytes: "bytes"
        case .list: "list"
        case .map: "map"
        case .timestamp: "google.protobuf.Timestamp"
        case .duration: "google.protobuf.Duration"
        }
    }

    /// The value as JSON.
    ///
    /// Numbers keep their exact value; a non-finite double (which JSON cannot hold) becomes
    /// `null`. Bytes become a standard base64 string, timestamps an RFC 3339 string
    /// (`2024-05-01T12:00:00Z`), durations CEL's seconds form (`"5400s"`). Map keys that are
    /// not strings are written as their text (`1`, `true`).
    public var jsonValue: JSONValue {
        switch self {
        case .null: return .null
        case .bool(let value): return .bool(value)
        case .int(let value): return .number(JSONNumber(value))
        case .uint(let value): return .number(JSONNumber(value))
        case .double(let value): return JSONNumber(value).map(JSONValue.number) ?? .null
        case .string(let value): return .string(value)
        case .bytes(let value): return .string(ExpressionText.base64Encode(value))
        case .list(let list):
            if case .json(let elements) = list.storage { return .array(elements) }
            return .array(list.map(\.jsonValue))
        case .map(let map):
            if case .json(let object) = map.storage { return .object(object) }
            return .object(JSONObject(members: map.map { (key: $0.key.keyText, value: $0.value.jsonValue) }))
        case .timestamp(let value): return .string(value.rfc3339)
        case .duration(let value): return .string(value.celText)
        }
    }

    /// A stable text for key contexts (concurrency, throttle, rate limit, idempotency,
    /// debounce, singleton and batch keys), from which the caller derives its hash.
    ///
    /// A string is itself; an int or uint its decimal digits; a double the same text
    /// `string()` gives (`1.5`, `1e+21`); a bool `true`/`false`; null `null`; a timestamp its
    /// RFC 3339 text; a duration its seconds form; anything else the compact JSON text of
    /// `jsonValue` (maps keep their member order). Equal results give equal keys, and the
    /// text never depends on the process, the platform or the time of evaluation.
    public var canonicalKey: String {
        switch self {
        case .string(let value): return value
        case .int(let value): return String(value)
        case .uint(let value): return String(value)
        case .double(let value): return ExpressionText.formatDouble(value)
        case .bool(let value): return value ? "true" : "false"
        case .null: return "null"
        case .timestamp(let value): return value.rfc3339
        case .duration(let value): return value.celText
        case .bytes, .list, .map: return jsonValue.jsonString
        }
    }

    /// The text of a map key as JSON writes it.
    var keyText: String {
        switch self {
        case .string(let value): value
        default: canonicalKey
        }
    }
}

// MARK: - Lists

/// A list value: either a JSON array from the activation (wrapped, not copied) or elements an
/// expression built. Elements are converted with `ExpressionValue.init(_:)` as they are read.
public struct ExpressionList: Sendable, Equatable, RandomAccessCollection {
    enum Storage: Sendable {
        case json([JSONValue])
        case values([ExpressionValue])
    }

    let storage: Storage

    /// A list of the given elements.
    public init(_ elements: [ExpressionValue]) {
        self.storage = .values(elements)
    }

    /// A list that reads a JSON array lazily.
    public init(json elements: [JSONValue]) {
        self.storage = .json(elements)
    }

    /// The position of the first element.
    public var startIndex: Int { 0 }

    /// One past the last element.
    public var endIndex: Int {
        switch storage {
        case .json(let elements): elements.count
        case .values(let elements): elements.count
        }
    }

    /// The element at `position`; traps when out of bounds.
    public subscript(position: Int) -> ExpressionValue {
        switch storage {
        case .json(let elements): ExpressionValue(elements[position])
        case .values(let elements): elements[position]
        }
    }

    /// The elements as an array.
    public var elements: [ExpressionValue] {
        switch storage {
        case .json(let elements): elements.map(ExpressionValue.init)
        case .values(let elements): elements
        }
    }

    /// True when both lists have structurally equal elements in the same order.
    public static func == (lhs: ExpressionList, rhs: ExpressionList) -> Bool {
        lhs.count == rhs.count && zip(lhs, rhs).allSatisfy { $0 == $1 }
    }
}

// MARK: - Maps

/// A map value: either a JSON object from the activation (wrapped, not copied; string keys in
/// member order) or entries an expression built (keys of type string, int, uint or bool,
/// unique under the language's equality, in source order).
///
/// Lookup by key follows the language's equality: `1`, `1u` and `1.0` find the same entry.
public struct ExpressionMap: Sendable, Equatable, Sequence {
    /// One entry.
    public typealias Element = (key: ExpressionValue, value: ExpressionValue)

    enum Storage: Sendable {
        case json(JSONObject)
        case entries([Element])
    }

    let storage: Storage

    /// A map of entries whose keys the caller has made unique.
    public init(uniqueEntries: [Element]) {
        self.storage = .entries(uniqueEntries)
    }

    /// A map that reads a JSON object lazily.
    public init(json object: JSONObject) {
        self.storage = .json(object)
    }

    /// The number of entries.
    public var count: Int {
        switch storage {
        case .json(let object): object.count
        case .entries(let entries): entries.count
        }
    }

    /// The keys in order.
    public var keys: [ExpressionValue] {
        switch storage {
        case .json(let object): object.members.map { .string($0.key) }
        case .entries(let entries): entries.map(\.key)
        }
    }

    /// The value for a string key, or nil when absent.
    public subscript(key: String) -> ExpressionValue? {
        switch storage {
        case .json(let object):
            return object[key].map(ExpressionValue.init)
        case .entries(let entries):
            for entry in entries {
                if case .string(let candidate) = entry.key, ExpressionText.bytesEqual(candidate, key) {
                    return entry.value
                }
            }
            return nil
        }
    }

    /// The value for `key` under the language's equality, or nil when absent (including for
    /// keys of a type a map cannot hold).
    public subscript(key: ExpressionValue) -> ExpressionValue? {
        if case .string(let text) = key { return self[text] }
        guard case .entries(let entries) = storage else { return nil }
        for entry in entries where ExpressionSemantics.keysEqual(entry.key, key) {
            return entry.value
        }
        return nil
    }

    /// Iterates the entries in order.
    public func makeIterator() -> AnyIterator<Element> {
        switch storage {
        case .json(let object):
            var iterator = object.members.makeIterator()
            return AnyIterator {
                iterator.next().map { (key: .string($0.key), value: ExpressionValue($0.value)) }
            }
        case .entries(let entries):
            return AnyIterator(entries.makeIterator())
        }
    }

    /// True when both maps have the same keys with structurally equal values, in any order.
    public static func == (lhs: ExpressionMap, rhs: ExpressionMap) -> Bool {
        guard lhs.count == rhs.count else { return false }
        if case .json(let left) = lhs.storage, case .json(let right) = rhs.storage { return left == right }
        return lhs.allSatisfy { entry in rhs[entry.key].map { $0 == entry.value } ?? false }
    }
}

// MARK: - Time

/// A point in time with nanosecond precision, in CEL's range: 0001-01-01T00:00:00Z to
/// 9999-12-31T23:59:59.999999999Z. Arithmetic that leaves the range is an evaluation error.
public struct ExpressionTimestamp: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// Whole seconds since 1970-01-01T00:00:00Z (negative before it).
    public let seconds: Int64
    /// The fraction of the second, 0 ..< 1_000_000_000.
    public let nanoseconds: Int32

    /// The smallest representable `seconds` (0001-01-01T00:00:00Z).
    public static let minimumSeconds: Int64 = -62_135_596_800
    /// The largest representable `seconds` (9999-12-31T23:59:59Z).
    public static let maximumSeconds: Int64 = 253_402_300_799

    /// Creates a timestamp; nil when outside the supported range. `nanoseconds` may be any
    /// value and is carried into `seconds`.
    public init?(seconds: Int64, nanoseconds: Int64 = 0) {
        let carry = nanoseconds >= 0 ? nanoseconds / 1_000_000_000 : (nanoseconds + 1) / 1_000_000_000 - 1
        let fraction = nanoseconds - carry * 1_000_000_000
        let (total, overflow) = seconds.addingReportingOverflow(carry)
        guard !overflow, total >= Self.minimumSeconds, total <= Self.maximumSeconds else { return nil }
        self.seconds = total
        self.nanoseconds = Int32(fraction)
    }

    /// The timestamp `milliseconds` after the Unix epoch (how the engine's clock reports
    /// time). Traps outside years 1–9999, which no clock reading reaches.
    public init(milliseconds: Int64) {
        let seconds = milliseconds >= 0 ? milliseconds / 1000 : (milliseconds + 1) / 1000 - 1
        let rest = milliseconds - seconds * 1000
        guard let value = ExpressionTimestamp(seconds: seconds, nanoseconds: rest * 1_000_000) else {
            preconditionFailure("ExpressionTimestamp(milliseconds: \(milliseconds)) is outside years 1-9999")
        }
        self = value
    }

    /// Whole milliseconds since the Unix epoch, rounded toward negative infinity.
    public var milliseconds: Int64 {
        seconds * 1000 + Int64(nanoseconds / 1_000_000)
    }

    /// RFC 3339 in UTC with as many fraction digits as needed (none when whole):
    /// `2024-05-01T12:00:00Z`, `2024-05-01T12:00:00.25Z`.
    public var rfc3339: String { ExpressionCalendar.format(self, offsetSeconds: 0) }

    /// The RFC 3339 text.
    public var description: String { rfc3339 }

    /// Orders by time.
    public static func < (lhs: ExpressionTimestamp, rhs: ExpressionTimestamp) -> Bool {
        (lhs.seconds, lhs.nanoseconds) < (rhs.seconds, rhs.nanoseconds)
    }
}

/// A signed span of time in nanoseconds (about ±292 years).
public struct ExpressionDuration: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// The length in nanoseconds.
    public let nanoseconds: Int64

    /// Creates a duration of `nanoseconds`.
    public init(nanoseconds: Int64) {
        self.nanoseconds = nanoseconds
    }

    /// CEL's text form: seconds with the fraction digits needed and an `s` suffix
    /// (`5400s`, `1.5s`, `-0.000000001s`).
    public var celText: String {
        let negative = nanoseconds < 0
        let magnitude = nanoseconds.magnitude
        let whole = magnitude / 1_000_000_000
        var fraction = magnitude % 1_000_000_000
        var text = (negative ? "-" : "") + String(whole)
        if fraction != 0 {
            var digits = 9
            while fraction % 10 == 0 {
                fraction /= 10
                digits -= 1
            }
            let fractionText = String(fraction)
            text += "." + String(repeating: "0", count: digits - fractionText.count) + fractionText
        }
        return text + "s"
    }

    /// The `celText`.
    public var description: String { celText }

    /// Orders by length.
    public static func < (lhs: ExpressionDuration, rhs: ExpressionDuration) -> Bool {
        lhs.nanoseconds < rhs.nanoseconds
    }
}

// MARK: - Literals

extension ExpressionValue: ExpressibleByNilLiteral, ExpressibleByBooleanLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByFloatLiteral, ExpressibleByStringLiteral, ExpressibleByArrayLiteral
{
    /// `nil` is `.null`.
    public init(nilLiteral: ()) { self = .null }

    /// A boolean literal is `.bool`.
    public init(booleanLiteral value: Bool) { self = .bool(value) }

    /// An integer literal is `.int`.
    public init(integerLiteral value: Int64) { self = .int(value) }

    /// A floating-point literal is `.double`.
    public init(floatLiteral value: Double) { self = .double(value) }

    /// A string literal is `.string`.
    public init(stringLiteral value: String) { self = .string(value) }

    /// An array literal is a `.list` of its elements.
    public init(arrayLiteral elements: ExpressionValue...) { self = .list(ExpressionList(elements)) }
}
