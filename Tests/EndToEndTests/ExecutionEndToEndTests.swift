import AsyncHTTPClient
import CairnCore
import CairnHTTP
import CairnTesting
import Foundation
import Testing

/// Runs of real functions on the official Python SDK, through every role: event API →
/// `events` → scheduler → `work` → executor → the app, and back. Events are sent with the
/// SDK's own client; what the REST API reports and how often each step body ran are checked.
///
/// Serialized: each test runs its own Cairn and Python app, and on a 2-core machine running all
/// of them at once next to every other suite slows each far past what a user would see.
@Suite(.serialized) struct ExecutionEndToEndTests {
    /// Retry backoffs at 2 % (15 s → 0.3 s) so retries finish within a test.
    static let environment = ["CAIRN_RETRY_BACKOFF_SCALE": "0.02"]

    struct Harness: Sendable {
        let api: CairnAPIClient
        let app: PythonApp

        /// Sends events through the app's SDK client; returns their internal ids.
        func send(_ events: JSONValue) async throws -> [String] {
            let reply = try await Self.post("http://127.0.0.1:\(app.port)/send", events)
            return reply["ids"]?.arrayValue?.compactMap(\.stringValue) ?? []
        }

        /// How often each step body ran, by `<key>:<step>`.
        func counts() async throws -> JSONValue {
            try await appGet("/counts")
        }

