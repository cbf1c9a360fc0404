public import CairnCore
public import Foundation
public import Logging
public import ServiceLifecycle

/// A bulk cancel or replay (docs/operations.md): the runs of one function that a filter
/// matches, worked through in the background a page at a time.
public struct BulkJob: Sendable, Hashable {
    public enum Kind: String, Sendable, Hashable {
        /// Cancel every matching run that has not ended.
        case cancel
        /// Start each matching run again, from its start, with its events.
        case replay
    }

    public enum Status: String, Sendable, Hashable {
        case running = "Running"
        case completed = "Completed"
        case failed = "Failed"
    }

    public var id: ULID
    public var kind: Kind
    /// A job asked for twice with the same key is created once.
    public var idempotencyKey: String?
    public var functionID: UUID
    public var functionSlug: String
    /// Runs with one of these statuses.
    public var statuses: [String]
    public var createdFrom: Date?
    /// Runs created before this; never later than the job's own creation, so that the runs a
    /// replay starts are not replayed in turn and the job ends.
    public var createdUntil: Date
    public var skipReason: String?
    /// A boolean expression over the run's trigger event (`event.data.tenant == "t1"`).
    public var expression: String?
    public var status: Status = .running
    /// The last run id handled.
    public var cursor: ULID?
    /// The runs its filter matched when it was asked for (before the expression, but after
    /// the equalities of it that `filter` takes): what `scanned` goes up to.
    public var total = 0
    /// Runs walked so far.
    public var scanned = 0
    /// Runs the filter (and the expression) matched so far.
    public var matched = 0
    /// Runs this job cancelled, or runs it started.
    public var done = 0
    public var error: String?
    public var createdAt: Date
    public var finishedAt: Date?

    public init(
        id: ULID, kind: Kind, idempotencyKey: String?, functionID: UUID, functionSlug: String, statuses: [String], createdFrom: Date?, createdUntil: Date,
        skipReason: String?, expression: String?, createdAt: Date
    ) {
        self.id = id
        self.kind = kind
        self.idempotencyKey = idempotencyKey
        self.functionID = functionID
        self.functionSlug = functionSlug
        self.statuses = statuses
        self.createdFrom = createdFrom
        self.createdUntil = createdUntil
        self.skipReason = skipReason
        self.expression = expression
        self.createdAt = createdAt
    }

    /// The runs the job walks, before its expression is applied to each; the expression's
    /// equalities on the event (`Expression.eventPrefilter`) already narrow them in the store.
    public var filter: RunFilter {
        RunFilter(
            functionID: functionID, statuses: statuses, createdFrom: createdFrom, createdUntil: createdUntil, skipReason: skipReason,
            eventContains: expression.flatMap { try? CairnCore.Expression(compiling: $0) }?.eventPrefilter)
    }
}

/// Where bulk jobs are kept.
public protocol BulkStore: Sendable {
    /// Stores `job`, unless a job with its idempotency key exists: returns the job stored.
    func createBulk(_ job: BulkJob) async throws -> BulkJob
    /// The job with id `id`; nil when unknown.
    func bulk(id: ULID) async throws -> BulkJob?
    /// Takes a running job that no other owner holds a live lease on, for `lease`.
    func claimBulk(owner: String, lease: Duration, now: Date) async throws -> BulkJob?
    /// Records the progress of a page (its cursor and counts, the status when it ended) and
    /// extends the lease, if `owner` still holds the job; false when it lost it.
    func advanceBulk(_ job: BulkJob, owner: String, lease: Duration, now: Date) async throws -> Bool
}

/// Works bulk jobs: claims one, walks its runs a page at a time, records the progress with
/// each page, and goes on with the next job. A process that dies leaves its job to another
/// (or to itself after a restart) once the lease lapses; the page it was on is handled again,
/// which cancels nothing twice and starts no run twice.
public final class BulkOperator: Service {
    let store: any RunStore & RunQueries
    let jobs: any BulkStore
    let eventLog: any EventLog
    let cancellation: RunCancellation
    let rerun: RunRerun
    let clock: any WallClock
    let logger: Logger
    let owner: String
    let pageSize: Int
    /// Runs of a page handled at once.
    let parallelism = 16
    let lease: Duration
    let idle: Duration

    public init(
        store: any RunStore & RunQueries, jobs: any BulkStore, eventLog: any EventLog, cancellation: RunCancellation, rerun: RunRerun,
        clock: any WallClock, logger: Logger, owner: String = "bulk-" + UUID().uuidString.lowercased(), pageSize: Int = 200,
        lease: Duration = .seconds(30), idle: Duration = .seconds(1)
    ) {
        self.store = store
        self.jobs = jobs
        self.eventLog = eventLog
        self.cancellation = cancellation
        self.rerun = rerun
        self.clock = clock
        self.logger = logger
        self.owner = owner
        self.pageSize = pageSize
        self.lease = lease
        self.idle = idle
    }

