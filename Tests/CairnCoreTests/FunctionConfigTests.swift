import CairnCore
import Testing

/// Function configs as SDKs send them: every option parsed, every rule reported with the
/// function and the field.
@Suite struct FunctionConfigTests {
    static let step = #""steps":{"step":{"id":"step","name":"step","runtime":{"type":"http","url":"http://app/api/inngest?fnId=f&stepId=step"}}}"#

    static func parse(_ fields: String) throws -> FunctionConfig {
        try FunctionConfig(parsing: try JSONValue(parsing: #"{"id":"app-f",\#(fields),\#(step)}"#))
    }

    @Test func parsesTheFullConfigPythonSends() throws {
        let config = try Self.parse("""
            "name":"Full config",
            "triggers":[{"event":"app/user.created","expression":"event.data.plan == 'pro'"},{"cron":"TZ=Europe/Paris 0 9 * * 1-5","jitter":"30s"}],
            "concurrency":[{"key":"event.data.user_id","limit":5,"scope":"fn"}],
            "throttle":{"key":"event.data.user_id","limit":10,"period":"1m","burst":2},
            "rateLimit":{"key":"event.data.user_id","limit":1,"period":"1h"},
            "debounce":{"key":"event.data.user_id","period":"30s","timeout":"5m"},
            "cancel":[{"event":"app/user.deleted","if":"event.data.user_id == async.data.user_id","timeout":"1d"}],
            "idempotency":"event.data.user_id","priority":{"run":"event.data.plan == 'pro' ? 120 : 0"},
            "timeouts":{"start":"10s","finish":"30m"},"singleton":{"key":"event.data.user_id","mode":"cancel"},
            "future":{"unknown":[1,2]}
            """)
        #expect(config.id == "app-f")
        #expect(config.name == "Full config")
        #expect(config.triggers.count == 2)
        #expect(config.triggers[0] == .event(name: "app/user.created", expression: "event.data.plan == 'pro'"))
        guard case .cron(let schedule, let jitter) = config.triggers[1] else { Issue.record("expected a cron"); return }
        #expect(schedule.timeZone.identifier == "Europe/Paris")
        #expect(jitter?.milliseconds == 30_000)
        #expect(config.retries == 4)
        #expect(config.steps.first?.url == "http://app/api/inngest?fnId=f&stepId=step")
        #expect(config.concurrency.first?.limit == 5)
        #expect(config.concurrency.first?.scope == .fn)
        #expect(config.throttle?.period.milliseconds == 60_000)
        #expect(config.throttle?.burst == 2)
        #expect(config.rateLimit?.period.milliseconds == 3_600_000)
        #expect(config.debounce?.timeout?.milliseconds == 300_000)
        #expect(config.cancel.first?.timeout?.milliseconds == 86_400_000)
        #expect(config.idempotency == "event.data.user_id")
        #expect(config.priority?.run == "event.data.plan == 'pro' ? 120 : 0")
        #expect(config.timeouts?.finish?.milliseconds == 1_800_000)
        #expect(config.singleton?.mode == .cancel)
        #expect(config.json["future"] == .object(["unknown": [1, 2]]))
    }

    @Test func parsesBatching() throws {
        let config = try Self.parse(#""triggers":[{"event":"a/b"}],"batchEvents":{"maxSize":10,"timeout":"5s","key":"event.data.k","if":"event.data.ok"}"#)
        #expect(config.batchEvents?.maxSize == 10)
        #expect(config.batchEvents?.timeout.milliseconds == 5_000)
        #expect(config.batchEvents?.key == "event.data.k")
        #expect(config.batchEvents?.condition == "event.data.ok")
    }

    @Test func aNullOrZeroJitterIsNone() throws {
        for jitter in ["null", #""""#, #""0s""#] {
            let config = try Self.parse(#""triggers":[{"cron":"0 * * * *","jitter":\#(jitter)}]"#)
            #expect(config.triggers == [.cron(try CronSchedule(parsing: "0 * * * *"), jitter: nil)])
        }
    }

    @Test func retriesComeFromTheStepThenTheFunction() throws {
        let stepRetries = try FunctionConfig(parsing: try JSONValue(parsing: #"""
            {"id":"f","triggers":[{"event":"a/b"}],"retries":{"attempts":9},
             "steps":{"step":{"id":"step","name":"step","retries":{"attempts":0},"runtime":{"url":"http://app/"}}}}
            """#))
        #expect(stepRetries.retries == 0)
        let functionRetries = try Self.parse(#""triggers":[{"event":"a/b"}],"retries":{"attempts":9}"#)
        #expect(functionRetries.retries == 9)
    }

    @Test func idempotencyStandsForARateLimit() throws {
        let config = try Self.parse(#""triggers":[{"event":"a/b"}],"idempotency":"event.data.id""#)
        #expect(config.rateLimit == nil)
        #expect(config.effectiveRateLimit?.limit == 1)
        #expect(config.effectiveRateLimit?.period.milliseconds == 86_400_000)
        #expect(config.effectiveRateLimit?.key == "event.data.id")
    }

    @Test func concurrencyAcceptsEveryForm() throws {
        #expect(try Self.parse(#""triggers":[{"event":"a/b"}],"concurrency":3"#).concurrency.map(\.limit) == [3])
        #expect(try Self.parse(#""triggers":[{"event":"a/b"}],"concurrency":{"limit":4,"key":"event.data.k","scope":"account"}"#).concurrency.first?.scope == .account)
        #expect(try Self.parse(#""triggers":[{"event":"a/b"}],"concurrency":{"fn":[{"limit":1}],"step":[{"limit":2}]}"#).concurrency.map(\.limit) == [1, 2])
    }

    @Test func wildcardTriggersMatchByPrefix() throws {
        let config = try Self.parse(#""triggers":[{"event":"app/user.*"}]"#)
        #expect(config.triggers[0].matches(eventName: "app/user.created"))
        #expect(!config.triggers[0].matches(eventName: "app/order.created"))
        #expect(try Self.parse(#""triggers":[{"event":"app/x"}]"#).triggers[0].matches(eventName: "app/x"))
    }

    @Test(arguments: [
        (#""triggers":[]"#, "triggers", "must have 1 to 10 entries, got 0"),
        (#""name":1,"triggers":[{"event":"a/b"}]"#, "name", "must be a string, got 1"),
        (#""triggers":[{"event":"a/b","cron":"* * * * *"}]"#, "triggers[0]", "must have exactly one of event or cron"),
        (#""triggers":[{}]"#, "triggers[0]", "must have exactly one of event or cron"),
        (#""triggers":[{"event":""}]"#, "triggers[0].event", "is required and must be a non-empty string"),
        (#""triggers":[{"event":"a/*/b"}]"#, "triggers[0].event", "a wildcard may only end the name"),
        (#""triggers":[{"event":"a/b","expression":"event.data.x =="}]"#, "triggers[0].expression", "does not compile"),
        (#""triggers":[{"cron":"61 * * * *"}]"#, "triggers[0].cron", "minute: 61 is outside 0-59"),
        (#""triggers":[{"cron":"TZ=Mars/Olympus 0 * * * *"}]"#, "triggers[0].cron", "unknown time zone"),
        (#""triggers":[{"event":"a/b"}],"retries":{"attempts":21}"#, "retries.attempts", "must be an integer from 0 to 20, got 21"),
        (#""triggers":[{"event":"a/b"}],"concurrency":[{"limit":1},{"limit":2},{"limit":3}]"#, "concurrency", "at most 2 limits"),
        (#""triggers":[{"event":"a/b"}],"concurrency":[{"limit":1,"scope":"galaxy"}]"#, "concurrency[0].scope", "must be fn, env or account"),
        (#""triggers":[{"event":"a/b"}],"throttle":{"limit":-1,"period":"1m"}"#, "throttle.limit", "must be an integer from 0"),
        (#""triggers":[{"event":"a/b"}],"throttle":{"limit":1,"period":"soon"}"#, "throttle.period", "must be a number followed by a unit"),
        (#""triggers":[{"event":"a/b"}],"rateLimit":{"limit":1,"period":"25h"}"#, "rateLimit.period", "must be from 1s to 1d"),
        (#""triggers":[{"event":"a/b"}],"debounce":{"period":"8d"}"#, "debounce.period", "must be from 1s to 1w"),
        (#""triggers":[{"event":"a/b"}],"batchEvents":{"maxSize":1,"timeout":"5s"}"#, "batchEvents.maxSize", "must be an integer from 2"),
        (#""triggers":[{"event":"a/b"}],"batchEvents":{"maxSize":5,"timeout":"500ms"}"#, "batchEvents.timeout", "must be from 1s"),
        (#""triggers":[{"event":"a/b"}],"cancel":[{"event":"x"},{"event":"x"},{"event":"x"},{"event":"x"},{"event":"x"},{"event":"x"}]"#, "cancel", "must have 0 to 5 entries, got 6"),
        (#""triggers":[{"event":"a/b"}],"cancel":[{"if":"true"}]"#, "cancel[0].event", "is required"),
        (##""triggers":[{"event":"a/b"}],"idempotency":"event.data.(""##, "idempotency", "does not compile"),
        (#""triggers":[{"event":"a/b"}],"priority":{"run":"1 +"}"#, "priority.run", "does not compile"),
        (#""triggers":[{"event":"a/b"}],"timeouts":{"finish":"1y"}"#, "timeouts.finish", "must end each number with a unit"),
        (#""triggers":[{"event":"a/b"}],"singleton":{"mode":"queue"}"#, "singleton.mode", "must be skip or cancel"),
        (#""triggers":[{"cron":"@daily"}]"#, "triggers[0].cron", "descriptors such as \"@daily\" are not accepted"),
        (#""triggers":[{"cron":"0 * * * *","jitter":"500ms"}]"#, "triggers[0].jitter", "must be from 1s to 5m"),
        (#""triggers":[{"cron":"0 * * * *","jitter":"6m"}]"#, "triggers[0].jitter", "must be from 1s to 5m"),
        (#""triggers":[{"event":"a/b"},{"event":"a/b"}]"#, "triggers[1]", "repeats an earlier trigger"),
        (#""triggers":[{"cron":"0 * * * *"},{"cron":"0 * * * *","jitter":"5s"}]"#, "triggers[1].cron", "repeats an earlier cron trigger's schedule"),
        (#""triggers":[{"event":"a/b"}],"batchEvents":{"maxSize":5,"timeout":"5s"},"cancel":[{"event":"x"}]"#, "cancel", "cannot be used with batchEvents"),
        (#""triggers":[{"event":"a/b"}],"batchEvents":{"maxSize":5,"timeout":"5s"},"debounce":{"period":"5s"}"#, "debounce", "cannot be used with batchEvents"),
        (#""triggers":[{"event":"a/b"}],"batchEvents":{"maxSize":5,"timeout":"5s"},"singleton":{"mode":"skip"}"#, "singleton", "cannot be used with batchEvents"),
        (#""triggers":[{"event":"a/b"}],"batchEvents":{"maxSize":5,"timeout":"5s"},"priority":{"run":"10"}"#, "priority.run", "cannot be used with batchEvents"),
    ])
    func eachRuleNamesTheField(fields: String, field: String, rule: String) throws {
        do {
            _ = try Self.parse(fields)
            Issue.record("\(fields) should be refused")
        } catch let error as FunctionConfigError {
            #expect(error.functionID == "app-f")
            #expect(error.field == field)
            #expect(error.rule.contains(rule), "\(error.rule)")
            #expect(error.description.hasPrefix("function \"app-f\": \(field): "))
        }
    }

    @Test func stepsNeedAnHTTPOrConnectRuntimeURL() throws {
        func step(_ runtime: String) throws(FunctionConfigError) -> FunctionStep? {
            try FunctionConfig(parsing: (try? JSONValue(parsing: #"{"id":"f","triggers":[{"event":"a/b"}],"steps":{"step":{"runtime":\#(runtime)}}}"#))!).steps.first
        }
        #expect(throws: FunctionConfigError.self) { try step(#"{"type":"http","url":"ftp://x"}"#) }
        #expect(throws: FunctionConfigError.self) { try step(#"{"type":"ws","url":""}"#) }
        let ws = try #require(try step(#"{"type":"ws","url":"wss://connect?fnId=a-f&stepId=step"}"#))
        #expect(ws.runtimeType == "ws" && ws.usesConnect)
        // Python connect apps declare on_failure functions as http with a wss:// URL: the URL decides.
        #expect(try #require(try step(#"{"type":"http","url":"wss://connect?fnId=a-f-failure&stepId=step"}"#)).usesConnect)
        #expect(try #require(try step(#"{"url":"http://h/api?fnId=a-f&stepId=step"}"#)).usesConnect == false)
    }
}

/// The register body: both key spellings, and every problem of every function at once.
@Suite struct AppRegistrationTests {
    @Test func readsPythonAndJSKeySpellings() throws {
        let fn = #"{"id":"a-f","triggers":[{"event":"a/b"}],"steps":{"step":{"runtime":{"url":"http://h/api"}}}}"#
        let python = try AppRegistration(parsing: try JSONValue(parsing: #"{"appname":"a","deploy_type":"ping","url":"http://h/api","sdk":"py:v0.5.19","framework":"flask","functions":[\#(fn)]}"#))
        #expect(python.appName == "a")
        #expect(python.deployType == "ping")
        #expect(python.sdkLanguage == "py")
        #expect(python.sdkVersion == "0.5.19")
        let js = try AppRegistration(parsing: try JSONValue(parsing: #"{"appName":"a","deployType":"ping","url":"http://h/api","sdk":"js:v4.18.1","appVersion":"7","functions":[\#(fn)]}"#))
        #expect(js.appName == "a")
        #expect(js.appVersion == "7")
        #expect(js.checksum == python.checksum)
    }

    @Test func reportsEveryProblem() throws {
        let body = #"""
            {"appname":"a","url":"not a url","functions":[
              {"id":"a-ok","triggers":[{"event":"a/b"}],"steps":{"step":{"runtime":{"url":"http://h/"}}}},
              {"id":"a-bad","triggers":[{"cron":"* *"}],"steps":{"step":{"runtime":{"url":"http://h/"}}}},
              {"name":"no id"},
              {"id":"a-ok","triggers":[{"event":"a/b"}],"steps":{"step":{"runtime":{"url":"http://h/"}}}}]}
            """#
        do {
            _ = try AppRegistration(parsing: try JSONValue(parsing: body))
            Issue.record("should be refused")
        } catch let error as AppRegistrationError {
            let fields = error.problems.map { "\($0.functionID ?? "-") \($0.field)" }
            #expect(fields == ["- url", "a-bad triggers[0].cron", "- functions[2].id", "- functions[3].id"])
            #expect(error.description.contains("function \"a-bad\": triggers[0].cron: must have 5 fields"))
            #expect(error.description.contains("\"a-ok\" appears more than once"))
        }
    }
}

/// Durations as SDKs write them.
@Suite struct ConfigDurationTests {
    @Test(arguments: [
        ("30s", 30_000), ("5m", 300_000), ("1h", 3_600_000), ("2d", 172_800_000), ("1w", 604_800_000),
        ("1h30m", 5_400_000), ("1.5h", 5_400_000), ("250ms", 250), ("1500us", 1), ("10ns", 0),
    ] as [(String, Int64)])
    func parses(text: String, milliseconds: Int64) throws {
        #expect(try ConfigDuration(parsing: text).milliseconds == milliseconds)
    }

    @Test(arguments: ["", "10", "s", "1x", "1.2.3s", "-1s"])
    func refuses(text: String) {
        #expect(throws: ConfigDurationError.self) { try ConfigDuration(parsing: text) }
    }

    @Test func writesTheLargestWholeUnit() {
        #expect(ConfigDuration(milliseconds: 86_400_000).text == "1d")
        #expect(ConfigDuration(milliseconds: 90_000).text == "90s")
        #expect(ConfigDuration(milliseconds: 1_500).text == "1500ms")
    }
}
