/// Why bytes are not one valid JSON value, and where.
///
/// `offset` is the 0-based byte offset of the problem in the input. `description` reads like
/// `invalid JSON at byte 7: trailing comma before ']'` and is safe to show to the sender.
public struct JSONParseError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The kind of problem.
    public enum Code: String, Sendable, Hashable {
        /// The input ended inside a value (or was empty).
        case unexpectedEndOfInput
        /// A byte that cannot appear at this point (e.g. a missing `,` or `:`).
        case unexpectedCharacter
        /// A `,` directly followed by `]` or `}`.
        case trailingComma
        /// Something starting like `true`, `false` or `null` that is not exactly that word.
        case invalidLiteral
        /// A number that breaks the grammar: lone `-`, leading zeros, missing digits.
        case invalidNumber
        /// A backslash escape other than `\" \\ \/ \b \f \n \r \t \uXXXX`.
        case invalidEscape
        /// An unescaped byte below 0x20 inside a string.
        case controlCharacterInString
        /// A string whose bytes are not valid UTF-8.
        case invalidUTF8
        /// A `\uD800`–`\uDFFF` escape that is not part of a high+low surrogate pair.
        case loneSurrogate
        /// Arrays and objects nested deeper than `JSONValue.maximumDepth`.
        case nestingTooDeep
        /// Non-whitespace after the complete top-level value.
        case trailingData
    }

    /// The kind of problem.
    public let code: Code
    /// The byte offset of the problem, 0-based.
    public let offset: Int
    /// A short human explanation, e.g. `leading zeros are not allowed in numbers`.
    public let reason: String

    /// Creates an error at a byte offset.
    public init(code: Code, offset: Int, reason: String) {
        self.code = code
        self.offset = offset
        self.reason = reason
    }

    /// `invalid JSON at byte <offset>: <reason>`.
    public var description: String {
        "invalid JSON at byte \(offset): \(reason)"
    }
}

extension JSONValue {
    /// The deepest nesting of arrays and objects the parser accepts: 512 levels.
    public static let maximumDepth = 512

    /// Parses exactly one JSON value (RFC 8259), optionally surrounded by whitespace.
    ///
    /// Any value may be at the top level. Strings must be valid UTF-8; a byte-order mark is not
    /// accepted. Object members keep their order; a repeated key keeps its first position and
    /// its last value. Nesting deeper than `maximumDepth` is an error, so hostile input cannot
    /// exhaust the stack.
    ///
    /// - Throws: `JSONParseError` with the byte offset and the reason.
    public init(parsing bytes: some Collection<UInt8>) throws(JSONParseError) {
        let result: Result<JSONValue, JSONParseError>? = bytes.withContiguousStorageIfAvailable { buffer in
            JSONValue.parse(buffer)
        }
        if let result {
            self = try result.get()
        } else {
            let copy = Array(bytes)
            self = try copy.withUnsafeBufferPointer { JSONValue.parse($0) }.get()
        }
    }

    /// Parses the UTF-8 form of `text` (see `init(parsing:)` for bytes).
    ///
    /// - Throws: `JSONParseError` with the UTF-8 byte offset and the reason.
    public init(parsing text: String) throws(JSONParseError) {
        var text = text
        self = try text.withUTF8 { JSONValue.parse($0) }.get()
    }

    private static func parse(_ buffer: UnsafeBufferPointer<UInt8>) -> Result<JSONValue, JSONParseError> {
        var parser = JSONParser(buffer: buffer)
        do {
            let value = try parser.parseDocument()
            return .success(value)
        } catch {
            return .failure(error)
        }
    }
}

/// A recursive-descent JSON parser over a contiguous byte buffer.
///
/// Recursion depth is bounded by `JSONValue.maximumDepth`.
struct JSONParser {
    let buffer: UnsafeBufferPointer<UInt8>
    var position = 0
    /// Per-depth buffers that collect a container's children; each finished container is
    /// copied out at its exact size, so building it costs one allocation.
    var elementScratch: [[JSONValue]] = []
    var memberScratch: [[JSONObject.Element]] = []

