import CairnEngine
import CairnHTTP
import CairnPostgres
import CairnRedis

/// Wiring of `cairn-event-api`: ingests events at `POST /e/{eventKey}`.
///
/// Services: the group-commit ingestor and the relay that publishes committed events whose
/// stream entry was lost. Routes: `POST /e/{eventKey}`.
enum EventAPIRole {
    static func parts(_ dependencies: RoleDependencies) -> RoleParts {
        let configuration = dependencies.configuration
        let ingest = dependencies.eventIngest()
        let routes = EventRoutes(
            ingestor: ingest.ingestor,
            keys: EventKeyPolicy(keys: configuration.eventKeys, isDevMode: configuration.isDevMode),
            maximumBodyBytes: configuration.eventMaxBodyBytes, maximumEventBytes: configuration.eventMaxBytes,
            metrics: ingest.ingestor.metrics)
        return RoleParts(services: ingest.services, routes: [routes.register(on:)])
    }
}
