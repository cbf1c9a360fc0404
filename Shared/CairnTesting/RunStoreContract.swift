public import CairnCore
public import CairnEngine
public import Foundation
import Testing

/// A run store with one synced function (`shop-a`, version 1, 2 retries) and one stored event
/// to start runs of it, for `RunStoreContract`.
public struct RunStoreFixture: Sendable {
    public let store: any RunStore & RunQueries
    public let registry: any AppRegistry
    public let eventLog: any EventLog
    public let functionID: UUID
    public let eventID: ULID
    /// The time the fixture was made at, for `now` arguments; leases use the store's clock.
    public let t0: Date

    public init(store: any RunStore & RunQueries, registry: any AppRegistry, eventLog: any EventLog, functionID: UUID, eventID: ULID, t0: Date) {
        self.store = store
        self.registry = registry
        self.eventLog = eventLog
        self.functionID = functionID
        self.eventID = eventID
        self.t0 = t0
    }

    /// Syncs the function and stores the event, then wraps `store`.
    public static func make(
        store: any RunStore & RunQueries, registry: any AppRegistry, eventLog: any EventLog, t0: Date
    ) async throws -> RunStoreFixture {
        _ = try await registry.sync(try AppRegistryContract.registration(functions: ["a"]), at: t0)
        let function = try #require(try await registry.liveFunctions().first)
        let eventID = ULID(milliseconds: UInt64(t0.unixMilliseconds), entropy: [UInt8](repeating: 1, count: 10))
        _ = try await eventLog.append(
            [AcceptedEvent(id: eventID, name: "shop/a", dedupeKey: nil, ts: t0.unixMilliseconds, payload: ["name": "shop/a", "data": ["n": 1]], receivedAt: t0.unixMilliseconds)],
            dedupeUntil: t0, now: t0)
        return RunStoreFixture(store: store, registry: registry, eventLog: eventLog, functionID: function.id, eventID: eventID, t0: t0)
    }

    /// A new run of the function for the fixture's event (`entropy` makes its id).
    public func newRun(key: String = "event:1", entropy: UInt8 = 7, pauses: [Pause] = []) -> NewRun {
        var run = NewRun(
            id: ULID(milliseconds: UInt64(t0.unixMilliseconds) + 1, entropy: [UInt8](repeating: entropy, count: 10)), functionID: functionID,
            functionVersion: 1, eventIDs: [eventID], idempotencyKey: key, idempotentUntil: t0.addingTimeInterval(86_400))
        run.pauses = pauses
        return run
    }

    /// Creates a run and leases it for its start item; returns the lease.
    public func startedRun(entropy: UInt8 = 7, owner: String = "one", duration: Duration = .seconds(60)) async throws -> RunLease {
        let run = newRun(key: "event:\(entropy)", entropy: entropy)
        #expect(try await store.createRuns([run], now: t0) == [run.id])
        return try await lease(WorkItem(runID: run.id, reason: .start, call: .discovery), owner: owner, duration: duration)
    }

    /// Leases `item`, which must be granted.
    public func lease(_ item: WorkItem, owner: String, duration: Duration = .seconds(60)) async throws -> RunLease {
        guard case .granted(let lease) = try await store.lease(item, owner: owner, duration: duration) else {
            Issue.record("a lease for \(item) should be granted")
            throw ContractFailure()
        }
        return lease
    }

    /// A step to record at `position`.
    public func step(_ id: String, position: Int, result: String = #"{"data":1}"#) -> StepRecord {
        StepRecord(stepID: id, position: position, name: id, op: "StepRun", result: result, attempts: 1)
    }

    /// A system event to emit.
    public func event(_ name: String, entropy: UInt8) -> AcceptedEvent {
        AcceptedEvent(
            id: ULID(milliseconds: UInt64(t0.unixMilliseconds) + 5, entropy: [UInt8](repeating: entropy, count: 10)), name: name, dedupeKey: nil,
            ts: t0.unixMilliseconds, payload: ["name": .string(name), "data": [:]], receivedAt: t0.unixMilliseconds)
    }
}

/// A contract check failed in a way that makes the rest of it meaningless (already recorded).
public struct ContractFailure: Error {
    public init() {}
}

/// What every run store must do, checked against the in-memory store (CairnEngineTests) and
/// the Postgres one (CairnPostgresTests), in the manner of River's driver test suite: one body
/// of checks, every implementation held to it.
public enum RunStoreContract {
    /// Each check, by name; the test targets run every one against their store.
    public static let checks: [(name: String, run: @Sendable (RunStoreFixture) async throws -> Void)] = [
        ("one run per idempotency key, with its start item live", oneRunPerKey),
        ("leases: granted, busy, stale, ended", leaseOutcomes),
        ("a stale holder changes nothing after a takeover", staleHolderChangesNothing),
        ("a step is recorded once, first write wins", firstWriteWins),
        ("steps are recorded, runs end and waiting groups let go only on the log the writer counted on", stepsFollowTheLog),
        ("the write that ends a drive retires its item", endingADriveRetiresTheItem),
        ("two retries of the same call in one run are two timers", twoRetriesInOneRun),
        ("a timer id already taken fails the park and changes nothing", timerCollisionChangesNothing),
        ("each timer fires once across concurrent callers", timersFireOnce),
        ("a pause is consumed once, by an event or by its fenced timeout", pauseConsumedOnce),
        ("a resume retires its pause's timeout item when the timer has fired", resumeRetiresAFiredTimeout),
        ("finishing stores the system events with the end, and only then", finishStoresEventsAtomically),
        ("finishing retires timers, pauses and work items", finishRetiresEverything),
        ("cancelling ends the run, revokes the lease and stores its events", cancelRevokesAndEmits),
        ("stranded runs are recovered once, others never", strandedRunsRecovered),
        ("work is published, relayed and rebuilt from the outbox", outboxPublishing),
        ("delayed events are delivered once and routed again", delayedEvents),
        ("a run keeps the function version it started with", runKeepsItsVersion),
        ("pauses with a lower bound look back once", pausesLookBack),
        ("the transport record round-trips", transportRecord),
        ("a rerun starts with its memoized steps and its event kept as a record", rerunWithStepsAndRecords),
        ("a step keeps the queue and send times of its final attempt", stepTiming),
        ("failed attempts are kept by the park that retries them and the finish that ends the run, oldest first", failedAttemptsKept),
        ("a park or finish that is refused keeps no failed attempt", refusedWritesKeepNoFailedAttempt),
        ("runs are filtered by what their trigger event and their output contain", containment),
        ("the runs of several trigger events are read at once", runsByTriggerEvents),
    ] + FlowStoreContract.checks + [
        ("a full concurrency counter puts work in line, and a freed slot lets the first in line go", concurrencySlots),
        ("a run-level slot stays with its run between drives and goes when the run ends", runLevelSlots),
    ]

