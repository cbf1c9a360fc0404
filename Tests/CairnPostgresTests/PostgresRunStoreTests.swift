import CairnCore
import CairnEngine
import CairnPostgres
import CairnTesting
import Foundation
import Logging
import Testing

/// The run store's guarantees on the real Postgres: one run per idempotency key, one writer
/// per run (fencing), each timer and each pause consumed once, cancellation revoking leases.
@Suite struct PostgresRunStoreTests {
    static let logger = Logger(label: "cairn.test.runs")
    static let t0 = Date(timeIntervalSince1970: 1_800_000_000)

    struct Fixture {
        let store: PostgresRunStore
        let functionID: UUID
        let eventID: ULID
    }

    func withFixture(_ body: @Sendable (Fixture) async throws -> Void) async throws {
        try await withTestDatabase { db in
            let registry = PostgresAppRegistry(client: db.client, logger: Self.logger)
            _ = try await registry.sync(try AppRegistryContract.registration(functions: ["a"]), at: Self.t0)
            let function = try #require(try await registry.liveFunctions().first)
            let eventID = ULID(milliseconds: 1_800_000_000_000, entropy: [UInt8](repeating: 1, count: 10))
            let log = PostgresEventLog(client: db.client, logger: Self.logger)
            _ = try await log.append(
                [AcceptedEvent(id: eventID, name: "shop/a", dedupeKey: nil, ts: 1_800_000_000_000, payload: ["name": "shop/a", "data": ["n": 1]], receivedAt: 1_800_000_000_000)],
                dedupeUntil: Self.t0, now: Self.t0)
            try await body(Fixture(store: PostgresRunStore(client: db.client, logger: Self.logger), functionID: function.id, eventID: eventID))
        }
    }

    func newRun(_ fixture: Fixture, key: String = "event:1", entropy: UInt8 = 7) -> NewRun {
        NewRun(
            id: ULID(milliseconds: 1_800_000_000_001, entropy: [UInt8](repeating: entropy, count: 10)), functionID: fixture.functionID,
            functionVersion: 1, eventIDs: [fixture.eventID], idempotencyKey: key, idempotentUntil: Self.t0.addingTimeInterval(86_400))
    }

    @Test func oneRunPerIdempotencyKeyWithItsStartWorkInTheOutbox() async throws {
        try await withFixture { fixture in
            let first = newRun(fixture)
            #expect(try await fixture.store.createRuns([first], now: Self.t0) == [first.id])
            #expect(try await fixture.store.createRuns([newRun(fixture, entropy: 8)], now: Self.t0).isEmpty)
            let pending = try await fixture.store.pendingWork(createdBefore: Date.distantFuture, limit: 10)
            #expect(pending == [WorkItem(runID: first.id, reason: .start, call: .discovery)])
            try await fixture.store.markWorkPublished(pending)
            #expect(try await fixture.store.pendingWork(createdBefore: Date.distantFuture, limit: 10).isEmpty)
            // After the window the key is free again.
            let later = newRun(fixture, entropy: 9)
            #expect(try await fixture.store.createRuns([later], now: Self.t0.addingTimeInterval(86_401)) == [later.id])
        }
    }

    @Test func aStaleLeaseChangesNothing() async throws {
        try await withFixture { fixture in
            let run = newRun(fixture)
            _ = try await fixture.store.createRuns([run], now: Self.t0)
            guard case .granted(let first) = try await fixture.store.lease(run.id, owner: "one", until: Self.t0.addingTimeInterval(60), now: Self.t0) else {
                Issue.record("the first lease should be granted")
                return
            }
            #expect(try await fixture.store.lease(run.id, owner: "two", until: Self.t0.addingTimeInterval(60), now: Self.t0.addingTimeInterval(1)) == .busy)
            // The first owner stalls past its lease; the second takes over.
            guard case .granted(let second) = try await fixture.store.lease(run.id, owner: "two", until: Self.t0.addingTimeInterval(200), now: Self.t0.addingTimeInterval(61)) else {
                Issue.record("an expired lease should be taken over")
                return
            }
            #expect(second.token > first.token)
            #expect(try await !fixture.store.recordStep(first, stepID: "s", position: 0, name: "s", op: "StepRun", result: #"{"data":1}"#, attempts: 1, now: Self.t0))
            #expect(try await fixture.store.recordStep(second, stepID: "s", position: 0, name: "s", op: "StepRun", result: #"{"data":2}"#, attempts: 1, now: Self.t0))
            // First write wins: a repeat keeps the first result.
            #expect(try await fixture.store.recordStep(second, stepID: "s", position: 0, name: "s", op: "StepRun", result: #"{"data":3}"#, attempts: 1, now: Self.t0))
            #expect(try await fixture.store.snapshot(run.id).steps["s"] == ["data": 2])
            #expect(try await !fixture.store.finish(first, .completed(output: "stale"), now: Self.t0))
            #expect(try await fixture.store.finish(second, .completed(output: "done"), now: Self.t0))
            #expect(try await fixture.store.lease(run.id, owner: "three", until: Self.t0.addingTimeInterval(400), now: Self.t0.addingTimeInterval(300)) == .ended)
            #expect(try await fixture.store.run(run.id)?.output == "done")
        }
    }

