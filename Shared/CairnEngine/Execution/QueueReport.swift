public import CairnCore
public import Foundation
public import Logging
public import Metrics
public import ServiceLifecycle

/// What operators see of the work queue (docs/queue.md): per live function with a
/// concurrency limit or work waiting, its limits, the work waiting for an executor and for a
/// slot, the runs holding slots, and how long the oldest item has waited for one. The REST
/// route and the gauges read the same report.
public struct QueueReport: Sendable {
    public struct Line: Sendable {
        public var function: FunctionRecord
        public var limits: [ConcurrencyLimit]
        public var ready: Int
        public var backlog: Int
        public var running: Int
        /// Seconds the oldest waiting item has waited; 0 when nothing waits.
        public var oldestAge: Double
    }

    let registry: any AppRegistry
    let store: any ConcurrencyStore
    let clock: any WallClock

    public init(registry: any AppRegistry, store: any ConcurrencyStore, clock: any WallClock) {
        self.registry = registry
        self.store = store
        self.clock = clock
    }

    /// One line per live function with a limit above 0 or work waiting, by slug.
    public func lines() async throws -> [Line] {
        let states = Dictionary(try await store.queueStates().map { ($0.functionID, $0) }, uniquingKeysWith: { first, _ in first })
        let now = clock.now
        return try await registry.liveFunctions()
            .sorted { $0.config.id < $1.config.id }
            .compactMap { function in
                let limits = function.config.concurrency.filter { $0.limit > 0 }
                let state = states[function.id]
                guard !limits.isEmpty || state.map({ $0.ready + $0.backlog > 0 }) == true else { return nil }
                return Line(
                    function: function, limits: limits, ready: state?.ready ?? 0, backlog: state?.backlog ?? 0,
                    running: state?.running ?? 0, oldestAge: state?.oldest.map { max(0, now.timeIntervalSince($0)) } ?? 0)
            }
    }
}

/// Sets the queue gauges from the report every `interval`, labelled by function slug:
/// `cairn_queue_depth` (with `state` `ready`, waiting for an executor, what the executors'
/// autoscaler reads, or `backlog`, waiting for a slot), `cairn_queue_oldest_age_seconds` and
/// `cairn_concurrency_in_use`. Only live functions in the report are labelled, at most
/// `maximumFunctions` of them, so the label set is bounded by what is deployed; a function
/// that leaves the report reads 0 from then on.
public final class QueueGauges: Service {
    let report: QueueReport
    let clock: any WallClock
    let logger: Logger
    let metrics: any MetricsFactory
    let interval: Duration
    let maximumFunctions = 1_000

    public init(report: QueueReport, clock: any WallClock, logger: Logger, metrics: any MetricsFactory = MetricsSystem.factory, interval: Duration = .seconds(5)) {
        self.report = report
        self.clock = clock
        self.logger = logger
        self.metrics = metrics
        self.interval = interval
    }

    public func run() async throws {
        var labelled: Set<String> = []
        await repeatUntilShutdown(logger: logger, failure: "reading the concurrency lines failed; retrying") {
            labelled = try await update(labelled)
            try await pauseUntilShutdown(for: interval, on: clock)
        }
    }

    /// Sets every gauge once; returns the functions labelled now.
    @discardableResult
    public func update(_ labelledBefore: Set<String> = []) async throws -> Set<String> {
        var labelled: Set<String> = []
        for line in try await report.lines().prefix(maximumFunctions) {
            set(line.function.config.id, ready: line.ready, backlog: line.backlog, age: line.oldestAge, inUse: line.running)
            labelled.insert(line.function.config.id)
        }
        for gone in labelledBefore.subtracting(labelled) { set(gone, ready: 0, backlog: 0, age: 0, inUse: 0) }
        return labelled
    }

    func set(_ function: String, ready: Int, backlog: Int, age: Double, inUse: Int) {
        let dimensions = [("function", function)]
        Gauge(label: "cairn_queue_depth", dimensions: dimensions + [("state", "ready")], factory: metrics).record(ready)
        Gauge(label: "cairn_queue_depth", dimensions: dimensions + [("state", "backlog")], factory: metrics).record(backlog)
        Gauge(label: "cairn_queue_oldest_age_seconds", dimensions: dimensions, factory: metrics).record(age)
        Gauge(label: "cairn_concurrency_in_use", dimensions: dimensions, factory: metrics).record(inUse)
    }
}
