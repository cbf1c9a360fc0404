public import CairnEngine
public import Logging
public import PostgresNIO
public import ServiceLifecycle

/// Cairn's connection to Postgres: a PostgresNIO connection pool plus the settings it came from.
///
/// Lifecycle: `run()` must be running (it is a `Service`; put it first in the role's
/// `ServiceGroup`) for queries to be served; graceful shutdown closes the pool.
public final class CairnPostgresDatabase: Service, Sendable {
    /// The settings the pool was made from.
    public let settings: PostgresSettings
    /// The PostgresNIO pool; queries go through it.
    public let client: PostgresClient
    let logger: Logger

    /// Creates the pool; no connection is opened until `run()` starts and a query asks for one.
    public init(settings: PostgresSettings, logger: Logger) {
        self.settings = settings
        self.client = PostgresClient(configuration: settings.clientConfiguration, backgroundLogger: logger)
        self.logger = logger
    }

    /// Runs the pool until graceful shutdown or cancellation.
    public func run() async throws {
        await cancelWhenGracefulShutdown {
            await self.client.run()
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

    /// A readiness probe that runs `SELECT 1`.
    public var readinessProbe: any ReadinessProbe { PostgresReadinessProbe(client: client) }
}

/// Ready when Postgres answers `SELECT 1`.
struct PostgresReadinessProbe: ReadinessProbe {
    let client: PostgresClient
    var name: String { "postgres" }

    func check() async throws {
        let rows = try await client.query("SELECT 1")
        for try await _ in rows {}
    }
}
