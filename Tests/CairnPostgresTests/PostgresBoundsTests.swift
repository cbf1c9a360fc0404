import CairnEngine
import CairnPostgres
import CairnTesting
import Logging
import PostgresNIO
import Testing

/// No call to Postgres waits forever: the server cancels a statement past its timeout, and a
/// call whose reply never comes fails at its deadline.
@Suite struct PostgresBoundsTests {
    static let logger = Logger(label: "cairn.test.bounds")

    /// Runs `body` with a pool for `settings`, running.
    static func withDatabase<T: Sendable>(_ settings: PostgresSettings, _ body: @Sendable (CairnPostgresDatabase) async throws -> T) async throws -> T {
        let database = CairnPostgresDatabase(settings: settings, logger: logger)
        return try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask {
                try await database.run()
                return nil
            }
            defer { group.cancelAll() }
            return try await body(database)
        }
    }

    @Test func theServerCancelsAStatementPastTheTimeout() async throws {
        var settings = try PostgresSettings(url: try TestEnvironment.postgresURL())
        settings.statementTimeout = .seconds(1)
        try await Self.withDatabase(settings) { database in
            let rows = try await database.bounded.query("SHOW statement_timeout", logger: Self.logger)
            var shown: [String] = []
            for try await value in rows.decode(String.self) { shown.append(value) }
            #expect(shown == ["1s"])
            await #expect {
                for try await _ in try await database.bounded.query("SELECT pg_sleep(3)", logger: Self.logger) {}
            } throws: { error in
                (error as? PSQLError)?.serverInfo?[.sqlState] == "57014"
            }
        }
    }

    /// A server that accepts the connection and never answers: the pool waits for a connection
    /// that never becomes ready, and the call fails at its deadline instead of hanging.
    @Test func aCallWhoseReplyNeverComesFailsAtItsDeadline() async throws {
        try await SilentServer.with { server in
            let settings = try PostgresSettings(url: "postgres://cairn@127.0.0.1:\(server.port)/cairn")
            try await Self.withDatabase(settings) { database in
                let client = BoundedPostgresClient(database.client, deadline: .milliseconds(300))
                await #expect(throws: DeadlineExceeded.self) {
                    try await client.query("SELECT 1", logger: Self.logger)
                }
                await #expect(throws: DeadlineExceeded.self) {
                    try await client.withTransaction(logger: Self.logger) { connection in
                        try await connection.query("SELECT 1", logger: Self.logger)
                    }
                }
            }
        }
    }
}
