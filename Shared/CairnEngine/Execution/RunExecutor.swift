public import CairnCore
public import Foundation
public import Logging
public import ServiceLifecycle
import Synchronization

/// Settings of the executor.
public struct ExecutorSettings: Sendable {
    /// How long a lease lasts; renewed while a call is in flight.
    public var leaseDuration: Duration = .seconds(60)
    /// Runs driven at once by one process.
    public var concurrency = 64
    /// Longest wait for an SDK reply (docs/protocol.md §8: a function or step may take 2 h).
    public var callTimeout: Duration = .seconds(7_200)
    /// Multiplies retry backoffs (`CAIRN_RETRY_BACKOFF_SCALE`; 1 in production).
    public var backoffScale: Double = 1
    /// The executor's name in leases; unique per process.
    public var owner = "executor-" + UUID().uuidString.lowercased()
    /// Run lifecycle and SDK call metrics, and run traces.
    public var metrics = RunMetrics()

    public init() {}
}

/// The executor: takes work items from the `work` stream, leases each run and drives it by
/// calling the SDK until the run ends or has to wait (a sleep, a retry backoff, a pause).
///
/// Sequential steps stay on one lease: record the step (one Postgres commit), call again. The
/// run goes back through a timer or a pause only to wait. Every write is fenced by the lease
/// token, and the write that ends a drive (a park, a finish, a release) also retires the work
/// item the lease was granted for. A drive that cannot finish (a lost lease, a database error,
/// a crash) leaves its item live and its stream entry unacknowledged, so the item is driven
/// again; a delivery of an item already retired is acknowledged and ignored.
public final class RunExecutor: Service {
    let store: any RunStore
    let events: any EventSink
    let sdk: any SDKTransport
    /// Where `step.ai.infer` and `step.fetch` requests go (the app's transport, in production).
    let outbound: any SDKTransport
    let source: any StreamSource
    let timers: any TimerIndex
    let matcher: PauseMatcher
    let clock: any WallClock
    let keys: SigningKeys?
    let settings: ExecutorSettings
    let logger: Logger
    let stamper = EventStamper()
    /// Runs this process is driving now. A stream entry still in flight here can be
    /// redelivered to this same process (reclaimed after `leaseDuration` idle during a long
    /// call); the lease would let the same owner in again, so this keeps one drive per run
    /// (see `claim`).
    private let driving = Mutex([ULID: LocalDrive]())

    /// A drive of a run in this process: whether it has let the run go (its lease released by
    /// a park, a finish or a release) and only winds up, and the delivery waiting to take over
    /// from it.
    struct LocalDrive {
        var letGo = false
        var next: CheckedContinuation<Bool, Never>?
    }
    /// The process's app calls in flight, at most `settings.concurrency`: a delivery takes a
    /// slot for its drive, and a parallel group takes more for its members (see `runGroup`).
    let slots: AsyncSlots
    let work: any WorkQueue
    /// Concurrency-key and priority expressions, compiled once per source text.
    let expressions = ExpressionCache()

    public init(
        store: any RunStore, events: any EventSink, eventLog: any EventLog, work: any WorkQueue, sdk: any SDKTransport,
        outbound: (any SDKTransport)? = nil, source: any StreamSource, timers: any TimerIndex, clock: any WallClock, keys: SigningKeys?,
        settings: ExecutorSettings = ExecutorSettings(), logger: Logger
    ) {
        self.outbound = outbound ?? sdk
        self.timers = timers
        self.store = store
        self.events = events
        self.sdk = sdk
        self.source = source
        self.matcher = PauseMatcher(store: store, events: events, eventLog: eventLog, work: work, clock: clock, metrics: settings.metrics, logger: logger)
        self.work = work
        self.clock = clock
        self.keys = keys
        self.settings = settings
        self.logger = logger
        self.slots = AsyncSlots(count: settings.concurrency)
    }

    /// Consumes the stream until graceful shutdown, with at most `concurrency` runs in flight;
    /// in-flight runs finish (or park) before it returns.
    public func run() async throws {
        try await withThrowingDiscardingTaskGroup { group in
            while !Task.isShuttingDownGracefully && !Task.isCancelled {
                let free = await self.slots.waitForFree()
                let deliveries: [StreamDelivery]
                do {
                    deliveries = try await cancelWhenGracefulShutdown { try await self.source.read(maximum: free) }
                } catch is CancellationError {
                    break
                } catch {
                    logger.warning("reading work failed; retrying", metadata: ["error": "\(error)"])
                    try? await Task.sleep(for: .milliseconds(200))
                    continue
                }
                for delivery in deliveries {
                    await self.slots.take()
                    group.addTask {
                        defer { Task { await self.slots.give() } }
                        await self.handle(delivery)
                    }
                }
            }
        }
    }

    /// Drives one delivery and acknowledges it once handled; otherwise (another executor holds
    /// the run, the lease was lost, the database failed) it is delivered again later.
    func handle(_ delivery: StreamDelivery) async {
        guard let bytes = delivery.fields["item"], let json = try? JSONValue(parsing: bytes), let item = WorkItem(json: json) else {
            logger.error("dropping a work entry that is not a work item", metadata: ["entry": "\(delivery.entryID)"])
            try? await source.acknowledge([delivery.entryID])
            return
        }
        do {
            if try await drive(item, queuedAt: delivery.published) {
                try await source.acknowledge([delivery.entryID])
            }
        } catch {
            logger.warning("driving a run failed; it will be delivered again", metadata: ["run": "\(item.runID)", "error": "\(error)"])
        }
    }

