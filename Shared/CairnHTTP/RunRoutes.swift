import CairnCore
public import CairnEngine
import Foundation
public import Hummingbird

/// Runs over REST (docs/protocol.md §7).
///
/// - `GET /v1/runs/{id}` — status, output, error, timestamps, the steps with their recorded
///   result (`output` or `error`), attempts and final attempt's `queued_at` and `started_at`,
///   `failed_attempts` (`{step_id, attempt, queued_at, started_at, ended_at, error}`, oldest
///   first), and `waiting_for`: the sleep, wait or invoke the run waits on
///   (`{kind, step_id, event?, until}`).
/// - `GET /v1/events/{id}/runs` — the runs an event started or joined (a batch), and the runs
///   it did not start (status `Skipped`, with `skip: {reason, run_id}`):
///   `{run_id, run_started_at, function_id, function_version, event_id, status, ended_at,
///   batch_id?, skip?, output}`.
/// - `GET /v0/runs/{id}/batch`, `GET /v0/runs/{id}/actions` — the run's events and step
///   results, for SDKs called with `use_api` (state over 4 MiB).
/// - `DELETE /v1/runs/{id}` — cancels a run that has not ended: 200 `{"data":{"run_id",
///   "status":"Cancelled"}}`, 409 when it had already ended, 404 when unknown.
/// - `POST /v1/runs/{id}/rerun` — body `{"from_step"?: id or name, "data"?: object}`, all
///   optional: starts a new run of the function with the run's events (or the trigger's
///   `data` replaced), memoizing the steps before `from_step` (docs/operations.md). 201
///   `{"data":{"run_id", "original_run_id"}}`; 404 for an unknown run, 409 when its function
///   or events are gone, 400 naming the field at fault.
public struct RunRoutes: Sendable {
    let runs: any RunQueries
    let store: any RunStore
    let cancellation: RunCancellation
    let responses: RESTResponses
    let authorization: APIAuthorization
    let rerun: RunRerun

    public init(
        runs: any RunQueries & RunStore, cancellation: RunCancellation, rerun: RunRerun, clock: any WallClock, authorization: APIAuthorization
    ) {
        self.runs = runs
        self.store = runs
        self.cancellation = cancellation
        self.rerun = rerun
        self.responses = RESTResponses(clock: clock)
        self.authorization = authorization
    }

    public func register<Context: RequestContext>(on router: Router<Context>) {
        router.get("/v1/runs/:id") { request, context -> Response in
            if let refusal = await self.authorization.refusal(request) { return refusal }
            let text = context.parameters.get("id") ?? ""
            guard let id = ULID(text) else {
                return RESTResponses.error(.badRequest, "id: must be a run id (ULID), got \(JSONText.quoted(text))")
            }
            guard let run = try await self.runs.run(id) else { return RESTResponses.error(.notFound, "id: must name an existing run, got \(id)") }
            var data = Self.summary(run)
            data.setValue(.array(run.steps.map(Self.step)), forKey: "steps")
            data.setValue(.array(run.failedAttempts.map(Self.failedAttempt)), forKey: "failed_attempts")
            data.setValue(.array(run.waitingFor.map(Self.waiting)), forKey: "waiting_for")
            return self.responses.envelope(data: data)
        }
        router.delete("/v1/runs/:id") { request, context -> Response in
            if let refusal = await self.authorization.refusal(request) { return refusal }
            let text = context.parameters.get("id") ?? ""
            guard let id = ULID(text) else {
                return RESTResponses.error(.badRequest, "id: must be a run id (ULID), got \(JSONText.quoted(text))")
            }
            if try await self.cancellation.cancel(id) {
                return self.responses.envelope(data: ["run_id": .string(id.description), "status": "Cancelled"])
            }
            guard let run = try await self.runs.run(id) else { return RESTResponses.error(.notFound, "id: must name an existing run, got \(id)") }
            return RESTResponses.error(.conflict, "id: must name a run that has not ended, got \(id) (\(run.status))")
        }
        router.post("/v1/runs/:id/rerun") { request, context -> Response in
            if let refusal = await self.authorization.refusal(request) { return refusal }
            let text = context.parameters.get("id") ?? ""
            guard let id = ULID(text) else {
                return RESTResponses.error(.badRequest, "id: must be a run id (ULID), got \(JSONText.quoted(text))")
            }
            guard let body = try await RESTResponses.collectBody(request, upTo: Self.maximumRerunBytes) else {
                return RESTResponses.error(.contentTooLarge, "body: must be at most \(Self.maximumRerunBytes) bytes")
            }
            let rerun: RunRerun.Request
            switch Self.rerunRequest(id, Array(buffer: body)) {
            case .failure(let failure): return failure.response
            case .success(let parsed): rerun = parsed
            }
            do {
                let runID = try await self.rerun.rerun(rerun)
                return self.responses.envelope(
                    data: ["run_id": .string(runID.description), "original_run_id": .string(id.description)], status: .created)
            } catch let refusal as OperationRefusal {
                return RESTResponses.refusal(refusal)
            }
        }
        // The SDK's own callbacks when a call came with use_api: the run's events, and its step
        // results keyed by hashed step id.
        router.get("/v0/runs/:id/batch") { request, context -> Response in
            if let refusal = await self.authorization.refusal(request) { return refusal }
            switch try await self.state(context.parameters.get("id") ?? "") {
            case .failure(let failure): return failure.response
            case .success(let snapshot): return JSONText.response(status: .ok, body: JSONValue.array(snapshot.events).jsonString)
            }
        }
        router.get("/v0/runs/:id/actions") { request, context -> Response in
            if let refusal = await self.authorization.refusal(request) { return refusal }
            switch try await self.state(context.parameters.get("id") ?? "") {
            case .failure(let failure): return failure.response
            case .success(let snapshot):
                let steps = JSONObject(members: snapshot.stack.map { ($0, snapshot.steps[$0] ?? .null) })
                return JSONText.response(status: .ok, body: JSONValue.object(steps).jsonString)
            }
        }
        router.get("/v1/events/:id/runs") { request, context -> Response in
            if let refusal = await self.authorization.refusal(request) { return refusal }
            let text = context.parameters.get("id") ?? ""
            guard let id = ULID(text) else {
                return RESTResponses.error(.badRequest, "id: must be an event's internal ULID, got \(JSONText.quoted(text))")
            }
            return self.responses.envelope(data: .array(try await self.runs.runs(eventID: id).map(Self.summary)))
        }
    }

