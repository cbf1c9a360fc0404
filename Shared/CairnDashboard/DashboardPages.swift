import CairnCore
import CairnEngine
import Foundation
import Hummingbird

/// The pages: each reads the engine's ports once or a few times (never once per row) and
/// renders its template.
struct DashboardPages: Sendable {
    let sources: DashboardSources
    let templates: DashboardTemplates

    /// Rows per page of the runs and events lists.
    static let pageSize = 50

    // MARK: Overview

    func overview(_ request: DashboardRequest) async throws -> Response {
        let now = sources.clock.now
        let apps = try await sources.registry.apps()
        let functions = try await sources.registry.liveFunctions()
        let lastHour = try await sources.runs.count(RunFilter(createdFrom: now.addingTimeInterval(-3600)))
        let failed = try await sources.runs.count(RunFilter(statuses: ["Failed"], createdFrom: now.addingTimeInterval(-86_400)))
        let active = try await sources.runs.count(RunFilter(statuses: ["Queued", "Running"]))
        let queues = try await sources.queues.lines()
        let waiting = queues.reduce(0) { $0 + $1.ready + $1.backlog }
        let oldest = queues.map(\.oldestAge).max() ?? 0
        var workers = 0
        for app in apps { workers += try await sources.connect.workers(app: app.name).count }
        let tiles: [[String: Any]] = [
            tile("Apps", "\(apps.count)", state: "ok", link: "/apps"),
            tile("Functions", "\(functions.count)", note: "\(functions.filter { $0.pausedAt != nil }.count) paused", state: "ok", link: "/functions"),
            tile("Runs, last hour", "\(lastHour)", state: "ok", link: "/runs?from=" + DashboardFormat.formValue(now.addingTimeInterval(-3600))),
            tile("Failed, last 24 h", "\(failed)", state: failed > 0 ? "bad" : "ok", link: "/runs?status=Failed&from=" + DashboardFormat.formValue(now.addingTimeInterval(-86_400))),
            tile("Queued or running", "\(active)", state: "ok", link: "/runs?status=Queued&status=Running"),
            tile("Waiting in queues", "\(waiting)", note: waiting > 0 ? "oldest " + DashboardFormat.duration(oldest) : nil, state: oldest > 60 ? "warn" : "ok", link: "/queues"),
            tile("Connected workers", "\(workers)", state: "ok", link: "/workers"),
        ]
        let failures = try await sources.runs.runs(RunFilter(statuses: ["Failed"]), after: nil, ascending: false, limit: 10)
        let recent = try await sources.runs.runs(RunFilter(), after: nil, ascending: false, limit: 10)
        return templates.page(
            "overview", title: "Overview", request: request, nav: "/",
            ["tiles": tiles, "failures": failures.map(Self.runRow), "recent": recent.map(Self.runRow)])
    }

    func tile(_ label: String, _ value: String, note: String? = nil, state: String, link: String) -> [String: Any] {
        ["label": label, "value": value, "note": note as Any, "state": state, "link": link, "testid": "tile-" + label.lowercased().filter { $0.isLetter || $0 == " " }.replacingOccurrences(of: " ", with: "-")]
    }

    // MARK: Apps and functions

    func apps(_ request: DashboardRequest) async throws -> Response {
        var rows: [[String: Any]] = []
        for app in try await sources.registry.apps() {
            let workers = try await sources.connect.workers(app: app.name)
            rows.append([
                "name": app.name, "url": app.url, "sdk": "\(app.sdkLanguage) \(app.sdkVersion)", "framework": app.framework,
                "functions": app.functionCount, "synced": DashboardFormat.stamp(app.syncedAt) as Any, "workers": workers.count,
                "connect": app.url.hasPrefix("ws"),
            ])
        }
        return templates.page("apps", title: "Apps", request: request, nav: "/apps", ["apps": rows, "empty": rows.isEmpty])
    }