    /// Drives `item`'s run as far as it can go now. Returns false when the item should be
    /// delivered again (another executor holds the run, or this one lost its lease), true when
    /// it was handled or needs nothing more.
    ///
    /// - Parameter queuedAt: when the item was published, for its queue wait (metric and span).
    public func drive(_ item: WorkItem, queuedAt: Date? = nil) async throws -> Bool {
        guard await claim(item.runID) else { return false }
        defer { unclaim(item.runID) }
        let lease: RunLease
        switch try await store.lease(item, owner: settings.owner, duration: settings.leaseDuration) {
        case .granted(let granted): lease = granted
        case .busy: return false
        case .ended, .stale: return true
        }
        do {
            try await withLeaseRenewed(lease) { try await self.drive(item, holding: lease, queuedAt: queuedAt) }
            return true
        } catch let lost as LeaseLost {
            // Cancelled under this drive, or taken over and its item retired: nothing is left
            // to deliver again.
            guard try await store.isLive(item) else { return true }
            logger.notice("lost the lease on a run; another executor has it", metadata: ["run": "\(lost.runID)"])
            return false
        }
    }

    /// Marks `runID` as driven here; false when another drive of it here goes on (the item
    /// is then delivered again later). A drive that has already let the run go is only
    /// winding up (announcing its events, indexing timers, looking back for a wait's event),
    /// and what it released is often what comes next: a resume its look-back published, the
    /// next member of a parallel group. Such an item waits for that drive and takes the run
    /// over when it ends, instead of waiting for its redelivery. One item waits per run; a
    /// drive that has let go needs no more slots, so waiting cannot starve it.
    func claim(_ runID: ULID) async -> Bool {
        await withCheckedContinuation { (handover: CheckedContinuation<Bool, Never>) in
            let answer: Bool? = driving.withLock { drives in
                guard let drive = drives[runID] else {
                    drives[runID] = LocalDrive()
                    return true
                }
                guard drive.letGo, drive.next == nil else { return false }
                drives[runID]?.next = handover
                return nil
            }
            if let answer { handover.resume(returning: answer) }
        }
    }

    /// Ends this process's drive of `runID`, handing the run to the item waiting for it.
    func unclaim(_ runID: ULID) {
        let next = driving.withLock { drives in
            let next = drives[runID]?.next
            drives[runID] = next.map { _ in LocalDrive() }
            return next
        }
        next?.resume(returning: true)
    }

    /// Notes that this process's drive of `runID` has released its lease (see `claim`).
    func letGo(_ runID: ULID) {
        driving.withLock { $0[runID]?.letGo = true }
    }

    /// Whether an item waits here for this process's drive of `runID` to end.
    func hasWaiter(for runID: ULID) -> Bool {
        driving.withLock { $0[runID]?.next != nil }
    }

    /// Drives `item`'s run on `lease`, which is renewed meanwhile, holding a slot on each of
    /// its function's concurrency counters (docs/queue.md): when one is full the item
    /// waits in its backlog instead, off the stream, and the drive ends. Otherwise ends with a
    /// write that retires the item, or throws; either way its slots are then freed and the
    /// work waiting for them published.
    func drive(_ item: WorkItem, holding lease: RunLease, queuedAt: Date?) async throws {
        let snapshot = try await store.snapshot(item.runID)
        if let queuedAt {
            let taken = clock.now
            settings.metrics.queueDelay(function: snapshot.function.id, seconds: max(0, taken.timeIntervalSince(queuedAt)))
            settings.metrics.tracing.queueWait(
                lease.runID, function: snapshot.function.id, call: item.call, reason: item.reason.rawValue, from: queuedAt, to: taken)
        }
        let trigger = snapshot.events.first ?? .null
        let now = clock.now.unixMilliseconds
        let counters = ConcurrencySlot.of(
            snapshot.function.concurrency, functionID: snapshot.functionID, event: trigger, nowMilliseconds: now, compile: expressions.compiled)
        if counters.isEmpty { return try await drive(item, holding: lease, snapshot, queuedAt: queuedAt) }
        let score = RunPriority.score(
            createdMilliseconds: Int64(lease.runID.milliseconds),
            factor: RunPriority.factor(snapshot.function.priority?.run, event: trigger, nowMilliseconds: now, compile: expressions.compiled))
        switch try await store.acquireSlots(lease, counters, score: score, functionID: snapshot.functionID, start: item.reason == .start, now: clock.now) {
        case .held: break
        case .backlogged: return
        case .leaseLost: throw LeaseLost(runID: lease.runID)
        }
        do {
            try await drive(item, holding: lease, snapshot, queuedAt: queuedAt)
        } catch {
            await freeSlots(of: lease.runID)
            throw error
        }
        await freeSlots(of: lease.runID)
    }

    /// Frees the run's concurrency slots and publishes the work that waited for them. A
    /// failure here only delays that work to the reconciler's next pass.
    func freeSlots(of runID: ULID) async {
        do {
            let promoted = try await store.releaseSlots(runID)
            try await store.publish(promoted, on: work, now: clock.now)
        } catch {
            logger.warning("freeing concurrency slots failed; the reconciler publishes the waiting work", metadata: ["run": "\(runID)", "error": "\(error)"])
        }
    }

