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
    let events: any EventSink
    let index: any TimerIndex
    let effects: AdmissionEffects
    let planner: RunPlanner
    let stamper = EventStamper()
    let clock: any WallClock
    let logger: Logger
    let metrics: RunMetrics
    let batchSize = 500
    /// The live function versions the cron chains were last synced for, and when.
    private let synced = Mutex<(versions: [UUID: Int], at: Date)?>(nil)
    /// Chains are synced again at least this often, whatever the catalog says.
    let cronResync: TimeInterval = 60
    /// How long before its fire time a cron tick is committed: its run and event are written
    /// then, and its start waits in a timer for the fire time. A burst of crons on the same
    /// minute is written ahead, and on the tick only their start items are published, in one
    /// statement (docs/flow-control.md).
    public static let cronLead: TimeInterval = 1

    public init(
        store: any RunStore, catalog: FunctionCatalog, eventLog: any EventLog, work: any WorkQueue, events: any EventSink,
        index: any TimerIndex, clock: any WallClock, metrics: RunMetrics = RunMetrics(), logger: Logger
    ) {
        self.metrics = metrics
        self.store = store
        self.catalog = catalog
        self.eventLog = eventLog
        self.events = events
        self.index = index
        self.effects = AdmissionEffects(
            store: store, work: work, index: index, events: events,
            matcher: PauseMatcher(store: store, events: events, eventLog: eventLog, work: work, clock: clock, logger: logger))
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
        let singletons = metrics.counting(RunCancellation.emitter(now: now, stamper: stamper), now: now)
        let fired = try await store.fireDue(
            now: now, cronLead: Self.cronLead, limit: batchSize, plan: { [self] firing in try await plan(firing, now: now) },
            cancelling: singletons.emit)
        metrics.created(fired.started, now: now)
        singletons.report()
        try await effects.apply(fired, now: now)
        let timeouts = metrics.counting(RunCancellation.emitter(now: now, stamper: stamper), now: now)
        let cancelled = try await store.fireTimeouts(now: now, limit: batchSize, cancelling: timeouts.emit)
        timeouts.report()
        if !cancelled.isEmpty { await events.announce(cancelled) }
        if sweep { try await indexNextDeadline() }
        return fired.outcomes.count + cancelled.count
    }

    /// Puts the earliest flow deadline Postgres holds into the due index.
    func indexNextDeadline() async throws {
        if let next = try await store.nextFlowDue(cronLead: Self.cronLead) { try? await index.schedule([("flow:next", next)]) }
    }

    /// When `function`'s cron `schedule` fires `tick`: with its jitter, the same on every
    /// replica.
    static func fireTime(_ tick: Date, _ function: FunctionRecord, _ schedule: CronSchedule, jitter: ConfigDuration?) -> Date {
        CronSchedule.fireTime(tick: tick, jitter: jitter, seed: "\(function.id):\(schedule.text)")
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
            let fired = schedule.tickToFire(chain: tick, now: now.addingTimeInterval(Self.cronLead))
            if fired != tick {
                logger.warning(
                    "cron ticks were missed while nothing fired them; firing the most recent once",
                    metadata: ["function": "\(function.slug)", "cron": "\(expression)", "from": "\(tick)", "fired": "\(fired)"])
            }
            let arrival = planner.cronArrival(
                function, expression: expression, tick: fired, fireAt: Self.fireTime(fired, function, schedule, jitter: jitter),
                stamper: stamper, now: now)
            guard let next = schedule.next(after: fired) else { return FiringPlan(arrival: arrival) }
            return FiringPlan(arrival: arrival, next: (next, Self.fireTime(next, function, schedule, jitter: jitter)))
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
            chains.append(CronChain(
                functionID: function.id, expression: schedule.text, tick: tick, due: Self.fireTime(tick, function, schedule, jitter: jitter)))
        }
        try await store.syncCrons(chains)
        try await indexNextDeadline()
        synced.withLock { $0 = (versions, now) }
    }
}
