import Foundation
import CairnEngine
import CairnPostgres
import CairnRedis

/// Wiring of `cairn-scheduler`: decides when runs start or resume.
///
/// Services: the event router (consumer group `scheduler` on `events`: trigger matching, run
/// creation with flow control, waits, invokes and cancels), the timer service (due sleeps,
/// retries and pause timeouts; debounces, batches, crons and run timeouts; the work relay), the reconciler (stranded runs, lost streams, pauses that
/// never looked back), the retention collector (expired runs, events and bookkeeping rows), the
/// concurrency gauges, and the ingest path for the events it emits.
enum SchedulerRole {
    static func parts(_ dependencies: RoleDependencies) -> RoleParts {
        let store = PostgresRunStore(database: dependencies.postgres, logger: dependencies.logger)
        let registry = PostgresAppRegistry(database: dependencies.postgres, logger: dependencies.logger)
        let eventLog = PostgresEventLog(database: dependencies.postgres, logger: dependencies.logger)
        let eventStream = RedisEventStream(client: dependencies.redis, key: dependencies.streamKey("events"))
        let work = dependencies.workQueue()
        let events = RedisStreamSource(
            client: dependencies.redis, stream: dependencies.streamKey("events"), group: "scheduler",
            consumer: "scheduler-" + UUID().uuidString.lowercased())
        let ingest = dependencies.eventIngest()
        let index = RedisTimerIndex(client: dependencies.redis, key: dependencies.streamKey("timers"))
        let catalog = FunctionCatalog(registry: registry, clock: dependencies.clock)
        let router = EventRouter(
            source: events, catalog: catalog, store: store, eventLog: eventLog,
            work: work, timers: index, events: ingest.ingestor, clock: dependencies.clock, metrics: dependencies.runMetrics,
            logger: dependencies.logger)
        let flow = FlowScheduler(
            store: store, catalog: catalog, eventLog: eventLog, work: work, events: ingest.ingestor, index: index,
            clock: dependencies.clock, metrics: dependencies.runMetrics, logger: dependencies.logger)
        let timers = TimerService(
            store: store, work: work, eventLog: eventLog, eventStream: eventStream, index: index, flow: flow, clock: dependencies.clock,
            logger: dependencies.logger)
        let reconciler = Reconciler(
            store: store, eventLog: eventLog, eventStream: eventStream, work: work, index: index,
            epoch: RedisTransportEpoch(client: dependencies.redis, key: dependencies.streamKey("epoch")), events: ingest.ingestor,
            clock: dependencies.clock, logger: dependencies.logger, metrics: dependencies.metricsFactory)
        let retention = RetentionCollector(
            store: PostgresRetention(database: dependencies.postgres, logger: dependencies.logger),
            settings: dependencies.configuration.retention, clock: dependencies.clock, logger: dependencies.logger,
            metrics: dependencies.metricsFactory)
        let gauges = QueueGauges(
            report: QueueReport(registry: registry, store: store, clock: dependencies.clock), clock: dependencies.clock,
            logger: dependencies.logger, metrics: dependencies.metricsFactory)
        let streams = StreamGauges(
            redis: dependencies.redis, streams: ["events", "work"].map { ($0, dependencies.streamKey($0)) },
            factory: dependencies.metricsFactory, clock: dependencies.clock, logger: dependencies.logger)
        return RoleParts(services: ingest.services + [router, timers, reconciler, retention, gauges, streams])
    }
}
