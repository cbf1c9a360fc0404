import CairnConnect
import CairnEngine
import CairnHTTP
import CairnPostgres
import CairnRedis

/// Wiring of `cairn-executor`: drives runs by calling the app's SDK.
///
/// Services: an event ingestor and relay for the system events runs emit, the connect
/// transport's inbox reader (calls to connect workers, docs/connect.md), and the run executor
/// (consumer group `executor` on `work`).
enum ExecutorRole {
    static func parts(_ dependencies: RoleDependencies) -> RoleParts {
        var settings = ExecutorSettings()
        settings.backoffScale = dependencies.configuration.retryBackoffScale
        settings.leaseDuration = dependencies.configuration.executorLease
        settings.concurrency = dependencies.configuration.executorConcurrency
        settings.metrics = dependencies.runMetrics
        let store = PostgresRunStore(database: dependencies.postgres, logger: dependencies.logger)
        let source = RedisStreamSource(
            client: dependencies.redis, stream: dependencies.streamKey("work"), group: "executor", consumer: settings.owner,
            reclaimIdle: settings.leaseDuration)
        let ingest = dependencies.eventIngest()
        let connect = ConnectTransport(
            state: dependencies.connectState(), clock: dependencies.clock, settings: dependencies.configuration.connect, logger: dependencies.logger,
            exchange: dependencies.connectExchange)
        let executor = RunExecutor(
            store: store, events: ingest.ingestor, eventLog: PostgresEventLog(database: dependencies.postgres, logger: dependencies.logger),
            work: dependencies.workQueue(), sdk: SchemeRoutingTransport(http: HTTPSDKTransport(), connect: connect),
            source: source, timers: RedisTimerIndex(client: dependencies.redis, key: dependencies.streamKey("timers")),
            clock: dependencies.clock, keys: dependencies.configuration.signingKeys, settings: settings, logger: dependencies.logger)
        return RoleParts(services: ingest.services + [connect, executor])
    }
}
