public import CairnCore
public import Foundation
public import Logging
import Synchronization

/// The time-driven half of flow control, run by the timer service on each pass
/// (docs/flow-control.md): it keeps a cron chain per live cron trigger, and fires what is due:
/// batches past their timeout, debounces past their period, cron ticks, and start and finish
/// timeouts. Each firing commits with the runs it starts (outbox); their work is published,
/// their deadlines indexed and their events announced after the commit.
public final class FlowScheduler: Sendable {
    let store: any RunStore
    let catalog: FunctionCatalog
    let eventLog: any EventLog
    let work: any WorkQueue
    let events: any EventSink
    let index: any TimerIndex
    let matcher: PauseMatcher
    let planner: RunPlanner
    let stamper = EventStamper()
    let clock: any WallClock
    let logger: Logger
    let batchSize = 500
    /// The live function versions the cron chains were last synced for, and when.
    private let synced = Mutex<(versions: [UUID: Int], at: Date)?>(nil)
    /// Chains are synced again at least this often, whatever the catalog says.
    let cronResync: TimeInterval = 60

    public init(
        store: any RunStore, catalog: FunctionCatalog, eventLog: any EventLog, work: any WorkQueue, events: any EventSink,
        index: any TimerIndex, clock: any WallClock, logger: Logger
    ) {
        self.store = store
        self.catalog = catalog
        self.eventLog = eventLog
        self.work = work
        self.events = events
        self.index = index
        self.matcher = PauseMatcher(store: store, events: events, eventLog: eventLog, work: work, clock: clock, logger: logger)
        self.planner = RunPlanner()
        self.clock = clock
        self.logger = logger
    }

    /// Fires what is due now; returns how many runs were started, skipped or cancelled. On a
    /// `sweep`, the earliest deadline held is also put in the due index (which a `FLUSHALL`
    /// may have emptied).
    public func fireDue(sweep: Bool = false) async throws -> Int {
        let now = clock.now
        try await syncCrons(now: now)
        let cancelling = RunCancellation.emitter(now: now, stamper: stamper)
        let fired = try await store.fireDue(now: now, limit: batchSize, plan: { [self] firing in try await plan(firing, now: now) }, cancelling: cancelling)
        try await store.publish(fired.work, on: work, now: now)
        if !fired.dues.isEmpty { try? await index.schedule(fired.dues) }
        if !fired.events.isEmpty { await events.announce(fired.events) }
        try await matcher.lookBack(fired.started.flatMap(\.pauses))
        let cancelled = try await store.fireTimeouts(now: now, limit: batchSize, cancelling: cancelling)
        if !cancelled.isEmpty { await events.announce(cancelled) }
        if sweep, let next = try await store.nextFlowDue() { try? await index.schedule([("flow:next", next)]) }
        return fired.outcomes.count + cancelled.count
    }

    /// What a firing starts: a debounce's run with the event it holds, on the function's live
    /// config; a cron tick's run, and the chain's next tick.
    func plan(_ firing: Firing, now: Date) async throws -> FiringPlan {
        switch firing {
        case .debounce(let functionID, let runID, let eventID, let eventKey):
            guard let function = try await catalog.function(id: functionID) else {
                logger.notice("a debounce fired for a function no longer live; it starts nothing", metadata: ["function": "\(functionID)"])
                return FiringPlan(arrival: nil)
            }
            guard let event = try await eventLog.event(id: eventID) else {
                logger.error("a debounce holds an event that is not stored", metadata: ["event": "\(eventID)"])
                return FiringPlan(arrival: nil)
            }
            return FiringPlan(arrival: planner.arrival(
                function, event: event.payload, eventID: eventID, key: eventKey, now: now, runID: runID, flowControl: false))
        case .cron(let functionID, let expression, let tick):
            guard let function = try await catalog.function(id: functionID),
                let (schedule, jitter) = Self.cron(function, expression)
            else { return FiringPlan(arrival: nil) }
            let fired = schedule.tickToFire(chain: tick, now: now)
            if fired != tick {
                logger.warning(
                    "cron ticks were missed while nothing fired them; firing the most recent once",
                    metadata: ["function": "\(function.slug)", "cron": "\(expression)", "from": "\(tick)", "fired": "\(fired)"])
            }
            let seed = "\(functionID):\(expression)"
            let arrival = planner.cronArrival(
                function, expression: expression, tick: fired, fireAt: CronSchedule.fireTime(tick: fired, jitter: jitter, seed: seed),
                stamper: stamper, now: now)
            guard let next = schedule.next(after: fired) else { return FiringPlan(arrival: arrival) }
            return FiringPlan(arrival: arrival, next: (next, CronSchedule.fireTime(tick: next, jitter: jitter, seed: seed)))
        }
    }

    /// The schedule and jitter of `function`'s cron trigger written `expression`.
    static func cron(_ function: FunctionRecord, _ expression: String) -> (CronSchedule, ConfigDuration?)? {
        for trigger in function.config.triggers {
            if case .cron(let schedule, let jitter) = trigger, schedule.text == expression { return (schedule, jitter) }
        }
        return nil
    }

    /// Gives every live cron trigger its chain (first tick: the next after now), and ends the
    /// chains of triggers no longer live, when the live functions changed or a minute passed.
    func syncCrons(now: Date) async throws {
        let versions = try await catalog.liveVersions()
        let due = synced.withLock { state in
            guard let state else { return true }
            return state.versions != versions || now.timeIntervalSince(state.at) >= cronResync || now < state.at
        }
        guard due else { return }
        var chains: [CronChain] = []
        for (function, schedule, jitter) in try await catalog.cronTriggers() {
            guard let tick = schedule.next(after: now) else { continue }
            let fireAt = CronSchedule.fireTime(tick: tick, jitter: jitter, seed: "\(function.id):\(schedule.text)")
            chains.append(CronChain(functionID: function.id, expression: schedule.text, tick: tick, due: fireAt))
        }
        try await store.syncCrons(chains)
        if let next = try await store.nextFlowDue() { try? await index.schedule([("flow:next", next)]) }
        synced.withLock { $0 = (versions, now) }
    }
}