    @Test func eachTimerFiresOnceAcrossConcurrentSchedulers() async throws {
        try await withFixture { fixture in
            let run = newRun(fixture)
            _ = try await fixture.store.createRuns([run], now: Self.t0)
            guard case .granted(let lease) = try await fixture.store.lease(run.id, owner: "one", until: Self.t0.addingTimeInterval(60), now: Self.t0) else { return }
            let retries = (0..<50).map { (WorkItem(runID: run.id, reason: .retry, call: SDKCall(stepID: "s\($0)", attempt: 1)), Self.t0.addingTimeInterval(5)) }
            #expect(try await fixture.store.park(lease, retries: retries, pendingSteps: [], now: Self.t0))
            #expect(try await fixture.store.fireDueTimers(now: Self.t0.addingTimeInterval(4), limit: 100).isEmpty)
            let fired = try await withThrowingTaskGroup(of: [WorkItem].self) { group in
                for _ in 0..<4 { group.addTask { try await fixture.store.fireDueTimers(now: Self.t0.addingTimeInterval(6), limit: 20) } }
                var all: [WorkItem] = []
                for try await items in group { all += items }
                return all
            }
            #expect(fired.count == 50)
            #expect(Set(fired).count == 50)
            #expect(try await fixture.store.fireDueTimers(now: Self.t0.addingTimeInterval(7), limit: 100).isEmpty)
        }
    }

    @Test func aPauseIsConsumedOnceAndCancellingRevokesTheLease() async throws {
        try await withFixture { fixture in
            let run = newRun(fixture)
            _ = try await fixture.store.createRuns([run], now: Self.t0)
            guard case .granted(let lease) = try await fixture.store.lease(run.id, owner: "one", until: Self.t0.addingTimeInterval(60), now: Self.t0) else { return }
            let pause = Pause(
                runID: run.id, stepID: "w", kind: .wait, eventName: "shop/approved", expression: "async.data.ok",
                triggerEvent: ["name": "shop/a"], eventsAfter: fixture.eventID, expiresAt: Self.t0.addingTimeInterval(3_600))
            let timeout = Invocation.timeoutItem(run.id, "w")
            #expect(try await fixture.store.park(lease, pause: pause, timeout: timeout, now: Self.t0))
            let open = try await fixture.store.openPauses(eventName: "shop/approved", now: Self.t0)
            #expect(open == [pause])
            let resume = WorkItem(runID: run.id, reason: .resume, call: SDKCall(stepID: "w", attempt: 0))
            let results = try await withThrowingTaskGroup(of: Bool.self) { group in
                for n in 0..<3 {
                    group.addTask {
                        try await fixture.store.resume(pause, eventID: fixture.eventID, result: ["n": .number(JSONNumber(n))], resume: resume, now: Self.t0)
                    }
                }
                var all: [Bool] = []
                for try await result in group { all.append(result) }
                return all
            }
            #expect(results.filter { $0 }.count == 1)
            #expect(try await fixture.store.expirePause(runID: run.id, stepID: "w", now: Self.t0) == nil)
            // The timeout timer was disarmed by the match.
            #expect(try await fixture.store.fireDueTimers(now: Self.t0.addingTimeInterval(7_200), limit: 10).isEmpty)

            guard case .granted(let again) = try await fixture.store.lease(run.id, owner: "two", until: Self.t0.addingTimeInterval(60), now: Self.t0) else { return }
            let cancelled = try await fixture.store.cancel(run.id, now: Self.t0)
            #expect(cancelled?.functionSlug == "shop-a")
            #expect(cancelled?.events.first?["data"] == ["n": 1])
            #expect(try await !fixture.store.recordStep(again, stepID: "x", position: 1, name: "x", op: "StepRun", result: "null", attempts: 1, now: Self.t0))
            #expect(try await fixture.store.cancel(run.id, now: Self.t0) == nil)
            #expect(try await fixture.store.run(run.id)?.status == "Cancelled")
        }
    }
}
