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
///
/// Every call is timed and reported to `observe` under the name of the store method that made
/// it (`PostgresRunStore.recordStep`): a name per call site, so a bounded set of labels.
public struct BoundedPostgresClient: Sendable {
    public let client: PostgresClient
    public let deadline: Duration
    let observe: PostgresObserver?

    public init(_ client: PostgresClient, deadline: Duration, observe: PostgresObserver? = nil) {
        self.client = client
        self.deadline = deadline
        self.observe = observe
    }

    /// Reports how long a call took, from `started`, named after its caller.
    func observed(_ started: ContinuousClock.Instant, _ fileID: String, _ function: String) {
        guard let observe else { return }
        observe(Self.operation(fileID: fileID, function: function), ContinuousClock.now - started)
    }

    /// `PostgresRunStore.recordStep` for a call from `recordStep(_:_:now:)` in
    /// `CairnPostgres/PostgresRunStore.swift`.
    static func operation(fileID: String, function: String) -> String {
        let file = fileID.split(separator: "/").last.map { $0.hasSuffix(".swift") ? $0.dropLast(6) : $0 } ?? ""
        let name = function.split(separator: "(").first ?? ""
        return "\(file).\(name)"
    }

    /// Runs `query`; the rows are read by the caller (the time reported ends when they start).
    @discardableResult
    public func query(_ query: PostgresQuery, logger: Logger, fileID: String = #fileID, function: String = #function) async throws
        -> PostgresRowSequence
    {
        let started = ContinuousClock.now
        defer { observed(started, fileID, function) }
        return try await withDeadline(deadline, "a Postgres query") { try await client.query(query, logger: logger) }
    }

    /// Runs a prepared statement and reads every row it returns.
    public func execute<Statement: PostgresPreparedStatement>(
        _ statement: Statement, logger: Logger, fileID: String = #fileID, function: String = #function
    ) async throws -> [Statement.Row]
    where Statement.Row: Sendable {
        let started = ContinuousClock.now
        defer { observed(started, fileID, function) }
        return try await withDeadline(deadline, "a Postgres statement") {
            var rows: [Statement.Row] = []
            for try await row in try await client.execute(statement, logger: logger) { rows.append(row) }
            return rows
        }
    }

    /// Runs `body` in a transaction (committed when it returns, rolled back when it throws).
    public func withTransaction<Result: Sendable>(
        logger: Logger, fileID: String = #fileID, function: String = #function, _ body: @escaping @Sendable (PostgresConnection) async throws -> Result
    ) async throws -> Result {
        let started = ContinuousClock.now
        defer { observed(started, fileID, function) }
        return try await withDeadline(deadline, "a Postgres transaction") {
            try await client.withTransaction(logger: logger) { connection in try await body(connection) }
        }
    }
}

/// Told the operation name and duration of every call a `BoundedPostgresClient` makes.
public typealias PostgresObserver = @Sendable (_ operation: String, _ duration: Duration) -> Void
