public import CairnCore
public import CairnEngine
public import Foundation
import Synchronization

/// The run store in memory, with the Postgres store's rules (the contract suite holds both to
/// them), for engine tests on a manual clock. Every operation is atomic, as a transaction is.
///
/// Tests can inject faults at any operation (`inject(_:on:)`): run something first (an
/// interleaving), fail before writing, or write and then fail, as a process that dies right
/// after a commit would.
public final class InMemoryRunStore: RunStore, RunQueries {
    /// An operation a fault can be injected at.
    public enum Operation: String, Sendable, Hashable {
        case createRuns, lease, isLive, renew, recordStep, clearPending, release, park, finish, cancel
        case fireDueTimers, resume, timeOutPause, markLookedBack
        case markWorkPublished, recoverStranded, deliverDueEvents
        case admit, fireDue, fireTimeouts
    }

    /// What an injected fault does, once.
    public enum Fault: Sendable {
        /// Runs `action` before the operation does anything: an interleaving point.
        case before(@Sendable () async throws -> Void)
        /// Throws before anything is written.
        case failBefore
        /// Writes, then throws: the caller never learns the outcome, as if it died right after
        /// the commit.
        case failAfter
        /// Reports success and writes nothing: a write the database reported done that a crash
        /// undid before its commit. Only `recordStep` takes it.
        case lose
    }

    /// The error an injected fault throws.
    public struct InjectedFault: Error, CustomStringConvertible {
        public var operation: Operation
        public var description: String { "injected fault at \(operation.rawValue)" }
    }

    struct RunRow {
        var id: ULID
        var functionID: UUID
        var version: Int
        var eventIDs: [ULID]
        var status = "Queued"
        var output: String?
        var error: String?
        var token: Int64 = 0
        var leaseOwner: String?
        var leaseExpires: Date?
        var createdAt: Date
        var startedAt: Date?
        var endedAt: Date?
        var pendingSteps: [String] = []
        var forceStepPlan = false
        var singletonKey: String?
        var batchID: String?
        var skipReason: String?
        var skipRunID: ULID?
        var originalRunID: ULID?
        var bulkID: String?

        var unfinished: Bool { status == "Queued" || status == "Running" }
    }

    struct StepRow {
        var step: StepRecord
        var recordedAt: Date
    }

    struct TimerRow {
        var id: String
        var runID: ULID?
        var due: Date
        var item: WorkItem?
        var event: ULID?
        var fired = false
    }

    struct PauseRow {
        var pause: Pause
        var createdAt: Date
        var consumed = false
        var consumedByTimeout = false
        var timeoutTimer: String?
        var lookedBack: Bool
    }

    struct OutboxRow {
        var seq: Int64
        var item: WorkItem
        var createdAt: Date
        var published = false
    }

    struct State {
        var runs: [ULID: RunRow] = [:]
        var idempotency: [String: (run: ULID, expires: Date)] = [:]
        var steps: [ULID: [StepRow]] = [:]
        /// Each run's failed attempts (`run_history`, kind `attempt_failed`), oldest first.
        var failedAttempts: [ULID: [RunRecord.FailedAttempt]] = [:]
        var timers: [String: TimerRow] = [:]
        var pauses: [String: PauseRow] = [:]
        var outbox: [String: OutboxRow] = [:]
        var nextSeq: Int64 = 1
        var transport: TransportIdentity?
        var faults: [Operation: [Fault]] = [:]
        var flow = FlowState()
    }

    let registry: InMemoryAppRegistry
    let eventLog: InMemoryEventLog
    let clock: any WallClock
    let state = Mutex(State())

    /// A store reading function versions from `registry`, storing the events it emits in
    /// `eventLog`, and judging lease expiry by `clock`.
    public init(registry: InMemoryAppRegistry, eventLog: InMemoryEventLog, clock: any WallClock) {
        self.registry = registry
        self.eventLog = eventLog
        self.clock = clock
    }

    /// Injects `fault` at the next call of `operation` (faults queue up per operation).
    public func inject(_ fault: Fault, on operation: Operation) {
        state.withLock { $0.faults[operation, default: []].append(fault) }
    }

