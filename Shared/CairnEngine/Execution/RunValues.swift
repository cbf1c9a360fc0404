public import CairnCore
public import Foundation

/// A unit of work on the `work` stream: drive `runID` with `call`.
///
/// An item is live while its outbox row exists: the row is written in the same transaction as
/// the state change that asks for the work, and deleted by the write that ends the drive which
/// handled it (a park, a finish, a release). A delivery whose row is gone is stale and is
/// acknowledged without touching the run, so a duplicate or late delivery is a no-op
/// (docs/durability.md).
public struct WorkItem: Sendable, Hashable, CustomStringConvertible {
    public enum Reason: String, Sendable, Hashable {
        /// A new run: discovery.
        case start
        /// A retry after a failed attempt: the same call, next attempt (the same attempt when
        /// the call reached no app).
        case retry
        /// A sleep ended: record null for `call.stepID`, then discovery.
        case wake
        /// A wait matched an event (already recorded for `call.stepID`): discovery.
        case resume
        /// A wait or invoke timed out: unless an event got there first, record its timeout
        /// result for `call.stepID`, then discovery.
        case pauseTimeout
        /// The reconciler found the run with nothing pending (a bug or a lost message
        /// somewhere): discovery.
        case recover
    }

    public var runID: ULID
    public var reason: Reason
    public var call: SDKCall
    /// Tells apart items that would otherwise be alike: the fencing token of the lease that
    /// scheduled the item (retries, sleeps, pause timeouts) or of the run when the reconciler
    /// recovered it. A run is leased at most once per token and parks at most once per lease,
    /// so no two waits of a run share an id. Starts and resumes happen once per run and per
    /// step, and use 0.
    public var generation: Int64

    public init(runID: ULID, reason: Reason, call: SDKCall, generation: Int64 = 0) {
        self.runID = runID
        self.reason = reason
        self.call = call
        self.generation = generation
    }

    /// The id of the item's outbox row, timer and stream entry: unique per wait.
    public var entryID: String { "\(runID):\(reason.rawValue):\(call.stepID):\(call.attempt):\(generation)" }

    public var description: String { entryID }

    /// The item as stream fields / JSON.
    public var json: JSONValue {
        [
            "run": .string(runID.description), "reason": .string(reason.rawValue), "step": .string(call.stepID),
            "attempt": .number(JSONNumber(call.attempt)), "gen": .number(JSONNumber(generation)),
        ]
    }

