import ArgumentParser
import AsyncHTTPClient
import CairnCore
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Synchronization

/// Flow control against a running Cairn, with an SDK stub written here (docs/flow-control.md):
/// - event-to-first-call latency of a function with no flow-control option;
/// - debounce fire lag (first call − (event sent + period)) for events on their own keys;
/// - exactness: `--debounce-events` events over `--debounce-keys` keys start exactly one run per
///   key, and `--batch-events` events in batches of 100 start exactly events / 100 runs;
/// - batch flush lag (first call − (event sent + timeout)) for batches that close by timeout;
/// - cron fire lag (first call − tick) over `--crons` every-minute crons and `--cron-ticks`
///   ticks each.
/// Lags count from when the event was sent, so they include routing: an upper bound.
struct FlowControlBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "flow",
        abstract: "Flow-control fire lags and exactness, against a running Cairn."
    )

    @Option(help: "Cairn's API origin (app sync); events go to the same origin.")
    var api: String = "http://127.0.0.1:8288"

    @Option(help: "Events for the plain function's event-to-first-call latency, 20 ms apart.")
    var plain: Int = 100

    @Option(help: "Debounced events on their own keys (1 s period), for the fire lag.")
    var debounceLag: Int = 50

    @Option(help: "Events for the debounce exactness check.")
    var debounceEvents: Int = 10_000

    @Option(help: "Keys those events are spread over.")
    var debounceKeys: Int = 1_000

    @Option(help: "Events for the batch exactness check (maxSize 100).")
    var batchEvents: Int = 10_000

    @Option(help: "Batches closed by their 1 s timeout, for the flush lag.")
    var batchLag: Int = 50

    @Option(help: "Every-minute cron functions.")
    var crons: Int = 0

    @Option(help: "Ticks to wait for per cron function.")
    var cronTicks: Int = 2

    @Flag(help: "Only the plain function's latency.")
    var plainOnly = false

    @Flag(help: "Print one JSON object instead of text.")
    var json = false

    func run() async throws {
        let recorder = FlowRecorder()
        let router = Router()
        let stub = FlowStub(recorder: recorder, api: api, crons: plainOnly ? 0 : crons, withFlowControl: !plainOnly)
        stub.register(on: router)
        try await Stub.serve(router) { url in
            stub.url.withLock { $0 = url }
            try await measure(stub: stub, recorder: recorder)
        }
    }

    func measure(stub: FlowStub, recorder: FlowRecorder) async throws {
        let sync = try await post("\(api)/v1/apps/sync", body: ["url": .string(stub.url.withLock { $0 })])
        guard sync.status == 200 else { throw ValidationError("sync failed: \(sync.body)") }
        var report: [(String, String)] = []

        // Plain: a run per event, first call timed from the send.
        try await paced(plain) { index in
            let key = "plain-\(index)"
            recorder.expect(key, at: .now)
            try await send([["name": "bench/plain", "data": ["k": .string(key)]]])
        }
        try await recorder.waitForFirstCalls(prefix: "plain-", count: plain)
        report += Self.percentiles("plain_first_call", recorder.lags(prefix: "plain-"))
        guard !plainOnly else { return print(report) }

        // Fire lags first, while nothing else is going on.
        // Debounce lag: each key's only event; the run is due a period (1 s) after it.
        try await paced(debounceLag) { index in
            let key = "dlag-\(index)"
            recorder.expect(key, at: .now + .seconds(1))
            try await send([["name": "bench/debounce", "data": ["k": .string(key)]]])
        }
        try await recorder.waitForFirstCalls(prefix: "dlag-", count: debounceLag)
        report += Self.percentiles("debounce_fire_lag", recorder.lags(prefix: "dlag-"))

        // Batch flush lag: one event per key, closed by the 1 s timeout.
        try await paced(batchLag) { index in
            let key = "blag-\(index)"
            recorder.expect(key, at: .now + .seconds(1))
            try await send([["name": "bench/batch", "data": ["k": .string(key)]]])
        }
        try await recorder.waitForFirstCalls(prefix: "blag-", count: batchLag)
        report += Self.percentiles("batch_flush_lag", recorder.lags(prefix: "blag-"))

        // Debounce exactness: events spread round-robin over keys (each key's events as far
        // apart as they can be), sent in requests of 500; the period is 10 s.
        let bulk: [JSONValue] = (0..<debounceEvents).map { n in
            ["name": "bench/debounce-bulk", "data": ["k": .string("dbulk-\(n % debounceKeys)"), "n": .number(JSONNumber(n))]]
        }
        let bulkStarted = ContinuousClock.now
        for chunk in stride(from: 0, to: bulk.count, by: 500) { try await send(Array(bulk[chunk..<min(chunk + 500, bulk.count)])) }
        try await recorder.waitForFirstCalls(prefix: "dbulk-", count: debounceKeys, timeout: .seconds(180))
        // A key whose debounce fired early would start a second run one period after its
        // next event: wait that long.
        try await Task.sleep(for: .seconds(11))
        report.append(("debounce_events", String(debounceEvents)))
        report.append(("debounce_keys", String(debounceKeys)))
        report.append(("debounce_runs", String(recorder.runs(function: "debounce-bulk"))))
        report.append(("debounce_seconds_to_last_run", String(format: "%.1f", FlowRecorder.milliseconds(recorder.lastCall(function: "debounce-bulk") - bulkStarted) / 1_000)))

        // Batch exactness: one batch at a time, closed by size (its timeout is a minute).
        let items: [JSONValue] = (0..<batchEvents).map { n in ["name": "bench/batch-bulk", "data": ["n": .number(JSONNumber(n))]] }
        for chunk in stride(from: 0, to: items.count, by: 500) { try await send(Array(items[chunk..<min(chunk + 500, items.count)])) }
        try await recorder.waitForRuns(function: "batch-bulk", count: batchEvents / 100, timeout: .seconds(120))
        try await Task.sleep(for: .seconds(2))
        report.append(("batch_events", String(batchEvents)))
        report.append(("batch_runs", String(recorder.runs(function: "batch-bulk"))))
        report.append(("batch_events_per_run_min", String(recorder.batchSizes().min() ?? 0)))
        report.append(("batch_events_per_run_max", String(recorder.batchSizes().max() ?? 0)))

        // Crons: every function fires each minute; the lag is the first call after each tick,
        // counted for the ticks after the bulk phases.
        if stub.crons > 0 {
            recorder.countCronsFrom(Date())
            try await recorder.waitForCronCalls(count: stub.crons * cronTicks, timeout: .seconds(60 * (cronTicks + 1) + 30))
            report.append(("cron_ticks", String(recorder.cronLags().count)))
            report += Self.percentiles("cron_fire_lag", recorder.cronLags())
        }
        print(report)
    }

    func print(_ report: [(String, String)]) {
        if json {
            Swift.print("{" + report.map { "\"\($0.0)\":\($0.1)" }.joined(separator: ",") + "}")
        } else {
            for (name, value) in report { Swift.print("\(name): \(value)") }
        }
    }

    static func percentiles(_ name: String, _ values: [Double]) -> [(String, String)] {
        let sorted = values.sorted()
        func percentile(_ p: Double) -> Double {
            guard !sorted.isEmpty else { return 0 }
            return sorted[min(sorted.count - 1, max(0, Int((p * Double(sorted.count)).rounded(.up)) - 1))]
        }
        return [
            ("\(name)_count", String(sorted.count)), ("\(name)_p50_ms", String(format: "%.3f", percentile(0.5))),
            ("\(name)_p99_ms", String(format: "%.3f", percentile(0.99))),
        ]
    }

    /// Runs `body` `count` times, 20 ms apart, so that each is measured alone rather than a
    /// burst's backlog.
    func paced(_ count: Int, _ body: @escaping @Sendable (Int) async throws -> Void) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<count {
                try await Task.sleep(for: .milliseconds(20))
                group.addTask { try await body(index) }
            }
            try await group.waitForAll()
        }
    }

    func send(_ events: [JSONValue]) async throws {
        let reply = try await post("\(api)/e/bench", body: .array(events))
        guard reply.status == 200 else { throw ValidationError("sending events failed: \(reply.status) \(reply.body)") }
    }

    func post(_ url: String, body: JSONValue) async throws -> (status: Int, body: String) {
        try await Stub.post(url, body: body)
    }
}

