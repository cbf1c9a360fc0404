import CairnCore
import CairnEngine
import CairnTesting
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
}
