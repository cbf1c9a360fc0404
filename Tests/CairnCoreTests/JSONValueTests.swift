import CairnCore
import Foundation
import Testing

/// Parses `text`, returning the error or recording an issue when it parses.
func parseError(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) -> JSONParseError? {
    do {
        let value = try JSONValue(parsing: text)
        Issue.record("expected a parse error, got \(value)", sourceLocation: sourceLocation)
        return nil
    } catch {
        return error
    }
}

/// Parses raw bytes, returning the error or recording an issue when they parse.
func parseError(bytes: [UInt8], sourceLocation: SourceLocation = #_sourceLocation) -> JSONParseError? {
    do {
        let value = try JSONValue(parsing: bytes)
        Issue.record("expected a parse error, got \(value)", sourceLocation: sourceLocation)
        return nil
    } catch {
        return error
    }
}

@Suite("JSON round trip")
struct JSONRoundTripTests {
    @Test(
        "compact minimal-escaped input serializes back byte for byte",
        arguments: [
            "null", "true", "false", "0", "-0", "-0.0", "7",
            "12345678901234567890123", "-12345678901234567890123", "18446744073709551616",
            "1.5e300", "0.1", "1e400", "-1e-400", "1E+2", "-1.25e-7", "2.50", "1e05",
            #""""#, #""a\"b\\c""#, #""\n\t\r\b\f""#, #""\u0000\u0001\u001f""#, #""/""#,
            #""é日本😀""#, "\"\u{7F}\"", #""\u000b""#,
            "[]", "{}", "[[]]", "[1,[2,[3,{}]]]", #"{"":""}"#,
            #"{"b":1,"a":2,"c":{"z":null,"y":[true,false]}}"#,
            #"{"name":"app/user.created","data":{"id":12345678901234567890123,"tags":["x","y"]},"ts":1700000000000}"#,
            #"[{"z":1,"a":2,"m":3},{"a":2,"z":1,"m":3}]"#,
        ])
    func roundTrip(text: String) throws {
        let value = try JSONValue(parsing: text)
        #expect(value.jsonString == text)
        #expect(value.serialized() == Array(text.utf8))
        #expect(try JSONValue(parsing: value.serialized()) == value)
    }