    /// Drives the run under `lease`. `queuedAt` is when `item` was published: the first call
    /// of the drive was queued then; each later one when the drive decided to make it.
    func drive(_ item: WorkItem, holding lease: RunLease, _ snapshot: RunSnapshot, queuedAt: Date?) async throws {
        var snapshot = snapshot
        let metadata: Logger.Metadata = ["run": "\(item.runID)", "function": "\(snapshot.function.id)"]
        var call = item.call
        if item.reason == .start && snapshot.stack.isEmpty {
            settings.metrics.started(function: snapshot.function.id, runID: lease.runID, now: clock.now)
        }
        // `timeouts.finish` counts from the first request: its timer is set when the run is
        // first driven (once; a drive of the start item again changes nothing).
        if let finish = snapshot.function.timeouts?.finish, item.reason == .start || item.reason == .recover,
            let due = try await store.armFinishTimeout(lease, finish: finish)
        {
            await index([("\(lease.runID):timeout:finish", due)])
        }
        switch item.reason {
        case .start, .retry:
            break
        case .recover:
            logger.warning("driving a run the reconciler recovered", metadata: metadata)
            call = .discovery
        case .wake:
            if snapshot.steps[call.stepID] == nil {
                guard try await record(lease, &snapshot, stepID: call.stepID, name: "sleep", op: "Sleep", result: .null, attempts: 1) else { return }
            }
            call = .discovery
        case .resume:
            call = .discovery
        case .pauseTimeout:
            switch try await store.timeOutPause(lease, stepID: call.stepID, position: snapshot.stack.count, now: clock.now, timeoutStep: Invocation.timeoutStep) {
            case .timedOut(let step):
                snapshot.record(step, value: try JSONValue(parsing: step.result))
            case .alreadyMatched:
                // An event matched first: its resume item drives the run.
                return try await release(lease)
            case .leaseLost:
                throw LeaseLost(runID: lease.runID)
            }
            call = .discovery
        }
        // A step this item targets was recorded by an earlier drive of it that died before
        // retiring it: asking the app for that step again would target a step it no longer
        // reaches. Go on as after any recorded step.
        if !call.isDiscovery, snapshot.steps[call.stepID] != nil { call = .discovery }
        // Discovery while a parallel group still waits for members would ask the app for them
        // again: go on only once every member is recorded. A recovered run goes on regardless,
        // since nothing else will: discovery plans what is missing.
        if call.isDiscovery {
            if item.reason == .recover {
                if !snapshot.pendingSteps.isEmpty { try await clearGroup(lease, &snapshot) }
            } else {
                guard try await continueGroup(lease, &snapshot) else { return }
            }
        }
        let maxAttempts = snapshot.function.retries + 1
        var version = -1
        // When `call` became ready to send, for its step's or failed attempt's timing.
        var queued = queuedAt
        while true {
            do {
                if let exceeded = RunLimits.exceeded(by: snapshot) {
                    return try await end(lease, snapshot, .failed(RunLimits.failure(exceeded)))
                }
                let (outcome, sent) = try await callSDK(
                    lease, snapshot: snapshot, call: call, maxAttempts: maxAttempts, version: &version,
                    disableImmediateExecution: snapshot.forceStepPlan)
                var actions = RunDecision.decide(
                    outcome: outcome, call: call, maxAttempts: maxAttempts, now: clock.now, jitter: Double.random(in: 0...1),
                    backoffScale: settings.backoffScale)
                // The attempts of this pass that failed, kept by the write that ends the drive.
                var failed = Self.failedAttempt(
                    call, stepID: RunTracing.step(of: call, outcome: outcome), outcome: outcome, actions: actions, queuedAt: queued, startedAt: sent,
                    now: clock.now).map { [$0] } ?? []
                var next: SDKCall?
                while !actions.isEmpty {
                    let action = actions.removeFirst()
                    switch action {
                    case .recordStep(let id, let name, let op, let result):
                        // The SDK runs a step on the call that reports it, at that call's attempt.
                        guard try await record(
                            lease, &snapshot, stepID: id, name: name, op: op, result: result, attempts: call.attempt + 1, queued: queued, since: sent)
                        else {
                            return
                        }
                    case .call(let nextCall):
                        next = nextCall
                        if nextCall.isDiscovery, try await !continueGroup(lease, &snapshot) { return }
                    case .group(let members, let race):
                        switch try await runGroup(
                            lease, &snapshot, members: members, race: race, maxAttempts: maxAttempts, queued: queued, since: sent, failed: &failed)
                        {
                        case .discovery: next = .discovery
                        case .stopped: return
                        case .then(let more): actions = more + actions
                        }
                    case .request(let step):
                        let decided = RunDecision.decide(
                            request: step, response: try await send(step), call: call, maxAttempts: maxAttempts, now: clock.now,
                            jitter: Double.random(in: 0...1), backoffScale: settings.backoffScale)
                        if let attempt = Self.failedAttempt(
                            call, stepID: step.stepID, outcome: nil, actions: decided, queuedAt: queued, startedAt: sent, now: clock.now)
                        {
                            failed.append(attempt)
                        }
                        actions = decided + actions
                    case .retry, .sleep, .waitForEvent, .invoke:
                        if case .retry(_, let at, let error) = action {
                            logger.info("attempt failed; retrying", metadata: metadata.merging(["call": "\(call)", "at": "\(at)", "error": "\(error["message"] ?? error)"]) { $1 })
                        }
                        var parking = Parking()
                        add(action, to: &parking, lease, snapshot)
                        parking.failedAttempts = failed
                        return try await park(lease, parking)
                    case .complete(let output):
                        try await end(lease, snapshot, .completed(output: output), failedAttempts: failed)
                        logger.debug("run completed", metadata: metadata)
                        return
                    case .fail(let failure):
                        try await end(lease, snapshot, .failed(failure), failedAttempts: failed)
                        logger.info("run failed", metadata: metadata.merging(["error": "\(failure.body["message"] ?? failure.body)"]) { $1 })
                        return
                    }
                }
                guard let next else { return try await release(lease) }
                call = next
                queued = clock.now
            } catch is StepsChanged {
                // A step this drive recorded was lost to a database crash before its commit:
                // continue from what is stored; the app runs that step again.
                logger.warning("a recorded step was lost before its commit; reloading the run", metadata: metadata)
                snapshot = try await store.snapshot(item.runID)
                call = .discovery
                queued = clock.now
            }
        }
    }

