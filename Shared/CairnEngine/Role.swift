/// The roles Cairn's executables play.
///
/// Each role is its own executable and scales on its own; `cairn dev` runs all of them in one
/// process. The raw value is the name used in logs, `/healthz` and configuration.
public enum Role: String, Sendable, CaseIterable, Codable {
    /// Ingests events: validate, dedupe, persist, publish to the `events` stream.
    case eventAPI = "event-api"
    /// The control plane: app sync, queries, cancellation, SDK callbacks, dashboard.
    case api = "api"
    /// Decides when runs start and resume: triggers, timers, waits, flow control.
    case scheduler = "scheduler"
    /// Drives runs: calls the SDK, applies opcodes, records step results.
    case executor = "executor"
    /// Holds WebSocket connections from connect workers.
    case gateway = "gateway"
}
