/// Recursive-descent parser from tokens to `ExpressionNode`, resolving names as it goes.
///
/// Grammar (CEL, lowest precedence first):
/// ```
/// expr     = or ["?" or ":" expr]
/// or       = and {"||" and}
/// and      = relation {"&&" relation}
/// relation = add {("<" | "<=" | ">" | ">=" | "==" | "!=" | "in") add}
/// add      = mul {("+" | "-") mul}
/// mul      = unary {("*" | "/" | "%") unary}
/// unary    = member | "!" {"!"} member | "-" {"-"} member
/// member   = primary {"." IDENT ["(" args ")"] | "[" expr "]"}
/// primary  = IDENT ["(" args ")"] | "(" expr ")" | "[" [list] "]" | "{" [entries] "}" | literal
/// ```
/// Every node carries a depth; a tree deeper than `Expression.maximumDepth` is rejected so
/// that neither the parser nor the evaluator can exhaust the stack.
struct ExpressionParser {
    /// A node and the height of its tree.
    struct Parsed {
        let node: ExpressionNode
        let depth: Int
    }

    private var lexer: ExpressionLexer
    private var token: ExpressionToken
    private var scopes: [(name: String, slot: Int)] = []
    private(set) var slotCount = 0
    private var nesting = 0

    private static let reservedWords: Set<String> = [
        "as", "break", "const", "continue", "else", "for", "function", "if", "import", "let", "loop",
        "package", "namespace", "return", "var", "void", "while",
    ]
    private static let macroNames: Set<String> = ["all", "exists", "exists_one", "map", "filter"]

    init(source: String) throws(ExpressionError) {
        lexer = ExpressionLexer(source: source)
        token = try lexer.next()
    }

    /// Parses the whole source as one expression.
    mutating func parseAll() throws(ExpressionError) -> ExpressionNode {
        if token.kind == .end {
            throw lexer.error(.unexpectedEnd, at: token.start, "expression is empty")
        }
        let parsed = try expression()
        guard token.kind == .end else {
            throw lexer.error(.unexpectedToken, at: token.start, "expected end of expression, found \(token.display)")
        }
        return parsed.node
    }

    // MARK: Tokens

    private mutating func advance() throws(ExpressionError) {
        token = try lexer.next()
    }

    private func isPunctuation(_ text: String) -> Bool {
        token.kind == .punctuation(text)
    }

    private mutating func expect(_ text: String, _ context: String) throws(ExpressionError) {
        guard isPunctuation(text) else {
            let code: ExpressionError.Code = token.kind == .end ? .unexpectedEnd : .unexpectedToken
            throw lexer.error(code, at: token.start, "expected '\(text)' \(context), found \(token.display)")
        }
        try advance()
    }

    private func checked(_ node: ExpressionNode, depth: Int, at position: Int) throws(ExpressionError) -> Parsed {
        guard depth <= Expression.maximumDepth else {
            throw lexer.error(
                .nestingTooDeep, at: position,
                "expression is nested more than \(Expression.maximumDepth) levels deep")
        }
        return Parsed(node: node, depth: depth)
    }

    /// Guards the parser's own recursion (parentheses, unary chains, arguments).
    private mutating func enter(at position: Int) throws(ExpressionError) {
        nesting += 1
        if nesting > Expression.maximumDepth {
            throw lexer.error(
                .nestingTooDeep, at: position,
                "expression is nested more than \(Expression.maximumDepth) levels deep")
        }
    }

    // MARK: Operators

    private mutating func expression() throws(ExpressionError) -> Parsed {
        try enter(at: token.start)
        defer { nesting -= 1 }
        let condition = try or()
        guard isPunctuation("?") else { return condition }
        let at = token.start
        try advance()
        let whenTrue = try or()
        try expect(":", "in conditional expression")
        let whenFalse = try expression()
        return try checked(
            .conditional(condition.node, whenTrue.node, whenFalse.node, at: at),
            depth: max(condition.depth, whenTrue.depth, whenFalse.depth) + 1, at: at)
    }

    private mutating func or() throws(ExpressionError) -> Parsed {
        var left = try and()
        while isPunctuation("||") {
            let at = token.start
            try advance()
            let right = try and()
            left = try checked(.or(left.node, right.node), depth: max(left.depth, right.depth) + 1, at: at)
        }
        return left
    }

    private mutating func and() throws(ExpressionError) -> Parsed {
        var left = try relation()
        while isPunctuation("&&") {
            let at = token.start
            try advance()
            let right = try relation()
            left = try checked(.and(left.node, right.node), depth: max(left.depth, right.depth) + 1, at: at)
        }
        return left
    }