    init(buffer: UnsafeBufferPointer<UInt8>) {
        self.buffer = buffer
    }

    mutating func parseDocument() throws(JSONParseError) -> JSONValue {
        let value = try parseValue(depth: 0)
        skipWhitespace()
        if position < buffer.count {
            throw JSONParseError(
                code: .trailingData, offset: position,
                reason: "unexpected \(describeByte(at: position)) after the JSON value")
        }
        return value
    }

    // MARK: Values

    mutating func parseValue(depth: Int) throws(JSONParseError) -> JSONValue {
        skipWhitespace()
        guard position < buffer.count else {
            throw JSONParseError(code: .unexpectedEndOfInput, offset: position, reason: "expected a value, got end of input")
        }
        switch buffer[position] {
        case UInt8(ascii: "{"):
            return .object(try parseObject(depth: depth + 1))
        case UInt8(ascii: "["):
            return .array(try parseArray(depth: depth + 1))
        case UInt8(ascii: "\""):
            return .string(try parseString())
        case UInt8(ascii: "t"):
            try expectLiteral("true")
            return .bool(true)
        case UInt8(ascii: "f"):
            try expectLiteral("false")
            return .bool(false)
        case UInt8(ascii: "n"):
            try expectLiteral("null")
            return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return .number(try parseNumber())
        default:
            throw JSONParseError(
                code: .unexpectedCharacter, offset: position,
                reason: "expected a value, got \(describeByte(at: position))")
        }
    }

    mutating func parseArray(depth: Int) throws(JSONParseError) -> [JSONValue] {
        try checkDepth(depth)
        position += 1  // [
        skipWhitespace()
        if position < buffer.count, buffer[position] == UInt8(ascii: "]") {
            position += 1
            return []
        }
        while elementScratch.count <= depth { elementScratch.append([]) }
        while true {
            let element = try parseValue(depth: depth)
            elementScratch[depth].append(element)
            skipWhitespace()
            guard position < buffer.count else {
                throw JSONParseError(
                    code: .unexpectedEndOfInput, offset: position, reason: "unterminated array, expected ',' or ']'")
            }
            switch buffer[position] {
            case UInt8(ascii: ","):
                let comma = position
                position += 1
                skipWhitespace()
                if position < buffer.count, buffer[position] == UInt8(ascii: "]") {
                    throw JSONParseError(code: .trailingComma, offset: comma, reason: "trailing comma before ']'")
                }
            case UInt8(ascii: "]"):
                position += 1
                let elements = Array(elementScratch[depth])
                elementScratch[depth].removeAll(keepingCapacity: true)
                return elements
            default:
                throw JSONParseError(
                    code: .unexpectedCharacter, offset: position,
                    reason: "expected ',' or ']' after an array element, got \(describeByte(at: position))")
            }
        }
    }