    func functions(_ request: DashboardRequest) async throws -> Response {
        let filter = request["q"]?.lowercased(), app = request["app"]
        let functions = try await sources.registry.liveFunctions()
            .filter { function in
                (app == nil || function.appName == app)
                    && (filter.map { function.slug.lowercased().contains($0) || function.config.name.lowercased().contains($0) } ?? true)
            }
            .sorted { $0.slug < $1.slug }
        return templates.page(
            "functions", title: "Functions", request: request, nav: "/functions",
            ["functions": functions.map(Self.functionRow), "q": filter ?? "", "app": app as Any, "empty": functions.isEmpty])
    }

    static func functionRow(_ function: FunctionRecord) -> [String: Any] {
        [
            "slug": function.slug, "name": function.config.name, "app": function.appName, "version": function.version,
            "triggers": function.config.triggers.map(Self.trigger), "paused": function.pausedAt != nil,
            "pausedAt": DashboardFormat.stamp(function.pausedAt) as Any,
        ]
    }

    static func trigger(_ trigger: FunctionTrigger) -> [String: Any] {
        switch trigger {
        case .event(let name, let expression):
            return ["kind": "event", "text": name, "condition": expression.map(\.description) as Any]
        case .cron:
            return ["kind": "cron", "text": trigger.cronText ?? ""]
        }
    }

    func function(_ request: DashboardRequest) async throws -> Response {
        let slug = request.parameter("slug")
        let function = try await sources.operations.function(slug: slug)
        // The configuration as the app declared it, one row per setting beyond the basics.
        let basics: Set<String> = ["id", "name", "triggers", "steps"]
        let settings: [[String: Any]] = function.config.json.filter { !basics.contains($0.key) }.map { member in
            ["name": member.key, "value": member.value.jsonString]
        }
        let recent = try await sources.runs.runs(RunFilter(functionID: function.id), after: nil, ascending: false, limit: 20)
        // An invoke is prefilled with the newest run's trigger data.
        var prefill = "{}"
        if let eventID = recent.first?.eventID, let event = try await sources.events.event(id: eventID) {
            prefill = DashboardFormat.pretty(event.payload["data"] ?? .object([:]))
        }
        var values = Self.functionRow(function)
        values["settings"] = settings
        values["retries"] = function.config.retries
        values["runs"] = recent.map(Self.runRow)
        values["prefill"] = prefill
        values["updated"] = DashboardFormat.stamp(function.updatedAt) as Any
        values["functionID"] = function.id.uuidString.lowercased()
        return templates.page("function", title: function.config.name.isEmpty ? slug : function.config.name, request: request, nav: "/functions", values)
    }

    // MARK: Runs

    /// The runs list's filters, read from the URL, so a URL rebuilds the list exactly.
    struct RunQuery {
        var function: FunctionRecord?
        var statuses: [String]
        var from: Date?
        var until: Date?
        var expression: CairnCore.Expression?
        /// Runs a bulk replay started.
        var bulk: String?
        var cursor: ULID?

        var filter: RunFilter {
            RunFilter(functionID: function?.id, statuses: statuses, createdFrom: from, createdUntil: until, bulkID: bulk)
        }

        /// The query string of these filters (without the cursor).
        var queryString: String {
            var parts: [String] = []
            if let function { parts.append("function=" + Dashboard.percentEncoded(function.slug)) }
            for status in statuses { parts.append("status=" + status) }
            if let from { parts.append("from=" + DashboardFormat.formValue(from)) }
            if let until { parts.append("until=" + DashboardFormat.formValue(until)) }
            if let expression { parts.append("q=" + Dashboard.percentEncoded(expression.source)) }
            if let bulk { parts.append("bulk=" + Dashboard.percentEncoded(bulk)) }
            return parts.joined(separator: "&")
        }
    }

