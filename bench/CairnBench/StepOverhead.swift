import ArgumentParser
import AsyncHTTPClient
import CairnCore
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Synchronization

/// Engine overhead per step: a fast SDK stub written here speaks the real protocol (sync,
/// call requests, StepRun and Sleep ops); Cairn drives `--runs` runs of a `--steps`-step
/// function whose steps do nothing, and the stub times each run from its first call to its
/// last reply, minus the time spent inside the stub. Then `--sleeps` runs, started 20 ms
/// apart, each sleep 1 s, and the stub measures how late the wake-up call arrives (the timer
/// firing plus the resume: publish, lease, load, call). Then `--delayed` events whose `ts` is
/// 2 s ahead (events up to 1 s ahead are handled at once), 20 ms apart, and how late the first call of each one's run arrives.
struct StepOverhead: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "steps",
        abstract: "Engine overhead per step and timer lag, against a running Cairn."
    )

    @Option(help: "Cairn's API origin (app sync).")
    var api: String = "http://127.0.0.1:8288"

    @Option(help: "The event API's origin (default: --api).")
    var eventAPI: String?

    @Option(help: "Event key for POST /e/{key}.")
    var eventKey: String = "bench"

    @Option(help: "Runs of the multi-step function.")
    var runs: Int = 200

    @Option(help: "Steps per run.")
    var steps: Int = 10

    @Option(help: "Runs in flight at once.")
    var concurrency: Int = 1

    @Option(help: "How long each step of the multi-step function takes in the stub, in ms (an app waiting on I/O).")
    var stepLatencyMs: Int = 0

    @Option(help: "Runs that sleep 1 s, for the timer lag.")
    var sleeps: Int = 50

    @Option(help: "Events with a `ts` 2 s ahead, for the delayed-event lag.")
    var delayed: Int = 0

    @Flag(help: "Print one JSON object instead of text.")
    var json = false

    func run() async throws {
        let recorder = StubRecorder()
        let router = Router()
        let stub = StubApp(recorder: recorder, api: api, steps: steps, stepLatency: .milliseconds(stepLatencyMs))
        stub.register(on: router)
        try await Stub.serve(router) { url in
            stub.url.withLock { $0 = url }
            try await measure(stub: stub, recorder: recorder)
        }
    }

    func measure(stub: StubApp, recorder: StubRecorder) async throws {
        let sync = try await post("\(api)/v1/apps/sync", body: ["url": .string(stub.url.withLock { $0 })])
        guard sync.status == 200 else { throw ValidationError("sync failed: \(sync.body)") }

        // Multi-step runs, `concurrency` at a time.
        let clock = ContinuousClock()
        let started = clock.now
        var sent = 0
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<min(concurrency, runs) {
                let index = sent
                sent += 1
                group.addTask { try await self.runOne(index, recorder: recorder) }
            }
            while try await group.next() != nil {
                if sent < runs {
                    let index = sent
                    sent += 1
                    group.addTask { try await self.runOne(index, recorder: recorder) }
                }
            }
        }
        let elapsed = clock.now - started
        let perStep = recorder.perStepOverheads(steps: steps).sorted()
        let gaps = recorder.gaps().sorted()

        // Sleeps, started 20 ms apart so each timer's lag is measured, not a burst's backlog.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<sleeps {
                try await Task.sleep(for: .milliseconds(20))
                group.addTask {
                    let waiter = recorder.waitForRunEnd(key: "sleep-\(index)")
                    _ = try await self.post("\(self.events)/e/\(self.eventKey)", body: ["name": "bench/sleep", "data": ["key": .string("sleep-\(index)")]])
                    await waiter.value
                }
            }
            try await group.waitForAll()
        }
        let lags = recorder.lags(of: "sleep").sorted()

        // Events due 2 s after they are sent: the scheduler holds each on a timer.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<delayed {
                try await Task.sleep(for: .milliseconds(20))
                group.addTask {
                    let key = "delayed-\(index)"
                    let waiter = recorder.waitForRunEnd(key: key)
                    recorder.timerStarted(key: key, due: .now + .seconds(2))
                    let ts = Int64((Date().timeIntervalSince1970 * 1_000).rounded()) + 2_000
                    let event: JSONValue = ["name": "bench/delayed", "ts": .number(JSONNumber(ts)), "data": ["key": .string(key)]]
                    _ = try await self.post("\(self.events)/e/\(self.eventKey)", body: event)
                    await waiter.value
                }
            }
            try await group.waitForAll()
        }
        let delayedLags = recorder.lags(of: "delayed").sorted()

        func percentile(_ values: [Double], _ p: Double) -> Double {
            guard !values.isEmpty else { return 0 }
            return values[min(values.count - 1, max(0, Int((p * Double(values.count)).rounded(.up)) - 1))]
        }
        let report: [(String, String)] = [
            ("runs", String(runs)), ("steps_per_run", String(steps)), ("concurrency", String(concurrency)),
            ("runs_per_second", String(format: "%.1f", Double(runs) / (Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18))),
            ("overhead_per_step_p50_ms", String(format: "%.3f", percentile(perStep, 0.5))),
            ("overhead_per_step_p95_ms", String(format: "%.3f", percentile(perStep, 0.95))),
            ("overhead_per_step_p99_ms", String(format: "%.3f", percentile(perStep, 0.99))),
            ("gap_between_calls_p50_ms", String(format: "%.3f", percentile(gaps, 0.5))),
            ("gap_between_calls_p99_ms", String(format: "%.3f", percentile(gaps, 0.99))),
            ("sleeps", String(sleeps)),
            ("timer_lag_p50_ms", String(format: "%.3f", percentile(lags, 0.5))),
            ("timer_lag_p99_ms", String(format: "%.3f", percentile(lags, 0.99))),
            ("cpu_seconds", String(format: "%.3f", processCPUSeconds())),
            ("delayed", String(delayed)),
            ("delayed_lag_p50_ms", String(format: "%.3f", percentile(delayedLags, 0.5))),
            ("delayed_lag_p99_ms", String(format: "%.3f", percentile(delayedLags, 0.99))),
        ]
        if json {
            print("{" + report.map { "\"\($0.0)\":\($0.1)" }.joined(separator: ",") + "}")
        } else {
            for (name, value) in report { print("\(name): \(value)") }
        }
    }

    func runOne(_ index: Int, recorder: StubRecorder) async throws {
        let key = "run-\(index)"
        let done = recorder.waitForRunEnd(key: key)
        let reply = try await post("\(events)/e/\(eventKey)", body: ["name": "bench/steps", "data": ["key": .string(key)]])
        guard reply.status == 200 else { throw ValidationError("sending the event failed: \(reply.body)") }
        await done.value
    }

    var events: String { eventAPI ?? api }


    func post(_ url: String, body: JSONValue) async throws -> (status: Int, body: String) {
        try await Stub.post(url, body: body)
    }
}

