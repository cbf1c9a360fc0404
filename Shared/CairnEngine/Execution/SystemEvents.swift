public import CairnCore
import Crypto
public import Foundation

/// The events Cairn emits about runs (PROTOCOL.md §7), and where they go.
public enum SystemEvents {
    public static let finished = "inngest/function.finished"
    public static let failed = "inngest/function.failed"
    public static let cancelled = "inngest/function.cancelled"

    /// The events for a run's end: `function.finished` always, plus `function.failed` or
    /// `function.cancelled`; none when the run was itself started by a `finished` or `failed`
    /// event (no echoes).
    ///
    /// Ids are derived from the run id, so emitting twice (a retried finish) is caught by the
    /// event API's dedupe: `failed` and `cancelled` carry the run id itself, `finished` a ULID
    /// made from the run id.
    public static func forEnd(functionSlug: String, runID: ULID, events: [JSONValue], end: RunEnd, now: Date) -> [Event] {
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
        case .failed(let error):
            data.append(("error", error))
            status = "Failed"
        case .cancelled:
            status = "Cancelled"
        }
        if let correlation = trigger["data"]?["_inngest"]?["correlation_id"] {
            data.append(("correlation_id", correlation))
        }
        data.append(("_inngest", .object(["status": .string(status)])))
        let payload = JSONObject(members: data)
        let ts = now.unixMilliseconds
        var emitted = [Event(name: finished, data: payload, id: derivedID(runID, "finished").description, ts: ts)]
        switch end {
        case .failed: emitted.append(Event(name: failed, data: payload, id: runID.description, ts: ts))
        case .cancelled: emitted.append(Event(name: cancelled, data: payload, id: runID.description, ts: ts))
        case .completed: break
        }
        return emitted
    }

    /// A ULID with the run's time and entropy from a hash of the run id and `purpose`.
    static func derivedID(_ runID: ULID, _ purpose: String) -> ULID {
        let digest = Array(Insecure.SHA1.hash(data: Array("\(purpose):\(runID)".utf8)))
        return ULID(milliseconds: runID.milliseconds, entropy: digest.prefix(10))
    }
}

/// Where the engine sends events it produces (system events, invokes): the ingest path, so
/// they are stored, deduplicated and published like any other.
public protocol EventSink: Sendable {
    func emit(_ events: [Event]) async throws
}

extension EventIngestor: EventSink {
    public func emit(_ events: [Event]) async throws {
        _ = try await ingest(events, seed: nil)
    }
}