    static func runQuery(_ request: DashboardRequest, operations: FunctionOperations) async throws -> RunQuery {
        var function: FunctionRecord?
        if let slug = request["function"] { function = try await operations.function(slug: slug) }
        let statuses = (request.query["status"] ?? []).flatMap { $0.split(separator: ",").map(String.init) }.filter { !$0.isEmpty }
        if let unknown = statuses.first(where: { !RunFilter.allStatuses.contains($0) }) {
            throw DashboardPageError.invalid("status: must be one of \(RunFilter.allStatuses.joined(separator: ", ")), got \"\(unknown)\"")
        }
        var expression: CairnCore.Expression?
        if let text = request["q"] {
            do { expression = try CairnCore.Expression(compiling: text) } catch {
                throw DashboardPageError.invalid("q: must be an expression over event and output, such as event.data.user_id == \"u-42\": \(error)")
            }
        }
        var cursor: ULID?
        if let text = request["cursor"] {
            guard let id = ULID(text) else { throw DashboardPageError.invalid("cursor: must be a cursor from a previous page, got \"\(text)\"") }
            cursor = id
        }
        return RunQuery(
            function: function, statuses: statuses, from: try DashboardFormat.formDate(request["from"], field: "from"),
            until: try DashboardFormat.formDate(request["until"], field: "until"), expression: expression, bulk: request["bulk"], cursor: cursor)
    }

    /// How many runs one request reads looking for expression matches before it answers with
    /// what it found and a cursor to go on from.
    static let scanLimit = 5_000

    func runs(_ request: DashboardRequest) async throws -> Response {
        let query = try await Self.runQuery(request, operations: sources.operations)
        var shown: [RunRecord] = []
        var next: ULID?
        var scanned = 0
        var narrowed = false
        if let expression = query.expression {
            // Every match, page by page: the search has no cap, only a bound per request.
            var after = query.cursor
            // Postgres first keeps the runs whose event and output have what the expression's
            // equalities compare (a sound pre-filter: each run read is still evaluated), so a
            // selective search reads little more than its matches.
            var candidates = query.filter
            candidates.eventContains = expression.eventPrefilter
            candidates.outputContains = expression.outputPrefilter
            narrowed = candidates != query.filter
            let now = sources.clock.now.unixMilliseconds
            scan: while scanned < Self.scanLimit {
                let page = try await sources.runs.runs(candidates, after: after, ascending: false, limit: 200)
                let events = try await sources.events.events(ids: page.compactMap(\.eventID))
                let payloads = Dictionary(events.map { ($0.id, $0.payload) }, uniquingKeysWith: { first, _ in first })
                for run in page {
                    scanned += 1
                    after = run.id
                    var activation = ExpressionActivation(event: run.eventID.flatMap { payloads[$0] } ?? .null, nowMilliseconds: now)
                    activation.output = run.output ?? .null
                    if (try? expression.evaluateBool(activation)) == true {
                        shown.append(run)
                        if shown.count == Self.pageSize { next = run.id; break scan }
                    }
                }
                if page.count < 200 { break }
                if scanned >= Self.scanLimit { next = after }
            }
        } else {
            let page = try await sources.runs.runs(query.filter, after: query.cursor, ascending: false, limit: Self.pageSize + 1)
            shown = Array(page.prefix(Self.pageSize))
            if page.count > Self.pageSize { next = shown.last?.id }
        }
        let functions = try await sources.registry.liveFunctions().sorted { $0.slug < $1.slug }
        let base = query.queryString
        var values: [String: Any] = [
            "runs": shown.map(Self.runRow), "empty": shown.isEmpty,
            "countText": query.expression != nil ? "\(shown.count) found among \(scanned) runs searched" + (narrowed ? " (those its equalities picked out)" : "") + (next == nil ? "" : "; older runs may match too") : DashboardTemplates.later,
            "next": next.map { "/runs?" + (base.isEmpty ? "" : base + "&") + "cursor=\($0)" } as Any,
            "first": query.cursor == nil ? nil : "/runs" + (base.isEmpty ? "" : "?" + base) as Any,
            "functions": functions.map { ["slug": $0.slug, "selected": $0.id == query.function?.id] },
            "statuses": RunFilter.allStatuses.map { ["name": $0, "checked": query.statuses.contains($0)] },
            "from": DashboardFormat.formValue(query.from), "until": DashboardFormat.formValue(query.until),
            "q": query.expression?.source ?? "", "query": base,
            "newest": shown.first?.id.description ?? "",
            "live": "/live/runs?" + (base.isEmpty ? "" : base + "&") + "after=" + (shown.first?.id.description ?? ""),
            "function": query.function?.slug as Any,
        ]
        // A bulk action by filter needs a function: it is what a bulk job is scoped to.
        values["bulkable"] = query.function != nil
        if query.expression != nil { return templates.page("runs", title: "Runs", request: request, nav: "/runs", values) }
        // Over a million runs the exact count is the slowest part of the page (a parallel scan
        // that takes every core for a moment): it is counted once the rows have been sent.
        let store = sources.runs, filter = query.filter
        return templates.streamedPage("runs", title: "Runs", request: request, nav: "/runs", values) { "\(try await store.count(filter)) matching" }
    }

