import CairnCore
import CairnEngine
import CairnTesting
import Foundation
import Testing

/// Parallel groups hold every kind of step, wait for all of their members (or, in race mode,
/// go on after each), and steps the server performs (`step.ai.infer`, `step.fetch`) call the
/// provider with what the SDK asked for.
@Suite(.timeLimit(.minutes(2))) struct GroupTests {
    typealias Step = FakeSDKApp.Step

    /// A group of a `step.run`, a sleep, a wait, an invoke and an AI inference, then one more
    /// step: the function goes on once, when the last member is recorded.
    @Test func aGroupWithEveryKindOfMemberGoesOnOnceAllAreRecorded() async throws {
        let engine = EngineHarness(provider: FakeProvider { _ in SDKReply(status: 200, headers: [:], body: Array(#"{"text":"hi"}"#.utf8)) })
        try await engine.sync([
            ("group", "shop/group", 0, [], FakeSDKApp.Function(
                [.group([
                    [.run("a", output: 1)], [.sleep("nap", duration: "10s")], [.wait("approval", event: "shop/approved", timeout: "1h")],
                    [.invoke("call", function: "shop-child")],
                    [.infer("ai", url: "http://provider.test/v1/messages", format: "anthropic", key: "sk-1", body: ["prompt": "hi"])],
                ]), .run("after", output: "end")],
                output: { ["a": $0["a"] ?? .null, "call": $0["call"] ?? .null, "ai": $0["ai"] ?? .null, "by": $0["approval"]?["data"]?["by"] ?? .null, "after": $0["after"] ?? .null] })),
            ("child", "shop/none", 0, [], FakeSDKApp.Function([.run("c", output: 3)], output: { $0["c"] ?? .null })),
        ])
        let event = try await engine.send("shop/group")
        try await engine.settle()
        let waiting = try await engine.run(of: event)
        #expect(waiting.status == "Running")
        // The run step, the inference and the invoke are recorded; the sleep and the wait are not.
        #expect(Set(waiting.steps.map(\.name)) == ["a", "ai", "inngest/function.finished"])
        #expect(Set(waiting.waitingFor.map(\.kind)) == ["sleep", "wait"])
        #expect(engine.app.executions(waiting.id, "after") == 0)
        _ = try await engine.send("shop/approved", ["by": "ada"])
        try await engine.settle()
        #expect(engine.app.executions(waiting.id, "after") == 0)
        try await engine.advance(11)
        let run = try await engine.run(of: event)
        #expect(run.status == "Completed", "\(run.error ?? .null)")
        #expect(run.output == ["a": 1, "call": 3, "ai": ["text": "hi"], "by": "ada", "after": "end"])
        #expect(engine.app.executions(run.id, "after") == 1)
        // One discovery, one call for the planned step, one discovery after the group, one
        // after "after".
        #expect(engine.app.calls(run.id) == 4)
        let request = try #require(engine.provider.requests.first)
        #expect(request.url == "http://provider.test/v1/messages")
        #expect(request.method == "POST")
        #expect(Dictionary(uniqueKeysWithValues: request.headers.map { ($0.0, $0.1) })["X-Api-Key"] == "sk-1")
        #expect(try JSONValue(parsing: request.body) == ["prompt": "hi"])
    }

    /// Race mode: discovery follows each member that finishes, so the fast member's second
    /// step runs before the slow member's first step ends.
    @Test func aRaceGoesOnAfterEachMemberThatFinishes() async throws {
        let engine = EngineHarness()
        try await engine.sync([("race", "shop/race", 0, [], FakeSDKApp.Function(
            [.group([[.run("a1"), .run("a2")], [.run("b1"), .run("b2")]], race: true)]))])
        engine.app.hold("b1", untilExecuted: "a2")
        let event = try await engine.send("shop/race")
        try await engine.settle()
        let run = try await engine.run(of: event)
        #expect(run.status == "Completed", "\(run.error ?? .null)")
        #expect(engine.app.order(run.id) == ["a1", "a2", "b1", "b2"])
        // One plan, four steps, a discovery after each.
        #expect(engine.app.calls(run.id) == 9)
    }

    /// Without race mode the group waits for all of its members before the function goes on.
    @Test func aGroupWaitsForAllOfItsMembers() async throws {
        let engine = EngineHarness()
        try await engine.sync([("wait", "shop/wait", 0, [], FakeSDKApp.Function([.group([[.run("a1"), .run("a2")], [.run("b1"), .run("b2")]])]))])
        let event = try await engine.send("shop/wait")
        try await engine.settle()
        let run = try await engine.run(of: event)
        #expect(run.status == "Completed")
        #expect(Set(engine.app.order(run.id).prefix(2)) == ["a1", "b1"])
        #expect(engine.app.calls(run.id) == 7)
    }

    /// `step.ai.infer` takes the provider's key the way the provider wants it.
    @Test(arguments: [
        ("anthropic", "http://p.test/v1/messages", "X-Api-Key", "sk-a"),
        ("openai-chat", "http://p.test/v1/chat/completions", "Authorization", "Bearer sk-a"),
        ("bedrock", "http://p.test/model/invoke", "Authorization", "sk-a"),
        ("gemini", "http://p.test/v1beta/models/x:generateContent?key=sk-a", nil, nil),
    ] as [(String, String, String?, String?)])
    func anAIStepCallsTheProviderWithItsKey(_ format: String, _ url: String, _ header: String?, _ value: String?) async throws {
        let engine = EngineHarness()
        let base = String(url.split(separator: "?").first!)
        try await engine.sync([("ai", "shop/ai", 0, [], FakeSDKApp.Function(
            [.infer("ask", url: base, format: format, key: "sk-a", body: ["q": 1], headers: ["X-My-Header": "mine"])],
            output: { $0["ask"] ?? .null }))])
        let event = try await engine.send("shop/ai")
        try await engine.settle()
        let run = try await engine.run(of: event)
        #expect(run.status == "Completed")
        #expect(run.output == ["ok": true])
        #expect(run.steps.map(\.op) == ["AIGateway"])
        let request = try #require(engine.provider.requests.first)
        #expect(request.url == url)
        let headers = Dictionary(uniqueKeysWithValues: request.headers.map { ($0.0, $0.1) })
        // Sent with the names as Inngest's server writes them: some providers' tests compare
        // them as written.
        #expect(headers["Content-Type"] == "application/json")
        #expect(headers["X-My-Header"] == "mine")
        if let header { #expect(headers[header] == value) }
    }

    /// A provider that fails is asked again while attempts remain; then the step's error is
    /// raised in the function.
    @Test(arguments: [1, 5])
    func aFailingAIStepIsRetriedThenRaised(failures: Int) async throws {
        let engine = EngineHarness(provider: FakeProvider(failures: failures) { _ in SDKReply(status: 200, headers: [:], body: Array(#"{"ok":1}"#.utf8)) })
        try await engine.sync([("ai", "shop/ai", 2, [], FakeSDKApp.Function(
            [.infer("ask", url: "http://p.test/v1", format: "openai-chat", key: "k", body: [:])], output: { $0["ask"] ?? .null }))])
        let event = try await engine.send("shop/ai")
        try await engine.settle()
        for _ in 0..<4 { try await engine.advance(60) }
        let run = try await engine.run(of: event)
        if failures == 1 {
            #expect(run.status == "Completed")
            #expect(run.output == ["ok": 1])
            #expect(engine.provider.requests.count == 2)
        } else {
            #expect(run.status == "Failed")
            #expect(run.error?["name"] == "AIGatewayError")
            #expect(run.error?["message"]?.stringValue?.contains("unsuccessful status code: 500") == true)
            #expect(engine.provider.requests.count == 3)
        }
    }

    /// `step.fetch` records the response, whatever its status.
    @Test func aFetchStepRecordsTheResponse() async throws {
        let engine = EngineHarness(provider: FakeProvider { _ in SDKReply(status: 404, headers: ["content-type": "text/plain"], body: Array("nope".utf8)) })
        try await engine.sync([("fetch", "shop/fetch", 0, [], FakeSDKApp.Function(
            [.fetch("get", url: "http://api.test/things/1", method: "get")], output: { $0["get"] ?? .null }))])
        let event = try await engine.send("shop/fetch")
        try await engine.settle()
        let run = try await engine.run(of: event)
        #expect(run.status == "Completed")
        #expect(run.output == ["url": "http://api.test/things/1", "headers": ["content-type": "text/plain"], "body": "nope", "status_code": 404])
        #expect(engine.provider.requests.first?.method == "GET")
    }

    /// An app that reports, again and again, a group whose steps are all recorded would have
    /// the executor call it forever: the run fails instead, naming why.
    @Test func aGroupThatBringsNothingNewFailsTheRun() async throws {
        let sameGroup = ScriptedSDKTransport { _ in
            SDKReply(status: 206, headers: ["x-inngest-sdk": "fake:v1"], body: Array(#"[{"op":"StepRun","id":"a","data":1},{"op":"StepRun","id":"b","data":2}]"#.utf8))
        }
        let engine = EngineHarness(sdk: sameGroup)
        try await engine.sync([("loop", "shop/loop", 0, [], FakeSDKApp.Function([]))])
        let event = try await engine.send("shop/loop")
        try await engine.settle()
        let run = try await engine.run(of: event)
        #expect(run.status == "Failed")
        #expect(run.error?["name"] == "UnexpectedGroup")
        #expect(sameGroup.requests.count == 2)
    }
}
