public import CairnEngine
public import Logging
public import PostgresNIO
public import ServiceLifecycle
import Synchronization

/// Cairn's connection to Postgres: a PostgresNIO connection pool plus the settings it came from.
///
/// Lifecycle: `run()` must be running (it is a `Service`; put it first in the role's
/// `ServiceGroup`) for queries to be served; graceful shutdown closes the pool. Services that
/// query at once when they start wait for `waitUntilRunning()` first, so that no query reaches
/// the pool before it runs.
public final class CairnPostgresDatabase: Service, Sendable {
    /// The settings the pool was made from.
    public let settings: PostgresSettings
    /// The PostgresNIO pool; queries go through it.
    public let client: PostgresClient
    let logger: Logger
    /// Told how long each store call took (`BoundedPostgresClient`).
    let observe: PostgresObserver?
    private let started = Mutex<(done: Bool, waiters: [UInt64: CheckedContinuation<Void, Never>], next: UInt64)>((false, [:], 0))

    /// Creates the pool; no connection is opened until `run()` starts and a query asks for one.
    public init(settings: PostgresSettings, logger: Logger, observe: PostgresObserver? = nil) {
        self.observe = observe
        self.settings = settings
        self.client = PostgresClient(configuration: settings.clientConfiguration, backgroundLogger: logger)
        self.logger = logger
    }

    /// Runs the pool until graceful shutdown (which the pool observes itself) or cancellation.
    public func run() async throws {
        let waiters = started.withLock { state in
            state.done = true
            defer { state.waiters = [:] }
            return Array(state.waiters.values)
        }
        for waiter in waiters { waiter.resume() }
        // The pool marks itself running first thing, before this task can be suspended.
        await client.run()
    }

    /// Returns once `run()` has started the pool, or when the caller is cancelled.
    public func waitUntilRunning() async {
        let id = started.withLock { state -> UInt64 in
            state.next += 1
            return state.next
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let resumeNow = started.withLock { state -> Bool in
                    if state.done || Task.isCancelled { return true }
                    state.waiters[id] = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            started.withLock { $0.waiters.removeValue(forKey: id) }?.resume()
        }
    }

    /// Applies the bundled migrations (or `migrations`) into this database's schema.
    ///
    /// Uses a connection of its own rather than the pool, so it works whether or not `run()`
    /// has started, and the advisory lock lives exactly as long as that connection.
    public func migrate(migrations: [Migration]? = nil) async throws -> Migrator.Report {
        let migrator = Migrator(migrations: try migrations ?? Migration.bundled(), schema: settings.schema, logger: logger)
        let connection = try await PostgresConnection.connect(
            configuration: try settings.connectionConfiguration(),
            id: 0,
            logger: logger
        )
        do {
            let report = try await migrator.migrate(on: connection)
            try await connection.close()
            return report
        } catch {
            try? await connection.close()
            throw error
        }
    }

    /// The pool with every call bounded by `settings.callDeadline`, as the stores use it.
    public var bounded: BoundedPostgresClient { BoundedPostgresClient(client, deadline: settings.callDeadline, observe: observe) }

    /// A readiness probe that runs `SELECT 1`.
    public var readinessProbe: any ReadinessProbe { PostgresReadinessProbe(client: client) }
}

/// Ready when Postgres answers `SELECT 1`.
struct PostgresReadinessProbe: ReadinessProbe {
    let client: PostgresClient
    var name: String { "postgres" }

    func check() async throws {
        // Bounded: a probe that never answers would hide the fault it is there to report.
        try await withDeadline(.seconds(5), "the Postgres readiness check") { [client] in
            let rows = try await client.query("SELECT 1")
            for try await _ in rows {}
        }
    }
}

extension PostgresRowSequence {
    /// Whether the query returned a row: the answer of a conditional write (`… RETURNING 1`)
    /// or an existence check. Reads every row, so the connection is free for the next query.
    func hasRows() async throws -> Bool {
        var found = false
        for try await _ in self { found = true }
        return found
    }
}
