/// One token of expression source.
struct ExpressionToken {
    enum Kind: Equatable {
        case identifier(String)
        case int(Int64)
        /// An integer literal too large for Int64 (only valid directly after unary minus when
        /// it is exactly 2^63); kept as its magnitude.
        case intMagnitude(UInt64)
        case uint(UInt64)
        case double(Double)
        case string(String)
        case bytes([UInt8])
        case punctuation(String)
        case end
    }

    let kind: Kind
    /// UTF-8 offset of the first byte.
    let start: Int

    /// How a message names this token: `')'`, `identifier 'foo'`, `end of expression`.
    var display: String {
        switch kind {
        case .identifier(let name): "'\(name)'"
        case .int, .intMagnitude, .uint, .double: "number"
        case .string: "string"
        case .bytes: "bytes"
        case .punctuation(let text): "'\(text)'"
        case .end: "end of expression"
        }
    }
}

/// Splits expression source into tokens: identifiers, number, string and bytes literals
/// (single, double and triple quotes, `r` raw and `b` bytes prefixes, CEL escapes) and
/// punctuation. Errors carry the UTF-8 offset of the offending byte.
struct ExpressionLexer {
    let source: String
    let bytes: [UInt8]
    var index = 0

    init(source: String) {
        self.source = source
        self.bytes = Array(source.utf8)
    }

    func error(_ code: ExpressionError.Code, at position: Int, _ reason: String) -> ExpressionError {
        ExpressionError(code: code, position: position, in: source, reason: reason)
    }

    private func peek(_ offset: Int = 0) -> UInt8? {
        index + offset < bytes.count ? bytes[index + offset] : nil
    }

