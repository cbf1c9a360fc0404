import CairnCore
public import CairnEngine
import Foundation
import HummingbirdCore
public import Hummingbird

/// Operating on runs and functions (docs/operations.md):
///
/// - `GET /v1/runs?function_id=&status=&from=&until=&bulk_id=&cursor=&limit=` — runs newest
///   first, filtered by function slug, statuses (comma-separated), creation time (RFC 3339,
///   `from` inclusive, `until` exclusive) and the bulk replay that started them; keyset pages of `limit` (1–100, default 20) with
///   `metadata.cursor` for the next.
/// - `POST /v1/cancellations` — `{function_id, from?, until?, if?, idempotency_key?}`: cancels,
///   in the background, every run of the function created in the range that has not ended and
///   whose trigger event `if` is true for. 202 with the bulk job.
/// - `POST /v1/replays` — the same, plus `statuses` (ended ones; default Failed and
///   Cancelled): starts each matching run again from its start, tagged with the job's id.
/// - `GET /v1/bulk/{id}` — a bulk job's progress: `{bulk_id, kind, status, matched, done, …}`.
/// - `POST /v1/functions/{function_id}/pause` — from now the function's events start no run
///   (recorded as `Skipped`, reason `paused`); `.../resume` `{replay?: bool}` ends that, and
///   with `replay` starts a bulk replay of what it skipped.
public struct OperationRoutes: Sendable {
    let runs: any RunQueries
    let operations: FunctionOperations
    let jobs: any BulkStore
    let responses: RESTResponses
    let authorization: APIAuthorization

    public init(runs: any RunQueries, operations: FunctionOperations, jobs: any BulkStore, clock: any WallClock, authorization: APIAuthorization) {
        self.runs = runs
        self.operations = operations
        self.jobs = jobs
        self.responses = RESTResponses(clock: clock)
        self.authorization = authorization
    }

    /// A request body for these routes is a small JSON object.
    static let maximumBodyBytes = 65_536

    public func register<Context: RequestContext>(on router: Router<Context>) {
        router.get("/v1/runs") { request, _ -> Response in
            if let refusal = await self.authorization.refusal(request) { return refusal }
            return try await self.answer { try await self.list(request.uri.queryParameters) }
        }
        router.post("/v1/cancellations") { request, _ -> Response in
            if let refusal = await self.authorization.refusal(request) { return refusal }
            return try await self.answer { try await self.bulk(.cancel, try await Self.body(request)) }
        }
        router.post("/v1/replays") { request, _ -> Response in
            if let refusal = await self.authorization.refusal(request) { return refusal }
            return try await self.answer { try await self.bulk(.replay, try await Self.body(request)) }
        }
        router.get("/v1/bulk/:id") { request, context -> Response in
            if let refusal = await self.authorization.refusal(request) { return refusal }
            return try await self.answer {
                let text = context.parameters.get("id") ?? ""
                guard let id = ULID(text) else { throw OperationRefusal(kind: .invalid, field: "id", rule: "must be a bulk job id (ULID), got \(JSONText.quoted(text))") }
                guard let job = try await self.jobs.bulk(id: id) else { throw OperationRefusal(kind: .notFound, field: "id", rule: "must name a bulk job, got \(id)") }
                return self.responses.envelope(data: Self.render(job))
            }
        }
        router.post("/v1/functions/:function/pause") { request, context -> Response in
            if let refusal = await self.authorization.refusal(request) { return refusal }
            return try await self.answer {
                let function = try await self.operations.function(slug: context.parameters.get("function") ?? "")
                let pausedAt = try await self.operations.pause(function)
                return self.responses.envelope(data: ["function_id": .string(function.slug), "paused": true, "paused_at": RESTResponses.render(pausedAt)])
            }
        }
        router.post("/v1/functions/:function/resume") { request, context -> Response in
            if let refusal = await self.authorization.refusal(request) { return refusal }
            return try await self.answer {
                let body = try await Self.body(request, allowing: ["replay"])
                var replay = false
                switch body["replay"] {
                case nil, .null?: break
                case .bool(let value)?: replay = value
                default: throw OperationRefusal(kind: .invalid, field: "replay", rule: "must be true or false")
                }
                let function = try await self.operations.function(slug: context.parameters.get("function") ?? "")
                let job = try await self.operations.resume(function, replay: replay)
                return self.responses.envelope(data: [
                    "function_id": .string(function.slug), "paused": false, "replay": job.map(Self.render) ?? .null,
                ])
            }
        }
    }