    @Test(
        "whitespace and non-minimal escapes normalize to compact minimal form",
        arguments: [
            (" { \"a\" : [ 1 , 2 ] ,\n\t\"b\" : { } } \r\n", #"{"a":[1,2],"b":{}}"#),
            (#""\/""#, #""/""#),
            (#""\u00e9\u00E9""#, #""éé""#),
            (#""\ud83d\ude00""#, #""😀""#),
            (#""\uD83D\uDE00x""#, #""😀x""#),
            (#""\u0041\u000A\u001F""#, #""A\n\u001f""#),
            (#""\u2028""#, "\"\u{2028}\""),
            ("[ ]", "[]"),
        ])
    func normalizes(input: String, output: String) throws {
        #expect(try JSONValue(parsing: input).jsonString == output)
    }

    @Test("escaped surrogate pairs decode to one scalar")
    func surrogatePairs() throws {
        let value = try JSONValue(parsing: #""\ud83d\ude00""#)
        let string = try #require(value.stringValue)
        #expect(string.unicodeScalars.map(\.value) == [0x1F600])
        #expect(value.serialized() == [0x22, 0xF0, 0x9F, 0x98, 0x80, 0x22])
    }

    @Test("strings built in Swift escape only what they must")
    func serializerEscaping() {
        let value = JSONValue.string("q\"b\\s/\u{8}\u{C}\n\r\t\u{0}\u{1B}\u{7F}é")
        #expect(value.jsonString == #""q\"b\\s/\b\f\n\r\t\u0000\u001b"# + "\u{7F}é\"")
    }

    @Test("object keys keep their order; a repeated key keeps first position and last value")
    func keyOrderAndDuplicates() throws {
        let value = try JSONValue(parsing: #"{"z":1,"a":2,"z":3,"m":{"k":1,"k":2}}"#)
        #expect(value.objectValue?.keys == ["z", "a", "m"])
        #expect(value.jsonString == #"{"z":3,"a":2,"m":{"k":2}}"#)
    }

    @Test("duplicates in objects larger than the linear-scan limit")
    func manyKeysWithDuplicates() throws {
        let keys = (0..<40).map { "k\($0)" }
        var text = "{" + keys.enumerated().map { "\"\($1)\":\($0)" }.joined(separator: ",")
        text += ",\"k3\":\"again\",\"k39\":true}"
        let value = try JSONValue(parsing: text)
        let object = try #require(value.objectValue)
        #expect(object.keys == keys)
        #expect(object["k3"] == "again")
        #expect(object["k39"] == true)
        #expect(object["k38"] == 38)
    }

    @Test("parses from Data, arrays, and non-contiguous collections")
    func byteSources() throws {
        let text = #"{"a":[1,"é"]}"#
        let expected = try JSONValue(parsing: text)
        #expect(try JSONValue(parsing: Data(text.utf8)) == expected)
        #expect(try JSONValue(parsing: Array(text.utf8)) == expected)
        #expect(try JSONValue(parsing: text.utf8.lazy.map { $0 }) == expected)
        #expect(try JSONValue(parsing: Substring(text).utf8) == expected)
    }

    @Test("nesting up to 512 levels parses; 513 is an error")
    func nestingLimit() throws {
        let deepest = String(repeating: "[", count: 512) + String(repeating: "]", count: 512)
        let value = try JSONValue(parsing: deepest)
        #expect(value.jsonString == deepest)

        let tooDeep = String(repeating: "[", count: 513) + String(repeating: "]", count: 513)
        let error = try #require(parseError(tooDeep))
        #expect(error.code == .nestingTooDeep)
        #expect(error.offset == 512)

        let objects = String(repeating: #"{"a":"#, count: 513) + "1" + String(repeating: "}", count: 513)
        #expect(parseError(objects)?.code == .nestingTooDeep)
        let mixed = String(repeating: #"[{"a":"#, count: 256) + "1" + String(repeating: "}]", count: 256)
        #expect(try JSONValue(parsing: mixed).jsonString == mixed)
    }
}

@Suite("JSON parse errors")
struct JSONParseErrorTests {
    @Test(
        "invalid input reports a code and byte offset",
        arguments: [
            ("", JSONParseError.Code.unexpectedEndOfInput, 0),
            ("   ", .unexpectedEndOfInput, 3),
            ("[", .unexpectedEndOfInput, 1),
            ("[1,2", .unexpectedEndOfInput, 4),
            (#"{"a":1"#, .unexpectedEndOfInput, 6),
            (#"{"a""#, .unexpectedEndOfInput, 4),
            ("[1,]", .trailingComma, 2),
            ("[1, ]", .trailingComma, 2),
            (#"{"a":1,}"#, .trailingComma, 6),
            ("01", .invalidNumber, 0),
            ("-01", .invalidNumber, 1),
            ("[00]", .invalidNumber, 1),
            ("-", .invalidNumber, 1),
            ("-a", .invalidNumber, 1),
            ("1.", .invalidNumber, 2),
            ("1.e5", .invalidNumber, 2),
            ("1e", .invalidNumber, 2),
            ("1e+", .invalidNumber, 3),
            (".5", .unexpectedCharacter, 0),
            ("+1", .unexpectedCharacter, 0),
            ("NaN", .unexpectedCharacter, 0),
            ("tru", .invalidLiteral, 0),
            ("[tru]", .invalidLiteral, 1),
            ("nul", .invalidLiteral, 0),
            ("fals", .invalidLiteral, 0),
            ("True", .unexpectedCharacter, 0),
            ("truex", .trailingData, 4),
            ("1 2", .trailingData, 2),
            ("{}{}", .trailingData, 2),
            (#""abc"#, .unexpectedEndOfInput, 0),
            (#"["a\"]"#, .unexpectedEndOfInput, 1),
            ("\"a\u{1}b\"", .controlCharacterInString, 2),
            ("\"a\tb\"", .controlCharacterInString, 2),
            ("\"a\nb\"", .controlCharacterInString, 2),
            ("\"\\n\u{0}\"", .controlCharacterInString, 3),
            (#""\x""#, .invalidEscape, 1),
            (#""\u12""#, .invalidEscape, 1),
            (#""\u12g4""#, .invalidEscape, 1),
            (#""ab\ud800""#, .loneSurrogate, 3),
            (#""\udc00""#, .loneSurrogate, 1),
            (#""\ud800\u0041""#, .loneSurrogate, 1),
            (#""\ud800x""#, .loneSurrogate, 1),
            ("[1 2]", .unexpectedCharacter, 3),
            (#"{"a" 1}"#, .unexpectedCharacter, 5),
            ("{a:1}", .unexpectedCharacter, 1),
            (#"{"a":1 "b":2}"#, .unexpectedCharacter, 7),
            ("[,1]", .unexpectedCharacter, 1),
            ("]", .unexpectedCharacter, 0),
        ] as [(String, JSONParseError.Code, Int)])
    func invalidInput(text: String, code: JSONParseError.Code, offset: Int) throws {
        let error = try #require(parseError(text))
        #expect(error.code == code)
        #expect(error.offset == offset)
    }

    @Test(
        "invalid UTF-8 inside strings is rejected at the bad byte",
        arguments: [
            ([0x22, 0x61, 0xFF, 0x22], 2),
            ([0x22, 0xC0, 0x80, 0x22], 1),
            ([0x22, 0x61, 0x62, 0xE2, 0x82, 0x22], 3),
            ([0x22, 0xED, 0xA0, 0x80, 0x22], 1),
            ([0x22, 0x5C, 0x6E, 0x80, 0x22], 3),
        ] as [([UInt8], Int)])
    func invalidUTF8(bytes: [UInt8], offset: Int) throws {
        let error = try #require(parseError(bytes: bytes))
        #expect(error.code == .invalidUTF8)
        #expect(error.offset == offset)
    }

    @Test("messages say where and why")
    func messages() throws {
        #expect(parseError("[1,]")?.description == "invalid JSON at byte 2: trailing comma before ']'")
        #expect(parseError("01")?.description == "invalid JSON at byte 0: leading zeros are not allowed in numbers")
        #expect(parseError("-")?.description == "invalid JSON at byte 1: expected a digit after '-', got end of input")
        #expect(parseError("tru")?.description == "invalid JSON at byte 0: invalid literal, expected 'true'")
        #expect(parseError(#""abc"#)?.description == "invalid JSON at byte 0: unterminated string")
        #expect(
            parseError("[1 2]")?.description
                == "invalid JSON at byte 3: expected ',' or ']' after an array element, got '2'")
        #expect(
            parseError("\"a\u{1}\"")?.description
                == "invalid JSON at byte 2: control character byte 0x01 must be escaped in a string")
        #expect(
            parseError(#""\udc00""#)?.description
                == #"invalid JSON at byte 1: lone low surrogate \uDC00 is not a Unicode scalar"#)
    }
}

@Suite("JSON numbers")
struct JSONNumberTests {
    @Test(
        "accessors report integer-ness and conversions",
        arguments: [
            ("0", true, Int64(0), 0.0),
            ("-0", true, 0, -0.0),
            ("42", true, 42, 42),
            ("9223372036854775807", true, Int64.max, 9.223372036854775807e18),
            ("-9223372036854775808", true, Int64.min, -9.223372036854775808e18),
            ("9223372036854775808", true, nil, 9.223372036854775808e18),
            ("12345678901234567890123", true, nil, 1.2345678901234568e22),
            ("1.0", false, nil, 1),
            ("1700000000000.0", false, nil, 1.7e12),
            ("1.7e12", false, nil, 1.7e12),
            ("1e3", false, nil, 1000),
            ("0.1", false, nil, 0.1),
            ("1.5e300", false, nil, 1.5e300),
            ("1e400", false, nil, .infinity),
            ("-1e400", false, nil, -.infinity),
        ] as [(String, Bool, Int64?, Double)])
    func accessors(literal: String, isInteger: Bool, int64: Int64?, double: Double) throws {
        let number = try #require(JSONNumber(literal: literal))
        #expect(number.literal == literal)
        #expect(number.isInteger == isInteger)
        #expect(number.int64Value == int64)
        #expect(number.doubleValue == double)
        #expect(number.doubleValue.sign == double.sign)
    }

    @Test(
        "literal validation follows the JSON grammar",
        arguments: [
            ("0", true), ("-0", true), ("1e5", true), ("1E-5", true), ("10.25", true),
            ("", false), ("-", false), ("01", false), ("+1", false), (".5", false), ("5.", false),
            ("1e", false), (" 1", false), ("1 ", false), ("NaN", false), ("Infinity", false),
            ("0x10", false), ("1_000", false),
        ] as [(String, Bool)])
    func literalValidation(literal: String, valid: Bool) {
        #expect((JSONNumber(literal: literal) != nil) == valid)
    }

    @Test("numbers from Swift values")
    func fromSwift() throws {
        #expect(JSONNumber(Int64(-5)).literal == "-5")
        #expect(JSONNumber(UInt64.max).literal == "18446744073709551615")
        #expect(JSONNumber(0.1)?.literal == "0.1")
        #expect(JSONNumber(5.0)?.literal == "5.0")
        #expect(JSONNumber(Double.nan) == nil)
        #expect(JSONNumber(Double.infinity) == nil)
        let value: JSONValue = 1.5e300
        #expect(try JSONValue(parsing: value.jsonString) == value)
    }

    @Test(
        "equality is exact decimal value",
        arguments: [
            ("1", "1.0", true), ("1", "10e-1", true), ("1", "0.1e1", true), ("100", "1e2", true),
            ("0", "-0", true), ("0", "0.000e10", true), ("-1.5", "-15e-1", true),
            ("1", "-1", false), ("1", "1.0000000000000000000001", false), ("1e400", "1e401", false),
            ("12345678901234567890123", "12345678901234567890124", false),
        ] as [(String, String, Bool)])
    func equality(lhs: String, rhs: String, equal: Bool) throws {
        let a = try #require(JSONNumber(literal: lhs))
        let b = try #require(JSONNumber(literal: rhs))
        #expect((a == b) == equal)
        if equal {
            #expect(a.hashValue == b.hashValue)
            #expect(Set([JSONValue.number(a), .number(b)]).count == 1)
        }
    }
}

@Suite("JSON value API")
struct JSONValueAPITests {
    @Test("literals build the expected JSON")
    func literals() {
        let value: JSONValue = ["a": 1, "b": [true, nil, 1.5, "x"], "c": [:], "a2": -3]
        #expect(value.jsonString == #"{"a":1,"b":[true,null,1.5,"x"],"c":{},"a2":-3}"#)
    }

    @Test("typed accessors return nil for other kinds")
    func accessors() throws {
        let value = try JSONValue(parsing: #"{"s":"x","n":12,"b":false,"z":null,"a":[1,2],"o":{"k":"v"}}"#)
        #expect(value["s"]?.stringValue == "x")
        #expect(value["n"]?.int64Value == 12)
        #expect(value["n"]?.doubleValue == 12)
        #expect(value["b"]?.boolValue == false)
        #expect(value["z"]?.isNull == true)
        #expect(value["a"]?[1] == 2)
        #expect(value["a"]?[2] == nil)
        #expect(value["a"]?[-1] == nil)
        #expect(value["o"]?["k"] == "v")
        #expect(value["missing"] == nil)
        #expect(value["s"]?.int64Value == nil)
        #expect(value["n"]?.stringValue == nil)
        #expect(value["a"]?.objectValue == nil)
        #expect(value["o"]?.arrayValue == nil)
        #expect(value["z"]?.boolValue == nil)
        #expect(value[0] == nil)
        #expect(JSONValue.string("x")["k"] == nil)
        #expect(value["a"]?.arrayValue?.count == 2)
        #expect(value.objectValue?.count == 6)
    }

    @Test("setValue replaces in place or appends; removeValue keeps the order of the rest")
    func mutation() throws {
        var value = try JSONValue(parsing: #"{"a":1,"_inngest":{"x":1},"b":2}"#)
        value.setValue("one", forKey: "a")
        value.setValue(3, forKey: "c")
        #expect(value.jsonString == #"{"a":"one","_inngest":{"x":1},"b":2,"c":3}"#)
        #expect(value.removeValue(forKey: "_inngest") == ["x": 1])
        #expect(value.removeValue(forKey: "_inngest") == nil)
        #expect(value.jsonString == #"{"a":"one","b":2,"c":3}"#)
        var notObject: JSONValue = [1]
        #expect(notObject.removeValue(forKey: "a") == nil)
        #expect(notObject == [1])

        var object = try #require(value.objectValue)
        object["b"] = nil
        object["d"] = .null
        #expect(JSONValue.object(object).jsonString == #"{"a":"one","c":3,"d":null}"#)
    }

    @Test("object equality ignores member order; arrays do not")
    func equality() throws {
        let a = try JSONValue(parsing: #"{"x":1,"y":[1,2],"z":{"p":true,"q":null}}"#)
        let b = try JSONValue(parsing: #"{"z":{"q":null,"p":true},"y":[1,2],"x":1.0}"#)
        let c = try JSONValue(parsing: #"{"x":1,"y":[2,1],"z":{"p":true,"q":null}}"#)
        let d = try JSONValue(parsing: #"{"x":1,"y":[1,2]}"#)
        #expect(a == b)
        #expect(a.hashValue == b.hashValue)
        #expect(a != c)
        #expect(a != d)
        #expect(Set([a, b, c, d]).count == 3)
        #expect(JSONValue.string("1") != 1)
        #expect(JSONValue.null != false)
    }

    @Test("large objects compare without regard to order")
    func largeObjectEquality() {
        let members = (0..<50).map { (key: "k\($0)", value: JSONValue.number(JSONNumber($0))) }
        let forward = JSONObject(members: members)
        let backward = JSONObject(members: members.reversed())
        var changed = backward
        changed["k7"] = "x"
        #expect(forward == backward)
        #expect(forward.hashValue == backward.hashValue)
        #expect(forward != changed)
    }
}
