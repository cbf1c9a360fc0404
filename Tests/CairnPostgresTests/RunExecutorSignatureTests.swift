import CairnCore
import CairnEngine
import CairnPostgres
import CairnTesting
import Foundation
import Logging
import Synchronization
import Testing

/// Outside dev mode the executor trusts an app's reply only when it carries the signature the
/// SDK makes with Cairn's signing key: a reply that is unsigned, signed with another key or too
/// old is a failed attempt (retried, never recorded as the run's result).
@Suite struct RunExecutorSignatureTests {
    static let logger = Logger(label: "cairn.test.executor")
    static let key = try! SigningKey("signkey-prod-" + String(repeating: "ab12", count: 16))
    static let otherKey = try! SigningKey("signkey-prod-" + String(repeating: "cd34", count: 16))

    /// How the scripted app signs its reply.
    enum Signing: Sendable {
        case none
        case with(SigningKey, ageSeconds: Int64)
    }

    /// An app whose every call returns the function's result `"done"`, signed as asked.
    final class App: SDKTransport {
        let signing: Signing
        let clock: ManualClock
        let calls = Mutex(0)

        init(signing: Signing, clock: ManualClock) {
            self.signing = signing
            self.clock = clock
        }

        func send(_ request: SDKRequest) async throws -> SDKReply {
            calls.withLock { $0 += 1 }
            let body = Array(#""done""#.utf8)
            var headers = ["content-type": "application/json", "x-inngest-sdk": "inngest-py:v0.5.19", "x-inngest-req-version": "1"]
            if case .with(let key, let age) = signing {
                let now = Int64(clock.now.timeIntervalSince1970)
                headers["x-inngest-signature"] = key.signatureHeader(body: body, unixSeconds: now - age)
            }
            return SDKReply(status: 200, headers: headers, body: body)
        }
    }

    struct NoStream: StreamSource {
        func read(maximum: Int) async throws -> [StreamDelivery] { [] }
        func acknowledge(_ entryIDs: [String]) async throws {}
    }

    struct NoIndex: TimerIndex {
        func schedule(_ timers: [(id: String, due: Date)]) async throws {}
        func nextDue() async throws -> Date? { nil }
        func clearDue(upTo now: Date) async throws {}
    }

    struct DroppedEvents: EventSink {
        func emit(_ events: [Event]) async throws {}
        func announce(_ events: [AcceptedEvent]) async {}
    }

    struct NoWork: WorkQueue {
        func publish(_ items: [WorkItem]) async throws {}
    }

    /// Drives one new run against an app that signs as `signing`; returns the run afterwards
    /// and how often the app was called.
    func drive(signing: Signing) async throws -> (run: RunRecord, calls: Int) {
        try await withTestDatabase { db in
            let clock = ManualClock(start: Date(timeIntervalSince1970: 1_800_000_000))
            let registry = PostgresAppRegistry(database: db, logger: Self.logger)
            _ = try await registry.sync(try AppRegistryContract.registration(functions: ["a"]), at: clock.now)
            let function = try #require(try await registry.liveFunctions().first)
            let eventID = ULID(milliseconds: 1_800_000_000_000, entropy: [UInt8](repeating: 1, count: 10))
            _ = try await PostgresEventLog(database: db, logger: Self.logger).append(
                [AcceptedEvent(id: eventID, name: "shop/a", dedupeKey: nil, ts: 1_800_000_000_000, payload: ["name": "shop/a", "data": [:]], receivedAt: 1_800_000_000_000)],
                dedupeUntil: clock.now, now: clock.now)
            let store = PostgresRunStore(database: db, logger: Self.logger)
            let runID = ULID(milliseconds: 1_800_000_000_001, entropy: [UInt8](repeating: 7, count: 10))
            _ = try await store.createRuns(
                [NewRun(id: runID, functionID: function.id, functionVersion: 1, eventIDs: [eventID], idempotencyKey: "event:1", idempotentUntil: clock.now.addingTimeInterval(86_400))],
                now: clock.now)

            let app = App(signing: signing, clock: clock)
            let executor = RunExecutor(
                store: store, events: DroppedEvents(), eventLog: PostgresEventLog(database: db, logger: Self.logger), work: NoWork(),
                sdk: app, source: NoStream(), timers: NoIndex(), clock: clock, keys: SigningKeys(primary: Self.key), logger: Self.logger)
            #expect(try await executor.drive(WorkItem(runID: runID, reason: .start, call: .discovery)))
            let run = try #require(try await store.run(runID))
            return (run, app.calls.withLock { $0 })
        }
    }

    @Test func aReplySignedWithCairnsKeyCompletesTheRun() async throws {
        let (run, calls) = try await drive(signing: .with(Self.key, ageSeconds: 0))
        #expect(run.status == "Completed")
        #expect(run.output == "done")
        #expect(calls == 1)
    }

    @Test(arguments: [
        ("unsigned", Signing.none),
        ("signed with another key", Signing.with(otherKey, ageSeconds: 0)),
        ("signed ten minutes ago", Signing.with(key, ageSeconds: 600)),
    ])
    func anUntrustedReplyIsAFailedAttempt(_ label: String, _ signing: Signing) async throws {
        let (run, calls) = try await drive(signing: signing)
        // One call, refused: the run waits for its retry instead of taking the reply's output.
        #expect(calls == 1, "\(label)")
        #expect(run.status == "Running" || run.status == "Queued", "\(label): \(run.status)")
        #expect(run.output == nil, "\(label)")
    }
}
