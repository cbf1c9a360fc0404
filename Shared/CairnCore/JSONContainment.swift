extension JSONValue {
    /// True when this value contains `other` as Postgres's `jsonb @>` decides it, so that an
    /// in-memory store filters as the Postgres one does:
    ///
    /// - an object contains an object when each of the other's keys is present (the same
    ///   bytes) and its value contains the other's value;
    /// - an array contains an array when each of the other's elements is contained in some
    ///   element (order and repetition do not matter: `[1,2,1] @> [2,2]`);
    /// - scalars contain an equal scalar: strings byte for byte, numbers by exact decimal
    ///   value (`1.0 @> 1`), and never a value of another type;
    /// - and, at the top level only, an array contains a scalar equal to one of its scalar
    ///   elements (`["a","b"] @> "a"`, Postgres's one exception); `{"a":["x"]} @> {"a":"x"}`
    ///   is false.
    public func contains(_ other: JSONValue) -> Bool {
        if case .array(let elements) = self, !other.isContainer {
            return elements.contains { !$0.isContainer && Self.scalarsEqual($0, other) }
        }
        return Self.contains(self, other)
    }

    private static func contains(_ container: JSONValue, _ contained: JSONValue) -> Bool {
        switch (container, contained) {
        case (.object(let object), .object(let wanted)):
            return wanted.allSatisfy { member in
                object.contains { $0.key.utf8.elementsEqual(member.key.utf8) && contains($0.value, member.value) }
            }
        case (.array(let elements), .array(let wanted)):
            return wanted.allSatisfy { element in elements.contains { contains($0, element) } }
        case (.object, _), (.array, _), (_, .object), (_, .array):
            return false
        default:
            return scalarsEqual(container, contained)
        }
    }

    private static func scalarsEqual(_ lhs: JSONValue, _ rhs: JSONValue) -> Bool {
        if case .string(let a) = lhs, case .string(let b) = rhs { return a.utf8.elementsEqual(b.utf8) }
        // Null, bools, and numbers by exact decimal value (`JSONNumber`'s equality).
        return lhs == rhs
    }

    private var isContainer: Bool {
        switch self {
        case .object, .array: true
        default: false
        }
    }
}
