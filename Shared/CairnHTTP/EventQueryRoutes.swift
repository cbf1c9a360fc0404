import CairnCore
public import CairnEngine
import Foundation
public import Hummingbird

/// `GET /v1/events/{id}` and `GET /v1/events?name=&limit=&cursor=`, in the REST v1 shape
/// `{"data": …, "metadata": {"fetched_at": …, "cached_until": null}}` (docs/protocol.md §7).
///
/// An event is `{"internal_id", "id", "name", "data", "user", "ts", "v", "received_at"}` where
/// `id` is the sender's id (or the internal id when none was given). The list is newest first;
/// `limit` is 1–100 (default 20); when more may follow, `metadata.cursor` is the value to pass
/// as `cursor` for the next page.
public struct EventQueryRoutes: Sendable {
    let log: any EventLog
    let responses: RESTResponses
    let authorization: APIAuthorization

    /// Creates the routes over `log`.
    public init(log: any EventLog, clock: any WallClock, authorization: APIAuthorization) {
        self.log = log
        self.responses = RESTResponses(clock: clock)
        self.authorization = authorization
    }

    /// Registers both routes on `router`.
    public func register<Context: RequestContext>(on router: Router<Context>) {
        router.get("/v1/events/:id") { request, context in
            if let refusal = await self.authorization.refusal(request) { return refusal }
            let text = context.parameters.get("id") ?? ""
            guard let id = ULID(text) else {
                return RESTResponses.error(.badRequest, "id: must be an event's internal ULID, got \(JSONText.quoted(text))")
            }
            guard let event = try await self.log.event(id: id) else {
                return RESTResponses.error(.notFound, "id: must name a stored event, got \(id)")
            }
            return self.responses.envelope(data: Self.render(event), extra: [])
        }
        router.get("/v1/events") { request, _ in
            if let refusal = await self.authorization.refusal(request) { return refusal }
            let query = request.uri.queryParameters
            var limit = 20
            if let raw = query["limit"] {
                guard let value = Int(String(raw)), (1...100).contains(value) else {
                    return RESTResponses.error(.badRequest, "limit: must be an integer from 1 to 100, got \(JSONText.quoted(String(raw)))")
                }
                limit = value
            }
            var cursor: ULID?
            if let raw = query["cursor"], !raw.isEmpty {
                guard let value = ULID(String(raw)) else {
                    return RESTResponses.error(.badRequest, "cursor: must be a cursor from a previous page, got \(JSONText.quoted(String(raw)))")
                }
                cursor = value
            }
            let name = query["name"].map(String.init).flatMap { $0.isEmpty ? nil : $0 }
            if let name, name.utf8.contains(0) || name.utf8.count > EventValidation.maximumNameLength {
                return RESTResponses.error(
                    .badRequest, "name: must be an event name of at most \(EventValidation.maximumNameLength) bytes without NUL characters")
            }
            let events = try await self.log.events(name: name, before: cursor, limit: limit)
            let data = JSONValue.array(events.map(Self.render))
            let extra: [(String, JSONValue)] = events.count == limit ? [("cursor", .string(events.last!.id.description))] : []
            return self.responses.envelope(data: data, extra: extra)
        }
    }

    static func render(_ event: AcceptedEvent) -> JSONValue {
        var members: [(String, JSONValue)] = [("internal_id", .string(event.id.description))]
        let payload = event.payload
        members.append(("id", payload["id"] ?? .string(event.id.description)))
        members.append(("name", .string(event.name)))
        members.append(("data", payload["data"] ?? .object([:])))
        members.append(("user", payload["user"] ?? .object([:])))
        members.append(("ts", .number(JSONNumber(event.ts))))
        members.append(("v", payload["v"] ?? .null))
        members.append(("received_at", .string(RFC3339.format(milliseconds: event.receivedAt))))
        return .object(JSONObject(members: members))
    }
}