/// What the flow stub saw: when each key's first call arrived against when it was due, the
/// runs of each function, and the cron lags.
final class FlowRecorder: Sendable {
    struct State {
        var due: [String: ContinuousClock.Instant] = [:]
        var lags: [String: Double] = [:]
        var runs: [String: Set<String>] = [:]
        var batchSizes: [String: Int] = [:]
        var cronLags: [String: Double] = [:]
        var cronsFrom = Date.distantPast
        var lastCall: [String: ContinuousClock.Instant] = [:]
    }

    let state = Mutex(State())

    func expect(_ key: String, at due: ContinuousClock.Instant) {
        state.withLock { $0.due[key] = due }
    }

    /// A call arrived at `at` for `function`'s run `runID` with `events`.
    func call(function: String, runID: String, events: [JSONValue], at: ContinuousClock.Instant, wall: Date) {
        state.withLock { state in
            let first = state.runs[function, default: []].insert(runID).inserted
            guard first else { return }
            state.lastCall[function] = at
            if function == "batch-bulk" { state.batchSizes[runID] = events.count }
            if function == "cron", let scheduled = events.first?["data"]?["scheduledAt"]?.stringValue,
                let tick = RFC3339.parseMilliseconds(scheduled), Double(tick) >= state.cronsFrom.timeIntervalSince1970 * 1_000
            {
                state.cronLags[runID] = wall.timeIntervalSince1970 * 1_000 - Double(tick)
            }
            guard let key = events.first?["data"]?["k"]?.stringValue, state.lags[key] == nil else { return }
            if let due = state.due[key] {
                state.lags[key] = Self.milliseconds(at - due)
            } else {
                state.lags[key] = .nan
            }
        }
    }

