/// A compiled expression in the CEL subset Cairn shares with Inngest (docs/protocol.md §9): trigger
/// `expression`, waitForEvent and cancel `if`, batch `if`, the key expressions of
/// concurrency, throttle, rate limit, idempotency, debounce, singleton and batching, and
/// `priority.run`.
///
/// Compile once per function version with `init(compiling:)`, then evaluate per event with
/// `evaluate(_:)`, `evaluateBool(_:)` or `evaluateInt(_:)`. Compiling resolves every name,
/// checks every function's argument count and compiles literal regular expressions, so
/// evaluation never re-parses. Evaluation reads only its `ExpressionActivation` (time
/// included), so it is deterministic, and it never traps: every failure is an
/// `ExpressionError` to record on the function.
///
/// The language, briefly: variables `event`, `async`, `vars`; literals (int, `1u`, double,
/// single-, double- and triple-quoted strings, `r'raw'`, `b'bytes'`, `null`, lists, maps);
/// `.field` and `[index]`; `== != < <= > >= in && || ! ?: + - * / %`; `has()`; `size()`;
/// `contains startsWith endsWith matches`; `int uint double string bool bytes dyn timestamp
/// duration`; macros `all exists exists_one map filter`; timestamp and duration accessors
/// (`getHours()` …); and Inngest's `lowercase uppercase b64decode json_parse date now
/// now_plus now_minus`.
///
/// Null and missing values (Inngest's rules): a missing field, a field of null and a field of
/// a non-map read as null; `has()` is false for them; `== null` is true for them; `<`-style
/// comparisons treat null as the other side's zero value; `+` with null yields the other
/// operand; `size(null)` is 0; `contains`/`startsWith`/`endsWith`/`matches` on null are false;
/// iterating null iterates nothing. `&&`/`||` over bools are CEL's, with error absorption
/// (`false && error` is false); over other values they return the deciding operand by
/// JavaScript truthiness, as Inngest does.
///
/// `Sendable`: a compiled expression is immutable and may be evaluated from many tasks at once.
public struct Expression: Sendable, CustomStringConvertible {
    /// The deepest expression tree accepted (parentheses, operators, calls, member chains on
    /// non-variables), so that compiling and evaluating hostile input cannot exhaust the stack.
    public static let maximumDepth = 100

    /// The source text as given.
    public let source: String
    let root: ExpressionNode
    let slotCount: Int

    /// Compiles `source`.
    ///
    /// - Throws: `ExpressionError` with a compile code (`code.isCompileError`, or
    ///   `.invalidRegex` for a bad literal pattern), the UTF-8 offset and a message such as
    ///   `expected ')' after arguments`.
    public init(compiling source: String) throws(ExpressionError) {
        var parser = try ExpressionParser(source: source)
        self.root = try parser.parseAll()
        self.slotCount = parser.slotCount
        self.source = source
    }

    /// The source text.
    public var description: String { source }

    /// Evaluates the expression against `activation`.
    ///
    /// - Throws: `ExpressionError` with an evaluation code and the position of the failing
    ///   sub-expression: division by zero, integer overflow, a type mismatch such as
    ///   `(1).contains('a')`, an invalid argument such as `int('x')`, a bad computed regex.
    public func evaluate(_ activation: ExpressionActivation) throws(ExpressionError) -> ExpressionValue {
        var evaluator = ExpressionEvaluator(source: source, activation: activation, slotCount: slotCount)
        return try evaluator.evaluate(root)
    }

    /// Evaluates a boolean context (trigger `expression`, waitForEvent/cancel/batch `if`).
    ///
    /// A bool is returned as is; null (e.g. a missing field) counts as false, as it does in
    /// Inngest.
    ///
    /// - Throws: `ExpressionError` for evaluation failures, and `.notBoolean` naming the type
    ///   when the result is any other value.
    public func evaluateBool(_ activation: ExpressionActivation) throws(ExpressionError) -> Bool {
        switch try evaluate(activation) {
        case .bool(let value): return value
        case .null: return false
        case let other:
            throw ExpressionError(
                code: .notBoolean, position: 0, in: source,
                reason: "expression must yield a bool, got \(other.typeName)")
        }
    }