    /// Reads `json`; nil when it is not a work item.
    public init?(json: JSONValue) {
        guard let run = json["run"]?.stringValue.flatMap(ULID.init), let reasonText = json["reason"]?.stringValue,
            let reason = Reason(rawValue: reasonText), let step = json["step"]?.stringValue,
            let attempt = json["attempt"]?.int64Value
        else { return nil }
        self.init(runID: run, reason: reason, call: SDKCall(stepID: step, attempt: Int(attempt)), generation: json["gen"]?.int64Value ?? 0)
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
    /// Only events with a larger internal id may match; nil when any may (an invoke: its
    /// callee is started only after the pause is stored, and the correlation id is unique).
    ///
    /// A pause with a lower bound must look back, once stored, over the events stored since
    /// that bound: one routed while the pause was being written was matched against nothing.
    public var eventsAfter: ULID?
    public var expiresAt: Date

    public init(
        runID: ULID, stepID: String, kind: Kind, eventName: String, expression: String?, triggerEvent: JSONValue, eventsAfter: ULID?,
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

    /// Whether the pause must look back over events stored before it (see `eventsAfter`).
    public var needsLookBack: Bool { eventsAfter != nil }

    /// Whether `eventID` is late enough to match.
    public func admits(_ eventID: ULID) -> Bool {
        eventsAfter.map { $0 < eventID } ?? true
    }
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
    /// The singleton key it holds while unfinished.
    public var singletonKey: String?
    /// The batch it was started for.
    public var batchID: String?
    /// When it is cancelled if it has not started (`timeouts.start`).
    public var startTimeout: Date?
    /// When set and later than its admission, the run waits until then to start: its start
    /// item is a timer rather than outbox work (a cron tick committed ahead of its time).
    public var notBefore: Date?
    /// The function's slug, for metrics and logs (the id is what is stored).
    public var functionSlug = ""
    /// The run this one reruns (docs/operations.md).
    public var originalRunID: ULID?
    /// The bulk replay that starts it.
    public var bulkID: String?
    /// Steps recorded with the run, at positions 0…: a rerun from a step starts with the steps
    /// before it memoized.
    public var memoized: [StepRecord] = []
    /// Events stored with the run as a record only, already routed: never delivered, so they
    /// start nothing else (a rerun's edited event).
    public var records: [AcceptedEvent] = []

    public init(id: ULID, functionID: UUID, functionVersion: Int, eventIDs: [ULID], idempotencyKey: String, idempotentUntil: Date) {
        self.id = id
        self.functionID = functionID
        self.functionVersion = functionVersion
        self.eventIDs = eventIDs
        self.idempotencyKey = idempotencyKey
        self.idempotentUntil = idempotentUntil
    }
}

/// The right to advance one run while handling one work item: writes are conditioned on
/// `token`, and the write that ends the drive also retires `item`.
public struct RunLease: Sendable, Hashable {
    public var runID: ULID
    public var token: Int64
    public var owner: String
    /// The entry id of the work item the lease was granted for.
    public var item: String

    public init(runID: ULID, token: Int64, owner: String, item: String) {
        self.runID = runID
        self.token = token
        self.owner = owner
        self.item = item
    }
}

/// The answer to a lease request.
public enum LeaseOutcome: Sendable, Hashable {
    case granted(RunLease)
    /// Another owner holds a live lease: try again once it may have expired.
    case busy
    /// The run has ended (or does not exist): nothing to do.
    case ended
    /// The item was already handled (its outbox row is gone): nothing to do.
    case stale
}

/// A step result to record.
public struct StepRecord: Sendable, Hashable {
    /// The hashed step id.
    public var stepID: String
    /// The number of steps recorded before it (the lease holder is the only writer, so it
    /// knows).
    public var position: Int
    public var name: String
    public var op: String
    /// The memo value, serialized JSON.
    public var result: String
    public var attempts: Int
    /// When the attempt that produced the result became ready to send: the publication of the
    /// work item its drive took up (where `cairn.queue.wait` starts), or, for a later call of
    /// the same drive, the moment the drive decided to make it. Nil when unknown, and for
    /// steps no SDK call produced (a sleep's wake-up, a matched event, a timeout).
    public var queuedAt: Date?
    /// When the request of that attempt was sent to the SDK (where its `cairn.step` span
    /// starts); nil as for `queuedAt`.
    public var startedAt: Date?

    public init(
        stepID: String, position: Int, name: String, op: String, result: String, attempts: Int, queuedAt: Date? = nil, startedAt: Date? = nil
    ) {
        self.stepID = stepID
        self.position = position
        self.name = name
        self.op = op
        self.result = result
        self.attempts = attempts
        self.queuedAt = queuedAt
        self.startedAt = startedAt
    }
}

/// What a drive hands a run back to: timers (sleeps, retries), pauses with their timeout
/// timers (waits, invokes) and the events those pauses need stored with them (an invoke's
/// trigger), and, for a parallel group, the steps the run waits for before it goes on.
public struct Parking: Sendable {
    public var timers: [(item: WorkItem, due: Date)]
    public var pauses: [(pause: Pause, timeout: WorkItem)]
    public var events: [AcceptedEvent]
    /// The group's members; nil when the drive parks outside a group.
    public var pendingSteps: [String]?
    /// The spans of the sleeps planned, emitted once the park commits; not stored.
    public var sleepSpans: [TraceSpan] = []
    /// The attempts whose failure this park waits to retry, oldest first: stored in the run's
    /// history (`attempt_failed`) by the park's own transaction, so a park and its failures
    /// are kept or lost together.
    public var failedAttempts: [RunRecord.FailedAttempt] = []

    public init(
        timers: [(item: WorkItem, due: Date)] = [], pauses: [(pause: Pause, timeout: WorkItem)] = [], events: [AcceptedEvent] = [],
        pendingSteps: [String]? = nil
    ) {
        self.timers = timers
        self.pauses = pauses
        self.events = events
        self.pendingSteps = pendingSteps
    }

    /// Whether there is anything to wait for.
    public var isEmpty: Bool { timers.isEmpty && pauses.isEmpty }
}

/// What became of a step handed to `RunLog.recordStep`.
public enum RecordOutcome: Sendable, Hashable {
    /// Written now.
    case recorded
    /// The step already had a result, which stays (first write wins).
    case alreadyRecorded
    /// The lease is gone: another holder, or the run ended. Nothing was written.
    case leaseLost
    /// The run's log does not hold the steps the writer counted on (one it recorded was lost
    /// to a database crash before its commit): nothing was written; reload and go on.
    case stepsChanged
}

/// What became of a run's end handed to `RunLog.finish`.
public enum ReleaseOutcome: Sendable, Hashable {
    /// The lease was given up.
    case released
    /// The lease is gone, or the run has ended. Nothing was written.
    case leaseLost
    /// The run's log does not hold the steps the writer counted on: the lease is kept; reload
    /// and go on.
    case stepsChanged
}

/// What `RunStore.finish` did.
public enum FinishOutcome: Sendable, Hashable {
    /// The run ended now.
    case finished
    /// The lease is gone, or the run had already ended. Nothing was written.
    case leaseLost
    /// The run's log does not hold the steps the writer counted on: nothing was written;
    /// reload and go on.
    case stepsChanged
}

/// What became of a pause's timeout.
public enum PauseTimeoutOutcome: Sendable, Hashable {
    /// The pause was consumed by its timeout and `step` recorded, in one transaction.
    case timedOut(StepRecord)
    /// An event matched first (or the pause is gone): nothing was written.
    case alreadyMatched
    /// The lease is gone: nothing was written.
    case leaseLost
}

/// Everything a call request needs, loaded when a lease is granted.
public struct RunSnapshot: Sendable {
    public var runID: ULID
    /// The config of the function version the run started with.
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
    /// The run stores `failure.body` as its error.
    case failed(RunFailure)
    case cancelled
}

/// A run being cancelled: what its `function.cancelled` events are made from.
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

/// A run as the API shows it.
public struct RunRecord: Sendable {
    public struct Step: Sendable {
        public var id: String
        public var name: String
        public var op: String
        public var result: JSONValue
        public var attempts: Int
        public var recordedAt: Date
        /// When the final attempt, the one that produced the result, became ready to send
        /// (`StepRecord.queuedAt`); nil when unknown or when no SDK call produced the step.
        public var queuedAt: Date?
        /// When that attempt's request was sent to the SDK; nil as for `queuedAt`.
        public var startedAt: Date?

        public init(
            id: String, name: String, op: String, result: JSONValue, attempts: Int, recordedAt: Date, queuedAt: Date? = nil,
            startedAt: Date? = nil
        ) {
            self.id = id
            self.name = name
            self.op = op
            self.result = result
            self.attempts = attempts
            self.recordedAt = recordedAt
            self.queuedAt = queuedAt
            self.startedAt = startedAt
        }
    }

    /// An attempt that failed: an SDK call whose error was retried, or that failed the run.
    /// (A step's last attempt, whose error is recorded as the step, is the step itself.)
    public struct FailedAttempt: Sendable, Hashable {
        /// The step the attempt ran; nil when the function failed outside any step.
        public var stepID: String?
        /// The attempt's number, from 1 (the SDK's `ctx.attempt` + 1).
        public var attempt: Int
        /// When the attempt became ready to send (as `StepRecord.queuedAt`); nil when unknown.
        public var queuedAt: Date?
        /// When its request was sent; nil when unknown.
        public var startedAt: Date?
        /// When its failure was handled.
        public var endedAt: Date
        /// The error, as the SDK reported it (or as Cairn described a failed call).
        public var error: JSONValue

        public init(stepID: String?, attempt: Int, queuedAt: Date?, startedAt: Date?, endedAt: Date, error: JSONValue) {
            self.stepID = stepID
            self.attempt = attempt
            self.queuedAt = queuedAt
            self.startedAt = startedAt
            self.endedAt = endedAt
            self.error = error
        }
    }

    /// What a run that has not ended waits for: a sleep, an event, or an invoked function.
    public struct Waiting: Sendable, Hashable {
        /// `sleep`, `wait` or `invoke`.
        public var kind: String
        public var stepID: String
        /// The event a wait or invoke waits for; nil for a sleep.
        public var event: String?
        /// When the sleep ends or the wait times out.
        public var until: Date

        public init(kind: String, stepID: String, event: String?, until: Date) {
            self.kind = kind
            self.stepID = stepID
            self.event = event
            self.until = until
        }
    }

    public var id: ULID
    public var functionID: UUID
    public var functionSlug: String
    public var functionVersion: Int
    public var eventID: ULID?
    public var status: String
    /// Set by `RunQueries.run(_:)` only.
    public var waitingFor: [Waiting] = []
    /// The run's failed attempts, oldest first. Set by `RunQueries.run(_:)` only.
    public var failedAttempts: [FailedAttempt] = []
    public var output: JSONValue?
    public var error: JSONValue?
    public var createdAt: Date
    public var startedAt: Date?
    public var endedAt: Date?
    public var steps: [Step]
    /// Why a `Skipped` run did not start (`SkipReason`).
    public var skipReason: String?
    /// The run a skip reason points at: the run that took a debounced event, or a singleton's
    /// holder.
    public var skipRunID: ULID?
    /// The batch the run was started for.
    public var batchID: String?
    /// Every event of the run, the trigger first (`eventID`).
    public var eventIDs: [ULID] = []
    /// The run this one reruns.
    public var originalRunID: ULID?
    /// The bulk replay that started it.
    public var bulkID: String?

    public init(
        id: ULID, functionID: UUID, functionSlug: String, functionVersion: Int, eventID: ULID?, status: String,
        output: JSONValue?, error: JSONValue?, createdAt: Date, startedAt: Date?, endedAt: Date?, steps: [Step],
        skipReason: String? = nil, skipRunID: ULID? = nil, batchID: String? = nil
    ) {
        self.skipReason = skipReason
        self.skipRunID = skipRunID
        self.batchID = batchID
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

/// Who the transport (Redis) is: the epoch token Cairn wrote into it, and the server's own id.
/// A missing or different token, or another server, means stream entries may be lost.
public struct TransportIdentity: Sendable, Hashable {
    /// The token found in (or last written to) the transport; nil when none is there.
    public var token: String?
    /// The transport server's id (Redis `run_id`): it changes when the server restarts or a
    /// replica takes over.
    public var serverID: String

    public init(token: String?, serverID: String) {
        self.token = token
        self.serverID = serverID
    }
}