    static func runRow(_ run: RunRecord) -> [String: Any] {
        let duration = run.endedAt.map { DashboardFormat.duration($0.timeIntervalSince(run.startedAt ?? run.createdAt)) }
        return [
            "id": run.id.description, "function": run.functionSlug, "status": run.status, "created": DashboardFormat.stamp(run.createdAt) as Any,
            "ended": DashboardFormat.stamp(run.endedAt) as Any, "duration": duration as Any, "skip": run.skipReason as Any,
            "cancellable": run.status == "Queued" || run.status == "Running",
        ]
    }

    func run(_ request: DashboardRequest) async throws -> Response {
        let text = request.parameter("id")
        guard let id = ULID(text) else { throw DashboardPageError.invalid("id: must be a run id (ULID), got \"\(text)\"") }
        guard let run = try await sources.runs.run(id) else { throw DashboardPageError.notFound("id: no run \(id)") }
        let events = try await sources.events.events(ids: run.eventIDs.isEmpty ? run.eventID.map { [$0] } ?? [] : run.eventIDs)
        let now = sources.clock.now
        let window = try StepWindow(run: run, page: request["page"], steps: request["steps"])
        let waterfall = Waterfall(run: run, now: now, showing: window.indices)
        var values = Self.runRow(run)
        values["waterfall"] = waterfall.rows
        values["scale"] = waterfall.scale
        let invokes = window.indices.map { run.steps[$0] }.filter { $0.op == "InvokeFunction" }.map(\.id) + run.waitingFor.filter { $0.kind == "invoke" }.map(\.stepID)
        let children = try await invokedRuns(of: run.id, steps: invokes)
        values["steps"] = window.indices.map { index in
            var panel = Self.stepPanel(run.steps[index], index: index, run: run)
            panel["childRun"] = children[run.steps[index].id]?.description as Any
            return panel
        }
        values["stepPager"] = window.pager(path: "/runs/\(run.id)") as Any
        values["hasWaiting"] = !run.waitingFor.isEmpty
        values["waiting"] = run.waitingFor.map {
            ["kind": $0.kind, "step": $0.stepID, "event": $0.event as Any, "until": DashboardFormat.stamp($0.until) as Any, "childRun": children[$0.stepID]?.description as Any]
        }
        values["events"] = events.sorted { $0.id < $1.id }.map { ["id": $0.id.description, "name": $0.name, "payload": DashboardFormat.json($0.payload)] }
        values["output"] = run.output.map(DashboardFormat.json) as Any
        values["error"] = run.error.map(Self.errorPanel) as Any
        values["started"] = DashboardFormat.stamp(run.startedAt) as Any
        values["eventID"] = run.eventID?.description as Any
        values["batchID"] = run.batchID as Any
        values["original"] = run.originalRunID?.description as Any
        values["bulk"] = run.bulkID as Any
        values["skipRun"] = run.skipRunID?.description as Any
        values["version"] = run.functionVersion
        values["ended"] = run.endedAt != nil
        values["endedAt"] = DashboardFormat.stamp(run.endedAt) as Any
        values["stepNames"] = run.steps.filter { $0.op != "StepFailed" }.map { ["id": $0.id, "name": $0.name.isEmpty ? $0.id : $0.name] }
        values["live"] = run.endedAt == nil ? "/live/runs/\(run.id)?steps=\(run.steps.count)&status=\(run.status)" as Any : false
        values["rerunData"] = events.first { $0.id == run.eventID }.map { DashboardFormat.pretty($0.payload["data"] ?? .object([:])) } ?? "{}"
        return templates.page("run", title: "Run \(run.id)", request: request, nav: "/runs", values)
    }