    /// The attempt `call` made, as the run's history keeps it, when `actions` (decided on its
    /// reply) retry it, or fail the run on the error it returned (`outcome` `.failed`): `stepID`
    /// is the step it ran, if any. Nil when the attempt did not fail, when it failed a step for
    /// good (that error is recorded as the step, whose timing is that attempt's), and when the
    /// call reached no app: it spent no attempt, and is tried again for as long as the run
    /// lives (docs/connect.md), so keeping each try would grow the history without bound.
    static func failedAttempt(
        _ call: SDKCall, stepID: String?, outcome: SDKOutcome?, actions: [RunAction], queuedAt: Date?, startedAt: Date?, now: Date
    ) -> RunRecord.FailedAttempt? {
        var error: JSONValue?
        for action in actions {
            if case .retry(let next, _, let retried) = action, next.attempt > call.attempt { error = retried }
        }
        if error == nil, case .failed(let failure, _)? = outcome, actions.contains(where: { if case .fail = $0 { true } else { false } }) {
            error = failure.body
        }
        guard let error else { return nil }
        return RunRecord.FailedAttempt(stepID: stepID, attempt: call.attempt + 1, queuedAt: queuedAt, startedAt: startedAt, endedAt: now, error: error)
    }

    /// How a parallel group's drive goes on.
    enum GroupResult {
        /// Every member is recorded: call discovery.
        case discovery
        /// The run was parked or ended.
        case stopped
        /// A race's discovery decided these, once the members in flight ended.
        case then([RunAction])
    }

    /// A member of a group that finished in this drive.
    enum FinishedMember: Sendable {
        case call(SDKCall, SDKOutcome, sent: Date)
        case request(OutboundStep, OutboundStep.Response, sent: Date)
    }