    private mutating func relation() throws(ExpressionError) -> Parsed {
        var left = try additive()
        while true {
            let op: ExpressionBinaryOperator
            switch token.kind {
            case .punctuation("=="): op = .equal
            case .punctuation("!="): op = .notEqual
            case .punctuation("<"): op = .less
            case .punctuation("<="): op = .lessOrEqual
            case .punctuation(">"): op = .greater
            case .punctuation(">="): op = .greaterOrEqual
            case .identifier("in"): op = .in
            default: return left
            }
            left = try binary(op, left) { (parser: inout ExpressionParser) throws(ExpressionError) in try parser.additive() }
        }
    }

    private mutating func additive() throws(ExpressionError) -> Parsed {
        var left = try multiplicative()
        while true {
            let op: ExpressionBinaryOperator
            switch token.kind {
            case .punctuation("+"): op = .add
            case .punctuation("-"): op = .subtract
            default: return left
            }
            left = try binary(op, left) { (parser: inout ExpressionParser) throws(ExpressionError) in try parser.multiplicative() }
        }
    }

    private mutating func multiplicative() throws(ExpressionError) -> Parsed {
        var left = try unary()
        while true {
            let op: ExpressionBinaryOperator
            switch token.kind {
            case .punctuation("*"): op = .multiply
            case .punctuation("/"): op = .divide
            case .punctuation("%"): op = .remainder
            default: return left
            }
            left = try binary(op, left) { (parser: inout ExpressionParser) throws(ExpressionError) in try parser.unary() }
        }
    }

    private mutating func binary(
        _ op: ExpressionBinaryOperator, _ left: Parsed,
        _ operand: (inout ExpressionParser) throws(ExpressionError) -> Parsed
    ) throws(ExpressionError) -> Parsed {
        let at = token.start
        try advance()
        let right = try operand(&self)
        return try checked(.binary(op, left.node, right.node, at: at), depth: max(left.depth, right.depth) + 1, at: at)
    }

    private mutating func unary() throws(ExpressionError) -> Parsed {
        let at = token.start
        if isPunctuation("!") {
            try enter(at: at)
            defer { nesting -= 1 }
            try advance()
            let operand = try unary()
            return try checked(.not(operand.node, at: at), depth: operand.depth + 1, at: at)
        }
        if isPunctuation("-") {
            try enter(at: at)
            defer { nesting -= 1 }
            try advance()
            // Fold negative number literals so that -9223372036854775808 is representable.
            switch token.kind {
            case .intMagnitude:
                let next = try lexer.peekIsMemberOperator()
                if !next {
                    try advance()
                    return Parsed(node: .constant(.int(.min)), depth: 1)
                }
            case .int(let value):
                if try !lexer.peekIsMemberOperator() {
                    try advance()
                    return Parsed(node: .constant(.int(-value)), depth: 1)
                }
            case .double(let value):
                if try !lexer.peekIsMemberOperator() {
                    try advance()
                    return Parsed(node: .constant(.double(-value)), depth: 1)
                }
            default:
                break
            }
            let operand = try unary()
            return try checked(.negate(operand.node, at: at), depth: operand.depth + 1, at: at)
        }
        return try member()
    }

    // MARK: Member access and calls

    private mutating func member() throws(ExpressionError) -> Parsed {
        var current = try primary()
        while true {
            if isPunctuation(".") {
                try advance()
                let nameAt = token.start
                guard case .identifier(let name) = token.kind else {
                    throw lexer.error(
                        token.kind == .end ? .unexpectedEnd : .unexpectedToken, at: token.start,
                        "expected a field name after '.', found \(token.display)")
                }
                try advance()
                if isPunctuation("(") {
                    current = try memberCall(receiver: current, name: name, at: nameAt)
                } else {
                    switch current.node {
                    case .path(let root, let keys):
                        current = try checked(.path(root, keys + [name]), depth: current.depth, at: nameAt)
                    default:
                        current = try checked(.select(current.node, name), depth: current.depth + 1, at: nameAt)
                    }
                }
            } else if isPunctuation("[") {
                let at = token.start
                try enter(at: at)
                try advance()
                let index = try expression()
                try expect("]", "after index")
                nesting -= 1
                current = try checked(
                    .index(current.node, index.node, at: at), depth: max(current.depth, index.depth) + 1, at: at)
            } else {
                return current
            }
        }
    }

    private mutating func memberCall(receiver: Parsed, name: String, at: Int) throws(ExpressionError) -> Parsed {
        if Self.macroNames.contains(name) {
            return try macro(receiver: receiver, name: name, at: at)
        }
        guard let function = ExpressionFunction.byName[name] else {
            throw lexer.error(.unknownFunction, at: at, "unknown function '\(name)'")
        }
        let arguments = try callArguments()
        guard function.memberArities.contains(arguments.count) else {
            throw arityError(function, name: name, count: arguments.count, member: true, at: at)
        }
        let depth = ([receiver.depth] + arguments.map(\.depth)).max()! + 1
        if function == .matches, case .constant(.string(let pattern)) = arguments[0].node {
            guard let regex = ExpressionRegex(pattern) else {
                throw lexer.error(.invalidRegex, at: at, "invalid regular expression '\(pattern)' in matches()")
            }
            return try checked(.matches(receiver.node, regex, at: at), depth: depth, at: at)
        }
        return try checked(.call(function, [receiver.node] + arguments.map(\.node), at: at), depth: depth, at: at)
    }