    /// The run each of `steps` (invoke steps of run `runID`) started, by step id: found through
    /// the `inngest/function.invoked` event the step sent, by its correlation id.
    func invokedRuns(of runID: ULID, steps: [String]) async throws -> [String: ULID] {
        guard !steps.isEmpty else { return [:] }
        let byCorrelation = Dictionary(steps.map { (Invocation.correlationID(runID: runID, stepID: $0), $0) }, uniquingKeysWith: { first, _ in first })
        var stepByEvent: [ULID: String] = [:]
        for event in try await sources.events.invokedEvents(correlationIDs: Array(byCorrelation.keys)) {
            guard let correlation = event.payload["data"]?["_inngest"]?["correlation_id"]?.stringValue, let step = byCorrelation[correlation] else { continue }
            stepByEvent[event.id] = step
        }
        var children: [String: ULID] = [:]
        // Oldest first: an event that started more than one run links to its first.
        for child in try await sources.runs.runs(triggeredBy: Array(stepByEvent.keys)).reversed() {
            if let eventID = child.eventID, let step = stepByEvent[eventID] { children[step] = child.id }
        }
        return children
    }

    static func stepPanel(_ step: RunRecord.Step, index: Int, run: RunRecord) -> [String: Any] {
        var panel: [String: Any] = [
            "index": index + 1, "id": step.id, "name": step.name.isEmpty ? step.id : step.name, "op": step.op, "attempts": step.attempts,
            "recorded": DashboardFormat.stamp(step.recordedAt) as Any,
        ]
        // Keys distinct from the run's own (`error`, `output`): Mustache looks a missing key up
        // in the enclosing context, so a step without output would show the run's.
        if step.op == "StepFailed", let error = step.result["error"] {
            panel["stepError"] = Self.errorPanel(error)
        } else if case .object(let object) = step.result, object.count == 1, let data = object["data"] {
            panel["stepOutput"] = DashboardFormat.json(data)
        } else if step.result != .null {
            panel["stepOutput"] = DashboardFormat.json(step.result)
        }
        let failures = run.failedAttempts.filter { $0.stepID == step.id }
        panel["open"] = !failures.isEmpty || panel["stepError"] != nil
        panel["failures"] = failures.map { attempt in
            ["attempt": attempt.attempt, "failedAt": DashboardFormat.stamp(attempt.endedAt) as Any, "failError": Self.errorPanel(attempt.error)]
        }
        return panel
    }

    /// An SDK error: its name and message up front, the stack's first frame, the cause, and the
    /// whole value below.
    static func errorPanel(_ error: JSONValue) -> [String: Any] {
        let stack = error["stack"]?.stringValue
        return [
            "name": error["name"]?.stringValue ?? "Error", "message": error["message"]?.stringValue ?? error.jsonString,
            "frame": stack.flatMap { $0.split(separator: "\n").first(where: { $0.contains("File ") || $0.contains(" at ") }) }.map(String.init) as Any,
            "stack": stack as Any, "cause": error["cause"].map { $0.stringValue ?? $0.jsonString } as Any, "raw": DashboardFormat.json(error),
        ]
    }

    // MARK: Events

    func events(_ request: DashboardRequest) async throws -> Response {
        let name = request["name"]
        var cursor: ULID?
        if let text = request["cursor"] {
            guard let id = ULID(text) else { throw DashboardPageError.invalid("cursor: must be a cursor from a previous page, got \"\(text)\"") }
            cursor = id
        }
        let page = try await sources.events.events(name: name, before: cursor, limit: Self.pageSize + 1)
        let shown = page.prefix(Self.pageSize)
        let base = name.map { "name=" + Dashboard.percentEncoded($0) }
        let next = page.count > Self.pageSize ? shown.last.map { "/events?" + (base.map { $0 + "&" } ?? "") + "cursor=\($0.id)" } : nil
        return templates.page(
            "events", title: "Events", request: request, nav: "/events",
            [
                "events": shown.map { ["id": $0.id.description, "name": $0.name, "received": DashboardFormat.stamp(Date(timeIntervalSince1970: Double($0.receivedAt) / 1000)) as Any] },
                "empty": shown.isEmpty, "name": name ?? "", "next": next as Any, "first": cursor == nil ? nil : "/events" + (base.map { "?" + $0 } ?? "") as Any,
                "sample": "{\n  \"name\": \"demo/hello\",\n  \"data\": {}\n}",
            ])
    }