    /// Evaluates an integer context (`priority.run`).
    ///
    /// An int is returned as is; a uint that fits and a double with no fraction are
    /// converted; null counts as 0.
    ///
    /// - Throws: `ExpressionError` for evaluation failures, and `.typeMismatch` naming the
    ///   type for anything else (including doubles with a fraction or out of range).
    public func evaluateInt(_ activation: ExpressionActivation) throws(ExpressionError) -> Int64 {
        let value = try evaluate(activation)
        switch value {
        case .int(let v): return v
        case .null: return 0
        case .uint(let v) where Int64(exactly: v) != nil: return Int64(v)
        case .double(let v) where ExpressionText.exactInt64(v) != nil: return Int64(v)
        default:
            throw ExpressionError(
                code: .typeMismatch, position: 0, in: source,
                reason: "expression must yield an int, got \(value.typeName) \(value.canonicalKey)")
        }
    }
}

/// The inputs of one evaluation: the variables and the current time.
///
/// Each variable is JSON; absent ones are null (and so are all their fields). Time is injected:
/// `now()`, `now_plus()` and `now_minus()` read `now`, never a clock.
public struct ExpressionActivation: Sendable {
    /// `event`: the triggering event (for waitForEvent and cancel `if`, the run's trigger event).
    public var event: JSONValue
    /// `async`: the incoming event a waitForEvent or cancel `if` is matched against.
    public var async: JSONValue
    /// `vars`: extra variables.
    public var vars: JSONValue
    /// `output`: a run's output, for searching runs (docs/dashboard.md); null elsewhere.
    public var output: JSONValue = .null
    /// The instant `now()` returns.
    public var now: ExpressionTimestamp

    /// Creates an activation; `nowMilliseconds` is the engine clock's reading in milliseconds
    /// since the Unix epoch.
    public init(event: JSONValue = .null, async: JSONValue = .null, vars: JSONValue = .null, nowMilliseconds: Int64) {
        self.event = event
        self.async = async
        self.vars = vars
        self.now = ExpressionTimestamp(milliseconds: nowMilliseconds)
    }

    /// Creates an activation with `now` as a timestamp.
    public init(event: JSONValue = .null, async: JSONValue = .null, vars: JSONValue = .null, now: ExpressionTimestamp) {
        self.event = event
        self.async = async
        self.vars = vars
        self.now = now
    }
}

// MARK: - Evaluation

/// Walks a compiled tree for one activation. Macro variables live in `locals`, indexed by
/// the slot the parser assigned.
struct ExpressionEvaluator {
    let source: String
    let activation: ExpressionActivation
    var locals: [ExpressionValue]

    init(source: String, activation: ExpressionActivation, slotCount: Int) {
        self.source = source
        self.activation = activation
        self.locals = Array(repeating: .null, count: slotCount)
    }

    private func fail(_ failure: ExpressionFailure, at position: Int) -> ExpressionError {
        ExpressionError(code: failure.code, position: position, in: source, reason: failure.reason)
    }

    private func read(_ root: ExpressionRoot, _ keys: [String]) -> ExpressionValue {
        var current: JSONValue
        switch root {
        case .event: current = activation.event
        case .async: current = activation.async
        case .vars: current = activation.vars
        case .output: current = activation.output
        }
        for key in keys {
            guard case .object(let object) = current, let member = object[key] else { return .null }
            current = member
        }
        return ExpressionValue(current)
    }