    mutating func parseObject(depth: Int) throws(JSONParseError) -> JSONObject {
        try checkDepth(depth)
        position += 1  // {
        var index: [String: Int]? = nil
        skipWhitespace()
        if position < buffer.count, buffer[position] == UInt8(ascii: "}") {
            position += 1
            return JSONObject()
        }
        while memberScratch.count <= depth { memberScratch.append([]) }
        while true {
            skipWhitespace()
            guard position < buffer.count else {
                throw JSONParseError(
                    code: .unexpectedEndOfInput, offset: position, reason: "unterminated object, expected a string key")
            }
            guard buffer[position] == UInt8(ascii: "\"") else {
                throw JSONParseError(
                    code: .unexpectedCharacter, offset: position,
                    reason: "expected a string key, got \(describeByte(at: position))")
            }
            let key = try parseString()
            skipWhitespace()
            guard position < buffer.count else {
                throw JSONParseError(code: .unexpectedEndOfInput, offset: position, reason: "unterminated object, expected ':'")
            }
            guard buffer[position] == UInt8(ascii: ":") else {
                throw JSONParseError(
                    code: .unexpectedCharacter, offset: position,
                    reason: "expected ':' after an object key, got \(describeByte(at: position))")
            }
            position += 1
            let value = try parseValue(depth: depth)

            // Repeated key: first position, last value.
            if index == nil, memberScratch[depth].count >= JSONObject.linearScanLimit {
                var built: [String: Int] = [:]
                for (offset, member) in memberScratch[depth].enumerated() { built[member.key] = offset }
                index = built
            }
            if let existing = index {
                if let slot = existing[key] {
                    memberScratch[depth][slot].value = value
                } else {
                    index![key] = memberScratch[depth].count
                    memberScratch[depth].append((key: key, value: value))
                }
            } else if let slot = memberScratch[depth].firstIndex(where: { $0.key == key }) {
                memberScratch[depth][slot].value = value
            } else {
                memberScratch[depth].append((key: key, value: value))
            }

            skipWhitespace()
            guard position < buffer.count else {
                throw JSONParseError(
                    code: .unexpectedEndOfInput, offset: position, reason: "unterminated object, expected ',' or '}'")
            }
            switch buffer[position] {
            case UInt8(ascii: ","):
                let comma = position
                position += 1
                skipWhitespace()
                if position < buffer.count, buffer[position] == UInt8(ascii: "}") {
                    throw JSONParseError(code: .trailingComma, offset: comma, reason: "trailing comma before '}'")
                }
            case UInt8(ascii: "}"):
                position += 1
                let members = Array(memberScratch[depth])
                memberScratch[depth].removeAll(keepingCapacity: true)
                return JSONObject(uniqueMembers: members)
            default:
                throw JSONParseError(
                    code: .unexpectedCharacter, offset: position,
                    reason: "expected ',' or '}' after an object member, got \(describeByte(at: position))")
            }
        }
    }

    func checkDepth(_ depth: Int) throws(JSONParseError) {
        if depth > JSONValue.maximumDepth {
            throw JSONParseError(
                code: .nestingTooDeep, offset: position,
                reason: "arrays and objects nested more than \(JSONValue.maximumDepth) levels deep")
        }
    }

    mutating func expectLiteral(_ word: StaticString) throws(JSONParseError) {
        let start = position
        let length = word.utf8CodeUnitCount
        let matches = word.withUTF8Buffer { expected -> Bool in
            guard buffer.count - start >= length else { return false }
            for offset in 0..<length where buffer[start + offset] != expected[offset] {
                return false
            }
            return true
        }
        guard matches else {
            throw JSONParseError(code: .invalidLiteral, offset: start, reason: "invalid literal, expected '\(word)'")
        }
        position += length
    }

    mutating func parseNumber() throws(JSONParseError) -> JSONNumber {
        let start = position
        switch JSONNumber.scan(buffer, from: start) {
        case .success(let end):
            position = end
            return JSONNumber(validatedLiteral: String(decoding: UnsafeBufferPointer(rebasing: buffer[start..<end]), as: UTF8.self))
        case .failure(.leadingZero(let offset)):
            throw JSONParseError(code: .invalidNumber, offset: offset, reason: "leading zeros are not allowed in numbers")
        case .failure(.expectedDigit(let offset, let after)):
            let got = offset < buffer.count ? describeByte(at: offset) : "end of input"
            throw JSONParseError(code: .invalidNumber, offset: offset, reason: "expected a digit after \(after), got \(got)")
        }
    }

    // MARK: Strings

    mutating func parseString() throws(JSONParseError) -> String {
        let open = position
        position += 1  // "
        let start = position
        var seenBits: UInt8 = 0  // OR of all content bytes; below 0x80 means pure ASCII
        while position < buffer.count {
            let byte = buffer[position]
            guard byte != UInt8(ascii: "\""), byte != UInt8(ascii: "\\"), byte >= 0x20 else {
                if byte == UInt8(ascii: "\"") {
                    let content = UnsafeBufferPointer(rebasing: buffer[start..<position])
                    position += 1
                    if seenBits < 0x80 {
                        return String(decoding: content, as: UTF8.self)
                    }
                    return try validatedString(content, rawStart: start)
                }
                if byte == UInt8(ascii: "\\") {
                    return try parseEscapedString(from: start)
                }
                throw controlCharacterError(at: position)
            }
            seenBits |= byte
            position += 1
        }
        throw JSONParseError(code: .unexpectedEndOfInput, offset: open, reason: "unterminated string")
    }

