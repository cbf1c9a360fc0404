import CairnCore
import CairnEngine
import Foundation
import Hummingbird

/// What an operator does from the pages. Each action calls the same engine use case as its
/// REST route, records who did it in the audit log, and answers with a redirect to the page
/// that shows the result (post, redirect, get), with a notice in the URL.
struct DashboardActions: Sendable {
    let sources: DashboardSources
    let access: DashboardAccess

    func cancelRun(_ request: DashboardRequest) async throws -> Response {
        let id = try runID(request)
        let cancelled = try await sources.cancellation.cancel(id)
        try await access.audit(request.viewer, "run.cancel", target: id.description, detail: ["cancelled": .bool(cancelled)])
        return Self.back(to: "/runs/\(id)", notice: cancelled ? "Run cancelled." : "The run had already ended.")
    }

    func rerun(_ request: DashboardRequest) async throws -> Response {
        let id = try runID(request)
        var rerun = RunRerun.Request(runID: id)
        rerun.fromStep = request.field("from_step")
        if let text = request.field("data") {
            guard let value = try? JSONValue(parsing: Array(text.utf8)), case .object(let data) = value else {
                throw DashboardPageError.invalid("data: must be a JSON object, the trigger event's new data")
            }
            rerun.data = data
        }
        let newID = try await sources.rerun.rerun(rerun)
        var detail: [(String, JSONValue)] = [("run_id", .string(newID.description))]
        if let step = rerun.fromStep { detail.append(("from_step", .string(step))) }
        try await access.audit(request.viewer, "run.rerun", target: id.description, detail: .object(JSONObject(members: detail)))
        return Self.back(to: "/runs/\(newID)", notice: "Rerun of \(id) started" + (rerun.fromStep.map { " from step \($0)" } ?? "") + ".")
    }

    /// Cancels the runs ticked in the list.
    func cancelSelected(_ request: DashboardRequest) async throws -> Response {
        let ids = try Self.ticked(request, verb: "cancel")
        var cancelled = 0
        for id in ids where try await sources.cancellation.cancel(id) { cancelled += 1 }
        try await access.audit(
            request.viewer, "runs.cancel", target: "\(ids.count) runs",
            detail: ["runs": .array(ids.map { .string($0.description) }), "cancelled": .number(JSONNumber(cancelled))])
        return Self.back(to: request.field("back") ?? "/runs", notice: "Cancelled \(cancelled) of \(ids.count) runs (the others had ended).")
    }

    /// Runs each ticked run again from its start, as a rerun that records its original.
    func rerunSelected(_ request: DashboardRequest) async throws -> Response {
        let ids = try Self.ticked(request, verb: "rerun")
        var started: [JSONValue] = []
        var refused: [String] = []
        for id in ids {
            do {
                started.append(.string(try await sources.rerun.rerun(RunRerun.Request(runID: id)).description))
            } catch let refusal as OperationRefusal {
                refused.append("\(id): \(refusal.rule)")
            }
        }
        try await access.audit(
            request.viewer, "runs.rerun", target: "\(ids.count) runs", detail: ["runs": .array(ids.map { .string($0.description) }), "started": .array(started)])
        let notice = "Started \(started.count) reruns of \(ids.count) runs." + (refused.isEmpty ? "" : " Not rerun: " + refused.joined(separator: "; "))
        return Self.back(to: request.field("back") ?? "/runs", notice: notice)
    }

    /// The run ids ticked in the list's form (at most 500).
    static func ticked(_ request: DashboardRequest, verb: String) throws -> [ULID] {
        let texts = request.form["run"] ?? []
        guard !texts.isEmpty else { throw DashboardPageError.invalid("run: tick at least one run to \(verb)") }
        guard texts.count <= 500 else { throw DashboardPageError.invalid("run: at most 500 runs at once; \(verb) more with a filter") }
        return try texts.map { text in
            guard let id = ULID(text) else { throw DashboardPageError.invalid("run: must be run ids (ULID), got \"\(text)\"") }
            return id
        }
    }