    struct RouteFailure: Error {
        let response: Response
    }

    /// A rerun's body is small: an edited event's data at most.
    static let maximumRerunBytes = 1_048_576

    /// The rerun body (empty, or an object with `from_step` and `data`, both optional).
    static func rerunRequest(_ id: ULID, _ body: [UInt8]) -> Result<RunRerun.Request, RouteFailure> {
        func refuse(_ message: String) -> Result<RunRerun.Request, RouteFailure> {
            .failure(RouteFailure(response: RESTResponses.error(.badRequest, message)))
        }
        var request = RunRerun.Request(runID: id)
        if body.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) { return .success(request) }
        guard let value = try? JSONValue(parsing: body), case .object(let object) = value else {
            return refuse("body: must be a JSON object such as {\"from_step\": \"charge\", \"data\": {}}")
        }
        for (name, _) in object where name != "from_step" && name != "data" {
            return refuse("\(name): is not a rerun field (from_step, data)")
        }
        switch object["from_step"] {
        case nil, .null?: break
        case .string(let step)? where !step.isEmpty: request.fromStep = step
        default: return refuse("from_step: must be a non-empty string, a step's id or name")
        }
        switch object["data"] {
        case nil, .null?: break
        case .object(let data)?: request.data = data
        default: return refuse("data: must be a JSON object, the trigger event's new data")
        }
        return .success(request)
    }

    /// The run's state for the SDK: 400 for an id that is not a ULID, 410 when the run is gone
    /// or has ended.
    func state(_ text: String) async throws -> Result<RunSnapshot, RouteFailure> {
        guard let id = ULID(text) else {
            return .failure(RouteFailure(response: RESTResponses.error(.badRequest, "id: must be a run id (ULID), got \(JSONText.quoted(text))")))
        }
        guard let run = try await runs.run(id), run.status == "Running" || run.status == "Queued" else {
            return .failure(RouteFailure(response: RESTResponses.error(.gone, "id: must name a run that has not ended, got \(id) (unknown or ended: no state to fetch)")))
        }
        return .success(try await store.snapshot(id))
    }

    static func summary(_ run: RunRecord) -> JSONValue {
        var members: [(String, JSONValue)] = [
            ("run_id", .string(run.id.description)), ("function_id", .string(run.functionSlug)),
            ("function_version", .number(JSONNumber(run.functionVersion))),
            ("event_id", run.eventID.map { .string($0.description) } ?? .null), ("status", .string(run.status)),
            ("run_started_at", run.startedAt.map(RESTResponses.render) ?? .null),
            ("ended_at", run.endedAt.map(RESTResponses.render) ?? .null), ("created_at", RESTResponses.render(run.createdAt)),
        ]
        if let batchID = run.batchID { members.append(("batch_id", .string(batchID))) }
        if let original = run.originalRunID { members.append(("original_run_id", .string(original.description))) }
        if let bulk = run.bulkID { members.append(("bulk_id", .string(bulk))) }
        if let reason = run.skipReason {
            members.append(("skip", ["reason": .string(reason), "run_id": run.skipRunID.map { .string($0.description) } ?? .null]))
        }
        if let output = run.output { members.append(("output", output)) }
        if let error = run.error { members.append(("error", error)) }
        return .object(JSONObject(members: members))
    }

    static func waiting(_ waiting: RunRecord.Waiting) -> JSONValue {
        var members: [(String, JSONValue)] = [("kind", .string(waiting.kind)), ("step_id", .string(waiting.stepID))]
        if let event = waiting.event { members.append(("event", .string(event))) }
        members.append(("until", RESTResponses.render(waiting.until)))
        return .object(JSONObject(members: members))
    }

    static func failedAttempt(_ attempt: RunRecord.FailedAttempt) -> JSONValue {
        .object(JSONObject(members: [
            ("step_id", attempt.stepID.map { .string($0) } ?? .null), ("attempt", .number(JSONNumber(attempt.attempt))),
            ("queued_at", attempt.queuedAt.map(RESTResponses.render) ?? .null),
            ("started_at", attempt.startedAt.map(RESTResponses.render) ?? .null), ("ended_at", RESTResponses.render(attempt.endedAt)),
            ("error", attempt.error),
        ]))
    }

    static func step(_ step: RunRecord.Step) -> JSONValue {
        var members: [(String, JSONValue)] = [
            ("id", .string(step.id)), ("name", .string(step.name)), ("op", .string(step.op)),
            ("attempts", .number(JSONNumber(step.attempts))), ("recorded_at", RESTResponses.render(step.recordedAt)),
            ("queued_at", step.queuedAt.map(RESTResponses.render) ?? .null), ("started_at", step.startedAt.map(RESTResponses.render) ?? .null),
        ]
        if let error = step.result["error"], step.op == "StepFailed" {
            members.append(("error", error))
        } else if case .object(let object) = step.result, object.count == 1, let data = object["data"] {
            members.append(("output", data))
        } else {
            members.append(("output", step.result))
        }
        return .object(JSONObject(members: members))
    }
}
