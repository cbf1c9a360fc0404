/// Any JSON value, held so that parsing and serializing it loses nothing.
///
/// - Numbers keep their literal text (`JSONNumber`): big integers, `-0` and `1e400` survive.
/// - Objects keep member order (`JSONObject`); a repeated key keeps its first position and its
///   last value.
/// - Strings are Unicode text. Escaped surrogate pairs (`\ud83d\ude00`) become the real
///   scalar; a lone surrogate escape is rejected by the parser because a Swift `String` cannot
///   hold it.
///
/// `JSONValue(parsing:)` and `serialized()` are the wire format; they are exact inverses for
/// compact input written with minimal escaping (see `serialized()`). Equality is semantic:
/// objects compare without regard to member order and numbers by exact decimal value.
public enum JSONValue: Sendable, Hashable {
    /// `null`.
    case null
    /// `true` or `false`.
    case bool(Bool)
    /// A number, as its literal text.
    case number(JSONNumber)
    /// A string.
    case string(String)
    /// An array.
    case array([JSONValue])
    /// An object with ordered, unique keys.
    case object(JSONObject)
}

// MARK: - Accessors

extension JSONValue {
    /// True for `null`.
    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }

    /// The boolean, or nil when this is not a boolean.
    public var boolValue: Bool? {
        if case .bool(let value) = self { return value }
        return nil
    }

    /// The number, or nil when this is not a number.
    public var numberValue: JSONNumber? {
        if case .number(let value) = self { return value }
        return nil
    }

    /// The number as `Int64` when it is an integer literal in range (see
    /// `JSONNumber.int64Value`); nil otherwise, including for non-numbers.
    public var int64Value: Int64? {
        numberValue?.int64Value
    }

    /// The number as the nearest `Double` (see `JSONNumber.doubleValue`); nil for non-numbers.
    public var doubleValue: Double? {
        numberValue?.doubleValue
    }

    /// The string, or nil when this is not a string.
    public var stringValue: String? {
        if case .string(let value) = self { return value }
        return nil
    }

    /// The elements, or nil when this is not an array.
    public var arrayValue: [JSONValue]? {
        if case .array(let value) = self { return value }
        return nil
    }

    /// The object with its ordered members, or nil when this is not an object.
    public var objectValue: JSONObject? {
        if case .object(let value) = self { return value }
        return nil
    }

    /// The member value for `key` when this is an object that has it; nil otherwise.
    public subscript(key: String) -> JSONValue? {
        objectValue?[key]
    }

    /// The element at `index` when this is an array and the index is in bounds; nil otherwise.
    public subscript(index: Int) -> JSONValue? {
        guard case .array(let elements) = self, elements.indices.contains(index) else { return nil }
        return elements[index]
    }

    /// Sets the member `key` of this object (replacing in place, else appending).
    ///
    /// - Precondition: `self` is an object; calling this on any other value is a programmer
    ///   error and traps.
    public mutating func setValue(_ value: JSONValue, forKey key: String) {
        guard case .object(var object) = self else {
            preconditionFailure("JSONValue.setValue(_:forKey:) called on a non-object")
        }
        self = .null  // release the payload so the object is mutated without a copy
        object.setValue(value, forKey: key)
        self = .object(object)
    }

    /// Removes the member `key` from this object and returns its value; returns nil and
    /// changes nothing when the key is absent or `self` is not an object.
    @discardableResult
    public mutating func removeValue(forKey key: String) -> JSONValue? {
        guard case .object(var object) = self else { return nil }
        self = .null  // release the payload so the object is mutated without a copy
        let removed = object.removeValue(forKey: key)
        self = .object(object)
        return removed
    }
}

// MARK: - Literals

extension JSONValue: ExpressibleByNilLiteral, ExpressibleByBooleanLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByFloatLiteral, ExpressibleByStringLiteral, ExpressibleByArrayLiteral,
    ExpressibleByDictionaryLiteral
{
    /// `nil` is JSON `null`.
    public init(nilLiteral: ()) {
        self = .null
    }

    /// A boolean literal.
    public init(booleanLiteral value: Bool) {
        self = .bool(value)
    }

    /// An integer literal, written in decimal.
    public init(integerLiteral value: Int64) {
        self = .number(JSONNumber(value))
    }

    /// A floating-point literal, written as Swift's shortest round-trip text.
    public init(floatLiteral value: Double) {
        // A float literal is always finite, so the conversion cannot fail.
        self = .number(JSONNumber(value)!)
    }

    /// A string literal.
    public init(stringLiteral value: String) {
        self = .string(value)
    }

    /// An array literal.
    public init(arrayLiteral elements: JSONValue...) {
        self = .array(elements)
    }

    /// An object literal in source order; a repeated key keeps its first position and last
    /// value.
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self = .object(JSONObject(members: elements.map { (key: $0.0, value: $0.1) }))
    }
}

extension JSONValue: CustomStringConvertible {
    /// The compact JSON text (`jsonString`).
    public var description: String { jsonString }
}

extension JSONObject: CustomStringConvertible {
    /// The compact JSON text of the object.
    public var description: String { JSONValue.object(self).jsonString }
}
