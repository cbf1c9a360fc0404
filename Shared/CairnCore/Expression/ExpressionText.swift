/// Text conversions the expression language needs: number formatting and parsing, base64,
/// and byte-exact string comparison. Pure standard library.
enum ExpressionText {
    // MARK: Strings

    /// Byte-wise (code point order) equality: unlike `String ==`, canonically equivalent but
    /// differently encoded texts (`é` vs `e` + U+0301) are different, as in CEL.
    static func bytesEqual(_ lhs: String, _ rhs: String) -> Bool {
        guard lhs.utf8.count == rhs.utf8.count else { return false }
        var left = lhs
        var right = rhs
        return left.withUTF8 { a in right.withUTF8 { b in a.elementsEqual(b) } }
    }

    /// Byte-wise ordering of UTF-8, which is code point order.
    static func compare(_ lhs: String, _ rhs: String) -> Int {
        var left = lhs.utf8.makeIterator()
        var right = rhs.utf8.makeIterator()
        while true {
            switch (left.next(), right.next()) {
            case (nil, nil): return 0
            case (nil, _): return -1
            case (_, nil): return 1
            case (let a?, let b?):
                if a != b { return a < b ? -1 : 1 }
            }
        }
    }

    /// True when `needle`'s bytes occur in `haystack`'s.
    static func contains(_ haystack: String, _ needle: String) -> Bool {
        let hay = Array(haystack.utf8)
        let pin = Array(needle.utf8)
        if pin.isEmpty { return true }
        if pin.count > hay.count { return false }
        let first = pin[0]
        var start = 0
        let last = hay.count - pin.count
        while start <= last {
            if hay[start] == first {
                var offset = 1
                while offset < pin.count, hay[start + offset] == pin[offset] { offset += 1 }
                if offset == pin.count { return true }
            }
            start += 1
        }
        return false
    }

    // MARK: Doubles