        /// What Cairn's `/metrics` shows now.
        func metricsText() async throws -> String {
            let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: "\(api.origin)/metrics"), timeout: .seconds(10))
            return String(buffer: try await response.body.collect(upTo: 1 << 22))
        }

        /// Returns once Cairn's `/metrics` holds every line of `lines`, within 30 s; otherwise
        /// fails naming the lines it never showed.
        func waitForMetrics(_ lines: [String]) async throws {
            let deadline = ContinuousClock.now + .seconds(30)
            while true {
                let shown = Set(try await metricsText().split(separator: "\n").map(String.init))
                let missing = lines.filter { !shown.contains($0) }
                if missing.isEmpty { return }
                guard ContinuousClock.now < deadline else {
                    let related = shown.filter { line in missing.contains { $0.split(separator: "{").first.map { line.hasPrefix($0) } ?? false } }
                    throw LocalProcessError(description: "/metrics never showed \(missing); it shows \(related.sorted())")
                }
                try await Task.sleep(for: .milliseconds(200))
            }
        }

        /// Returns once the app has counted `name` (a step body has started), within 30 s.
        func waitUntilCounted(_ name: String) async throws {
            let deadline = ContinuousClock.now + .seconds(30)
            while try await counts()[name] == nil {
                guard ContinuousClock.now < deadline else { throw LocalProcessError(description: "the app never counted \(name)") }
                try await Task.sleep(for: .milliseconds(20))
            }
        }

        /// What the app answers at `path` (what it recorded).
        func appGet(_ path: String) async throws -> JSONValue {
            var request = HTTPClientRequest(url: "http://127.0.0.1:\(app.port)\(path)")
            request.method = .GET
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
            return try JSONValue(parsing: Array(buffer: try await response.body.collect(upTo: 1 << 20)))
        }

        /// The runs `eventID` started, once each has ended (and at least `count` exist).
        func endedRuns(of eventID: String, count: Int = 1, timeout: Duration = .seconds(60)) async throws -> [JSONValue] {
            let deadline = ContinuousClock.now + timeout
            while true {
                let runs = try await api.get("/v1/events/\(eventID)/runs").body["data"]?.arrayValue ?? []
                let ended = runs.filter { ["Completed", "Failed", "Cancelled", "Skipped"].contains($0["status"]?.stringValue ?? "") }
                if runs.count >= count && ended.count == runs.count { return runs }
                guard ContinuousClock.now < deadline else {
                    throw LocalProcessError(description: "runs of event \(eventID) did not end within \(timeout): \(runs)")
                }
                try await Task.sleep(for: .milliseconds(50))
            }
        }

        /// The one run `eventID` started, with its steps, once it has ended.
        func endedRun(of eventID: String) async throws -> JSONValue {
            let runs = try await endedRuns(of: eventID)
            #expect(runs.count == 1, "\(runs)")
            let id = try #require(runs.first?["run_id"]?.stringValue)
            return try #require(try await api.get("/v1/runs/\(id)").body["data"])
        }

        static func post(_ url: String, _ body: JSONValue) async throws -> JSONValue {
            var request = HTTPClientRequest(url: url)
            request.method = .POST
            request.headers.add(name: "content-type", value: "application/json")
            request.body = .bytes(body.serialized())
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
            let bytes = Array(buffer: try await response.body.collect(upTo: 1 << 20))
            guard response.status == .ok else {
                throw LocalProcessError(description: "POST \(url) answered \(response.status): \(String(decoding: bytes, as: UTF8.self))")
            }
            return try JSONValue(parsing: bytes)
        }
    }

    /// How the app is plugged in: served over HTTP and synced, or as a connect worker that
    /// dials the gateway (and syncs itself as it connects).
    enum AppTransport: String, CaseIterable, Sendable {
        case http, connect
    }

    /// Cairn with every role, the Python app synced to it; with `signingKey`, both run signed
    /// (the SDK in cloud mode).
    func withHarness(
        signingKey: String? = nil, transport: AppTransport = .http, environment extra: [String: String] = [:],
        _ body: @Sendable (Harness) async throws -> Void
    ) async throws {
        var environment = Self.environment.merging(extra) { $1 }
        var appEnvironment: [String: String] = transport == .connect ? ["APP_MODE": "connect"] : [:]
        if let signingKey {
            // Outside dev mode events need a key too.
            for name in ["INNGEST_SIGNING_KEY", "INNGEST_EVENT_KEY"] {
                environment[name] = name == "INNGEST_SIGNING_KEY" ? signingKey : "e2e-event-key"
                appEnvironment[name] = environment[name]
            }
        }
        let appSettings = appEnvironment
        try await withRunningCairn(environment: environment) { cairn in
            let api = CairnAPIClient(origin: cairn.origin, key: try signingKey.map(SigningKey.init))
            try await withPythonApp(pointingAt: cairn, environment: appSettings) { app in
                switch transport {
                case .http:
                    let sync = try await api.requestSync(url: app.serveURL)
                    try #require(sync.status == 200, "\(sync.body)")
                case .connect:
                    try await api.waitForConnectWorkers(app: "cairn-e2e", count: 1)
                }
                try await body(Harness(api: api, app: app))
            }
        }
    }

    @Test(arguments: AppTransport.allCases) func threeSequentialStepsRunOnceEach(_ transport: AppTransport) async throws {
        try await withHarness(transport: transport) { harness in
            let ids = try await harness.send([["name": "test/three", "data": ["key": "k3"]]])
            let run = try await harness.endedRun(of: try #require(ids.first))
            #expect(run["status"] == "Completed")
            #expect(run["output"] == ["sum": 6])
            #expect(run["function_id"] == "cairn-e2e-three-steps")
            let steps = try #require(run["steps"]?.arrayValue)
            #expect(steps.map { $0["name"] } == ["one", "two", "three"])
            #expect(steps.map { $0["output"] } == [1, 2, 3])
            #expect(steps.map { $0["attempts"] } == [1, 1, 1])
            #expect(steps[0]["id"]?.stringValue == StepID.hashed("one"))
            let counts = try await harness.counts()
            #expect(counts["k3:one"] == 1)
            #expect(counts["k3:two"] == 1)
            #expect(counts["k3:three"] == 1)
        }
    }

    @Test(arguments: AppTransport.allCases) func aStepThatFailsTwiceSucceedsOnTheThirdAttempt(_ transport: AppTransport) async throws {
        try await withHarness(transport: transport) { harness in
            let ids = try await harness.send([["name": "test/flaky", "data": ["key": "kf"]]])
            let run = try await harness.endedRun(of: try #require(ids.first))
            #expect(run["status"] == "Completed")
            #expect(run["output"] == "finally")
            #expect(run["steps"]?[0]?["attempts"] == 3)
            #expect(try await harness.counts()["kf:unreliable"] == 3)
            // The waterfall: two failed attempts with the SDK's error, then the step's final
            // attempt, each queued, then sent, then ended (fixed-width times compare as text).
            let failed = try #require(run["failed_attempts"]?.arrayValue)
            #expect(failed.map { $0["attempt"] } == [1, 2])
            #expect(failed.allSatisfy { $0["step_id"]?.stringValue == StepID.hashed("unreliable") })
            #expect(failed.allSatisfy { $0["error"]?["message"]?.stringValue?.contains("not yet") == true })
            let step = try #require(run["steps"]?[0])
            let times = failed.flatMap { [$0["queued_at"], $0["started_at"], $0["ended_at"]] } + [step["queued_at"], step["started_at"], step["recorded_at"]]
            let texts = times.compactMap { $0?.stringValue }
            #expect(texts.count == 9)
            #expect(texts == texts.sorted())
        }
    }

    @Test func aNonRetriableErrorFailsTheRunWithoutRetry() async throws {
        try await withHarness { harness in
            let ids = try await harness.send([["name": "test/non-retriable", "data": ["key": "kn"]]])
            let run = try await harness.endedRun(of: try #require(ids.first))
            #expect(run["status"] == "Failed")
            #expect(run["error"]?["message"] == "this cannot work")
            #expect(try await harness.counts()["kn:non-retriable"] == 1)
        }
    }

    @Test(arguments: AppTransport.allCases) func aSleepThenContinues(_ transport: AppTransport) async throws {
        try await withHarness(transport: transport) { harness in
            let ids = try await harness.send([["name": "test/sleep", "data": ["key": "ks"]]])
            let run = try await harness.endedRun(of: try #require(ids.first))
            #expect(run["status"] == "Completed")
            #expect(run["output"] == "rested")
            let steps = try #require(run["steps"]?.arrayValue)
            #expect(steps.map { $0["op"] } == ["StepRun", "Sleep", "StepRun"])
            let started = try #require(run["run_started_at"]?.stringValue.flatMap(RFC3339.parseMilliseconds))
            let ended = try #require(run["ended_at"]?.stringValue.flatMap(RFC3339.parseMilliseconds))
            #expect(ended - started >= 1_000)
            let counts = try await harness.counts()
            #expect(counts["ks:before"] == 1)
            #expect(counts["ks:after"] == 1)
        }
    }

    @Test func aTriggerExpressionFiltersEvents() async throws {
        try await withHarness { harness in
            let ids = try await harness.send([
                ["name": "test/filtered", "data": ["plan": "free"]], ["name": "test/filtered", "data": ["plan": "pro"]],
            ])
            try #require(ids.count == 2)
            let pro = try await harness.endedRun(of: ids[1])
            #expect(pro["output"] == "pro")
            #expect(try await harness.api.get("/v1/events/\(ids[0])/runs").body["data"] == [])
        }
    }

    @Test func outputsOfEveryJSONTypeComeBackUnchanged() async throws {
        try await withHarness { harness in
            let values: [JSONValue] = [
                .number(JSONNumber(literal: "9007199254740993")!), .number(JSONNumber(literal: "-12345678901234567890")!),
                2.5, "text with \"quotes\" and ünïcödé", true, false, .null, [1, "two", [3]], ["nested": ["deep": [true, nil]]],
            ]
            var events: [JSONValue] = []
            for value in values { events.append(["name": "test/echo", "data": ["value": value]]) }
            let ids = try await harness.send(.array(events))
            try #require(ids.count == values.count)
            for (id, value) in zip(ids, values) {
                let run = try await harness.endedRun(of: id)
                #expect(run["status"] == "Completed")
                #expect(run["output"] == value, "\(id)")
                #expect(run["steps"]?[0]?["output"] == value)
            }
        }
    }

    @Test(arguments: AppTransport.allCases) func onFailureRunsWithTheOriginalEvent(_ transport: AppTransport) async throws {
        try await withHarness(transport: transport) { harness in
            let ids = try await harness.send([["name": "test/fail", "data": ["key": "kx"]]])
            let failed = try await harness.endedRun(of: try #require(ids.first))
            #expect(failed["status"] == "Failed")
            // The run's error is the SDK's error body, unchanged: nothing added to it.
            let error = try #require(failed["error"]?.objectValue)
            #expect(Set(error.keys) == ["name", "message", "stack", "code"])
            #expect(failed["error"]?["name"] == "RuntimeError")
            #expect(failed["error"]?["message"] == "it had to fail")
            #expect(failed["error"]?["code"] == "unknown")
            let runID = try #require(failed["run_id"]?.stringValue)

            // function.failed carries the run id as its id and the original event in its data,
            // and the server's standard error: the reply's status as `error`, and no `code`.
            let failedEvent = try await harness.systemEvent(named: "inngest/function.failed", runID: runID)
            #expect(failedEvent["data"]?["error"]?["error"] == "invalid status code: 500")
            #expect(failedEvent["data"]?["error"]?["name"] == "RuntimeError")
            #expect(failedEvent["data"]?["error"]?["message"] == "it had to fail")
            #expect(failedEvent["data"]?["error"]?["stack"]?.stringValue?.hasPrefix("Traceback") == true)
            #expect(failedEvent["data"]?["error"]?["code"] == nil)
            #expect(failedEvent["data"]?["function_id"] == "cairn-e2e-fails-with-handler")
            #expect(failedEvent["data"]?["event"]?["data"] == ["key": "kx"])
            #expect(failedEvent["id"]?.stringValue == runID)
            let handler = try await harness.endedRun(of: try #require(failedEvent["internal_id"]?.stringValue))
            #expect(handler["function_id"] == "cairn-e2e-fails-with-handler-failure")
            #expect(handler["status"] == "Completed")
            #expect(handler["output"] == "kx")
            let finished = try await harness.systemEvent(named: "inngest/function.finished", runID: runID)
            #expect(finished["data"]?["_inngest"]?["status"] == "Failed")
            let counts = try await harness.counts()
            #expect(counts["kx:doomed"] == 1)
            #expect(counts["kx:on-failure"] == 1)
        }
    }

    @Test func oneEventFansOutToThreeFunctions() async throws {
        try await withHarness { harness in
            let ids = try await harness.send([["name": "test/fan", "data": ["key": "kfan"]]])
            let runs = try await harness.endedRuns(of: try #require(ids.first), count: 3)
            #expect(Set(runs.compactMap { $0["function_id"]?.stringValue }) == ["cairn-e2e-fan-a", "cairn-e2e-fan-b", "cairn-e2e-fan-c"])
            #expect(runs.allSatisfy { $0["status"] == "Completed" })
            // Redelivery of the same event is SchedulerReplicaTests' subject.
            let counts = try await harness.counts()
            #expect(counts["kfan:fan-a"] == 1 && counts["kfan:fan-b"] == 1 && counts["kfan:fan-c"] == 1)
        }
    }

    @Test func sendEventFromAStepStartsAnotherFunction() async throws {
        try await withHarness { harness in
            let ids = try await harness.send([["name": "test/send", "data": ["key": "kse"]]])
            let sender = try await harness.endedRun(of: try #require(ids.first))
            #expect(sender["status"] == "Completed")
            let sentID = try #require(sender["output"]?[0]?.stringValue)
            let started = try await harness.endedRun(of: sentID)
            #expect(started["function_id"] == "cairn-e2e-three-steps")
            #expect(started["output"] == ["sum": 6])
            #expect(try await harness.counts()["kse-sent:one"] == 1)
        }
    }

    /// Two failures in one run, each retried: each retry has a timer of its own.
    @Test(arguments: [("test/fails-twice", "k2f"), ("test/raises-around", "k2r")])
    func aRunThatFailsTwiceIsRetriedTwice(_ name: String, _ key: String) async throws {
        try await withHarness { harness in
            let ids = try await harness.send([["name": .string(name), "data": ["key": .string(key)]]])
            let run = try await harness.endedRun(of: try #require(ids.first))
            #expect(run["status"] == "Completed", "\(run)")
            let counts = try await harness.counts()
            if name == "test/fails-twice" {
                #expect(run["output"] == ["a": "a", "b": "b"])
                #expect(counts["\(key):a"] == 2 && counts["\(key):b"] == 2)
                #expect(run["steps"]?.arrayValue?.compactMap { $0["attempts"] } == [2, 2])
            } else {
                #expect(run["output"] == "ran")
                #expect(counts["\(key):only"] == 1)
                #expect(counts["\(key):raise-before"] == 4 && counts["\(key):raise-after"] == 2)
            }
        }
    }

    /// A parallel group holds an invoke, a sleep, a wait and steps, and the function goes on
    /// once all of them are done.
    @Test func aParallelGroupHoldsEveryKindOfStep() async throws {
        try await withHarness { harness in
            let ids = try await harness.send([["name": "test/group", "data": ["key": "kg"]]])
            let eventID = try #require(ids.first)
            let runID = try await harness.runID(of: eventID)
            try await harness.waitForStatus(runID, until: { ($0["waiting_for"]?.arrayValue ?? []).contains { $0["kind"] == "wait" } })
            _ = try await harness.send([["name": "test/group-approved", "data": ["key": "kg", "by": "ada"]]])
            let run = try await harness.endedRun(of: eventID)
            #expect(run["status"] == "Completed", "\(run)")
            #expect(run["output"] == ["invoked": ["doubled": 10], "slept": .null, "by": "ada", "sum": 3, "after": "after"])
            let counts = try await harness.counts()
            #expect(counts["kg:one"] == 1 && counts["kg:two"] == 1 && counts["kg:after"] == 1)
        }
    }

    /// Race mode: the function is called again after each member that finishes, so the fast
    /// sequence's second step runs while the slow sequence's first is still running.
    @Test func aRaceGoesOnAfterEachMemberThatFinishes() async throws {
        try await withHarness { harness in
            let ids = try await harness.send([["name": "test/race", "data": ["key": "kr"]]])
            let run = try await harness.endedRun(of: try #require(ids.first))
            #expect(run["status"] == "Completed", "\(run)")
            #expect(try await harness.appGet("/race-order")["kr"] == ["a1", "a2", "b1", "b2"])
        }
    }

    /// `step.ai.infer`: Cairn makes the provider request the SDK describes, with its key and
    /// headers, and the provider's answer is the step's output.
    @Test func anAIStepIsMadeByCairnAgainstTheProvider() async throws {
        try await withHarness { harness in
            let ids = try await harness.send([["name": "test/ai", "data": [:]]])
            let run = try await harness.endedRun(of: try #require(ids.first))
            #expect(run["status"] == "Completed", "\(run)")
            #expect(run["output"]?["content"]?[0]?["text"] == "hello from the fake provider")
            #expect(run["steps"]?[0]?["op"] == "AIGateway")
            let request = try #require(try await harness.appGet("/provider-requests").arrayValue?.last)
            #expect(request["headers"]?["X-Api-Key"] == "sk-test-key")
            #expect(request["headers"]?["X-My-Header"] == "my-value")
            #expect(request["body"]?["model"] == "claude-test")
            #expect(request["body"]?["messages"] == [["role": "user", "content": "hi"]])
        }
    }

    @Test func aCompletedRunEmitsFunctionFinishedWithItsResult() async throws {
        try await withHarness { harness in
            let ids = try await harness.send([["name": "test/three", "data": ["key": "kfin"]]])
            let run = try await harness.endedRun(of: try #require(ids.first))
            let finished = try await harness.systemEvent(named: "inngest/function.finished", runID: try #require(run["run_id"]?.stringValue))
            #expect(finished["data"]?["result"] == ["sum": 6])
            #expect(finished["data"]?["function_id"] == "cairn-e2e-three-steps")
            #expect(finished["data"]?["_inngest"]?["status"] == "Completed")
        }
    }
    @Test(arguments: AppTransport.allCases) func waitForEventIsResumedByTheMatchingEventOnly(_ transport: AppTransport) async throws {
        try await withHarness(transport: transport) { harness in
            let ids = try await harness.send([["name": "test/wait", "data": ["key": "kw"]]])
            let eventID = try #require(ids.first)
            let runID = try await harness.runID(of: eventID)
            // Sent the moment the wait exists: an event routed while the wait was being stored
            // is found by the wait's look-back, so no grace time is needed.
            try await harness.waitForStatus(runID, until: { $0["waiting_for"]?[0]?["kind"] == "wait" })
            // Another key: no match. The right key: resumes the run with that event.
            _ = try await harness.send([["name": "test/approved", "data": ["key": "other", "by": "mallory"]]])
            let approval = try await harness.send([["name": "test/approved", "data": ["key": "kw", "by": "alice"]]])
            let run = try await harness.endedRun(of: eventID)
            #expect(run["status"] == "Completed")
            #expect(run["output"]?["approved_by"] == "alice")
            #expect(run["output"]?["event_id"]?.stringValue == approval.first)
            #expect(run["steps"]?[0]?["op"] == "WaitForEvent")
            #expect(try await harness.counts()["kw:after-wait"] == 1)
        }
    }

    @Test func aTimedOutWaitReturnsNone() async throws {
        try await withHarness { harness in
            let ids = try await harness.send([["name": "test/wait", "data": ["key": "kwt", "timeout": 1]]])
            let run = try await harness.endedRun(of: try #require(ids.first))
            #expect(run["status"] == "Completed")
            #expect(run["output"] == .null)
            #expect(run["steps"]?[0]?["output"] == .null)
        }
    }

    @Test(arguments: AppTransport.allCases) func invokeReturnsTheCalleesValueOrRaisesItsError(_ transport: AppTransport) async throws {
        try await withHarness(transport: transport) { harness in
            let ids = try await harness.send([["name": "test/invoke", "data": [:]]])
            let run = try await harness.endedRun(of: try #require(ids.first))
            #expect(run["status"] == "Completed")
            #expect(run["output"]?["ok"] == ["doubled": 42])
            #expect(run["output"]?["failed"]?.stringValue?.contains("the child gave up") == true, "\(run)")
        }
    }

    @Test func cancellingThroughTheAPIDuringASleepEndsTheRun() async throws {
        try await withHarness { harness in
            let ids = try await harness.send([["name": "test/cancellable", "data": ["key": "kc"]]])
            let runID = try await harness.runID(of: try #require(ids.first))
            try await harness.waitForStatus(runID, until: { $0["waiting_for"]?[0]?["kind"] == "sleep" })
            let reply = try await harness.api.send("DELETE", "/v1/runs/\(runID)")
            #expect(reply.status == 200, "\(reply.body)")
            let run = try await harness.endedRun(of: try #require(ids.first))
            #expect(run["status"] == "Cancelled")
            let again = try await harness.api.send("DELETE", "/v1/runs/\(runID)")
            #expect(again.status == 409)
            let cancelled = try await harness.systemEvent(named: "inngest/function.cancelled", runID: runID)
            #expect(cancelled["data"]?["function_id"] == "cairn-e2e-cancellable")
            #expect(try await harness.counts()["kc:after"] == nil)
        }
    }

    @Test func aCancelEventCancelsTheMatchingRunOnly() async throws {
        try await withHarness { harness in
            let ids = try await harness.send([
                ["name": "test/cancellable", "data": ["key": "kc1"]], ["name": "test/cancellable", "data": ["key": "kc2"]],
            ])
            try #require(ids.count == 2)
            let first = try await harness.runID(of: ids[0])
            let second = try await harness.runID(of: ids[1])
            try await harness.waitForStatus(first, until: { ($0["steps"]?.arrayValue?.count ?? 0) >= 1 })
            _ = try await harness.send([["name": "test/stop", "data": ["key": "kc1"]]])
            let run = try await harness.endedRun(of: ids[0])
            #expect(run["status"] == "Cancelled")
            try await Task.sleep(for: .milliseconds(300))
            #expect(try await harness.api.get("/v1/runs/\(second)").body["data"]?["status"] == "Running")
            #expect(try await harness.api.send("DELETE", "/v1/runs/\(second)").status == 200)
        }
    }

    @Test(arguments: AppTransport.allCases) func parallelStepsEachRunOnceThenTheFunctionContinues(_ transport: AppTransport) async throws {
        try await withHarness(transport: transport) { harness in
            let ids = try await harness.send([["name": "test/parallel", "data": ["key": "kp"]]])
            let run = try await harness.endedRun(of: try #require(ids.first))
            #expect(run["status"] == "Completed", "\(run)")
            #expect(run["output"] == ["results": ["a", "b", "c"], "after": "done"])
            let steps = try #require(run["steps"]?.arrayValue)
            #expect(Set(steps.compactMap { $0["name"]?.stringValue }) == ["a", "b", "c", "after"])
            let counts = try await harness.counts()
            #expect(counts["kp:a"] == 1)
            #expect(counts["kp:b"] == 1)
            #expect(counts["kp:shaky"] == 2)
            #expect(counts["kp:after"] == 1)
        }
    }

    @Test func signedModeSignsCallsAndChecksReplies() async throws {
        try await withHarness(signingKey: "signkey-prod-" + String(repeating: "5eed", count: 16)) { harness in
            let ids = try await harness.send([["name": "test/three", "data": ["key": "ksig"]]])
            let run = try await harness.endedRun(of: try #require(ids.first))
            #expect(run["status"] == "Completed", "\(run)")
            #expect(run["output"] == ["sum": 6])
        }
    }

    @Test func retryAfterIsHonoured() async throws {
        try await withHarness { harness in
            let ids = try await harness.send([["name": "test/retry-after", "data": ["key": "kra"]]])
            let run = try await harness.endedRun(of: try #require(ids.first))
            #expect(run["status"] == "Completed")
            #expect(run["output"] == "ok")
            let started = try #require(run["run_started_at"]?.stringValue.flatMap(RFC3339.parseMilliseconds))
            let ended = try #require(run["ended_at"]?.stringValue.flatMap(RFC3339.parseMilliseconds))
            // The scaled backoff would retry after about 0.3 s; retry-after asked for 2 s.
            #expect(ended - started >= 1_500, "\(ended - started) ms")
            #expect(try await harness.counts()["kra:retry-after"] == 2)
        }
    }

    @Test func anEventFromTheFutureStartsItsRunWhenItsTimeComes() async throws {
        try await withHarness { harness in
            let due = Int64(Date().timeIntervalSince1970 * 1_000) + 2_000
            let ids = try await harness.send([["name": "test/three", "data": ["key": "kts"], "ts": .number(JSONNumber(due))]])
            let eventID = try #require(ids.first)
            try await Task.sleep(for: .milliseconds(1_000))
            #expect(try await harness.api.get("/v1/events/\(eventID)/runs").body["data"] == [])
            let run = try await harness.endedRun(of: eventID)
            #expect(run["status"] == "Completed")
            let started = try #require(run["run_started_at"]?.stringValue.flatMap(RFC3339.parseMilliseconds))
            #expect(started >= due)
        }
    }

    @Test func stateOverFourMebibytesIsFetchedByTheSDKThroughTheAPI() async throws {
        try await withHarness { harness in
            let ids = try await harness.send([["name": "test/big-state", "data": ["key": "kbig"]]])
            let run = try await harness.endedRun(of: try #require(ids.first))
            #expect(run["status"] == "Completed", "\(run["error"] ?? .null)")
            #expect(run["output"] == 5_000_000)
            let counts = try await harness.counts()
            #expect(counts["kbig:a"] == 1 && counts["kbig:b"] == 1 && counts["kbig:sum"] == 1)
        }
    }

    @Test func exceedingALimitFailsTheRunNamingIt() async throws {
        try await withHarness { harness in
            let ids = try await harness.send([
                ["name": "test/too-big", "data": [:]], ["name": "test/many-steps", "data": [:]],
                ["name": "test/too-big-parallel", "data": [:]],
            ])
            try #require(ids.count == 3)
            // A planned step of a parallel group is held to the same limit.
            let parallel = try await harness.endedRun(of: ids[2])
            #expect(parallel["status"] == "Failed")
            #expect(parallel["error"]?["message"]?.stringValue?.contains("step \"huge\" returned") == true, "\(parallel)")
            let big = try await harness.endedRun(of: ids[0])
            #expect(big["status"] == "Failed")
            #expect(big["error"]?["name"] == "RunLimitExceeded")
            #expect(big["error"]?["message"]?.stringValue?.contains("at most 4194304 are allowed") == true, "\(big)")
            let many = try await harness.endedRuns(of: ids[1], timeout: .seconds(120)).first
            #expect(many?["status"] == "Failed")
            let detail = try await harness.api.get("/v1/runs/\(many?["run_id"]?.stringValue ?? "")").body["data"]
            #expect(detail?["error"]?["message"]?.stringValue?.contains("at most 1000 are allowed") == true)
            #expect(detail?["steps"]?.arrayValue?.count == 1_000)
        }
    }
}

extension ExecutionEndToEndTests.Harness {
    /// The id of the one run `eventID` started, once it exists.
    func runID(of eventID: String) async throws -> String {
        let deadline = ContinuousClock.now + .seconds(60)
        while true {
            if let id = try await api.get("/v1/events/\(eventID)/runs").body["data"]?[0]?["run_id"]?.stringValue { return id }
            guard ContinuousClock.now < deadline else { throw LocalProcessError(description: "event \(eventID) started no run") }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    /// Waits until the run's REST view satisfies `condition`.
    func waitForStatus(_ runID: String, until condition: (JSONValue) -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(60)
        while true {
            if let run = try await api.get("/v1/runs/\(runID)").body["data"], condition(run) { return }
            guard ContinuousClock.now < deadline else { throw LocalProcessError(description: "run \(runID) never reached the expected state") }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    /// The system event `name` about `runID`, once stored.
    func systemEvent(named name: String, runID: String) async throws -> JSONValue {
        let deadline = ContinuousClock.now + .seconds(60)
        while true {
            let events = try await api.get("/v1/events?name=\(name)&limit=100").body["data"]?.arrayValue ?? []
            if let event = events.first(where: { $0["data"]?["run_id"]?.stringValue == runID }) { return event }
            guard ContinuousClock.now < deadline else { throw LocalProcessError(description: "no \(name) event for run \(runID)") }
            try await Task.sleep(for: .milliseconds(50))
        }
    }
}
