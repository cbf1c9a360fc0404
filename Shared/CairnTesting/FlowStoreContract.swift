public import CairnCore
public import CairnEngine
public import Foundation
import Synchronization
import Testing

/// What every `FlowStore` must do (docs/flow-control.md), held against the in-memory store and
/// the Postgres one with `RunStoreContract`.
public enum FlowStoreContract {
    public static let checks: [(name: String, run: @Sendable (RunStoreFixture) async throws -> Void)] = [
        ("admission: a run starts once per claim, a rate-limited one is skipped", admissionAndRateLimit),
        ("a singleton key is held until its run ends; skip points at the holder, cancel ends it", singletons),
        ("a throttle starts runs at its rate, in order, and drops none", throttles),
        ("a debounce keeps the last event, records the replaced ones, and fires once", debounces),
        ("a batch closes at its size or when due; an event joins once", batches),
        ("each cron tick fires once across concurrent schedulers; a chain ends with its trigger", cronTicksFireOnce),
        ("a cron tick fired ahead is written at once and starts on its time, from a timer", cronTickAhead),
        ("a start timeout cancels only a run not started; a finish timeout, one not ended", timeouts),
    ]

    static let never: @Sendable (CancelledRun) -> [AcceptedEvent] = { _ in [] }

    /// Stores an event `n` of `name` received at `at`; returns its id.
    static func storeEvent(_ f: RunStoreFixture, _ n: UInt8, name: String = "shop/e", at: Date) async throws -> ULID {
        let id = ULID(milliseconds: UInt64(at.unixMilliseconds), entropy: [UInt8](repeating: n, count: 10))
        let event = AcceptedEvent(
            id: id, name: name, dedupeKey: nil, ts: at.unixMilliseconds, payload: ["name": .string(name), "id": .string("e\(n)"), "data": [:]],
            receivedAt: at.unixMilliseconds)
        _ = try await f.eventLog.append([event], dedupeUntil: at, now: at)
        return id
    }

    /// An arrival of event `event` for the fixture's function, with a run id from `entropy`.
    static func arrival(_ f: RunStoreFixture, event: ULID, entropy: UInt8, at: Date, route: Arrival.Route = .start) -> Arrival {
        let run = NewRun(
            id: ULID(milliseconds: UInt64(at.unixMilliseconds), entropy: [UInt8](repeating: entropy, count: 10)), functionID: f.functionID,
            functionVersion: 1, eventIDs: [event], idempotencyKey: "event:\(event)", idempotentUntil: at.addingTimeInterval(86_400))
        return Arrival(run: run, route: route)
    }

    static func admissionAndRateLimit(_ f: RunStoreFixture) async throws {
        let t0 = f.t0
        let limit = RateLimitCheck(key: "k", gcra: GCRA(limit: 1, periodMilliseconds: 60_000, capacity: 1), reason: .rateLimited)
        var first = arrival(f, event: try await storeEvent(f, 2, at: t0), entropy: 20, at: t0)
        first.rateLimit = limit
        var second = arrival(f, event: try await storeEvent(f, 3, at: t0), entropy: 21, at: t0)
        second.rateLimit = limit
        let admitted = try await f.store.admit([first, second], now: t0, cancelling: never)
        #expect(admitted.outcomes == [.started(first.run.id), .skipped(.rateLimited, run: nil)])
        #expect(admitted.work == [WorkItem(runID: first.run.id, reason: .start, call: .discovery)])
        #expect(try await f.store.run(second.run.id)?.status == "Skipped")
        #expect(try await f.store.run(second.run.id)?.skipReason == "rate_limited")
        // Delivered again, neither is decided again (a refused event does not get through
        // later, an admitted one does not count twice).
        let again = try await f.store.admit([first, second], now: t0.addingTimeInterval(120), cancelling: never)
        #expect(again.outcomes == [.duplicate, .duplicate])
        // A minute later the limit admits one more.
        var third = arrival(f, event: try await storeEvent(f, 4, at: t0), entropy: 22, at: t0)
        third.rateLimit = limit
        #expect(try await f.store.admit([third], now: t0.addingTimeInterval(60), cancelling: never).outcomes == [.started(third.run.id)])
    }