    private static func isIdentifierStart(_ byte: UInt8) -> Bool {
        (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
            || byte == UInt8(ascii: "_")
    }

    private static func isDigit(_ byte: UInt8) -> Bool {
        byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")
    }

    private static func hexValue(_ byte: UInt8) -> UInt32? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): UInt32(byte - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): UInt32(byte - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): UInt32(byte - UInt8(ascii: "A") + 10)
        default: nil
        }
    }

    /// Reads the next token, skipping whitespace and `//` comments.
    mutating func next() throws(ExpressionError) -> ExpressionToken {
        while let byte = peek() {
            if byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") || byte == UInt8(ascii: "\n")
                || byte == UInt8(ascii: "\r") || byte == 0x0C
            {
                index += 1
            } else if byte == UInt8(ascii: "/"), peek(1) == UInt8(ascii: "/") {
                while let c = peek(), c != UInt8(ascii: "\n") { index += 1 }
            } else {
                break
            }
        }
        let start = index
        guard let byte = peek() else { return ExpressionToken(kind: .end, start: start) }

        // String and bytes literals, with optional r/b prefixes in either order.
        if byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "'") {
            return try string(start: start, raw: false, isBytes: false)
        }
        if Self.isIdentifierStart(byte) {
            var raw = false
            var isBytes = false
            var probe = index
            for _ in 0..<2 {
                guard probe < bytes.count else { break }
                let c = bytes[probe]
                if (c == UInt8(ascii: "r") || c == UInt8(ascii: "R")) && !raw {
                    raw = true
                } else if (c == UInt8(ascii: "b") || c == UInt8(ascii: "B")) && !isBytes {
                    isBytes = true
                } else {
                    break
                }
                probe += 1
                if probe < bytes.count, bytes[probe] == UInt8(ascii: "\"") || bytes[probe] == UInt8(ascii: "'") {
                    index = probe
                    return try string(start: start, raw: raw, isBytes: isBytes)
                }
            }
            while let c = peek(), Self.isIdentifierStart(c) || Self.isDigit(c) { index += 1 }
            let name = String(decoding: bytes[start..<index], as: UTF8.self)
            return ExpressionToken(kind: .identifier(name), start: start)
        }
        if Self.isDigit(byte) || (byte == UInt8(ascii: ".") && peek(1).map(Self.isDigit) == true) {
            return try number(start: start)
        }
        let two = peek(1).map { String(decoding: [byte, $0], as: UTF8.self) } ?? ""
        if ["==", "!=", "<=", ">=", "&&", "||"].contains(two) {
            index += 2
            return ExpressionToken(kind: .punctuation(two), start: start)
        }
        let single = "()[]{}.,:?!-+*/%<>"
        if byte < 0x80, single.utf8.contains(byte) {
            index += 1
            return ExpressionToken(kind: .punctuation(String(UnicodeScalar(byte))), start: start)
        }
        let shown: String
        if byte == UInt8(ascii: "=") {
            throw error(.unexpectedCharacter, at: start, "unexpected '=' (use '==' to compare)")
        } else if byte == UInt8(ascii: "&") || byte == UInt8(ascii: "|") {
            let c = String(UnicodeScalar(byte))
            throw error(.unexpectedCharacter, at: start, "unexpected '\(c)' (use '\(c)\(c)')")
        } else if byte < 0x80 {
            shown = String(UnicodeScalar(byte))
        } else {
            let scalar = String(decoding: bytes[start..<min(start + 4, bytes.count)], as: UTF8.self).unicodeScalars.first
            shown = scalar.map { String(Character($0)) } ?? "?"
        }
        throw error(.unexpectedCharacter, at: start, "unexpected character '\(shown)'")
    }

    private mutating func number(start: Int) throws(ExpressionError) -> ExpressionToken {
        if peek() == UInt8(ascii: "0"), peek(1) == UInt8(ascii: "x") || peek(1) == UInt8(ascii: "X") {
            index += 2
            let digitsStart = index
            while let c = peek(), Self.hexValue(c) != nil { index += 1 }
            guard index > digitsStart else {
                throw error(.invalidNumber, at: start, "expected hexadecimal digits after '0x'")
            }
            let text = String(decoding: bytes[digitsStart..<index], as: UTF8.self)
            guard let magnitude = UInt64(text, radix: 16) else {
                throw error(.invalidNumber, at: start, "hexadecimal literal does not fit in 64 bits")
            }
            return try integerToken(magnitude: magnitude, start: start)
        }
        var isDouble = false
        while let c = peek(), Self.isDigit(c) { index += 1 }
        if peek() == UInt8(ascii: "."), let next = peek(1), Self.isDigit(next) {
            isDouble = true
            index += 1
            while let c = peek(), Self.isDigit(c) { index += 1 }
        }
        if peek() == UInt8(ascii: "e") || peek() == UInt8(ascii: "E") {
            isDouble = true
            index += 1
            if peek() == UInt8(ascii: "+") || peek() == UInt8(ascii: "-") { index += 1 }
            let exponentStart = index
            while let c = peek(), Self.isDigit(c) { index += 1 }
            guard index > exponentStart else {
                throw error(.invalidNumber, at: start, "expected digits in the exponent of a number")
            }
        }
        let text = String(decoding: bytes[start..<index], as: UTF8.self)
        if isDouble {
            guard let value = Double(text) else {
                throw error(.invalidNumber, at: start, "invalid number '\(text)'")
            }
            return ExpressionToken(kind: .double(value), start: start)
        }
        guard let magnitude = UInt64(text) else {
            throw error(.invalidNumber, at: start, "integer literal \(text) does not fit in 64 bits")
        }
        return try integerToken(magnitude: magnitude, start: start)
    }

    private mutating func integerToken(magnitude: UInt64, start: Int) throws(ExpressionError) -> ExpressionToken {
        if peek() == UInt8(ascii: "u") || peek() == UInt8(ascii: "U") {
            index += 1
            return ExpressionToken(kind: .uint(magnitude), start: start)
        }
        if let value = Int64(exactly: magnitude) {
            return ExpressionToken(kind: .int(value), start: start)
        }
        if magnitude == UInt64(Int64.max) + 1 {
            return ExpressionToken(kind: .intMagnitude(magnitude), start: start)
        }
        throw error(.invalidNumber, at: start, "integer literal \(magnitude) does not fit in a 64-bit int (add 'u' for uint)")
    }

    private mutating func string(start: Int, raw: Bool, isBytes: Bool) throws(ExpressionError) -> ExpressionToken {
        let quote = bytes[index]
        let triple = peek(1) == quote && peek(2) == quote
        index += triple ? 3 : 1
        var output: [UInt8] = []
        while true {
            guard let byte = peek() else {
                throw error(.unterminatedString, at: start, "string literal has no closing quote")
            }
            if byte == quote {
                if !triple {
                    index += 1
                    break
                }
                if peek(1) == quote, peek(2) == quote {
                    index += 3
                    break
                }
            }
            if !triple, byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\r") {
                throw error(.unterminatedString, at: start, "string literal has no closing quote before the end of the line")
            }
            if byte == UInt8(ascii: "\\"), !raw {
                try escape(into: &output, isBytes: isBytes)
                continue
            }
            output.append(byte)
            index += 1
        }
        if isBytes { return ExpressionToken(kind: .bytes(output), start: start) }
        return ExpressionToken(kind: .string(String(decoding: output, as: UTF8.self)), start: start)
    }

    private mutating func escape(into output: inout [UInt8], isBytes: Bool) throws(ExpressionError) {
        let escapeStart = index
        index += 1
        guard let byte = peek() else {
            throw error(.unterminatedString, at: escapeStart, "string literal ends inside an escape")
        }
        index += 1
        func appendScalar(_ value: UInt32) throws(ExpressionError) {
            guard let scalar = Unicode.Scalar(value) else {
                throw error(.invalidEscape, at: escapeStart, "escape names an invalid code point")
            }
            output.append(contentsOf: String(Character(scalar)).utf8)
        }
        switch byte {
        case UInt8(ascii: "a"): output.append(0x07)
        case UInt8(ascii: "b"): output.append(0x08)
        case UInt8(ascii: "f"): output.append(0x0C)
        case UInt8(ascii: "n"): output.append(0x0A)
        case UInt8(ascii: "r"): output.append(0x0D)
        case UInt8(ascii: "t"): output.append(0x09)
        case UInt8(ascii: "v"): output.append(0x0B)
        case UInt8(ascii: "\\"), UInt8(ascii: "'"), UInt8(ascii: "\""), UInt8(ascii: "`"), UInt8(ascii: "?"):
            output.append(byte)
        case UInt8(ascii: "x"), UInt8(ascii: "X"), UInt8(ascii: "u"), UInt8(ascii: "U"):
            let count = byte == UInt8(ascii: "u") ? 4 : byte == UInt8(ascii: "U") ? 8 : 2
            var value: UInt32 = 0
            for _ in 0..<count {
                guard let c = peek(), let digit = Self.hexValue(c) else {
                    throw error(.invalidEscape, at: escapeStart, "expected \(count) hexadecimal digits in escape")
                }
                value = value << 4 | digit
                index += 1
            }
            if isBytes, count == 2 {
                output.append(UInt8(value))
            } else {
                try appendScalar(value)
            }
        case UInt8(ascii: "0")...UInt8(ascii: "3"):
            var value = UInt32(byte - UInt8(ascii: "0"))
            for _ in 0..<2 {
                guard let c = peek(), c >= UInt8(ascii: "0"), c <= UInt8(ascii: "7") else {
                    throw error(.invalidEscape, at: escapeStart, "expected 3 octal digits in escape")
                }
                value = value << 3 | UInt32(c - UInt8(ascii: "0"))
                index += 1
            }
            if isBytes { output.append(UInt8(value)) } else { try appendScalar(value) }
        default:
            let shown = byte < 0x80 ? String(UnicodeScalar(byte)) : "?"
            throw error(.invalidEscape, at: escapeStart, "unknown escape '\\\(shown)'")
        }
    }
}
