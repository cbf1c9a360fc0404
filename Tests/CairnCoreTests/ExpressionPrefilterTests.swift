import CairnCore
import Testing

/// `Expression.eventPrefilter` / `outputPrefilter`: what a search pushes down to the store.
@Suite("Expression prefilter")
struct ExpressionPrefilterTests {
    static func json(_ text: String) -> JSONValue { try! JSONValue(parsing: text) }

    @Test(
        "equalities with string and bool literals in the top-level && chain are taken",
        arguments: [
            (#"event.data.userId == "u-42""#, #"{"data":{"userId":"u-42"}}"#),
            (#""u-42" == event.data.userId"#, #"{"data":{"userId":"u-42"}}"#),
            (#"event.data.userId == "u-42" && event.data.vip == true"#, #"{"data":{"userId":"u-42","vip":true}}"#),
            (#"event.name == "shop/a" && (event.data.a.b == 'x' && event.data.a.c == false)"#, #"{"name":"shop/a","data":{"a":{"b":"x","c":false}}}"#),
            (#"event.data["user-id"] == "u" && event.data.n > 3"#, #"{"data":{"user-id":"u"}}"#),
            (#"event.data.a == "x" && output.total > 100"#, #"{"data":{"a":"x"}}"#),
            (#"event.data.a == "x" || event.data.a == "y" && event.data.b == "z""#, nil),
            // A contradiction keeps what came first.
            (#"event.data.a == "x" && event.data.a == "y""#, #"{"data":{"a":"x"}}"#),
            (#"event.data.a == "x" && event.data.a.b == "y""#, #"{"data":{"a":"x"}}"#),
            (#"event.data.a == "x" && event.data.a == "x""#, #"{"data":{"a":"x"}}"#),
        ] as [(String, String?)])
    func taken(source: String, expected: String?) throws {
        let prefilter = try Expression(compiling: source).eventPrefilter
        #expect(prefilter == expected.map(Self.json), "got \(prefilter.map(\.jsonString) ?? "nil")")
    }

    @Test(
        "anything else gives nothing",
        arguments: [
            #"event.data.a == "x" || event.data.b == "y""#, #"event.data.a != "x""#, #"!(event.data.a == "x")"#,
            #"event.data.a == null"#, #"event.data.a in ["x", "y"]"#, "event.data.n == 3", "event.data.n == 3.5", "event.data.n == 3u",
            #"event.data.a == ["x"]"#, #"event.data.a == {"k": "x"}"#, #"event.data.a == b'x'"#,
            #"event.data.a.startsWith("x")"#, #"event.data.items.exists(i, i.sku == "x")"#, #"event.data.v ? event.data.a == "x" : false"#,
            #"event.data.a == event.data.b"#, #"size(event.data.a) == 1"#, #"lowercase(event.data.a) == "x""#,
            #"event.data[event.data.k] == "x""#, #"event.data.list[0] == "x""#, #"event.data["é"] == "x""#,
            #"event.data.a == "x\u0000y""#, #"async.data.a == "x""#, #"output.a == "x""#, "true",
        ])
    func nothing(source: String) throws {
        #expect(try Expression(compiling: source).eventPrefilter == nil)
    }

    @Test func output() throws {
        let expression = try Expression(compiling: #"output.status == "ok" && output.paid == true && event.data.a == "x""#)
        #expect(expression.outputPrefilter == Self.json(#"{"status":"ok","paid":true}"#))
        #expect(expression.eventPrefilter == Self.json(#"{"data":{"a":"x"}}"#))
        #expect(try Expression(compiling: #"event.data.a == "x""#).outputPrefilter == nil)
        #expect(try Expression(compiling: #"output == "done""#).outputPrefilter == "done")
    }

    static let events = [
        #"{"name":"shop/a","data":{"userId":"u-42","vip":true,"a":"x","b":"z","n":3,"tags":["x"]}}"#,
        #"{"name":"shop/a","data":{"userId":"u-42","vip":false,"a":"y","n":3.0,"list":["x"]}}"#,
        #"{"name":"shop/b","data":{"userId":"u-7","a":{"b":"y"},"user-id":"u","k":"a"}}"#,
        #"{"name":"shop/a","data":{"userId":"u-42","a":"x","nested":{"userId":"u-42"},"n":3.0000000000000001}}"#,
        #"{"name":"shop/a","data":[{"userId":"u-42"}]}"#,
        #"{"name":"shop/a","data":{"userId":"u-42\u0000","a":null}}"#,
        #"{"name":"shop/a"}"#,
        #"{"data":{"userId":"u\u00e9","v":true,"a":"x"}}"#,
    ].map(json)
    static let outputs = [#"{"status":"ok","paid":true}"#, #"{"status":"ok","paid":"true"}"#, #""done""#, #"["done"]"#, "null", "3"].map(json)

    @Test(
        "whenever the expression is true, the event and output contain the prefilters",
        arguments: [
            #"event.data.userId == "u-42""#, #"event.data.userId == "u-42" && event.data.vip == true"#,
            #"event.data.userId == "u-42" && event.data.a == "x" && event.data.n >= 3"#,
            #"event.name == "shop/a" && (event.data.a == "y" || event.data.b == "z")"#,
            #"event.data.a.b == "y" && event.data["user-id"] == "u""#, #"event.data[event.data.k] == event.data.a"#,
            #"event.data.userId == "u\u00e9" && event.data.v"#, #"event.data.userId == "u-42" && event.data.vip != false"#,
            #"output.status == "ok" && output.paid == true"#, #"output == "done" || output.status == "ok""#, #"output == "done""#,
            #"event.data.userId == "u-42" && output.status == "ok""#,
        ])
    func sound(source: String) throws {
        let expression = try Expression(compiling: source)
        var matched = 0
        for event in Self.events {
            for output in Self.outputs {
                var activation = ExpressionActivation(event: event, nowMilliseconds: 0)
                activation.output = output
                guard (try? expression.evaluateBool(activation)) == true else { continue }
                matched += 1
                #expect(expression.eventPrefilter.map(event.contains) ?? true, "\(event) does not contain \(expression.eventPrefilter!)")
                #expect(expression.outputPrefilter.map(output.contains) ?? true, "\(output) does not contain \(expression.outputPrefilter!)")
            }
        }
        #expect(matched > 0, "no sample matches \(source): the check is empty")
    }

    /// Why numbers are not pushed down: the language reads a JSON number that is not an Int64
    /// integer as a double, so `== 3` holds for `3.0000000000000001`, which containment (exact
    /// decimals, as Postgres compares them) rejects.
    @Test func numbersWouldNotBeSound() throws {
        let event = Self.json(#"{"data":{"n":3.0000000000000001}}"#)
        #expect(try Expression(compiling: "event.data.n == 3").evaluateBool(ExpressionActivation(event: event, nowMilliseconds: 0)))
        #expect(!event.contains(Self.json(#"{"data":{"n":3}}"#)))
    }
}

/// `JSONValue.contains`, which mirrors Postgres's `jsonb @>`.
@Suite("JSON containment")
struct JSONContainmentTests {
    @Test(
        "containment as jsonb @> decides it",
        arguments: [
            (#"{"a":1,"b":{"c":"x","d":[1,2]}}"#, #"{"b":{"c":"x"}}"#, true),
            (#"{"a":1,"b":{"c":"x"}}"#, #"{}"#, true),
            (#"{"a":1}"#, #"{"a":1,"b":2}"#, false),
            (#"{"a":{"b":1}}"#, #"{"a":1}"#, false),
            (#"{"a":[1,{"b":2,"c":3}]}"#, #"{"a":[{"b":2}]}"#, true),
            (#"{"a":[1,2,1]}"#, #"{"a":[2,2]}"#, true),
            (#"{"a":[1,2]}"#, #"{"a":[3]}"#, false),
            (#"{"a":["x"]}"#, #"{"a":"x"}"#, false),
            (#"{"a":"x"}"#, #"{"a":["x"]}"#, false),
            (#"[1,[2,3]]"#, #"[[3]]"#, true),
            (#"[1,[2,3]]"#, #"[3]"#, false),
            (#"["a","b"]"#, #""a""#, true),
            (#"[["a"]]"#, #""a""#, false),
            (#""a""#, #"["a"]"#, false),
            (#""a""#, #""a""#, true),
            (#"{"n":1.0}"#, #"{"n":1}"#, true),
            (#"{"n":1e2}"#, #"{"n":100}"#, true),
            (#"{"n":3.0000000000000001}"#, #"{"n":3}"#, false),
            (#"{"n":"1"}"#, #"{"n":1}"#, false),
            (#"{"b":true}"#, #"{"b":"true"}"#, false),
            (#"{"x":null}"#, #"{"x":null}"#, true),
            (#"{}"#, #"{"x":null}"#, false),
            (#"{"s":"é"}"#, #"{"s":"e\u0301"}"#, false),
            (#"{"é":1}"#, #"{"e\u0301":1}"#, false),
        ] as [(String, String, Bool)])
    func containment(container: String, contained: String, expected: Bool) throws {
        #expect(try JSONValue(parsing: container).contains(JSONValue(parsing: contained)) == expected)
    }
}
