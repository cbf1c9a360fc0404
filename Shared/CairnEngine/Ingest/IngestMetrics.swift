public import Metrics

/// The ingest path's metrics, created once from a factory (the process's Prometheus registry
/// in production; tests pass their own).
///
/// Names: `cairn_events_accepted_total`, `cairn_events_duplicates_total`,
/// `cairn_events_rejected_total{reason}` (reasons: `invalid`, `too_large`, `unauthorized`,
/// `unavailable`), `cairn_ingest_batch_events` (events per commit) and
/// `cairn_ingest_commit_seconds` (commit latency).
public struct IngestMetrics: Sendable {
    /// Events stored.
    public let accepted: Counter
    /// Events recognised as duplicates and not stored.
    public let duplicates: Counter
    /// Events per commit.
    public let batchSize: Recorder
    /// Time from starting a commit to its end.
    public let commitDuration: Metrics.Timer
    let factory: any MetricsFactory

    /// Creates the metrics on `factory`.
    public init(factory: any MetricsFactory) {
        self.factory = factory
        accepted = Counter(label: "cairn_events_accepted_total", factory: factory)
        duplicates = Counter(label: "cairn_events_duplicates_total", factory: factory)
        batchSize = Recorder(label: "cairn_ingest_batch_events", factory: factory)
        commitDuration = Metrics.Timer(label: "cairn_ingest_commit_seconds", factory: factory)
    }

    /// Why a request was turned away, for `cairn_events_rejected_total{reason}`.
    public enum RejectionReason: String, Sendable, CaseIterable {
        /// A validation rule failed (400).
        case invalid
        /// The body exceeded the limit (413).
        case tooLarge = "too_large"
        /// The event key was not accepted (401).
        case unauthorized
        /// The server could not commit (shutdown or a failed commit, 503).
        case unavailable
    }

    /// Counts one rejected request.
    public func rejected(_ reason: RejectionReason) {
        Counter(label: "cairn_events_rejected_total", dimensions: [("reason", reason.rawValue)], factory: factory).increment()
    }
}
