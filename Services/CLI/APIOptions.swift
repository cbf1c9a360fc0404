import ArgumentParser
import AsyncHTTPClient
import CairnCore
import CairnHTTP
import Foundation

/// Where a command finds Cairn's API, and how it prints (shared by every command that calls
/// it).
struct APIOptions: ParsableArguments {
    @Option(help: "Cairn's API origin. Default: INNGEST_API_BASE_URL, else INNGEST_BASE_URL, else http://127.0.0.1:8288.")
    var api: String?

    @Flag(help: "Print the API's JSON answer instead of text, for scripts.")
    var json = false

    var environment: [String: String] { ProcessInfo.processInfo.environment }

    var origin: String {
        api ?? environment["INNGEST_API_BASE_URL"] ?? environment["INNGEST_BASE_URL"] ?? "http://127.0.0.1:8288"
    }

    /// A client authenticated with `INNGEST_SIGNING_KEY`, when it is set.
    func client() throws -> CairnAPIClient {
        var key: SigningKey?
        if let raw = environment["INNGEST_SIGNING_KEY"], !raw.isEmpty {
            do { key = try SigningKey(raw) } catch { throw ValidationError("INNGEST_SIGNING_KEY: \(error.rule)") }
        }
        return CairnAPIClient(origin: origin, key: key, client: Self.http)
    }

    /// Gives up on a Cairn that does not answer within 5 s, instead of retrying to connect
    /// until the request's timeout.
    static let http: HTTPClient = {
        var configuration = HTTPClient.Configuration()
        configuration.timeout.connect = .seconds(5)
        configuration.connectionPool.retryConnectionEstablishment = false
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }()

    /// Calls the API; a reply other than 2xx is printed as the error it names, and the command
    /// exits 1.
    func call(_ method: String, _ path: String, body: JSONValue? = nil) async throws -> JSONValue {
        let reply: CairnAPIClient.Reply
        do {
            reply = try await client().send(method, path, body: body?.serialized())
        } catch let error as ValidationError {
            throw error
        } catch {
            sayError("cairn: could not reach Cairn at \(origin): \(error)")
            throw ExitCode(1)
        }
        guard (200..<300).contains(reply.status) else {
            let message = reply.body["error"]?.stringValue ?? reply.body.jsonString
            sayError("cairn: \(message) (HTTP \(reply.status))")
            throw ExitCode(1)
        }
        return reply.body
    }

    /// Prints `value` as JSON when `--json` is given; otherwise runs `text`.
    func print(_ value: JSONValue, text: () -> Void) {
        if json { say(value.jsonString) } else { text() }
    }
}

/// A JSON argument (`--data '{"plan":"pro"}'`), checked to be an object.
func jsonObject(_ text: String, option: String) throws -> JSONObject {
    guard let value = try? JSONValue(parsing: Array(text.utf8)), case .object(let object) = value else {
        throw ValidationError("\(option): must be a JSON object, such as '{\"plan\": \"pro\"}'")
    }
    return object
}

/// The fields a bulk cancel or replay selects runs with.
struct Selection: ParsableArguments {
    @Option(name: .customLong("function"), help: "Bulk: the function's slug (its id as Cairn shows it).")
    var function: String?

    @Option(help: "Only runs created at or after this RFC 3339 time.")
    var from: String?

    @Option(help: "Only runs created before this RFC 3339 time.")
    var until: String?

    @Option(name: .customLong("if"), help: "Only runs whose trigger event this expression is true for, e.g. 'event.data.tenant == \"t1\"'.")
    var condition: String?

    @Option(help: "A key that makes asking twice start one job.")
    var idempotencyKey: String?

    /// Whether any field other than `--function` is given.
    var narrows: Bool { from != nil || until != nil || condition != nil || idempotencyKey != nil }

    var body: [(String, JSONValue)] {
        var members: [(String, JSONValue)] = [("function_id", .string(function ?? ""))]
        if let from { members.append(("from", .string(from))) }
        if let until { members.append(("until", .string(until))) }
        if let condition { members.append(("if", .string(condition))) }
        if let idempotencyKey { members.append(("idempotency_key", .string(idempotencyKey))) }
        return members
    }
}

/// Follows a bulk job to its end, drawing a progress bar on standard error (when it is a
/// terminal), then prints the outcome; exits 1 if the job failed.
func follow(bulk job: JSONValue, with options: APIOptions) async throws {
    guard let id = job["bulk_id"]?.stringValue else { throw ValidationError("the API answered no bulk_id: \(job.jsonString)") }
    let terminal = isatty(STDERR_FILENO) == 1 && !options.json
    var current = job
    while current["status"]?.stringValue == "Running" {
        if terminal { FileHandle.standardError.write(Data(("\r" + progressLine(current)).utf8)) }
        try await Task.sleep(for: .milliseconds(250))
        current = try await options.call("GET", "/v1/bulk/\(id)")["data"] ?? current
    }
    if terminal { FileHandle.standardError.write(Data(("\r" + progressLine(current) + "\n").utf8)) }
    options.print(current) {
        let verb = current["kind"]?.stringValue == "cancel" ? "cancelled" : "replayed"
        say("bulk \(id) \(current["status"]?.stringValue ?? "?"): \(current["matched"]?.int64Value ?? 0) matched, \(current["done"]?.int64Value ?? 0) \(verb)")
    }
    if current["status"]?.stringValue == "Failed" {
        sayError("cairn: bulk \(id) failed: \(current["error"]?.stringValue ?? "no reason given")")
        throw ExitCode(1)
    }
}

/// `[#########.........] 450/1000 walked, 200 matched, 200 done`
func progressLine(_ job: JSONValue) -> String {
    let total = max(job["total"]?.int64Value ?? 0, 1)
    let scanned = min(job["scanned"]?.int64Value ?? 0, total)
    let width = 30
    let filled = Int(Double(scanned) / Double(total) * Double(width))
    let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
    return "[\(bar)] \(scanned)/\(job["total"]?.int64Value ?? 0) walked, \(job["matched"]?.int64Value ?? 0) matched, \(job["done"]?.int64Value ?? 0) done"
}
