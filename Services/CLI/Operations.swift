import ArgumentParser
import CairnCore
import Foundation

// Operating on runs from the command line (docs/operations.md): every command calls the same
// REST API as the dashboard, and `--json` prints the API's answer for scripts.

/// `cairn send NAME`: sends an event through the event API.
struct Send: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Send an event.",
        discussion: "Uses INNGEST_EVENT_KEY (any key in dev mode) and INNGEST_EVENT_API_BASE_URL, else the API origin.")

    @Argument(help: "The event name, e.g. shop/order.created.")
    var name: String

    @Option(help: "The event's data, a JSON object.")
    var data: String = "{}"

    @Option(help: "The event's id: a second event with the same id within 24 h is a duplicate.")
    var id: String?

    @OptionGroup var options: APIOptions

    func run() async throws {
        var event: [(String, JSONValue)] = [("name", .string(name)), ("data", .object(try jsonObject(data, option: "--data")))]
        if let id { event.append(("id", .string(id))) }
        let key = options.environment["INNGEST_EVENT_KEY"].flatMap { $0.isEmpty ? nil : $0 } ?? "cairn-dev"
        var events = options
        events.api = options.environment["INNGEST_EVENT_API_BASE_URL"] ?? options.origin
        let reply = try await events.call("POST", "/e/\(key.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? key)", body: .object(JSONObject(members: event)))
        options.print(reply) {
            for id in reply["ids"]?.arrayValue ?? [] { say(id.stringValue ?? id.jsonString) }
        }
    }
}

/// `cairn runs`: lists runs, newest first.
struct Runs: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List runs, newest first; --follow prints new ones as they start.")

    @Option(name: .customLong("function"), help: "Only runs of the function with this slug.")
    var function: String?

    @Option(help: "Only runs with these statuses, comma-separated (Queued, Running, Completed, Failed, Cancelled, Skipped).")
    var status: String?

    @Option(help: "Only runs created at or after this RFC 3339 time.")
    var from: String?

    @Option(help: "Only runs created before this RFC 3339 time.")
    var until: String?

    @Option(help: "How many runs to list (1…100).")
    var limit: Int = 20

    @Flag(help: "Keep listing runs as they start, until interrupted.")
    var follow = false

    @OptionGroup var options: APIOptions

    func validate() throws {
        guard (1...100).contains(limit) else { throw ValidationError("--limit: must be from 1 to 100, got \(limit)") }
    }

    var query: String {
        var items = ["limit=\(limit)"]
        for (name, value) in [("function_id", function), ("status", status), ("from", from), ("until", until)] {
            if let value { items.append("\(name)=\(value.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed.subtracting(["&", "+", "="])) ?? value)") }
        }
        return items.joined(separator: "&")
    }

    func run() async throws {
        let page = try await options.call("GET", "/v1/runs?\(query)")
        let runs = page["data"]?.arrayValue ?? []
        if options.json { say(follow ? JSONValue.array(runs).jsonString : page.jsonString) } else { printTable(runs.reversed(), header: true) }
        guard follow else { return }
        var newest = runs.first?["run_id"]?.stringValue ?? ""
        while !Task.isCancelled {
            try await Task.sleep(for: .seconds(1))
            let fresh = (try await options.call("GET", "/v1/runs?\(query)")["data"]?.arrayValue ?? [])
                .filter { ($0["run_id"]?.stringValue ?? "") > newest }
            guard let first = fresh.first?["run_id"]?.stringValue else { continue }
            newest = first
            if options.json { for run in fresh.reversed() { say(run.jsonString) } } else { printTable(fresh.reversed(), header: false) }
        }
    }

    func printTable(_ runs: [JSONValue], header: Bool) {
        let rows = runs.map { run in
            [
                run["run_id"]?.stringValue ?? "", run["function_id"]?.stringValue ?? "", run["status"]?.stringValue ?? "",
                run["created_at"]?.stringValue ?? "", run["ended_at"]?.stringValue ?? "-",
            ]
        }
        table(header ? ["RUN", "FUNCTION", "STATUS", "CREATED", "ENDED"] : nil, rows)
    }
}

/// `cairn run ID`: one run, with its steps as a table.
struct ShowRun: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "run", abstract: "Show a run and its steps.")

    @Argument(help: "The run id.")
    var id: String

    @OptionGroup var options: APIOptions

    func run() async throws {
        let reply = try await options.call("GET", "/v1/runs/\(id)")
        let run = reply["data"] ?? .null
        options.print(reply) {
            say("run       \(run["run_id"]?.stringValue ?? "")")
            say("function  \(run["function_id"]?.stringValue ?? "") (version \(run["function_version"]?.int64Value ?? 0))")
            say("status    \(run["status"]?.stringValue ?? "")")
            say("created   \(run["created_at"]?.stringValue ?? "")")
            say("ended     \(run["ended_at"]?.stringValue ?? "-")")
            if let original = run["original_run_id"]?.stringValue { say("reruns    \(original)") }
            if let output = run["output"] { say("output    \(clip(output.jsonString))") }
            if let error = run["error"] { say("error     \(clip(error.jsonString))") }
            for waiting in run["waiting_for"]?.arrayValue ?? [] {
                say("waiting   \(waiting["kind"]?.stringValue ?? "") \(waiting["step_id"]?.stringValue ?? "") until \(waiting["until"]?.stringValue ?? "")")
            }
            let steps = (run["steps"]?.arrayValue ?? []).enumerated().map { index, step in
                [
                    "\(index + 1)", step["name"]?.stringValue ?? "", step["op"]?.stringValue ?? "", "\(step["attempts"]?.int64Value ?? 0)",
                    clip((step["error"] ?? step["output"] ?? .null).jsonString),
                ]
            }
            say("")
            table(["#", "STEP", "OP", "ATTEMPTS", "RESULT"], steps)
        }
    }
}