    func event(_ request: DashboardRequest) async throws -> Response {
        let text = request.parameter("id")
        guard let id = ULID(text) else { throw DashboardPageError.invalid("id: must be an event's internal id (ULID), got \"\(text)\"") }
        guard let event = try await sources.events.event(id: id) else { throw DashboardPageError.notFound("id: no event \(id)") }
        let runs = try await sources.runs.runs(eventID: id)
        return templates.page(
            "event", title: event.name, request: request, nav: "/events",
            [
                "id": event.id.description, "name": event.name, "payload": DashboardFormat.json(event.payload),
                "received": DashboardFormat.stamp(Date(timeIntervalSince1970: Double(event.receivedAt) / 1000)) as Any,
                "occurred": DashboardFormat.stamp(Date(timeIntervalSince1970: Double(event.ts) / 1000)) as Any,
                "eventID": event.payload["id"]?.stringValue as Any,
                "runs": runs.map { run -> [String: Any] in
                    var row = Self.runRow(run)
                    row["skipRun"] = run.skipRunID?.description as Any
                    return row
                },
                "noRuns": runs.isEmpty,
            ])
    }

    // MARK: Bulk jobs and schedules

    func bulk(_ request: DashboardRequest) async throws -> Response {
        let text = request.parameter("id")
        guard let id = ULID(text) else { throw DashboardPageError.invalid("id: must be a bulk job id (ULID), got \"\(text)\"") }
        guard let job = try await sources.jobs.bulk(id: id) else { throw DashboardPageError.notFound("id: no bulk job \(id)") }
        let percent = job.total == 0 ? 100 : min(100, job.scanned * 100 / max(job.total, 1))
        return templates.page(
            "bulk", title: "Bulk \(job.kind == .cancel ? "cancel" : "replay")", request: request, nav: "/runs",
            [
                "id": job.id.description, "kind": job.kind == .cancel ? "cancel" : "replay", "function": job.functionSlug, "status": job.status.rawValue,
                "total": job.total, "scanned": job.scanned, "matched": job.matched, "done": job.done, "percent": percent,
                "running": job.status == .running, "error": job.error as Any, "if": job.expression as Any,
                "statuses": job.statuses.joined(separator: ", "), "from": DashboardFormat.stamp(job.createdFrom) as Any,
                "until": DashboardFormat.stamp(job.createdUntil) as Any, "created": DashboardFormat.stamp(job.createdAt) as Any,
                "finished": DashboardFormat.stamp(job.finishedAt) as Any,
                "replays": job.kind == .replay ? "/runs?bulk=\(job.id)" : nil as String? as Any,
            ])
    }

    /// Every cron trigger of a live function: its schedule, the next fire time, and the status
    /// of the function's newest run.
    func schedules(_ request: DashboardRequest) async throws -> Response {
        let now = sources.clock.now
        var rows: [[String: Any]] = []
        for function in try await sources.registry.liveFunctions().sorted(by: { $0.slug < $1.slug }) {
            for trigger in function.config.triggers {
                guard case .cron(let schedule, _) = trigger else { continue }
                let last = try await sources.runs.runs(RunFilter(functionID: function.id), after: nil, ascending: false, limit: 1).first
                rows.append([
                    "slug": function.slug, "cron": schedule.text, "zone": schedule.timeZone.identifier,
                    "next": function.pausedAt == nil ? DashboardFormat.stamp(schedule.next(after: now)) as Any : nil as [String: Any]? as Any,
                    "paused": function.pausedAt != nil, "last": last.map(Self.runRow) as Any,
                ])
            }
        }
        return templates.page("schedules", title: "Schedules", request: request, nav: "/schedules", ["schedules": rows, "empty": rows.isEmpty])
    }

