public import CairnCore
public import Foundation

// The run store, split by what each part owns. Postgres implements all four on one database
// (so a write that spans two parts is one transaction); CairnTesting's `InMemoryRunStore`
// implements them with the same rules, and `RunStoreContract` holds both to them.
//
// The invariant every write keeps (docs/durability.md): a run that has not ended always has
// something that will advance it: a live lease, an unfired timer, an open wait or invoke
// pause, or a work item in the outbox. Writes that move a run from one of these to another do
// so in one transaction.

/// Runs, their leases and their step logs.
///
/// Every write made under a lease is conditioned on its token, with the run's row locked
/// against a concurrent takeover: a stale holder changes nothing and learns so from the
/// answer. Lease expiry is judged by the store's clock (the database's), not the caller's.
public protocol RunLog: Sendable {
    /// Creates each run whose (function, idempotency key) is free, with its pauses and its
    /// `start` work item in the outbox, in one transaction. Returns the ids of the runs created.
    func createRuns(_ runs: [NewRun], now: Date) async throws -> [ULID]

    /// Grants a lease for `duration` to drive `item`, if the item is live (its outbox row
    /// exists), the run has not ended, and no other owner holds a live lease.
    func lease(_ item: WorkItem, owner: String, duration: Duration) async throws -> LeaseOutcome

    /// Extends a lease by `duration` from now; false when it was lost.
    func renew(_ lease: RunLease, duration: Duration) async throws -> Bool

    /// Whether `item` is still to be driven: its run has not ended and its outbox row is
    /// there. Changes nothing. A drive that lost its lease asks, to tell a delivery worth
    /// repeating from one a cancel or a takeover has already made moot.
    func isLive(_ item: WorkItem) async throws -> Bool

    /// The run's function (the version it started with), events and recorded steps.
    func snapshot(_ runID: ULID) async throws -> RunSnapshot

    /// Records a step's memo value, first write wins, only at the position right after the
    /// steps already recorded (`step.position` of them).
    ///
    /// The step insert is the one write not committed in its own transaction (it is the hot
    /// path): the database may report it done before its commit, which a crash can still undo.
    /// Holding every later write to the count of steps its writer recorded finds such a loss
    /// at the next write (`.stepsChanged`) instead of leaving a gap in the log.
    func recordStep(_ lease: RunLease, _ step: StepRecord, now: Date) async throws -> RecordOutcome

    /// Clears the parallel group's pending steps (all done); false when the lease was lost.
    func clearPending(_ lease: RunLease) async throws -> Bool

    /// Ends the drive without changing the run: gives the lease up and retires its item.
    /// False when the lease was lost.
    func release(_ lease: RunLease, now: Date) async throws -> Bool

    /// `release`, for a drive that found its parallel group still waiting for members: only
    /// while the run's log holds exactly `steps` steps. A member recorded by someone else (a
    /// wait matched, an invoke ended) after the drive read the run had its resume refused
    /// while the drive held the lease; `.stepsChanged` then keeps the lease, and the drive
    /// reloads and goes on with the group rather than leave the run to that resume's
    /// redelivery.
    func releaseGroup(_ lease: RunLease, steps: Int, now: Date) async throws -> ReleaseOutcome

    /// Hands the run back until what it waits for comes, in one transaction: the timers (each
    /// item due at its date), the pauses with their timeout timers (due at the pause's expiry),
    /// the events stored unpublished (an invoke's trigger, so the callee starts only once its
    /// caller's pause exists), the group's pending steps when given, the failed attempts in the
    /// run's history, the lease released and its item retired. False, with nothing written,
    /// when the lease was lost.
    ///
    /// - Throws: when a timer or pause id is already taken (then nothing was written): a timer
    ///   that was not inserted must never count as scheduled.
    func park(_ lease: RunLease, _ parking: Parking, now: Date) async throws -> Bool

    /// Ends the run, in one transaction committed before it returns: its status and result,
    /// its lease, its outbox items, timers and pauses retired, `failedAttempts` (oldest first)
    /// in its history, and `events` (its system events) stored unpublished for the caller to
    /// announce; only if the run holds exactly `steps` recorded steps.
    func finish(
        _ lease: RunLease, _ end: RunEnd, steps: Int, failedAttempts: [RunRecord.FailedAttempt], emitting events: [AcceptedEvent], now: Date
    ) async throws -> FinishOutcome

