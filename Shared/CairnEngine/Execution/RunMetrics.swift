public import CairnCore
public import Foundation
public import Metrics
import Synchronization

/// Run lifecycle and SDK call metrics (docs/operations.md, "Metrics"), labelled by function
/// slug, so their cardinality is the number of deployed functions.
///
/// - `cairn_function_runs_scheduled_total{function}`: runs an event started (admitted);
/// - `cairn_function_runs_started_total{function}`: runs driven for the first time;
/// - `cairn_function_runs_ended_total{function,status}`: `completed`, `failed`, `cancelled`,
///   `skipped` (an event a function's options or a pause kept from starting a run);
/// - `cairn_function_run_duration_seconds{function,status}`: creation to end;
/// - `cairn_run_schedule_to_start_seconds{function}`: creation to first drive;
/// - `cairn_step_queue_delay_seconds{function}`: a work item's publication to an executor
///   taking it up (a retry's or a wake-up's item is published when it is due);
/// - `cairn_sdk_requests_total{function,outcome}` and `cairn_sdk_request_duration_seconds{function}`:
///   every call to an app; `outcome` is `done` (the function returned), `steps` (it reported
///   steps), `error` (a failed attempt), `non_retriable`, or `transport_error` (no answer).
///
/// With `inngestNames`, the lifecycle and SDK counters are also exported under Inngest's
/// names (`inngest_function_run_{scheduled,started,ended}_total{fn,status}`,
/// `inngest_sdk_req_{started,ended}_total{fn,status}`), so dashboards and autoscalers built
/// for Inngest keep working.
///
/// It also carries the run tracing, whose root span marks the same moment as the `ended`
/// counter: every path that ends a run reports it here once.
public struct RunMetrics: Sendable {
    let factory: any MetricsFactory
    let inngestNames: Bool
    /// Run traces (docs/operations.md, "Traces"); off unless given a sink.
    public let tracing: RunTracing

    public init(factory: any MetricsFactory = NOOPMetricsHandler.instance, inngestNames: Bool = false, tracing: RunTracing = RunTracing()) {
        self.factory = factory
        self.inngestNames = inngestNames
        self.tracing = tracing
    }

    func count(_ label: String, _ dimensions: [(String, String)], inngest: (String, [(String, String)])? = nil) {
        Counter(label: label, dimensions: dimensions, factory: factory).increment()
        if inngestNames, let (name, labels) = inngest { Counter(label: name, dimensions: labels, factory: factory).increment() }
    }

    /// The time since `runID` was created (its ULID holds the moment).
    func age(of runID: ULID, now: Date) -> TimeInterval {
        max(0, now.timeIntervalSince1970 - Double(runID.milliseconds) / 1_000)
    }

    /// Counts what admitting `arrivals` gave: the runs created (however they were created:
    /// by an event, a batch, a debounce, a cron tick), and the events skipped.
    public func admitted(_ arrivals: [Arrival], _ result: AdmissionResult, now: Date) {
        created(result.started, now: now)
        for (arrival, outcome) in zip(arrivals, result.outcomes) {
            guard case .skipped = outcome else { continue }
            let function = arrival.run.functionSlug
            count(
                "cairn_function_runs_ended_total", [("function", function), ("status", "skipped")],
                inngest: ("inngest_function_run_ended_total", [("fn", function), ("status", "skipped")]))
        }
    }

    /// Counts runs created at `now`, and traces the time from their first event to then.
    public func created(_ runs: [NewRun], now: Date) {
        for run in runs {
            let function = run.functionSlug
            count("cairn_function_runs_scheduled_total", [("function", function)], inngest: ("inngest_function_run_scheduled_total", [("fn", function)]))
            if let event = run.eventIDs.first { tracing.scheduled(run.id, function: function, eventID: event, created: now) }
        }
    }

    /// Wraps a store's cancellation emitter (`RunCancellation.emitter`) so that the runs it
    /// cancels are counted as ended, and their traces' roots emitted: call `report` once the
    /// store call that cancelled them has returned (its transaction committed).
    public func counting(
        _ emit: @escaping @Sendable (CancelledRun) -> [AcceptedEvent], now: Date
    ) -> (emit: @Sendable (CancelledRun) -> [AcceptedEvent], report: @Sendable () -> Void) {
        // By run: a transaction tried again calls the emitter again for the same runs.
        let cancelled = Mutex<[ULID: String]>([:])
        return (
            { run in
                cancelled.withLock { $0[run.runID] = run.functionSlug }
                return emit(run)
            },
            {
                for (runID, function) in cancelled.withLock({ $0 }) { ended(function: function, runID: runID, status: "cancelled", now: now) }
            }
        )
    }

    /// A run is driven for the first time.
    public func started(function: String, runID: ULID, now: Date) {
        count("cairn_function_runs_started_total", [("function", function)], inngest: ("inngest_function_run_started_total", [("fn", function)]))
        Metrics.Timer(label: "cairn_run_schedule_to_start_seconds", dimensions: [("function", function)], factory: factory)
            .recordSeconds(age(of: runID, now: now))
    }

    /// A run ended: `completed`, `failed` (with `error`) or `cancelled`. Its trace's root span
    /// is emitted here.
    public func ended(function: String, runID: ULID, status: String, error: String? = nil, now: Date) {
        tracing.run(runID, function: function, status: status, error: error, end: now)
        count(
            "cairn_function_runs_ended_total", [("function", function), ("status", status)],
            inngest: ("inngest_function_run_ended_total", [("fn", function), ("status", status)]))
        Metrics.Timer(label: "cairn_function_run_duration_seconds", dimensions: [("function", function), ("status", status)], factory: factory)
            .recordSeconds(age(of: runID, now: now))
    }

    /// A work item of `function` waited `seconds` between its publication and an executor
    /// taking it up.
    public func queueDelay(function: String, seconds: TimeInterval) {
        Metrics.Timer(label: "cairn_step_queue_delay_seconds", dimensions: [("function", function)], factory: factory).recordSeconds(seconds)
    }

    /// One call to an app, its outcome and how long it took.
    public func sdkRequest(function: String, outcome: String, seconds: TimeInterval) {
        count("cairn_sdk_requests_total", [("function", function), ("outcome", outcome)], inngest: ("inngest_sdk_req_ended_total", [("fn", function), ("status", outcome)]))
        Metrics.Timer(label: "cairn_sdk_request_duration_seconds", dimensions: [("function", function)], factory: factory).recordSeconds(seconds)
    }
}

extension RunEnd {
    /// The message of a failure, for the run's span.
    var errorMessage: String? {
        guard case .failed(let failure) = self else { return nil }
        return failure.body["message"]?.stringValue ?? "the run failed"
    }

    /// The `status` label of a run that ended so.
    var metricStatus: String {
        switch self {
        case .completed: "completed"
        case .failed: "failed"
        case .cancelled: "cancelled"
        }
    }
}

extension SDKOutcome {
    /// The `outcome` label of a reply: `done`, `steps`, `non_retriable` or `error`.
    static func metricOutcome(status: Int, headers: [String: String]) -> String {
        switch status {
        case 200: "done"
        case 206: "steps"
        default: headers["x-inngest-no-retry"] == "true" ? "non_retriable" : "error"
        }
    }
}
