public import CairnCore
public import Foundation

/// A unit of work on the `work` stream: drive `runID` with `call`.
///
/// Entry ids are deterministic (run, reason, step, attempt), so handling one twice is a no-op.
public struct WorkItem: Sendable, Hashable, CustomStringConvertible {
    public enum Reason: String, Sendable, Hashable {
        /// A new run: discovery.
        case start
        /// A retry after a failed attempt: the same call, next attempt.
        case retry
        /// A sleep ended: record null for `call.stepID`, then discovery.
        case wake
        /// A wait matched an event (already recorded for `call.stepID`): discovery.
        case resume
        /// A wait or invoke timed out: unless an event got there first, record its timeout
        /// result for `call.stepID`, then discovery.
        case pauseTimeout
    }

    public var runID: ULID
    public var reason: Reason
    public var call: SDKCall

    public init(runID: ULID, reason: Reason, call: SDKCall) {
        self.runID = runID
        self.reason = reason
        self.call = call
    }

    /// The deterministic id consumers dedupe on.
    public var entryID: String { "\(runID):\(reason.rawValue):\(call.stepID):\(call.attempt)" }

    public var description: String { entryID }

    /// The item as stream fields / JSON.
    public var json: JSONValue {
        ["run": .string(runID.description), "reason": .string(reason.rawValue), "step": .string(call.stepID), "attempt": .number(JSONNumber(call.attempt))]
    }

    /// Reads `json`; nil when it is not a work item.
    public init?(json: JSONValue) {
        guard let run = json["run"]?.stringValue.flatMap(ULID.init), let reasonText = json["reason"]?.stringValue,
            let reason = Reason(rawValue: reasonText), let step = json["step"]?.stringValue,
            let attempt = json["attempt"]?.int64Value
        else { return nil }
        self.init(runID: run, reason: reason, call: SDKCall(stepID: step, attempt: Int(attempt)))
    }
}

/// A run waiting for an event: `waitForEvent` (`wait`), an invoked function's end (`invoke`),
/// or an event that cancels it (`cancel`).
public struct Pause: Sendable, Hashable {
    public enum Kind: String, Sendable, Hashable {
        case wait, invoke, cancel
    }

    public var runID: ULID
    public var stepID: String
    public var kind: Kind
    /// The event name that may match.
    public var eventName: String
    /// A boolean expression over `event` (the run's trigger) and `async` (the candidate).
    public var expression: String?
    /// The run's trigger event.
    public var triggerEvent: JSONValue
    /// Only events with a larger internal id may match.
    public var eventsAfter: ULID
    public var expiresAt: Date

    public init(
        runID: ULID, stepID: String, kind: Kind, eventName: String, expression: String?, triggerEvent: JSONValue, eventsAfter: ULID,
        expiresAt: Date
    ) {
        self.runID = runID
        self.stepID = stepID
        self.kind = kind
        self.eventName = eventName
        self.expression = expression
        self.triggerEvent = triggerEvent
        self.eventsAfter = eventsAfter
        self.expiresAt = expiresAt
    }

    /// Unique per run, step and kind.
    public var id: String { "\(runID):\(stepID):\(kind.rawValue)" }
}

/// A run to create for an event and a function.
public struct NewRun: Sendable, Hashable {
    public var id: ULID
    public var functionID: UUID
    public var functionVersion: Int
    public var eventIDs: [ULID]
    /// One run per (function, key) until `idempotentUntil`: the event's id by default.
    public var idempotencyKey: String
    public var idempotentUntil: Date
    /// Pauses created with the run (its `cancel` events).
    public var pauses: [Pause] = []

    public init(id: ULID, functionID: UUID, functionVersion: Int, eventIDs: [ULID], idempotencyKey: String, idempotentUntil: Date) {
        self.id = id
        self.functionID = functionID
        self.functionVersion = functionVersion
        self.eventIDs = eventIDs
        self.idempotencyKey = idempotencyKey
        self.idempotentUntil = idempotentUntil
    }
}

/// The right to advance one run: writes are conditioned on `token`.
public struct RunLease: Sendable, Hashable {
    public var runID: ULID
    public var token: Int64
    public var owner: String