    private func takeFault(_ operation: Operation) -> Fault? {
        state.withLock { state in
            guard var queue = state.faults[operation], !queue.isEmpty else { return nil }
            let fault = queue.removeFirst()
            state.faults[operation] = queue
            return fault
        }
    }

    /// Runs `body` atomically between the faults injected at `operation`.
    func perform<T>(_ operation: Operation, _ body: (inout State) throws -> T) async throws -> T {
        let fault = takeFault(operation)
        switch fault {
        case .before(let action)?: try await action()
        case .failBefore?: throw InjectedFault(operation: operation)
        case .failAfter?, .lose?, nil: break
        }
        let result = try state.withLock { try body(&$0) }
        if case .failAfter? = fault { throw InjectedFault(operation: operation) }
        return result
    }

    // MARK: Inspection for tests

    /// Every run, oldest first, skipped ones included.
    public var allRuns: [RunRecord] {
        state.withLock { state in state.runs.values.sorted { $0.id < $1.id }.map { record(of: $0, in: state) } }
    }

    /// The live work items (outbox rows), oldest first.
    public var liveItems: [WorkItem] {
        state.withLock { $0.outbox.values.sorted { $0.seq < $1.seq }.map(\.item) }
    }

    // MARK: RunLog

    public func createRuns(_ runs: [NewRun], now: Date) async throws -> [ULID] {
        try await perform(.createRuns) { state in
            var created: [ULID] = []
            for run in runs where Self.claim(run, now: now, &state) {
                guard try insertRun(run, now: now, into: &state) else {
                    throw InMemoryStoreError(detail: "run \(run.id) holds a singleton key another run holds; admit it instead")
                }
                created.append(run.id)
            }
            return created
        }
    }

    /// Claims `run`'s (function, idempotency key) for it, unless a live claim holds it.
    static func claim(_ run: NewRun, now: Date, _ state: inout State) -> Bool {
        let key = "\(run.functionID):\(run.idempotencyKey)"
        if let claim = state.idempotency[key], claim.expires > now { return false }
        state.idempotency[key] = (run.id, run.idempotentUntil)
        return true
    }

    /// Inserts `run` queued with its pauses, start timeout and start item; false, with nothing
    /// written, when an unfinished run holds its singleton key.
    func insertRun(_ run: NewRun, now: Date, into state: inout State) throws -> Bool {
        if let key = run.singletonKey, Self.singletonHolder(run.functionID, key, state) != nil { return false }
        var row = RunRow(id: run.id, functionID: run.functionID, version: run.functionVersion, eventIDs: run.eventIDs, createdAt: now)
        row.singletonKey = run.singletonKey
        row.batchID = run.batchID
        row.originalRunID = run.originalRunID
        row.bulkID = run.bulkID
        state.runs[run.id] = row
        eventLog.storeRecords(run.records)
        if !run.memoized.isEmpty { state.steps[run.id] = run.memoized.map { StepRow(step: $0, recordedAt: now) } }
        for pause in run.pauses { try insertPause(pause, timeoutTimer: nil, now: now, into: &state) }
        if let due = run.startTimeout { state.flow.timeouts["\(run.id):start"] = TimeoutRow(runID: run.id, which: "start", due: due) }
        let item = WorkItem(runID: run.id, reason: .start, call: .discovery)
        if let notBefore = run.notBefore, notBefore > now {
            try Self.insertTimer(item, due: notBefore, into: &state)
        } else {
            insertOutbox(item, now: now, into: &state)
        }
        return true
    }

    static func singletonHolder(_ functionID: UUID, _ key: String, _ state: State) -> ULID? {
        state.runs.values.first { $0.functionID == functionID && $0.singletonKey == key && $0.unfinished }?.id
    }

    public func lease(_ item: WorkItem, owner: String, duration: Duration) async throws -> LeaseOutcome {
        let now = clock.now
        return try await perform(.lease) { state in
            guard var run = state.runs[item.runID], run.unfinished else { return .ended }
            guard state.outbox[item.entryID] != nil else { return .stale }
            if let expires = run.leaseExpires, expires > now, run.leaseOwner != owner { return .busy }
            run.token += 1
            run.leaseOwner = owner
            run.leaseExpires = now.addingTimeInterval(duration.timeInterval)
            run.status = "Running"
            run.startedAt = run.startedAt ?? now
            state.runs[item.runID] = run
            return .granted(RunLease(runID: item.runID, token: run.token, owner: owner, item: item.entryID))
        }
    }

