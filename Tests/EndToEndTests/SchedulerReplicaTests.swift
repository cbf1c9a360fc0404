import CairnCore
import CairnHTTP
import CairnRedis
import CairnRoles
import CairnTesting
import Foundation
import Testing

/// Two scheduler replicas, and an event delivered more than once (a relay republishing it, a
/// stream entry reclaimed): still one run per function, and each timer fires once.
@Suite struct SchedulerReplicaTests {
    @Test func twoSchedulersAndRepeatedDeliveriesStartEachRunOnce() async throws {
        try await withRunningCairn(environment: ExecutionEndToEndTests.environment) { cairn in
            let api = CairnAPIClient(origin: cairn.origin, key: nil)
            try await withPythonApp(pointingAt: cairn) { app in
                try #require(try await api.requestSync(url: app.serveURL).status == 200)
                let harness = ExecutionEndToEndTests.Harness(api: api, app: app)
                let replica = cairn.sharing(roles: [.scheduler])
                try await replica.running {
                    let ids = try await harness.send([
                        ["name": "test/fan", "data": ["key": "krep"]], ["name": "test/sleep", "data": ["key": "krep"]],
                    ])
                    try #require(ids.count == 2)
                    _ = try await harness.endedRuns(of: ids[0], count: 3)

                    // Deliver the fan-out event three more times, as a republish would. (Routed
                    // entries are deleted from the stream, so the entry is made again from the
                    // stored event.)
                    let stored = try #require(try await api.get("/v1/events/\(ids[0])").body["data"])
                    var event = stored
                    for key in ["internal_id", "received_at"] { _ = event.removeValue(forKey: key) }
                    let redis = RedisClient(configuration: try RedisConfiguration(url: try TestEnvironment.redisURL()), logger: .init(label: "test"))
                    try await redis.connect()
                    let stream = (cairn.environment["CAIRN_STREAM_PREFIX"] ?? "") + "events"
                    let fields: [RedisArgument] = [
                        "id", .string(ids[0]), "name", "test/fan", "ts", .string(stored["ts"]?.jsonString ?? "0"), "event", .bytes(event.serialized()),
                    ]
                    for _ in 0..<3 { _ = try await redis.send(["XADD", .string(stream), "*"] + fields) }

                    let slept = try await harness.endedRun(of: ids[1])
                    #expect(slept["status"] == "Completed")
                    // Routed entries are deleted: once the stream is empty, all three were routed.
                    let deadline = ContinuousClock.now + .seconds(20)
                    while try await redis.xlen(stream) > 0 {
                        try #require(ContinuousClock.now < deadline, "the repeated deliveries were never routed")
                        try await Task.sleep(for: .milliseconds(20))
                    }
                    await redis.shutdown()
                    let runs = try await api.get("/v1/events/\(ids[0])/runs").body["data"]?.arrayValue ?? []
                    #expect(runs.count == 3)
                    let counts = try await harness.counts()
                    #expect(counts["krep:fan-a"] == 1 && counts["krep:fan-b"] == 1 && counts["krep:fan-c"] == 1)
                    #expect(counts["krep:before"] == 1 && counts["krep:after"] == 1)
                }
            }
        }
    }
}