    mutating func evaluate(_ node: ExpressionNode) throws(ExpressionError) -> ExpressionValue {
        switch node {
        case .constant(let value):
            return value
        case .path(let root, let keys):
            return read(root, keys)
        case .local(let slot):
            return locals[slot]
        case .select(let operand, let field):
            if case .map(let map) = try evaluate(operand) { return map[field] ?? .null }
            return .null
        case .presence(let operand, let field, _):
            if case .map(let map) = try evaluate(operand) { return .bool(map[field] != nil) }
            return .bool(false)
        case .index(let operand, let key, let at):
            let container = try evaluate(operand)
            let keyValue = try evaluate(key)
            do {
                return try Self.index(container, keyValue)
            } catch {
                throw fail(error, at: at)
            }
        case .not(let operand, let at):
            switch try evaluate(operand) {
            case .bool(let value): return .bool(!value)
            case .null: return .bool(true)
            case let other: throw fail(.mismatch("'!'", other), at: at)
            }
        case .negate(let operand, let at):
            let value = try evaluate(operand)
            do {
                return try ExpressionSemantics.negate(value)
            } catch {
                throw fail(error, at: at)
            }
        case .binary(let op, let lhs, let rhs, let at):
            let left = try evaluate(lhs)
            let right = try evaluate(rhs)
            do {
                return try Self.binary(op, left, right)
            } catch {
                throw fail(error, at: at)
            }
        case .and(let lhs, let rhs):
            return try logical(lhs, rhs, isOr: false)
        case .or(let lhs, let rhs):
            return try logical(lhs, rhs, isOr: true)
        case .conditional(let condition, let whenTrue, let whenFalse, let at):
            switch try evaluate(condition) {
            case .bool(true): return try evaluate(whenTrue)
            case .bool(false), .null: return try evaluate(whenFalse)
            case let other:
                throw fail(ExpressionFailure(.notBoolean, "condition of '?:' must be a bool, got \(other.typeName)"), at: at)
            }
        case .list(let elements):
            var values: [ExpressionValue] = []
            values.reserveCapacity(elements.count)
            for element in elements { values.append(try evaluate(element)) }
            return .list(ExpressionList(values))
        case .map(let keys, let values, let at):
            var entries: [ExpressionMap.Element] = []
            entries.reserveCapacity(keys.count)
            for (keyNode, valueNode) in zip(keys, values) {
                let key = try evaluate(keyNode)
                switch key {
                case .string, .int, .uint, .bool: break
                default:
                    throw fail(ExpressionFailure(.typeMismatch, "map keys must be string, int, uint or bool, got \(key.typeName)"), at: at)
                }
                if entries.contains(where: { ExpressionSemantics.keysEqual($0.key, key) }) {
                    throw fail(ExpressionFailure(.duplicateKey, "map literal repeats the key \(key.canonicalKey)"), at: at)
                }
                entries.append((key, try evaluate(valueNode)))
            }
            return .map(ExpressionMap(uniqueEntries: entries))
        case .call(let function, let argumentNodes, let at):
            var arguments: [ExpressionValue] = []
            arguments.reserveCapacity(argumentNodes.count)
            for argument in argumentNodes { arguments.append(try evaluate(argument)) }
            do {
                return try ExpressionBuiltins.call(function, arguments, now: activation.now)
            } catch {
                throw fail(error, at: at)
            }
        case .matches(let operand, let regex, let at):
            switch try evaluate(operand) {
            case .string(let text): return .bool(regex.matches(text))
            case .null: return .bool(false)
            case let other: throw fail(.mismatch("matches()", other), at: at)
            }
        case .comprehension(let comprehension):
            return try comprehend(comprehension)
        }
    }

    static func index(_ container: ExpressionValue, _ key: ExpressionValue) throws(ExpressionFailure) -> ExpressionValue {
        switch container {
        case .list(let list):
            let position: Int64?
            switch key {
            case .int(let v): position = v
            case .uint(let v): position = Int64(exactly: v) ?? .max
            case .double(let v): position = ExpressionText.exactInt64(v)
            default: throw .mismatch("list index", key)
            }
            guard let position else {
                throw ExpressionFailure(.invalidArgument, "list index \(key.canonicalKey) is not a whole number")
            }
            guard position >= 0, position < list.count else { return .null }
            return list[Int(position)]
        case .map(let map):
            return map[key] ?? .null
        case .null:
            return .null
        default:
            throw .mismatch("'[]'", container)
        }
    }