    /// Cancels or replays everything the list's filter matches, as a bulk job.
    func bulk(_ request: DashboardRequest) async throws -> Response {
        guard let slug = request.field("function") else { throw DashboardPageError.invalid("function: pick a function first; a bulk action is per function") }
        let function = try await sources.operations.function(slug: slug)
        let kind: BulkJob.Kind
        switch request.field("action") {
        case "cancel": kind = .cancel
        case "replay": kind = .replay
        default: throw DashboardPageError.invalid("action: must be cancel or replay")
        }
        var selection = FunctionOperations.Selection(
            function: function, createdFrom: try DashboardFormat.formDate(request.field("from"), field: "from"),
            createdUntil: try DashboardFormat.formDate(request.field("until"), field: "until"), expression: request.field("if"))
        if kind == .replay, let statuses = request.form["status"], !statuses.isEmpty { selection.statuses = statuses }
        let job = try await sources.operations.submit(kind, selection)
        try await access.audit(
            request.viewer, kind == .cancel ? "bulk.cancel" : "bulk.replay", target: slug,
            detail: ["bulk_id": .string(job.id.description), "matched": .number(JSONNumber(job.total))])
        let verb = kind == .cancel ? "Cancelling" : "Replaying"
        return Self.back(to: "/bulk/\(job.id)", notice: "\(verb) \(job.total) runs in the background.")
    }

    func pause(_ request: DashboardRequest) async throws -> Response {
        let function = try await sources.operations.function(slug: request.parameter("slug"))
        _ = try await sources.operations.pause(function)
        try await access.audit(request.viewer, "function.pause", target: function.slug)
        return Self.back(to: "/functions/\(Dashboard.percentEncoded(function.slug))", notice: "Paused: new events start no run.")
    }

    func resume(_ request: DashboardRequest) async throws -> Response {
        let function = try await sources.operations.function(slug: request.parameter("slug"))
        let replay = request.field("replay") == "on"
        let job = try await sources.operations.resume(function, replay: replay)
        try await access.audit(request.viewer, "function.resume", target: function.slug, detail: ["replay": .bool(replay)])
        return Self.back(
            to: "/functions/\(Dashboard.percentEncoded(function.slug))",
            notice: "Resumed." + (job.map { " Replaying \($0.total) skipped runs (bulk job \($0.id))." } ?? ""))
    }

    /// Starts a run of the function with the form's JSON as its data, as `step.invoke` would.
    func invoke(_ request: DashboardRequest) async throws -> Response {
        let function = try await sources.operations.function(slug: request.parameter("slug"))
        let text = request.field("data") ?? "{}"
        guard let value = try? JSONValue(parsing: Array(text.utf8)), case .object = value else {
            throw DashboardPageError.invalid("data: must be a JSON object, the run's event data")
        }
        let now = sources.clock.now
        let correlation = "dashboard." + ULID(milliseconds: UInt64(now.unixMilliseconds), entropy: (0..<10).map { _ in UInt8.random(in: 0...255) }).description
        let event = Invocation.invokedEvent(
            functionID: function.slug, payload: ["data": value], correlationID: correlation, callerSlug: "", expires: now.addingTimeInterval(86_400), now: now)
        let ids = try await sources.ingest([event])
        try await access.audit(request.viewer, "function.invoke", target: function.slug, detail: ["event_id": .string(ids.first?.description ?? "")])
        let target = ids.first.map { "/events/\($0)" } ?? "/functions/\(Dashboard.percentEncoded(function.slug))"
        return Self.back(to: target, notice: "Invoked \(function.slug); its run is listed below once the scheduler has started it.")
    }

    /// Sends the form's event (or array of events), as `POST /e/{key}` would.
    func sendEvent(_ request: DashboardRequest) async throws -> Response {
        let text = request.field("event") ?? ""
        let events: [Event]
        do {
            events = try Array(text.utf8).withUnsafeBytes { try EventBatch.decode($0) }
        } catch let error as EventBatchError {
            throw DashboardPageError.invalid("event: \(error.description)")
        }
        let ids = try await sources.ingest(events)
        try await access.audit(request.viewer, "event.send", target: events.map(\.name).joined(separator: ", "), detail: ["ids": .array(ids.map { .string($0.description) })])
        let target = ids.count == 1 ? "/events/\(ids[0])" : "/events"
        return Self.back(to: target, notice: "Sent \(ids.count) event\(ids.count == 1 ? "" : "s").")
    }

    func runID(_ request: DashboardRequest) throws -> ULID {
        let text = request.parameter("id")
        guard let id = ULID(text) else { throw DashboardPageError.invalid("id: must be a run id (ULID), got \"\(text)\"") }
        return id
    }

    /// A redirect to `path` (on this site only) with `notice` shown at the top of the page.
    static func back(to path: String, notice: String) -> Response {
        let target = Dashboard.safeNext(path)
        return Dashboard.redirect(to: target + (target.contains("?") ? "&" : "?") + "notice=" + Dashboard.percentEncoded(notice))
    }
}