/// `cairn cancel ID` or `cairn cancel --function F [--if …]`.
struct Cancel: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Cancel a run, or in bulk every unfinished run of a function that a filter matches.",
        discussion: "cairn cancel RUN_ID | cairn cancel --function SLUG [--from T] [--until T] [--if EXPR]")

    @Argument(help: "The run to cancel; leave out with --function.")
    var id: String?

    @OptionGroup var selection: Selection

    @Flag(help: "Bulk: return once the job is recorded, without following it.")
    var detach = false

    @OptionGroup var options: APIOptions

    func validate() throws {
        guard (id == nil) != (selection.function == nil) else { throw ValidationError("give either a run id or --function, not both or neither") }
        if id != nil && selection.narrows {
            throw ValidationError("--from, --until, --if and --idempotency-key select runs for a bulk cancel: use them with --function")
        }
    }

    func run() async throws {
        if let id {
            let reply = try await options.call("DELETE", "/v1/runs/\(id)")
            options.print(reply) { say("cancelled \(id)") }
            return
        }
        let reply = try await options.call("POST", "/v1/cancellations", body: .object(JSONObject(members: selection.body)))
        try await started(reply, detach: detach, options: options)
    }
}

/// Prints a bulk job just recorded, then follows it unless `detach`.
func started(_ reply: JSONValue, detach: Bool, options: APIOptions) async throws {
    let job = reply["data"] ?? .null
    if detach {
        options.print(reply) { say("bulk \(job["bulk_id"]?.stringValue ?? "") started: \(job["total"]?.int64Value ?? 0) runs to walk") }
        return
    }
    try await follow(bulk: job, with: options)
}

/// `cairn rerun ID [--from-step S] [--data JSON]`.
struct Rerun: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run a run again: from its start, or from one of its steps, optionally with edited event data.")

    @Argument(help: "The run to rerun.")
    var id: String

    @Option(help: "The step to run again from, by id or name; the steps before it keep their results.")
    var fromStep: String?

    @Option(help: "The trigger event's new data, a JSON object.")
    var data: String?

    @OptionGroup var options: APIOptions

    func run() async throws {
        var body: [(String, JSONValue)] = []
        if let fromStep { body.append(("from_step", .string(fromStep))) }
        if let data { body.append(("data", .object(try jsonObject(data, option: "--data")))) }
        let reply = try await options.call("POST", "/v1/runs/\(id)/rerun", body: .object(JSONObject(members: body)))
        options.print(reply) { say(reply["data"]?["run_id"]?.stringValue ?? "") }
    }
}

/// `cairn replay --function F [--status …] [--if …]`.
struct Replay: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Start again, in bulk, every ended run of a function that a filter matches.")

    @OptionGroup var selection: Selection

    @Option(help: "Only runs with these statuses, comma-separated (default Failed,Cancelled).")
    var status: String?

    @Flag(help: "Return once the job is recorded, without following it.")
    var detach = false

    @OptionGroup var options: APIOptions

    func validate() throws {
        guard selection.function != nil else { throw ValidationError("--function: is required, the slug of the function whose runs to replay") }
    }

    func run() async throws {
        var body = selection.body
        if let status { body.append(("statuses", .array(status.split(separator: ",").map { .string(String($0)) }))) }
        let reply = try await options.call("POST", "/v1/replays", body: .object(JSONObject(members: body)))
        try await started(reply, detach: detach, options: options)
    }
}

/// `cairn pause FUNCTION`.
struct Pause: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Pause a function: its events start no run until it is resumed.")

    @Argument(help: "The function's slug.")
    var function: String

    @OptionGroup var options: APIOptions

    func run() async throws {
        let reply = try await options.call("POST", "/v1/functions/\(function)/pause")
        options.print(reply) { say("paused \(function) since \(reply["data"]?["paused_at"]?.stringValue ?? "")") }
    }
}

/// `cairn resume FUNCTION [--replay]`.
struct Resume: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Resume a paused function; --replay also runs what it skipped while paused.")

    @Argument(help: "The function's slug.")
    var function: String

    @Flag(help: "Replay the runs the function skipped while paused.")
    var replay = false

    @OptionGroup var options: APIOptions

    func run() async throws {
        let reply = try await options.call("POST", "/v1/functions/\(function)/resume", body: ["replay": .bool(replay)])
        guard let job = reply["data"]?["replay"], job != .null else {
            options.print(reply) { say("resumed \(function)") }
            return
        }
        if !options.json { say("resumed \(function); replaying what it skipped") }
        try await follow(bulk: job, with: options)
    }
}

/// Prints rows in columns as wide as their widest cell.
func table(_ header: [String]?, _ rows: [[String]]) {
    let all = (header.map { [$0] } ?? []) + rows
    guard let columns = all.first?.count else { return }
    let widths = (0..<columns).map { column in all.map { $0[column].count }.max() ?? 0 }
    for row in all {
        say(zip(row, widths).enumerated().map { index, cell in
            index == columns - 1 ? cell.0 : cell.0.padding(toLength: cell.1, withPad: " ", startingAt: 0)
        }.joined(separator: "  "))
    }
}

/// One line of at most 80 characters.
func clip(_ text: String) -> String {
    let line = text.replacingOccurrences(of: "\n", with: " ")
    return line.count > 80 ? String(line.prefix(79)) + "…" : line
}