    /// `eventContains` and `outputContains` (jsonb `@>`), on a few events and outputs, one
    /// payload with a NUL character and one with a number beyond Postgres's `numeric` (which
    /// `jsonb` cannot hold: such payloads may be let through, and here they do contain what is
    /// asked for), and on more events than `PostgresRunStore` looks up before the runs.
    static func runsByTriggerEvents(_ f: RunStoreFixture) async throws {
        let ms = UInt64(f.t0.unixMilliseconds)
        let events = (0..<3).map { index in
            AcceptedEvent(
                id: ULID(milliseconds: ms + 5, entropy: [UInt8](repeating: UInt8(60 + index), count: 10)), name: "shop/a", dedupeKey: nil,
                ts: f.t0.unixMilliseconds, payload: ["name": "shop/a", "data": ["i": .string("\(index)")]], receivedAt: f.t0.unixMilliseconds)
        }
        _ = try await f.eventLog.append(events, dedupeUntil: f.t0, now: f.t0)
        // Two runs of the first event, one of the second, none of the third.
        var runs: [ULID] = []
        for (index, event) in [events[0], events[1], events[0]].enumerated() {
            var run = f.newRun(key: "trigger:\(index)", entropy: UInt8(50 + index))
            run.eventIDs = [event.id]
            #expect(try await f.store.createRuns([run], now: f.t0) == [run.id])
            runs.append(run.id)
        }
        #expect(try await f.store.runs(triggeredBy: [events[2].id, events[0].id]).map(\.id) == [runs[0], runs[2]])
        let all = try await f.store.runs(triggeredBy: events.map(\.id))
        #expect(all.map(\.id) == runs.sorted())
        #expect(all.map(\.eventID) == [events[0].id, events[1].id, events[0].id])
        #expect(try await f.store.runs(triggeredBy: []).isEmpty)
    }