    public func isLive(_ item: WorkItem) async throws -> Bool {
        try await perform(.isLive) { state in
            state.runs[item.runID]?.unfinished == true && state.outbox[item.entryID] != nil
        }
    }

    public func renew(_ lease: RunLease, duration: Duration) async throws -> Bool {
        let now = clock.now
        return try await perform(.renew) { state in
            // A released lease (no owner) is not renewed back to life.
            guard Self.holds(lease, state), var run = state.runs[lease.runID], run.leaseOwner == lease.owner else { return false }
            run.leaseExpires = now.addingTimeInterval(duration.timeInterval)
            state.runs[lease.runID] = run
            return true
        }
    }

    static func holds(_ lease: RunLease, _ state: State) -> Bool {
        guard let run = state.runs[lease.runID] else { return false }
        return run.token == lease.token && run.status == "Running"
    }

    public func snapshot(_ runID: ULID) async throws -> RunSnapshot {
        let (run, steps) = try state.withLock { state -> (RunRow, [StepRow]) in
            guard let run = state.runs[runID] else { throw InMemoryStoreError(detail: "run \(runID) does not exist") }
            return (run, state.steps[runID] ?? [])
        }
        guard let function = registry.storedVersion(id: run.functionID, version: run.version) else {
            throw InMemoryStoreError(detail: "function \(run.functionID) has no version \(run.version)")
        }
        var snapshot = RunSnapshot(
            runID: runID, function: function, functionID: run.functionID, events: sdkEvents(run.eventIDs), steps: [:], stack: [],
            attempts: [:])
        for row in steps.sorted(by: { $0.step.position < $1.step.position }) {
            snapshot.steps[row.step.stepID] = try JSONValue(parsing: row.step.result)
            snapshot.stack.append(row.step.stepID)
            snapshot.attempts[row.step.stepID] = row.step.attempts
            snapshot.stateBytes += row.step.result.utf8.count
        }
        snapshot.pendingSteps = run.pendingSteps
        snapshot.forceStepPlan = run.forceStepPlan
        return snapshot
    }

    /// The run's events as SDKs see them.
    func sdkEvents(_ ids: [ULID]) -> [JSONValue] {
        ids.compactMap { eventLog.stored($0)?.payload }
    }

    public func recordStep(_ lease: RunLease, _ step: StepRecord, now: Date) async throws -> RecordOutcome {
        if case .lose? = state.withLock({ $0.faults[.recordStep]?.first }) {
            _ = takeFault(.recordStep)
            return .recorded
        }
        return try await perform(.recordStep) { state in
            guard Self.holds(lease, state) else { return .leaseLost }
            let existing = state.steps[lease.runID] ?? []
            if existing.contains(where: { $0.step.stepID == step.stepID }) { return .alreadyRecorded }
            guard existing.count == step.position else { return .stepsChanged }
            state.steps[lease.runID, default: []].append(StepRow(step: step, recordedAt: now))
            return .recorded
        }
    }

    public func clearPending(_ lease: RunLease) async throws -> Bool {
        try await perform(.clearPending) { state in
            guard Self.holds(lease, state) else { return false }
            state.runs[lease.runID]?.pendingSteps = []
            state.runs[lease.runID]?.forceStepPlan = false
            return true
        }
    }

    public func release(_ lease: RunLease, now: Date) async throws -> Bool {
        try await perform(.release) { state in Self.release(lease, pendingSteps: nil, &state) }
    }

    public func releaseGroup(_ lease: RunLease, steps: Int, now: Date) async throws -> ReleaseOutcome {
        try await perform(.release) { state in
            guard Self.holds(lease, state) else { return .leaseLost }
            guard (state.steps[lease.runID] ?? []).count == steps else { return .stepsChanged }
            return Self.release(lease, pendingSteps: nil, &state) ? .released : .leaseLost
        }
    }