    /// Runs `body`, answering a refusal with its status and message.
    func answer(_ body: () async throws -> Response) async throws -> Response {
        do { return try await body() } catch let refusal as OperationRefusal { return RESTResponses.refusal(refusal) }
    }

    func list(_ query: FlatDictionary<Substring, Substring>) async throws -> Response {
        let queryNames: Set<String> = ["function_id", "status", "from", "until", "bulk_id", "cursor", "limit"]
        if let unknown = query.map({ String($0.key) }).sorted().first(where: { !queryNames.contains($0) }) {
            throw OperationRefusal(kind: .invalid, field: unknown, rule: "is not a filter (\(queryNames.sorted().joined(separator: ", ")))")
        }
        var filter = RunFilter()
        if let slug = query["function_id"].map(String.init), !slug.isEmpty {
            filter.functionID = try await operations.function(slug: slug).id
        }
        if let raw = query["status"], !raw.isEmpty {
            filter.statuses = try Self.statuses(raw.split(separator: ",").map { JSONValue.string(String($0)) })
        }
        filter.createdFrom = try Self.time(query["from"].map { .string(String($0)) }, field: "from")
        filter.createdUntil = try Self.time(query["until"].map { .string(String($0)) }, field: "until")
        if let raw = query["bulk_id"], !raw.isEmpty {
            guard let id = ULID(String(raw)) else {
                throw OperationRefusal(kind: .invalid, field: "bulk_id", rule: "must be a bulk job id (ULID), got \(JSONText.quoted(String(raw)))")
            }
            filter.bulkID = id.description
        }
        var limit = 20
        if let raw = query["limit"] {
            guard let value = Int(String(raw)), (1...100).contains(value) else {
                throw OperationRefusal(kind: .invalid, field: "limit", rule: "must be an integer from 1 to 100, got \(JSONText.quoted(String(raw)))")
            }
            limit = value
        }
        var cursor: ULID?
        if let raw = query["cursor"], !raw.isEmpty {
            guard let value = ULID(String(raw)) else {
                throw OperationRefusal(kind: .invalid, field: "cursor", rule: "must be a cursor from a previous page, got \(JSONText.quoted(String(raw)))")
            }
            cursor = value
        }
        let page = try await runs.runs(filter, after: cursor, ascending: false, limit: limit)
        let extra: [(String, JSONValue)] = page.count == limit ? [("cursor", .string(page.last!.id.description))] : []
        return responses.envelope(data: .array(page.map(RunRoutes.summary)), extra: extra)
    }

    func bulk(_ kind: BulkJob.Kind, _ body: JSONObject) async throws -> Response {
        var allowed = ["function_id", "from", "until", "if", "idempotency_key"]
        if kind == .replay { allowed.append("statuses") }
        if let unknown = body.map(\.0).first(where: { !allowed.contains($0) }) {
            throw OperationRefusal(kind: .invalid, field: unknown, rule: "is not a \(kind == .cancel ? "cancellation" : "replay") field (\(allowed.joined(separator: ", ")))")
        }
        guard case .string(let slug)? = body["function_id"], !slug.isEmpty else {
            throw OperationRefusal(kind: .invalid, field: "function_id", rule: "is required: the slug of the function whose runs to \(kind.rawValue)")
        }
        var selection = FunctionOperations.Selection(function: try await operations.function(slug: slug))
        selection.createdFrom = try Self.time(body["from"], field: "from")
        selection.createdUntil = try Self.time(body["until"], field: "until")
        selection.expression = try Self.text(body["if"], field: "if", rule: "must be an expression over `event`, such as event.data.tenant == \"t1\"")
        selection.idempotencyKey = try Self.text(body["idempotency_key"], field: "idempotency_key", rule: "must be a non-empty string of at most 256 bytes")
        if let key = selection.idempotencyKey, key.utf8.count > 256 {
            throw OperationRefusal(kind: .invalid, field: "idempotency_key", rule: "must be a non-empty string of at most 256 bytes")
        }
        switch body["statuses"] {
        case nil, .null?: break
        case .array(let values)?: selection.statuses = try Self.statuses(values)
        default: throw OperationRefusal(kind: .invalid, field: "statuses", rule: "must be an array of run statuses")
        }
        let job = try await operations.submit(kind, selection)
        return responses.envelope(data: Self.render(job), status: .accepted)
    }

