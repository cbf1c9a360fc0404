/// Why an expression could not be compiled or evaluated, and where.
///
/// Compile errors (`Code.isCompileError`) come from `Expression(compiling:)`; the rest come from
/// evaluation. Neither kind is a programmer error: the caller records it on the function (a
/// compile error makes the function version unusable for that context; an evaluation error
/// makes this one evaluation fail) and carries on.
///
/// `description` reads like `expression: column 14: expected ')' after arguments` and is safe
/// to show to the function's author.
public struct ExpressionError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The kind of problem.
    public enum Code: String, Sendable, Hashable {
        // MARK: Compile time

        /// A byte that starts no token (`#`, a lone `&`).
        case unexpectedCharacter
        /// A string literal with no closing quote.
        case unterminatedString
        /// A backslash escape CEL does not define, or one naming an invalid code point.
        case invalidEscape
        /// A number literal that is malformed or out of range (`0x`, `1e`, `99999999999999999999`).
        case invalidNumber
        /// A token where the grammar wants something else; the message says what was expected.
        case unexpectedToken
        /// The source ended where more was expected (this includes an empty source).
        case unexpectedEnd
        /// A name that is neither `event`, `async`, `vars` nor a macro's variable.
        case undeclaredReference
        /// A reserved word (`as`, `for`, `package`, …) used as a name.
        case reservedWord
        /// A call to a function the language does not have.
        case unknownFunction
        /// A known function called with the wrong number of arguments.
        case wrongArgumentCount
        /// A macro or `has()` whose arguments are not of the required shape (e.g. the variable
        /// of `exists` is not a simple name).
        case invalidMacro
        /// Parentheses, lists or calls nested deeper than `Expression.maximumDepth`.
        case nestingTooDeep

        // MARK: Compile time or evaluation

        /// A regular expression that does not compile (a literal one at compile time, a
        /// computed one at evaluation).
        case invalidRegex

        // MARK: Evaluation

        /// An operator or function applied to values of types it does not accept
        /// (e.g. `'a' - 1`, `(1).contains('x')`).
        case typeMismatch
        /// Integer division or remainder by zero.
        case divisionByZero
        /// Integer arithmetic or conversion outside the 64-bit range.
        case integerOverflow
        /// An argument of the right type whose value is unusable (`int('abc')`,
        /// `duration('soon')`, `date('yesterday')`, bad base64 or JSON).
        case invalidArgument
        /// A timestamp or duration outside its supported range.
        case outOfRange
        /// A map literal that repeats a key.
        case duplicateKey
        /// A boolean context (`evaluateBool`, a ternary condition, a macro predicate) got a
        /// value that is neither a bool nor null.
        case notBoolean

        /// True for the codes that `Expression(compiling:)` throws.
        public var isCompileError: Bool {
            switch self {
            case .unexpectedCharacter, .unterminatedString, .invalidEscape, .invalidNumber,
                .unexpectedToken, .unexpectedEnd, .undeclaredReference, .reservedWord,
                .unknownFunction, .wrongArgumentCount, .invalidMacro, .nestingTooDeep:
                return true
            case .invalidRegex, .typeMismatch, .divisionByZero, .integerOverflow,
                .invalidArgument, .outOfRange, .duplicateKey, .notBoolean:
                return false
            }
        }
    }

    /// The kind of problem.
    public let code: Code
    /// The 0-based UTF-8 byte offset in the source of the token or sub-expression at fault.
    public let position: Int
    /// The 1-based column (counted in Unicode scalars) of `position`.
    public let column: Int
    /// What was attempted and why it failed, e.g. `expected ')' after arguments` or
    /// `division by zero in '/'`.
    public let reason: String

    /// Creates an error with an explicit column.
    public init(code: Code, position: Int, column: Int, reason: String) {
        self.code = code
        self.position = position
        self.column = column
        self.reason = reason
    }

    /// Creates an error at a UTF-8 offset of `source`, deriving the column from it.
    init(code: Code, position: Int, in source: String, reason: String) {
        let prefix = source.utf8.prefix(max(0, position))
        let column = String(decoding: prefix, as: UTF8.self).unicodeScalars.count + 1
        self.init(code: code, position: position, column: column, reason: reason)
    }

    /// `expression: column <column>: <reason>`.
    public var description: String {
        "expression: column \(column): \(reason)"
    }
}
