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