    // MARK: Parsing

    /// The request's JSON object body (empty for an empty body), with only `allowing` members
    /// when that is given.
    static func body(_ request: Request, allowing: Set<String>? = nil) async throws -> JSONObject {
        guard let buffer = try await RESTResponses.collectBody(request, upTo: maximumBodyBytes) else {
            throw OperationRefusal(kind: .invalid, field: "body", rule: "must be at most \(maximumBodyBytes) bytes")
        }
        let bytes = Array(buffer: buffer)
        if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) { return [:] }
        guard case .object(let object)? = try? JSONValue(parsing: bytes) else {
            throw OperationRefusal(kind: .invalid, field: "body", rule: "must be a JSON object")
        }
        if let allowing, let unknown = object.map(\.0).first(where: { !allowing.contains($0) }) {
            throw OperationRefusal(kind: .invalid, field: unknown, rule: "is not a field here (\(allowing.sorted().joined(separator: ", ")))")
        }
        return object
    }

    static func time(_ value: JSONValue?, field: String) throws -> Date? {
        switch value {
        case nil, .null?: return nil
        case .string(let text)? where text.isEmpty: return nil
        case .string(let text)?:
            guard let milliseconds = RFC3339.parseMilliseconds(text) else {
                throw OperationRefusal(kind: .invalid, field: field, rule: "must be an RFC 3339 time such as 2026-12-01T09:30:00Z, got \(JSONText.quoted(text))")
            }
            return Date(timeIntervalSince1970: Double(milliseconds) / 1_000)
        default:
            throw OperationRefusal(kind: .invalid, field: field, rule: "must be an RFC 3339 time such as 2026-12-01T09:30:00Z")
        }
    }

    static func text(_ value: JSONValue?, field: String, rule: String) throws -> String? {
        switch value {
        case nil, .null?: return nil
        case .string(let text)? where !text.isEmpty: return text
        default: throw OperationRefusal(kind: .invalid, field: field, rule: rule)
        }
    }

    static func statuses(_ values: [JSONValue]) throws -> [String] {
        try values.map { value in
            guard case .string(let status) = value, RunFilter.allStatuses.contains(status) else {
                throw OperationRefusal(
                    kind: .invalid, field: "statuses", rule: "must hold run statuses (\(RunFilter.allStatuses.joined(separator: ", "))), got \(value.jsonString)")
            }
            return status
        }
    }

    static func render(_ job: BulkJob) -> JSONValue {
        var members: [(String, JSONValue)] = [
            ("bulk_id", .string(job.id.description)), ("kind", .string(job.kind.rawValue)), ("status", .string(job.status.rawValue)),
            ("function_id", .string(job.functionSlug)), ("statuses", .array(job.statuses.map(JSONValue.string))),
            ("from", job.createdFrom.map(RESTResponses.render) ?? .null), ("until", RESTResponses.render(job.createdUntil)),
            ("if", job.expression.map(JSONValue.string) ?? .null), ("total", .number(JSONNumber(job.total))),
            ("scanned", .number(JSONNumber(job.scanned))), ("matched", .number(JSONNumber(job.matched))),
            ("done", .number(JSONNumber(job.done))), ("created_at", RESTResponses.render(job.createdAt)),
            ("finished_at", job.finishedAt.map(RESTResponses.render) ?? .null),
        ]
        if let reason = job.skipReason { members.append(("skip_reason", .string(reason))) }
        if let error = job.error { members.append(("error", .string(error))) }
        return .object(JSONObject(members: members))
    }
}
