public import CairnPostgres
import Logging

/// Runs `body` against a migrated database in a schema of its own, dropped afterwards.
///
/// Each call gets a fresh schema on the test run's Postgres, so tests run in parallel without
/// seeing each other's rows.
public func withTestDatabase<Result: Sendable>(
    migrate: Bool = true,
    _ body: @Sendable (CairnPostgresDatabase) async throws -> Result
) async throws -> Result {
    let schema = TestEnvironment.uniqueName("t_")
    var settings = try PostgresSettings(url: try TestEnvironment.postgresURL())
    settings.schema = schema
    settings.maximumConnections = 8
    return try await withRunningDatabase(settings) { database in
        do {
            if migrate { _ = try await database.migrate() }
            let result = try await body(database)
            try await database.client.query("DROP SCHEMA IF EXISTS \(unescaped: schema) CASCADE")
            return result
        } catch {
            _ = try? await database.client.query("DROP SCHEMA IF EXISTS \(unescaped: schema) CASCADE")
            throw error
        }
    }
}

/// Runs `body` with a pool for `settings`, running; stops it afterwards.
public func withRunningDatabase<Result: Sendable>(
    _ settings: PostgresSettings, _ body: @Sendable (CairnPostgresDatabase) async throws -> Result
) async throws -> Result {
    var logger = Logger(label: "cairn.test.postgres")
    logger.logLevel = .warning
    let database = CairnPostgresDatabase(settings: settings, logger: logger)
    return try await withThrowingTaskGroup(of: Result?.self) { group in
        group.addTask {
            try await database.run()
            return nil
        }
        defer { group.cancelAll() }
        return try await body(database)
    }
}
