import CairnCore
import CairnEngine
import CairnTesting
import Synchronization
import Testing

/// Nothing the engine holds grows with the number of runs or steps.
@Suite struct BoundsTests {
    /// Open pauses are read in pages (here of 2): five runs waiting for the same event name,
    /// resumed by one batch of five events, each by the event meant for it.
    @Test func openPausesAreMatchedPageByPage() async throws {
        let engine = EngineHarness(pausePageSize: 2)
        try await engine.sync([("wait", "shop/order", 0, [], FakeSDKApp.Function(
            [.wait("approval", event: "shop/approved", condition: "async.data.key == event.data.key", timeout: "1h")],
            output: { $0["approval"]?["data"]?["by"] ?? "timed out" }))])
        var orders: [ULID] = []
        for n in 0..<5 { orders.append(try await engine.send("shop/order", ["key": .string("k\(n)")])) }
        try await engine.settle()
        for n in 0..<5 { try await engine.sink.emit([Event(name: "shop/approved", data: ["key": .string("k\(n)"), "by": .string("approver-\(n)")])]) }
        #expect(try await engine.route() == 5)
        try await engine.settle()
        for (n, order) in orders.enumerated() {
            let run = try await engine.run(of: order)
            #expect(run.status == "Completed")
            #expect(run.output == .string("approver-\(n)"))
        }
    }

    /// Holds every call that targets a step until the test lets one go, and records how many
    /// were held at once; other calls pass straight to the app.
    final class Gate: SDKTransport {
        private struct State {
            var app: FakeSDKApp?
            var held: [CheckedContinuation<Void, Never>] = []
            var inFlight = 0
            var mostInFlight = 0
            var arrived = 0
        }

        private let state = Mutex(State())

        func forward(to app: FakeSDKApp) { state.withLock { $0.app = app } }
        var held: Int { state.withLock { $0.held.count } }
        var arrived: Int { state.withLock { $0.arrived } }
        var mostInFlight: Int { state.withLock { $0.mostInFlight } }

        func releaseOne() {
            state.withLock { $0.held.isEmpty ? nil : $0.held.removeFirst() }?.resume()
        }

        func send(_ request: SDKRequest) async throws -> SDKReply {
            let app = try #require(state.withLock { $0.app })
            guard !request.url.contains("stepId=step&") && !request.url.hasSuffix("stepId=step") else { return try await app.send(request) }
            await withCheckedContinuation { continuation in
                state.withLock { state in
                    state.arrived += 1
                    state.inFlight += 1
                    state.mostInFlight = max(state.mostInFlight, state.inFlight)
                    state.held.append(continuation)
                }
            }
            defer { state.withLock { $0.inFlight -= 1 } }
            return try await app.send(request)
        }
    }

    /// A parallel group of six steps on an executor whose concurrency is 2: at most three of
    /// its calls are ever in flight, the drive's own slot and the two free ones (this harness
    /// drives without taking a slot for the drive; the run loop takes one, so there the
    /// group's calls stay within the concurrency itself). Calls are let go one at a time, each
    /// once as many as may be in flight have arrived.
    @Test func aParallelGroupStaysWithinTheExecutorsConcurrency() async throws {
        let gate = Gate()
        let engine = EngineHarness(sdk: gate, concurrency: 2)
        gate.forward(to: engine.app)
        let names = (1...6).map { "p\($0)" }
        try await engine.sync([("fan", "shop/fan", 0, [], FakeSDKApp.Function([.parallel(names)]))])
        let event = try await engine.send("shop/fan")
        let settled = Task { try await engine.settle() }
        for released in 0..<names.count {
            let expected = min(3, names.count - released)
            while gate.held < expected && gate.arrived < names.count { await Task.yield() }
            gate.releaseOne()
        }
        try await settled.value
        #expect(gate.mostInFlight == 3)
        #expect(try await engine.run(of: event).status == "Completed")
    }
}