    func lags(prefix: String) -> [Double] {
        state.withLock { state in state.lags.filter { $0.key.hasPrefix(prefix) && !$0.value.isNaN }.map(\.value) }
    }

    func runs(function: String) -> Int { state.withLock { $0.runs[function]?.count ?? 0 } }
    func lastCall(function: String) -> ContinuousClock.Instant { state.withLock { $0.lastCall[function] ?? .now } }
    /// Cron lags count only ticks from `date` on.
    func countCronsFrom(_ date: Date) { state.withLock { $0.cronsFrom = date } }

    static func milliseconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) * 1_000 + Double(duration.components.attoseconds) / 1e15
    }
    func batchSizes() -> [Int] { state.withLock { Array($0.batchSizes.values) } }
    func cronLags() -> [Double] { state.withLock { Array($0.cronLags.values) } }

    func waitForFirstCalls(prefix: String, count: Int, timeout: Duration = .seconds(60)) async throws {
        try await wait(timeout, "\(count) first calls for \(prefix)*") { $0.lags.keys.filter { $0.hasPrefix(prefix) }.count >= count }
    }

    func waitForRuns(function: String, count: Int, timeout: Duration) async throws {
        try await wait(timeout, "\(count) runs of \(function)") { ($0.runs[function]?.count ?? 0) >= count }
    }

    func waitForCronCalls(count: Int, timeout: Duration) async throws {
        try await wait(timeout, "\(count) cron runs") { $0.cronLags.count >= count }
    }

    func wait(_ timeout: Duration, _ what: String, until done: (State) -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while !state.withLock({ done($0) }) {
            guard ContinuousClock.now < deadline else { throw ValidationError("timed out waiting for \(what)") }
            try await Task.sleep(for: .milliseconds(10))
        }
    }
}

/// The flow stub app: it syncs itself when Cairn sends the PUT and completes every call at
/// once. Functions: `plain` (no options), `debounce` (1 s, keyed), `debounce-bulk` (10 s, keyed),
/// `batch` (maxSize 100, timeout 1 s, keyed), `batch-bulk` (maxSize 100, timeout 1 m), and
/// `crons` every-minute crons.
final class FlowStub: Sendable {
    let recorder: FlowRecorder
    let api: String
    let crons: Int
    let withFlowControl: Bool
    let url = Mutex("")

    init(recorder: FlowRecorder, api: String, crons: Int, withFlowControl: Bool) {
        self.recorder = recorder
        self.api = api
        self.crons = crons
        self.withFlowControl = withFlowControl
    }

    func register(on router: Router<BasicRequestContext>) {
        router.put("/api/inngest") { _, _ -> Response in
            let url = self.url.withLock { $0 }
            func function(_ slug: String, _ trigger: JSONValue, _ options: [(String, JSONValue)] = []) -> JSONValue {
                Stub.function("cairn-bench-flow-\(slug)", slug: slug, url: url, triggers: [trigger], options: options)
            }
            var functions = [function("plain", ["event": "bench/plain"])]
            if self.withFlowControl {
                functions += [
                    function("debounce", ["event": "bench/debounce"], [("debounce", ["period": "1s", "key": "event.data.k"])]),
                    function("debounce-bulk", ["event": "bench/debounce-bulk"], [("debounce", ["period": "10s", "key": "event.data.k"])]),
                    function("batch", ["event": "bench/batch"], [("batchEvents", ["maxSize": 100, "timeout": "1s", "key": "event.data.k"])]),
                    function("batch-bulk", ["event": "bench/batch-bulk"], [("batchEvents", ["maxSize": 100, "timeout": "1m"])]),
                ]
                functions += (0..<self.crons).map { n in function("cron-\(n)", ["cron": "* * * * *"]) }
            }
            return try await Stub.register(api: self.api, name: "cairn-bench-flow", url: url, functions: functions)
        }
        router.post("/api/inngest") { request, context -> Response in
            var request = request
            let buffer = try await request.collectBody(upTo: 64 << 20)
            let arrived = ContinuousClock.now
            let wall = Date()
            let value = try JSONValue(parsing: Array(buffer: buffer))
            // Cairn calls with the function's full id (`cairn-bench-flow-<slug>`).
            var function = String((request.uri.queryParameters["fnId"].map(String.init) ?? "").dropFirst("cairn-bench-flow-".count))
            if function.hasPrefix("cron-") { function = "cron" }
            let runID = value["ctx"]?["run_id"]?.stringValue ?? ""
            self.recorder.call(function: function, runID: runID, events: value["events"]?.arrayValue ?? [], at: arrived, wall: wall)
            return Response(status: .ok, headers: Stub.headers, body: ResponseBody(byteBuffer: ByteBuffer(string: "null")))
        }
    }
}