    public init(runID: ULID, token: Int64, owner: String) {
        self.runID = runID
        self.token = token
        self.owner = owner
    }
}

/// The answer to a lease request.
public enum LeaseOutcome: Sendable, Hashable {
    case granted(RunLease)
    /// Another owner holds a live lease: try again once it may have expired.
    case busy
    /// The run has ended (or does not exist): nothing to do.
    case ended
}

/// Everything a call request needs, loaded when a lease is granted.
public struct RunSnapshot: Sendable {
    public var runID: ULID
    public var function: FunctionConfig
    public var functionID: UUID
    /// The run's events, the trigger first, as the SDK sees them.
    public var events: [JSONValue]
    /// Recorded memo values by hashed step id.
    public var steps: [String: JSONValue]
    /// Step ids in the order their results were recorded.
    public var stack: [String]
    /// Attempts recorded per step id.
    public var attempts: [String: Int]
    /// Planned steps of a parallel group still to complete (only set while one waits for a
    /// retry).
    public var pendingSteps: [String] = []
    /// Whether calls ask the SDK to plan new steps instead of running them inline.
    public var forceStepPlan = false
    /// Bytes of every recorded step result together (the run state limit counts these).
    public var stateBytes = 0

    public init(runID: ULID, function: FunctionConfig, functionID: UUID, events: [JSONValue], steps: [String: JSONValue], stack: [String], attempts: [String: Int]) {
        self.runID = runID
        self.function = function
        self.functionID = functionID
        self.events = events
        self.steps = steps
        self.stack = stack
        self.attempts = attempts
    }
}

/// How a run ended.
public enum RunEnd: Sendable, Hashable {
    case completed(output: JSONValue)
    case failed(error: JSONValue)
    case cancelled
}

/// Runs, steps and timers: Postgres in production.
///
/// Every write made under a lease is conditioned on its token: a stale holder changes nothing
/// and learns so from the `false` it gets back.
public protocol RunStore: Sendable {
    /// Creates each run whose (function, idempotency key) is free, with its `start` work item
    /// in the outbox, in one transaction. Returns the ids of the runs created.
    func createRuns(_ runs: [NewRun], now: Date) async throws -> [ULID]

    /// Grants a lease until `until` if the run is unfinished and not leased by another owner
    /// whose lease is live.
    func lease(_ runID: ULID, owner: String, until: Date, now: Date) async throws -> LeaseOutcome

    /// The run's function, events and recorded steps.
    func snapshot(_ runID: ULID) async throws -> RunSnapshot

    /// Extends a lease; false when it was lost.
    func renew(_ lease: RunLease, until: Date) async throws -> Bool

    /// Records a step's memo value, `result` (serialized JSON), at `position` (the number of
    /// steps recorded before it; the lease holder is the only writer, so it knows), first write
    /// wins. False when the lease was lost; true when recorded now or already recorded.
    func recordStep(
        _ lease: RunLease, stepID: String, position: Int, name: String, op: String, result: String, attempts: Int, now: Date
    ) async throws -> Bool

    /// Hands the run back until `item` is due: a durable timer, and the lease released.
    func park(_ lease: RunLease, until: Date, item: WorkItem, now: Date) async throws -> Bool

    /// Ends the run; false when the lease was lost or the run had already ended.
    func finish(_ lease: RunLease, _ end: RunEnd, now: Date) async throws -> Bool

    /// Schedules `retries` (each item due at its date), records the parallel group's pending
    /// steps, and releases the lease, in one transaction.
    func park(_ lease: RunLease, retries: [(WorkItem, Date)], pendingSteps: [String], now: Date) async throws -> Bool

    /// Clears the parallel group's pending steps (all done).
    func clearPending(_ lease: RunLease) async throws -> Bool

    /// Gives the lease up without changing the run.
    func release(_ lease: RunLease, now: Date) async throws -> Bool

    /// Hands the run back until `pause` matches or times out (`timeout` fires at
    /// `pause.expiresAt`): pause, timer and lease release in one transaction.
    func park(_ lease: RunLease, pause: Pause, timeout: WorkItem, now: Date) async throws -> Bool

