import AsyncHTTPClient
import CairnCore
import CairnHTTP
import CairnRoles
import CairnTesting
import Foundation
import Testing

/// Concurrency limits across two executor processes on the official Python SDK
/// (docs/queue.md): the limit holds for the whole cluster, and a full line delays no other
/// function.
@Suite(.serialized) struct ConcurrencyEndToEndTests {
    /// Runs the control roles and the Python app in this process, and two `cairn-executor`
    /// processes, as an operator runs them, around `body`.
    func withTwoExecutors(_ body: @Sendable (ExecutionEndToEndTests.Harness) async throws -> Void) async throws {
        try await withRunningCairn(roles: [.eventAPI, .api, .scheduler], environment: ExecutionEndToEndTests.environment) { cairn in
            let api = CairnAPIClient(origin: cairn.origin, key: nil)
            try await withPythonApp(pointingAt: cairn) { app in
                try #require(try await api.requestSync(url: app.serveURL).status == 200)
                let harness = ExecutionEndToEndTests.Harness(api: api, app: app)
                let peer = cairn.sharing(roles: [.executor], environment: ExecutionEndToEndTests.environment)
                let binaries = ExecutableTests()
                var executors: [Process] = []
                do {
                    for _ in 0..<2 {
                        let port = try TestEnvironment.freePort()
                        let (process, _) = try binaries.launch(
                            "cairn-executor", environment: peer.environment.merging(["CAIRN_PORT": String(port), "CAIRN_LOG_LEVEL": "error"]) { $1 })
                        executors.append(process)
                        try await Self.waitUntilReady(port: port, process: process)
                    }
                    try await body(harness)
                } catch {
                    await Self.stop(executors, binaries)
                    throw error
                }
                await Self.stop(executors, binaries)
            }
        }
    }

    static func waitUntilReady(port: Int, process: Process) async throws {
        let deadline = ContinuousClock.now + .seconds(60)
        while true {
            try #require(process.isRunning, "cairn-executor exited at start")
            if let response = try? await HTTPClient.shared.execute(HTTPClientRequest(url: "http://127.0.0.1:\(port)/readyz"), timeout: .seconds(2)),
                response.status == .ok
            {
                return
            }
            try #require(ContinuousClock.now < deadline, "cairn-executor was not ready within 60 s")
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    /// SIGTERM to each still running, then each must exit cleanly within the grace period (5 s
    /// here) and a margin: a drain that hangs fails the test.
    static func stop(_ processes: [Process], _ binaries: ExecutableTests, name: String = "cairn-executor") async {
        let running = processes.filter(\.isRunning)
        for process in running { kill(process.processIdentifier, SIGTERM) }
        for process in running {
            if await binaries.waitForExit(process, within: 30) {
                #expect(process.terminationStatus == 0, "\(name) exited \(process.terminationStatus) after SIGTERM")
            } else {
                Issue.record("\(name) did not stop within 30 s of SIGTERM")
                process.terminate()
            }
        }
    }

    @Test func theLimitHoldsAcrossTwoExecutors() async throws {
        try await withTwoExecutors { harness in
            let events: [JSONValue] = (1...8).map { n in ["name": "test/limited", "data": ["key": "Q", "n": .number(JSONNumber(n))]] }
            var runs: [JSONValue] = []
            for id in try await harness.send(.array(events)) { runs.append(try #require(try await harness.endedRuns(of: id).first)) }
            #expect(runs.map { $0["status"] } == Array(repeating: "Completed", count: 8))
            let most = try #require(try await harness.counts()["Q:max"]?.int64Value)
            #expect(most <= 2)
        }
    }

    @Test func aFullLineDelaysNoOtherFunction() async throws {
        try await withTwoExecutors { harness in
            // The first run holds the only slot for 10 s; two more wait behind it.
            _ = try await harness.send([["name": "test/prioritized", "data": ["n": 0, "p": 0, "hold": 10]]])
            try await harness.waitUntilCounted("P:max")
            let deadline = ContinuousClock.now + .seconds(30)
            let waiting = try await harness.send([
                ["name": "test/prioritized", "data": ["n": 1, "p": 0]], ["name": "test/prioritized", "data": ["n": 2, "p": 0]],
            ])
            func line() async throws -> JSONValue {
                let queues = try await harness.api.get("/v1/queues").body["data"]?.arrayValue ?? []
                return try #require(queues.first { $0["function_id"]?.stringValue?.hasSuffix("-prioritized") == true })
            }
            while try await line()["backlog"] != 2 {
                try #require(ContinuousClock.now < deadline, "the two runs never waited in line")
                try await Task.sleep(for: .milliseconds(20))
            }
            // Another function's run goes through while the line is still full.
            let other = try #require(try await harness.send([["name": "test/hello", "data": ["name": "next door"]]]).first)
            #expect(try await harness.endedRun(of: other)["status"] == "Completed")
            let after = try await line()
            #expect(after["running"] == 1)
            #expect(after["backlog"] == 2)
            #expect(after["ready"] == 0)
            // The scheduler's gauges show the same line within a pass (every 5 s).
            let slug = try #require(after["function_id"]?.stringValue)
            try await harness.waitForMetrics([
                "cairn_queue_depth{function=\"\(slug)\",state=\"backlog\"} 2.0", "cairn_queue_depth{function=\"\(slug)\",state=\"ready\"} 0.0",
                "cairn_concurrency_in_use{function=\"\(slug)\"} 1.0",
            ])
            for id in waiting { #expect(try await harness.endedRun(of: id)["status"] == "Completed") }
        }
    }
}
