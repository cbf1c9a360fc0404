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

                    // Deliver the fan-out event three more times, as a republish would.
                    let redis = RedisClient(configuration: try RedisConfiguration(url: try TestEnvironment.redisURL()), logger: .init(label: "test"))
                    try await redis.connect()
                    let stream = (cairn.environment["CAIRN_STREAM_PREFIX"] ?? "") + "events"
                    let entries = try await redis.send(["XRANGE", .string(stream), "-", "+"])
                    var republished = 0
                    if case .array(let all) = entries {
                        for entry in all {
                            guard case .array(let parts) = entry, parts.count == 2, case .array(let fields) = parts[1] else { continue }
                            let texts = fields.compactMap { value -> [UInt8]? in if case .bulkString(let bytes) = value { bytes } else { nil } }
                            guard let index = texts.firstIndex(where: { $0 == Array("id".utf8) }), index + 1 < texts.count,
                                String(decoding: texts[index + 1], as: UTF8.self) == ids[0]
                            else { continue }
                            for _ in 0..<3 {
                                _ = try await redis.send(["XADD", .string(stream), "*"] + texts.map { .bytes($0) })
                                republished += 1
                            }
                        }
                    }
                    await redis.shutdown()
                    #expect(republished == 3)

                    let slept = try await harness.endedRun(of: ids[1])
                    #expect(slept["status"] == "Completed")
                    try await Task.sleep(for: .seconds(1))
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