    // MARK: Queues and workers

    func queues(_ request: DashboardRequest) async throws -> Response {
        let lines = try await sources.queues.lines()
        return templates.page(
            "queues", title: "Queues and flow control", request: request, nav: "/queues",
            [
                "lines": lines.map { line -> [String: Any] in
                    [
                        "slug": line.function.slug, "ready": line.ready, "backlog": line.backlog, "running": line.running,
                        "oldest": line.oldestAge > 0 ? DashboardFormat.duration(line.oldestAge) : "—",
                        "limits": line.limits.map { "\($0.limit)" + ($0.key.map { " per \($0)" } ?? "") }.joined(separator: ", "),
                        "paused": line.function.pausedAt != nil,
                    ]
                },
                "empty": lines.isEmpty,
            ])
    }

    func workers(_ request: DashboardRequest) async throws -> Response {
        let now = sources.clock.now
        var apps: [[String: Any]] = []
        for app in try await sources.registry.apps() {
            let workers = try await sources.connect.workers(app: app.name)
            let disconnects = try await sources.connect.disconnects(app: app.name)
            guard !workers.isEmpty || !disconnects.isEmpty else { continue }
            apps.append([
                "app": app.name,
                "workers": workers.map { worker -> [String: Any] in
                    [
                        "id": worker.connectionID, "instance": worker.instanceID, "gateway": worker.gatewayID, "status": "\(worker.status)",
                        "sdk": "\(worker.sdkLanguage) \(worker.sdkVersion)", "capacity": worker.maxConcurrency.map(String.init) ?? "unlimited",
                        "heartbeat": DashboardFormat.duration(now.timeIntervalSince(worker.lastHeartbeat)) + " ago",
                        "connected": DashboardFormat.stamp(worker.connectedAt) as Any,
                    ]
                },
                "disconnects": Array(disconnects.prefix(20)).map { ["id": $0.connectionID, "instance": $0.instanceID, "reason": $0.reason, "at": DashboardFormat.stamp($0.at) as Any] },
            ])
        }
        return templates.page("workers", title: "Connected workers", request: request, nav: "/workers", ["apps": apps, "empty": apps.isEmpty])
    }
}

/// The run page's waterfall: a row per recorded step, each attempt split into its time in the
/// queue and its time executing, failed attempts in red, sleeps and waits as gaps, on one time
/// axis from the run's creation to its end (or now).
/// Which of a run's steps its page shows: a page of `perPage` in order, or only those that
/// failed (a failed step, or one with a failed attempt), so that a run of thousands of steps
/// opens as fast as a short one. `?page=` and `?steps=failed` keep it in the URL.
struct StepWindow {
    static let perPage = 200

    /// Indices into `run.steps`, in order.
    let indices: [Int]
    /// How many steps the filter matches, over every page.
    let matching: Int
    let page: Int
    let failedOnly: Bool
    let failedCount: Int
    let stepCount: Int

    init(run: RunRecord, page text: String?, steps filter: String?) throws {
        let page = try text.map { text in
            guard let page = Int(text), page >= 1 else { throw DashboardPageError.invalid("page: must be a whole number from 1, got \"\(text)\"") }
            return page
        } ?? 1
        guard filter == nil || filter == "all" || filter == "failed" else {
            throw DashboardPageError.invalid("steps: must be all or failed, got \"\(filter ?? "")\"")
        }
        let failedIDs = Set(run.failedAttempts.map(\.stepID))
        let failed = run.steps.indices.filter { run.steps[$0].op == "StepFailed" || failedIDs.contains(run.steps[$0].id) }
        let matches = filter == "failed" ? failed : Array(run.steps.indices)
        let start = (page - 1) * Self.perPage
        indices = start < matches.count ? Array(matches[start..<min(matches.count, start + Self.perPage)]) : []
        matching = matches.count
        self.page = page
        failedOnly = filter == "failed"
        failedCount = failed.count
        stepCount = run.steps.count
    }