    /// Cancels an unfinished run in one transaction: ends it, revokes any lease (the token
    /// moves on), consumes its pauses, disarms its timers, retires its outbox items, and stores
    /// the events `emitting` makes from it, unpublished. Returns those events for the caller
    /// to announce; nil when the run had already ended (or does not exist).
    func cancel(_ runID: ULID, now: Date, emitting: @escaping @Sendable (CancelledRun) -> [AcceptedEvent]) async throws -> [AcceptedEvent]?
}

extension RunLog {
    /// Ends the run with no failed attempt to keep (see `finish(_:_:steps:failedAttempts:emitting:now:)`).
    public func finish(_ lease: RunLease, _ end: RunEnd, steps: Int, emitting events: [AcceptedEvent], now: Date) async throws -> FinishOutcome {
        try await finish(lease, end, steps: steps, failedAttempts: [], emitting: events, now: now)
    }
}

/// Durable timers: sleeps, retry backoffs and pause timeouts, set by `RunLog.park`. A timer's
/// id is its work item's entry id, so it is unique per wait.
public protocol TimerStore: Sendable {
    /// Fires timers due at `now` (each once, across replicas): their work items move to the
    /// outbox. Returns the items, at most `limit`.
    func fireDueTimers(now: Date, limit: Int) async throws -> [WorkItem]

    /// Unfired timers with ids after `after`, in id order, at most `limit`: what the due index
    /// is rebuilt from.
    func unfiredTimers(after: String?, limit: Int) async throws -> [(id: String, due: Date)]
}

/// Pauses: runs waiting for an event (set by `RunLog.park`), and runs an event cancels (set
/// with the run).
public protocol PauseStore: Sendable {
    /// A page of the open pauses for events named `eventName`: at most `limit`, in id order,
    /// with ids after `after` (from the start when nil).
    func openPauses(eventName: String, now: Date, after: String?, limit: Int) async throws -> [Pause]

    /// Consumes `pause` for `eventID` (once; false if already consumed) and, in the same
    /// transaction, records `result` for its step, disarms its timeout (retiring its work item
    /// if it has fired, so that only `resume` drives the run) and puts `resume` in the outbox.
    func resume(_ pause: Pause, eventID: ULID, result: JSONValue, resume: WorkItem, now: Date) async throws -> Bool

    /// Times out the run's wait or invoke pause at `stepID`, in one transaction under the
    /// lease: consumes the pause and records the step `timeoutStep` makes for its kind, at
    /// `position`. A pause this timeout already consumed (its drive died after the commit)
    /// answers `.timedOut` with the step recorded then.
    func timeOutPause(
        _ lease: RunLease, stepID: String, position: Int, now: Date, timeoutStep: @escaping @Sendable (Pause.Kind) -> (op: String, result: JSONValue)
    ) async throws -> PauseTimeoutOutcome

    /// Open pauses that still have to look back over events stored before them (see
    /// `Pause.eventsAfter`) and were created before `createdBefore`, at most `limit`.
    func pausesToLookBack(createdBefore: Date, limit: Int) async throws -> [Pause]

    /// Notes that `pauses` have looked back.
    func markLookedBack(_ pauses: [Pause]) async throws
}

/// The work outbox, the record of the transport, and events held for their time.
public protocol WorkOutbox: Sendable {
    /// Work items not yet published that were created before `createdBefore`, oldest first, at
    /// most `limit`.
    func unpublishedWork(createdBefore: Date, limit: Int) async throws -> [WorkItem]

    /// Notes that `items` are on the stream. Their rows stay until the drives that handle
    /// them end.
    func markWorkPublished(_ items: [WorkItem], now: Date) async throws

    /// Every live work item (published or not) after `after` (an opaque cursor from the last
    /// page), at most `limit`: what a rebuilt stream is filled from.
    func liveWork(after: Int64?, limit: Int) async throws -> (items: [WorkItem], cursor: Int64?)

