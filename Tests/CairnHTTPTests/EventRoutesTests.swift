import CairnCore
import CairnEngine
import CairnHTTP
import CairnTesting
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import Metrics
import NIOCore
import Prometheus
import Testing

/// The event API over in-memory ports: every rule, limit and key decision, and dedupe with a
/// hand-driven clock.
@Suite struct EventRoutesTests {
    struct Fixture {
        let log = InMemoryEventLog()
        let stream = RecordingEventStream()
        let clock = ManualClock()
        let registry = PrometheusCollectorRegistry()
        let ingestor: EventIngestor
        let routes: EventRoutes

        init(
            keys: [String] = [], devMode: Bool = true, maximumBodyBytes: Int = 512 * 1024, maximumEventBytes: Int = 512 * 1024,
            faults: IngestFaults = .none, settings: IngestSettings = IngestSettings()
        ) {
            let metrics = IngestMetrics(factory: PrometheusMetricsFactory(registry: registry))
            ingestor = EventIngestor(
                log: log, stream: stream, clock: clock, settings: settings, metrics: metrics, faults: faults, logger: Logger(label: "test"))
            routes = EventRoutes(
                ingestor: ingestor, keys: EventKeyPolicy(keys: keys, isDevMode: devMode),
                maximumBodyBytes: maximumBodyBytes, maximumEventBytes: maximumEventBytes, metrics: metrics)
        }

