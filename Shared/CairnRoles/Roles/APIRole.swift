import CairnHTTP
import CairnPostgres

/// Wiring of `cairn-api`: the control plane — app sync, queries and the SDK's callbacks.
///
/// Routes: `GET /v1/events/{id}`, `GET /v1/events`.
enum APIRole {
    static func parts(_ dependencies: RoleDependencies) -> RoleParts {
        let log = PostgresEventLog(client: dependencies.postgres.client, logger: dependencies.logger)
        let events = EventQueryRoutes(log: log, clock: dependencies.clock)
        return RoleParts(services: [], routes: [events.register(on:)])
    }
}
