import Foundation
import CairnEngine
import CairnPostgres
import CairnRedis

/// Wiring of `cairn-scheduler`: decides when runs start or resume.
///
/// Services: the event router (consumer group `scheduler` on `events`: trigger matching, run
/// creation, waits, invokes and cancels), the timer service (due sleeps, retries and pause
/// timeouts, and the work relay), and the ingest path for the events it emits.
enum SchedulerRole {
    static func parts(_ dependencies: RoleDependencies) -> RoleParts {
        let store = PostgresRunStore(client: dependencies.postgres.client, logger: dependencies.logger)
        let registry = PostgresAppRegistry(client: dependencies.postgres.client, logger: dependencies.logger)
        let work = RedisWorkQueue(client: dependencies.redis, stream: dependencies.streamKey("work"))
        let events = RedisStreamSource(
            client: dependencies.redis, stream: dependencies.streamKey("events"), group: "scheduler",
            consumer: "scheduler-" + UUID().uuidString.lowercased())
        let ingest = dependencies.eventIngest()
        let index = RedisTimerIndex(client: dependencies.redis, key: dependencies.streamKey("timers"))
        let router = EventRouter(
            source: events, catalog: FunctionCatalog(registry: registry, clock: dependencies.clock), store: store, work: work,
            timers: index, events: ingest.ingestor, clock: dependencies.clock, logger: dependencies.logger)
        let timers = TimerService(
            store: store, work: work, eventLog: PostgresEventLog(client: dependencies.postgres.client, logger: dependencies.logger),
            eventStream: RedisEventStream(
                client: dependencies.redis, key: dependencies.streamKey("events"),
                maximumLength: dependencies.configuration.eventsStreamMaxLength),
            index: index, clock: dependencies.clock, logger: dependencies.logger)
        return RoleParts(services: ingest.services + [router, timers])
    }
}
