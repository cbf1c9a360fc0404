import CairnEngine
import CairnHTTP
import CairnPostgres
import CairnRedis

/// Wiring of `cairn-executor`: drives runs by calling the app's SDK.
///
/// Services: an event ingestor and relay for the system events runs emit, and the run
/// executor (consumer group `executor` on `work`).
enum ExecutorRole {
    static func parts(_ dependencies: RoleDependencies) -> RoleParts {
        var settings = ExecutorSettings()
        settings.backoffScale = dependencies.configuration.retryBackoffScale
        let store = PostgresRunStore(client: dependencies.postgres.client, logger: dependencies.logger)
        let source = RedisStreamSource(
            client: dependencies.redis, stream: dependencies.streamKey("work"), group: "executor", consumer: settings.owner,
            reclaimIdle: settings.leaseDuration)
        // System events take the ingest path: stored, deduplicated, published, relayed.
        let log = PostgresEventLog(client: dependencies.postgres.client, logger: dependencies.logger)
        let stream = RedisEventStream(
            client: dependencies.redis, key: dependencies.streamKey("events"),
            maximumLength: dependencies.configuration.eventsStreamMaxLength)
        let ingestor = EventIngestor(
            log: log, stream: stream, clock: dependencies.clock, metrics: IngestMetrics(factory: dependencies.metricsFactory),
            logger: dependencies.logger)
        let relay = EventRelay(log: log, stream: stream, clock: dependencies.clock, logger: dependencies.logger)
        let executor = RunExecutor(
            store: store, events: ingestor, sdk: HTTPSDKTransport(), source: source, clock: dependencies.clock,
            keys: dependencies.configuration.signingKeys, settings: settings, logger: dependencies.logger)
        return RoleParts(services: [ingestor, relay, executor])
    }
}
