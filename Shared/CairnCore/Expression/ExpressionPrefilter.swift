extension Expression {
    /// JSON that the trigger event contains (as Postgres `jsonb @>` decides it, and
    /// `JSONValue.contains`) whenever this expression is true for it; nil when the expression
    /// gives nothing to filter on. A store can narrow the runs it reads with it before the
    /// expression is evaluated on each: it may let through events the expression rejects, never
    /// the other way round.
    ///
    /// `event.data.user_id == "u-42" && event.data.vip == true && output.total > 100` gives
    /// `{"data":{"user_id":"u-42","vip":true}}`. What is taken (see `prefilter(_:)`):
    /// equalities of a field path with a string or bool literal that are conjuncts of the
    /// top-level `&&` chain.
    public var eventPrefilter: JSONValue? { prefilter(.event) }

    /// Like `eventPrefilter`, for the run's `output`.
    public var outputPrefilter: JSONValue? { prefilter(.output) }

    /// The conjuncts of the top-level `&&` chain of the form `path == literal` (either way
    /// round) over `root`, merged into one JSON value (`{k1: {k2: literal}}`).
    ///
    /// Sound because `&&` is true only when each operand is truthy (an error or a falsy side
    /// decides it otherwise), and `path == literal` is true only when each key of the path is
    /// a member of an object and the value there equals the literal.
    ///
    /// - The path is `event.a.b`, also written with `.` on a parenthesized operand or with
    ///   `["key"]` for an ASCII key.
    /// - Only string literals without a NUL character (which jsonb cannot hold) and bools are
    ///   taken: the language compares strings byte for byte, as jsonb does, and a bool equals
    ///   only the same bool. Numbers are not taken: a JSON number that is not an integer in
    ///   Int64's range is read as the nearest double, so `== 0.3` is true for
    ///   `0.30000000000000001` and `== 3` for `3.0000000000000001`, which jsonb's exact
    ///   comparison would reject. `null` is not taken either (a missing field equals it).
    /// - Anything under `||`, `!`, `?:`, a macro or a call, and every other comparison, gives
    ///   nothing. A conjunct that contradicts one already taken (`a == "x" && a == "y"`, or
    ///   `a == "x" && a.b == "y"`) is left out, which only makes the filter weaker.
    func prefilter(_ root: ExpressionRoot) -> JSONValue? {
        var merged: JSONValue?
        // The `&&` chain, left to right, without recursion (a chain can be long).
        var pending = [self.root]
        while let node = pending.popLast() {
            if case .and(let lhs, let rhs) = node {
                pending.append(rhs)
                pending.append(lhs)
                continue
            }
            guard case .binary(.equal, let lhs, let rhs, _) = node else { continue }
            for (side, other) in [(lhs, rhs), (rhs, lhs)] {
                guard let (pathRoot, keys) = Self.fieldPath(side), pathRoot == root,
                    case .constant(let constant) = other, let leaf = Self.prefilterLeaf(constant)
                else { continue }
                let value = keys.reversed().reduce(leaf) { inner, key in .object(JSONObject(members: [(key: key, value: inner)])) }
                merged = merged.map { Self.merged($0, value) ?? $0 } ?? value
                break
            }
        }
        return merged
    }

    /// The variable and keys a field chain reads; nil for anything else.
    private static func fieldPath(_ node: ExpressionNode) -> (ExpressionRoot, [String])? {
        switch node {
        case .path(let root, let keys):
            return (root, keys)
        case .select(let operand, let field):
            return fieldPath(operand).map { ($0.0, $0.1 + [field]) }
        case .index(let operand, .constant(.string(let key)), _) where key.utf8.allSatisfy({ $0 < 0x80 && $0 != 0 }):
            // A map indexed by a string reads that member (null when absent); anything else
            // indexed by a string is null or an error, never equal to a literal.
            return fieldPath(operand).map { ($0.0, $0.1 + [key]) }
        default:
            return nil
        }
    }

    /// The literal as JSON, when it is one this filter may take.
    private static func prefilterLeaf(_ value: ExpressionValue) -> JSONValue? {
        switch value {
        case .string(let text) where !text.utf8.contains(0): .string(text)
        case .bool(let flag): .bool(flag)
        default: Optional.none
        }
    }

    /// `lhs` and `rhs` as one containment condition; nil when they contradict each other.
    private static func merged(_ lhs: JSONValue, _ rhs: JSONValue) -> JSONValue? {
        guard case .object(var object) = lhs, case .object(let more) = rhs else {
            // Not `lhs == rhs ? lhs : nil`: that `nil` would be JSON's null.
            if lhs == rhs { return lhs }
            return nil
        }
        for (key, value) in more {
            if let existing = object[key] {
                guard let combined = merged(existing, value) else { return nil }
                object[key] = combined
            } else {
                object[key] = value
            }
        }
        return .object(object)
    }
}