    public func run() async throws {
        await repeatUntilShutdown(logger: logger, failure: "working bulk jobs failed; retrying") {
            if try await !self.workOne() { try await cancelWhenGracefulShutdown { try await Task.sleep(for: self.idle) } }
        }
    }

    /// Claims a job and works it to its end (or until the lease is lost); false when there was
    /// none to claim.
    @discardableResult
    public func workOne() async throws -> Bool {
        guard var job = try await jobs.claimBulk(owner: owner, lease: lease, now: clock.now) else { return false }
        logger.info("working a bulk job", metadata: ["bulk": "\(job.id)", "kind": "\(job.kind.rawValue)", "done": "\(job.done)"])
        let expression: CairnCore.Expression?
        do {
            expression = try job.expression.map { try CairnCore.Expression(compiling: $0) }
        } catch {
            job.status = .failed
            job.error = "if: \(error)"
            job.finishedAt = clock.now
            _ = try await jobs.advanceBulk(job, owner: owner, lease: lease, now: clock.now)
            return true
        }
        while job.status == .running {
            try Task.checkCancellation()
            try await page(&job, expression: expression)
            guard try await jobs.advanceBulk(job, owner: owner, lease: lease, now: clock.now) else {
                logger.notice("lost a bulk job's lease; another process goes on with it", metadata: ["bulk": "\(job.id)"])
                return true
            }
        }
        logger.info("bulk job ended", metadata: ["bulk": "\(job.id)", "status": "\(job.status.rawValue)", "matched": "\(job.matched)", "done": "\(job.done)"])
        return true
    }

    /// Handles the next page of the job's runs, `parallelism` at a time: each run is its own
    /// transaction, and they do not depend on one another.
    func page(_ job: inout BulkJob, expression: CairnCore.Expression?) async throws {
        let runs = try await store.runs(job.filter, after: job.cursor, ascending: true, limit: pageSize)
        let now = clock.now
        // The page's trigger events in one read, for the expression.
        var events: [ULID: JSONValue] = [:]
        if expression != nil {
            for event in try await eventLog.events(ids: runs.compactMap(\.eventID)) { events[event.id] = event.payload }
        }
        let (matched, done) = try await handle(runs, events: events, kind: job.kind, bulkID: job.id, expression: expression, now: now)
        job.matched += matched
        job.done += done
        job.cursor = runs.last?.id ?? job.cursor
        job.scanned += runs.count
        if runs.count < pageSize {
            job.status = .completed
            job.finishedAt = now
        }
    }

    /// Handles `runs` (their trigger events in `events`) in batches of `parallelism`; returns
    /// how many matched and how many were cancelled or replayed. A run whose task fails leaves
    /// the page to be handled again, which does nothing twice.
    ///
    /// Batches of tasks, not a task group: on Swift 6.3 a task group here crashed the test
    /// process with a null call, and so did a `map` closure that computed a value before
    /// creating its task (at random places, as memory corruption does). Keep the closure the
    /// one expression it is.
    func handle(
        _ runs: [RunRecord], events: [ULID: JSONValue], kind: BulkJob.Kind, bulkID: ULID, expression: CairnCore.Expression?, now: Date
    ) async throws -> (matched: Int, done: Int) {
        var matched = 0, done = 0
        var start = runs.startIndex
        while start < runs.endIndex {
            let slice = runs[start..<min(start + parallelism, runs.endIndex)]
            start = slice.endIndex
            let tasks = slice.map { run in Task { try await self.handle(run, events: events, kind: kind, bulkID: bulkID, expression: expression, now: now) } }
            for task in tasks {
                let outcome = try await task.value
                if outcome != .unmatched { matched += 1 }
                if outcome == .done { done += 1 }
            }
        }
        return (matched, done)
    }

    /// What handling one run of a bulk job came to.
    enum Outcome: Sendable {
        /// The expression is false for its event.
        case unmatched
        /// Matched, and already ended (a cancel), or already replayed by this job.
        case unchanged
        /// Cancelled, or replayed.
        case done
    }

    /// Cancels or replays one run if the expression matches its trigger event (in `events`).
    func handle(
        _ run: RunRecord, events: [ULID: JSONValue], kind: BulkJob.Kind, bulkID: ULID, expression: CairnCore.Expression?, now: Date
    ) async throws -> Outcome {
        if let expression {
            let event = run.eventID.flatMap { events[$0] } ?? .object([:])
            let activation = ExpressionActivation(event: event, nowMilliseconds: now.unixMilliseconds)
            // An expression that cannot be evaluated on a run's event does not match it.
            guard (try? expression.evaluateBool(activation)) == true else { return .unmatched }
        }
        let changed: Bool
        switch kind {
        case .cancel: changed = try await cancellation.cancel(run.id)
        case .replay: changed = try await rerun.replay(run, bulkID: bulkID)
        }
        return changed ? .done : .unchanged
    }
}