    /// Open pauses for events named `eventName`.
    func openPauses(eventName: String, now: Date) async throws -> [Pause]

    /// Consumes `pause` for `eventID` (once; false if already consumed) and, in the same
    /// transaction, records `result` for its step, disarms its timeout and queues `resume` in
    /// the outbox.
    func resume(_ pause: Pause, eventID: ULID, result: JSONValue, resume: WorkItem, now: Date) async throws -> Bool

    /// Consumes the run's wait or invoke pause at `stepID` for its timeout and returns its
    /// kind; nil when an event got there first.
    func expirePause(runID: ULID, stepID: String, now: Date) async throws -> Pause.Kind?

    /// Cancels an unfinished run: ends it, revokes any lease (the token moves on), consumes
    /// its pauses and disarms its timers. Nil when it had already ended; else what the
    /// cancelled events need.
    func cancel(_ runID: ULID, now: Date) async throws -> CancelledRun?

    /// Fires timers due at `now` (each once, across replicas): their work items move to the
    /// outbox. Returns the items, at most `limit`.
    func fireDueTimers(now: Date, limit: Int) async throws -> [WorkItem]

    /// Holds an event whose `ts` is in the future until `until` (once per event).
    func delayEvent(_ eventID: ULID, until: Date, now: Date) async throws

    /// Hands the delayed events due at `now` to `deliver` (which publishes them), then marks
    /// them delivered, in one transaction: a crash in between delivers them again, never not
    /// at all. Returns how many.
    func deliverDueEvents(now: Date, limit: Int, _ deliver: @Sendable ([ULID]) async throws -> Void) async throws -> Int

    /// Work items in the outbox older than `createdBefore`, oldest first, at most `limit`.
    func pendingWork(createdBefore: Date, limit: Int) async throws -> [WorkItem]

    /// Removes work items from the outbox once they are on the stream.
    func markWorkPublished(_ items: [WorkItem]) async throws
}

/// A run that was just cancelled.
public struct CancelledRun: Sendable {
    public var runID: ULID
    public var functionSlug: String
    public var events: [JSONValue]

    public init(runID: ULID, functionSlug: String, events: [JSONValue]) {
        self.runID = runID
        self.functionSlug = functionSlug
        self.events = events
    }
}

/// The `work` stream.
public protocol WorkQueue: Sendable {
    /// Appends items (at least once: consumers dedupe by `entryID`).
    func publish(_ items: [WorkItem]) async throws
}

/// A run as the API shows it.
public struct RunRecord: Sendable {
    public struct Step: Sendable {
        public var id: String
        public var name: String
        public var op: String
        public var result: JSONValue
        public var attempts: Int
        public var recordedAt: Date

        public init(id: String, name: String, op: String, result: JSONValue, attempts: Int, recordedAt: Date) {
            self.id = id
            self.name = name
            self.op = op
            self.result = result
            self.attempts = attempts
            self.recordedAt = recordedAt
        }
    }

    public var id: ULID
    public var functionID: UUID
    public var functionSlug: String
    public var functionVersion: Int
    public var eventID: ULID?
    public var status: String
    public var output: JSONValue?
    public var error: JSONValue?
    public var createdAt: Date
    public var startedAt: Date?
    public var endedAt: Date?
    public var steps: [Step]

    public init(
        id: ULID, functionID: UUID, functionSlug: String, functionVersion: Int, eventID: ULID?, status: String,
        output: JSONValue?, error: JSONValue?, createdAt: Date, startedAt: Date?, endedAt: Date?, steps: [Step]
    ) {
        self.id = id
        self.functionID = functionID
        self.functionSlug = functionSlug
        self.functionVersion = functionVersion
        self.eventID = eventID
        self.status = status
        self.output = output
        self.error = error
        self.createdAt = createdAt
        self.startedAt = startedAt
        self.endedAt = endedAt
        self.steps = steps
    }
}

/// Read access to runs for the API.
public protocol RunQueries: Sendable {
    /// The run with its steps, in the order recorded; nil when unknown.
    func run(_ id: ULID) async throws -> RunRecord?
    /// The runs an event started, oldest first (without steps).
    func runs(eventID: ULID) async throws -> [RunRecord]
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
