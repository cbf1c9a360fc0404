import CairnCore
@testable import CairnEngine
import CairnTesting
import Foundation
import Synchronization
import Testing

/// Run traces (docs/operations.md, "Traces") on in-memory ports and a manual clock: what each
/// part of the engine emits adds up to one complete tree per run.
@Suite struct RunTracingTests {
    /// Passes calls to the scripted app, keeping each call's `traceparent`.
    final class RecordingTransport: SDKTransport {
        let app: FakeSDKApp
        let traceparents = Mutex<[String?]>([])

        init(_ app: FakeSDKApp) { self.app = app }

        func send(_ request: SDKRequest) async throws -> SDKReply {
            traceparents.withLock { $0.append(request.headers.first { $0.0 == "traceparent" }?.1) }
            return try await app.send(request)
        }
    }

    static func hexID(_ span: TraceSpan) -> String { RunTracing.hex(span.spanID, digits: 16) }

    /// Every parent named is a span of the trace, and exactly one span is the root.
    static func expectComplete(_ spans: [TraceSpan], sourceLocation: SourceLocation = #_sourceLocation) {
        let ids = Set(spans.map(\.spanID))
        #expect(spans.filter { $0.parentID == nil }.count == 1, sourceLocation: sourceLocation)
        for span in spans {
            if let parent = span.parentID { #expect(ids.contains(parent), "\(span.name) has a parent nobody emitted", sourceLocation: sourceLocation) }
            #expect(span.start <= span.end, sourceLocation: sourceLocation)
        }
        #expect(ids.count == spans.count, "span ids repeat", sourceLocation: sourceLocation)
    }

    @Test func aRunWithARetryAndASleepIsOneCompleteTree() async throws {
        let app = FakeSDKApp()
        let transport = RecordingTransport(app)
        let engine = EngineHarness(sdk: transport)
        let script = FakeSDKApp.Function([.run("a", failures: 1, output: 1), .sleep("nap", duration: "1h"), .run("b", output: 2)])
        try await engine.sync([("traced", "shop/traced", 1, [], script)])
        app.serve("shop-traced", script)
        let eventID = try await engine.send("shop/traced")
        let created = engine.clock.now
        try await engine.settle()
        engine.clock.advance(by: 1)
        try await engine.settle()
        let parked = engine.clock.now
        try await engine.advance(3_600)
        let run = try await engine.run(of: eventID)
        #expect(run.status == "Completed")

        let spans = engine.spans.all.filter { $0.traceID == RunTracing.traceID(of: run.id) }
        #expect(spans.count == engine.spans.all.count)
        Self.expectComplete(spans)
        let rootID = RunTracing.runSpanID(of: run.id)
        let root = try #require(spans.first { $0.parentID == nil })
        #expect(root.name == "cairn.run")
        #expect(root.spanID == rootID)
        #expect(root.start == run.id.date)
        #expect(root.end == engine.clock.now)
        #expect(root["cairn.run.status"] == .string("completed"))
        #expect(root["cairn.function.slug"] == .string("shop-traced"))

        let steps = spans.filter { $0.name == "cairn.step" }.sorted { $0.start < $1.start }
        #expect(steps.map { $0["cairn.step.name"] } == [.string("a"), .string("nap"), .string("b")])
        #expect(steps.map(\.spanID) == ["a", "nap", "b"].map { RunTracing.stepSpanID(of: run.id, step: StepID.hashed($0)) })
        #expect(steps.allSatisfy { $0.parentID == rootID })
        // The sleep spans the hour it was planned for.
        let nap = steps[1]
        #expect(nap.start == parked)
        #expect(nap.end == parked.addingTimeInterval(3_600))
        #expect(nap["cairn.step.op"] == .string("Sleep"))
        #expect(steps[0]["cairn.step.attempts"] == .int(2))

        // Calls: a fails, a again, the sleep planned, b, the function's return.
        let requests = spans.filter { $0.name == "cairn.sdk.request" }.sorted { $0.start < $1.start }
        let stepA = RunTracing.stepSpanID(of: run.id, step: StepID.hashed("a"))
        let stepB = RunTracing.stepSpanID(of: run.id, step: StepID.hashed("b"))
        // A call hangs under the step its reply recorded; the failed one under the run, since
        // a step that failed may never be recorded (its run may be cancelled first).
        #expect(requests.map(\.parentID) == [rootID, stepA, rootID, stepB, rootID])
        #expect(requests.map { $0["cairn.step.id"] } == [.string(StepID.hashed("a")), .string(StepID.hashed("a")), nil, .string(StepID.hashed("b")), nil])
        #expect(requests.map { $0.error != nil } == [true, false, false, false, false])
        #expect(requests.allSatisfy { $0.kind == .client })
        // Each call carried its own span as the parent of what the SDK does.
        let sent = transport.traceparents.withLock { $0 }
        #expect(sent == requests.map { "00-\(RunTracing.hex(run.id.rawValue, digits: 32))-\(Self.hexID($0))-01" })

        let schedule = try #require(spans.first { $0.name == "cairn.schedule" })
        #expect(schedule.start == eventID.date)
        #expect(schedule.parentID == rootID)
        #expect(schedule.start <= created)
        // The start, the retry and the wake-up each waited in the queue.
        #expect(spans.filter { $0.name == "cairn.queue.wait" }.map { $0["cairn.queue.reason"] } == [.string("start"), .string("retry"), .string("wake")])
    }

    @Test func aCancelledRunsRootIsEmittedByTheCancellation() async throws {
        let engine = EngineHarness()
        try await engine.sync([("sleeper", "shop/sleep", 0, [], FakeSDKApp.Function([.run("a", output: 1), .sleep("nap", duration: "1h")]))])
        let eventID = try await engine.send("shop/sleep")
        try await engine.settle()
        let runID = try await engine.run(of: eventID).id
        engine.clock.advance(by: 5)
        let cancellation = RunCancellation(store: engine.store, events: engine.sink, clock: engine.clock, metrics: engine.metrics)
        #expect(try await cancellation.cancel(runID))
        #expect(try await !cancellation.cancel(runID))

        let spans = engine.spans.all
        Self.expectComplete(spans)
        let roots = spans.filter { $0.name == "cairn.run" }
        #expect(roots.count == 1)
        #expect(roots.first?["cairn.run.status"] == .string("cancelled"))
        #expect(roots.first?.end == engine.clock.now)
    }

    static let sleepy = FakeSDKApp.Function([.sleep("nap", duration: "1h"), .run("a", output: 1)], output: { $0["a"] ?? .null })

    /// The roots of runs that ended, by run, as `status`.
    static func roots(_ engine: EngineHarness) -> [ULID: String] {
        var roots: [ULID: String] = [:]
        for span in engine.spans.all where span.name == "cairn.run" {
            if case .string(let status)? = span["cairn.run.status"] { roots[ULID(rawValue: span.traceID)] = status }
        }
        return roots
    }

    @Test func runsEndedByATimeoutOrASingletonAndRunsADebounceStartedAreTracedToo() async throws {
        let engine = EngineHarness()
        try await engine.sync(configs: [
            ("t", #""triggers":[{"event":"shop/go"}],"timeouts":{"start":"1m","finish":"30m"}"#, Self.sleepy),
            ("s", #""triggers":[{"event":"shop/sync"}],"singleton":{"mode":"cancel"}"#, Self.sleepy),
            ("d", #""triggers":[{"event":"shop/typed"}],"debounce":{"period":"10s"}"#, Self.sleepy),
        ])
        let timedOut = try await engine.send("shop/go")
        let first = try await engine.send("shop/sync")
        try await engine.settle()
        let second = try await engine.send("shop/sync")
        let debounced = try await engine.send("shop/typed")
        try await engine.settle()
        try await engine.advance(10)
        try await engine.advance(31 * 60)

        let timedOutRun = try await engine.run(of: timedOut).id
        let firstRun = try await engine.run(of: first).id
        #expect(Self.roots(engine) == [timedOutRun: "cancelled", firstRun: "cancelled"])
        // Each run created, whatever created it, traced from its event to its creation.
        let scheduled = Dictionary(grouping: engine.spans.all.filter { $0.name == "cairn.schedule" }) { ULID(rawValue: $0.traceID) }
        let runs = [timedOutRun, firstRun, try await engine.run(of: second).id, try await engine.run(of: debounced).id]
        #expect(Set(scheduled.keys) == Set(runs))
        #expect(scheduled.values.allSatisfy { $0.count == 1 })
        let debounceRun = try #require(runs.last)
        #expect(scheduled[debounceRun]?.first?.start == debounced.date)
        // The debounce created its run when its period ended.
        let created = try #require(scheduled[debounceRun]?.first?.end)
        #expect(created >= debounced.date.addingTimeInterval(10))
        #expect(created < debounced.date.addingTimeInterval(11))
    }

    @Test func idsAreStableAndTraceparentIsW3C() throws {
        let runID = try ULID(parsing: "01ARZ3NDEKTSV4RRFFQ69G5FAV")
        #expect(RunTracing.runSpanID(of: runID) == RunTracing.runSpanID(of: runID))
        #expect(RunTracing.stepSpanID(of: runID, step: "x") != RunTracing.stepSpanID(of: runID, step: "y"))
        #expect(RunTracing.stepSpanID(of: runID, step: "run") != RunTracing.runSpanID(of: runID))
        let header = RunTracing.traceparent(runID: runID, spanID: 0xab)
        #expect(header == "00-\(RunTracing.hex(runID.rawValue, digits: 32))-00000000000000ab-01")
        #expect(header.count == 55)
    }
}
