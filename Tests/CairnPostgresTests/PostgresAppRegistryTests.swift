import CairnCore
import CairnPostgres
import CairnTesting
import Foundation
import Logging
import Testing

/// The registry contract on the real Postgres, plus what only a database can show.
@Suite struct PostgresAppRegistryTests {
    static let logger = Logger(label: "cairn.test.apps")

    @Test func syncAddsChangesAndArchives() async throws {
        try await withTestDatabase { db in
            try await AppRegistryContract.syncAddsChangesAndArchives(PostgresAppRegistry(database: db, logger: Self.logger))
        }
    }

    @Test func slugsBelongToOneApp() async throws {
        try await withTestDatabase { db in
            try await AppRegistryContract.slugsBelongToOneApp(PostgresAppRegistry(database: db, logger: Self.logger))
        }
    }

    @Test func configIsStoredExactlyAsSentAndConcurrentSyncsSerialise() async throws {
        try await withTestDatabase { db in
            let registry = PostgresAppRegistry(database: db, logger: Self.logger)
            let now = Date(timeIntervalSince1970: 1_800_000_000)
            // Ten syncs of different versions at once: each applies whole, one after another.
            try await withThrowingTaskGroup(of: Void.self) { group in
                for retries in 0..<10 {
                    group.addTask {
                        _ = try await registry.sync(
                            try AppRegistryContract.registration(functions: ["a", "b"], retries: retries), at: now)
                    }
                }
                try await group.waitForAll()
            }
            let functions = try #require(try await registry.functions(appName: "shop"))
            #expect(functions.map(\.slug) == ["shop-a", "shop-b"])
            #expect(functions.allSatisfy { $0.version >= 1 && $0.version <= 10 })
            #expect(Set(functions.map(\.config.retries)).count == 1)
            let rows = try await db.client.query("SELECT count(*)::int8 FROM functions")
            for try await count in rows.decode(Int64.self) { #expect(count == 2) }

            let text = try await db.client.query("SELECT config::text FROM functions WHERE slug = 'shop-a'")
            for try await config in text.decode(String.self) {
                #expect(config.contains(#""x-unknown":{"kept":true}"#))
            }
        }
    }
}