    /// A double as Go's shortest `%g` text, which is what CEL's `string(double)` gives:
    /// `1.5`, `100`, `1e+06`, `1.234e-05`, `NaN`, `+Inf`, `-Inf`, `-0`.
    ///
    /// Digits are the shortest that read back as the same double; the exponent form (with at
    /// least two exponent digits) is used when the decimal exponent is below −4 or at least 6.
    static func formatDouble(_ value: Double) -> String {
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value < 0 ? "-Inf" : "+Inf" }
        let negative = value.sign == .minus
        if value == 0 { return negative ? "-0" : "0" }
        // Swift's description is the shortest round-trip text; take its digits and exponent.
        let text = value.magnitude.description
        var mantissa = Substring(text)
        var exponent = 0
        if let e = text.firstIndex(where: { $0 == "e" || $0 == "E" }) {
            mantissa = text[..<e]
            exponent = Int(text[text.index(after: e)...]) ?? 0
        }
        var digits: [UInt8] = []
        var pointPosition = 0
        var seenPoint = false
        for byte in mantissa.utf8 {
            if byte == UInt8(ascii: ".") {
                seenPoint = true
                continue
            }
            digits.append(byte)
            if !seenPoint { pointPosition += 1 }
        }
        while let first = digits.first, first == UInt8(ascii: "0"), digits.count > 1 {
            digits.removeFirst()
            pointPosition -= 1
        }
        while let last = digits.last, last == UInt8(ascii: "0"), digits.count > 1 {
            digits.removeLast()
        }
        let decimalPoint = pointPosition + exponent
        let decimalExponent = decimalPoint - 1
        var output = negative ? "-" : ""
        if decimalExponent < -4 || decimalExponent >= 6 {
            output.append(Character(Unicode.Scalar(digits[0])))
            if digits.count > 1 {
                output.append(".")
                output.append(String(decoding: digits[1...], as: UTF8.self))
            }
            output.append(decimalExponent < 0 ? "e-" : "e+")
            let magnitude = String(abs(decimalExponent))
            if magnitude.count < 2 { output.append("0") }
            output.append(magnitude)
        } else if decimalPoint <= 0 {
            output.append("0.")
            output.append(String(repeating: "0", count: -decimalPoint))
            output.append(String(decoding: digits, as: UTF8.self))
        } else if decimalPoint >= digits.count {
            output.append(String(decoding: digits, as: UTF8.self))
            output.append(String(repeating: "0", count: decimalPoint - digits.count))
        } else {
            output.append(String(decoding: digits[..<decimalPoint], as: UTF8.self))
            output.append(".")
            output.append(String(decoding: digits[decimalPoint...], as: UTF8.self))
        }
        return output
    }

    /// The double as Int64 when it is a whole number in range; nil otherwise. Written with a
    /// truncating conversion and a round trip, so it needs no C math library.
    static func exactInt64(_ value: Double) -> Int64? {
        guard value >= -9_223_372_036_854_775_808.0, value < 9_223_372_036_854_775_808.0 else { return nil }
        let integer = Int64(value)
        return Double(integer) == value ? integer : nil
    }

    /// Parses a signed decimal integer with no surrounding space (`-12`, `+7`); nil otherwise.
    static func parseInt(_ text: String) -> Int64? {
        Int64(text)
    }

    /// Parses a decimal floating-point number (`1.5`, `-2e3`, `.5`, `inf`, `NaN`); nil otherwise.
    static func parseDouble(_ text: String) -> Double? {
        guard !text.isEmpty, text.first?.isWhitespace == false, text.last?.isWhitespace == false else { return nil }
        if text.lowercased().hasPrefix("0x") || text.lowercased().hasPrefix("-0x") || text.lowercased().hasPrefix("+0x") {
            return nil
        }
        return Double(text)
    }

    // MARK: Base64

    private static let base64Alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    /// Standard base64 with `=` padding.
    static func base64Encode(_ bytes: [UInt8]) -> String {
        var output: [UInt8] = []
        output.reserveCapacity((bytes.count + 2) / 3 * 4)
        var index = 0
        while index + 3 <= bytes.count {
            let chunk = UInt32(bytes[index]) << 16 | UInt32(bytes[index + 1]) << 8 | UInt32(bytes[index + 2])
            for shift in stride(from: 18, through: 0, by: -6) {
                output.append(base64Alphabet[Int(chunk >> UInt32(shift) & 63)])
            }
            index += 3
        }
        let rest = bytes.count - index
        if rest > 0 {
            var chunk = UInt32(bytes[index]) << 16
            if rest == 2 { chunk |= UInt32(bytes[index + 1]) << 8 }
            output.append(base64Alphabet[Int(chunk >> 18 & 63)])
            output.append(base64Alphabet[Int(chunk >> 12 & 63)])
            output.append(rest == 2 ? base64Alphabet[Int(chunk >> 6 & 63)] : UInt8(ascii: "="))
            output.append(UInt8(ascii: "="))
        }
        return String(decoding: output, as: UTF8.self)
    }

    /// Decodes standard base64 (`+`, `/`). Padding is optional, but when present it must be
    /// correct; whitespace and other bytes make it fail (nil).
    static func base64Decode(_ text: String) -> [UInt8]? {
        var values: [UInt8] = []
        values.reserveCapacity(text.utf8.count)
        var padding = 0
        for byte in text.utf8 {
            if byte == UInt8(ascii: "=") {
                padding += 1
                continue
            }
            if padding > 0 { return nil }
            let value: UInt8
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): value = byte - UInt8(ascii: "A")
            case UInt8(ascii: "a")...UInt8(ascii: "z"): value = byte - UInt8(ascii: "a") + 26
            case UInt8(ascii: "0")...UInt8(ascii: "9"): value = byte - UInt8(ascii: "0") + 52
            case UInt8(ascii: "+"): value = 62
            case UInt8(ascii: "/"): value = 63
            default: return nil
            }
            values.append(value)
        }
        let remainder = values.count % 4
        if remainder == 1 { return nil }
        if padding > 0, (values.count + padding) % 4 != 0 || padding > 2 { return nil }
        var output: [UInt8] = []
        output.reserveCapacity(values.count * 3 / 4)
        var index = 0
        while index + 4 <= values.count {
            let chunk = UInt32(values[index]) << 18 | UInt32(values[index + 1]) << 12
                | UInt32(values[index + 2]) << 6 | UInt32(values[index + 3])
            output.append(UInt8(chunk >> 16 & 0xFF))
            output.append(UInt8(chunk >> 8 & 0xFF))
            output.append(UInt8(chunk & 0xFF))
            index += 4
        }
        if remainder >= 2 {
            var chunk = UInt32(values[index]) << 18 | UInt32(values[index + 1]) << 12
            if remainder == 3 { chunk |= UInt32(values[index + 2]) << 6 }
            output.append(UInt8(chunk >> 16 & 0xFF))
            if remainder == 3 { output.append(UInt8(chunk >> 8 & 0xFF)) }
        }
        return output
    }
}