        /// Runs `body` with the ingestor's workers running and a test client on the routes.
        func test(_ body: @escaping @Sendable (any TestClientProtocol) async throws -> Void) async throws {
            let router = Router()
            routes.register(on: router)
            let app = Application(router: router)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await self.ingestor.run() }
                try await app.test(.router) { client in try await body(client) }
                group.cancelAll()
            }
        }
    }

    static func post(
        _ client: any TestClientProtocol, key: String = "k", _ body: String, headers: HTTPFields = [:]
    ) async throws -> (HTTPResponse.Status, String) {
        try await client.execute(uri: "/e/\(key)", method: .post, headers: headers, body: ByteBuffer(string: body)) { response in
            (response.status, String(buffer: response.body))
        }
    }

    @Test func acceptsAndAnswersWithIDs() async throws {
        let fixture = Fixture()
        try await fixture.test { client in
            let (status, body) = try await Self.post(client, #"[{"name":"app/a","data":{"n":9007199254740993}},{"name":"app/b"}]"#)
            #expect(status == .ok)
            let stored = fixture.log.storedEvents
            #expect(stored.map(\.name) == ["app/a", "app/b"])
            #expect(body == #"{"ids":["\#(stored[0].id)","\#(stored[1].id)"],"status":200}"#)
            #expect(stored[0].payload["data"]?["n"]?.jsonString == "9007199254740993")
            #expect(stored[0].ts == Int64(fixture.clock.now.timeIntervalSince1970 * 1000))
        }
    }

    @Test(arguments: [
        (#"{"data":{}}"#, "event.name: required, must be a non-empty string"),
        (#"[{"name":""}]"#, "events[0].name: must not be empty"),
        (#"[{"name":7}]"#, "events[0].name: must be a string, got 7"),
        (#"[{"name":"a"},{"name":"inngest/x"}]"#, #"events[1].name: must not start with \"inngest/\" (reserved for system events)"#),
        (#"[{"name":"a","data":"x"}]"#, #"events[0].data: must be an object, got \"x\""#),
        (#"[{"name":"a","id":5}]"#, "events[0].id: must be a string, got 5"),
        (#"[{"name":"a","ts":1.5}]"#, "events[0].ts: must be integer milliseconds, got 1.5"),
        (#"[{"name":"a","ts":5}]"#, "events[0].ts: must be integer milliseconds after 1980-01-01 and before 2100-01-01"),
        (#"[{"name":"a","v":1}]"#, "events[0].v: must be a string, got 1"),
        (#"[{"name":"a","user":[]}]"#, "events[0].user: must be an object, got []"),
        ("not json", "body: must be JSON"),
        ("true", "body: must be an event object or an array of events, got true"),
    ])
    func rejectsTheWholeRequestNamingFieldAndRule(body: String, message: String) async throws {
        let fixture = Fixture()
        try await fixture.test { client in
            let (status, text) = try await Self.post(client, body)
            #expect(status == .badRequest)
            #expect(text.hasPrefix(#"{"ids":[],"status":400,"error":"\#(message)"#), "\(text)")
            #expect(fixture.log.storedEvents.isEmpty)
        }
    }

    @Test func aValidPrefixIsNotStoredWhenALaterElementIsInvalid() async throws {
        let fixture = Fixture()
        try await fixture.test { client in
            let (status, _) = try await Self.post(client, #"[{"name":"ok"},{"name":"ok"},{"name":""}]"#)
            #expect(status == .badRequest)
            #expect(fixture.log.storedEvents.isEmpty)
            #expect(fixture.stream.events.isEmpty)
        }
    }

    @Test func bodyLimitAnswers413WithTheLimit() async throws {
        let fixture = Fixture(maximumBodyBytes: 2_048)
        try await fixture.test { client in
            let big = #"{"name":"a","data":{"s":""# + String(repeating: "x", count: 3_000) + #""}}"#
            let (status, text) = try await Self.post(client, big)
            #expect(status == .contentTooLarge)
            #expect(text == #"{"ids":[],"status":413,"error":"body: must be at most 2048 bytes"}"#)
            let (okStatus, _) = try await Self.post(client, #"{"name":"a"}"#)
            #expect(okStatus == .ok)
            #expect(fixture.log.storedEvents.count == 1)
        }
    }

    /// Each event is held to the per-event limit; a request of many events may be larger, as
    /// SDKs send when they batch (eight events of 1 MiB, for one).
    @Test func eachEventIsHeldToThePerEventLimit() async throws {
        let fixture = Fixture(maximumBodyBytes: 64 * 1024, maximumEventBytes: 4 * 1024)
        try await fixture.test { client in
            let event = { (size: Int) in #"{"name":"a","data":{"s":""# + String(repeating: "x", count: size) + #""}}"# }
            let many = "[" + Array(repeating: event(3_500), count: 8).joined(separator: ",") + "]"
            let (okStatus, _) = try await Self.post(client, many)
            #expect(okStatus == .ok)
            #expect(fixture.log.storedEvents.count == 8)
            let (status, text) = try await Self.post(client, "[" + event(10) + "," + event(5_000) + "]")
            #expect(status == .contentTooLarge)
            #expect(text == #"{"ids":[],"status":413,"error":"events[1]: must be at most 4096 bytes, got 5028"}"#)
            #expect(fixture.log.storedEvents.count == 8)
        }
    }

    @Test func moreThanFiveThousandEventsIsRejected() async throws {
        let fixture = Fixture()
        try await fixture.test { client in
            let body = "[" + Array(repeating: #"{"name":"a"}"#, count: 5_001).joined(separator: ",") + "]"
            let (status, text) = try await Self.post(client, body)
            #expect(status == .badRequest)
            #expect(text.contains("events: at most 5000 events per request, got 5001"))
        }
    }

    @Test func eventKeys() async throws {
        let keyed = Fixture(keys: ["good", "other"], devMode: true)
        try await keyed.test { client in
            let (bad, badText) = try await Self.post(client, key: "wrong", #"{"name":"a"}"#)
            #expect(bad == .unauthorized)
            #expect(badText == #"{"status":401,"message":"","error":"Event key not found"}"#)
            let (good, _) = try await Self.post(client, key: "other", #"{"name":"a"}"#)
            #expect(good == .ok)
        }
        let dev = Fixture(keys: [], devMode: true)
        try await dev.test { client in
            let (status, _) = try await Self.post(client, key: "NO_EVENT_KEY_SET", #"{"name":"a"}"#)
            #expect(status == .ok)
        }
        let unconfigured = Fixture(keys: [], devMode: false)
        try await unconfigured.test { client in
            let (status, text) = try await Self.post(client, key: "anything", #"{"name":"a"}"#)
            #expect(status == .serviceUnavailable)
            #expect(text.contains("no event keys are configured: set INNGEST_EVENT_KEY"))
            #expect(unconfigured.log.storedEvents.isEmpty)
        }
    }

    @Test func dedupeInsideAndAfterTheWindow() async throws {
        let fixture = Fixture()
        try await fixture.test { client in
            let (_, first) = try await Self.post(client, #"{"name":"a","id":"order-1"}"#)
            let original = fixture.log.storedEvents[0].id
            #expect(first == #"{"ids":["\#(original)"],"status":200}"#)

            fixture.clock.advance(by: 23 * 3600)
            let (status, repeatBody) = try await Self.post(client, #"[{"name":"b"},{"name":"a","id":"order-1"}]"#)
            #expect(status == .ok)
            let fresh = fixture.log.storedEvents.first { $0.name == "b" }!.id
            #expect(repeatBody == #"{"ids":["\#(fresh)","\#(original)"],"status":200,"duplicates":[1]}"#)
            #expect(fixture.log.storedEvents.count == 2)

            fixture.clock.advance(by: 3600)
            let (_, after) = try await Self.post(client, #"{"name":"a","id":"order-1"}"#)
            #expect(fixture.log.storedEvents.count == 3)
            #expect(!after.contains(original.description))
            #expect(!after.contains("duplicates"))
        }
    }

    @Test func aDuplicateInsideOneBatch() async throws {
        let fixture = Fixture()
        try await fixture.test { client in
            let (status, text) = try await Self.post(client, #"[{"name":"a","id":"x"},{"name":"b","id":"x"},{"name":"c"}]"#)
            #expect(status == .ok)
            let stored = fixture.log.storedEvents
            #expect(stored.map(\.name) == ["a", "c"])
            #expect(text == #"{"ids":["\#(stored[0].id)","\#(stored[0].id)","\#(stored[1].id)"],"status":200,"duplicates":[1]}"#)
            #expect(fixture.stream.events.map(\.name) == ["a", "c"])
        }
    }

    @Test func seedHeaderMakesIDsDeterministic() async throws {
        let fixture = Fixture()
        try await fixture.test { client in
            let headers: HTTPFields = [HTTPField.Name("x-inngest-event-id-seed")!: "1700000000000,AAAAAAAAAAAAAA=="]
            let (_, text) = try await Self.post(client, #"[{"name":"a"},{"name":"b"}]"#, headers: headers)
            #expect(text == #"{"ids":["01HF7YAT000000000000000001","01HF7YAT000000000000000002"],"status":200}"#)
            // With no `id`, the event's id is its internal ULID.
            #expect(fixture.log.storedEvents[0].payload["id"] == "01HF7YAT000000000000000001")
        }
    }

    @Test func aFailedCommitAnswers503AndStoresNothing() async throws {
        struct Down: Error {}
        let fixture = Fixture()
        fixture.log.failNextAppend(with: Down())
        try await fixture.test { client in
            let (status, text) = try await Self.post(client, #"{"name":"a"}"#)
            #expect(status == .serviceUnavailable)
            #expect(text.contains("events could not be stored; retry"))
            #expect(fixture.log.storedEvents.isEmpty)
            let (retry, _) = try await Self.post(client, #"{"name":"a"}"#)
            #expect(retry == .ok)
        }
    }

    /// Commits have fallen behind (here: no worker runs yet) and the queue holds its limit:
    /// a request is refused at once with 503 and `Retry-After`, and nothing of it is kept.
    @Test func aFullIngestQueueAnswers503WithRetryAfter() async throws {
        var settings = IngestSettings()
        settings.maximumPendingEvents = 3
        let fixture = Fixture(settings: settings)
        let router = Router()
        fixture.routes.register(on: router)
        try await Application(router: router).test(.router) { client in
            let waiting = Task { try await fixture.ingestor.ingest([Event(name: "a"), Event(name: "b")], seed: nil) }
            while fixture.ingestor.pendingEvents < 2 { await Task.yield() }
            let (status, headers, text) = try await client.execute(
                uri: "/e/k", method: .post, body: ByteBuffer(string: #"[{"name":"c"},{"name":"d"}]"#)
            ) { response in (response.status, response.headers, String(buffer: response.body)) }
            #expect(status == .serviceUnavailable)
            #expect(headers[.retryAfter] == "1")
            #expect(text.contains("too many events are waiting to be stored (at most 3); retry shortly"))
            #expect(fixture.ingestor.pendingEvents == 2)
            // Once commits catch up, both the waiting request and a new one go through.
            let workers = Task { try await fixture.ingestor.run() }
            #expect(try await waiting.value.ids.count == 2)
            let (retry, _) = try await Self.post(client, #"[{"name":"c"},{"name":"d"}]"#)
            #expect(retry == .ok)
            #expect(fixture.log.storedEvents.map(\.name) == ["a", "b", "c", "d"])
            workers.cancel()
            _ = await workers.result
        }
    }

    /// Two requests share a commit and the database refuses one of them: only its sender gets
    /// the error; the other request is stored.
    @Test func aRequestTheDatabaseRefusesFailsAloneNotItsWholeBatch() async throws {
        let fixture = Fixture()
        fixture.log.refuseEvents(named: "poison")
        let poisoned = Task { try await fixture.ingestor.ingest([Event(name: "poison")], seed: nil) }
        let healthy = Task { try await fixture.ingestor.ingest([Event(name: "fine"), Event(name: "also-fine")], seed: nil) }
        // Both wait in the queue before any worker runs, so they are committed as one batch.
        while fixture.ingestor.pendingEvents < 3 { await Task.yield() }
        let workers = Task { try await fixture.ingestor.run() }
        await #expect(throws: (any Error).self) { try await poisoned.value }
        #expect(try await healthy.value.ids.count == 2)
        #expect(fixture.log.storedEvents.map(\.name) == ["fine", "also-fine"])
        workers.cancel()
        _ = await workers.result
    }

    @Test func metricsCountWhatHappened() async throws {
        let fixture = Fixture(keys: ["k"], devMode: false)
        try await fixture.test { client in
            _ = try await Self.post(client, #"[{"name":"a","id":"1"},{"name":"a","id":"1"}]"#)
            _ = try await Self.post(client, #"[{"name":""}]"#)
            _ = try await Self.post(client, key: "nope", #"{"name":"a"}"#)
        }
        let text = fixture.registry.emitToString()
        #expect(text.contains("cairn_events_accepted_total 1\n"))
        #expect(text.contains("cairn_events_duplicates_total 1\n"))
        #expect(text.contains(#"cairn_events_rejected_total{reason="invalid"} 1"#))
        #expect(text.contains(#"cairn_events_rejected_total{reason="unauthorized"} 1"#))
        #expect(text.contains("cairn_ingest_batch_events_count 1\n"))
        #expect(text.contains("cairn_ingest_commit_seconds_count 1\n"))
    }
}

/// Group commit and the relay, on the in-memory ports.
@Suite struct EventIngestorTests {
    @Test func concurrentRequestsShareCommitsAndEachGetsItsOwnIDs() async throws {
        let fixture = EventRoutesTests.Fixture()
        try await fixture.test { _ in
            let results = try await withThrowingTaskGroup(of: IngestResult.self) { group in
                for index in 0..<200 {
                    group.addTask {
                        try await fixture.ingestor.ingest([Event(name: "n", id: "key-\(index % 150)")], seed: nil)
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(results.count == 200)
            #expect(results.filter { $0.duplicates == [0] }.count == 50)
            #expect(fixture.log.storedEvents.count == 150)
            #expect(Set(results.flatMap(\.ids)).count == 150)
        }
        // 200 requests from 200 tasks on 4 workers: far fewer commits than requests.
        let text = fixture.registry.emitToString()
        let commits = text.split(separator: "\n").first { $0.hasPrefix("cairn_ingest_batch_events_count ") }
        let count = Int(commits!.split(separator: " ")[1])!
        #expect(count < 200)
    }

    @Test func theRelayPublishesWhatTheIngestorNeverDid() async throws {
        let fixture = EventRoutesTests.Fixture(faults: IngestFaults(skipPublishAfterCommit: true))
        try await fixture.test { _ in
            _ = try await fixture.ingestor.ingest([Event(name: "lost"), Event(name: "lost-too")], seed: nil)
        }
        #expect(fixture.stream.events.isEmpty)
        let relay = EventRelay(log: fixture.log, stream: fixture.stream, clock: fixture.clock, logger: Logger(label: "test"))
        #expect(try await relay.publishOverdue() == 0)  // not overdue yet: within the grace period
        fixture.clock.advance(by: 6)
        #expect(try await relay.publishOverdue() == 2)
        #expect(fixture.stream.events.map(\.name) == ["lost", "lost-too"])
        #expect(try await relay.publishOverdue() == 0)
    }
}