    static func throttles(_ f: RunStoreFixture) async throws {
        let t0 = f.t0
        // 1 per 10 s, no burst.
        let check = ThrottleCheck(key: "k", gcra: .throttle(limit: 1, periodMilliseconds: 10_000, burst: 0))
        var arrivals: [Arrival] = []
        for n in UInt8(0)..<3 {
            var throttled = arrival(f, event: try await storeEvent(f, 70 + n, at: t0), entropy: 70 + n, at: t0)
            throttled.throttle = check
            arrivals.append(throttled)
        }
        let admitted = try await f.store.admit(arrivals, now: t0, cancelling: never)
        #expect(admitted.outcomes == arrivals.map { .started($0.run.id) })
        let items = arrivals.map { WorkItem(runID: $0.run.id, reason: .start, call: .discovery) }
        // The first starts now; the others wait 10 and 20 s, each in a timer.
        #expect(admitted.work == [items[0]])
        #expect(admitted.dues.map(\.id) == [items[1].entryID, items[2].entryID])
        #expect(admitted.dues.map(\.due) == [t0.addingTimeInterval(10), t0.addingTimeInterval(20)])
        #expect(try await f.store.fireDueTimers(now: t0.addingTimeInterval(9.9), limit: 10).isEmpty)
        #expect(try await f.store.fireDueTimers(now: t0.addingTimeInterval(10), limit: 10) == [items[1]])
        #expect(try await f.store.fireDueTimers(now: t0.addingTimeInterval(20), limit: 10) == [items[2]])
        // Once the backlog has drained, a run starts at once again.
        var later = arrival(f, event: try await storeEvent(f, 73, at: t0), entropy: 73, at: t0)
        later.throttle = check
        #expect(try await f.store.admit([later], now: t0.addingTimeInterval(60), cancelling: never).work.count == 1)
    }