/// What the stub saw, per run: when each call arrived and was answered, and timer lags.
final class StubRecorder: Sendable {
    struct Run {
        var calls: [(arrived: ContinuousClock.Instant, answered: ContinuousClock.Instant)] = []
        var waiter: CheckedContinuation<Void, Never>?
        var ended = false
    }

    struct State {
        var runs: [String: Run] = [:]
        var due: [String: ContinuousClock.Instant] = [:]
        /// Lags in ms by kind, the key's prefix before "-" (`sleep`, `delayed`).
        var lags: [String: [Double]] = [:]
    }

    let state = Mutex(State())

    func waitForRunEnd(key: String) -> Task<Void, Never> {
        Task {
            await withCheckedContinuation { continuation in
                let resumeNow = state.withLock { state -> Bool in
                    if state.runs[key]?.ended == true { return true }
                    state.runs[key, default: Run()].waiter = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        }
    }

    func call(key: String, arrived: ContinuousClock.Instant, answered: ContinuousClock.Instant, ended: Bool) {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            state.runs[key, default: Run()].calls.append((arrived, answered))
            guard ended else { return nil }
            state.runs[key]?.ended = true
            defer { state.runs[key]?.waiter = nil }
            return state.runs[key]?.waiter
        }
        waiter?.resume()
    }

    /// A timer for `key` (a sleep, a delayed event) is due at `due`.
    func timerStarted(key: String, due: ContinuousClock.Instant) {
        state.withLock { $0.due[key] = due }
    }

    /// The call that `key`'s timer causes arrived at `at`.
    func timerFired(key: String, at: ContinuousClock.Instant) {
        state.withLock { state in
            guard let due = state.due.removeValue(forKey: key) else { return }
            let kind = String(key.prefix(while: { $0 != "-" }))
            state.lags[kind, default: []].append(Self.milliseconds(at - due))
        }
    }

    /// Per run: (last answer − first arrival − time inside the stub) / steps, in ms.
    func perStepOverheads(steps: Int) -> [Double] {
        state.withLock { state in
            state.runs.filter { $0.key.hasPrefix("run-") && $0.value.ended }.values.compactMap { run in
                guard let first = run.calls.first?.arrived, let last = run.calls.last?.answered else { return nil }
                let inside = run.calls.reduce(0.0) { $0 + Self.milliseconds($1.answered - $1.arrived) }
                return (Self.milliseconds(last - first) - inside) / Double(steps)
            }
        }
    }

    /// Every gap between one answer and the next call of the same run, in ms.
    func gaps() -> [Double] {
        state.withLock { state in
            state.runs.filter { $0.key.hasPrefix("run-") }.values.flatMap { run in
                zip(run.calls, run.calls.dropFirst()).map { Self.milliseconds($1.arrived - $0.answered) }
            }
        }
    }

    func lags(of kind: String) -> [Double] {
        state.withLock { $0.lags[kind] ?? [] }
    }

    static func milliseconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) * 1_000 + Double(duration.components.attoseconds) / 1e15
    }
}

