import CairnCore
import CairnEngine
import CairnTesting
import Testing

/// Credentials inside an app's URL are used to call the app and shown nowhere.
@Suite struct RedactionTests {
    struct Refused: Error, CustomStringConvertible {
        var url: String
        var description: String { "connection to \(url) refused" }
    }

    @Test func credentialsInAnAppURLStayOutOfRunErrorsAndSystemEvents() async throws {
        // The transport's error quotes the URL it was given, as HTTP clients' errors can.
        let transport = ScriptedSDKTransport { request in throw Refused(url: request.url) }
        let engine = EngineHarness(sdk: transport)
        try await engine.sync(
            [("fails", "shop/fails", 0, [], FakeSDKApp.Function([.run("s1", output: 1)]))],
            appURL: "http://deploy:pw-secret@app.test/api/inngest?token=tok-secret")
        let event = try await engine.send("shop/fails")
        try await engine.settle()

        let run = try await engine.run(of: event)
        #expect(run.status == "Failed")
        // The app was called with the URL as given.
        #expect(transport.requests.first?.url.contains("deploy:pw-secret@") == true)
        #expect(transport.requests.first?.url.contains("token=tok-secret") == true)
        let shown = [run.error?.jsonString ?? ""]
            + (engine.systemEvents("inngest/function.failed", of: run.id) + engine.systemEvents("inngest/function.finished", of: run.id))
            .map(\.payload.jsonString)
        #expect(shown.count == 3)
        for text in shown {
            #expect(!text.contains("pw-secret") && !text.contains("tok-secret"), "\(text)")
            #expect(text.contains("http://REDACTED@app.test/api/inngest?token=REDACTED"), "\(text)")
        }
    }
}