    static func singletons(_ f: RunStoreFixture) async throws {
        let t0 = f.t0
        func singleton(_ n: UInt8, _ mode: Singleton.Mode) async throws -> Arrival {
            var next = arrival(f, event: try await storeEvent(f, n, at: t0), entropy: n, at: t0)
            next.singleton = SingletonCheck(key: "user-1", mode: mode)
            next.run.singletonKey = "user-1"
            return next
        }
        let holder = try await singleton(30, .skip)
        let skipped = try await singleton(31, .skip)
        #expect(try await f.store.admit([holder, skipped], now: t0, cancelling: never).outcomes
            == [.started(holder.run.id), .skipped(.singleton, run: holder.run.id)])
        #expect(try await f.store.run(skipped.run.id)?.skipRunID == holder.run.id)
        // Mode cancel ends the holder, with its events, and starts the new run.
        let replacing = try await singleton(32, .cancel)
        let cancelled = Mutex<[ULID]>([])
        let result = try await f.store.admit([replacing], now: t0, cancelling: { run in
            cancelled.withLock { $0.append(run.runID) }
            return []
        })
        #expect(result.outcomes == [.started(replacing.run.id)])
        #expect(cancelled.withLock { $0 } == [holder.run.id])
        #expect(try await f.store.run(holder.run.id)?.status == "Cancelled")
        // Once the holder ends, the key is free.
        let lease = try await f.lease(WorkItem(runID: replacing.run.id, reason: .start, call: .discovery), owner: "one")
        #expect(try await f.store.finish(lease, .completed(output: 1), steps: 0, emitting: [], now: t0) == .finished)
        let after = try await singleton(33, .skip)
        #expect(try await f.store.admit([after], now: t0, cancelling: never).outcomes == [.started(after.run.id)])
    }

    static func debounces(_ f: RunStoreFixture) async throws {
        let t0 = f.t0
        let period = try ConfigDuration(parsing: "10s")
        func debounced(_ n: UInt8, ts: Int64, at: Date) async throws -> Arrival {
            arrival(f, event: try await storeEvent(f, n, at: at), entropy: n, at: at, route: .debounce(DebounceEntry(
                key: "k", eventTS: ts, period: period, timeout: nil,
                replacedRunID: ULID(milliseconds: UInt64(at.unixMilliseconds), entropy: [UInt8](repeating: n &+ 100, count: 10)))))
        }
        let a = try await debounced(40, ts: 1_000, at: t0)
        let opened = try await f.store.admit([a], now: t0, cancelling: never)
        #expect(opened.outcomes == [.debounced(into: a.run.id)])
        #expect(opened.dues.map(\.due) == [t0.addingTimeInterval(10)])
        let b = try await debounced(41, ts: 2_000, at: t0.addingTimeInterval(5))
        let older = try await debounced(42, ts: 500, at: t0.addingTimeInterval(6))
        let moved = try await f.store.admit([b, older, b], now: t0.addingTimeInterval(6), cancelling: never)
        #expect(moved.outcomes == [.debounced(into: a.run.id), .skipped(.debounced, run: a.run.id), .duplicate])
        #expect(try await f.store.nextFlowDue(cronLead: 0) == t0.addingTimeInterval(16))
        // The replaced event is recorded skipped, pointing at the run to come.
        #expect(try await f.store.runs(eventID: a.run.eventIDs[0]).map(\.skipRunID) == [a.run.id])
        let planned = Mutex<[Firing]>([])
        let plan: @Sendable (Firing) async throws -> FiringPlan = { firing in
            planned.withLock { $0.append(firing) }
            guard case .debounce(_, let runID, let eventID, let key) = firing else { return FiringPlan(arrival: nil) }
            var run = arrival(f, event: eventID, entropy: 0, at: t0).run
            run.id = runID
            run.idempotencyKey = key
            return FiringPlan(arrival: Arrival(run: run))
        }
        #expect(try await f.store.fireDue(now: t0.addingTimeInterval(15.9), cronLead: 0, limit: 10, plan: plan, cancelling: never).outcomes.isEmpty)
        let fired = try await f.store.fireDue(now: t0.addingTimeInterval(16), cronLead: 0, limit: 10, plan: plan, cancelling: never)
        #expect(fired.outcomes == [.started(a.run.id)])
        #expect(planned.withLock { $0 } == [.debounce(functionID: f.functionID, runID: a.run.id, eventID: b.run.eventIDs[0], eventKey: b.run.idempotencyKey)])
        #expect(try await f.store.fireDue(now: t0.addingTimeInterval(30), cronLead: 0, limit: 10, plan: plan, cancelling: never).outcomes.isEmpty)
        // The event that started it, delivered again, is a duplicate.
        #expect(try await f.store.admit([b], now: t0.addingTimeInterval(31), cancelling: never).outcomes == [.duplicate])
    }

    static func batches(_ f: RunStoreFixture) async throws {
        let t0 = f.t0
        let timeout = try ConfigDuration(parsing: "10s")
        func batched(_ n: UInt8) async throws -> Arrival {
            arrival(f, event: try await storeEvent(f, n, at: t0), entropy: n, at: t0, route: .batch(BatchEntry(
                key: "k", maxSize: 2, timeout: timeout, bytes: 10, batchID: "batch-\(n)")))
        }
        let (a, b, c) = (try await batched(50), try await batched(51), try await batched(52))
        let result = try await f.store.admit([a, a, b, c], now: t0, cancelling: never)
        #expect(result.outcomes == [
            .batched(batch: "batch-50", started: nil), .duplicate, .batched(batch: "batch-50", started: a.run.id),
            .batched(batch: "batch-52", started: nil),
        ])
        let full = try #require(try await f.store.run(a.run.id))
        #expect(full.batchID == "batch-50")
        #expect(try await f.store.snapshot(a.run.id).events.map { $0["id"] } == ["e50", "e51"])
        #expect(try await f.store.runs(eventID: b.run.eventIDs[0]).map(\.id) == [a.run.id])
        let noPlan: @Sendable (Firing) async throws -> FiringPlan = { _ in FiringPlan(arrival: nil) }
        #expect(try await f.store.fireDue(now: t0.addingTimeInterval(9), cronLead: 0, limit: 10, plan: noPlan, cancelling: never).outcomes.isEmpty)
        let fired = try await f.store.fireDue(now: t0.addingTimeInterval(10), cronLead: 0, limit: 10, plan: noPlan, cancelling: never)
        #expect(fired.outcomes == [.batched(batch: "batch-52", started: c.run.id)])
        #expect(fired.work == [WorkItem(runID: c.run.id, reason: .start, call: .discovery)])
        #expect(try await f.store.admit([c], now: t0.addingTimeInterval(11), cancelling: never).outcomes == [.duplicate])
    }

    /// Syncs the app `clock` with one every-minute cron function, `clock-<slug>`; returns the
    /// function and the app's registration body.
    static func syncCron(_ f: RunStoreFixture, slug: String) async throws -> (FunctionRecord, String) {
        let body = """
            {"appname":"clock","url":"http://127.0.0.1:9/api/inngest","sdk":"py:v0.5.19","functions":[
             {"id":"clock-\(slug)","name":"\(slug)","triggers":[{"cron":"* * * * *"}],
              "steps":{"step":{"id":"step","name":"step","runtime":{"type":"http","url":"http://127.0.0.1:9/api/inngest?fnId=clock-\(slug)&stepId=step"}}}}]}
            """
        _ = try await f.registry.sync(try AppRegistration(parsing: try JSONValue(parsing: body)), at: f.t0)
        return (try #require(try await f.registry.liveFunctions().first { $0.slug == "clock-\(slug)" }), body)
    }

    static func cronTicksFireOnce(_ f: RunStoreFixture) async throws {
        let t0 = f.t0
        let (function, body) = try await syncCron(f, slug: "tick")
        let start = Date(timeIntervalSince1970: (t0.timeIntervalSince1970 / 60).rounded(.down) * 60 + 60)
        let chain = CronChain(functionID: function.id, expression: "* * * * *", tick: start, due: start)
        try await f.store.syncCrons([chain])
        try await f.store.syncCrons([chain])
        let plan: @Sendable (Firing) async throws -> FiringPlan = { firing in
            guard case .cron(let id, _, let tick) = firing else { return FiringPlan(arrival: nil) }
            let eventID = ULID(milliseconds: UInt64(tick.unixMilliseconds), entropy: [UInt8](repeating: 9, count: 10))
            let event = AcceptedEvent(
                id: eventID, name: SystemEvents.scheduledTimer, dedupeKey: nil, ts: tick.unixMilliseconds,
                payload: ["name": .string(SystemEvents.scheduledTimer), "data": [:]], receivedAt: tick.unixMilliseconds)
            var arrival = Arrival(run: NewRun(
                id: ULID(milliseconds: UInt64(tick.unixMilliseconds), entropy: [UInt8](repeating: 8, count: 10)), functionID: id,
                functionVersion: function.version, eventIDs: [eventID], idempotencyKey: "cron:\(tick.unixMilliseconds)",
                idempotentUntil: tick.addingTimeInterval(86_400)))
            arrival.events = [event]
            let next = tick.addingTimeInterval(60)
            return FiringPlan(arrival: arrival, next: (next, next))
        }
        // Three schedulers fire each of 100 ticks at once: 100 runs.
        var started: [ULID] = []
        for minute in 0..<100 {
            let now = start.addingTimeInterval(Double(minute) * 60)
            let results = try await withThrowingTaskGroup(of: AdmissionResult.self) { group in
                for _ in 0..<3 { group.addTask { try await f.store.fireDue(now: now, cronLead: 0, limit: 10, plan: plan, cancelling: never) } }
                var all: [AdmissionResult] = []
                for try await result in group { all.append(result) }
                return all
            }
            for result in results { started += result.started.map(\.id) }
        }
        #expect(started.count == 100)
        #expect(Set(started).count == 100)
        // A sync that drops the trigger ends the chain.
        let without = body.replacingOccurrences(of: #"{"cron":"* * * * *"}"#, with: #"{"event":"clock/never"}"#)
        _ = try await f.registry.sync(try AppRegistration(parsing: try JSONValue(parsing: without)), at: t0)
        try await f.store.syncCrons([])
        let late = start.addingTimeInterval(100 * 60)
        #expect(try await f.store.fireDue(now: late, cronLead: 0, limit: 10, plan: plan, cancelling: never).started.isEmpty)
    }

    static func cronTickAhead(_ f: RunStoreFixture) async throws {
        let t0 = f.t0
        let (function, _) = try await syncCron(f, slug: "ahead")
        let tick = Date(timeIntervalSince1970: (t0.timeIntervalSince1970 / 60).rounded(.down) * 60 + 60)
        try await f.store.syncCrons([CronChain(functionID: function.id, expression: "* * * * *", tick: tick, due: tick)])
        let runID = ULID(milliseconds: UInt64(tick.unixMilliseconds), entropy: [UInt8](repeating: 7, count: 10))
        let plan: @Sendable (Firing) async throws -> FiringPlan = { _ in
            let eventID = ULID(milliseconds: UInt64(tick.unixMilliseconds), entropy: [UInt8](repeating: 6, count: 10))
            var arrival = Arrival(run: NewRun(
                id: runID, functionID: function.id, functionVersion: function.version, eventIDs: [eventID],
                idempotencyKey: "cron:\(tick.unixMilliseconds)", idempotentUntil: tick.addingTimeInterval(86_400)))
            arrival.run.notBefore = tick
            arrival.events = [AcceptedEvent(
                id: eventID, name: SystemEvents.scheduledTimer, dedupeKey: nil, ts: tick.unixMilliseconds,
                payload: ["name": .string(SystemEvents.scheduledTimer), "data": [:]], receivedAt: tick.unixMilliseconds)]
            return FiringPlan(arrival: arrival, next: (tick.addingTimeInterval(60), tick.addingTimeInterval(60)))
        }
        // Not yet within the lead; the scheduler is told to wake a lead before the tick.
        #expect(try await f.store.fireDue(now: tick.addingTimeInterval(-2), cronLead: 1, limit: 10, plan: plan, cancelling: never).started.isEmpty)
        #expect(try await f.store.nextFlowDue(cronLead: 1) == tick.addingTimeInterval(-1))
        // Within it: the run and its event are written, its start waits for the tick.
        let fired = try await f.store.fireDue(now: tick.addingTimeInterval(-0.5), cronLead: 1, limit: 10, plan: plan, cancelling: never)
        let start = WorkItem(runID: runID, reason: .start, call: .discovery)
        #expect(fired.started.map(\.id) == [runID])
        #expect(fired.work.isEmpty)
        #expect(fired.dues.contains { $0.id == start.entryID && $0.due == tick })
        #expect(fired.dues.contains { $0.id.hasPrefix("cron:") && $0.due == tick.addingTimeInterval(59) })
        #expect(try await f.store.run(runID)?.status == "Queued")
        #expect(try await f.store.recoverStranded(limit: 10).isEmpty)
        #expect(try await f.store.fireDueTimers(now: tick.addingTimeInterval(-0.1), limit: 10).isEmpty)
        #expect(try await f.store.fireDueTimers(now: tick, limit: 10) == [start])
        _ = try await f.lease(start, owner: "one")
    }

    static func timeouts(_ f: RunStoreFixture) async throws {
        let t0 = f.t0
        let cancelled = Mutex<[ULID]>([])
        let record: @Sendable (CancelledRun) -> [AcceptedEvent] = { run in
            cancelled.withLock { $0.append(run.runID) }
            return []
        }
        // Started in time: its start timeout does nothing.
        var started = arrival(f, event: try await storeEvent(f, 60, at: t0), entropy: 60, at: t0)
        started.run.startTimeout = t0.addingTimeInterval(10)
        var late = arrival(f, event: try await storeEvent(f, 61, at: t0), entropy: 61, at: t0)
        late.run.startTimeout = t0.addingTimeInterval(10)
        let result = try await f.store.admit([started, late], now: t0, cancelling: never)
        #expect(Set(result.dues.map(\.due)) == [t0.addingTimeInterval(10)])
        let lease = try await f.lease(WorkItem(runID: started.run.id, reason: .start, call: .discovery), owner: "one")
        #expect(try await f.store.fireTimeouts(now: t0.addingTimeInterval(9), limit: 10, cancelling: record).isEmpty)
        _ = try await f.store.fireTimeouts(now: t0.addingTimeInterval(10), limit: 10, cancelling: record)
        #expect(cancelled.withLock { $0 } == [late.run.id])
        #expect(try await f.store.run(started.run.id)?.status == "Running")
        #expect(try await f.store.run(late.run.id)?.status == "Cancelled")
        // The finish timeout counts from the first request (by the store's clock) and cancels a
        // run still going.
        let due = try #require(try await f.store.armFinishTimeout(lease, finish: try ConfigDuration(parsing: "1h")))
        #expect(try await f.store.armFinishTimeout(lease, finish: try ConfigDuration(parsing: "1h")) == nil, "armed once")
        _ = try await f.store.fireTimeouts(now: due.addingTimeInterval(-1), limit: 10, cancelling: record)
        #expect(cancelled.withLock { $0 }.count == 1)
        _ = try await f.store.fireTimeouts(now: due, limit: 10, cancelling: record)
        #expect(cancelled.withLock { $0 } == [late.run.id, started.run.id])
        #expect(try await f.store.run(started.run.id)?.status == "Cancelled")
        #expect(try await f.store.fireTimeouts(now: due.addingTimeInterval(60), limit: 10, cancelling: record).isEmpty)
    }
}
