extension JSONValue {
    /// The compact JSON encoding as UTF-8 bytes.
    ///
    /// No whitespace; numbers are their literal text; objects in member order. Strings use
    /// minimal escaping: `"` → `\"`, `\` → `\\`, the control characters U+0008, U+0009, U+000A,
    /// U+000C, U+000D → `\b \t \n \f \r`, other controls below U+0020 → `\u00XX` (lower-case
    /// hex). Everything else, including `/`, U+007F and non-ASCII text, is written as UTF-8.
    /// Parsing input that is compact, has no repeated keys and uses this same escaping, then
    /// serializing it, reproduces the input byte for byte.
    public func serialized() -> [UInt8] {
        var output: [UInt8] = []
        output.reserveCapacity(128)
        write(to: &output)
        return output
    }

    /// The compact JSON encoding (see `serialized()`) as a `String`.
    public var jsonString: String {
        String(decoding: serialized(), as: UTF8.self)
    }

    /// Appends the compact JSON encoding (see `serialized()`) to `output`.
    public func write(to output: inout [UInt8]) {
        switch self {
        case .null:
            output.append(contentsOf: "null".utf8)
        case .bool(let value):
            output.append(contentsOf: value ? "true".utf8 : "false".utf8)
        case .number(let number):
            JSONValue.writeASCII(number.literal, to: &output)
        case .string(let string):
            JSONValue.writeString(string, to: &output)
        case .array(let elements):
            output.append(UInt8(ascii: "["))
            for (offset, element) in elements.enumerated() {
                if offset > 0 { output.append(UInt8(ascii: ",")) }
                element.write(to: &output)
            }
            output.append(UInt8(ascii: "]"))
        case .object(let object):
            output.append(UInt8(ascii: "{"))
            for (offset, member) in object.members.enumerated() {
                if offset > 0 { output.append(UInt8(ascii: ",")) }
                JSONValue.writeString(member.key, to: &output)
                output.append(UInt8(ascii: ":"))
                member.value.write(to: &output)
            }
            output.append(UInt8(ascii: "}"))
        }
    }

    /// Appends `string` as a quoted JSON string with minimal escaping.
    public static func writeString(_ string: String, to output: inout [UInt8]) {
        output.append(UInt8(ascii: "\""))
        let written: Void? = string.utf8.withContiguousStorageIfAvailable { utf8 in
            writeEscaped(utf8, to: &output)
        }
        if written == nil {
            var copy = string
            copy.withUTF8 { writeEscaped($0, to: &output) }
        }
        output.append(UInt8(ascii: "\""))
    }

    /// Appends UTF-8 string content, copying runs that need no escaping in one go.
    private static func writeEscaped(_ utf8: UnsafeBufferPointer<UInt8>, to output: inout [UInt8]) {
        var runStart = 0
        for index in 0..<utf8.count {
            let byte = utf8[index]
            let letter: UInt8
            switch byte {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"): letter = byte
            case 0x08: letter = UInt8(ascii: "b")
            case 0x09: letter = UInt8(ascii: "t")
            case 0x0A: letter = UInt8(ascii: "n")
            case 0x0C: letter = UInt8(ascii: "f")
            case 0x0D: letter = UInt8(ascii: "r")
            case 0..<0x20: letter = UInt8(ascii: "u")
            default: continue
            }
            if runStart < index {
                output.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart..<index]))
            }
            runStart = index + 1
            output.append(UInt8(ascii: "\\"))
            output.append(letter)
            if letter == UInt8(ascii: "u") {
                output.append(UInt8(ascii: "0"))
                output.append(UInt8(ascii: "0"))
                output.append(hexDigits[Int(byte >> 4)])
                output.append(hexDigits[Int(byte & 0xF)])
            }
        }
        if runStart < utf8.count {
            output.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart...]))
        }
    }

    /// Appends text known to be ASCII (number literals) without escaping.
    private static func writeASCII(_ text: String, to output: inout [UInt8]) {
        let written: Void? = text.utf8.withContiguousStorageIfAvailable { output.append(contentsOf: $0) }
        if written == nil { output.append(contentsOf: text.utf8) }
    }

    private static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)
}
