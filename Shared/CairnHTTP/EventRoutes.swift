import CairnCore
public import CairnEngine
import Foundation
public import Hummingbird
import HTTPTypes
import NIOCore

/// Who may send events: the configured event keys, or anyone in dev mode.
public struct EventKeyPolicy: Sendable {
    /// Accepted keys, digested once; empty means none are configured.
    let keys: ConstantTime.SecretSet
    /// Dev mode: with no keys configured, any key is accepted.
    public var isDevMode: Bool

    /// Creates a policy.
    public init(keys: [String], isDevMode: Bool) {
        self.keys = ConstantTime.SecretSet(keys.map { Array($0.utf8) })
        self.isDevMode = isDevMode
    }

    enum Decision { case accept, unknownKey, noKeysConfigured }

    func decide(_ key: String) -> Decision {
        if keys.isEmpty { return isDevMode ? .accept : .noKeysConfigured }
        // Every configured key is compared in constant time, whichever matches.
        return keys.contains(key.utf8) ? .accept : .unknownKey
    }
}

/// `POST /e/{eventKey}`: the event API.
///
/// Answers, as the SDKs expect (docs/protocol.md §6):
/// - 200 `{"ids":[…],"status":200}` once every event is committed, plus `"duplicates":[indices]`
///   when some repeated an `id` seen within the dedupe window (their `ids` slot holds the
///   original event's id);
/// - 400 `{"ids":[],"status":400,"error":"events[3].ts: must be integer milliseconds"}` when any
///   element breaks a rule — nothing of the request is stored;
/// - 401 `{"status":401,"message":"","error":"Event key not found"}` for an unknown key;
/// - 413 when the body exceeds `maximumBodyBytes`, or an event (its JSON) exceeds
///   `maximumEventBytes`, naming the limit (and the event);
/// - 503 while shutting down, when the commit failed, or when no keys are configured outside
///   dev mode.
public struct EventRoutes: Sendable {
    let ingestor: EventIngestor
    let keys: EventKeyPolicy
    let maximumBodyBytes: Int
    let maximumEventBytes: Int
    let metrics: IngestMetrics

    /// Creates the routes.
    public init(ingestor: EventIngestor, keys: EventKeyPolicy, maximumBodyBytes: Int, maximumEventBytes: Int, metrics: IngestMetrics) {
        self.ingestor = ingestor
        self.keys = keys
        self.maximumBodyBytes = maximumBodyBytes
        self.maximumEventBytes = maximumEventBytes
        self.metrics = metrics
    }

    /// Registers `POST /e/{eventKey}` on `router`.
    public func register<Context: RequestContext>(on router: Router<Context>) {
        router.post("/e/:eventKey") { request, context in
            try await self.handle(request, key: context.parameters.get("eventKey") ?? "")
        }
    }

    func handle(_ request: Request, key: String) async throws -> Response {
        switch keys.decide(key) {
        case .accept: break
        case .unknownKey:
            metrics.rejected(.unauthorized)
            return JSONText.response(status: .unauthorized, body: #"{"status":401,"message":"","error":"Event key not found"}"#)
        case .noKeysConfigured:
            metrics.rejected(.unavailable)
            return Self.failure(.serviceUnavailable, "no event keys are configured: set INNGEST_EVENT_KEY")
        }

        guard let body = try await RESTResponses.collectBody(request, upTo: maximumBodyBytes) else {
            metrics.rejected(.tooLarge)
            return Self.failure(.contentTooLarge, "body: must be at most \(maximumBodyBytes) bytes")
        }

        let events: [Event]
        do {
            events = try body.withUnsafeReadableBytes { try EventBatch.decode($0) }
        } catch let error as EventBatchError {
            metrics.rejected(.invalid)
            return Self.failure(.badRequest, error.description)
        }
        // No event can exceed the per-event limit when the whole body does not.
        if body.readableBytes > maximumEventBytes {
            for (index, event) in events.enumerated() {
                let size = event.jsonValue.serialized().count
                if size > maximumEventBytes {
                    metrics.rejected(.tooLarge)
                    return Self.failure(.contentTooLarge, "events[\(index)]: must be at most \(maximumEventBytes) bytes, got \(size)")
                }
            }
        }

        let seed = request.headers[Self.seedHeader].flatMap(ULIDSeed.init(header:))
        let result: IngestResult
        do {
            result = try await ingestor.ingest(events, seed: seed)
        } catch let full as GroupCommitFullError {
            metrics.rejected(.unavailable)
            var response = Self.failure(.serviceUnavailable, full.description)
            response.headers[.retryAfter] = "1"
            return response
        } catch {
            metrics.rejected(.unavailable)
            let reason = (error as? GroupCommitClosedError)?.description ?? "events could not be stored; retry"
            return Self.failure(.serviceUnavailable, reason)
        }
        return JSONText.response(status: .ok, body: Self.acceptedBody(result))
    }

    static let seedHeader = HTTPField.Name(ULIDSeed.headerName)!

    static func acceptedBody(_ result: IngestResult) -> String {
        var text = #"{"ids":["#
        for (index, id) in result.ids.enumerated() {
            if index > 0 { text += "," }
            text += "\""
            text += id.description
            text += "\""
        }
        text += #"],"status":200"#
        if !result.duplicates.isEmpty {
            let indices: [String] = result.duplicates.map { String($0) }
            text += #","duplicates":["#
            text += indices.joined(separator: ",")
            text += "]"
        }
        text += "}"
        return text
    }

    static func failure(_ status: HTTPResponse.Status, _ message: String) -> Response {
        JSONText.response(status: status, body: #"{"ids":[],"status":\#(status.code),"error":\#(JSONText.quoted(message))}"#)
    }
}