    /// Gives the lease up and retires its item; false when the lease was lost.
    static func release(_ lease: RunLease, pendingSteps: [String]?, _ state: inout State) -> Bool {
        guard holds(lease, state), var run = state.runs[lease.runID] else { return false }
        run.leaseOwner = nil
        run.leaseExpires = nil
        if let pendingSteps {
            run.pendingSteps = pendingSteps
            run.forceStepPlan = true
        }
        state.runs[lease.runID] = run
        state.outbox[lease.item] = nil
        return true
    }

    public func finish(
        _ lease: RunLease, _ end: RunEnd, steps: Int, failedAttempts: [RunRecord.FailedAttempt], emitting events: [AcceptedEvent], now: Date
    ) async throws -> FinishOutcome {
        try await perform(.finish) { state in
            guard Self.holds(lease, state), var run = state.runs[lease.runID] else { return .leaseLost }
            guard (state.steps[lease.runID] ?? []).count == steps else { return .stepsChanged }
            switch end {
            case .completed(let output):
                run.status = "Completed"
                run.output = output.jsonString
            case .failed(let failure):
                run.status = "Failed"
                run.error = failure.body.jsonString
            case .cancelled:
                run.status = "Cancelled"
            }
            run.endedAt = now
            run.leaseOwner = nil
            run.leaseExpires = nil
            state.runs[lease.runID] = run
            Self.retireEverything(of: lease.runID, &state)
            state.failedAttempts[lease.runID, default: []] += failedAttempts
            eventLog.storeCommitted(events)
            return .finished
        }
    }

    public func cancel(_ runID: ULID, now: Date, emitting: @escaping @Sendable (CancelledRun) -> [AcceptedEvent]) async throws -> [AcceptedEvent]? {
        try await perform(.cancel) { state in cancel(runID, now: now, emitting: emitting, &state) }
    }

    /// `cancel` on `state`.
    func cancel(_ runID: ULID, now: Date, emitting: @Sendable (CancelledRun) -> [AcceptedEvent], _ state: inout State) -> [AcceptedEvent]? {
        guard var run = state.runs[runID], run.unfinished else { return nil }
        run.status = "Cancelled"
        run.endedAt = now
        run.token += 1
        run.leaseOwner = nil
        run.leaseExpires = nil
        state.runs[runID] = run
        Self.retireEverything(of: runID, &state)
        let slug = registry.storedVersion(id: run.functionID, version: run.version)?.id ?? ""
        let events = emitting(CancelledRun(runID: runID, functionSlug: slug, events: sdkEvents(run.eventIDs)))
        eventLog.storeCommitted(events)
        return events
    }

    /// Consumes the run's open pauses, disarms its timers and deletes its work items, waiting
    /// in line or not.
    static func retireEverything(of runID: ULID, _ state: inout State) {
        state.flow.backlog = state.flow.backlog.filter { $0.value.runID != runID }
        for (id, row) in state.pauses where row.pause.runID == runID { state.pauses[id]?.consumed = true }
        for (id, row) in state.timers where row.runID == runID { state.timers[id]?.fired = true }
        state.flow.timeouts = state.flow.timeouts.filter { $0.value.runID != runID }
        state.outbox = state.outbox.filter { $0.value.item.runID != runID }
    }

    // MARK: TimerStore

    public func park(_ lease: RunLease, _ parking: Parking, now: Date) async throws -> Bool {
        try await perform(.park) { state in
            var copy = state
            guard Self.release(lease, pendingSteps: parking.pendingSteps, &copy) else { return false }
            for (item, due) in parking.timers { try Self.insertTimer(item, due: due, into: &copy) }
            for (pause, timeout) in parking.pauses {
                try insertPause(pause, timeoutTimer: timeout.entryID, now: now, into: &copy)
                try Self.insertTimer(timeout, due: pause.expiresAt, into: &copy)
            }
            copy.failedAttempts[lease.runID, default: []] += parking.failedAttempts
            state = copy
            eventLog.storeCommitted(parking.events)
            return true
        }
    }

    static func insertTimer(_ item: WorkItem, due: Date, into state: inout State) throws {
        guard state.timers[item.entryID] == nil else { throw InMemoryStoreError(detail: "timer \(item.entryID) already exists") }
        state.timers[item.entryID] = TimerRow(id: item.entryID, runID: item.runID, due: due, item: item)
    }