    /// Runs a parallel group on this lease. Results the reply carried are recorded; planned
    /// steps (each on a call targeting it) and requests go on concurrently, and what each
    /// returns is decided as it returns. Sleeps, waits, invokes and the retries of members that
    /// failed are parked on together once nothing is in flight, with the group's members as the
    /// run's pending steps; the last member to be recorded calls discovery (`continueGroup`).
    /// In race mode, discovery is called after each member that finishes here, and the members
    /// it reports join the group; waits within a race still wait for each other.
    ///
    /// Members in flight stay within the executor's concurrency: the first uses the drive's own
    /// slot, each further one a free slot of the process, taken without waiting (so groups can
    /// never deadlock each other) and given back when it finishes. A member that finds none
    /// waits for one of its group's to finish.
    ///
    /// `since` is when the call that reported the group was sent and `queued` when it became
    /// ready; a step it carried already run is traced and timed from there, a member's own
    /// call from when it joined the group (queued) and was sent. The members' failed attempts
    /// join `failed`, which the park or end of the group keeps (or, for `.then`, the caller's).
    func runGroup(
        _ lease: RunLease, _ snapshot: inout RunSnapshot, members: [RunAction], race: Bool, maxAttempts: Int, queued: Date?, since: Date,
        failed: inout [RunRecord.FailedAttempt]
    ) async throws -> GroupResult {
        // When the call whose reply is being handled became ready, and when it was sent.
        var queued = queued
        var since = since
        // When each member's own call or request joined the group, ready to go.
        var ready: [String: Date] = [:]
        var working = snapshot
        defer { snapshot = working }
        var extraSlots = 0
        defer { if extraSlots > 0 { Task { [slots, extraSlots] in await slots.give(extraSlots) } } }
        var queue = members
        var memberIDs: [String] = []
        var parking = Parking()
        var after: [RunAction]?
        // Whether anything was recorded, started or parked: a group that brings nothing new
        // would have discovery report it again and again.
        var progressed = false
        func join(_ id: String) {
            if !memberIDs.contains(id) { memberIDs.append(id) }
        }
        func waiting(on id: String) -> Bool {
            parking.timers.contains { $0.item.call.stepID == id } || parking.pauses.contains { $0.pause.stepID == id }
        }
        return try await withThrowingTaskGroup(of: FinishedMember.self) { tasks in
            var inFlight: Set<String> = []
            var discoverNow = false
            // Members waiting for a slot.
            var waitingForSlot: [RunAction] = []
            // A function with request limits holds one slot per counter for the drive, so its
            // members go one at a time (a run-level slot covers the whole run).
            let limited = working.function.concurrency.contains { $0.limit > 0 && !$0.wholeRun }
            func admit() async -> Bool {
                if inFlight.isEmpty { return true }
                if limited { return false }
                guard await slots.tryTake() else { return false }
                extraSlots += 1
                return true
            }
            while true {
                while !queue.isEmpty {
                    let action = queue.removeFirst()
                    switch action {
                    case .recordStep(let id, let name, let op, let result):
                        join(id)
                        guard working.steps[id] == nil else { continue }
                        guard try await record(lease, &working, stepID: id, name: name, op: op, result: result, attempts: 1, queued: queued, since: since)
                        else {
                            tasks.cancelAll()
                            return .stopped
                        }
                        progressed = true
                        discoverNow = race
                    case .call(let targeted):
                        guard !targeted.isDiscovery else { continue }
                        join(targeted.stepID)
                        guard working.steps[targeted.stepID] == nil, !waiting(on: targeted.stepID), !inFlight.contains(targeted.stepID) else { continue }
                        if ready[targeted.stepID] == nil { ready[targeted.stepID] = clock.now }
                        guard await admit() else {
                            waitingForSlot.append(action)
                            continue
                        }
                        inFlight.insert(targeted.stepID)
                        let frozen = working
                        progressed = true
                        tasks.addTask {
                            var version = -1
                            let (outcome, sent) = try await self.callSDK(
                                lease, snapshot: frozen, call: targeted, maxAttempts: maxAttempts, version: &version, disableImmediateExecution: true)
                            return .call(targeted, outcome, sent: sent)
                        }
                    case .request(let step):
                        join(step.stepID)
                        guard working.steps[step.stepID] == nil, !waiting(on: step.stepID), !inFlight.contains(step.stepID) else { continue }
                        if ready[step.stepID] == nil { ready[step.stepID] = clock.now }
                        guard await admit() else {
                            waitingForSlot.append(action)
                            continue
                        }
                        inFlight.insert(step.stepID)
                        progressed = true
                        tasks.addTask {
                            let sent = self.clock.now
                            return .request(step, try await self.send(step), sent: sent)
                        }
                    case .retry(let retryCall, _, _):
                        join(retryCall.stepID)
                        add(action, to: &parking, lease, working)
                    case .sleep(let id, _, _), .waitForEvent(let id, _, _, _, _), .invoke(let id, _, _, _, _):
                        join(id)
                        // Parked once, until recorded.
                        if working.steps[id] == nil, !waiting(on: id) { add(action, to: &parking, lease, working) }
                    case .group(let more, _):
                        queue += more
                    case .fail(let failure):
                        tasks.cancelAll()
                        try await end(lease, working, .failed(failure), failedAttempts: failed)
                        return .stopped
                    case .complete(let output):
                        tasks.cancelAll()
                        try await end(lease, working, .completed(output: output), failedAttempts: failed)
                        return .stopped
                    }
                }
                if discoverNow, after == nil {
                    // Race: a member finished; the function may go on now.
                    discoverNow = false
                    var version = -1
                    let discovery = clock.now
                    let (outcome, sent) = try await callSDK(
                        lease, snapshot: working, call: .discovery, maxAttempts: maxAttempts, version: &version, disableImmediateExecution: true)
                    queued = discovery
                    since = sent
                    let decided = RunDecision.decide(
                        outcome: outcome, call: .discovery, maxAttempts: maxAttempts, now: clock.now, jitter: Double.random(in: 0...1),
                        backoffScale: settings.backoffScale)
                    if let attempt = Self.failedAttempt(
                        .discovery, stepID: RunTracing.step(of: .discovery, outcome: outcome), outcome: outcome, actions: decided, queuedAt: discovery,
                        startedAt: sent, now: clock.now)
                    {
                        failed.append(attempt)
                    }
                    if decided.allSatisfy({ if case .group = $0 { true } else if case .call(let c) = $0 { !c.isDiscovery } else { false } }) {
                        queue += decided
                    } else {
                        after = decided
                    }
                    continue
                }
                guard let finished = try await tasks.next() else { break }
                // A member ended: its slot goes back (the drive's own one stays with the
                // drive), and the members waiting for one try again.
                if extraSlots > 0 {
                    extraSlots -= 1
                    await slots.give()
                }
                queue += waitingForSlot
                waitingForSlot = []
                switch finished {
                case .call(let targeted, let outcome, let sent):
                    inFlight.remove(targeted.stepID)
                    queued = ready[targeted.stepID]
                    since = sent
                    let decided = RunDecision.decide(
                        outcome: outcome, call: targeted, maxAttempts: maxAttempts, now: clock.now, jitter: Double.random(in: 0...1),
                        backoffScale: settings.backoffScale)
                    if let attempt = Self.failedAttempt(
                        targeted, stepID: RunTracing.step(of: targeted, outcome: outcome), outcome: outcome, actions: decided, queuedAt: queued,
                        startedAt: sent, now: clock.now)
                    {
                        failed.append(attempt)
                    }
                    queue += decided
                case .request(let step, let response, let sent):
                    inFlight.remove(step.stepID)
                    queued = ready[step.stepID]
                    since = sent
                    let member = SDKCall(stepID: step.stepID, attempt: 0)
                    let decided = RunDecision.decide(
                        request: step, response: response, call: member, maxAttempts: maxAttempts,
                        now: clock.now, jitter: Double.random(in: 0...1), backoffScale: settings.backoffScale)
                    if let attempt = Self.failedAttempt(
                        member, stepID: step.stepID, outcome: nil, actions: decided, queuedAt: queued, startedAt: sent, now: clock.now)
                    {
                        failed.append(attempt)
                    }
                    queue += decided
                }
            }
            if !parking.isEmpty {
                parking.pendingSteps = memberIDs
                parking.failedAttempts = failed
                try await park(lease, parking)
                return .stopped
            }
            if let after { return .then(after) }
            guard progressed else {
                return .then([.fail(.cairn(name: "UnexpectedGroup", message: "the SDK reported a parallel group whose steps are all recorded already"))])
            }
            return .discovery
        }
    }

