import CairnCore
import Testing

/// Validates `json` (one element) and returns the error, recording an issue when it passes.
func validationError(
    _ json: String, index: Int?, validation: EventValidation = EventValidation(),
    sourceLocation: SourceLocation = #_sourceLocation
) throws -> EventValidationError? {
    let element = try JSONValue(parsing: json)
    do {
        let event = try validation.validate(element, index: index)
        Issue.record("expected a validation error, got \(event)", sourceLocation: sourceLocation)
        return nil
    } catch {
        return error
    }
}

let name512 = String(repeating: "a", count: 512)
let name513 = String(repeating: "a", count: 513)
let id1024 = String(repeating: "i", count: 1024)
let id1025 = String(repeating: "i", count: 1025)
let accented257 = String(repeating: "é", count: 257)  // 514 UTF-8 bytes

@Suite("Event validation")
struct EventValidationTests {
    @Test(
        "each broken rule is reported with its path and value",
        arguments: [
            // element
            (#"[1]"#, 3, "", EventValidationError.Rule.mustBeObject, #"events[3]: must be an object, got [1]"#),
            (#""x""#, nil, "", .mustBeObject, #"event: must be an object, got "x""#),
            ("null", 0, "", .mustBeObject, "events[0]: must be an object, got null"),
            // name
            ("{}", 0, "name", .required, "events[0].name: required, must be a non-empty string"),
            (#"{"name":null}"#, 0, "name", .required, "events[0].name: required, must be a non-empty string"),
            (#"{"name":42}"#, 2, "name", .mustBeString, "events[2].name: must be a string, got 42"),
            (#"{"name":["a"]}"#, 2, "name", .mustBeString, #"events[2].name: must be a string, got ["a"]"#),
            (#"{"name":""}"#, 0, "name", .mustNotBeEmpty, "events[0].name: must not be empty"),
            (#"{"name":"\#(name513)"}"#, 0, "name", .tooLong, "events[0].name: must be at most 512 bytes, got 513 bytes"),
            (#"{"name":"\#(accented257)"}"#, 0, "name", .tooLong, "events[0].name: must be at most 512 bytes, got 514 bytes"),
            (
                #"{"name":"inngest/function.finished"}"#, 1, "name", .reservedName,
                #"events[1].name: must not start with "inngest/" (reserved for system events), got "inngest/function.finished""#
            ),
            (#"{"name":"a\u0000b"}"#, 0, "name", .containsNUL, #"events[0].name: must not contain the NUL character (U+0000), got "a\u0000b""#),
            (#"{"name":"a","id":"k\u0000"}"#, 0, "id", .containsNUL, #"events[0].id: must not contain the NUL character (U+0000), got "k\u0000""#),
            // data
            (#"{"name":"a","data":[1]}"#, 0, "data", .mustBeObject, "events[0].data: must be an object, got [1]"),
            (#"{"name":"a","data":"str"}"#, 0, "data", .mustBeObject, #"events[0].data: must be an object, got "str""#),
            (#"{"name":"a","data":false}"#, 0, "data", .mustBeObject, "events[0].data: must be an object, got false"),
            // id
            (#"{"name":"a","id":5}"#, 0, "id", .mustBeString, "events[0].id: must be a string, got 5"),
            (#"{"name":"a","id":{}}"#, 0, "id", .mustBeString, "events[0].id: must be a string, got {}"),
            (#"{"name":"a","id":"\#(id1025)"}"#, 4, "id", .tooLong, "events[4].id: must be at most 1024 bytes, got 1025 bytes"),
            // ts
            (
                #"{"name":"a","ts":"tomorrow"}"#, 3, "ts", .mustBeIntegerMilliseconds,
                #"events[3].ts: must be integer milliseconds, got "tomorrow""#
            ),
            (#"{"name":"a","ts":1.7e12}"#, 0, "ts", .mustBeIntegerMilliseconds, "events[0].ts: must be integer milliseconds, got 1.7e12"),
            (
                #"{"name":"a","ts":1700000000000.0}"#, 0, "ts", .mustBeIntegerMilliseconds,
                "events[0].ts: must be integer milliseconds, got 1700000000000.0"
            ),
            (#"{"name":"a","ts":true}"#, 0, "ts", .mustBeIntegerMilliseconds, "events[0].ts: must be integer milliseconds, got true"),
            (
                #"{"name":"a","ts":315532800000}"#, 0, "ts", .outOfRange,
                "events[0].ts: must be integer milliseconds after 1980-01-01 and before 2100-01-01 (315532800000 < ts < 4102444800000), got 315532800000"
            ),
            (
                #"{"name":"a","ts":4102444800000}"#, 0, "ts", .outOfRange,
                "events[0].ts: must be integer milliseconds after 1980-01-01 and before 2100-01-01 (315532800000 < ts < 4102444800000), got 4102444800000"
            ),
            (
                #"{"name":"a","ts":1700000000}"#, 0, "ts", .outOfRange,
                "events[0].ts: must be integer milliseconds after 1980-01-01 and before 2100-01-01 (315532800000 < ts < 4102444800000), got 1700000000"
            ),
            (
                #"{"name":"a","ts":-5}"#, 0, "ts", .outOfRange,
                "events[0].ts: must be integer milliseconds after 1980-01-01 and before 2100-01-01 (315532800000 < ts < 4102444800000), got -5"
            ),
            (
                #"{"name":"a","ts":99999999999999999999}"#, 0, "ts", .outOfRange,
                "events[0].ts: must be integer milliseconds after 1980-01-01 and before 2100-01-01 (315532800000 < ts < 4102444800000), got 99999999999999999999"
            ),
            // v
            (#"{"name":"a","v":1}"#, 0, "v", .mustBeString, "events[0].v: must be a string, got 1"),
            // user
            (#"{"name":"a","user":[]}"#, 0, "user", .mustBeObject, "events[0].user: must be an object, got []"),
            (#"{"name":"a","user":"bob"}"#, nil, "user", .mustBeObject, #"event.user: must be an object, got "bob""#),
            // long values are cut to 40 characters
            (
                #"{"name":"a","data":"0123456789012345678901234567890123456789xyz"}"#, 0, "data", .mustBeObject,
                #"events[0].data: must be an object, got "012345678901234567890123456789012345678…"#
            ),
        ] as [(String, Int?, String, EventValidationError.Rule, String)])
    func rejects(json: String, index: Int?, field: String, rule: EventValidationError.Rule, message: String) throws {
        let error = try #require(try validationError(json, index: index))
        #expect(error.index == index)
        #expect(error.field == field)
        #expect(error.rule == rule)
        #expect(error.description == message)
    }

    @Test(
        "valid elements normalize to the expected event",
        arguments: [
            (#"{"name":"a"}"#, Event(name: "a")),
            (#"{"name":"a","data":null,"id":null,"ts":null,"v":null,"user":null}"#, Event(name: "a")),
            (#"{"name":"a","data":{},"id":"","ts":0}"#, Event(name: "a")),
            (
                #"{"name":"app/x","data":{"k":1,"_inngest":{"fn":"x"},"z":[1]},"id":"abc","ts":1700000000000,"v":"2024-01-01.1","user":{"email":"a@b"},"meta":{"x":1},"extra":true}"#,
                Event(
                    name: "app/x", data: ["k": 1, "z": [1]], id: "abc", ts: 1_700_000_000_000, v: "2024-01-01.1",
                    user: ["email": "a@b"])
            ),
            (#"{"name":"a","ts":315532800001}"#, Event(name: "a", ts: 315_532_800_001)),
            (#"{"name":"a","ts":4102444799999}"#, Event(name: "a", ts: 4_102_444_799_999)),
            (#"{"name":"a","user":{}}"#, Event(name: "a", user: [:])),
            (#"{"name":"\#(name512)"}"#, Event(name: name512)),
            (#"{"name":"a","id":"\#(id1024)"}"#, Event(name: "a", id: id1024)),
            (#"{"name":"INNGEST/x"}"#, Event(name: "INNGEST/x")),
            (#"{"name":"app/inngest/x"}"#, Event(name: "app/inngest/x")),
        ] as [(String, Event)])
    func accepts(json: String, expected: Event) throws {
        let event = try EventValidation().validate(try JSONValue(parsing: json), index: 0)
        #expect(event == expected)
        #expect(event.data.objectValue?["_inngest"] == nil)
    }

    @Test("data._inngest is removed while other keys keep their order")
    func stripsInngestMetadata() throws {
        let element = try JSONValue(parsing: #"{"name":"a","data":{"z":1,"_inngest":{"x":1},"a":2}}"#)
        let event = try EventValidation().validate(element, index: 0)
        #expect(event.data.jsonString == #"{"z":1,"a":2}"#)
    }

    @Test("the server may use reserved names")
    func reservedNamesForServer() throws {
        let element = try JSONValue(parsing: #"{"name":"inngest/function.finished","data":{"run_id":"r"}}"#)
        let event = try EventValidation(allowReservedNames: true).validate(element, index: nil)
        #expect(event.name == "inngest/function.finished")
        #expect(event.data["run_id"] == "r")
        #expect(try validationError(element.jsonString, index: nil)?.rule == .reservedName)
    }

    @Test("canonical JSON has keys in the order name, data, id, ts, user, v")
    func canonicalJSON() throws {
        let full = Event(name: "a", data: ["k": 1], id: "x", ts: 1_700_000_000_000, v: "1", user: [:])
        #expect(full.jsonValue.jsonString == #"{"name":"a","data":{"k":1},"id":"x","ts":1700000000000,"user":{},"v":"1"}"#)
        #expect(Event(name: "a").jsonValue.jsonString == #"{"name":"a","data":{}}"#)
        let reparsed = try EventValidation().validate(try JSONValue(parsing: full.jsonValue.serialized()), index: 0)
        #expect(reparsed == full)
    }
}