    private func arityError(_ function: ExpressionFunction, name: String, count: Int, member: Bool, at: Int) -> ExpressionError {
        let arities = member ? function.memberArities : function.globalArities
        let form = member ? "x.\(name)()" : "\(name)()"
        if arities.isEmpty {
            let other = member ? "as \(name)(x)" : "as x.\(name)()"
            return lexer.error(.unknownFunction, at: at, "\(form) does not exist; call it \(other)")
        }
        let expected = arities.map(String.init).joined(separator: " or ")
        let noun = arities == [1] ? "argument" : "arguments"
        return lexer.error(.wrongArgumentCount, at: at, "\(form) takes \(expected) \(noun), got \(count)")
    }

    private mutating func callArguments() throws(ExpressionError) -> [Parsed] {
        try expect("(", "to start arguments")
        try enter(at: token.start)
        defer { nesting -= 1 }
        var arguments: [Parsed] = []
        if !isPunctuation(")") {
            while true {
                arguments.append(try expression())
                if isPunctuation(",") {
                    try advance()
                    continue
                }
                break
            }
        }
        try expect(")", "after arguments")
        return arguments
    }

    private mutating func macro(receiver: Parsed, name: String, at: Int) throws(ExpressionError) -> Parsed {
        try expect("(", "to start arguments")
        try enter(at: token.start)
        defer { nesting -= 1 }
        guard case .identifier(let variable) = token.kind, !Self.reservedWords.contains(variable),
            !["true", "false", "null", "in"].contains(variable)
        else {
            throw lexer.error(.invalidMacro, at: token.start, "the first argument of \(name)() must be a variable name")
        }
        try advance()
        try expect(",", "after the variable of \(name)()")
        let slot = slotCount
        slotCount += 1
        scopes.append((variable, slot))
        defer { scopes.removeLast() }
        var arguments: [Parsed] = [try expression()]
        while isPunctuation(",") {
            try advance()
            arguments.append(try expression())
        }
        try expect(")", "after arguments")
        let kind: ExpressionComprehension.Kind
        switch name {
        case "all": kind = .all
        case "exists": kind = .exists
        case "exists_one": kind = .existsOne
        case "filter": kind = .filter
        default: kind = .map
        }
        let allowed = kind == .map ? [1, 2] : [1]
        guard allowed.contains(arguments.count) else {
            let expected = kind == .map ? "2 or 3" : "2"
            throw lexer.error(
                .wrongArgumentCount, at: at, "\(name)() takes \(expected) arguments, got \(arguments.count + 1)")
        }
        let predicate: ExpressionNode?
        let transform: ExpressionNode?
        switch (kind, arguments.count) {
        case (.map, 1): (predicate, transform) = (nil, arguments[0].node)
        case (.map, _): (predicate, transform) = (arguments[0].node, arguments[1].node)
        default: (predicate, transform) = (arguments[0].node, nil)
        }
        let comprehension = ExpressionComprehension(
            kind: kind, range: receiver.node, slot: slot, predicate: predicate, transform: transform, at: at)
        let depth = ([receiver.depth] + arguments.map(\.depth)).max()! + 1
        return try checked(.comprehension(comprehension), depth: depth, at: at)
    }

    // MARK: Primaries

