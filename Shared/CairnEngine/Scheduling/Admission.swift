public import CairnCore
public import Foundation

// How an event becomes a run, or does not (docs/flow-control.md). The router and the flow
// scheduler describe each (function, event) as an `Arrival`; the store admits arrivals in one
// transaction, applying rate limits, singletons, debounces and batches against the state it
// holds, and records every event that starts no run as a `Skipped` run with its reason.

/// Why an event started no run of a function.
public enum SkipReason: String, Sendable, Hashable {
    /// The function's `rateLimit` refused it.
    case rateLimited = "rate_limited"
    /// The function's `idempotency` key already started a run within 24 hours.
    case idempotent
    /// A later event of the same debounce replaced it; `skip_run_id` is the run that took the
    /// debounce.
    case debounced
    /// The function's singleton key was held (mode `skip`); `skip_run_id` is the holder.
    case singleton
    /// The function was paused (docs/operations.md); resuming it can replay these.
    case paused
}

/// A (function, event) the store admits: the run to start, and what it must pass first.
public struct Arrival: Sendable {
    /// The run, with its id chosen: a debounce or batch opened by this arrival starts it later
    /// under this id. Its `idempotencyKey` is the event's claim (`event:<id>`).
    public var run: NewRun
    /// Where the event goes.
    public var route: Route
    /// A lossy rate limit (or `idempotency`): refused events are skipped.
    public var rateLimit: RateLimitCheck?
    /// At most one unfinished run per key.
    public var singleton: SingletonCheck?
    /// Run starts spaced by a GCRA on the key: a run beyond it waits (`NewRun.notBefore`),
    /// and is never dropped.
    public var throttle: ThrottleCheck?
    /// Events stored with the run (a cron tick's event).
    public var events: [AcceptedEvent] = []
    /// The function is paused: the arrival is recorded as a `Skipped` run (`paused`), whatever
    /// its route.
    public var paused = false

    public enum Route: Sendable {
        /// Start the run now.
        case start
        /// Hold the event in the function's debounce for its key.
        case debounce(DebounceEntry)
        /// Add the event to the function's open batch for its key.
        case batch(BatchEntry)
    }

    public init(run: NewRun, route: Route = .start, rateLimit: RateLimitCheck? = nil, singleton: SingletonCheck? = nil) {
        self.run = run
        self.route = route
        self.rateLimit = rateLimit
        self.singleton = singleton
    }
}

public struct RateLimitCheck: Sendable, Hashable {
    public var key: String
    public var gcra: GCRA
    /// `.rateLimited`, or `.idempotent` for the `idempotency` option.
    public var reason: SkipReason

    public init(key: String, gcra: GCRA, reason: SkipReason) {
        self.key = key
        self.gcra = gcra
        self.reason = reason
    }
}

public struct ThrottleCheck: Sendable, Hashable {
    /// The key's digest; its GCRA state is stored under `throttle:<key>`.
    public var key: String
    public var gcra: GCRA

    public init(key: String, gcra: GCRA) {
        self.key = key
        self.gcra = gcra
    }

    /// Where the key's state is kept, beside the function's rate limits.
    public var stateKey: String { "throttle:" + key }

    /// Places `run` on the key whose state is `tat` (microseconds): when it must wait, sets
    /// its `notBefore` to its slot. Returns the state to store once the run is created.
    public func place(_ run: inout NewRun, tat: Int64?, now: Date) -> Int64 {
        let (start, next) = gcra.schedule(tat: tat, now: now.unixMicroseconds)
        if start > now.unixMicroseconds { run.notBefore = max(run.notBefore ?? now, Date(unixMicroseconds: start)) }
        return next
    }
}

public struct SingletonCheck: Sendable, Hashable {
    public var key: String
    public var mode: Singleton.Mode

    public init(key: String, mode: Singleton.Mode) {
        self.key = key
        self.mode = mode
    }
}

public struct DebounceEntry: Sendable, Hashable {
    public var key: String
    /// The event's `ts` (ms): an event older than the one held is not taken.
    public var eventTS: Int64
    public var period: ConfigDuration
    public var timeout: ConfigDuration?
    /// The id of the skipped run recorded for the event this one replaces, if it does.
    public var replacedRunID: ULID

    public init(key: String, eventTS: Int64, period: ConfigDuration, timeout: ConfigDuration?, replacedRunID: ULID) {
        self.key = key
        self.eventTS = eventTS
        self.period = period
        self.timeout = timeout
        self.replacedRunID = replacedRunID
    }
}

public struct BatchEntry: Sendable, Hashable {
    public var key: String
    public var maxSize: Int
    public var timeout: ConfigDuration
    /// The event's payload size, toward the batch's 10 MiB.
    public var bytes: Int
    /// The id the batch gets if this event opens one.
    public var batchID: String

    public init(key: String, maxSize: Int, timeout: ConfigDuration, bytes: Int, batchID: String) {
        self.key = key
        self.maxSize = maxSize
        self.timeout = timeout
        self.bytes = bytes
        self.batchID = batchID
    }
}

/// What the store made of one arrival.
public enum Admission: Sendable, Hashable {
    /// The run was created with its start item.
    case started(ULID)
    /// The run was recorded Skipped; `run` is the run the reason points at, if any.
    case skipped(SkipReason, run: ULID?)
    /// The event is held by a debounce whose run will have this id.
    case debounced(into: ULID)
    /// The event joined a batch; `started` is the batch's run when it closed now.
    case batched(batch: String, started: ULID?)
    /// The event was handled before (a redelivery): nothing changed.
    case duplicate
}

