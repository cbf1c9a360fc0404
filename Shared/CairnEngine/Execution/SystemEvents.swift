public import CairnCore
import Synchronization
public import Foundation

/// The events Cairn emits about runs (docs/protocol.md §7), and where they go.
public enum SystemEvents {
    public static let finished = "inngest/function.finished"
    public static let failed = "inngest/function.failed"
    public static let cancelled = "inngest/function.cancelled"
    /// The event of a cron tick's run.
    public static let scheduledTimer = "inngest/scheduled.timer"

    /// The events for a run's end: `function.finished` always, plus `function.failed` or
    /// `function.cancelled`; none when the run was itself started by a `finished` or `failed`
    /// event (no echoes).
    ///
    /// They are stored in the transaction that ends the run, so only the writer that really
    /// ended it emits them, once. `failed` and `cancelled` carry the run id as their `id`;
    /// `finished` carries its own internal id.
    public static func forEnd(functionSlug: String, runID: ULID, events: [JSONValue], end: RunEnd) -> [Event] {
        let trigger = events.first ?? .object([:])
        if let name = trigger["name"]?.stringValue, name == finished || name == failed { return [] }
        var data: [(String, JSONValue)] = [
            ("function_id", .string(functionSlug)), ("run_id", .string(runID.description)), ("event", trigger),
            ("events", .array(events)),
        ]
        let status: String
        switch end {
        case .completed(let output):
            data.append(("result", output))
            status = "Completed"
        case .failed(let failure):
            data.append(("error", failure.standardError))
            status = "Failed"
        case .cancelled:
            status = "Cancelled"
        }
        if let correlation = trigger["data"]?["_inngest"]?["correlation_id"] {
            data.append(("correlation_id", correlation))
        }
        data.append(("_inngest", .object(["status": .string(status)])))
        let payload = JSONObject(members: data)
        var emitted = [Event(name: finished, data: payload)]
        switch end {
        case .failed: emitted.append(Event(name: failed, data: payload, id: runID.description))
        case .cancelled: emitted.append(Event(name: cancelled, data: payload, id: runID.description))
        case .completed: break
        }
        return emitted
    }
}

/// Where the engine sends events it produces: the ingest path, so they are stored,
/// deduplicated and published like any other.
public protocol EventSink: Sendable {
    /// Ingests events that no run transaction stores (as the event API would).
    func emit(_ events: [Event]) async throws

    /// Publishes events already stored, unpublished, by the transaction that implied them (a
    /// run's end, an invoke). A failure is left to the relay, which publishes every event
    /// that stays unmarked.
    func announce(_ events: [AcceptedEvent]) async
}

/// Gives events the engine stores itself their internal ids (monotonic ULIDs).
public final class EventStamper: Sendable {
    private let ids = Mutex(ULIDGenerator())

    public init() {}

    /// `events` accepted at `now`.
    public func accept(_ events: [Event], now: Date) -> [AcceptedEvent] {
        let receivedAt = now.unixMilliseconds
        return ids.withLock { generator in
            events.map { AcceptedEvent($0, id: generator.next(now: now), receivedAt: receivedAt) }
        }
    }
}

extension EventIngestor: EventSink {
    public func emit(_ events: [Event]) async throws {
        _ = try await ingest(events, seed: nil)
    }
}