    public func fireDueTimers(now: Date, limit: Int) async throws -> [WorkItem] {
        try await perform(.fireDueTimers) { state in
            let due = state.timers.values.filter { !$0.fired && $0.due <= now && $0.item != nil }.sorted { $0.due < $1.due }.prefix(limit)
            var items: [WorkItem] = []
            for timer in due {
                state.timers[timer.id]?.fired = true
                guard let item = timer.item else { continue }
                insertOutbox(item, now: now, into: &state)
                items.append(item)
            }
            return items
        }
    }

    public func unfiredTimers(after: String?, limit: Int) async throws -> [(id: String, due: Date)] {
        state.withLock { state in
            state.timers.values.filter { !$0.fired && $0.id > (after ?? "") }.sorted { $0.id < $1.id }.prefix(limit).map { ($0.id, $0.due) }
        }
    }

    // MARK: PauseStore

    func insertPause(_ pause: Pause, timeoutTimer: String?, now: Date, into state: inout State) throws {
        guard state.pauses[pause.id] == nil else { throw InMemoryStoreError(detail: "pause \(pause.id) already exists") }
        state.pauses[pause.id] = PauseRow(pause: pause, createdAt: now, timeoutTimer: timeoutTimer, lookedBack: !pause.needsLookBack)
    }

    public func openPauses(eventName: String, now: Date, after: String?, limit: Int) async throws -> [Pause] {
        state.withLock { state in
            Array(state.pauses.values.filter { !$0.consumed && $0.pause.eventName == eventName && $0.pause.expiresAt > now && $0.pause.id > (after ?? "") }
                .sorted { $0.pause.id < $1.pause.id }.map(\.pause).prefix(limit))
        }
    }

    public func resume(_ pause: Pause, eventID: ULID, result: JSONValue, resume: WorkItem, now: Date) async throws -> Bool {
        try await perform(.resume) { state in
            guard let row = state.pauses[pause.id], !row.consumed else { return false }
            state.pauses[pause.id]?.consumed = true
            let steps = state.steps[pause.runID] ?? []
            if !steps.contains(where: { $0.step.stepID == pause.stepID }) {
                let position = (steps.map(\.step.position).max() ?? -1) + 1
                let op = pause.kind == .invoke ? "InvokeFunction" : "WaitForEvent"
                state.steps[pause.runID, default: []].append(StepRow(
                    step: StepRecord(stepID: pause.stepID, position: position, name: pause.eventName, op: op, result: result.jsonString, attempts: 1),
                    recordedAt: now))
            }
            if let timer = row.timeoutTimer {
                state.timers[timer]?.fired = true
                state.outbox[timer] = nil
            }
            insertOutbox(resume, now: now, into: &state)
            return true
        }
    }

    public func timeOutPause(
        _ lease: RunLease, stepID: String, position: Int, now: Date, timeoutStep: @escaping @Sendable (Pause.Kind) -> (op: String, result: JSONValue)
    ) async throws -> PauseTimeoutOutcome {
        try await perform(.timeOutPause) { state in
            guard Self.holds(lease, state) else { return .leaseLost }
            let candidates = state.pauses.values.filter { $0.pause.runID == lease.runID && $0.pause.stepID == stepID && $0.pause.kind != .cancel }
            guard let row = candidates.first(where: { !$0.consumed }) else {
                // Timed out already (this item's earlier drive died after its commit).
                if candidates.contains(where: \.consumedByTimeout), let earlier = state.steps[lease.runID]?.first(where: { $0.step.stepID == stepID }) {
                    return .timedOut(earlier.step)
                }
                return .alreadyMatched
            }
            state.pauses[row.pause.id]?.consumed = true
            state.pauses[row.pause.id]?.consumedByTimeout = true
            let (op, result) = timeoutStep(row.pause.kind)
            let step = StepRecord(stepID: stepID, position: position, name: row.pause.eventName, op: op, result: result.jsonString, attempts: 1)
            state.steps[lease.runID, default: []].append(StepRow(step: step, recordedAt: now))
            return .timedOut(step)
        }
    }

    public func pausesToLookBack(createdBefore: Date, limit: Int) async throws -> [Pause] {
        state.withLock { state in
            Array(state.pauses.values.filter { !$0.lookedBack && !$0.consumed && $0.createdAt < createdBefore }
                .sorted { $0.createdAt < $1.createdAt }.prefix(limit).map(\.pause))
        }
    }

