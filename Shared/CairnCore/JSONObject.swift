/// A JSON object: members in their original order, keys unique.
///
/// Invariant: no two members share a key. Every way of building an object keeps it — when a
/// key repeats, the member stays at the position where the key first appeared and takes the
/// value given last (what JavaScript's `JSON.parse` and Python's `json` do).
///
/// Iteration and serialization follow member order. Equality and hashing ignore order: two
/// objects are equal when they have the same keys with equal values.
///
/// Lookups scan the members linearly, which is the fast choice for the small objects events
/// carry; building from many members uses a temporary index, so it stays linear.
public struct JSONObject: Sendable, Hashable, RandomAccessCollection, ExpressibleByDictionaryLiteral {
    /// One member: a key and its value.
    public typealias Element = (key: String, value: JSONValue)

    /// The members in order; keys are unique.
    public private(set) var members: [Element]

    /// Creates an empty object.
    public init() {
        self.members = []
    }

    /// Creates an object from members in order; a repeated key keeps its first position and
    /// its last value.
    public init(members: [Element]) {
        self.members = []
        self.members.reserveCapacity(members.count)
        var index: [String: Int] = [:]
        let useIndex = members.count > JSONObject.linearScanLimit
        for member in members {
            if useIndex {
                if let position = index[member.key] {
                    self.members[position].value = member.value
                } else {
                    index[member.key] = self.members.count
                    self.members.append(member)
                }
            } else if let position = self.members.firstIndex(where: { $0.key == member.key }) {
                self.members[position].value = member.value
            } else {
                self.members.append(member)
            }
        }
    }

    /// Wraps members the caller has already made unique.
    init(uniqueMembers: [Element]) {
        self.members = uniqueMembers
    }

    /// Creates an object from a literal in source order; a repeated key keeps its first
    /// position and its last value (unlike `Dictionary`, this does not trap).
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self.init(members: elements.map { (key: $0.0, value: $0.1) })
    }

    /// Above this many members, bulk operations build a hash index instead of scanning.
    static let linearScanLimit = 16

    // MARK: Collection

    /// The position of the first member.
    public var startIndex: Int { members.startIndex }
    /// One past the position of the last member.
    public var endIndex: Int { members.endIndex }
    /// The member at `position`; traps when out of bounds.
    public subscript(position: Int) -> Element { members[position] }

    /// The keys in member order.
    public var keys: [String] { members.map(\.key) }

    // MARK: Access by key

    /// The value for `key`, or nil when absent. Setting nil removes the member; setting a
    /// value replaces it in place or appends a new member at the end.
    public subscript(key: String) -> JSONValue? {
        get {
            members.first { $0.key == key }?.value
        }
        set {
            if let newValue {
                setValue(newValue, forKey: key)
            } else {
                removeValue(forKey: key)
            }
        }
    }

    /// Sets the value for `key`: replaces it in place if the key exists, else appends it.
    public mutating func setValue(_ value: JSONValue, forKey key: String) {
        if let position = members.firstIndex(where: { $0.key == key }) {
            members[position].value = value
        } else {
            members.append((key: key, value: value))
        }
    }

    /// Removes the member for `key`, keeping the order of the others; returns its value, or nil
    /// when the key was absent.
    @discardableResult
    public mutating func removeValue(forKey key: String) -> JSONValue? {
        guard let position = members.firstIndex(where: { $0.key == key }) else { return nil }
        return members.remove(at: position).value
    }

    // MARK: Equality

    /// True when both objects have the same keys with equal values, in any order.
    public static func == (lhs: JSONObject, rhs: JSONObject) -> Bool {
        guard lhs.members.count == rhs.members.count else { return false }
        if lhs.members.count > linearScanLimit {
            var right: [String: JSONValue] = [:]
            right.reserveCapacity(rhs.members.count)
            for member in rhs.members { right[member.key] = member.value }
            return lhs.members.allSatisfy { right[$0.key] == $0.value }
        }
        return lhs.members.allSatisfy { member in rhs[member.key] == member.value }
    }

    /// Hashes the members independently of their order, consistent with `==`.
    public func hash(into hasher: inout Hasher) {
        var combined = 0
        for member in members {
            var memberHasher = Hasher()
            memberHasher.combine(member.key)
            memberHasher.combine(member.value)
            combined &+= memberHasher.finalize()
        }
        hasher.combine(members.count)
        hasher.combine(combined)
    }
}
