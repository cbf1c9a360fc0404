public import CairnCore
public import CairnEngine
import Foundation
import Testing

/// What every `AppRegistry` must do, run against the in-memory registry (CairnEngineTests) and
/// the Postgres one (CairnPostgresTests).
public enum AppRegistryContract {
    /// A register body for app `app` with functions `slugs` (each `<app>-<slug>`), whose
    /// configs carry `retries` so a test can change them.
    public static func registration(app: String = "shop", functions slugs: [String], retries: Int = 2, url: String = "http://127.0.0.1:9/api/inngest") throws -> AppRegistration {
        let functions = slugs.map { slug -> String in
            """
            {"id":"\(app)-\(slug)","name":"\(slug)","triggers":[{"event":"shop/\(slug)"}],"x-unknown":{"kept":true},
             "steps":{"step":{"id":"step","name":"step","retries":{"attempts":\(retries)},
             "runtime":{"type":"http","url":"\(url)?fnId=\(app)-\(slug)&stepId=step"}}}}
            """
        }
        let body = #"{"appname":"\#(app)","url":"\#(url)","sdk":"py:v0.5.19","framework":"flask","deploy_type":"ping","v":"0.1","functions":[\#(functions.joined(separator: ","))]}"#
        return try AppRegistration(parsing: try JSONValue(parsing: body))
    }

    /// A first sync adds, a second identical one changes nothing, a changed one bumps the
    /// version of changed functions (same id), adds new ones and archives missing ones.
    public static func syncAddsChangesAndArchives(_ registry: any AppRegistry) async throws {
        let t0 = Date(timeIntervalSince1970: 1_800_000_000)
        let first = try await registry.sync(try registration(functions: ["a", "b"]), at: t0)
        #expect(first.modified)
        #expect(first.added.sorted() == ["shop-a", "shop-b"])
        let before = try #require(try await registry.functions(appName: "shop"))
        #expect(before.map(\.slug) == ["shop-a", "shop-b"])
        #expect(before.allSatisfy { $0.version == 1 && $0.appName == "shop" && $0.appID == first.appID })
        #expect(before[0].config.json["x-unknown"] == .object(["kept": true]))

        let again = try await registry.sync(try registration(functions: ["a", "b"]), at: t0.addingTimeInterval(1))
        #expect(!again.modified)
        #expect(again.appID == first.appID)

        var changed = try registration(functions: ["a", "c"], retries: 3)
        changed.functions[0] = try registration(functions: ["a"], retries: 5).functions[0]
        let second = try await registry.sync(changed, at: t0.addingTimeInterval(2))
        #expect(second.modified)
        #expect(second.appID == first.appID)
        #expect(second.added == ["shop-c"])
        #expect(second.changed == ["shop-a"])
        #expect(second.archived == ["shop-b"])
        let after = try #require(try await registry.functions(appName: "shop"))
        #expect(after.map(\.slug) == ["shop-a", "shop-c"])
        let a = try #require(after.first { $0.slug == "shop-a" })
        #expect(a.id == before[0].id)
        #expect(a.version == 2)
        #expect(a.config.retries == 5)
        #expect(try await registry.liveFunctions().map(\.slug) == ["shop-a", "shop-c"])
        // The cheap version check: changed and new functions, not the archived one.
        let c = try #require(after.first { $0.slug == "shop-c" })
        #expect(try await registry.liveFunctionVersions() == [a.id: FunctionRevision(version: 2, paused: false), c.id: FunctionRevision(version: 1, paused: false)])

        let apps = try await registry.apps()
        #expect(apps.map(\.name) == ["shop"])
        #expect(apps.first?.functionCount == 2)
        #expect(apps.first?.sdkLanguage == "py")
        #expect(apps.first?.sdkVersion == "0.5.19")
        #expect(try await registry.functions(appName: "nope") == nil)
    }

    /// A slug live in one app cannot be taken by another; the refused sync writes nothing.
    public static func slugsBelongToOneApp(_ registry: any AppRegistry) async throws {
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        _ = try await registry.sync(try registration(app: "one", functions: ["x"]), at: now)
        var other = try registration(app: "two", functions: ["y"])
        other.functions.append(try registration(app: "one", functions: ["x"]).functions[0])
        await #expect(throws: AppSyncConflict.self) { try await registry.sync(other, at: now) }
        #expect(try await registry.apps().map(\.name) == ["one"])
        #expect(try await registry.liveFunctions().map(\.slug) == ["one-x"])
    }
}