    /// Sends the request a `step.ai.infer` or `step.fetch` asks for.
    func send(_ step: OutboundStep) async throws -> OutboundStep.Response {
        let request = SDKRequest(
            method: step.request.method, url: step.request.url, headers: step.request.headers.sorted { $0.key < $1.key }.map { ($0.key, $0.value) },
            body: step.request.body, timeout: settings.callTimeout)
        do {
            let reply = try await outbound.send(request)
            return .reply(status: reply.status, headers: reply.headers, body: reply.body)
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            return .noReply(URLRedaction.redactingURLs(in: "\(error)"))
        }
    }

    /// Adds what `action` waits on to `parking`: a retry's or a sleep's timer; a wait's pause
    /// (events received from now on may match) with its timeout; an invoke's pause with its
    /// timeout and the callee's trigger, stored together. An invoke's pause has no lower bound:
    /// the callee starts only once the pause is stored, and its correlation id is unique.
    /// Items are of this lease's generation. Other actions add nothing.
    func add(_ action: RunAction, to parking: inout Parking, _ lease: RunLease, _ snapshot: RunSnapshot) {
        let trigger = snapshot.events.first ?? .object([:])
        switch action {
        case .retry(let retryCall, let at, _):
            parking.timers.append((WorkItem(runID: lease.runID, reason: .retry, call: retryCall, generation: lease.token), at))
        case .sleep(let stepID, let name, let until):
            if settings.metrics.tracing.isEnabled {
                parking.sleepSpans.append(RunTracing.stepSpan(
                    lease.runID, function: snapshot.function.id, stepID: stepID, name: name, op: "Sleep", attempts: 1, start: clock.now, end: until))
            }
            parking.timers.append((WorkItem(runID: lease.runID, reason: .wake, call: SDKCall(stepID: stepID, attempt: 0), generation: lease.token), until))
        case .waitForEvent(let stepID, _, let event, let expression, let until):
            let pause = Pause(
                runID: lease.runID, stepID: stepID, kind: .wait, eventName: event, expression: expression, triggerEvent: trigger,
                eventsAfter: Invocation.eventsAfter(clock.now), expiresAt: until)
            parking.pauses.append((pause, Invocation.timeoutItem(lease.runID, stepID, generation: lease.token)))
        case .invoke(let stepID, _, let functionID, let payload, let until):
            let correlation = Invocation.correlationID(runID: lease.runID, stepID: stepID)
            parking.events += stamper.accept([Invocation.invokedEvent(
                functionID: functionID, payload: payload, correlationID: correlation, callerSlug: snapshot.function.id, expires: until,
                now: clock.now)], now: clock.now)
            let pause = Pause(
                runID: lease.runID, stepID: stepID, kind: .invoke, eventName: SystemEvents.finished,
                expression: "async.data.correlation_id == \(JSONValue.string(correlation).jsonString)", triggerEvent: trigger,
                eventsAfter: nil, expiresAt: until)
            parking.pauses.append((pause, Invocation.timeoutItem(lease.runID, stepID, generation: lease.token)))
        default:
            break
        }
    }

    /// Before discovery after a step of a parallel group that waited for a retry: continue only
    /// once every step of the group is recorded. False when the drive ends here (the lease is
    /// released; the group's other members continue it). A member recorded by someone else
    /// since this drive read the run keeps the lease (`releaseGroup`): the drive reloads the
    /// run and looks again.
    func continueGroup(_ lease: RunLease, _ snapshot: inout RunSnapshot) async throws -> Bool {
        guard !snapshot.pendingSteps.isEmpty else { return true }
        while snapshot.pendingSteps.contains(where: { snapshot.steps[$0] == nil }) {
            // Let go only if no member was recorded since this drive read the run: one recorded
            // meanwhile had its own resume refused while this drive held the run.
            switch try await store.releaseGroup(lease, steps: snapshot.stack.count, now: clock.now) {
            case .released:
                letGo(lease.runID)
                return false
            case .leaseLost: throw LeaseLost(runID: lease.runID)
            case .stepsChanged: snapshot = try await store.snapshot(lease.runID)
            }
        }
        try await clearGroup(lease, &snapshot)
        return true
    }

    /// Forgets the run's parallel group: the next discovery runs steps inline again.
    func clearGroup(_ lease: RunLease, _ snapshot: inout RunSnapshot) async throws {
        guard try await store.clearPending(lease) else { throw LeaseLost(runID: lease.runID) }
        snapshot.pendingSteps = []
        snapshot.forceStepPlan = false
    }

    /// Parks the run, then announces the events stored with it, indexes its timers, and lets
    /// each new wait look back for an event that arrived while it was being written.
    func park(_ lease: RunLease, _ parking: Parking) async throws {
        guard try await store.park(lease, parking, now: clock.now) else { throw LeaseLost(runID: lease.runID) }
        letGo(lease.runID)
        settings.metrics.tracing.emit(parking.sleepSpans)
        await events.announce(parking.events)
        await index(parking.timers.map { ($0.item.entryID, $0.due) } + parking.pauses.map { ($0.timeout.entryID, $0.pause.expiresAt) })
        do { try await matcher.lookBack(parking.pauses.map(\.pause)) } catch {
            // The pauses stay marked as not looked back; the reconciler does it.
            logger.warning("looking back for a new pause's event failed", metadata: ["run": "\(lease.runID)", "error": "\(error)"])
        }
    }

    /// Ends the drive without changing the run.
    func release(_ lease: RunLease) async throws {
        guard try await store.release(lease, now: clock.now) else { throw LeaseLost(runID: lease.runID) }
        letGo(lease.runID)
    }

    /// Adds timers to the due index; a failure only delays them to the next Postgres sweep.
    func index(_ entries: [(String, Date)]) async {
        do { try await timers.schedule(entries.map { (id: $0.0, due: $0.1) }) } catch {
            logger.notice("indexing timers failed; they fire on the next sweep", metadata: ["error": "\(error)"])
        }
    }