    /// The bar above the timeline: which steps are shown, links to the pages around, and the
    /// failed-only switch; nil for a run whose steps all fit on one page and none failed.
    func pager(path: String) -> [String: Any]? {
        guard stepCount > Self.perPage || failedOnly || failedCount > 0 else { return nil }
        let filter = failedOnly ? "steps=failed&" : ""
        let pages = max(1, (matching + Self.perPage - 1) / Self.perPage)
        var bar: [String: Any] = [
            "stepFirst": indices.isEmpty ? 0 : (page - 1) * Self.perPage + 1, "stepLast": (page - 1) * Self.perPage + indices.count,
            "stepMatching": matching, "stepAny": matching > 0, "stepKind": failedOnly ? "failed steps" : "steps", "failedCount": failedCount,
        ]
        if page > 1 { bar["earlier"] = "\(path)?\(filter)page=\(min(page - 1, pages))" }
        if page < pages { bar["later"] = "\(path)?\(filter)page=\(page + 1)" }
        if failedOnly { bar["allLink"] = path } else if failedCount > 0 { bar["failedLink"] = "\(path)?steps=failed" }
        return bar
    }
}

struct Waterfall {
    var rows: [[String: Any]] = []
    var scale: [[String: Any]] = []

    /// The rows of the steps at `shown` (every step when nil), on the scale of the whole run;
    /// what the run still waits for is shown with its last step.
    init(run: RunRecord, now: Date, showing shown: [Int]? = nil) {
        let start = run.createdAt
        let end = max(run.endedAt ?? now, run.steps.map(\.recordedAt).max() ?? start, start.addingTimeInterval(0.001))
        let span = end.timeIntervalSince(start)
        func x(_ date: Date) -> Double { min(1000, max(0, date.timeIntervalSince(start) / span * 1000)) }
        func rect(_ from: Date, _ to: Date, _ kind: String) -> [String: Any] {
            let left = x(from)
            return ["x": String(format: "%.2f", left), "width": String(format: "%.2f", max(2, x(to) - left)), "kind": kind]
        }
        var previous = run.startedAt ?? start
        let showing = shown.map(Set.init)
        for (index, step) in run.steps.enumerated() {
            defer { previous = step.recordedAt }
            if let showing, !showing.contains(index) { continue }
            var rects: [[String: Any]] = []
            for attempt in run.failedAttempts where attempt.stepID == step.id {
                if let queued = attempt.queuedAt, let started = attempt.startedAt { rects.append(rect(queued, started, "wf-queue")) }
                rects.append(rect(attempt.startedAt ?? previous, attempt.endedAt, "wf-failed"))
            }
            let kind: String
            switch step.op {
            case "Sleep": kind = "wf-sleep"
            case "WaitForEvent", "InvokeFunction": kind = "wf-wait"
            case "StepFailed": kind = "wf-failed"
            default: kind = "wf-ok"
            }
            if let queued = step.queuedAt, let started = step.startedAt {
                rects.append(rect(queued, started, "wf-queue"))
                rects.append(rect(started, step.recordedAt, kind))
            } else {
                rects.append(rect(min(previous, step.recordedAt), step.recordedAt, kind))
            }
            let began = step.queuedAt ?? step.startedAt ?? previous
            rows.append([
                "name": step.name.isEmpty ? step.id : step.name, "op": step.op, "attempts": step.attempts, "rects": rects,
                "duration": DashboardFormat.duration(step.recordedAt.timeIntervalSince(min(began, step.recordedAt))), "kind": kind,
            ])
        }
        let withLastStep = shown.map { $0.last == run.steps.indices.last || run.steps.isEmpty } ?? true
        for waiting in run.waitingFor where withLastStep {
            rows.append([
                "name": waiting.stepID, "op": waiting.kind, "attempts": 1, "rects": [rect(previous, min(end, waiting.until), waiting.kind == "sleep" ? "wf-sleep" : "wf-wait")],
                "duration": "until " + DashboardFormat.time(waiting.until), "kind": "wf-wait", "open": true,
            ])
        }
        scale = stride(from: 0, through: 4, by: 1).map { tick in
            ["pos": tick * 25, "label": "+" + DashboardFormat.duration(span * Double(tick) / 4)]
        }
    }
}
