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
        let log = PostgresEventLog(client: dependencies.postgres.client, logger: dependencies.logger)
        let stream = RedisEventStream(
            client: dependencies.redis, key: dependencies.streamKey("events"),
            maximumLength: configuration.eventsStreamMaxLength)
        var settings = IngestSettings()
        settings.dedupeWindow = configuration.eventDedupeWindow
        let metrics = IngestMetrics(factory: dependencies.metricsFactory)
        let ingestor = EventIngestor(
            log: log, stream: stream, clock: dependencies.clock, settings: settings, metrics: metrics,
            logger: dependencies.logger)
        let relay = EventRelay(log: log, stream: stream, clock: dependencies.clock, logger: dependencies.logger)
        let routes = EventRoutes(
            ingestor: ingestor,
            keys: EventKeyPolicy(keys: configuration.eventKeys, isDevMode: configuration.isDevMode),
            maximumBodyBytes: configuration.eventMaxBodyBytes, metrics: metrics)
        return RoleParts(services: [ingestor, relay], routes: [routes.register(on:)])
    }
}