/// What a store call that admits runs leaves for its caller to do once it has committed.
public struct AdmissionResult: Sendable {
    /// One per arrival, in order (firings: one per run started or skipped).
    public var outcomes: [Admission] = []
    /// The runs created, with what their pauses must look back over.
    public var started: [NewRun] = []
    /// Work to publish.
    public var work: [WorkItem] = []
    /// Events stored unpublished, to announce (runs a singleton cancelled; cron ticks).
    public var events: [AcceptedEvent] = []
    /// Flow deadlines written (debounces, batches, crons, timeouts), for the due index.
    public var dues: [(id: String, due: Date)] = []

    public init() {}

    /// Records what follows `run`'s creation: its start work, or the index entry of the timer
    /// it waits on (`notBefore`).
    public mutating func queue(_ run: NewRun, now: Date) {
        let item = WorkItem(runID: run.id, reason: .start, call: .discovery)
        if let notBefore = run.notBefore, notBefore > now {
            dues.append((item.entryID, notBefore))
        } else {
            work.append(item)
        }
    }

    public mutating func merge(_ other: AdmissionResult) {
        outcomes += other.outcomes
        started += other.started
        work += other.work
        events += other.events
        dues += other.dues
    }
}

/// A flow deadline that came: what the store asks its caller to turn into an arrival.
public enum Firing: Sendable, Hashable {
    /// A debounce's period ended: start its run (`runID`) with the event it holds.
    case debounce(functionID: UUID, runID: ULID, eventID: ULID, eventKey: String)
    /// A cron chain's tick is due.
    case cron(functionID: UUID, expression: String, tick: Date)
}

/// The caller's answer to a firing.
public struct FiringPlan: Sendable {
    /// The run to admit; nil when there is none (the function or its cron trigger is gone,
    /// and a cron chain then ends).
    public var arrival: Arrival?
    /// A cron chain's next tick and when it fires.
    public var next: (tick: Date, due: Date)?

    public init(arrival: Arrival?, next: (tick: Date, due: Date)? = nil) {
        self.arrival = arrival
        self.next = next
    }
}

/// A live cron trigger: the chain the store keeps for it.
public struct CronChain: Sendable, Hashable {
    public var functionID: UUID
    public var expression: String
    /// The first tick, for a chain that does not exist yet.
    public var tick: Date
    public var due: Date

    public init(functionID: UUID, expression: String, tick: Date, due: Date) {
        self.functionID = functionID
        self.expression = expression
        self.tick = tick
        self.due = due
    }
}

/// Flow-control state: admissions, debounces, batches, cron chains and timeouts.
public protocol FlowStore: Sendable {
    /// Admits `arrivals` in one transaction (see `Arrival`). A singleton in mode `cancel`
    /// cancels its holder in the same transaction, storing what `cancelling` makes of it.
    func admit(_ arrivals: [Arrival], now: Date, cancelling: @escaping @Sendable (CancelledRun) -> [AcceptedEvent]) async throws
        -> AdmissionResult

    /// Fires what is due at `now`, at most `limit` of each kind, across replicas once each:
    /// batches past their timeout start their runs; debounces past their period, and cron
    /// ticks due within `cronLead` of now, are handed to `plan` and its arrivals admitted, in
    /// the same transaction as the firing. A chain's next tick is indexed `cronLead` early.
    func fireDue(
        now: Date, cronLead: TimeInterval, limit: Int, plan: @escaping @Sendable (Firing) async throws -> FiringPlan,
        cancelling: @escaping @Sendable (CancelledRun) -> [AcceptedEvent]
    ) async throws -> AdmissionResult

    /// Cancels the runs whose start or finish timeout is due (each once), storing what
    /// `cancelling` makes of each; returns those events.
    func fireTimeouts(now: Date, limit: Int, cancelling: @escaping @Sendable (CancelledRun) -> [AcceptedEvent]) async throws
        -> [AcceptedEvent]

    /// Sets the finish timeout of the run `lease` drives: `finish` after its first request
    /// started (once; later calls change nothing). Returns when it is due.
    func armFinishTimeout(_ lease: RunLease, finish: ConfigDuration) async throws -> Date?

    /// Adds the chains that do not exist yet (one per function and expression); removes the
    /// chains of functions or cron triggers no longer live.
    func syncCrons(_ chains: [CronChain]) async throws

    /// The earliest flow deadline held (debounce, batch, cron `cronLead` early, timeout), if
    /// any.
    func nextFlowDue(cronLead: TimeInterval) async throws -> Date?
}

/// What follows a committed admission or firing, the same for the router and the flow
/// scheduler: its work published, its deadlines indexed, the events it stored (cancellations,
/// cron ticks) announced, and the pauses of the runs it started looking back (a cancelOn event
/// routed while they were being created was matched against no pause of theirs).
struct AdmissionEffects: Sendable {
    let store: any RunStore
    let work: any WorkQueue
    let index: any TimerIndex
    let events: any EventSink
    let matcher: PauseMatcher

    /// Carries out `admitted`'s effects, publishing `more` work with its own.
    func apply(_ admitted: AdmissionResult, now: Date, more: [WorkItem] = []) async throws {
        try await store.publish(admitted.work + more, on: work, now: now)
        // A lost index entry only delays a deadline to the next sweep.
        if !admitted.dues.isEmpty { try? await index.schedule(admitted.dues) }
        if !admitted.events.isEmpty { await events.announce(admitted.events) }
        try await matcher.lookBack(admitted.started.flatMap(\.pauses))
    }
}