/// The stub app: syncs itself when Cairn sends the PUT, and answers call requests for three
/// functions, `steps` (N no-op steps, then the step count), `sleep` (sleep 1 s, then done) and
/// `delayed` (done at once).
final class StubApp: Sendable {
    let recorder: StubRecorder
    let api: String
    let steps: Int
    let stepLatency: Duration
    let url = Mutex("")

    init(recorder: StubRecorder, api: String, steps: Int, stepLatency: Duration) {
        self.recorder = recorder
        self.api = api
        self.steps = steps
        self.stepLatency = stepLatency
    }

    func register(on router: Router<BasicRequestContext>) {
        router.put("/api/inngest") { _, _ -> Response in
            let url = self.url.withLock { $0 }
            let functions = [("steps", "bench/steps"), ("sleep", "bench/sleep"), ("delayed", "bench/delayed")].map { slug, event in
                Stub.function("cairn-bench-\(slug)", slug: "cairn-bench-\(slug)", url: url, triggers: [["event": .string(event)]])
            }
            return try await Stub.register(api: self.api, name: "cairn-bench", url: url, functions: functions)
        }
        router.post("/api/inngest") { request, context -> Response in
            var request = request
            let buffer = try await request.collectBody(upTo: 64 << 20)
            let arrived = ContinuousClock.now
            let value = try JSONValue(parsing: Array(buffer: buffer))
            let key = value["event"]?["data"]?["key"]?.stringValue ?? ""
            let memoized = value["steps"]?.objectValue?.count ?? 0
            let function = request.uri.queryParameters["fnId"].map(String.init) ?? ""
            let response: Response
            var ended = false
            if function == "cairn-bench-sleep" {
                if memoized == 0 {
                    self.recorder.timerStarted(key: key, due: arrived + .seconds(1))
                    response = Self.ops([["id": .string(StepID.hashed("nap")), "op": "Sleep", "name": "1s", "displayName": "nap"]])
                } else {
                    self.recorder.timerFired(key: key, at: arrived)
                    ended = true
                    response = Response(status: .ok, headers: Stub.headers, body: ResponseBody(byteBuffer: ByteBuffer(string: "null")))
                }
            } else if function == "cairn-bench-delayed" {
                self.recorder.timerFired(key: key, at: arrived)
                ended = true
                response = Response(status: .ok, headers: Stub.headers, body: ResponseBody(byteBuffer: ByteBuffer(string: "null")))
            } else if memoized < self.steps {
                if self.stepLatency > .zero { try await Task.sleep(for: self.stepLatency) }
                let name = "s\(memoized)"
                response = Self.ops([["id": .string(StepID.hashed(name)), "op": "StepRun", "name": .string(name), "displayName": .string(name), "data": .number(JSONNumber(memoized))]])
            } else {
                ended = true
                response = Response(status: .ok, headers: Stub.headers, body: ResponseBody(byteBuffer: ByteBuffer(string: String(memoized))))
            }
            self.recorder.call(key: key, arrived: arrived, answered: ContinuousClock.now, ended: ended)
            return response
        }
    }

    static func ops(_ ops: [JSONValue]) -> Response {
        Response(status: .partialContent, headers: Stub.headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: JSONValue.array(ops).serialized())))
    }
}
