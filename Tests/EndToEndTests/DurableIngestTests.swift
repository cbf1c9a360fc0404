import CairnCore
import CairnEngine
import CairnPostgres
import CairnRedis
import CairnTesting
import Foundation
import Logging
import Metrics
import Prometheus
import Testing

/// The ingest path on the real Postgres and Redis: what is acknowledged survives a lost
/// publish and a lost Redis.
///
/// Uses Redis database 13 of the test server, which no other test touches, because it flushes it.
@Suite(.serialized) struct DurableIngestTests {
    static let logger = Logger(label: "cairn.test.ingest")

    func withPipeline(
        faults: IngestFaults, _ body: @Sendable (EventIngestor, EventRelay, RedisClient, String, ManualClock) async throws -> Void
    ) async throws {
        var url = try RedisURL(try TestEnvironment.redisURL())
        url.database = 13
        let redis = RedisClient(configuration: RedisConfiguration(url: url, poolSize: 2), logger: Self.logger)
        try await redis.connect()
        let streamKey = TestEnvironment.uniqueName("cairn-test:events:")
        do {
            try await withTestDatabase { db in
                let clock = ManualClock(start: Date())
                let log = PostgresEventLog(database: db, logger: Self.logger)
                let stream = RedisEventStream(client: redis, key: streamKey)
                let metrics = IngestMetrics(factory: PrometheusMetricsFactory(registry: PrometheusCollectorRegistry()))
                let ingestor = EventIngestor(log: log, stream: stream, clock: clock, metrics: metrics, faults: faults, logger: Self.logger)
                let relay = EventRelay(log: log, stream: stream, clock: clock, logger: Self.logger)
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask { try await ingestor.run() }
                    defer { group.cancelAll() }
                    try await body(ingestor, relay, redis, streamKey, clock)
                }
            }
            await redis.shutdown()
        } catch {
            await redis.shutdown()
            throw error
        }
    }

    /// Every bulk string in a reply, depth first, as text.
    static func strings(_ value: RESPValue) -> [String] {
        switch value {
        case .bulkString(let bytes): [String(decoding: bytes, as: UTF8.self)]
        case .array(let items): items.flatMap(strings)
        default: []
        }
    }

    struct TimedOut: Error, CustomStringConvertible {
        var what: String
        var description: String { "timed out waiting for \(what)" }
    }

    /// Checks `condition` until it holds, failing after `timeout`.
    static func eventually(_ what: String, timeout: Duration = .seconds(10), _ condition: () async throws -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while try await !condition() {
            guard ContinuousClock.now < deadline else { throw TimedOut(what: what) }
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    @Test func anEventCommittedButNeverPublishedReachesTheStream() async throws {
        try await withPipeline(faults: IngestFaults(skipPublishAfterCommit: true)) { ingestor, relay, redis, key, clock in
            let result = try await ingestor.ingest([Event(name: "app/paid", data: ["amount": 12])], seed: nil)
            // Acknowledged, but the process "died" before XADD.
            #expect(try await redis.xlen(key) == 0)

            clock.advance(by: 6)
            #expect(try await relay.publishOverdue() == 1)
            let text = Self.strings(try await redis.send("XRANGE", .string(key), "-", "+")).joined(separator: " ")
            #expect(try await redis.xlen(key) == 1)
            #expect(text.contains(result.ids[0].description))
            #expect(text.contains(#"{"name":"app/paid","data":{"amount":12}"#))
            // Marked: a second pass publishes nothing more.
            #expect(try await relay.publishOverdue() == 0)
        }
    }

    @Test func dedupeSurvivesAFlushedRedis() async throws {
        try await withPipeline(faults: .none) { ingestor, _, redis, key, _ in
            let first = try await ingestor.ingest([Event(name: "app/signup", id: "user-42")], seed: nil)
            #expect(first.duplicates.isEmpty)
            // Publishing follows the acknowledgement; wait for it.
            try await Self.eventually("the event on the stream") { try await redis.xlen(key) == 1 }

            _ = try await redis.send("FLUSHDB")
            #expect(try await redis.xlen(key) == 0)

            let again = try await ingestor.ingest([Event(name: "app/signup", id: "user-42")], seed: nil)
            #expect(again.duplicates == [0])
            #expect(again.ids == first.ids)
            #expect(try await redis.xlen(key) == 0)
        }
    }

    /// An SDK resends a request with the same `x-inngest-event-id-seed`, alone and in a group
    /// commit with other requests: the resend is a duplicate of itself, and the other requests
    /// are stored as usual.
    @Test func aRequestResentWithTheSameSeedIsADuplicateAndFailsNothing() async throws {
        try await withPipeline(faults: .none) { ingestor, _, redis, key, _ in
            let seed = try #require(ULIDSeed(header: "\(Date().unixMilliseconds),q83vEjRWeJq83Q=="))
            let events = [Event(name: "app/resent"), Event(name: "app/resent", id: "keyed-1")]
            let first = try await ingestor.ingest(events, seed: seed)
            #expect(first.duplicates.isEmpty)
            let again = try await ingestor.ingest(events, seed: seed)
            #expect(again.ids == first.ids)
            #expect(again.duplicates == [0, 1])
            // Several at once, so that they share a commit.
            let results = try await withThrowingTaskGroup(of: IngestResult.self) { group in
                for n in 0..<8 {
                    group.addTask { try await ingestor.ingest(n % 2 == 0 ? events : [Event(name: "app/other-\(n)")], seed: n % 2 == 0 ? seed : nil) }
                }
                var all: [IngestResult] = []
                for try await result in group { all.append(result) }
                return all
            }
            #expect(results.count == 8)
            #expect(results.filter { $0.ids == first.ids }.allSatisfy { $0.duplicates == [0, 1] })
            #expect(results.filter { $0.ids != first.ids }.allSatisfy { $0.duplicates.isEmpty && $0.ids.count == 1 })
            // Published once each: the two first events and the four others.
            try await Self.eventually("six events on the stream") { try await redis.xlen(key) == 6 }
        }
    }
}
