public import Foundation
public import Logging
public import Metrics
public import ServiceLifecycle

/// What retention deletes, each by its own age.
public enum RetentionKind: String, Sendable, CaseIterable {
    /// Runs that ended before the cutoff, with their steps, history, timers and pauses.
    case runs
    /// Events received before the cutoff that no kept run refers to and that are routed (a
    /// delayed event waits for its timer); their dedupe rows go with them.
    case events
    /// Dedupe claims on event ids, past their window.
    case dedupe
    /// Run idempotency claims, past their window.
    case idempotency
    /// Timers fired before the cutoff.
    case timers
    /// Pauses consumed before the cutoff.
    case pauses
    /// Batches closed before the cutoff, with the record of their events.
    case batches
    /// Rate-limit states that have drained (the same as none).
    case rateLimits
}

/// Deletes expired rows in small batches.
public protocol RetentionStore: Sendable {
    /// Deletes at most `limit` rows of `kind` older than `cutoff` (claims: expired at `now`),
    /// oldest first, skipping rows another collector holds; returns how many.
    func deleteExpired(_ kind: RetentionKind, cutoff: Date, now: Date, limit: Int) async throws -> Int
}

/// How long each kind of row is kept; nil keeps it for ever. Claims (dedupe, idempotency) go
/// when their window ends.
public struct RetentionSettings: Sendable {
    /// `CAIRN_RETENTION_RUNS_DAYS`: ended runs. Default 30 days.
    public var runs: Duration? = .seconds(30 * 86_400)
    /// `CAIRN_RETENTION_EVENTS_DAYS`: events. Default 30 days.
    public var events: Duration? = .seconds(30 * 86_400)
    /// `CAIRN_RETENTION_BOOKKEEPING_DAYS`: fired timers and consumed pauses. Default 7 days.
    public var bookkeeping: Duration? = .seconds(7 * 86_400)
    /// Rows deleted per statement.
    public var batchSize = 100
    /// Least pause between two batches.
    public var batchPause: Duration = .milliseconds(20)
    /// After each batch the collector also pauses this many times as long as the batch took,
    /// so that deleting a backlog keeps to a tenth of one connection's time and never crowds
    /// out the hot path, whatever the database's speed.
    public var pacing = 9
    /// Pause between passes.
    public var interval: Duration = .seconds(60)

    public init() {}

    /// The cutoff for `kind` at `now`; nil when it is kept for ever.
    func cutoff(_ kind: RetentionKind, now: Date) -> Date? {
        let keep: Duration?
        switch kind {
        case .runs: keep = runs
        case .events: keep = events
        case .timers, .pauses, .batches: keep = bookkeeping
        case .dedupe, .idempotency, .rateLimits: keep = .zero
        }
        return keep.map { now.addingTimeInterval(-$0.timeInterval) }
    }
}

/// The retention job, part of `cairn-scheduler`: every `interval` it deletes what has expired,
/// kind by kind, in batches of `batchSize`, pausing after each `pacing` times as long as it
/// took, until a batch comes back short. Safe with any number of replicas: each batch skips rows another one holds.
/// Deletions are counted in `cairn_retention_deleted_total{kind}`.
public final class RetentionCollector: Service {
    let store: any RetentionStore
    let settings: RetentionSettings
    let clock: any WallClock
    let logger: Logger
    private let deleted: [RetentionKind: Counter]

    public init(store: any RetentionStore, settings: RetentionSettings, clock: any WallClock, logger: Logger, metrics: any MetricsFactory = MetricsSystem.factory) {
        self.store = store
        self.settings = settings
        self.clock = clock
        self.logger = logger
        var deleted: [RetentionKind: Counter] = [:]
        for kind in RetentionKind.allCases {
            deleted[kind] = Counter(label: "cairn_retention_deleted_total", dimensions: [("kind", kind.rawValue)], factory: metrics)
        }
        self.deleted = deleted
    }

    public func run() async throws {
        await repeatUntilShutdown(logger: logger, failure: "a retention pass failed; retrying") {
            try await pass()
            try await pauseUntilShutdown(for: settings.interval, on: clock)
        }
    }

    /// One pass over every kind; returns how many rows of each were deleted.
    @discardableResult
    public func pass() async throws -> [RetentionKind: Int] {
        var totals: [RetentionKind: Int] = [:]
        // Runs before events: an event goes once no kept run refers to it.
        for kind in RetentionKind.allCases {
            let now = clock.now
            guard let cutoff = settings.cutoff(kind, now: now) else { continue }
            while true {
                let started = ContinuousClock.now
                let count = try await store.deleteExpired(kind, cutoff: cutoff, now: now, limit: settings.batchSize)
                totals[kind, default: 0] += count
                deleted[kind]?.increment(by: Int64(count))
                if count < settings.batchSize { break }
                try await pauseUntilShutdown(for: max(settings.batchPause, (ContinuousClock.now - started) * settings.pacing), on: clock)
            }
        }
        if totals.values.contains(where: { $0 > 0 }) {
            logger.info("retention deleted expired rows", metadata: totals.reduce(into: [:]) { $0[$1.key.rawValue] = "\($1.value)" })
        }
        return totals
    }
}