    /// Ends the run with its system events and the drive's failed attempts in one transaction,
    /// then announces the events.
    func end(_ lease: RunLease, _ snapshot: RunSnapshot, _ end: RunEnd, failedAttempts: [RunRecord.FailedAttempt] = []) async throws {
        if case .completed(let output) = end, let failure = RunLimits.outputFailure("the function", bytes: output.serialized().count) {
            return try await self.end(lease, snapshot, .failed(failure), failedAttempts: failedAttempts)
        }
        let now = clock.now
        let emitted = stamper.accept(
            SystemEvents.forEnd(functionSlug: snapshot.function.id, runID: snapshot.runID, events: snapshot.events, end: end), now: now)
        switch try await store.finish(lease, end, steps: snapshot.stack.count, failedAttempts: failedAttempts, emitting: emitted, now: now) {
        case .finished:
            letGo(lease.runID)
            settings.metrics.ended(function: snapshot.function.id, runID: lease.runID, status: end.metricStatus, error: end.errorMessage, now: now)
            await events.announce(emitted)
        case .leaseLost: throw LeaseLost(runID: lease.runID)
        case .stepsChanged: throw StepsChanged()
        }
    }

    /// Records a step and keeps the snapshot in step. False when driving must stop because the
    /// result broke the step output limit (the run is then failed); throws `LeaseLost` when the
    /// lease is gone. `since` is when the attempt that ran the step was sent: its step span
    /// starts there (a sleep's span is emitted when it is planned, so its record has none);
    /// `queued` is when that attempt became ready. Both are stored with the step.
    func record(
        _ lease: RunLease, _ snapshot: inout RunSnapshot, stepID: String, name: String, op: String, result: JSONValue, attempts: Int,
        queued: Date? = nil, since: Date? = nil
    ) async throws -> Bool {
        // One serialization serves the limit, the state size and the store.
        let serialized = result.jsonString
        if let failure = RunLimits.outputFailure("step \"\(name)\"", bytes: serialized.utf8.count) {
            try await end(lease, snapshot, .failed(failure))
            return false
        }
        let step = StepRecord(
            stepID: stepID, position: snapshot.stack.count, name: name, op: op, result: serialized, attempts: attempts,
            queuedAt: since == nil ? nil : queued, startedAt: since)
        switch try await store.recordStep(lease, step, now: clock.now) {
        case .recorded:
            snapshot.record(step, value: result)
            if let since {
                settings.metrics.tracing.step(
                    lease.runID, function: snapshot.function.id, stepID: stepID, name: name, op: op, attempts: attempts, start: since, end: clock.now)
            }
        case .alreadyRecorded:
            // First write wins: continue from what is stored, not from this result.
            logger.notice("step already recorded; continuing from the stored result", metadata: ["run": "\(lease.runID)", "step": "\(stepID)"])
            snapshot = try await store.snapshot(lease.runID)
        case .leaseLost:
            throw LeaseLost(runID: lease.runID)
        case .stepsChanged:
            throw StepsChanged()
        }
        return true
    }

    /// One call request. Transport failures and replies the server cannot read count as a
    /// failed attempt of the function. Returns the outcome and when the request was sent.
    func callSDK(
        _ lease: RunLease, snapshot: RunSnapshot, call: SDKCall, maxAttempts: Int, version: inout Int, disableImmediateExecution: Bool
    ) async throws -> (outcome: SDKOutcome, sent: Date) {
        var request = try SDKCallRequest.make(
            snapshot: snapshot, call: call, maxAttempts: maxAttempts, version: version, keys: keys, now: clock.now,
            timeout: settings.callTimeout, disableImmediateExecution: disableImmediateExecution)
        let tracing = settings.metrics.tracing
        let spanID = tracing.isEnabled ? RunTracing.newSpanID() : 0
        if tracing.isEnabled { request.headers.append(("traceparent", RunTracing.traceparent(runID: lease.runID, spanID: spanID))) }
        let reply: SDKReply
        let sentAt = clock.now
        let sent = ContinuousClock.now
        func traced(_ outcome: SDKOutcome?, status: Int?, error: String? = nil) {
            guard tracing.isEnabled else { return }
            tracing.request(
                lease.runID, function: snapshot.function.id, call: call, spanID: spanID, url: URLRedaction.redact(request.url), status: status,
                outcome: outcome, error: error, start: sentAt, end: clock.now)
        }
        do {
            reply = try await sdk.send(request)
            settings.metrics.sdkRequest(
                function: snapshot.function.id, outcome: SDKOutcome.metricOutcome(status: reply.status, headers: reply.headers),
                seconds: (ContinuousClock.now - sent).timeInterval)
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            settings.metrics.sdkRequest(function: snapshot.function.id, outcome: "transport_error", seconds: (ContinuousClock.now - sent).timeInterval)
            // The URL may hold credentials: the stored error, its events and logs show it redacted.
            let message = "calling the app at \(URLRedaction.redact(request.url)) failed: \(URLRedaction.redactingURLs(in: "\(error)"))"
            traced(nil, status: nil, error: message)
            return (.failed(.cairn(name: "Error", message: message), retry: RetryDirective(notDelivered: error is SDKCallNotDelivered)), sentAt)
        }
        if let returned = reply.headers["x-inngest-req-version"].flatMap(Int.init) { version = returned }
        let outcome: SDKOutcome
        do {
            if (200..<300).contains(reply.status), reply.headers["x-inngest-sdk"] == nil {
                throw SDKResponseError(reason: "the reply (HTTP \(reply.status)) did not come from an Inngest SDK (no x-inngest-sdk header)")
            }
            // Outside dev mode the SDK signs its reply with the key that verified the call
            // (over HTTP; a connect worker's session is authenticated already).
            if let keys, !reply.authenticatedByChannel {
                let check = keys.verify(
                    signatureHeader: reply.headers["x-inngest-signature"], body: reply.body,
                    nowSeconds: Int64(clock.now.timeIntervalSince1970))
                guard check == .valid else {
                    throw SDKResponseError(reason: "the reply's x-inngest-signature is \(check); is the app using Cairn's signing key?")
                }
            }
            outcome = try SDKOutcome.classify(status: reply.status, headers: reply.headers, body: reply.body, now: clock.now)
        } catch {
            outcome = .failed(.cairn(name: "Error", message: "\(error)"), retry: RetryDirective())
        }
        traced(outcome, status: reply.status)
        return (outcome, sentAt)
    }