    static func binary(
        _ op: ExpressionBinaryOperator, _ left: ExpressionValue, _ right: ExpressionValue
    ) throws(ExpressionFailure) -> ExpressionValue {
        switch op {
        case .equal: return .bool(ExpressionSemantics.equals(left, right))
        case .notEqual: return .bool(!ExpressionSemantics.equals(left, right))
        case .less: return .bool(try ExpressionSemantics.order(left, right, "<").map { $0 < 0 } ?? false)
        case .lessOrEqual: return .bool(try ExpressionSemantics.order(left, right, "<=").map { $0 <= 0 } ?? false)
        case .greater: return .bool(try ExpressionSemantics.order(left, right, ">").map { $0 > 0 } ?? false)
        case .greaterOrEqual: return .bool(try ExpressionSemantics.order(left, right, ">=").map { $0 >= 0 } ?? false)
        case .in: return .bool(try ExpressionSemantics.contains(left, in: right))
        case .add: return try ExpressionSemantics.add(left, right)
        case .subtract: return try ExpressionSemantics.subtract(left, right)
        case .multiply, .divide, .remainder: return try ExpressionSemantics.arithmetic(op, left, right)
        }
    }

    /// `&&` and `||`: the left operand decides when it is falsy (`&&`) or truthy (`||`);
    /// otherwise the right one does when it is falsy/truthy; otherwise an error of either
    /// side propagates, and failing that the right operand is the result. Over bools this is
    /// CEL's commutative, error-absorbing logic.
    private mutating func logical(_ lhs: ExpressionNode, _ rhs: ExpressionNode, isOr: Bool) throws(ExpressionError) -> ExpressionValue {
        var leftError: ExpressionError?
        do {
            let left = try evaluate(lhs)
            if ExpressionSemantics.isTruthy(left) == isOr { return left }
        } catch {
            leftError = error
        }
        let right: ExpressionValue
        do {
            right = try evaluate(rhs)
        } catch {
            throw leftError ?? error
        }
        if ExpressionSemantics.isTruthy(right) == isOr { return right }
        if let leftError { throw leftError }
        return right
    }

    private mutating func condition(_ node: ExpressionNode, _ comprehension: ExpressionComprehension) throws(ExpressionError) -> Bool {
        switch try evaluate(node) {
        case .bool(let value): return value
        case .null: return false
        case let other:
            throw fail(
                ExpressionFailure(.notBoolean, "predicate of \(comprehension.kind.rawValue)() must be a bool, got \(other.typeName)"),
                at: comprehension.at)
        }
    }

    private mutating func comprehend(_ comprehension: ExpressionComprehension) throws(ExpressionError) -> ExpressionValue {
        let items: [ExpressionValue]
        switch try evaluate(comprehension.range) {
        case .list(let list): items = list.elements
        case .map(let map): items = map.keys
        case .null: items = []
        case let other:
            throw fail(.mismatch("\(comprehension.kind.rawValue)()", other), at: comprehension.at)
        }
        let slot = comprehension.slot
        switch comprehension.kind {
        case .all, .exists:
            let decisive = comprehension.kind == .exists
            var firstError: ExpressionError?
            for item in items {
                locals[slot] = item
                do {
                    if try condition(comprehension.predicate!, comprehension) == decisive { return .bool(decisive) }
                } catch {
                    firstError = firstError ?? error
                }
            }
            if let firstError { throw firstError }
            return .bool(!decisive)
        case .existsOne:
            var count = 0
            for item in items {
                locals[slot] = item
                if try condition(comprehension.predicate!, comprehension) { count += 1 }
            }
            return .bool(count == 1)
        case .filter:
            var kept: [ExpressionValue] = []
            for item in items {
                locals[slot] = item
                if try condition(comprehension.predicate!, comprehension) { kept.append(item) }
            }
            return .list(ExpressionList(kept))
        case .map:
            var mapped: [ExpressionValue] = []
            mapped.reserveCapacity(items.count)
            for item in items {
                locals[slot] = item
                if let predicate = comprehension.predicate, try !condition(predicate, comprehension) { continue }
                mapped.append(try evaluate(comprehension.transform!))
            }
            return .list(ExpressionList(mapped))
        }
    }
}