    /// Continues a string after its first backslash, collecting decoded bytes.
    mutating func parseEscapedString(from start: Int) throws(JSONParseError) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(position - start + 16)
        bytes.append(contentsOf: UnsafeBufferPointer(rebasing: buffer[start..<position]))
        while position < buffer.count {
            let byte = buffer[position]
            switch byte {
            case UInt8(ascii: "\""):
                position += 1
                return try bytes.withUnsafeBufferPointer { decoded throws(JSONParseError) in
                    try validatedString(decoded, rawStart: start)
                }
            case UInt8(ascii: "\\"):
                try decodeEscape(into: &bytes)
            case 0..<0x20:
                throw controlCharacterError(at: position)
            default:
                bytes.append(byte)
                position += 1
            }
        }
        throw JSONParseError(code: .unexpectedEndOfInput, offset: start - 1, reason: "unterminated string")
    }

    /// Decodes one escape at `position` (which holds the backslash) and appends its UTF-8.
    mutating func decodeEscape(into bytes: inout [UInt8]) throws(JSONParseError) {
        let escapeStart = position
        position += 1
        guard position < buffer.count else {
            throw JSONParseError(code: .unexpectedEndOfInput, offset: escapeStart, reason: "unterminated escape sequence")
        }
        let letter = buffer[position]
        position += 1
        switch letter {
        case UInt8(ascii: "\""): bytes.append(0x22)
        case UInt8(ascii: "\\"): bytes.append(0x5C)
        case UInt8(ascii: "/"): bytes.append(0x2F)
        case UInt8(ascii: "b"): bytes.append(0x08)
        case UInt8(ascii: "f"): bytes.append(0x0C)
        case UInt8(ascii: "n"): bytes.append(0x0A)
        case UInt8(ascii: "r"): bytes.append(0x0D)
        case UInt8(ascii: "t"): bytes.append(0x09)
        case UInt8(ascii: "u"):
            let unit = try readHex4(escapeStart: escapeStart)
            var scalarValue = UInt32(unit)
            if (0xDC00...0xDFFF).contains(unit) {
                throw JSONParseError(
                    code: .loneSurrogate, offset: escapeStart,
                    reason: "lone low surrogate \\u\(hex4(unit)) is not a Unicode scalar")
            }
            if (0xD800...0xDBFF).contains(unit) {
                let lowStart = position
                guard position + 1 < buffer.count, buffer[position] == UInt8(ascii: "\\"),
                      buffer[position + 1] == UInt8(ascii: "u")
                else {
                    throw JSONParseError(
                        code: .loneSurrogate, offset: escapeStart,
                        reason: "high surrogate \\u\(hex4(unit)) is not followed by a low surrogate escape")
                }
                position += 2
                let low = try readHex4(escapeStart: lowStart)
                guard (0xDC00...0xDFFF).contains(low) else {
                    throw JSONParseError(
                        code: .loneSurrogate, offset: escapeStart,
                        reason: "high surrogate \\u\(hex4(unit)) is followed by \\u\(hex4(low)), not a low surrogate")
                }
                scalarValue = 0x10000 + ((UInt32(unit) - 0xD800) << 10) + (UInt32(low) - 0xDC00)
            }
            // Every value outside the surrogate range is a Unicode scalar.
            let scalar = Unicode.Scalar(scalarValue)!
            bytes.append(contentsOf: UTF8.encode(scalar)!)
        default:
            throw JSONParseError(
                code: .invalidEscape, offset: escapeStart,
                reason: "invalid escape '\\\(describeRaw(letter))' in string")
        }
    }

    /// Reads the 4 hex digits of a `\u` escape at `position`.
    mutating func readHex4(escapeStart: Int) throws(JSONParseError) -> UInt16 {
        guard buffer.count - position >= 4 else {
            throw JSONParseError(code: .invalidEscape, offset: escapeStart, reason: "\\u escape needs 4 hex digits")
        }
        var value: UInt16 = 0
        for _ in 0..<4 {
            let byte = buffer[position]
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default:
                throw JSONParseError(code: .invalidEscape, offset: escapeStart, reason: "\\u escape needs 4 hex digits")
            }
            value = value << 4 | UInt16(digit)
            position += 1
        }
        return value
    }

    /// Makes a `String` from decoded string content whose raw bytes run from `rawStart` up to
    /// the closing quote, which `position` has just passed.
    ///
    /// Escapes are ASCII and decode to complete UTF-8 sequences, so the decoded bytes are valid
    /// exactly when the raw bytes are; the error offset is therefore located in the raw bytes.
    func validatedString(_ content: UnsafeBufferPointer<UInt8>, rawStart: Int) throws(JSONParseError) -> String {
        if let string = String(validating: content, as: UTF8.self) {
            return string
        }
        let raw = UnsafeBufferPointer(rebasing: buffer[rawStart..<(position - 1)])
        throw JSONParseError(
            code: .invalidUTF8, offset: rawStart + (firstInvalidUTF8Offset(raw) ?? 0),
            reason: "string is not valid UTF-8")
    }

    func controlCharacterError(at offset: Int) -> JSONParseError {
        JSONParseError(
            code: .controlCharacterInString, offset: offset,
            reason: "control character \(describeByte(at: offset)) must be escaped in a string")
    }

    // MARK: Whitespace and diagnostics

    @inline(__always)
    mutating func skipWhitespace() {
        while position < buffer.count {
            switch buffer[position] {
            case 0x20, 0x0A, 0x0D, 0x09: position += 1
            default: return
            }
        }
    }

    func describeByte(at offset: Int) -> String {
        guard offset < buffer.count else { return "end of input" }
        let byte = buffer[offset]
        if byte >= 0x20, byte < 0x7F { return "'\(Character(Unicode.Scalar(byte)))'" }
        return "byte \(hex2(byte))"
    }

    func describeRaw(_ byte: UInt8) -> String {
        if byte >= 0x20, byte < 0x7F { return String(Character(Unicode.Scalar(byte))) }
        return hex2(byte)
    }

    func hex2(_ byte: UInt8) -> String {
        let digits = String(byte, radix: 16, uppercase: true)
        return "0x" + (digits.count == 1 ? "0" + digits : digits)
    }

    func hex4(_ value: UInt16) -> String {
        let digits = String(value, radix: 16, uppercase: true)
        return String(repeating: "0", count: 4 - digits.count) + digits
    }
}

/// The offset of the first byte that breaks UTF-8 (overlong forms, surrogates and values above
/// U+10FFFF included), or nil when all of `bytes` is valid.
func firstInvalidUTF8Offset(_ bytes: UnsafeBufferPointer<UInt8>) -> Int? {
    var index = 0
    while index < bytes.count {
        let lead = bytes[index]
        let length: Int
        var lower: UInt8 = 0x80
        var upper: UInt8 = 0xBF
        switch lead {
        case 0x00...0x7F: index += 1; continue
        case 0xC2...0xDF: length = 2
        case 0xE0: length = 3; lower = 0xA0
        case 0xE1...0xEC, 0xEE...0xEF: length = 3
        case 0xED: length = 3; upper = 0x9F
        case 0xF0: length = 4; lower = 0x90
        case 0xF1...0xF3: length = 4
        case 0xF4: length = 4; upper = 0x8F
        default: return index
        }
        for continuation in 1..<length {
            guard index + continuation < bytes.count else { return index }
            let byte = bytes[index + continuation]
            let (low, high) = continuation == 1 ? (lower, upper) : (0x80, 0xBF)
            guard byte >= low, byte <= high else { return index }
        }
        index += length
    }
    return nil
}
