/// A JSON number kept as its exact literal text.
///
/// The literal always matches the JSON grammar (`-? (0 | [1-9][0-9]*) (.[0-9]+)? ([eE][+-]?[0-9]+)?`),
/// so integers wider than 64 bits, `-0` and values like `1e400` survive a parse–serialize round
/// trip unchanged. Conversions to Swift numbers are explicit and may lose information.
///
/// Equality and hashing compare the exact decimal value, not the text: `1`, `1.0`, `10e-1`
/// and `0.1e1` are equal, and `0` equals `-0`. No precision is lost in the comparison.
public struct JSONNumber: Sendable, Hashable, CustomStringConvertible {
    /// The literal text, valid JSON number grammar, ASCII only.
    public let literal: String

    /// Wraps text already checked against the number grammar.
    init(validatedLiteral: String) {
        self.literal = validatedLiteral
    }

    /// Wraps `literal` if it is exactly one JSON number (no whitespace, no `+`, no leading
    /// zeros, no `NaN`/`Infinity`); nil otherwise.
    public init?(literal: String) {
        var text = literal
        let valid = text.withUTF8 { buffer -> Bool in
            guard case .success(let end) = JSONNumber.scan(buffer, from: 0), end == buffer.count else {
                return false
            }
            return true
        }
        guard valid else { return nil }
        self.literal = text
    }

    /// The decimal form of an integer.
    public init(_ value: Int64) {
        self.literal = String(value)
    }

    /// The decimal form of an integer.
    public init(_ value: Int) {
        self.literal = String(value)
    }

    /// The decimal form of an unsigned integer.
    public init(_ value: UInt64) {
        self.literal = String(value)
    }

    /// The shortest text that reads back as exactly `value` (Swift's `description`, e.g. `0.1`,
    /// `1e+300`, `5.0`, `-0.0`); nil for NaN and infinities, which JSON cannot express.
    public init?(_ value: Double) {
        guard value.isFinite else { return nil }
        self.literal = value.description
    }

    /// The literal text.
    public var description: String { literal }

    /// True when the literal has no fraction and no exponent (`12`, `-0`), whatever its size.
    /// `1.0` and `1e3` are not integers in this sense.
    public var isInteger: Bool {
        !literal.utf8.contains { $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "e") || $0 == UInt8(ascii: "E") }
    }

    /// The value as `Int64` when the literal is an integer (see `isInteger`) in Int64's range;
    /// nil otherwise. `-0` gives 0.
    public var int64Value: Int64? {
        guard isInteger else { return nil }
        return Int64(literal)
    }

    /// The nearest `Double`. Literals beyond Double's range give ±infinity; long integers and
    /// fractions are rounded to the nearest representable value.
    public var doubleValue: Double {
        Double(literal) ?? .nan
    }

    // MARK: Grammar

    /// Why a number literal failed the grammar, with the offset of the offending byte.
    enum ScanFailure: Error {
        case leadingZero(offset: Int)
        case expectedDigit(offset: Int, after: String)
    }

    /// Scans one number starting at `start`; returns the end index (exclusive) on success.
    ///
    /// The scan stops at the first byte that cannot continue the number; the caller decides
    /// whether what follows is acceptable.
    static func scan(_ buffer: UnsafeBufferPointer<UInt8>, from start: Int) -> Result<Int, ScanFailure> {
        var position = start
        let end = buffer.count
        @inline(__always) func isDigit(_ index: Int) -> Bool {
            index < end && buffer[index] >= UInt8(ascii: "0") && buffer[index] <= UInt8(ascii: "9")
        }
        if position < end, buffer[position] == UInt8(ascii: "-") {
            position += 1
            guard isDigit(position) else { return .failure(.expectedDigit(offset: position, after: "'-'")) }
        }
        guard isDigit(position) else { return .failure(.expectedDigit(offset: position, after: "number start")) }
        if buffer[position] == UInt8(ascii: "0") {
            position += 1
            if isDigit(position) { return .failure(.leadingZero(offset: position - 1)) }
        } else {
            while isDigit(position) { position += 1 }
        }
        if position < end, buffer[position] == UInt8(ascii: ".") {
            position += 1
            guard isDigit(position) else { return .failure(.expectedDigit(offset: position, after: "decimal point")) }
            while isDigit(position) { position += 1 }
        }
        if position < end, buffer[position] == UInt8(ascii: "e") || buffer[position] == UInt8(ascii: "E") {
            position += 1
            if position < end, buffer[position] == UInt8(ascii: "+") || buffer[position] == UInt8(ascii: "-") {
                position += 1
            }
            guard isDigit(position) else { return .failure(.expectedDigit(offset: position, after: "exponent")) }
            while isDigit(position) { position += 1 }
        }
        return .success(position)
    }

    // MARK: Exact value comparison

    /// The exact value as sign × digits × 10^exponent with no leading or trailing zeros in
    /// `digits`; zero is `(false, [], 0)`. Nil when the exponent does not fit in `Int`, in
    /// which case equality falls back to comparing literal text.
    private var canonical: (negative: Bool, digits: [UInt8], exponent: Int)? {
        var negative = false
        var digits: [UInt8] = []
        var fractionDigits = 0
        var exponent = 0
        var exponentNegative = false
        var part = 0 // 0 integer, 1 fraction, 2 exponent
        for byte in literal.utf8 {
            switch byte {
            case UInt8(ascii: "-"):
                if part == 2 { exponentNegative = true } else { negative = true }
            case UInt8(ascii: "+"):
                break
            case UInt8(ascii: "."):
                part = 1
            case UInt8(ascii: "e"), UInt8(ascii: "E"):
                part = 2
            default:
                let digit = byte - UInt8(ascii: "0")
                if part == 2 {
                    let (times10, overflow1) = exponent.multipliedReportingOverflow(by: 10)
                    let (sum, overflow2) = times10.addingReportingOverflow(Int(digit))
                    if overflow1 || overflow2 { return nil }
                    exponent = sum
                } else {
                    if digit != 0 || !digits.isEmpty { digits.append(digit) }
                    if part == 1 { fractionDigits += 1 }
                }
            }
        }
        if digits.isEmpty { return (false, [], 0) }
        var scale = exponentNegative ? -exponent : exponent
        let (shifted, overflow) = scale.subtractingReportingOverflow(fractionDigits)
        if overflow { return nil }
        scale = shifted
        while digits.last == 0 {
            digits.removeLast()
            scale += 1
        }
        return (negative, digits, scale)
    }

    /// True when both literals denote the same decimal value.
    public static func == (lhs: JSONNumber, rhs: JSONNumber) -> Bool {
        if lhs.literal == rhs.literal { return true }
        guard let left = lhs.canonical, let right = rhs.canonical else { return false }
        return left.negative == right.negative && left.exponent == right.exponent && left.digits == right.digits
    }

    /// Hashes the exact decimal value, consistent with `==`.
    public func hash(into hasher: inout Hasher) {
        if let value = canonical {
            hasher.combine(value.negative)
            hasher.combine(value.digits)
            hasher.combine(value.exponent)
        } else {
            hasher.combine(literal)
        }
    }
}
