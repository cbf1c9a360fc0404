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

    @Test func theServerCancelsAStatementPastTheTimeout() async throws {
        var settings = try PostgresSettings(url: try TestEnvironment.postgresURL())
        settings.statementTimeout = .seconds(1)
        try await withRunningDatabase(settings) { database in
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
            try await withRunningDatabase(settings) { database in
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