    /// Puts a `recover` item in the outbox for every run, at most `limit`, that has not ended
    /// and has nothing that will advance it (no live lease, unfired timer, open wait or invoke
    /// pause, or live work item). Safe with several callers: each run is recovered once per
    /// fencing token. Returns the items added.
    func recoverStranded(limit: Int) async throws -> [WorkItem]

    /// Holds an event whose `ts` is in the future until `until` (once per event).
    func delayEvent(_ eventID: ULID, until: Date, now: Date) async throws

    /// Hands the delayed events due at `now` to `deliver` (which publishes them), then marks
    /// them delivered and not yet routed, in one transaction: a crash in between delivers them
    /// again, never not at all. Returns how many.
    func deliverDueEvents(now: Date, limit: Int, _ deliver: @escaping @Sendable ([ULID]) async throws -> Void) async throws -> Int

    /// The transport identity recorded by the last complete rebuild; nil before the first.
    func recordedTransport() async throws -> TransportIdentity?

    /// Records `identity` as rebuilt.
    func recordTransport(_ identity: TransportIdentity) async throws
}

/// The whole run store.
public typealias RunStore = RunLog & TimerStore & PauseStore & WorkOutbox & FlowStore & ConcurrencyStore

/// What taking slots on a run's concurrency counters gave.
public enum SlotOutcome: Sendable, Hashable {
    /// Every counter had room: the drive holds a slot on each while its lease lasts.
    case held
    /// A counter was full: the item waits in that counter's backlog (its outbox row kept, its
    /// lease given up) until a slot frees. `key` is the full counter.
    case backlogged(key: String)
    /// The lease was lost: nothing was written.
    case leaseLost
}

/// Concurrency limits (docs/queue.md): slots held by drives, and the backlog of work
/// that waits for one.
public protocol ConcurrencyStore: Sendable {
    /// Takes a slot on each of `slots` for the drive `lease` grants, if every counter has room
    /// (slots count only while their lease lasts); otherwise, in the same transaction, puts
    /// the lease's item in the first full counter's backlog at `score` and gives the lease up
    /// (a start item that has recorded nothing goes back to `Queued`, not started).
    func acquireSlots(_ lease: RunLease, _ slots: [ConcurrencySlot], score: Int64, functionID: UUID, start: Bool, now: Date) async throws
        -> SlotOutcome

    /// Frees the request slots the run holds, and its run-level slots once it has ended, and
    /// takes off the backlog the first waiting item of each counter freed: their outbox rows
    /// are marked unpublished, and they are returned to be published (the relay publishes them
    /// if the caller dies first).
    func releaseSlots(_ runID: ULID) async throws -> [WorkItem]

    /// Takes off the backlog as many items as their counters have room for, lowest score
    /// first (their outbox rows marked unpublished): the reconciler's cover for a drive that
    /// died before it released. At most `limit`.
    func promoteBacklog(limit: Int) async throws -> [WorkItem]

    /// Per function with work waiting or slots held: how much work waits for an executor and
    /// how much for a slot, since when, and how many of its runs hold slots now.
    func queueStates() async throws -> [QueueState]
}

/// A function's work queue at one moment.
public struct QueueState: Sendable, Hashable {
    public var functionID: UUID
    /// Work items that could run now and wait for an executor: live, not in a backlog, their
    /// run not being driven. What more executors would drain.
    public var ready: Int
    /// Work items waiting for a concurrency slot.
    public var backlog: Int
    /// Runs holding slots: request slots while their drive runs, run-level ones until the
    /// run ends.
    public var running: Int
    /// When the longest-waiting backlog item was put in line.
    public var oldest: Date?

    public init(functionID: UUID, ready: Int, backlog: Int, running: Int, oldest: Date?) {
        self.functionID = functionID
        self.ready = ready
        self.backlog = backlog
        self.running = running
        self.oldest = oldest
    }
}

