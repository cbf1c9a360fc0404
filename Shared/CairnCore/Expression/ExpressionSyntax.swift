/// The compiled form of an expression: a tree whose names are resolved (variables to roots
/// or macro slots, functions to `ExpressionFunction`), whose literal regexes are compiled and
/// whose `event.a.b` chains are flattened into paths. `at` is the UTF-8 offset used in
/// evaluation error messages.
indirect enum ExpressionNode: Sendable {
    case constant(ExpressionValue)
    /// A field chain from a variable (`event`, `event.data.id`), read straight from the JSON.
    case path(ExpressionRoot, [String])
    /// A macro's iteration variable.
    case local(Int)
    case select(ExpressionNode, String)
    /// `has(operand.field)`.
    case presence(ExpressionNode, String, at: Int)
    case index(ExpressionNode, ExpressionNode, at: Int)
    case not(ExpressionNode, at: Int)
    case negate(ExpressionNode, at: Int)
    case binary(ExpressionBinaryOperator, ExpressionNode, ExpressionNode, at: Int)
    case and(ExpressionNode, ExpressionNode)
    case or(ExpressionNode, ExpressionNode)
    case conditional(ExpressionNode, ExpressionNode, ExpressionNode, at: Int)
    case list([ExpressionNode])
    case map([ExpressionNode], [ExpressionNode], at: Int)
    /// A function call; for a member call (`s.contains(x)`) the receiver is the first argument.
    case call(ExpressionFunction, [ExpressionNode], at: Int)
    /// `s.matches('literal')` or `matches(s, 'literal')` with the pattern compiled once.
    case matches(ExpressionNode, ExpressionRegex, at: Int)
    case comprehension(ExpressionComprehension)
}

/// The variables an expression can read.
enum ExpressionRoot: Sendable {
    case event, async, vars, output
}

enum ExpressionBinaryOperator: String, Sendable {
    case equal = "==", notEqual = "!=", less = "<", lessOrEqual = "<=", greater = ">", greaterOrEqual = ">="
    case `in` = "in", add = "+", subtract = "-", multiply = "*", divide = "/", remainder = "%"
}

/// A macro: `range.kind(variable, predicate[, transform])`.
struct ExpressionComprehension: Sendable {
    enum Kind: String, Sendable {
        case all, exists, existsOne = "exists_one", map, filter
    }

    let kind: Kind
    let range: ExpressionNode
    let slot: Int
    /// The condition (all, exists, exists_one, filter, three-argument map); nil for the
    /// two-argument map.
    let predicate: ExpressionNode?
    /// The element transform of map.
    let transform: ExpressionNode?
    let at: Int
}

/// A compiled regular expression for `matches()`: Swift `Regex` syntax, matched over Unicode
/// scalars and unanchored (a match anywhere counts), as CEL's RE2 `matches` is.
///
/// Differences from RE2 that an author can notice: Swift accepts constructs RE2 rejects
/// (backreferences, lookaround, possessive quantifiers), so a pattern that Inngest refuses may
/// compile here; `\w`, `\d`, `\s` and `\b` follow Unicode rather than RE2's ASCII rules
/// (`\w` matches `é`); RE2's `\C` and the one-letter property shorthand `\pN` are rejected
/// (write `\p{N}`). Common patterns (classes, alternation, counted repetition, `(?i)`,
/// anchors, named groups) behave the same.
///
/// A class, so the tree holds one pointer rather than a
/// generic `Regex` payload whose layout would be looked up at run time on every node visit.
///
/// `@unchecked Sendable`: `Regex` is not declared Sendable, but this box is immutable and the
/// regex is only used for matching, which builds fresh matcher state on every call; the lazily
/// lowered program inside `Regex` is forced once in `init` (by a first match), so concurrent
/// matches only read it.
final class ExpressionRegex: @unchecked Sendable {
    let pattern: String
    let regex: Regex<AnyRegexOutput>

    /// Compiles `pattern` with Unicode-scalar matching semantics (as RE2 matches code
    /// points); nil when the pattern is invalid.
    init?(_ pattern: String) {
        guard let regex = try? Regex(pattern) else { return nil }
        self.pattern = pattern
        self.regex = regex.matchingSemantics(.unicodeScalar)
        _ = try? self.regex.firstMatch(in: "")
    }

    /// True when the pattern matches anywhere in `text` (RE2's partial match, as CEL's
    /// `matches` uses).
    func matches(_ text: String) -> Bool {
        (try? regex.firstMatch(in: text)) != nil
    }
}

/// The functions the language knows, with how they may be called.
enum ExpressionFunction: String, Sendable, CaseIterable {
    case size, contains, startsWith, endsWith, matches
    case int, uint, double, string, bool, bytes, dyn, timestamp, duration
    case lowercase, uppercase, b64decode, jsonParse = "json_parse", date, now
    case nowPlus = "now_plus", nowMinus = "now_minus"
    case getFullYear, getMonth, getDate, getDayOfMonth, getDayOfWeek, getDayOfYear
    case getHours, getMinutes, getSeconds, getMilliseconds

    /// The accepted argument counts of the global form (`size(x)`), empty when there is none.
    var globalArities: [Int] {
        switch self {
        case .size, .int, .uint, .double, .string, .bool, .bytes, .dyn, .timestamp, .duration,
            .lowercase, .uppercase, .b64decode, .jsonParse, .date, .nowPlus, .nowMinus:
            return [1]
        case .matches: return [2]
        case .now: return [0]
        case .contains, .startsWith, .endsWith, .getFullYear, .getMonth, .getDate, .getDayOfMonth,
            .getDayOfWeek, .getDayOfYear, .getHours, .getMinutes, .getSeconds, .getMilliseconds:
            return []
        }
    }

    /// The accepted argument counts (receiver excluded) of the member form (`s.size()`),
    /// empty when there is none.
    var memberArities: [Int] {
        switch self {
        case .size: return [0]
        case .contains, .startsWith, .endsWith, .matches: return [1]
        case .getFullYear, .getMonth, .getDate, .getDayOfMonth, .getDayOfWeek, .getDayOfYear:
            return [0, 1]
        case .getHours, .getMinutes, .getSeconds, .getMilliseconds: return [0, 1]
        case .int, .uint, .double, .string, .bool, .bytes, .dyn, .timestamp, .duration, .lowercase,
            .uppercase, .b64decode, .jsonParse, .date, .now, .nowPlus, .nowMinus:
            return []
        }
    }

    static let byName: [String: ExpressionFunction] = Dictionary(
        uniqueKeysWithValues: allCases.map { ($0.rawValue, $0) })
}