    private mutating func primary() throws(ExpressionError) -> Parsed {
        let at = token.start
        switch token.kind {
        case .int(let value):
            try advance()
            return Parsed(node: .constant(.int(value)), depth: 1)
        case .intMagnitude(let magnitude):
            throw lexer.error(.invalidNumber, at: at, "integer literal \(magnitude) does not fit in a 64-bit int (add 'u' for uint)")
        case .uint(let value):
            try advance()
            return Parsed(node: .constant(.uint(value)), depth: 1)
        case .double(let value):
            try advance()
            return Parsed(node: .constant(.double(value)), depth: 1)
        case .string(let value):
            try advance()
            return Parsed(node: .constant(.string(value)), depth: 1)
        case .bytes(let value):
            try advance()
            return Parsed(node: .constant(.bytes(value)), depth: 1)
        case .identifier(let name):
            try advance()
            return try identifier(name, at: at)
        case .punctuation("("):
            try advance()
            let inner = try expression()
            try expect(")", "to close '('")
            return inner
        case .punctuation("["):
            try advance()
            try enter(at: at)
            defer { nesting -= 1 }
            var elements: [Parsed] = []
            while !isPunctuation("]") {
                elements.append(try expression())
                if isPunctuation(",") {
                    try advance()
                } else {
                    break
                }
            }
            try expect("]", "to close list")
            let depth = (elements.map(\.depth).max() ?? 0) + 1
            return try checked(.list(elements.map(\.node)), depth: depth, at: at)
        case .punctuation("{"):
            try advance()
            try enter(at: at)
            defer { nesting -= 1 }
            var keys: [Parsed] = []
            var values: [Parsed] = []
            while !isPunctuation("}") {
                keys.append(try expression())
                try expect(":", "after map key")
                values.append(try expression())
                if isPunctuation(",") {
                    try advance()
                } else {
                    break
                }
            }
            try expect("}", "to close map")
            let depth = ((keys + values).map(\.depth).max() ?? 0) + 1
            return try checked(.map(keys.map(\.node), values.map(\.node), at: at), depth: depth, at: at)
        case .end:
            throw lexer.error(.unexpectedEnd, at: at, "expected a value, found end of expression")
        case .punctuation(let text):
            throw lexer.error(.unexpectedToken, at: at, "expected a value, found '\(text)'")
        }
    }

    private mutating func identifier(_ name: String, at: Int) throws(ExpressionError) -> Parsed {
        switch name {
        case "true": return Parsed(node: .constant(.bool(true)), depth: 1)
        case "false": return Parsed(node: .constant(.bool(false)), depth: 1)
        case "null": return Parsed(node: .constant(.null), depth: 1)
        case "in": throw lexer.error(.unexpectedToken, at: at, "expected a value, found 'in'")
        default: break
        }
        if Self.reservedWords.contains(name) {
            throw lexer.error(.reservedWord, at: at, "'\(name)' is a reserved word")
        }
        if isPunctuation("(") {
            return try globalCall(name, at: at)
        }
        if let scope = scopes.last(where: { $0.name == name }) {
            return Parsed(node: .local(scope.slot), depth: 1)
        }
        switch name {
        case "event": return Parsed(node: .path(.event, []), depth: 1)
        case "async": return Parsed(node: .path(.async, []), depth: 1)
        case "vars": return Parsed(node: .path(.vars, []), depth: 1)
        case "output": return Parsed(node: .path(.output, []), depth: 1)
        default:
            throw lexer.error(
                .undeclaredReference, at: at, "undeclared reference to '\(name)' (expected event, async, vars or output)")
        }
    }

    private mutating func globalCall(_ name: String, at: Int) throws(ExpressionError) -> Parsed {
        if name == "has" {
            let arguments = try callArguments()
            guard arguments.count == 1 else {
                throw lexer.error(.wrongArgumentCount, at: at, "has() takes 1 argument, got \(arguments.count)")
            }
            switch arguments[0].node {
            case .path(let root, let keys) where !keys.isEmpty:
                let operand = ExpressionNode.path(root, Array(keys.dropLast()))
                return Parsed(node: .presence(operand, keys.last!, at: at), depth: arguments[0].depth + 1)
            case .select(let operand, let field):
                return Parsed(node: .presence(operand, field, at: at), depth: arguments[0].depth + 1)
            default:
                throw lexer.error(.invalidMacro, at: at, "has() needs a field selection such as has(event.data.id)")
            }
        }
        if Self.macroNames.contains(name) {
            throw lexer.error(.unknownFunction, at: at, "\(name)() is a macro; call it on a list as list.\(name)(x, ...)")
        }
        guard let function = ExpressionFunction.byName[name] else {
            throw lexer.error(.unknownFunction, at: at, "unknown function '\(name)'")
        }
        let arguments = try callArguments()
        guard function.globalArities.contains(arguments.count) else {
            throw arityError(function, name: name, count: arguments.count, member: false, at: at)
        }
        let depth = (arguments.map(\.depth).max() ?? 0) + 1
        if function == .matches, case .constant(.string(let pattern)) = arguments[1].node {
            guard let regex = ExpressionRegex(pattern) else {
                throw lexer.error(.invalidRegex, at: at, "invalid regular expression '\(pattern)' in matches()")
            }
            return try checked(.matches(arguments[0].node, regex, at: at), depth: depth, at: at)
        }
        return try checked(.call(function, arguments.map(\.node), at: at), depth: depth, at: at)
    }
}

extension ExpressionLexer {
    /// True when the token after the current one is `.` or `[`, so a literal after unary
    /// minus is the receiver of a member access (`-1.5.foo` is not folded).
    mutating func peekIsMemberOperator() throws(ExpressionError) -> Bool {
        var copy = self
        let next = try copy.next()
        return next.kind == .punctuation(".") || next.kind == .punctuation("[")
    }
}
