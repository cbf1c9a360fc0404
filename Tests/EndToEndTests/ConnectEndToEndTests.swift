import AsyncHTTPClient
import CairnCore
import CairnHTTP
import CairnRedis
import CairnRoles
import CairnTesting
import Foundation
import Testing

/// Connect (docs/connect.md) with the official Python SDK's connect client: gateway replicas
/// that die or drain with requests in flight, a worker's maximum concurrency, and workers that
/// break the protocol. The function scenarios themselves run over both transports in
/// `ExecutionEndToEndTests`.
@Suite(.serialized) struct ConnectEndToEndTests {
    typealias Harness = ExecutionEndToEndTests.Harness

    /// The control roles and the executor in this process, and two `cairn-gateway` processes:
    /// the connect worker dials the first (the only one when it starts); the second is there
    /// to move to.
    func withTwoGateways(_ body: @Sendable (Harness, _ first: Process) async throws -> Void) async throws {
        let environment = ExecutionEndToEndTests.environment.merging(["CAIRN_CONNECT_DRAIN_SECONDS": "15"]) { $1 }
        try await withRunningCairn(roles: [.eventAPI, .api, .scheduler, .executor], environment: environment) { cairn in
            let api = CairnAPIClient(origin: cairn.origin, key: nil)
            let peer = cairn.sharing(roles: [.gateway], environment: environment)
            let binaries = ExecutableTests()
            let gateways = Launched()
            @Sendable func launchGateway() async throws -> Process {
                let port = try TestEnvironment.freePort()
                let (process, _) = try binaries.launch(
                    "cairn-gateway", environment: peer.environment.merging(["CAIRN_PORT": String(port), "CAIRN_LOG_LEVEL": "error"]) { $1 })
                gateways.append(process)
                try await ConcurrencyEndToEndTests.waitUntilReady(port: port, process: process)
                return process
            }
            do {
                let first = try await launchGateway()
                try await withPythonApp(pointingAt: cairn, environment: ["APP_MODE": "connect", "APP_INSTANCE": "worker-1"]) { app in
                    try await api.waitForConnectWorkers(app: "cairn-e2e", count: 1)
                    _ = try await launchGateway()
                    try await body(Harness(api: api, app: app), first)
                }
            } catch {
                await ConcurrencyEndToEndTests.stop(gateways.all, binaries, name: "cairn-gateway")
                throw error
            }
            await ConcurrencyEndToEndTests.stop(gateways.all, binaries, name: "cairn-gateway")
        }
    }

    /// A worker without a concurrency limit, in the executor's own process: its request is sent
    /// before its slot and lease are written (docs/connect.md), yet both are there while the
    /// step runs, and neither outlives the call.
    @Test func aLocalWorkerWithoutALimitHoldsASlotWhileItsStepRunsAndNotAfter() async throws {
        try await withRunningCairn(environment: ExecutionEndToEndTests.environment) { cairn in
            let api = CairnAPIClient(origin: cairn.origin, key: nil)
            let prefix = cairn.environment["CAIRN_STREAM_PREFIX"] ?? ""
            let redis = RedisClient(configuration: try RedisConfiguration(url: try TestEnvironment.redisURL()), logger: .init(label: "test"))
            try await redis.connect()
            let slots = RedisArgument.string(prefix + "connect:slots:unlimited")
            // The request ids holding a slot, once there are `count` of them.
            @Sendable func held(_ count: Int) async throws -> [String] {
                let deadline = ContinuousClock.now + .seconds(10)
                while true {
                    let members = try await redis.send(["ZRANGE", slots, "0", "-1"]).array?.compactMap(\.string) ?? []
                    if members.count == count { return members }
                    try #require(ContinuousClock.now < deadline, "the worker held \(members.count) slots, never \(count)")
                    try await Task.sleep(for: .milliseconds(20))
                }
            }
            try await withPythonApp(pointingAt: cairn, environment: ["APP_MODE": "connect", "APP_INSTANCE": "unlimited"]) { app in
                try await api.waitForConnectWorkers(app: "cairn-e2e", count: 1)
                let harness = Harness(api: api, app: app)
                let ids = try await harness.send([["name": "test/slow", "data": ["key": "u1"]]])
                try await harness.waitUntilCounted("u1:slow")
                // The 3 s step holds one slot, and its request's lease names this worker.
                let request = try #require(try await held(1).first)
                let lease = try await redis.send(["HGET", .string(prefix + "connect:lease:" + request), "instance"])
                #expect(lease.string == "unlimited")
                #expect(try await harness.endedRun(of: try #require(ids.first))["status"] == "Completed")
                // Freed off the call's path, with the lease.
                _ = try await held(0)
                #expect(try await redis.send(["EXISTS", .string(prefix + "connect:lease:" + request)]).int64 == 0)
            }
            await redis.shutdown()
        }
    }