    public func markLookedBack(_ pauses: [Pause]) async throws {
        try await perform(.markLookedBack) { state in
            for pause in pauses { state.pauses[pause.id]?.lookedBack = true }
        }
    }

    // MARK: WorkOutbox

    func insertOutbox(_ item: WorkItem, now: Date, into state: inout State) {
        guard state.outbox[item.entryID] == nil else { return }
        state.outbox[item.entryID] = OutboxRow(seq: state.nextSeq, item: item, createdAt: now)
        state.nextSeq += 1
    }

    public func unpublishedWork(createdBefore: Date, limit: Int) async throws -> [WorkItem] {
        state.withLock { state in
            Array(state.outbox.values.filter { !$0.published && $0.createdAt < createdBefore }.sorted { $0.seq < $1.seq }.prefix(limit).map(\.item))
        }
    }

    public func markWorkPublished(_ items: [WorkItem], now: Date) async throws {
        try await perform(.markWorkPublished) { state in
            for item in items { state.outbox[item.entryID]?.published = true }
        }
    }

    public func liveWork(after: Int64?, limit: Int) async throws -> (items: [WorkItem], cursor: Int64?) {
        state.withLock { state in
            let rows = Array(state.outbox.values.filter { $0.seq > (after ?? 0) }.sorted { $0.seq < $1.seq }.prefix(limit))
            return (rows.map(\.item), rows.count < limit ? nil : rows.last?.seq)
        }
    }

    public func recoverStranded(limit: Int) async throws -> [WorkItem] {
        let now = clock.now
        return try await perform(.recoverStranded) { state in
            var items: [WorkItem] = []
            for run in state.runs.values.sorted(by: { $0.id < $1.id }) where run.unfinished {
                guard items.count < limit else { break }
                if let expires = run.leaseExpires, expires > now { continue }
                if state.outbox.values.contains(where: { $0.item.runID == run.id }) { continue }
                if state.timers.values.contains(where: { $0.runID == run.id && !$0.fired }) { continue }
                if state.pauses.values.contains(where: { $0.pause.runID == run.id && !$0.consumed && $0.pause.kind != .cancel }) { continue }
                let item = WorkItem(runID: run.id, reason: .recover, call: .discovery, generation: run.token)
                guard state.outbox[item.entryID] == nil else { continue }
                insertOutbox(item, now: now, into: &state)
                items.append(item)
            }
            return items
        }
    }

    public func delayEvent(_ eventID: ULID, until: Date, now: Date) async throws {
        state.withLock { state in
            let id = "event:" + eventID.description
            if state.timers[id] == nil { state.timers[id] = TimerRow(id: id, runID: nil, due: until, event: eventID) }
        }
    }

    public func deliverDueEvents(now: Date, limit: Int, _ deliver: @escaping @Sendable ([ULID]) async throws -> Void) async throws -> Int {
        let due = state.withLock { state in
            Array(state.timers.values.filter { !$0.fired && $0.due <= now && $0.event != nil }.sorted { $0.due < $1.due }.prefix(limit))
        }
        if due.isEmpty { return 0 }
        let events = due.compactMap(\.event)
        try await deliver(events)
        return try await perform(.deliverDueEvents) { state in
            for timer in due { state.timers[timer.id]?.fired = true }
            eventLog.unmarkRouted(events)
            return due.count
        }
    }

    public func recordedTransport() async throws -> TransportIdentity? {
        state.withLock { $0.transport }
    }

    public func recordTransport(_ identity: TransportIdentity) async throws {
        state.withLock { $0.transport = identity }
    }

    // MARK: RunQueries