    static func containment(_ f: RunStoreFixture) async throws {
        let payloads: [String] = [
            #"{"name":"shop/a","data":{"userId":"u-1","vip":true}}"#,
            #"{"name":"shop/a","data":{"userId":"u-2","vip":true}}"#,
            #"{"name":"shop/a","data":{"userId":"u-1","note":"a\u0000b"}}"#,
            #"{"name":"shop/a","data":{"userId":"u-1","big":1e200000}}"#,
            #"{"name":"shop/a","data":[{"userId":"u-1"}]}"#,
        ]
        let ms = UInt64(f.t0.unixMilliseconds)
        var events = try payloads.enumerated().map { index, text in
            AcceptedEvent(
                id: ULID(milliseconds: ms + 10, entropy: [UInt8](repeating: UInt8(80 + index), count: 10)), name: "shop/a", dedupeKey: nil,
                ts: f.t0.unixMilliseconds, payload: try JSONValue(parsing: text), receivedAt: f.t0.unixMilliseconds)
        }
        // 1,001 events that all match one filter, the last of which starts a run.
        events += (0..<1_001).map { index in
            AcceptedEvent(
                id: ULID(milliseconds: ms + 20, entropy: [UInt8](repeating: 0, count: 8) + [UInt8(index >> 8), UInt8(index & 0xFF)]), name: "shop/fill",
                dedupeKey: nil, ts: f.t0.unixMilliseconds, payload: ["name": "shop/fill", "data": ["fill": true]], receivedAt: f.t0.unixMilliseconds)
        }
        _ = try await f.eventLog.append(events, dedupeUntil: f.t0, now: f.t0)
        let outputs: [JSONValue?] = [["status": "ok"], ["status": "no"], nil, "ok", nil, ["status": "ok"]]
        var runs: [ULID] = []
        for (index, event) in (events.prefix(5) + [events[events.count - 1]]).enumerated() {
            var run = f.newRun(key: "contains:\(index)", entropy: UInt8(70 + index))
            run.eventIDs = [event.id]
            #expect(try await f.store.createRuns([run], now: f.t0) == [run.id])
            runs.append(run.id)
            if let output = outputs[index] {
                let lease = try await f.lease(WorkItem(runID: run.id, reason: .start, call: .discovery), owner: "one")
                #expect(try await f.store.finish(lease, .completed(output: output), steps: 0, emitting: [], now: f.t0) == .finished)
            }
        }
        func matching(_ event: String?, output: String? = nil, after: ULID? = nil, ascending: Bool = true) async throws -> [ULID] {
            let filter = RunFilter(
                functionID: f.functionID, eventContains: try event.map { try JSONValue(parsing: $0) }, outputContains: try output.map { try JSONValue(parsing: $0) })
            let found = try await f.store.runs(filter, after: after, ascending: ascending, limit: 100).map(\.id)
            if after == nil { #expect(try await f.store.count(filter) == found.count) }
            return found
        }
        // Exactly `expected`, except that the runs of the two payloads jsonb cannot hold may
        // be let through too.
        func expect(_ found: [ULID], _ expected: [ULID], sourceLocation: SourceLocation = #_sourceLocation) {
            let uncomparable = [runs[2], runs[3]]
            #expect(found.filter { !uncomparable.contains($0) } == expected.filter { !uncomparable.contains($0) }, sourceLocation: sourceLocation)
            #expect(Set(expected).isSubset(of: found), sourceLocation: sourceLocation)
            #expect(found == found.sorted() || found == found.sorted(by: >), sourceLocation: sourceLocation)
        }
        expect(try await matching(#"{"data":{"userId":"u-1"}}"#), [runs[0], runs[2], runs[3]])
        #expect(try await matching(#"{"data":{"userId":"u-1"}}"#, ascending: false) == [runs[3], runs[2], runs[0]])
        #expect(try await matching(#"{"data":{"userId":"u-1"}}"#, after: runs[0]) == [runs[2], runs[3]])
        expect(try await matching(#"{"data":{"userId":"u-1","vip":true}}"#), [runs[0]])
        expect(try await matching(#"{"name":"shop/a"}"#), Array(runs.prefix(5)))
        expect(try await matching(#"{"data":{"userId":"u-3"}}"#), [])
        expect(try await matching(#"{"data":{"fill":true}}"#), [runs[5]])
        expect(try await matching(nil, output: #"{"status":"ok"}"#), [runs[0], runs[5]])
        expect(try await matching(nil, output: #""ok""#), [runs[3]])
        expect(try await matching(#"{"data":{"userId":"u-2"}}"#, output: #"{"status":"ok"}"#), [])
        expect(try await matching(#"{"data":{"userId":"u-1"}}"#, output: #"{"status":"ok"}"#), [runs[0]])
        expect(try await matching(#"{"data":{"fill":true}}"#, output: #"{"status":"ok"}"#), [runs[5]])
    }

    static func stepTiming(_ f: RunStoreFixture) async throws {
        let lease = try await f.startedRun()
        var timed = f.step("a", position: 0)
        timed.queuedAt = f.t0.addingTimeInterval(1)
        timed.startedAt = f.t0.addingTimeInterval(3)
        #expect(try await f.store.recordStep(lease, timed, now: f.t0.addingTimeInterval(4)) == .recorded)
        #expect(try await f.store.recordStep(lease, f.step("b", position: 1), now: f.t0.addingTimeInterval(5)) == .recorded)
        let run = try #require(try await f.store.run(lease.runID))
        try #require(run.steps.count == 2)
        #expect(run.steps[0].queuedAt == f.t0.addingTimeInterval(1))
        #expect(run.steps[0].startedAt == f.t0.addingTimeInterval(3))
        #expect(run.steps[0].recordedAt == f.t0.addingTimeInterval(4))
        // A step no SDK call produced has no attempt times.
        #expect(run.steps[1].queuedAt == nil)
        #expect(run.steps[1].startedAt == nil)
        #expect(run.failedAttempts.isEmpty)
    }

    /// A failed attempt at `seconds` after t0: queued then, sent a second later, handled two
    /// seconds later.
    static func failedAttempt(_ f: RunStoreFixture, step: String?, attempt: Int, at seconds: TimeInterval, error: JSONValue) -> RunRecord.FailedAttempt {
        RunRecord.FailedAttempt(
            stepID: step, attempt: attempt, queuedAt: f.t0.addingTimeInterval(seconds), startedAt: f.t0.addingTimeInterval(seconds + 1),
            endedAt: f.t0.addingTimeInterval(seconds + 3), error: error)
    }

    static func failedAttemptsKept(_ f: RunStoreFixture) async throws {
        // The error is kept as the SDK sent it: member order and a number's literal text.
        let error = try JSONValue(parsing: #"{"name":"Error","message":"a failed","stack":"at a","code":12345678901234567890123}"#)
        let first = try await f.startedRun()
        let one = failedAttempt(f, step: "a", attempt: 1, at: 0, error: error)
        var two = failedAttempt(f, step: nil, attempt: 1, at: 1, error: ["name": "Error", "message": "outside any step"])
        two.queuedAt = nil
        let retry = WorkItem(runID: first.runID, reason: .retry, call: SDKCall(stepID: "step", attempt: 1), generation: first.token)
        var parking = Parking(timers: [(retry, f.t0.addingTimeInterval(10))])
        parking.failedAttempts = [one, two]
        #expect(try await f.store.park(first, parking, now: f.t0.addingTimeInterval(4)))
        #expect(try await f.store.run(first.runID)?.failedAttempts == [one, two])

        #expect(try await f.store.fireDueTimers(now: f.t0.addingTimeInterval(10), limit: 10) == [retry])
        let second = try await f.lease(retry, owner: "one")
        let three = failedAttempt(f, step: "a", attempt: 2, at: 10, error: ["message": "a failed again"])
        let again = WorkItem(runID: first.runID, reason: .retry, call: SDKCall(stepID: "step", attempt: 2), generation: second.token)
        parking = Parking(timers: [(again, f.t0.addingTimeInterval(20))])
        parking.failedAttempts = [three]
        #expect(try await f.store.park(second, parking, now: f.t0.addingTimeInterval(13)))

        #expect(try await f.store.fireDueTimers(now: f.t0.addingTimeInterval(20), limit: 10) == [again])
        let third = try await f.lease(again, owner: "one")
        let four = failedAttempt(f, step: "a", attempt: 3, at: 20, error: ["message": "a failed for good"])
        let failure = RunFailure.cairn(name: "Error", message: "a failed for good")
        #expect(try await f.store.finish(third, .failed(failure), steps: 0, failedAttempts: [four], emitting: [], now: f.t0.addingTimeInterval(23)) == .finished)
        let run = try #require(try await f.store.run(first.runID))
        #expect(run.failedAttempts == [one, two, three, four])
        #expect(run.failedAttempts.first?.error.jsonString == error.jsonString)
        // Listings leave them out, as they leave out steps.
        #expect(try await f.store.runs(eventID: f.eventID).first { $0.id == first.runID }?.failedAttempts == [])
    }

    static func refusedWritesKeepNoFailedAttempt(_ f: RunStoreFixture) async throws {
        // A lease of no duration has lapsed at once: a takeover fences the first holder out.
        let first = try await f.startedRun(owner: "one", duration: .zero)
        let start = WorkItem(runID: first.runID, reason: .start, call: .discovery)
        let second = try await f.lease(start, owner: "two")
        let lost = failedAttempt(f, step: "a", attempt: 1, at: 0, error: ["message": "stale"])
        var parking = Parking(timers: [(WorkItem(runID: first.runID, reason: .retry, call: .discovery, generation: first.token), f.t0)])
        parking.failedAttempts = [lost]
        #expect(try await !f.store.park(first, parking, now: f.t0))
        #expect(try await f.store.finish(first, .failed(.cairn(name: "Error", message: "stale")), steps: 0, failedAttempts: [lost], emitting: [], now: f.t0) == .leaseLost)
        // A park whose timer cannot be stored fails whole: its failed attempts go with it.
        let taken = WorkItem(runID: first.runID, reason: .retry, call: SDKCall(stepID: "step", attempt: 1), generation: second.token)
        #expect(try await f.store.park(second, Parking(timers: [(taken, f.t0.addingTimeInterval(60))]), now: f.t0))
        let third = try await f.lease(try #require(try await f.store.fireDueTimers(now: f.t0.addingTimeInterval(60), limit: 10).first), owner: "two")
        var colliding = Parking(timers: [(taken, f.t0.addingTimeInterval(90))])
        colliding.failedAttempts = [lost]
        await #expect(throws: (any Error).self) { _ = try await f.store.park(third, colliding, now: f.t0) }
        #expect(try await f.store.run(first.runID)?.failedAttempts == [])
        #expect(try await f.store.run(first.runID)?.status == "Running")
    }

    static func concurrencySlots(_ f: RunStoreFixture) async throws {
        let counter = [ConcurrencySlot(key: "f:test:k", limit: 1)]
        let first = try await f.startedRun(entropy: 80)
        let second = try await f.startedRun(entropy: 81)
        let third = try await f.startedRun(entropy: 82)
        let now = f.t0
        #expect(try await f.store.acquireSlots(first, counter, score: 10, functionID: f.functionID, start: true, now: now) == .held)
        // Taken again by the same drive: still held, no second slot.
        #expect(try await f.store.acquireSlots(first, counter, score: 10, functionID: f.functionID, start: true, now: now) == .held)
        // Full: the others wait in line (the later score behind), their leases given up, not
        // started, their items live.
        #expect(try await f.store.acquireSlots(third, counter, score: 30, functionID: f.functionID, start: true, now: now) == .backlogged(key: "f:test:k"))
        #expect(try await f.store.acquireSlots(second, counter, score: 20, functionID: f.functionID, start: true, now: now) == .backlogged(key: "f:test:k"))
        let waiting = try #require(try await f.store.run(second.runID))
        #expect(waiting.status == "Queued")
        #expect(waiting.startedAt == nil)
        #expect(try await f.store.queueStates() == [QueueState(functionID: f.functionID, ready: 0, backlog: 2, running: 1, oldest: now)])
        // A run cancelled while in line leaves it.
        let fourth = try await f.startedRun(entropy: 83)
        #expect(try await f.store.acquireSlots(fourth, counter, score: 40, functionID: f.functionID, start: true, now: now) == .backlogged(key: "f:test:k"))
        #expect(try await f.store.queueStates().first?.backlog == 3)
        #expect(try await f.store.cancel(fourth.runID, now: now, emitting: { _ in [] }) != nil)
        #expect(try await f.store.queueStates().first?.backlog == 2)
        let secondItem = WorkItem(runID: second.runID, reason: .start, call: .discovery)
        let thirdItem = WorkItem(runID: third.runID, reason: .start, call: .discovery)
        #expect(try await f.store.recoverStranded(limit: 10).isEmpty)
        // Its holder frees the slot: the lowest score goes, unpublished until published.
        #expect(try await f.store.releaseSlots(first.runID) == [secondItem])
        #expect(try await f.store.unpublishedWork(createdBefore: now.addingTimeInterval(3_600), limit: 10).contains(secondItem))
        let again = try await f.lease(secondItem, owner: "two")
        #expect(try await f.store.acquireSlots(again, counter, score: 20, functionID: f.functionID, start: true, now: now) == .held)
        // A drive that ends without freeing its slot frees it all the same: the reconciler's
        // pass lets the next in line go.
        #expect(try await f.store.promoteBacklog(limit: 10).isEmpty)
        #expect(try await f.store.release(again, now: now))
        #expect(try await f.store.promoteBacklog(limit: 10) == [thirdItem])
        #expect(try await f.store.promoteBacklog(limit: 10).isEmpty)
        // The promoted item is live with no drive: work for an executor, none for a slot.
        #expect(try await f.store.queueStates() == [QueueState(functionID: f.functionID, ready: 1, backlog: 0, running: 0, oldest: nil)])
    }

    static func runLevelSlots(_ f: RunStoreFixture) async throws {
        let counter = [ConcurrencySlot(key: "r:test:k", limit: 1, wholeRun: true)]
        let first = try await f.startedRun(entropy: 90)
        let second = try await f.startedRun(entropy: 91)
        let now = f.t0
        #expect(try await f.store.acquireSlots(first, counter, score: 10, functionID: f.functionID, start: true, now: now) == .held)
        // Its drive frees its request slots: the run-level one stays with the run, and counts.
        #expect(try await f.store.releaseSlots(first.runID).isEmpty)
        #expect(try await f.store.acquireSlots(second, counter, score: 20, functionID: f.functionID, start: true, now: now) == .backlogged(key: "r:test:k"))
        #expect(try await f.store.promoteBacklog(limit: 10).isEmpty)
        #expect(try await f.store.queueStates() == [QueueState(functionID: f.functionID, ready: 0, backlog: 1, running: 1, oldest: now)])
        // A later request of the same run takes it again without waiting.
        #expect(try await f.store.acquireSlots(first, counter, score: 10, functionID: f.functionID, start: false, now: now) == .held)
        // The run ends: its slot goes, and the first in line with it.
        #expect(try await f.store.cancel(first.runID, now: now, emitting: { _ in [] }) != nil)
        #expect(try await f.store.releaseSlots(first.runID) == [WorkItem(runID: second.runID, reason: .start, call: .discovery)])
        #expect(try await f.store.queueStates() == [QueueState(functionID: f.functionID, ready: 1, backlog: 0, running: 0, oldest: nil)])
    }

    static func rerunWithStepsAndRecords(_ f: RunStoreFixture) async throws {
        let original = f.newRun(key: "event:1", entropy: 60)
        #expect(try await f.store.createRuns([original], now: f.t0) == [original.id])
        let edited = AcceptedEvent(
            id: ULID(milliseconds: UInt64(f.t0.unixMilliseconds) + 5, entropy: [UInt8](repeating: 61, count: 10)), name: "shop/a", dedupeKey: nil,
            ts: f.t0.unixMilliseconds, payload: ["name": "shop/a", "data": ["n": 2]], receivedAt: f.t0.unixMilliseconds)
        var rerun = f.newRun(key: "rerun:1", entropy: 62)
        rerun.eventIDs = [edited.id]
        rerun.originalRunID = original.id
        rerun.records = [edited]
        rerun.memoized = [
            StepRecord(stepID: "s1", position: 0, name: "one", op: "StepRun", result: #"{"data":1}"#, attempts: 1),
            StepRecord(stepID: "s2", position: 1, name: "two", op: "StepRun", result: #"{"data":2}"#, attempts: 2),
        ]
        #expect(try await f.store.createRuns([rerun], now: f.t0) == [rerun.id])
        let record = try #require(try await f.store.run(rerun.id))
        #expect(record.originalRunID == original.id)
        #expect(record.eventIDs == [edited.id])
        #expect(record.steps.map(\.id) == ["s1", "s2"])
        #expect(record.steps.map(\.attempts) == [1, 2])
        // The SDK sees the memoized steps and the edited event; the next step goes at position 2.
        let lease = try await f.lease(WorkItem(runID: rerun.id, reason: .start, call: .discovery), owner: "one")
        let snapshot = try await f.store.snapshot(rerun.id)
        #expect(snapshot.stack == ["s1", "s2"])
        #expect(snapshot.events.first?["data"] == ["n": 2])
        let third = StepRecord(stepID: "s3", position: 2, name: "three", op: "StepRun", result: #"{"data":3}"#, attempts: 1)
        #expect(try await f.store.recordStep(lease, third, now: f.t0) == .recorded)
        // The edited event is a record: never to be published or routed.
        #expect(try await f.eventLog.unpublished(receivedBefore: .distantFuture, limit: 100).contains { $0.id == edited.id } == false)
        #expect(try await f.eventLog.unrouted(after: nil, limit: 100).contains { $0.id == edited.id } == false)
        #expect(try await f.eventLog.event(id: edited.id)?.payload["data"] == ["n": 2])
    }

    static func oneRunPerKey(_ f: RunStoreFixture) async throws {
        let first = f.newRun()
        #expect(try await f.store.createRuns([first], now: f.t0) == [first.id])
        #expect(try await f.store.createRuns([f.newRun(entropy: 8)], now: f.t0).isEmpty)
        let start = WorkItem(runID: first.id, reason: .start, call: .discovery)
        #expect(try await f.store.unpublishedWork(createdBefore: .distantFuture, limit: 10) == [start])
        try await f.store.markWorkPublished([start], now: f.t0)
        #expect(try await f.store.unpublishedWork(createdBefore: .distantFuture, limit: 10).isEmpty)
        // Published, the item stays live until a drive ends.
        #expect(try await f.store.liveWork(after: nil, limit: 10).items == [start])
        // After the window the key is free again.
        let later = f.newRun(entropy: 9)
        #expect(try await f.store.createRuns([later], now: f.t0.addingTimeInterval(86_401)) == [later.id])
        #expect(try await f.store.run(first.id)?.status == "Queued")
    }

    static func leaseOutcomes(_ f: RunStoreFixture) async throws {
        let lease = try await f.startedRun(owner: "one")
        let start = WorkItem(runID: lease.runID, reason: .start, call: .discovery)
        #expect(try await f.store.lease(start, owner: "two", duration: .seconds(60)) == .busy)
        // The same owner may lease again (a redelivery to a process that lost track).
        let again = try await f.lease(start, owner: "one")
        #expect(again.token > lease.token)
        #expect(try await f.store.run(lease.runID)?.status == "Running")
        #expect(try await f.store.isLive(start))
        // An item that never existed, or was retired, is stale.
        let unknown = WorkItem(runID: lease.runID, reason: .retry, call: .discovery, generation: 99)
        #expect(try await f.store.lease(unknown, owner: "one", duration: .seconds(60)) == .stale)
        #expect(try await !f.store.isLive(unknown))
        #expect(try await f.store.release(again, now: f.t0))
        #expect(try await f.store.lease(start, owner: "two", duration: .seconds(60)) == .stale)
        #expect(try await !f.store.isLive(start))
        let missing = WorkItem(runID: ULID(milliseconds: 1, entropy: [UInt8](repeating: 0, count: 10)), reason: .start, call: .discovery)
        #expect(try await f.store.lease(missing, owner: "one", duration: .seconds(60)) == .ended)
        #expect(try await !f.store.isLive(missing))
        // A run cancelled under its lease leaves no item live.
        let cancelled = try await f.startedRun(entropy: 40, owner: "one")
        let cancelledStart = WorkItem(runID: cancelled.runID, reason: .start, call: .discovery)
        #expect(try await f.store.isLive(cancelledStart))
        #expect(try await f.store.cancel(cancelled.runID, now: f.t0, emitting: { _ in [] }) != nil)
        #expect(try await !f.store.isLive(cancelledStart))
    }

    static func staleHolderChangesNothing(_ f: RunStoreFixture) async throws {
        // A lease of no duration has lapsed at once: the first holder stalls past its lease.
        let first = try await f.startedRun(owner: "one", duration: .zero)
        let start = WorkItem(runID: first.runID, reason: .start, call: .discovery)
        let second = try await f.lease(start, owner: "two")
        #expect(second.token > first.token)
        #expect(try await f.store.recordStep(first, f.step("s", position: 0), now: f.t0) == .leaseLost)
        #expect(try await !f.store.renew(first, duration: .seconds(60)))
        #expect(try await !f.store.clearPending(first))
        let retry = WorkItem(runID: first.runID, reason: .retry, call: .discovery, generation: first.token)
        #expect(try await !f.store.park(first, Parking(timers: [(retry, f.t0)]), now: f.t0))
        #expect(try await f.store.finish(first, .completed(output: "stale"), steps: 0, emitting: [f.event("stale", entropy: 1)], now: f.t0) == .leaseLost)
        #expect(try await !f.store.release(first, now: f.t0))
        let timedOut = try await f.store.timeOutPause(first, stepID: "w", position: 0, now: f.t0, timeoutStep: Invocation.timeoutStep)
        #expect(timedOut == .leaseLost)
        // Nothing of the stale holder's is there; the new holder's writes are.
        #expect(try await f.store.unfiredTimers(after: nil, limit: 10).isEmpty)
        #expect(try await f.eventLog.events(named: "stale", after: ULID(milliseconds: 0, entropy: [UInt8](repeating: 0, count: 10)), limit: 10).isEmpty)
        #expect(try await f.store.recordStep(second, f.step("s", position: 0, result: #"{"data":2}"#), now: f.t0) == .recorded)
        #expect(try await f.store.snapshot(first.runID).steps["s"] == ["data": 2])
        #expect(try await f.store.finish(second, .completed(output: "done"), steps: 1, emitting: [], now: f.t0) == .finished)
        #expect(try await f.store.run(first.runID)?.output == "done")
    }

    static func firstWriteWins(_ f: RunStoreFixture) async throws {
        let lease = try await f.startedRun()
        #expect(try await f.store.recordStep(lease, f.step("s", position: 0, result: #"{"data":1}"#), now: f.t0) == .recorded)
        #expect(try await f.store.recordStep(lease, f.step("s", position: 1, result: #"{"data":2}"#), now: f.t0) == .alreadyRecorded)
        #expect(try await f.store.recordStep(lease, f.step("t", position: 1, result: "null"), now: f.t0) == .recorded)
        let snapshot = try await f.store.snapshot(lease.runID)
        #expect(snapshot.steps["s"] == ["data": 1])
        #expect(snapshot.steps["t"] == .null)
        #expect(snapshot.stack == ["s", "t"])
        #expect(snapshot.function.id == "shop-a")
        #expect(snapshot.events.first?["data"] == ["n": 1])
    }

    static func stepsFollowTheLog(_ f: RunStoreFixture) async throws {
        let lease = try await f.startedRun()
        #expect(try await f.store.recordStep(lease, f.step("a", position: 0), now: f.t0) == .recorded)
        // The writer counted on a step at position 1 that is not there (lost before its
        // commit): nothing is written, and the writer learns so.
        #expect(try await f.store.recordStep(lease, f.step("c", position: 2), now: f.t0) == .stepsChanged)
        #expect(try await f.store.finish(lease, .completed(output: 1), steps: 3, emitting: [f.event("early", entropy: 7)], now: f.t0) == .stepsChanged)
        #expect(try await f.store.snapshot(lease.runID).stack == ["a"])
        #expect(try await f.store.run(lease.runID)?.status == "Running")
        #expect(try await f.eventLog.events(named: "early", after: ULID(milliseconds: 0, entropy: [UInt8](repeating: 0, count: 10)), limit: 10).isEmpty)
        // Reloaded, it goes on from what is stored.
        #expect(try await f.store.recordStep(lease, f.step("b", position: 1), now: f.t0) == .recorded)
        // A drive whose group waits lets go only on the log it read: with a step it does not
        // know of, it keeps the lease (its item too).
        #expect(try await f.store.releaseGroup(lease, steps: 1, now: f.t0) == .stepsChanged)
        #expect(try await f.store.renew(lease, duration: .seconds(60)))
        #expect(try await f.store.finish(lease, .completed(output: 1), steps: 2, emitting: [], now: f.t0) == .finished)
        #expect(try await f.store.releaseGroup(lease, steps: 2, now: f.t0) == .leaseLost)

        let other = try await f.startedRun(entropy: 9)
        #expect(try await f.store.recordStep(other, f.step("a", position: 0), now: f.t0) == .recorded)
        #expect(try await f.store.releaseGroup(other, steps: 1, now: f.t0) == .released)
        let start = WorkItem(runID: other.runID, reason: .start, call: .discovery)
        #expect(try await f.store.lease(start, owner: "two", duration: .seconds(60)) == .stale)
    }

    static func endingADriveRetiresTheItem(_ f: RunStoreFixture) async throws {
        let lease = try await f.startedRun()
        let start = WorkItem(runID: lease.runID, reason: .start, call: .discovery)
        let wake = WorkItem(runID: lease.runID, reason: .wake, call: SDKCall(stepID: "nap", attempt: 0), generation: lease.token)
        #expect(try await f.store.park(lease, Parking(timers: [(wake, f.t0.addingTimeInterval(5))]), now: f.t0))
        // The parked lease is given up: a renewal (racing the end of its drive) cannot bring
        // it back and hold the run.
        #expect(try await !f.store.renew(lease, duration: .seconds(60)))
        // A second delivery of the start item finds it retired.
        #expect(try await f.store.lease(start, owner: "two", duration: .seconds(60)) == .stale)
        #expect(try await f.store.liveWork(after: nil, limit: 10).items.isEmpty)
        #expect(try await f.store.unfiredTimers(after: nil, limit: 10).map(\.id) == [wake.entryID])
        #expect(try await f.store.fireDueTimers(now: f.t0.addingTimeInterval(4), limit: 10).isEmpty)
        #expect(try await f.store.fireDueTimers(now: f.t0.addingTimeInterval(5), limit: 10) == [wake])
        let woken = try await f.lease(wake, owner: "two")
        #expect(try await f.store.release(woken, now: f.t0))
        #expect(try await f.store.lease(wake, owner: "two", duration: .seconds(60)) == .stale)
        #expect(try await f.store.run(lease.runID)?.status == "Running")
    }

    static func twoRetriesInOneRun(_ f: RunStoreFixture) async throws {
        // Step a fails on discovery; its retry (discovery, attempt 1) records a, then step b
        // fails on the next discovery: its retry is discovery attempt 1 again.
        let first = try await f.startedRun()
        let retryA = WorkItem(runID: first.runID, reason: .retry, call: SDKCall(stepID: "step", attempt: 1), generation: first.token)
        #expect(try await f.store.park(first, Parking(timers: [(retryA, f.t0.addingTimeInterval(1))]), now: f.t0))
        #expect(try await f.store.fireDueTimers(now: f.t0.addingTimeInterval(1), limit: 10) == [retryA])
        let second = try await f.lease(retryA, owner: "one")
        #expect(try await f.store.recordStep(second, f.step("a", position: 0), now: f.t0) == .recorded)
        let retryB = WorkItem(runID: first.runID, reason: .retry, call: SDKCall(stepID: "step", attempt: 1), generation: second.token)
        #expect(retryA.entryID != retryB.entryID)
        #expect(try await f.store.park(second, Parking(timers: [(retryB, f.t0.addingTimeInterval(2))]), now: f.t0))
        #expect(try await f.store.fireDueTimers(now: f.t0.addingTimeInterval(2), limit: 10) == [retryB])
        let third = try await f.lease(retryB, owner: "one")
        #expect(try await f.store.finish(third, .completed(output: "ok"), steps: 1, emitting: [], now: f.t0) == .finished)
        #expect(try await f.store.run(first.runID)?.status == "Completed")
    }

    static func timerCollisionChangesNothing(_ f: RunStoreFixture) async throws {
        let first = try await f.startedRun()
        let item = WorkItem(runID: first.runID, reason: .retry, call: .discovery, generation: 1)
        #expect(try await f.store.park(first, Parking(timers: [(item, f.t0.addingTimeInterval(60))]), now: f.t0))
        // A later lease tries to schedule a timer with the same id.
        let fired = try await f.store.fireDueTimers(now: f.t0.addingTimeInterval(60), limit: 10)
        let second = try await f.lease(try #require(fired.first), owner: "one")
        let other = WorkItem(runID: first.runID, reason: .wake, call: SDKCall(stepID: "x", attempt: 0), generation: second.token)
        await #expect(throws: (any Error).self) {
            _ = try await f.store.park(second, Parking(timers: [(other, f.t0.addingTimeInterval(5)), (item, f.t0.addingTimeInterval(5))]), now: f.t0)
        }
        // Nothing was written: the lease is still held, its item live, no new timer.
        #expect(try await f.store.renew(second, duration: .seconds(60)))
        #expect(try await f.store.liveWork(after: nil, limit: 10).items == [item])
        #expect(try await f.store.unfiredTimers(after: nil, limit: 10).isEmpty)
    }

    static func timersFireOnce(_ f: RunStoreFixture) async throws {
        let lease = try await f.startedRun()
        let retries = (0..<50).map {
            (item: WorkItem(runID: lease.runID, reason: .retry, call: SDKCall(stepID: "s\($0)", attempt: 1), generation: lease.token), due: f.t0.addingTimeInterval(5))
        }
        #expect(try await f.store.park(lease, Parking(timers: retries, pendingSteps: retries.map(\.item.call.stepID)), now: f.t0))
        #expect(try await f.store.snapshot(lease.runID).pendingSteps.count == 50)
        #expect(try await f.store.snapshot(lease.runID).forceStepPlan)
        #expect(try await f.store.fireDueTimers(now: f.t0.addingTimeInterval(4), limit: 100).isEmpty)
        let fired = try await withThrowingTaskGroup(of: [WorkItem].self) { group in
            for _ in 0..<4 { group.addTask { try await f.store.fireDueTimers(now: f.t0.addingTimeInterval(6), limit: 20) } }
            var all: [WorkItem] = []
            for try await items in group { all += items }
            return all
        }
        #expect(fired.count == 50)
        #expect(Set(fired).count == 50)
        #expect(try await f.store.fireDueTimers(now: f.t0.addingTimeInterval(7), limit: 100).isEmpty)
        #expect(try await f.store.liveWork(after: nil, limit: 100).items.count == 50)
    }

    static func pauseConsumedOnce(_ f: RunStoreFixture) async throws {
        let lease = try await f.startedRun()
        let pause = Pause(
            runID: lease.runID, stepID: "w", kind: .wait, eventName: "shop/approved", expression: "async.data.ok",
            triggerEvent: ["name": "shop/a"], eventsAfter: f.eventID, expiresAt: f.t0.addingTimeInterval(3_600))
        let timeout = Invocation.timeoutItem(lease.runID, "w", generation: lease.token)
        #expect(try await f.store.park(lease, Parking(pauses: [(pause, timeout)]), now: f.t0))
        // Another run waits for the same event at two steps: the open pauses come in pages.
        let otherLease = try await f.startedRun(entropy: 8)
        let others = ["x", "y"].map { step in
            var other = pause
            other.runID = otherLease.runID
            other.stepID = step
            return (pause: other, timeout: Invocation.timeoutItem(otherLease.runID, step, generation: otherLease.token))
        }
        #expect(try await f.store.park(otherLease, Parking(pauses: others), now: f.t0))
        let first = try await f.store.openPauses(eventName: "shop/approved", now: f.t0, after: nil, limit: 2)
        let rest = try await f.store.openPauses(eventName: "shop/approved", now: f.t0, after: first.last?.id, limit: 2)
        #expect(first.map(\.stepID) == ["w", "x"])
        #expect(rest.map(\.stepID) == ["y"])
        #expect(try await f.store.openPauses(eventName: "shop/approved", now: f.t0, after: rest.last?.id, limit: 2).isEmpty)
        _ = try await f.store.cancel(otherLease.runID, now: f.t0) { _ in [] }
        #expect(try await f.store.openPauses(eventName: "shop/approved", now: f.t0, after: nil, limit: 10) == [pause])
        let resume = WorkItem(runID: lease.runID, reason: .resume, call: SDKCall(stepID: "w", attempt: 0))
        let results = try await withThrowingTaskGroup(of: Bool.self) { group in
            for n in 0..<3 {
                group.addTask {
                    try await f.store.resume(pause, eventID: f.eventID, result: ["n": .number(JSONNumber(n))], resume: resume, now: f.t0)
                }
            }
            var all: [Bool] = []
            for try await result in group { all.append(result) }
            return all
        }
        #expect(results.filter { $0 }.count == 1)
        #expect(try await f.store.openPauses(eventName: "shop/approved", now: f.t0, after: nil, limit: 10).isEmpty)
        // The match disarmed the timeout; a timeout item driven anyway finds the pause gone.
        #expect(try await f.store.fireDueTimers(now: f.t0.addingTimeInterval(7_200), limit: 10).isEmpty)
        let resumed = try await f.lease(resume, owner: "one")
        #expect(try await f.store.timeOutPause(resumed, stepID: "w", position: 1, now: f.t0, timeoutStep: Invocation.timeoutStep) == .alreadyMatched)
        #expect(try await f.store.snapshot(lease.runID).stack == ["w"])

        // A second wait times out: pause consumed and step recorded together, under the lease.
        let invoke = Pause(
            runID: lease.runID, stepID: "i", kind: .invoke, eventName: SystemEvents.finished, expression: nil, triggerEvent: [:],
            eventsAfter: nil, expiresAt: f.t0.addingTimeInterval(10))
        let invokeTimeout = Invocation.timeoutItem(lease.runID, "i", generation: resumed.token)
        #expect(try await f.store.park(resumed, Parking(pauses: [(invoke, invokeTimeout)]), now: f.t0))
        #expect(try await f.store.fireDueTimers(now: f.t0.addingTimeInterval(10), limit: 10) == [invokeTimeout])
        let timing = try await f.lease(invokeTimeout, owner: "one")
        let outcome = try await f.store.timeOutPause(timing, stepID: "i", position: 1, now: f.t0, timeoutStep: Invocation.timeoutStep)
        guard case .timedOut(let step) = outcome else {
            Issue.record("the invoke should time out, got \(outcome)")
            return
        }
        #expect(step.op == "InvokeFunction")
        #expect(try await f.store.snapshot(lease.runID).steps["i"] == ["error": Invocation.timeoutError])
        #expect(try await !f.store.resume(invoke, eventID: f.eventID, result: [:], resume: resume, now: f.t0))
        // The timeout's drive died right after its commit: driven again, it goes on from there.
        let again = try await f.lease(invokeTimeout, owner: "one")
        #expect(try await f.store.timeOutPause(again, stepID: "i", position: 2, now: f.t0, timeoutStep: Invocation.timeoutStep) == outcome)
    }

    static func resumeRetiresAFiredTimeout(_ f: RunStoreFixture) async throws {
        let lease = try await f.startedRun()
        let pause = Pause(
            runID: lease.runID, stepID: "w", kind: .wait, eventName: "shop/approved", expression: nil, triggerEvent: [:], eventsAfter: nil,
            expiresAt: f.t0.addingTimeInterval(60))
        let timeout = Invocation.timeoutItem(lease.runID, "w", generation: lease.token)
        #expect(try await f.store.park(lease, Parking(pauses: [(pause, timeout)]), now: f.t0))
        #expect(try await f.store.fireDueTimers(now: f.t0.addingTimeInterval(60), limit: 10) == [timeout])
        let resume = WorkItem(runID: lease.runID, reason: .resume, call: SDKCall(stepID: "w", attempt: 0))
        #expect(try await f.store.resume(pause, eventID: f.eventID, result: ["name": "shop/approved"], resume: resume, now: f.t0))
        #expect(try await f.store.liveWork(after: nil, limit: 10).items == [resume])
        #expect(try await f.store.lease(timeout, owner: "one", duration: .seconds(60)) == .stale)
    }

    static func finishStoresEventsAtomically(_ f: RunStoreFixture) async throws {
        let lease = try await f.startedRun()
        let finished = f.event(SystemEvents.finished, entropy: 2)
        #expect(try await f.store.finish(lease, .failed(.cairn(name: "Error", message: "x")), steps: 0, emitting: [finished], now: f.t0) == .finished)
        // Stored unpublished and unrouted: the relay or a rebuild will carry it.
        let stored = try await f.eventLog.unrouted(after: nil, limit: 10)
        #expect(stored.map(\.id).contains(finished.id))
        #expect(try await f.eventLog.unpublished(receivedBefore: .distantFuture, limit: 10).map(\.id).contains(finished.id))
        // A second finish (a retry after an unknown commit outcome) stores nothing more.
        #expect(try await f.store.finish(lease, .completed(output: 1), steps: 0, emitting: [f.event(SystemEvents.finished, entropy: 3)], now: f.t0) == .leaseLost)
        #expect(try await f.eventLog.unrouted(after: nil, limit: 10).filter { $0.name == SystemEvents.finished }.count == 1)
        let run = try #require(try await f.store.run(lease.runID))
        #expect(run.status == "Failed")
        #expect(run.error == ["name": "Error", "message": "x"])
        #expect(run.endedAt != nil)
    }

    static func finishRetiresEverything(_ f: RunStoreFixture) async throws {
        let cancelOn = Pause(
            runID: f.newRun().id, stepID: "cancel-0", kind: .cancel, eventName: "shop/stop", expression: nil, triggerEvent: [:],
            eventsAfter: f.newRun().id, expiresAt: f.t0.addingTimeInterval(3_600))
        let run = f.newRun(pauses: [cancelOn])
        #expect(try await f.store.createRuns([run], now: f.t0) == [run.id])
        let lease = try await f.lease(WorkItem(runID: run.id, reason: .start, call: .discovery), owner: "one")
        // A parallel group: two retries pending; the first continues and the run ends.
        let retries = ["x", "y"].map {
            (item: WorkItem(runID: run.id, reason: .retry, call: SDKCall(stepID: $0, attempt: 1), generation: lease.token), due: f.t0.addingTimeInterval(1))
        }
        #expect(try await f.store.park(lease, Parking(timers: retries, pendingSteps: ["x", "y"]), now: f.t0))
        let fired = try await f.store.fireDueTimers(now: f.t0.addingTimeInterval(1), limit: 1)
        let next = try await f.lease(try #require(fired.first), owner: "one")
        #expect(try await f.store.finish(next, .completed(output: "done"), steps: 0, emitting: [], now: f.t0) == .finished)
        #expect(try await f.store.liveWork(after: nil, limit: 10).items.isEmpty)
        #expect(try await f.store.unfiredTimers(after: nil, limit: 10).isEmpty)
        #expect(try await f.store.openPauses(eventName: "shop/stop", now: f.t0, after: nil, limit: 10).isEmpty)
        for item in retries.map(\.item) {
            #expect(try await f.store.lease(item, owner: "two", duration: .seconds(60)) == .ended)
        }
    }

    static func cancelRevokesAndEmits(_ f: RunStoreFixture) async throws {
        let lease = try await f.startedRun()
        let wake = WorkItem(runID: lease.runID, reason: .wake, call: SDKCall(stepID: "nap", attempt: 0), generation: lease.token)
        let cancelled = f.event(SystemEvents.cancelled, entropy: 4)
        let emitted = try await f.store.cancel(lease.runID, now: f.t0) { run in
            #expect(run.functionSlug == "shop-a")
            #expect(run.events.first?["data"] == ["n": 1])
            return [cancelled]
        }
        #expect(emitted == [cancelled])
        #expect(try await f.store.recordStep(lease, f.step("x", position: 0), now: f.t0) == .leaseLost)
        #expect(try await !f.store.park(lease, Parking(timers: [(wake, f.t0)]), now: f.t0))
        #expect(try await f.store.cancel(lease.runID, now: f.t0) { _ in [f.event("again", entropy: 5)] } == nil)
        #expect(try await f.store.run(lease.runID)?.status == "Cancelled")
        #expect(try await f.store.liveWork(after: nil, limit: 10).items.isEmpty)
        #expect(try await f.eventLog.unrouted(after: nil, limit: 10).map(\.name).contains(SystemEvents.cancelled))
        #expect(try await !f.eventLog.unrouted(after: nil, limit: 10).map(\.name).contains("again"))
    }

    static func strandedRunsRecovered(_ f: RunStoreFixture) async throws {
        // Pending: a queued run (start item), a leased run, a sleeping run, a waiting run.
        let queued = f.newRun(key: "q", entropy: 1)
        #expect(try await f.store.createRuns([queued], now: f.t0) == [queued.id])
        let leased = try await f.startedRun(entropy: 2)
        let sleeping = try await f.startedRun(entropy: 3)
        let wake = WorkItem(runID: sleeping.runID, reason: .wake, call: SDKCall(stepID: "nap", attempt: 0), generation: sleeping.token)
        #expect(try await f.store.park(sleeping, Parking(timers: [(wake, f.t0.addingTimeInterval(60))]), now: f.t0))
        let waiting = try await f.startedRun(entropy: 4)
        let pause = Pause(
            runID: waiting.runID, stepID: "w", kind: .wait, eventName: "shop/go", expression: nil, triggerEvent: [:], eventsAfter: nil,
            expiresAt: f.t0.addingTimeInterval(60))
        #expect(try await f.store.park(waiting, Parking(pauses: [(pause, Invocation.timeoutItem(waiting.runID, "w", generation: waiting.token))]), now: f.t0))
        #expect(try await f.store.recoverStranded(limit: 10).isEmpty)
        _ = leased

        // Stranded: a run whose lease lapsed and whose item a bug retired.
        let lost = try await f.startedRun(entropy: 5, duration: .zero)
        #expect(try await f.store.recoverStranded(limit: 10).isEmpty)
        #expect(try await f.store.release(lost, now: f.t0))
        let recovered = try await withThrowingTaskGroup(of: [WorkItem].self) { group in
            for _ in 0..<3 { group.addTask { try await f.store.recoverStranded(limit: 10) } }
            var all: [WorkItem] = []
            for try await items in group { all += items }
            return all
        }
        #expect(recovered == [WorkItem(runID: lost.runID, reason: .recover, call: .discovery, generation: lost.token)])
        #expect(try await f.store.recoverStranded(limit: 10).isEmpty)
        let again = try await f.lease(try #require(recovered.first), owner: "two")
        #expect(again.token > lost.token)
    }

    static func outboxPublishing(_ f: RunStoreFixture) async throws {
        let runs = (1...3).map { f.newRun(key: "k\($0)", entropy: UInt8($0)) }
        #expect(try await f.store.createRuns(runs, now: f.t0).count == 3)
        let items = runs.map { WorkItem(runID: $0.id, reason: .start, call: .discovery) }
        #expect(try await f.store.unpublishedWork(createdBefore: .distantFuture, limit: 10) == items)
        try await f.store.markWorkPublished([items[1]], now: f.t0)
        #expect(try await f.store.unpublishedWork(createdBefore: .distantFuture, limit: 10) == [items[0], items[2]])
        // A rebuild pages through every live item, published or not.
        let first = try await f.store.liveWork(after: nil, limit: 2)
        #expect(first.items == [items[0], items[1]])
        let cursor = try #require(first.cursor)
        let rest = try await f.store.liveWork(after: cursor, limit: 2)
        #expect(rest.items == [items[2]])
        #expect(rest.cursor == nil)
    }

    static func delayedEvents(_ f: RunStoreFixture) async throws {
        try await f.eventLog.markRouted([f.eventID])
        #expect(try await f.eventLog.unrouted(after: nil, limit: 10).isEmpty)
        try await f.store.delayEvent(f.eventID, until: f.t0.addingTimeInterval(10), now: f.t0)
        try await f.store.delayEvent(f.eventID, until: f.t0.addingTimeInterval(10), now: f.t0)
        #expect(try await f.store.unfiredTimers(after: nil, limit: 10).map(\.id) == ["event:\(f.eventID)"])
        let noneYet = try await f.store.deliverDueEvents(now: f.t0.addingTimeInterval(9), limit: 10) { _ in Issue.record("nothing is due") }
        #expect(noneYet == 0)
        let delivered = Delivered()
        #expect(try await f.store.deliverDueEvents(now: f.t0.addingTimeInterval(10), limit: 10) { await delivered.add($0) } == 1)
        #expect(await delivered.ids == [f.eventID])
        #expect(try await f.store.deliverDueEvents(now: f.t0.addingTimeInterval(11), limit: 10) { await delivered.add($0) } == 0)
        // Until it is routed again, a rebuilt stream must carry it.
        #expect(try await f.eventLog.unrouted(after: nil, limit: 10).map(\.id) == [f.eventID])
    }

    static func runKeepsItsVersion(_ f: RunStoreFixture) async throws {
        let lease = try await f.startedRun()
        #expect(try await f.store.snapshot(lease.runID).function.retries == 2)
        _ = try await f.registry.sync(try AppRegistryContract.registration(functions: ["a"], retries: 9), at: f.t0.addingTimeInterval(1))
        #expect(try await f.registry.liveFunctions().first?.version == 2)
        #expect(try await f.store.snapshot(lease.runID).function.retries == 2)
        #expect(try await f.registry.functionVersion(id: f.functionID, version: 2)?.retries == 9)
        #expect(try await f.registry.functionVersion(id: f.functionID, version: 1)?.retries == 2)
    }

    static func pausesLookBack(_ f: RunStoreFixture) async throws {
        let lease = try await f.startedRun()
        let wait = Pause(
            runID: lease.runID, stepID: "w", kind: .wait, eventName: "shop/go", expression: nil, triggerEvent: [:], eventsAfter: f.eventID,
            expiresAt: f.t0.addingTimeInterval(60))
        #expect(try await f.store.park(lease, Parking(pauses: [(wait, Invocation.timeoutItem(lease.runID, "w", generation: lease.token))]), now: f.t0))
        // Stored at f.t0 by the caller's clock: due for a look-back by the reconciler after it.
        #expect(try await f.store.pausesToLookBack(createdBefore: f.t0, limit: 10).isEmpty)
        #expect(try await f.store.pausesToLookBack(createdBefore: f.t0.addingTimeInterval(1), limit: 10) == [wait])
        try await f.store.markLookedBack([wait])
        #expect(try await f.store.pausesToLookBack(createdBefore: f.t0.addingTimeInterval(1), limit: 10).isEmpty)
        // A pause with no lower bound needs none.
        let other = try await f.startedRun(entropy: 8)
        let invoke = Pause(
            runID: other.runID, stepID: "i", kind: .invoke, eventName: SystemEvents.finished, expression: nil, triggerEvent: [:], eventsAfter: nil,
            expiresAt: f.t0.addingTimeInterval(60))
        let invoked = f.event(Invocation.invokedEventName, entropy: 6)
        #expect(try await f.store.park(other, Parking(pauses: [(invoke, Invocation.timeoutItem(other.runID, "i", generation: other.token))], events: [invoked]), now: f.t0))
        #expect(try await f.store.pausesToLookBack(createdBefore: f.t0.addingTimeInterval(1), limit: 10).isEmpty)
        #expect(try await f.eventLog.event(id: invoked.id) != nil)
    }

    static func transportRecord(_ f: RunStoreFixture) async throws {
        #expect(try await f.store.recordedTransport() == nil)
        try await f.store.recordTransport(TransportIdentity(token: "a", serverID: "s1"))
        try await f.store.recordTransport(TransportIdentity(token: "b", serverID: "s2"))
        #expect(try await f.store.recordedTransport() == TransportIdentity(token: "b", serverID: "s2"))
    }
}

/// Ids handed to a delivery callback.
actor Delivered {
    var ids: [ULID] = []
    func add(_ more: [ULID]) { ids += more }
}
