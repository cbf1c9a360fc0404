/// A failure inside an operator or function, before the evaluator attaches the position.
struct ExpressionFailure: Error {
    let code: ExpressionError.Code
    let reason: String

    init(_ code: ExpressionError.Code, _ reason: String) {
        self.code = code
        self.reason = reason
    }

    static func mismatch(_ operation: String, _ values: ExpressionValue...) -> ExpressionFailure {
        let types = values.map(\.typeName).joined(separator: " and ")
        return ExpressionFailure(.typeMismatch, "\(operation) is not defined for \(types)")
    }
}

/// The operators of the language: equality, ordering, arithmetic, membership and truthiness,
/// with Inngest's loosening (mixed numbers, string concatenation, null as a zero value).
enum ExpressionSemantics {
    // MARK: Equality

    /// CEL's heterogeneous equality: numbers compare by value across int, uint and double;
    /// lists element-wise; maps by key set and values; strings byte-wise; values of different
    /// types are unequal (never an error). NaN equals nothing.
    static func equals(_ lhs: ExpressionValue, _ rhs: ExpressionValue) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null): return true
        case (.bool(let a), .bool(let b)): return a == b
        case (.string(let a), .string(let b)): return ExpressionText.bytesEqual(a, b)
        case (.bytes(let a), .bytes(let b)): return a == b
        case (.timestamp(let a), .timestamp(let b)): return a == b
        case (.duration(let a), .duration(let b)): return a == b
        case (.list(let a), .list(let b)):
            return a.count == b.count && zip(a, b).allSatisfy { equals($0, $1) }
        case (.map(let a), .map(let b)):
            guard a.count == b.count else { return false }
            return a.allSatisfy { entry in b[entry.key].map { equals($0, entry.value) } ?? false }
        default:
            if let order = numericOrder(lhs, rhs) { return order == 0 }
            return false
        }
    }

    /// Map key equality: like `equals`, restricted to the key types.
    static func keysEqual(_ lhs: ExpressionValue, _ rhs: ExpressionValue) -> Bool {
        equals(lhs, rhs)
    }

    // MARK: Ordering

    /// Orders two numbers of any numeric types exactly; nil when either is not a number or a
    /// NaN is involved.
    static func numericOrder(_ lhs: ExpressionValue, _ rhs: ExpressionValue) -> Int? {
        switch (lhs, rhs) {
        case (.int(let a), .int(let b)): return a < b ? -1 : a > b ? 1 : 0
        case (.uint(let a), .uint(let b)): return a < b ? -1 : a > b ? 1 : 0
        case (.double(let a), .double(let b)):
            if a.isNaN || b.isNaN { return nil }
            return a < b ? -1 : a > b ? 1 : 0
        case (.int(let a), .uint(let b)):
            if a < 0 { return -1 }
            let ua = UInt64(a)
            return ua < b ? -1 : ua > b ? 1 : 0
        case (.uint, .int): return numericOrder(rhs, lhs).map { -$0 }
        case (.int(let a), .double(let b)): return compareExact(integer: a, double: b)
        case (.double, .int): return numericOrder(rhs, lhs).map { -$0 }
        case (.uint(let a), .double(let b)):
            if b.isNaN { return nil }
            if b < 0 { return 1 }
            if b >= 18_446_744_073_709_551_616.0 { return -1 }
            let truncated = UInt64(b)
            if a != truncated { return a < truncated ? -1 : 1 }
            return Double(truncated) < b ? -1 : 0
        case (.double, .uint): return numericOrder(rhs, lhs).map { -$0 }
        default: return nil
        }
    }

    private static func compareExact(integer: Int64, double: Double) -> Int? {
        if double.isNaN { return nil }
        if double < -9_223_372_036_854_775_808.0 { return 1 }
        if double >= 9_223_372_036_854_775_808.0 { return -1 }
        let truncated = Int64(double)  // in range here
        if integer != truncated { return integer < truncated ? -1 : 1 }
        let fraction = double - Double(truncated)
        return fraction > 0 ? -1 : fraction < 0 ? 1 : 0
    }

    /// Orders two values for `< <= > >=`; nil when unordered (NaN).
    ///
    /// Numbers compare across types; strings, bytes, bools (false < true), timestamps and
    /// durations within their type. As in Inngest, null against an int, uint, double or string
    /// compares as that type's zero value (`null < 1`, `null < 'a'`), and null against null is
    /// equal. Other pairs are a type mismatch.
    static func order(_ lhs: ExpressionValue, _ rhs: ExpressionValue, _ op: String) throws(ExpressionFailure) -> Int? {
        switch (lhs, rhs) {
        case (.string(let a), .string(let b)): return ExpressionText.compare(a, b)
        case (.bytes(let a), .bytes(let b)):
            return a.lexicographicallyPrecedes(b) ? -1 : a == b ? 0 : 1
        case (.bool(let a), .bool(let b)): return a == b ? 0 : (!a ? -1 : 1)
        case (.timestamp(let a), .timestamp(let b)): return a < b ? -1 : a == b ? 0 : 1
        case (.duration(let a), .duration(let b)): return a < b ? -1 : a == b ? 0 : 1
        case (.null, .null): return 0
        case (.null, _):
            guard let zero = zeroValue(like: rhs) else { throw .mismatch("'\(op)'", lhs, rhs) }
            return try order(zero, rhs, op)
        case (_, .null):
            guard let zero = zeroValue(like: lhs) else { throw .mismatch("'\(op)'", lhs, rhs) }
            return try order(lhs, zero, op)
        default:
            if isNumber(lhs), isNumber(rhs) { return numericOrder(lhs, rhs) }
            throw .mismatch("'\(op)'", lhs, rhs)
        }
    }

    private static func zeroValue(like value: ExpressionValue) -> ExpressionValue? {
        switch value {
        case .int: .int(0)
        case .uint: .uint(0)
        case .double: .double(0)
        case .string: .string("")
        default: nil
        }
    }

    static func isNumber(_ value: ExpressionValue) -> Bool {
        switch value {
        case .int, .uint, .double: true
        default: false
        }
    }

    // MARK: Arithmetic

    /// `+`: numbers (mixed int and double give double; overflow is an error), string
    /// concatenation (a string and any other non-null value concatenate their texts, as
    /// Inngest does), list and bytes concatenation, timestamp ± duration, duration + duration.
    /// A null operand yields the other operand (a missing field adds nothing).
    static func add(_ lhs: ExpressionValue, _ rhs: ExpressionValue) throws(ExpressionFailure) -> ExpressionValue {
        switch (lhs, rhs) {
        case (.null, _): return rhs
        case (_, .null): return lhs
        case (.string(let a), .string(let b)): return .string(a + b)
        case (.string(let a), _): return .string(a + text(rhs))
        case (_, .string(let b)): return .string(text(lhs) + b)
        case (.list(let a), .list(let b)): return .list(ExpressionList(a.elements + b.elements))
        case (.bytes(let a), .bytes(let b)): return .bytes(a + b)
        case (.timestamp(let t), .duration(let d)), (.duration(let d), .timestamp(let t)):
            return .timestamp(try shift(t, by: d.nanoseconds))
        case (.duration(let a), .duration(let b)):
            let (sum, overflow) = a.nanoseconds.addingReportingOverflow(b.nanoseconds)
            if overflow { throw ExpressionFailure(.outOfRange, "duration sum is out of range") }
            return .duration(ExpressionDuration(nanoseconds: sum))
        default:
            return try arithmetic(.add, lhs, rhs)
        }
    }

    /// `-`: numbers, timestamp − duration, timestamp − timestamp (a duration),
    /// duration − duration.
    static func subtract(_ lhs: ExpressionValue, _ rhs: ExpressionValue) throws(ExpressionFailure) -> ExpressionValue {
        switch (lhs, rhs) {
        case (.timestamp(let t), .duration(let d)):
            guard d.nanoseconds != .min else { throw ExpressionFailure(.outOfRange, "timestamp is out of range") }
            return .timestamp(try shift(t, by: -d.nanoseconds))
        case (.timestamp(let a), .timestamp(let b)):
            let (seconds, o1) = a.seconds.subtractingReportingOverflow(b.seconds)
            let (scaled, o2) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
            let (total, o3) = scaled.addingReportingOverflow(Int64(a.nanoseconds) - Int64(b.nanoseconds))
            if o1 || o2 || o3 { throw ExpressionFailure(.outOfRange, "timestamp difference is out of the duration range") }
            return .duration(ExpressionDuration(nanoseconds: total))
        case (.duration(let a), .duration(let b)):
            let (difference, overflow) = a.nanoseconds.subtractingReportingOverflow(b.nanoseconds)
            if overflow { throw ExpressionFailure(.outOfRange, "duration difference is out of range") }
            return .duration(ExpressionDuration(nanoseconds: difference))
        default:
            return try arithmetic(.subtract, lhs, rhs)
        }
    }

    static func shift(_ timestamp: ExpressionTimestamp, by nanoseconds: Int64) throws(ExpressionFailure) -> ExpressionTimestamp {
        let (total, overflow) = Int64(timestamp.nanoseconds).addingReportingOverflow(nanoseconds)
        guard !overflow, let result = ExpressionTimestamp(seconds: timestamp.seconds, nanoseconds: total) else {
            throw ExpressionFailure(.outOfRange, "timestamp is out of range (years 1 to 9999)")
        }
        return result
    }

    /// `+ - * / %` on numbers. Same-type operands keep their type; int with uint works in int
    /// when the uint fits; int or uint with double works in double. Integer overflow and
    /// integer division or remainder by zero are errors; double division by zero gives ±Inf
    /// or NaN as IEEE does. `%` on doubles is a type mismatch, as in CEL.
    static func arithmetic(
        _ op: ExpressionBinaryOperator, _ lhs: ExpressionValue, _ rhs: ExpressionValue
    ) throws(ExpressionFailure) -> ExpressionValue {
        switch (lhs, rhs) {
        case (.int(let a), .int(let b)): return .int(try integer(op, a, b))
        case (.uint(let a), .uint(let b)): return .uint(try unsigned(op, a, b))
        case (.int(let a), .uint(let b)):
            guard let b = Int64(exactly: b) else { throw overflow(op) }
            return .int(try integer(op, a, b))
        case (.uint(let a), .int(let b)):
            guard let a = Int64(exactly: a) else { throw overflow(op) }
            return .int(try integer(op, a, b))
        default:
            guard let a = double(lhs), let b = double(rhs), op != .remainder else {
                throw .mismatch("'\(op.rawValue)'", lhs, rhs)
            }
            switch op {
            case .add: return .double(a + b)
            case .subtract: return .double(a - b)
            case .multiply: return .double(a * b)
            default: return .double(a / b)
            }
        }
    }

    private static func double(_ value: ExpressionValue) -> Double? {
        switch value {
        case .int(let v): Double(v)
        case .uint(let v): Double(v)
        case .double(let v): v
        default: nil
        }
    }

    private static func overflow(_ op: ExpressionBinaryOperator) -> ExpressionFailure {
        ExpressionFailure(.integerOverflow, "integer overflow in '\(op.rawValue)'")
    }

    private static func integer(_ op: ExpressionBinaryOperator, _ a: Int64, _ b: Int64) throws(ExpressionFailure) -> Int64 {
        let result: (partialValue: Int64, overflow: Bool)
        switch op {
        case .add: result = a.addingReportingOverflow(b)
        case .subtract: result = a.subtractingReportingOverflow(b)
        case .multiply: result = a.multipliedReportingOverflow(by: b)
        case .divide:
            if b == 0 { throw ExpressionFailure(.divisionByZero, "division by zero in '/'") }
            result = a.dividedReportingOverflow(by: b)
        default:
            if b == 0 { throw ExpressionFailure(.divisionByZero, "division by zero in '%'") }
            result = a.remainderReportingOverflow(dividingBy: b)
        }
        if result.overflow { throw overflow(op) }
        return result.partialValue
    }

    private static func unsigned(_ op: ExpressionBinaryOperator, _ a: UInt64, _ b: UInt64) throws(ExpressionFailure) -> UInt64 {
        let result: (partialValue: UInt64, overflow: Bool)
        switch op {
        case .add: result = a.addingReportingOverflow(b)
        case .subtract: result = a.subtractingReportingOverflow(b)
        case .multiply: result = a.multipliedReportingOverflow(by: b)
        case .divide:
            if b == 0 { throw ExpressionFailure(.divisionByZero, "division by zero in '/'") }
            result = a.dividedReportingOverflow(by: b)
        default:
            if b == 0 { throw ExpressionFailure(.divisionByZero, "division by zero in '%'") }
            result = a.remainderReportingOverflow(dividingBy: b)
        }
        if result.overflow { throw overflow(op) }
        return result.partialValue
    }

    /// Unary minus on int (overflow at Int64.min), double and duration.
    static func negate(_ value: ExpressionValue) throws(ExpressionFailure) -> ExpressionValue {
        switch value {
        case .int(let v):
            if v == .min { throw ExpressionFailure(.integerOverflow, "integer overflow in unary '-'") }
            return .int(-v)
        case .double(let v): return .double(-v)
        case .duration(let d):
            if d.nanoseconds == .min { throw ExpressionFailure(.outOfRange, "duration is out of range") }
            return .duration(ExpressionDuration(nanoseconds: -d.nanoseconds))
        default: throw .mismatch("unary '-'", value)
        }
    }

    // MARK: Membership

    /// `x in list` (any element equal), `key in map` (key present); `x in null` is false.
    static func contains(_ element: ExpressionValue, in collection: ExpressionValue) throws(ExpressionFailure) -> Bool {
        switch collection {
        case .list(let list): return list.contains { equals($0, element) }
        case .map(let map): return map[element] != nil
        case .null: return false
        default: throw .mismatch("'in'", element, collection)
        }
    }

    // MARK: Truthiness and text

    /// JavaScript-like truthiness, used when `&&` or `||` meets a non-bool operand:
    /// null, false, "", 0, 0u, 0.0 and NaN are falsy; everything else is truthy.
    static func isTruthy(_ value: ExpressionValue) -> Bool {
        switch value {
        case .null: false
        case .bool(let v): v
        case .string(let v): !v.isEmpty
        case .int(let v): v != 0
        case .uint(let v): v != 0
        case .double(let v): v != 0 && !v.isNaN
        default: true
        }
    }

    /// The text a value contributes to string concatenation and `string()`: ints in decimal,
    /// doubles as `string()` formats them, bools as `true`/`false`, bytes decoded as UTF-8,
    /// timestamps in RFC 3339, durations in seconds form, lists and maps as JSON.
    static func text(_ value: ExpressionValue) -> String {
        switch value {
        case .string(let v): v
        case .bytes(let v): String(decoding: v, as: UTF8.self)
        default: value.canonicalKey
        }
    }
}