    /// Runs `body` while renewing `lease` every third of the lease duration, so that a run whose
    /// calls take long keeps its lease. (One renewal task per drive, not per call: a timer per
    /// step call cost more than the rest of the step's bookkeeping.)
    ///
    /// A renewal that finds the lease gone stops `body` at once (`LeaseLost`): another
    /// executor drives the run now. A renewal that fails (the database is unreachable) is
    /// retried; only when no renewal has succeeded for a whole lease duration, so the lease may
    /// have lapsed, is `body` stopped.
    func withLeaseRenewed<T: Sendable>(_ lease: RunLease, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
        try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask { try await body() }
            group.addTask {
                var confirmed = self.clock.now
                var wait = self.settings.leaseDuration / 3
                while true {
                    try await self.clock.sleep(for: wait)
                    do {
                        guard try await self.store.renew(lease, duration: self.settings.leaseDuration) else { throw LeaseLost(runID: lease.runID) }
                        confirmed = self.clock.now
                        wait = self.settings.leaseDuration / 3
                    } catch let lost as LeaseLost {
                        throw lost
                    } catch is CancellationError {
                        throw CancellationError()
                    } catch {
                        if self.clock.now.timeIntervalSince(confirmed) >= self.settings.leaseDuration.timeInterval {
                            throw LeaseLost(runID: lease.runID)
                        }
                        self.logger.warning("renewing a lease failed; retrying", metadata: ["run": "\(lease.runID)", "error": "\(error)"])
                        wait = min(self.settings.leaseDuration / 10, .seconds(1))
                    }
                }
            }
            defer { group.cancelAll() }
            while let result = try await group.next() {
                if let result { return result }
            }
            throw CancellationError()
        }
    }
}

/// The lease on a run is gone: another executor took it over after it lapsed, or the run was
/// cancelled. The drive stops; its work item stays live and is delivered again.
struct LeaseLost: Error, CustomStringConvertible {
    var runID: ULID
    var description: String { "the lease on run \(runID) was lost" }
}

/// The run's log does not hold the steps this drive recorded: one was lost before its commit.
/// The drive reloads the run and goes on.
struct StepsChanged: Error {}

extension RunSnapshot {
    /// Adds a step just recorded.
    mutating func record(_ step: StepRecord, value: JSONValue) {
        guard steps[step.stepID] == nil else { return }
        steps[step.stepID] = value
        stack.append(step.stepID)
        attempts[step.stepID] = step.attempts
        stateBytes += step.result.utf8.count
    }
}

/// Per-run limits (docs/protocol.md §8).
public enum RunLimits {
    public static let maximumSteps = 1_000
    public static let maximumStepOutputBytes = 4 * 1024 * 1024
    public static let maximumStateBytes = 32 * 1024 * 1024
    static let maximumSleepSeconds: Double = 366 * 86_400

    /// The limit a run has reached, described, or nil.
    static func exceeded(by snapshot: RunSnapshot) -> String? {
        if snapshot.stack.count >= maximumSteps {
            return "the run has \(snapshot.stack.count) steps; at most \(maximumSteps) are allowed"
        }
        if snapshot.stateBytes > maximumStateBytes {
            return "the run's state is \(snapshot.stateBytes) bytes; at most \(maximumStateBytes) are allowed"
        }
        return nil
    }

    /// The failure for an output of `bytes` bytes from `producer` (a step, the function), or
    /// nil when it is within the limit.
    static func outputFailure(_ producer: @autoclosure () -> String, bytes: Int) -> RunFailure? {
        guard bytes > maximumStepOutputBytes else { return nil }
        return failure("\(producer()) returned \(bytes) bytes; at most \(maximumStepOutputBytes) are allowed")
    }

    static func failure(_ message: String) -> RunFailure {
        .cairn(name: "RunLimitExceeded", message: message)
    }
}

/// A counter of free slots that tasks wait on.
actor AsyncSlots {
    private var free: Int
    private var waiters: [CheckedContinuation<Void, Never>] = []

    init(count: Int) {
        free = count
    }

    /// Waits until at least one slot is free; returns how many are.
    func waitForFree() async -> Int {
        while free == 0 { await withCheckedContinuation { waiters.append($0) } }
        return free
    }

    func take() async {
        while free == 0 { await withCheckedContinuation { waiters.append($0) } }
        free -= 1
    }

    /// Takes a slot if one is free; never waits.
    func tryTake() -> Bool {
        guard free > 0 else { return false }
        free -= 1
        return true
    }

    func give(_ count: Int = 1) {
        free += count
        for _ in 0..<min(count, waiters.count) { waiters.removeFirst().resume() }
    }
}
