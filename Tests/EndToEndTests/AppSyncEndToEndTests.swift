import CairnCore
import CairnHTTP
import CairnTesting
import Foundation
import Testing

/// A real app on the official Inngest Python SDK, synced with a PUT as a user would, in dev
/// mode and in signed (cloud) mode.
@Suite struct AppSyncEndToEndTests {
    static let signingKey = "signkey-test-" + String(repeating: "8f3ac0de", count: 8)

    @Test func aPythonAppSyncsAndReSyncsInDevMode() async throws {
        try await withRunningCairn(roles: [.eventAPI, .api]) { cairn in
            let api = CairnAPIClient(origin: cairn.origin, key: nil)
            let port = try await withPythonApp(pointingAt: cairn) { app in
                let reply = try await api.requestSync(url: app.serveURL)
                #expect(reply.status == 200, "\(reply.body)")
                #expect(reply.body["app_reply"]?["modified"] == true)
                return app.port
            }
            let apps = try await api.get("/v1/apps")
            #expect(apps.body["data"]?[0]?["name"] == "cairn-e2e")
            #expect(apps.body["data"]?[0]?["sdk_language"] == "py")
            #expect(apps.body["data"]?[0]?["sdk_version"] == "0.5.19")
            #expect(apps.body["data"]?[0]?["framework"] == "flask")

            let functions = try await Self.functions(api)
            #expect(Set(functions.keys).isSuperset(of: ["cairn-e2e-batched", "cairn-e2e-full-config", "cairn-e2e-full-config-failure", "cairn-e2e-hello", "cairn-e2e-three-steps"]))
            #expect(functions["cairn-e2e-added-later"] == nil)
            let full = try #require(functions["cairn-e2e-full-config"])
            #expect(full["name"] == "Full config")
            #expect(full["triggers"]?[0] == ["event": "app/user.created", "expression": "event.data.plan == 'pro'"])
            #expect(full["triggers"]?[1]?["cron"] == "TZ=Europe/Paris 0 9 * * 1-5")
            #expect(full["triggers"]?[1]?["timezone"] == "Europe/Paris")
            #expect(full["retries"] == 7)
            #expect(full["concurrency"] == [["limit": 5, "key": "event.data.user_id", "scope": "fn", "run_level": false]])
            #expect(full["throttle"]?["period"]?["ms"] == 60_000)
            #expect(full["throttle"]?["burst"] == 2)
            #expect(full["debounce"]?["timeout"]?["ms"] == 300_000)
            #expect(full["cancel"]?[0]?["event"] == "app/user.deleted")
            #expect(full["cancel"]?[0]?["if"] == "event.data.user_id == async.data.user_id")
            #expect(full["idempotency"] == "event.data.user_id")
            #expect(full["priority"]?["run"] == "event.data.plan == 'pro' ? 120 : 0")
            #expect(full["timeouts"]?["start"]?["ms"] == 10_000)
            #expect(full["singleton"] == ["key": "event.data.user_id", "mode": "skip"])
            #expect(full["steps"]?[0]?["url"]?.stringValue?.contains("fnId=cairn-e2e-full-config&stepId=step") == true)
            let failure = try #require(functions["cairn-e2e-full-config-failure"])
            #expect(failure["triggers"]?[0] == ["event": "inngest/function.failed", "expression": "event.data.function_id == 'cairn-e2e-full-config'"])
            #expect(failure["retries"] == 0)
            let batched = try #require(functions["cairn-e2e-batched"])
            #expect(batched["batch_events"]?["max_size"] == 10)
            #expect(batched["rate_limit"]?["period"]?["ms"] == 3_600_000)
            #expect(functions["cairn-e2e-hello"]?["retries"] == 2)

            // The next deploy: hello changed, batched removed, added-later new.
            try await withPythonApp(pointingAt: cairn, port: port, environment: ["APP_VARIANT": "v2"]) { app in
                let reply = try await api.requestSync(url: app.serveURL)
                #expect(reply.status == 200, "\(reply.body)")
            }
            let after = try await Self.functions(api)
            #expect(after.count == functions.count)
            #expect(after["cairn-e2e-batched"] == nil)
            #expect(after["cairn-e2e-three-steps"]?["version"] == 1)
            #expect(after["cairn-e2e-hello"]?["version"] == 2)
            #expect(after["cairn-e2e-hello"]?["retries"] == 3)
            #expect(after["cairn-e2e-hello"]?["id"] == functions["cairn-e2e-hello"]?["id"])
            #expect(after["cairn-e2e-added-later"]?["triggers"]?[0]?["event"] == "app/*")
            #expect(after["cairn-e2e-added-later"]?["version"] == 1)
        }
    }

    @Test func signedModeSyncsAnAppWithTheKeyAndRefusesOneWithout() async throws {
        try await withRunningCairn(roles: [.eventAPI, .api], environment: ["INNGEST_SIGNING_KEY": Self.signingKey]) { cairn in
            let api = CairnAPIClient(origin: cairn.origin, key: try SigningKey(Self.signingKey))
            let anonymous = CairnAPIClient(origin: cairn.origin, key: nil)
            try await withPythonApp(pointingAt: cairn, environment: ["INNGEST_SIGNING_KEY": Self.signingKey]) { app in
                #expect(try await anonymous.requestSync(url: app.serveURL).status == 401)
                let reply = try await api.requestSync(url: app.serveURL)
                #expect(reply.status == 200, "\(reply.body)")
            }
            #expect(try await anonymous.get("/v1/apps").status == 401)
            #expect(try await Self.functions(api)["cairn-e2e-full-config"] != nil)

            // An app holding another key cannot register: Cairn answers its call with 401, and
            // the sync reports the app's failure.
            let otherKey = "signkey-test-" + String(repeating: "00ff", count: 16)
            try await withPythonApp(pointingAt: cairn, environment: ["INNGEST_SIGNING_KEY": otherKey, "APP_VARIANT": "v2"]) { app in
                let reply = try await api.requestSync(url: app.serveURL)
                #expect(reply.status == 502, "\(reply.body)")
            }
            #expect(try await Self.functions(api)["cairn-e2e-batched"] != nil)
        }
    }

    /// The app's live functions by slug.
    static func functions(_ api: CairnAPIClient) async throws -> [String: JSONValue] {
        let reply = try await api.get("/v1/apps/cairn-e2e/functions")
        #expect(reply.status == 200, "\(reply.body)")
        var bySlug: [String: JSONValue] = [:]
        for function in reply.body["data"]?.arrayValue ?? [] {
            if let slug = function["slug"]?.stringValue { bySlug[slug] = function }
        }
        return bySlug
    }
}
