import ArgumentParser
import AsyncHTTPClient
import CairnCore
import Foundation
import Hummingbird
import NIOCore
import Synchronization

/// The work queue against a running Cairn, with an SDK stub written here (docs/queue.md):
/// - function `limited` has a concurrency limit (`--limit`) and steps that take `--hold-ms`;
///   `--backlog` events put that many runs in its line at once;
/// - function `free` has no limit and answers at once: its schedule-to-start latency (event
///   sent to first call) is measured with the line empty, then again behind the full line;
/// - the stub counts `limited`'s requests in flight at every arrival: the sampled maximum must
///   be the limit, never more, however many executors there are.
/// The measurement stops once the probes behind the line are done and `--sample-seconds` have
/// passed; the line is left to whoever stops the servers.
struct QueueBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "queue",
        abstract: "Another function's start latency behind a concurrency backlog, and the maximum in flight, against a running Cairn."
    )

    @Option(help: "Cairn's API origin (app sync, /v1/queues).")
    var api: String = "http://127.0.0.1:8288"

    @Option(help: "The event API's origin (default: --api).")
    var eventAPI: String?

    @Option(help: "The limited function's concurrency limit.")
    var limit: Int = 5

    @Option(help: "Runs put in the limited function's line.")
    var backlog: Int = 10_000

    @Option(help: "How long each request of the limited function takes in the stub, in ms.")
    var holdMs: Int = 100

    @Option(help: "Events of the free function per probe round, 20 ms apart.")
    var probes: Int = 200

    @Option(help: "How long to wait, at most, for the line to form before the probe behind it.")
    var lineSeconds: Int = 120

    @Option(help: "How long to keep sampling the limited function's requests in flight, at least.")
    var sampleSeconds: Int = 30

    @Flag(help: "Print one JSON object instead of text.")
    var json = false

    var events: String { eventAPI ?? api }

    func run() async throws {
        let recorder = QueueRecorder()
        let router = Router()
        let stub = QueueStub(recorder: recorder, api: api, limit: limit, hold: .milliseconds(holdMs))
        stub.register(on: router)
        try await Stub.serve(router) { url in
            stub.url.withLock { $0 = url }
            try await measure(stub: stub, recorder: recorder)
        }
    }

    func measure(stub: QueueStub, recorder: QueueRecorder) async throws {
        let sync = try await Stub.post("\(api)/v1/apps/sync", body: ["url": .string(stub.url.withLock { $0 })])
        guard sync.status == 200 else { throw ValidationError("sync failed: \(sync.body)") }
        let started = ContinuousClock.now
        var report: [(String, String)] = []

        // The free function alone: the control.
        report += FlowControlBench.percentiles("free_alone", try await probe("alone", recorder: recorder))

        // The line: every limited run sent at once, in requests of 500.
        let line: [JSONValue] = (0..<backlog).map { n in ["name": "bench/limited", "data": ["n": .number(JSONNumber(n))]] }
        for chunk in stride(from: 0, to: line.count, by: 500) { try await send(Array(line[chunk..<min(chunk + 500, line.count)])) }
        // Until the executors have put most of it in line (the rest is running or done), or
        // `--line-seconds` have passed: the probe then runs behind whatever line there is.
        let lineStarted = ContinuousClock.now
        let waiting = try await waitForLine(atLeast: backlog * 9 / 10, timeout: .seconds(lineSeconds))
        report.append(("backlog_at_probe", String(waiting)))
        report.append(("line_seconds", String(format: "%.1f", FlowRecorder.milliseconds(ContinuousClock.now - lineStarted) / 1_000)))

        // The free function behind the full line.
        report += FlowControlBench.percentiles("free_behind_backlog", try await probe("behind", recorder: recorder))
        let after = try await lineBacklog()
        report.append(("backlog_after_probe", String(after)))

        let remaining = Duration.seconds(sampleSeconds) - (ContinuousClock.now - started)
        if remaining > .zero { try await Task.sleep(for: remaining) }
        let sampled = recorder.limited()
        report.append(("limit", String(limit)))
        report.append(("executor_requests_sampled", String(sampled.requests)))
        report.append(("max_in_flight", String(sampled.maxInFlight)))
        report.append(("backlog", String(backlog)))
        report.append(("hold_ms", String(holdMs)))
        if json {
            Swift.print("{" + report.map { "\"\($0.0)\":\($0.1)" }.joined(separator: ",") + "}")
        } else {
            for (name, value) in report { Swift.print("\(name): \(value)") }
        }
    }

    /// Sends `probes` events of the free function 20 ms apart and returns each one's time from
    /// send to its run's first call, in milliseconds.
    func probe(_ round: String, recorder: QueueRecorder) async throws -> [Double] {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<probes {
                try await Task.sleep(for: .milliseconds(20))
                group.addTask {
                    let key = "\(round)-\(index)"
                    recorder.expect(key)
                    try await send([["name": "bench/free", "data": ["k": .string(key)]]])
                }
            }
            try await group.waitForAll()
        }
        return try await recorder.waitForLags(prefix: "\(round)-", count: probes, timeout: .seconds(60))
    }

    /// The line's length once it reaches `count`, or when `timeout` has passed.
    func waitForLine(atLeast count: Int, timeout: Duration) async throws -> Int {
        let deadline = ContinuousClock.now + timeout
        while true {
            let waiting = try await lineBacklog()
            if waiting >= count || ContinuousClock.now >= deadline { return waiting }
            try await Task.sleep(for: .milliseconds(200))
        }
    }

    /// The limited function's backlog as `GET /v1/queues` reports it.
    func lineBacklog() async throws -> Int {
        let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: "\(api)/v1/queues"), timeout: .seconds(30))
        let bytes = Array(buffer: try await response.body.collect(upTo: 16 << 20))
        guard response.status == .ok else { throw ValidationError("GET /v1/queues answered \(response.status): \(String(decoding: bytes, as: UTF8.self))") }
        let body = try JSONValue(parsing: bytes)
        let line = body["data"]?.arrayValue?.first { $0["function_id"]?.stringValue == "cairn-bench-queue-limited" }
        return Int(line?["backlog"]?.int64Value ?? 0)
    }

    func send(_ events: [JSONValue]) async throws {
        let reply = try await Stub.post("\(self.events)/e/bench", body: .array(events))
        guard reply.status == 200 else { throw ValidationError("sending events failed: \(reply.status) \(reply.body)") }
    }
}