    public func run(_ id: ULID) async throws -> RunRecord? {
        guard var record = state.withLock({ state in state.runs[id].map { record(of: $0, in: state) } }) else { return nil }
        record.steps = state.withLock { state in
            (state.steps[id] ?? []).sorted { $0.step.position < $1.step.position }.map { row in
                RunRecord.Step(
                    id: row.step.stepID, name: row.step.name, op: row.step.op, result: (try? JSONValue(parsing: row.step.result)) ?? .null,
                    attempts: row.step.attempts, recordedAt: row.recordedAt, queuedAt: row.step.queuedAt, startedAt: row.step.startedAt)
            }
        }
        record.failedAttempts = state.withLock { $0.failedAttempts[id] ?? [] }
        record.waitingFor = state.withLock { state in
            let waits = state.pauses.values.filter { $0.pause.runID == id && !$0.consumed && $0.pause.kind != .cancel }.map {
                RunRecord.Waiting(kind: $0.pause.kind.rawValue, stepID: $0.pause.stepID, event: $0.pause.eventName, until: $0.pause.expiresAt)
            }
            // As Postgres: sleeps, and retries waiting for their time.
            let sleeps = state.timers.values.filter { $0.runID == id && !$0.fired && ($0.item?.reason == .wake || $0.item?.reason == .retry) }
                .compactMap { timer in
                    timer.item.map {
                        RunRecord.Waiting(kind: $0.reason == .wake ? "sleep" : "retry", stepID: $0.call.stepID, event: nil, until: timer.due)
                    }
                }
            return (waits + sleeps).sorted { $0.until < $1.until }
        }
        return record
    }

    public func runs(eventID: ULID) async throws -> [RunRecord] {
        state.withLock { state in
            state.runs.values.filter { $0.eventIDs.first == eventID || ($0.batchID != nil && $0.eventIDs.contains(eventID)) }
                .sorted { $0.id < $1.id }.map { record(of: $0, in: state) }
        }
    }

    public func runs(triggeredBy eventIDs: [ULID]) async throws -> [RunRecord] {
        let wanted = Set(eventIDs)
        return state.withLock { state in
            state.runs.values.filter { $0.eventIDs.first.map(wanted.contains) ?? false }.sorted { $0.id < $1.id }.map { record(of: $0, in: state) }
        }
    }

    public func count(_ filter: RunFilter) async throws -> Int {
        try await runs(filter, after: nil, ascending: true, limit: .max).count
    }

    public func runs(_ filter: RunFilter, after: ULID?, ascending: Bool, limit: Int) async throws -> [RunRecord] {
        state.withLock { state in
            let matching = state.runs.values.filter { run in
                (filter.functionID.map { run.functionID == $0 } ?? true)
                    && (filter.statuses.isEmpty || filter.statuses.contains(run.status))
                    && (filter.createdFrom.map { run.createdAt >= $0 } ?? true)
                    && (filter.createdUntil.map { run.createdAt < $0 } ?? true)
                    && (filter.skipReason.map { run.skipReason == $0 } ?? true)
                    && (filter.bulkID.map { run.bulkID == $0 } ?? true)
                    && (filter.eventContains.map { wanted in run.eventIDs.first.flatMap { eventLog.stored($0)?.payload }?.contains(wanted) ?? false } ?? true)
                    && (filter.outputContains.map { wanted in run.output.flatMap { try? JSONValue(parsing: $0) }?.contains(wanted) ?? false } ?? true)
                    && (after.map { ascending ? run.id > $0 : run.id < $0 } ?? true)
            }
            return matching.sorted { ascending ? $0.id < $1.id : $0.id > $1.id }.prefix(limit).map { record(of: $0, in: state) }
        }
    }

    func record(of run: RunRow, in state: State) -> RunRecord {
        var record = RunRecord(
            id: run.id, functionID: run.functionID, functionSlug: registry.storedVersion(id: run.functionID, version: run.version)?.id ?? "",
            functionVersion: run.version, eventID: run.eventIDs.first, status: run.status,
            output: run.output.flatMap { try? JSONValue(parsing: $0) }, error: run.error.flatMap { try? JSONValue(parsing: $0) },
            createdAt: run.createdAt, startedAt: run.startedAt, endedAt: run.endedAt, steps: [], skipReason: run.skipReason,
            skipRunID: run.skipRunID, batchID: run.batchID)
        record.eventIDs = run.eventIDs
        record.originalRunID = run.originalRunID
        record.bulkID = run.bulkID
        return record
    }
}

/// The in-memory store was asked for something it does not hold.
public struct InMemoryStoreError: Error, CustomStringConvertible {
    public var detail: String
    public var description: String { "in-memory run store: \(detail)" }
}
