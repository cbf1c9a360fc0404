public import CairnEngine
public import Logging
public import PostgresNIO

/// The Postgres pool as Cairn's stores use it: every call bounded by a deadline.
///
/// PostgresNIO can lose a request written to a connection that closes at that very moment
/// (a Postgres crash or restart): its reply never comes, and the caller would wait forever.
/// A drive waiting so keeps renewing its lease and holds its run hostage; a router waiting so
/// stops routing. With a deadline the call fails instead, and the caller goes on as after any
/// database error (the work is retried; every write is fenced or idempotent). Postgres also
/// cancels any one statement that runs longer than `PostgresSettings.statementTimeout`.
public struct BoundedPostgresClient: Sendable {
    public let client: PostgresClient
    public let deadline: Duration

    public init(_ client: PostgresClient, deadline: Duration) {
        self.client = client
        self.deadline = deadline
    }

    /// Runs `query`; the rows are read by the caller.
    @discardableResult
    public func query(_ query: PostgresQuery, logger: Logger) async throws -> PostgresRowSequence {
        try await withDeadline(deadline, "a Postgres query") { try await client.query(query, logger: logger) }
    }

    /// Runs a prepared statement and reads every row it returns.
    public func execute<Statement: PostgresPreparedStatement>(_ statement: Statement, logger: Logger) async throws -> [Statement.Row]
    where Statement.Row: Sendable {
        try await withDeadline(deadline, "a Postgres statement") {
            var rows: [Statement.Row] = []
            for try await row in try await client.execute(statement, logger: logger) { rows.append(row) }
            return rows
        }
    }

    /// Runs `body` in a transaction (committed when it returns, rolled back when it throws).
    public func withTransaction<Result: Sendable>(
        logger: Logger, _ body: @escaping @Sendable (PostgresConnection) async throws -> Result
    ) async throws -> Result {
        try await withDeadline(deadline, "a Postgres transaction") {
            try await client.withTransaction(logger: logger) { connection in try await body(connection) }
        }
    }
}