/// What the queue stub saw: the free function's lags by key, and the limited function's
/// requests in flight.
final class QueueRecorder: Sendable {
    struct State {
        var sent: [String: ContinuousClock.Instant] = [:]
        var lags: [String: Double] = [:]
        var inFlight = 0
        var maxInFlight = 0
        var requests = 0
    }

    let state = Mutex(State())

    func expect(_ key: String) { state.withLock { $0.sent[key] = .now } }

    func freeCall(key: String, at: ContinuousClock.Instant) {
        state.withLock { state in
            guard state.lags[key] == nil, let sent = state.sent[key] else { return }
            state.lags[key] = FlowRecorder.milliseconds(at - sent)
        }
    }

    /// A request of the limited function begins: counted in flight, and the most so far noted.
    func limitedBegins() {
        state.withLock { state in
            state.inFlight += 1
            state.requests += 1
            state.maxInFlight = max(state.maxInFlight, state.inFlight)
        }
    }

    func limitedEnds() { state.withLock { $0.inFlight -= 1 } }

    func limited() -> (requests: Int, maxInFlight: Int) { state.withLock { ($0.requests, $0.maxInFlight) } }

    func waitForLags(prefix: String, count: Int, timeout: Duration) async throws -> [Double] {
        let deadline = ContinuousClock.now + timeout
        while true {
            let lags = state.withLock { state in state.lags.filter { $0.key.hasPrefix(prefix) }.map(\.value) }
            if lags.count >= count { return lags }
            guard ContinuousClock.now < deadline else { throw ValidationError("timed out waiting for \(count) first calls for \(prefix)*") }
            try await Task.sleep(for: .milliseconds(10))
        }
    }
}

/// The queue stub app: `limited` (concurrency `limit`, each request takes `hold`) and `free`
/// (no options, answers at once); it syncs itself when Cairn sends the PUT.
final class QueueStub: Sendable {
    let recorder: QueueRecorder
    let api: String
    let limit: Int
    let hold: Duration
    let url = Mutex("")

    init(recorder: QueueRecorder, api: String, limit: Int, hold: Duration) {
        self.recorder = recorder
        self.api = api
        self.limit = limit
        self.hold = hold
    }

    func register(on router: Router<BasicRequestContext>) {
        router.put("/api/inngest") { _, _ -> Response in
            let url = self.url.withLock { $0 }
            let functions = [
                Stub.function("cairn-bench-queue-limited", slug: "limited", url: url, triggers: [["event": "bench/limited"]],
                              options: [("concurrency", ["limit": .number(JSONNumber(self.limit))])]),
                Stub.function("cairn-bench-queue-free", slug: "free", url: url, triggers: [["event": "bench/free"]]),
            ]
            return try await Stub.register(api: self.api, name: "cairn-bench-queue", url: url, functions: functions)
        }
        router.post("/api/inngest") { request, _ -> Response in
            var request = request
            let buffer = try await request.collectBody(upTo: 64 << 20)
            let arrived = ContinuousClock.now
            if request.uri.queryParameters["fnId"].map(String.init) == "cairn-bench-queue-limited" {
                self.recorder.limitedBegins()
                try? await Task.sleep(for: self.hold)
                self.recorder.limitedEnds()
            } else {
                let value = try JSONValue(parsing: Array(buffer: buffer))
                if let key = value["events"]?.arrayValue?.first?["data"]?["k"]?.stringValue { self.recorder.freeCall(key: key, at: arrived) }
            }
            return Response(status: .ok, headers: Stub.headers, body: ResponseBody(byteBuffer: ByteBuffer(string: "null")))
        }
    }
}
