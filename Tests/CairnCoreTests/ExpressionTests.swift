import CairnCore
import Testing

/// The activation every table evaluates against: a realistic trigger event, an incoming
/// `async` event, and a fixed clock at 2024-05-01T12:00:00Z.
enum ExpressionFixture {
    static let nowMilliseconds: Int64 = 1_714_564_800_000

    static let eventJSON = #"""
        {"name":"app/user.created","ts":1714564800000,"data":{
          "plan":"pro","amount":1500,"ratio":0.5,"userId":"u_1","id":"abc","function_id":"app-fn",
          "email":"Ann@Gmail.com","tags":["a","b"],"nothing":null,"nested":{"k":1},
          "items":[{"sku":"x","qty":2},{"sku":"y","qty":0}],
          "big":9007199254740993,"huge":18446744073709551617,"unicode":"héllo😀",
          "ts":"2024-05-01T12:00:00Z","ms":1714564800000,"pattern":"^A","badPattern":"(",
          "vip":true,"count":0,"empty":""}}
        """#

    static let event: JSONValue = try! JSONValue(parsing: eventJSON)
    static let async: JSONValue = try! JSONValue(parsing: #"{"name":"app/other","data":{"id":"abc"}}"#)
    static let activation = ExpressionActivation(event: event, async: async, nowMilliseconds: nowMilliseconds)

    /// Compiles and evaluates `source`.
    static func evaluate(_ source: String) throws -> ExpressionValue {
        try Expression(compiling: source).evaluate(activation)
    }

    /// The compile error of `source`, or nil (recording an issue) when it compiles.
    static func compileError(_ source: String, sourceLocation: SourceLocation = #_sourceLocation) -> ExpressionError? {
        do {
            _ = try Expression(compiling: source)
            Issue.record("expected a compile error for \(source)", sourceLocation: sourceLocation)
            return nil
        } catch {
            return error
        }
    }

    /// The evaluation error of `source` (which must compile), or nil (recording an issue).
    static func evaluationError(_ source: String, sourceLocation: SourceLocation = #_sourceLocation) -> ExpressionError? {
        let expression: Expression
        do {
            expression = try Expression(compiling: source)
        } catch {
            Issue.record("\(source) did not compile: \(error)", sourceLocation: sourceLocation)
            return nil
        }
        do {
            let value = try expression.evaluate(activation)
            Issue.record("expected an evaluation error for \(source), got \(value)", sourceLocation: sourceLocation)
            return nil
        } catch {
            return error
        }
    }

    static func map(_ entries: (ExpressionValue, ExpressionValue)...) -> ExpressionValue {
        .map(ExpressionMap(uniqueEntries: entries.map { (key: $0.0, value: $0.1) }))
    }

    static func time(_ rfc3339: String) -> ExpressionValue {
        guard case .timestamp(let value) = try! evaluate("timestamp('\(rfc3339)')") else { fatalError() }
        return .timestamp(value)
    }
}

@Suite("Expression: values and operators")
struct ExpressionOperatorTests {
    @Test(
        "literals and both quote styles",
        arguments: [
            ("1", 1), ("-1", -1), ("1u", .uint(1)), ("0x1F", 31), ("0x10u", .uint(16)), ("1.5", 1.5), (".5", 0.5),
            ("1e3", 1000.0), ("2.5e-1", 0.25), ("-9223372036854775808", .int(.min)), ("9223372036854775807", .int(.max)),
            ("18446744073709551615u", .uint(.max)), ("true", true), ("false", false), ("null", nil),
            (#"'single'"#, "single"), (#""double""#, "double"), (#"'it\'s'"#, "it's"), (#""say \"hi\"""#, #"say "hi""#),
            (#"'a"b'"#, #"a"b"#), (#""a'b""#, "a'b"), (#""\n""#, "\n"), (#"'\t\r\\'"#, "\t\r\\"),
            (#""\u00e9""#, "é"), (#"'\U0001F600'"#, "😀"), (#"'\x41\101'"#, "AA"), (#"'\a\b\f\v\?\`'"#, "\u{07}\u{08}\u{0C}\u{0B}?`"),
            (#"r'\n'"#, #"\n"#), (#"R"\d+""#, #"\d+"#), ("'''a'b\nc'''", "a'b\nc"), (#""""x"y""""#, #"x"y"#),
            ("b'abc'", .bytes([97, 98, 99])), (#"b'\xff\000'"#, .bytes([255, 0])), (#"b"é""#, .bytes([0xC3, 0xA9])),
            ("[1, 'a', null,]", [1, "a", nil]), ("[]", []), ("{'a': 1, 2: 'b', true: 3u}", ExpressionFixture.map(("a", 1), (2, "b"), (true, .uint(3)))),
            ("{}", ExpressionFixture.map()), ("  1 // trailing comment", 1),
        ] as [(String, ExpressionValue)])
    func literals(source: String, expected: ExpressionValue) throws {
        #expect(try ExpressionFixture.evaluate(source) == expected)
    }

    @Test(
        "arithmetic and precedence",
        arguments: [
            ("1 + 2 * 3", 7), ("(1 + 2) * 3", 9), ("2 - 3 - 4", -5), ("7 / 2", 3), ("-7 / 2", -3), ("7 % 3", 1),
            ("-7 % 3", -1), ("7.0 / 2.0", 3.5), ("1.0 / 0.0 > 1e308", true), ("2 * -3", -6), ("- -3", 3), ("-(-3)", 3),
            ("-(1 + 2)", -3), ("-1.5 * 2.0", -3.0), ("10u / 3u", .uint(3)), ("10u % 3u", .uint(1)), ("5u - 2u", .uint(3)),
            ("2u + 3", 5), ("1 + 1.5", 2.5), ("3 * 0.5", 1.5), ("1.5 - 1", 0.5), ("7 / 2.0", 3.5),
            ("'a' + 'b'", "ab"), ("'n' + 1", "n1"), ("1 + 'n'", "1n"), ("'x' + 1.5", "x1.5"), ("'x' + true", "xtrue"),
            ("'x' + [1, 'a']", #"x[1,"a"]"#), ("[1] + [2, 3]", [1, 2, 3]), ("b'a' + b'b'", .bytes([97, 98])),
            ("1 + 2 + '!'", "3!"), ("'!' + 1 + 2", "!12"),
        ] as [(String, ExpressionValue)])
    func arithmetic(source: String, expected: ExpressionValue) throws {
        #expect(try ExpressionFixture.evaluate(source) == expected)
    }

    @Test(
        "comparison, equality and membership",
        arguments: [
            ("1 == 1", true), ("1 != 1", false), ("1 == 1.0", true), ("1 == 1u", true), ("1u == 1.0", true),
            ("1 < 1.5", true), ("2u > 1", true), ("-1 < 1u", true), ("1.5 >= 2", false), ("1 <= 1", true),
            ("2 >= 3", false), ("3 > 2", true), ("'a' < 'b'", true), ("'b' > 'a'", true), ("'abc' < 'abd'", true),
            ("'Z' < 'a'", true), ("'a' <= 'a'", true), ("false < true", true), ("b'a' < b'b'", true), ("-2.5 < -2", true),
            ("1 == 'a'", false), ("'1' == 1", false), ("null == null", true), ("null != 1", true), ("1 == null", false),
            ("[1, 2] == [1, 2]", true), ("[1, 2] == [2, 1]", false), ("[1] == [1.0]", true),
            ("{'a': 1, 'b': 2} == {'b': 2, 'a': 1.0}", true), ("{'a': 1} == {'a': 2}", false), ("{1: 'x'}[1.0]", "x"),
            ("2 in [1, 2]", true), ("3 in [1, 2]", false), ("1.0 in [1]", true), ("'a' in {'a': 1}", true),
            ("'z' in {'a': 1}", false), ("'a' in ['a', 'b']", true), ("[1] in [[1], [2]]", true),
            ("1 < 2 == true", true), ("1 + 1 == 2 && 2 * 2 == 4", true), ("1.0 / 0.0 == 1.0 / 0.0", true),
            ("0.0 / 0.0 == 0.0 / 0.0", false), ("0.0 / 0.0 < 1.0", false), ("0.0 / 0.0 >= 1.0", false),
            ("9223372036854775807 < 9223372036854775808.0", true), ("9223372036854775807 == 9223372036854775807.0", false),
            ("18446744073709551615u > 1.0", true), ("-1 < 18446744073709551615u", true),
        ] as [(String, ExpressionValue)])
    func comparison(source: String, expected: ExpressionValue) throws {
        #expect(try ExpressionFixture.evaluate(source) == expected)
    }

    @Test(
        "logic: precedence, short circuit, error absorption and truthiness",
        arguments: [
            ("true || false && false", true), ("(true || false) && false", false), ("!true", false), ("!!true", true),
            ("!false && true", true), ("true ? 1 : 2", 1), ("false ? 1 : 2", 2), ("false ? 1 : true ? 2 : 3", 2),
            ("true ? (false ? 1 : 2) : 3", 2), ("1 < 2 ? 'lt' : 'ge'", "lt"), ("false || true ? 'a' : 'b'", "a"),
            ("false && 1 / 0 == 1", false), ("1 / 0 == 1 && false", false), ("true || 1 / 0 == 1", true),
            ("1 / 0 == 1 || true", true), ("event.data.missing || 'default'", "default"),
            ("event.data.plan || 'default'", "pro"), ("event.data.empty || 'fallback'", "fallback"),
            ("event.data.count && true", 0), ("true && event.data.plan", "pro"), ("event.data.vip && true", true),
            ("'' || 0", 0), ("[] && 'lists are truthy'", "lists are truthy"),
        ] as [(String, ExpressionValue)])
    func logic(source: String, expected: ExpressionValue) throws {
        #expect(try ExpressionFixture.evaluate(source) == expected)
    }

    @Test(
        "missing fields read as null",
        arguments: [
            ("event.data.missing", nil), ("event.data.missing.deeper.still", nil), ("event.data.plan.x", nil),
            ("event.data.tags.x", nil), ("event.data.missing == null", true), ("event.data.missing != null", false),
            ("event.data.nothing == null", true), ("event.data.missing == 'pro'", false), ("event.data.missing != 'pro'", true),
            ("has(event.data.plan)", true), ("has(event.data.missing)", false), ("has(event.data.nothing)", true),
            ("has(event.data.missing.x)", false), ("has(event.data.nested.k)", true), ("has(event.data.plan.x)", false),
            ("has(event.name)", true), ("has(json_parse('{\"a\":1}').a)", true), ("has({'a': 1}.b)", false),
            ("size(event.data.missing)", 0), ("event.data.missing + '-x'", "-x"), ("'x-' + event.data.missing", "x-"),
            ("event.data.missing < 1", true), ("event.data.missing > 1", false), ("event.data.missing <= 0", true),
            ("event.data.missing < 'a'", true), ("event.data.missing >= 0.0", true), ("event.data.missing < event.data.nothing", false),
            ("event.data.missing.contains('a')", false), ("event.data.missing.startsWith('a')", false),
            ("event.data.missing.matches('a')", false), ("event.data.missing.matches(event.data.pattern)", false),
            ("'a' in event.data.missing", false), ("event.data.missing.exists(x, true)", false),
            ("event.data.missing.all(x, false)", true), ("event.data.missing.map(x, x)", []), ("!event.data.missing", true),
            ("event.data.missing ? 1 : 2", 2), ("vars.anything", nil), ("vars", nil), ("async.data.id", "abc"),
            ("event.data.tags[5]", nil), ("event.data.tags[-1]", nil), ("event.data.tags[1]", "b"), ("event.data.tags[1u]", "b"),
            ("event.data.tags[1.0]", "b"), ("event.data.nested['k']", 1), ("event.data.nested['zz']", nil),
            ("event['data']['plan']", "pro"), ("event.data.missing[0]", nil), ("lowercase(event.data.missing)", nil),
            ("{'a': {'b': 1}}.a.b", 1), ("{'a': 1}.zz", nil), ("[{'a': 1}][0].a", 1), ("json_parse('{\"a\":null}').a.b", nil),
        ] as [(String, ExpressionValue)])
    func missing(source: String, expected: ExpressionValue) throws {
        #expect(try ExpressionFixture.evaluate(source) == expected)
    }

    @Test(
        "numbers from JSON: integers exact to Int64, others double",
        arguments: [
            ("event.data.big == 9007199254740993", true), ("event.data.big == 9007199254740992", false),
            ("event.data.big + 0", 9_007_199_254_740_993), ("event.data.big", 9_007_199_254_740_993),
            ("event.data.huge", 18_446_744_073_709_551_617.0), ("event.data.huge > 9223372036854775807", true),
            ("event.data.amount", 1500), ("event.data.amount > 1000", true), ("event.data.amount + 0.5", 1500.5),
            ("event.data.ratio", 0.5), ("event.data.ratio * 2", 1.0), ("event.data.ratio < 1", true),
            ("event.ts", 1_714_564_800_000), ("json_parse('{\"x\":1.0}').x", 1.0), ("json_parse('{\"x\":-0}').x", 0),
            ("json_parse('{\"x\":1e2}').x == 100", true),
        ] as [(String, ExpressionValue)])
    func jsonNumbers(source: String, expected: ExpressionValue) throws {
        #expect(try ExpressionFixture.evaluate(source) == expected)
    }

    @Test(
        "unicode strings: size counts code points, comparison is by code point",
        arguments: [
            ("size('héllo😀')", 6), ("'日本'.size()", 2), ("size(event.data.unicode)", 6), (#"'😀' == '\U0001F600'"#, true),
            (#"'é' == '\u00e9'"#, true), (#"'e\u0301' == '\u00e9'"#, false), ("'日本語'.contains('本')", true),
            ("'héllo'.startsWith('hé')", true), ("'naïve'.endsWith('ïve')", true), ("'é' > 'z'", true),
            ("size(b'é')", 2), ("uppercase('straße')", "STRASSE"), ("lowercase('ÀÉ')", "àé"),
            ("'é'.matches('^.$')", true), ("'😀x'.matches('^.x$')", true),
        ] as [(String, ExpressionValue)])
    func unicode(source: String, expected: ExpressionValue) throws {
        #expect(try ExpressionFixture.evaluate(source) == expected)
    }
}

@Suite("Expression: functions and macros")
struct ExpressionFunctionTests {
    @Test(
        "string and collection functions",
        arguments: [
            ("size('abc')", 3), ("'abc'.size()", 3), ("size([1, 2])", 2), ("[1, 2, 3].size()", 3), ("size({'a': 1})", 1),
            ("size(b'ab')", 2), ("size('')", 0), ("'hello'.contains('ell')", true), ("'hello'.contains('')", true),
            ("'hello'.contains('xyz')", false), ("'hello'.startsWith('he')", true), ("'hello'.startsWith('lo')", false),
            ("'hello'.endsWith('lo')", true), ("'hello'.endsWith('he')", false), ("'abc'.matches('^a.c$')", true),
            ("'abc'.matches('b')", true), ("'abc'.matches('^b')", false), ("matches('abc', 'c$')", true),
            ("matches('abc', 'z')", false), ("event.data.email.matches(event.data.pattern)", true),
            ("'a1b22'.matches('[0-9]{2}')", true), ("'ABC'.matches('(?i)abc')", true),
            ("lowercase(event.data.email)", "ann@gmail.com"), ("uppercase('abc')", "ABC"),
            ("b64decode('aGVsbG8=')", "hello"), ("b64decode('aGVsbG8')", "hello"), ("b64decode('')", ""),
            ("b64decode('eyJhIjoxfQ==')", #"{"a":1}"#), ("json_parse(b64decode('eyJhIjoxfQ==')).a", 1),
            ("json_parse('{\"a\":[1,2]}').a[1]", 2), ("json_parse('[1,\"x\"]')", [1, "x"]), ("json_parse('\"s\"')", "s"),
            ("json_parse('null')", nil), ("json_parse('{\"k\":{\"n\":true}}').k.n", true),
        ] as [(String, ExpressionValue)])
    func strings(source: String, expected: ExpressionValue) throws {
        #expect(try ExpressionFixture.evaluate(source) == expected)
    }

    @Test(
        "conversions",
        arguments: [
            ("int('12')", 12), ("int('-7')", -7), ("int(2.7)", 2), ("int(-2.7)", -2), ("int(3u)", 3), ("int(5)", 5),
            ("int(timestamp('1970-01-01T00:01:00Z'))", 60), ("int(duration('1s'))", 1_000_000_000),
            ("uint(3)", .uint(3)), ("uint('42')", .uint(42)), ("uint(2.9)", .uint(2)), ("double('1.5')", 1.5),
            ("double('-2e3')", -2000.0), ("double(2)", 2.0), ("double(7u)", 7.0), ("string(3.5)", "3.5"), ("string(12)", "12"),
            ("string(-0.0)", "-0"), ("string(7u)", "7"), ("string(100.0)", "100"), ("string(123456.0)", "123456"),
            ("string(1234567.0)", "1.234567e+06"), ("string(0.0001)", "0.0001"), ("string(0.00001)", "1e-05"),
            ("string(1e100)", "1e+100"), ("string(0.1 + 0.2)", "0.30000000000000004"), ("string(1.0 / 0.0)", "+Inf"),
            ("string(-1.0 / 0.0)", "-Inf"), ("string(0.0 / 0.0)", "NaN"), ("string(true)", "true"), ("string(b'hi')", "hi"),
            ("string('s')", "s"), ("string(timestamp('2024-05-01T12:00:00.250Z'))", "2024-05-01T12:00:00.25Z"),
            ("string(duration('1h30m'))", "5400s"), ("string(duration('-1.5s'))", "-1.5s"), ("bool('true')", true),
            ("bool('f')", false), ("bytes('hi')", .bytes([104, 105])), ("dyn(1)", 1), ("int(string(42)) == 42", true),
        ] as [(String, ExpressionValue)])
    func conversions(source: String, expected: ExpressionValue) throws {
        #expect(try ExpressionFixture.evaluate(source) == expected)
    }

    @Test(
        "time: injected now, date(), timestamps and durations",
        arguments: [
            ("now() == timestamp('2024-05-01T12:00:00Z')", true), ("now_plus('1h') > now()", true),
            ("now_plus('1h30m') - now() == duration('5400s')", true), ("now() - now_minus('2d') == duration('48h')", true),
            ("now_minus('1w') < now()", true), ("now_plus('90s') == now() + duration('1m30s')", true),
            ("date('2024-05-01T12:00:00Z') == now()", true), ("date('2024-05-01T14:00:00+02:00') == now()", true),
            ("date('2024-05-01T12:00:00') == now()", true), ("date('2024-05-01') == now() - duration('12h')", true),
            ("date(event.data.ts) == now()", true), ("date(event.data.ms) == now()", true), ("date(1714564800) == now()", true),
            ("date(1714564800000000000) == now()", true), ("date(event.data.ms + 0.0) == now()", true), ("date(now()) == now()", true),
            ("timestamp('2024-05-01T12:00:00+02:00') < now()", true), ("timestamp('2024-05-01T12:00:00.5Z') > now()", true),
            ("now() + duration('1h') > now()", true), ("duration('1h') + now() > now()", true),
            ("duration('1h') > duration('59m')", true), ("duration('1h30m') == duration('90m')", true),
            ("duration('1.5s') == duration('1500ms')", true), ("duration('1d') == duration('24h')", true),
            ("duration('1w') == duration('168h')", true), ("duration('1us') == duration('1000ns')", true),
            ("duration('1µs') == duration('1us')", true), ("duration('0') == duration('0s')", true),
            ("duration('2.5h') == duration('150m')", true), ("duration('+1m') == duration('60s')", true),
            ("duration('1h') - duration('30m') == duration('30m')", true), ("-duration('1m') < duration('0')", true),
            ("duration('-2m').getSeconds()", -120), ("duration('1h30m').getMinutes()", 90),
            ("duration('1h30m').getHours()", 1), ("duration('2.5s').getMilliseconds()", 2500),
            ("now().getFullYear()", 2024), ("now().getMonth()", 4), ("now().getDate()", 1), ("now().getDayOfMonth()", 0),
            ("now().getDayOfWeek()", 3), ("now().getDayOfYear()", 121), ("now().getHours()", 12),
            ("now().getHours('+02:00')", 14), ("now().getHours('-13:30')", 22), ("now().getDate('-13:30')", 30),
            ("now().getMinutes()", 0), ("now().getSeconds()", 0), ("timestamp('2024-05-01T12:00:00.123Z').getMilliseconds()", 123),
            ("timestamp('0001-01-01T00:00:00Z').getFullYear()", 1), ("timestamp('1969-12-31T23:59:59Z').getDayOfWeek()", 3),
            ("string(timestamp('1969-12-31T23:59:59.999Z'))", "1969-12-31T23:59:59.999Z"),
            ("string(timestamp('2024-02-29T00:00:00Z') + duration('24h'))", "2024-03-01T00:00:00Z"),
            ("string(timestamp(0))", "1970-01-01T00:00:00Z"),
        ] as [(String, ExpressionValue)])
    func time(source: String, expected: ExpressionValue) throws {
        #expect(try ExpressionFixture.evaluate(source) == expected)
    }

    @Test("now() reads the activation, not a clock")
    func injectedClock() throws {
        let expression = try Expression(compiling: "string(now())")
        let early = ExpressionActivation(nowMilliseconds: 0)
        let late = ExpressionActivation(nowMilliseconds: 1_714_564_800_123)
        #expect(try expression.evaluate(early) == "1970-01-01T00:00:00Z")
        #expect(try expression.evaluate(late) == "2024-05-01T12:00:00.123Z")
        #expect(try expression.evaluate(late) == expression.evaluate(late))
    }

    @Test(
        "macros over lists and maps",
        arguments: [
            ("[1, 2, 3].all(x, x > 0)", true), ("[1, 2, 3].all(x, x > 1)", false), ("[].all(x, false)", true),
            ("[1, 2, 3].exists(x, x == 2)", true), ("[1, 2, 3].exists(x, x == 5)", false), ("[].exists(x, true)", false),
            ("[1, 2, 3].exists_one(x, x > 2)", true), ("[1, 2, 3].exists_one(x, x > 1)", false),
            ("[1, 2, 3].map(x, x * 2)", [2, 4, 6]), ("[1, 2, 3].map(x, x > 1, x * 10)", [20, 30]),
            ("[1, 2, 3].filter(x, x % 2 == 1)", [1, 3]), ("[1, 2, 3].filter(x, x > 5)", []),
            ("{'a': 1, 'b': 2}.all(k, k in ['a', 'b'])", true), ("{'a': 1, 'b': 2}.map(k, k + '!')", ["a!", "b!"]),
            ("{'a': 1, 'b': 2}.filter(k, k == 'b')", ["b"]), ("event.data.nested.exists(k, k == 'k')", true),
            ("event.data.items.exists(i, i.sku == 'y' && i.qty == 0)", true), ("event.data.items.map(i, i.qty)", [2, 0]),
            ("event.data.items.filter(i, i.qty > 0).map(i, i.sku)", ["x"]), ("event.data.tags.all(t, size(t) == 1)", true),
            ("[[1, 2], [3]].all(l, l.all(x, x > 0))", true), ("[1].exists(x, [2].exists(x, x == 2))", true),
            ("[1, 2].exists(x, [10, 20].exists(y, x * 10 == y && y == 20))", true), ("[1, 2].map(x, [x, x])", [[1, 1], [2, 2]]),
            ("[1, 0].exists(x, 1 / x == 1)", true), ("[0, 1].all(x, x > 0 && 1 / x > 0)", false),
            ("[1, 2, 3].map(x, x).size()", 3), ("[event.data.missing].all(x, x)", false),
        ] as [(String, ExpressionValue)])
    func macros(source: String, expected: ExpressionValue) throws {
        #expect(try ExpressionFixture.evaluate(source) == expected)
    }

    @Test(
        "realistic Inngest expressions",
        arguments: [
            ("event.data.plan == 'pro' && event.data.amount > 1000", true),
            ("event.data.plan == \"free\" || event.data.amount > 5000", false), ("async.data.id == event.data.id", true),
            ("event.data.userId + \"-\" + event.name", "u_1-app/user.created"), ("event.data.amount > 1000 ? 0 : 1800", 0),
            ("event.data.vip ? 0 : 1800", 0), ("event.data.missingFlag ? 0 : 1800", 1800),
            ("event.data.function_id == 'app-fn'", true), ("event.data.email.contains('gmail.com')", false),
            ("lowercase(event.data.email).endsWith('@gmail.com')", true), ("has(event.data.email)", true),
            ("event.name == 'app/user.created' && has(event.data.plan) && event.data.tags.exists(t, t == 'b')", true),
            ("event.data.userId", "u_1"), ("event.name.startsWith('app/')", true),
            ("async.data.id == event.data.id && async.name != event.name", true),
            ("event.data.plan in ['pro', 'enterprise']", true), ("date(event.data.ts) > now_minus('1h')", true),
        ] as [(String, ExpressionValue)])
    func realistic(source: String, expected: ExpressionValue) throws {
        #expect(try ExpressionFixture.evaluate(source) == expected)
    }
}

@Suite("Expression: errors")
struct ExpressionErrorTests {
    @Test(
        "compile errors name the problem and its position",
        arguments: [
            ("foo(1)", .unknownFunction, 0, "unknown function 'foo'"),
            ("'a'.foo()", .unknownFunction, 4, "unknown function 'foo'"),
            ("event.data.x ==", .unexpectedEnd, 15, "expected a value, found end of expression"),
            ("size(1, 2)", .wrongArgumentCount, 0, "size() takes 1 argument, got 2"),
            ("'a'.contains()", .wrongArgumentCount, 4, "x.contains() takes 1 argument, got 0"),
            ("now(1)", .wrongArgumentCount, 0, "now() takes 0 arguments, got 1"),
            ("contains('a', 'b')", .unknownFunction, 0, "contains() does not exist; call it as x.contains()"),
            ("'abc", .unterminatedString, 0, "string literal has no closing quote"),
            ("'ab\ncd'", .unterminatedString, 0, "before the end of the line"),
            ("x > 1", .undeclaredReference, 0, "undeclared reference to 'x'"),
            (#""\q""#, .invalidEscape, 1, #"unknown escape '\q'"#),
            (#"'\u12'"#, .invalidEscape, 1, "expected 4 hexadecimal digits"),
            (#"'\uD800'"#, .invalidEscape, 1, "invalid code point"),
            ("1 +* 2", .unexpectedToken, 3, "expected a value, found '*'"),
            ("event.data.a = 1", .unexpectedCharacter, 13, "use '=='"),
            ("a & b", .unexpectedCharacter, 2, "use '&&'"),
            ("1 # 2", .unexpectedCharacter, 2, "unexpected character '#'"),
            ("(1 + 2", .unexpectedEnd, 6, "expected ')' to close '(', found end of expression"),
            ("size(event.data.tags", .unexpectedEnd, 20, "expected ')' after arguments"),
            ("size(event.data.tags]", .unexpectedToken, 20, "expected ')' after arguments, found ']'"),
            ("[1, 2", .unexpectedEnd, 5, "expected ']' to close list"),
            ("{'a' 1}", .unexpectedToken, 5, "expected ':' after map key"),
            ("true ? 1", .unexpectedEnd, 8, "expected ':' in conditional expression"),
            ("event.", .unexpectedEnd, 6, "expected a field name after '.'"),
            ("'a'.matches('(')", .invalidRegex, 4, "invalid regular expression '('"),
            ("matches('a', '[')", .invalidRegex, 0, "invalid regular expression '['"),
            ("[1].exists(1, true)", .invalidMacro, 11, "the first argument of exists() must be a variable name"),
            ("[1].map(x)", .unexpectedToken, 9, "expected ',' after the variable of map()"),
            ("[1].all(x, true, false)", .wrongArgumentCount, 4, "all() takes 2 arguments, got 3"),
            ("has(event)", .invalidMacro, 0, "has() needs a field selection"),
            ("exists(x, true)", .unknownFunction, 0, "exists() is a macro"),
            ("99999999999999999999", .invalidNumber, 0, "does not fit in 64 bits"),
            ("9223372036854775808", .invalidNumber, 0, "does not fit in a 64-bit int"),
            ("0x", .invalidNumber, 0, "expected hexadecimal digits"), ("1e", .invalidNumber, 0, "exponent"),
            ("", .unexpectedEnd, 0, "expression is empty"), ("   ", .unexpectedEnd, 3, "expression is empty"),
            ("1 2", .unexpectedToken, 2, "expected end of expression, found number"),
            ("while", .reservedWord, 0, "'while' is a reserved word"),
            ("true ? false ? 1 : 2 : 3", .unexpectedToken, 13, "expected ':' in conditional expression, found '?'"),
            ("[1].exists(in, true)", .invalidMacro, 11, "must be a variable name"),
        ] as [(String, ExpressionError.Code, Int, String)])
    func compileErrors(source: String, code: ExpressionError.Code, position: Int, message: String) throws {
        let error = try #require(ExpressionFixture.compileError(source))
        #expect(error.code == code)
        #expect(error.code.isCompileError || code == .invalidRegex)
        #expect(error.position == position)
        #expect(error.reason.contains(message), "\(error.reason)")
    }

    @Test("messages read 'expression: column N: …' with columns counted in code points")
    func columns() throws {
        let unclosed = try #require(ExpressionFixture.compileError("(1 + 2"))
        #expect(unclosed.description == "expression: column 7: expected ')' to close '(', found end of expression")
        let afterUnicode = try #require(ExpressionFixture.compileError("'éé' == x"))
        #expect(afterUnicode.position == 10)
        #expect(afterUnicode.column == 9)
        #expect(afterUnicode.description == "expression: column 9: undeclared reference to 'x' (expected event, async, vars or output)")
        let division = try #require(ExpressionFixture.evaluationError("1 + (2 / 0)"))
        #expect(division.description == "expression: column 8: division by zero in '/'")
    }

    @Test("nesting beyond the maximum depth is a compile error, not a crash")
    func nesting() throws {
        let parentheses = String(repeating: "(", count: 500) + "1" + String(repeating: ")", count: 500)
        #expect(ExpressionFixture.compileError(parentheses)?.code == .nestingTooDeep)
        let chain = Array(repeating: "1", count: 500).joined(separator: " + ")
        #expect(ExpressionFixture.compileError(chain)?.code == .nestingTooDeep)
        let negations = String(repeating: "!", count: 500) + "true"
        #expect(ExpressionFixture.compileError(negations)?.code == .nestingTooDeep)
        let lists = String(repeating: "[", count: 500) + String(repeating: "]", count: 500)
        #expect(ExpressionFixture.compileError(lists)?.code == .nestingTooDeep)
        let shallow = Array(repeating: "1", count: 50).joined(separator: " + ")
        #expect(try ExpressionFixture.evaluate(shallow) == 50)
        let longPath = "event" + String(repeating: ".a", count: 500)
        #expect(try ExpressionFixture.evaluate(longPath) == nil)
    }

    @Test(
        "evaluation errors are values, not crashes",
        arguments: [
            ("1 / 0", .divisionByZero, "division by zero in '/'"), ("1 % 0", .divisionByZero, "division by zero in '%'"),
            ("1u / 0u", .divisionByZero, "division by zero"), ("9223372036854775807 + 1", .integerOverflow, "integer overflow in '+'"),
            ("-9223372036854775808 - 1", .integerOverflow, "integer overflow in '-'"),
            ("9223372036854775807 * 2", .integerOverflow, "integer overflow in '*'"),
            ("-9223372036854775808 / -1", .integerOverflow, "integer overflow in '/'"),
            ("-(-9223372036854775808)", .integerOverflow, "unary '-'"), ("0u - 1u", .integerOverflow, "integer overflow"),
            ("'a'.matches(event.data.badPattern)", .invalidRegex, "invalid regular expression '('"),
            ("(1).contains('a')", .typeMismatch, "contains() needs a string receiver and a string argument, got int and string"),
            ("event.data.amount.contains('1')", .typeMismatch, "got int and string"),
            ("'a'.startsWith(1)", .typeMismatch, "got string and int"), ("size(1)", .typeMismatch, "size() is not defined for int"),
            ("int('abc')", .invalidArgument, "int(): 'abc' is not a decimal integer"), ("int('1.5')", .invalidArgument, "not a decimal integer"),
            ("int(1e30)", .integerOverflow, "out of the int range"), ("int(0.0 / 0.0)", .integerOverflow, "out of the int range"),
            ("uint(-1)", .integerOverflow, "negative"), ("double('x')", .invalidArgument, "not a number"),
            ("string([1])", .typeMismatch, "string() is not defined for list"), ("string(b'\\xff')", .invalidArgument, "UTF-8"),
            ("bool('yes')", .invalidArgument, "not a boolean"), ("duration('soon')", .invalidArgument, "not a duration"),
            ("duration('1h 2m')", .invalidArgument, "not a duration"), ("duration('')", .invalidArgument, "not a duration"),
            ("duration('1')", .invalidArgument, "not a duration"), ("duration('h')", .invalidArgument, "not a duration"),
            ("duration('100000000h')", .invalidArgument, "not a duration"), ("now_plus('1x')", .invalidArgument, "now_plus()"),
            ("now_minus(5)", .typeMismatch, "now_minus() is not defined for int"),
            ("timestamp('2024-05-01')", .invalidArgument, "not an RFC 3339 timestamp"),
            ("timestamp('2024-02-30T00:00:00Z')", .invalidArgument, "not an RFC 3339"),
            ("timestamp('2024-05-01T25:00:00Z')", .invalidArgument, "not an RFC 3339"),
            ("date('yesterday')", .invalidArgument, "date(): 'yesterday' is not a date"),
            ("date(5)", .invalidArgument, "before 2000-01-01"), ("date(true)", .typeMismatch, "date() is not defined for bool"),
            ("date(event.data.missing)", .typeMismatch, "date() is not defined for null_type"),
            ("b64decode('!!')", .invalidArgument, "not standard base64"), ("b64decode('a')", .invalidArgument, "base64"),
            ("json_parse('{')", .invalidArgument, "json_parse(): invalid JSON at byte 1"),
            ("lowercase(1)", .typeMismatch, "lowercase() is not defined for int"),
            ("'a' - 1", .typeMismatch, "'-' is not defined for string and int"), ("'a' < 1", .typeMismatch, "'<' is not defined"),
            ("[1] < [2]", .typeMismatch, "'<' is not defined for list and list"), ("true + 1", .typeMismatch, "'+' is not defined for bool and int"),
            ("1.5 % 1.0", .typeMismatch, "'%' is not defined for double and double"), ("1 in 'abc'", .typeMismatch, "'in'"),
            ("null - 1", .typeMismatch, "'-' is not defined for null_type and int"), ("-'a'", .typeMismatch, "unary '-'"),
            ("{'a': 1, 'a': 2}", .duplicateKey, "repeats the key a"), ("{1: 'a', 1u: 'b'}", .duplicateKey, "repeats the key 1"),
            ("{[1]: 2}", .typeMismatch, "map keys must be"), ("1 ? 2 : 3", .notBoolean, "condition of '?:' must be a bool, got int"),
            ("[1].all(x, x)", .notBoolean, "predicate of all() must be a bool, got int"), ("!1", .typeMismatch, "'!' is not defined for int"),
            ("[1][0.5]", .invalidArgument, "not a whole number"), ("[1]['a']", .typeMismatch, "list index"),
            ("'abc'[0]", .typeMismatch, "'[]' is not defined for string"), ("(1).all(x, true)", .typeMismatch, "all()"),
            ("now().getHours('Europe/Paris')", .invalidArgument, "time zone 'Europe/Paris' is not supported"),
            ("duration('1h').getDayOfWeek()", .typeMismatch, "getDayOfWeek()"),
            ("timestamp('9999-12-31T23:59:59Z') + duration('1s')", .outOfRange, "out of range"),
            ("timestamp('0001-01-01T00:00:00Z') - duration('1s')", .outOfRange, "out of range"),
            ("now() - timestamp('0001-01-01T00:00:00Z')", .outOfRange, "out of the duration range"),
            ("[1, 0].all(x, 1 / x > 0)", .divisionByZero, "division by zero"),
            ("1 / 0 == 1 || false", .divisionByZero, "division by zero"), ("true && 1 / 0 == 1", .divisionByZero, "division by zero"),
        ] as [(String, ExpressionError.Code, String)])
    func evaluationErrors(source: String, code: ExpressionError.Code, message: String) throws {
        let error = try #require(ExpressionFixture.evaluationError(source))
        #expect(error.code == code)
        #expect(!error.code.isCompileError)
        #expect(error.reason.contains(message), "\(error.reason)")
    }

    @Test("an evaluation error points at the failing operator")
    func errorPosition() throws {
        let error = try #require(ExpressionFixture.evaluationError("event.data.amount > 0 && event.data.plan.contains(1)"))
        #expect(error.position == 41)
        #expect(error.code == .typeMismatch)
    }
}

@Suite("Expression: contexts and results")
struct ExpressionContextTests {
    @Test(
        "evaluateBool: bools pass, null is false",
        arguments: [
            ("1 == 1", true), ("event.data.plan == 'free'", false), ("event.data.missing", false), ("event.data.vip", true),
        ] as [(String, Bool)])
    func evaluateBool(source: String, expected: Bool) throws {
        #expect(try Expression(compiling: source).evaluateBool(ExpressionFixture.activation) == expected)
    }

    @Test("evaluateBool: other results are an error naming the type")
    func evaluateBoolRejects() throws {
        for (source, type) in [("event.data.plan", "string"), ("1", "int"), ("[true]", "list")] {
            do {
                let value = try Expression(compiling: source).evaluateBool(ExpressionFixture.activation)
                Issue.record("expected an error for \(source), got \(value)")
            } catch {
                #expect(error.code == .notBoolean)
                #expect(error.reason == "expression must yield a bool, got \(type)")
            }
        }
    }

    @Test(
        "evaluateInt for priority.run",
        arguments: [
            ("event.data.amount > 1000 ? 0 : 1800", 0), ("event.data.vip ? 120 : -600", 120), ("event.data.ratio * 4", 2),
            ("event.data.missing", 0), ("5u", 5), ("-600", -600),
        ] as [(String, Int64)])
    func evaluateInt(source: String, expected: Int64) throws {
        #expect(try Expression(compiling: source).evaluateInt(ExpressionFixture.activation) == expected)
    }

    @Test("evaluateInt rejects non-integers")
    func evaluateIntRejects() throws {
        for source in ["'x'", "1.5", "[1]", "1e300"] {
            do {
                let value = try Expression(compiling: source).evaluateInt(ExpressionFixture.activation)
                Issue.record("expected an error for \(source), got \(value)")
            } catch {
                #expect(error.code == .typeMismatch)
                #expect(error.reason.hasPrefix("expression must yield an int, got "))
            }
        }
    }

    @Test(
        "canonicalKey: strings as themselves, others as stable text",
        arguments: [
            ("'abc'", "abc"), ("event.data.userId + '-' + event.name", "u_1-app/user.created"), ("12", "12"), ("7u", "7"),
            ("1.5", "1.5"), ("2.0", "2"), ("true", "true"), ("null", "null"), ("event.data.missing", "null"),
            ("[1, 'a', 2.5]", #"[1,"a",2.5]"#), ("{'b': 1, 'a': 2}", #"{"b":1,"a":2}"#), ("event.data.nested", #"{"k":1}"#),
            ("event.data.tags", #"["a","b"]"#), ("{1: true}", #"{"1":true}"#), ("now()", "2024-05-01T12:00:00Z"),
            ("duration('1.5s')", "1.5s"), ("b'hi'", #""aGk=""#), ("event.data.big", "9007199254740993"),
        ] as [(String, String)])
    func canonicalKey(source: String, expected: String) throws {
        #expect(try ExpressionFixture.evaluate(source).canonicalKey == expected)
    }

    @Test("results convert back to JSON exactly")
    func jsonValue() throws {
        #expect(try ExpressionFixture.evaluate("event").jsonValue == ExpressionFixture.event)
        #expect(try ExpressionFixture.evaluate("event.data.items[0]").jsonValue == ["sku": "x", "qty": 2])
        let built = try ExpressionFixture.evaluate("{'a': [1, 2.5, 'x', null, true], 'when': now(), 'd': duration('90s')}")
        let expected: JSONValue = ["a": [1, 2.5, "x", nil, true], "when": "2024-05-01T12:00:00Z", "d": "90s"]
        #expect(built.jsonValue == expected)
        #expect(built.jsonValue.jsonString == #"{"a":[1,2.5,"x",null,true],"when":"2024-05-01T12:00:00Z","d":"90s"}"#)
        #expect(try ExpressionFixture.evaluate("1.0 / 0.0").jsonValue == .null)
        #expect(try ExpressionFixture.evaluate("event.data.big").jsonValue.jsonString == "9007199254740993")
        #expect(ExpressionValue(ExpressionFixture.event["data"]!["ratio"]!) == .double(0.5))
    }

    @Test("typeName names every kind of value")
    func typeNames() throws {
        let cases: [(String, String)] = [
            ("null", "null_type"), ("true", "bool"), ("1", "int"), ("1u", "uint"), ("1.0", "double"), ("''", "string"),
            ("b''", "bytes"), ("[]", "list"), ("{}", "map"), ("now()", "google.protobuf.Timestamp"),
            ("duration('1s')", "google.protobuf.Duration"),
        ]
        for (source, name) in cases {
            #expect(try ExpressionFixture.evaluate(source).typeName == name)
        }
    }

    @Test("a compiled expression is shared across concurrent evaluations")
    func concurrentEvaluation() async throws {
        let expression = try Expression(compiling: "event.data.email.matches('^[a-z]+@') && event.data.n % 2 == 0")
        let results = await withTaskGroup(of: (Int, Bool).self) { group in
            for n in 0..<64 {
                group.addTask {
                    let event: JSONValue = ["data": ["email": n % 4 < 2 ? "ann@x.io" : "ANN@x.io", "n": .number(JSONNumber(n))]]
                    let value = try? expression.evaluateBool(ExpressionActivation(event: event, nowMilliseconds: 0))
                    return (n, value ?? false)
                }
            }
            var collected: [Int: Bool] = [:]
            for await (n, value) in group { collected[n] = value }
            return collected
        }
        #expect(results.count == 64)
        for (n, value) in results {
            #expect(value == (n % 4 == 0), "n = \(n)")
        }
    }

    @Test("source and description keep the text as written")
    func source() throws {
        let expression = try Expression(compiling: "event.data.plan == 'pro'")
        #expect(expression.source == "event.data.plan == 'pro'")
        #expect("\(expression)" == "event.data.plan == 'pro'")
    }

    @Test("output reads a run's output, for searching runs; null where none is given")
    func output() throws {
        let expression = try Expression(compiling: #"output.total > 100 && event.data.user == "u-42""#)
        var activation = ExpressionActivation(event: ["data": ["user": "u-42"]], nowMilliseconds: 0)
        #expect(try expression.evaluateBool(activation) == false)
        activation.output = ["total": 150]
        #expect(try expression.evaluateBool(activation) == true)
        activation.output = ["total": 50]
        #expect(try expression.evaluateBool(activation) == false)
    }
}
