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
    /// The runs its filter matched when it was asked for (before the expression): what
    /// `scanned` goes up to.
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

    /// The runs the job walks (before its expression is applied).
    public var filter: RunFilter {
        RunFilter(functionID: functionID, statuses: statuses, createdFrom: createdFrom, createdUntil: createdUntil, skipReason: skipReason)
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

    /// Handles the next page of the job's runs.
    func page(_ job: inout BulkJob, expression: CairnCore.Expression?) async throws {
        let runs = try await store.runs(job.filter, after: job.cursor, ascending: true, limit: pageSize)
        let now = clock.now
        for run in runs {
            if let expression {
                let event = try await run.eventID.asyncMap { try await eventLog.event(id: $0)?.payload } ?? nil
                let activation = ExpressionActivation(event: event ?? .object([:]), nowMilliseconds: now.unixMilliseconds)
                // An expression that cannot be evaluated on a run's event does not match it.
                guard (try? expression.evaluateBool(activation)) == true else { continue }
            }
            job.matched += 1
            switch job.kind {
            case .cancel:
                if try await cancellation.cancel(run.id) { job.done += 1 }
            case .replay:
                if try await rerun.replay(run, bulkID: job.id) { job.done += 1 }
            }
        }
        job.cursor = runs.last?.id ?? job.cursor
        job.scanned += runs.count
        if runs.count < pageSize {
            job.status = .completed
            job.finishedAt = now
        }
    }
}

extension Optional {
    func asyncMap<T>(_ transform: (Wrapped) async throws -> T) async rethrows -> T? {
        guard let value = self else { return nil }
        return try await transform(value)
    }
}