    /// Sends three runs whose middle step takes 3 s, and returns once the first of those steps runs.
    func sendSlowRuns(_ harness: Harness, prefix: String) async throws -> [String] {
        let ids = try await harness.send(.array((1...3).map { .object(["name": "test/slow", "data": ["key": .string("\(prefix)\($0)")]]) }))
        try #require(ids.count == 3)
        try await harness.waitUntilCounted("\(prefix)1:slow")
        return ids
    }

    @Test func killingTheGatewayOfAWorkerLosesNoRunInFlight() async throws {
        try await withTwoGateways { harness, first in
            let ids = try await sendSlowRuns(harness, prefix: "kill")
            kill(first.processIdentifier, SIGKILL)
            for id in ids {
                let run = try await harness.endedRun(of: id)
                #expect(run["status"]?.stringValue == "Completed", "\(run)")
                #expect(run["output"]?.stringValue == "survived", "\(run)")
            }
            // Every step ran; one whose acknowledgement died with the gateway may have run twice
            // (the executor cannot tell it from a request never delivered), as over HTTP when an
            // app's answer is lost.
            let counts = try await harness.counts()
            for key in ["kill1", "kill2", "kill3"] {
                for step in ["first", "slow", "last"] { #expect((counts["\(key):\(step)"]?.int64Value ?? 0) >= 1, "\(key):\(step) in \(counts)") }
            }
            // The worker moved to the other gateway; the lost connection is on record.
            let workers = try #require(try await harness.api.get("/v1/apps/cairn-e2e/workers").body["data"])
            #expect(workers["workers"]?.arrayValue?.count == 1, "\(workers)")
            #expect(workers["workers"]?[0]?["instance_id"]?.stringValue == "worker-1")
        }
    }

    @Test func aGatewayDrainingOnSIGTERMHandsItsWorkersOverAndLosesNothing() async throws {
        try await withTwoGateways { harness, first in
            let ids = try await sendSlowRuns(harness, prefix: "drain")
            kill(first.processIdentifier, SIGTERM)
            for id in ids {
                let run = try await harness.endedRun(of: id)
                #expect(run["status"]?.stringValue == "Completed", "\(run)")
            }
            let counts = try await harness.counts()
            for key in ["drain1", "drain2", "drain3"] {
                for step in ["first", "slow", "last"] { #expect(counts["\(key):\(step)"]?.int64Value == 1, "\(key):\(step) in \(counts)") }
            }
            #expect(await ExecutableTests().waitForExit(first, within: 30), "the draining gateway did not exit")
            #expect(first.terminationStatus == 0, "cairn-gateway exited \(first.terminationStatus) after SIGTERM")
            let disconnects = try await harness.api.get("/v1/apps/cairn-e2e/workers").body["data"]?["disconnects"]?.arrayValue ?? []
            #expect(!disconnects.isEmpty, "the drained connection is not on record")
        }
    }

    @Test func aWorkerAtItsMaximumConcurrencyGetsNoFurtherRequest() async throws {
        try await withRunningCairn(environment: ExecutionEndToEndTests.environment) { cairn in
            let api = CairnAPIClient(origin: cairn.origin, key: nil)
            let environment = ["APP_MODE": "connect", "APP_INSTANCE": "capped", "INNGEST_CONNECT_MAX_WORKER_CONCURRENCY": "1"]
            try await withPythonApp(pointingAt: cairn, environment: environment) { app in
                try await api.waitForConnectWorkers(app: "cairn-e2e", count: 1)
                let harness = Harness(api: api, app: app)
                let ids = try await harness.send(.array((1...4).map { .object(["name": "test/occupied", "data": ["key": "cap", "n": .number(JSONNumber($0))]]) }))
                for id in ids { #expect(try await harness.endedRun(of: id)["status"]?.stringValue == "Completed") }
                let counts = try await harness.counts()
                #expect(counts["cap:max"]?.int64Value == 1, "more than one request ran at once on a worker capped at 1: \(counts)")
                let worker = try #require(try await api.get("/v1/apps/cairn-e2e/workers").body["data"]?["workers"]?[0])
                #expect(worker["max_concurrency"]?.int64Value == 1)
                #expect(worker["sdk_language"]?.stringValue == "py")
                #expect(worker["sdk_version"]?.stringValue == "0.5.19")
                #expect(worker["status"]?.stringValue == "ready")
                #expect(worker["last_heartbeat_at"]?.stringValue != nil)
            }
        }
    }

    @Test func aCallWithNoWorkerConnectedWaitsForOneWithoutSpendingARetry() async throws {
        let environment = ExecutionEndToEndTests.environment.merging(["CAIRN_CONNECT_ROUTE_WAIT_SECONDS": "1"]) { $1 }
        try await withRunningCairn(environment: environment) { cairn in
            let api = CairnAPIClient(origin: cairn.origin, key: nil)
            let connect = ["APP_MODE": "connect", "APP_INSTANCE": "patient"]
            // The worker syncs the app, then goes away.
            try await withPythonApp(pointingAt: cairn, environment: connect) { _ in
                try await api.waitForConnectWorkers(app: "cairn-e2e", count: 1)
            }
            let sent = try await Harness.post("\(cairn.origin)/e/any-key", ["name": "test/patient", "data": ["key": "patient"]])
            let eventID = try #require(sent["ids"]?[0]?.stringValue)
            // The call finds no worker and is retried, though the function has no retries.
            let deadline = ContinuousClock.now + .seconds(60)
            var run = JSONValue.null
            while run["waiting_for"]?[0]?["kind"]?.stringValue != "retry" {
                try #require(ContinuousClock.now < deadline, "the run never waited to retry a call that found no worker: \(run)")
                try await Task.sleep(for: .milliseconds(100))
                if let id = try await api.get("/v1/events/\(eventID)/runs").body["data"]?[0]?["run_id"]?.stringValue {
                    run = try await api.get("/v1/runs/\(id)").body["data"] ?? .null
                }
            }
            #expect(run["status"]?.stringValue == "Running", "\(run)")
            // A worker comes back: the same attempt runs, once, and the run completes.
            try await withPythonApp(pointingAt: cairn, environment: connect) { app in
                let harness = Harness(api: api, app: app)
                let ended = try await harness.endedRun(of: eventID)
                #expect(ended["status"]?.stringValue == "Completed", "\(ended)")
                #expect(ended["output"]?.stringValue == "waited")
                #expect(try await harness.counts()["patient:only"]?.int64Value == 1)
            }
        }
    }

    @Test func workersThatFailAuthOrBreakTheProtocolAreClosedWithTheRightCode() async throws {
        let key = "signkey-test-" + String(repeating: "5a", count: 32)
        try await withRunningCairn(environment: ["INNGEST_SIGNING_KEY": key]) { cairn in
            let probe = Process()
            probe.executableURL = URL(fileURLWithPath: try #require(ProcessInfo.processInfo.environment["CAIRN_TEST_PYTHON"]))
            probe.arguments = [Self.probeScript.path, cairn.origin, key]
            let output = Pipe()
            probe.standardOutput = output
            probe.standardError = output
            try probe.run()
            let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            probe.waitUntilExit()
            try #require(probe.terminationStatus == 0, "the probe failed:\n\(text)")
            let results = try JSONValue(parsing: Array(try #require(text.split(separator: "\n").last).utf8))
            #expect(results["start_without_key"]?.int64Value == 401)
            #expect(results["start_with_wrong_key"]?.int64Value == 401)
            let expected: [(String, Int64, String?)] = [
                ("forged_session_token", 1008, "connect_authentication_failed"),
                ("first_message_not_protobuf", 1008, "connect_worker_hello_invalid_payload"),
                ("first_message_not_connect", 1008, "connect_worker_hello_invalid_msg"),
                ("message_not_protobuf", 1007, nil), ("text_message", 1007, nil), ("message_over_8_mib", 1009, nil),
            ]
            for (name, code, reason) in expected {
                let result = try #require(results[name], "\(name) missing from \(results)")
                #expect(result["subprotocol"]?.stringValue == "v0.connect.inngest.com", "\(name): \(result)")
                #expect(result["code"]?.int64Value == code, "\(name): \(result)")
                if let reason { #expect(result["reason"]?.stringValue == reason, "\(name): \(result)") }
            }
        }
    }

    static var probeScript: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("PythonApp/connect_probe.py")
    }
}

/// Processes a test started, from whichever task started them.
final class Launched: @unchecked Sendable {
    private let lock = NSLock()
    private var processes: [Process] = []

    func append(_ process: Process) { lock.withLock { processes.append(process) } }
    var all: [Process] { lock.withLock { processes } }
}

extension CairnAPIClient {
    /// Returns once `count` connect workers of `app` are ready, within 60 s (a worker whose
    /// first start failed retries after 5 s).
    func waitForConnectWorkers(app: String, count: Int) async throws {
        let deadline = ContinuousClock.now + .seconds(60)
        while true {
            let workers = try await get("/v1/apps/\(app)/workers").body["data"]?["workers"]?.arrayValue ?? []
            if workers.filter({ $0["status"]?.stringValue == "ready" }).count >= count { return }
            guard ContinuousClock.now < deadline else {
                throw LocalProcessError(description: "\(count) connect worker(s) of \(app) were not ready within 60 s: \(workers)")
            }
            try await Task.sleep(for: .milliseconds(100))
        }
    }
}