extension WorkOutbox {
    /// Publishes `items` on `queue`, then notes them published (a crash in between leaves them
    /// for the relay, which publishes them again: consumers tell a duplicate by its retired
    /// row).
    public func publish(_ items: [WorkItem], on queue: any WorkQueue, now: Date) async throws {
        if items.isEmpty { return }
        try await queue.publish(items)
        try await markWorkPublished(items, now: now)
    }
}

/// The `work` stream.
public protocol WorkQueue: Sendable {
    /// Appends items (at least once: a stale delivery is recognised by its retired outbox row).
    func publish(_ items: [WorkItem]) async throws
}

/// Read access to runs for the API.
public protocol RunQueries: Sendable {
    /// The run with its steps, in the order recorded, what it waits for, and its failed
    /// attempts, oldest first; nil when unknown.
    func run(_ id: ULID) async throws -> RunRecord?
    /// The runs an event started, oldest first (without steps).
    func runs(eventID: ULID) async throws -> [RunRecord]
    /// The runs whose trigger event (`eventID`) is one of `eventIDs`, oldest first (without
    /// steps), in one read however many events: a batch's other events are not counted.
    func runs(triggeredBy eventIDs: [ULID]) async throws -> [RunRecord]
    /// A page of the runs `filter` matches (without steps), by id: newest first, or oldest
    /// first when `ascending`, starting after the id `after` (keyset pagination: a page costs
    /// the same however deep it is).
    func runs(_ filter: RunFilter, after: ULID?, ascending: Bool, limit: Int) async throws -> [RunRecord]
    /// How many runs `filter` matches, exactly.
    func count(_ filter: RunFilter) async throws -> Int
}

/// Which runs a listing or a bulk operation takes (docs/operations.md). Every field narrows.
public struct RunFilter: Sendable, Hashable {
    public var functionID: UUID?
    /// Any of these statuses; empty for any.
    public var statuses: [String] = []
    /// Created at or after.
    public var createdFrom: Date?
    /// Created before.
    public var createdUntil: Date?
    /// `Skipped` runs with this reason only.
    public var skipReason: String?
    /// Runs a bulk replay started.
    public var bulkID: String?
    /// Runs whose trigger event (the first of `eventIDs`) has a payload containing this JSON,
    /// as Postgres `jsonb @>` decides it (`JSONValue.contains`): what an expression search
    /// pushes down (`Expression.eventPrefilter`). A store may also return runs whose payload it
    /// cannot compare (Postgres: one jsonb cannot hold, with a NUL character or a number beyond
    /// its range), never fewer.
    public var eventContains: JSONValue?
    /// Runs whose output contains this JSON (`Expression.outputPrefilter`), as `eventContains`.
    public var outputContains: JSONValue?

    public init(
        functionID: UUID? = nil, statuses: [String] = [], createdFrom: Date? = nil, createdUntil: Date? = nil, skipReason: String? = nil,
        bulkID: String? = nil, eventContains: JSONValue? = nil, outputContains: JSONValue? = nil
    ) {
        self.functionID = functionID
        self.statuses = statuses
        self.createdFrom = createdFrom
        self.createdUntil = createdUntil
        self.skipReason = skipReason
        self.bulkID = bulkID
        self.eventContains = eventContains
        self.outputContains = outputContains
    }

    /// The statuses a run can have.
    public static let allStatuses = ["Queued", "Running", "Completed", "Failed", "Cancelled", "Skipped"]
}

/// The low-latency index of when timers are due (Redis); Postgres stays the record. Losing the
/// index delays timers until the next sweep of Postgres; it never loses them.
public protocol TimerIndex: Sendable {
    /// Adds timers by id with their due times.
    func schedule(_ timers: [(id: String, due: Date)]) async throws
    /// The earliest due time of the timers held, or nil when there are none.
    func nextDue() async throws -> Date?
    /// Drops entries due at or before `now` (they have been fired).
    func clearDue(upTo now: Date) async throws
}

/// The transport's identity (Redis): how the reconciler tells that stream entries may have
/// been lost (a `FLUSHALL`, a restart without persistence, a failover).
public protocol TransportEpoch: Sendable {
    /// The token held now and the server's id.
    func current() async throws -> TransportIdentity
    /// Writes `token` as the transport's token.
    func mark(_ token: String) async throws
}
