import CairnConnect
import Foundation
import Metrics
public import CairnEngine
public import CairnHTTP
public import CairnPostgres
public import CairnRedis
import Hummingbird
public import Logging
public import Prometheus
import ServiceLifecycle

/// The shared clients and settings every role is built from; one set per process, so under
/// `cairn dev` the roles share pools exactly as they would share a machine.
public struct RoleDependencies: Sendable {
    /// The validated configuration.
    public let configuration: CairnConfiguration
    /// The Postgres pool (a `Service` started before every role).
    public let postgres: CairnPostgresDatabase
    /// The Redis client (a `Service` started before every role).
    public let redis: RedisClient
    /// The wall clock roles read time from.
    public let clock: any WallClock
    /// The process logger.
    public let logger: Logger
    /// The process's metrics registry, served at `/metrics` by every listener.
    public let metricsRegistry: PrometheusCollectorRegistry
    /// Creates metrics on `metricsRegistry`.
    public var metricsFactory: PrometheusMetricsFactory {
        Self.metricsFactory(metricsRegistry)
    }

    /// A factory of metrics on `registry` whose duration histograms reach down to 100 µs: most
    /// of what Cairn times (a Redis command, a step's bookkeeping) takes well under the
    /// client library's smallest default bucket of 5 ms.
    public static func metricsFactory(_ registry: PrometheusCollectorRegistry) -> PrometheusMetricsFactory {
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = [
            .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2.5), .milliseconds(5),
            .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
            .seconds(1), .seconds(2.5), .seconds(5), .seconds(10), .seconds(30), .seconds(60),
        ]
        return factory
    }

    /// The process's trace exporter, when `OTEL_EXPORTER_OTLP_ENDPOINT` is set (a `Service`
    /// started before every role, so it sends their last spans when they stop).
    public let traces: OTLPTraceExporter?

    /// Run lifecycle and SDK request metrics on this process's registry, and run traces.
    var runMetrics: RunMetrics {
        RunMetrics(factory: metricsFactory, inngestNames: configuration.metricsInngestNames, tracing: RunTracing(sink: traces))
    }

    /// Hand-offs between a gateway and executors in this process, skipping Redis inboxes.
    let connectExchange = ConnectLocalExchange()

    /// Connect's shared state (registry, leases, inboxes) in Redis.
    func connectState() -> RedisConnectState {
        RedisConnectState(client: redis, prefix: configuration.streamPrefix)
    }

    /// The `work` stream, where runs' work items are published.
    func workQueue() -> RedisWorkQueue {
        RedisWorkQueue(client: redis, stream: streamKey("work"))
    }

    /// The full name of a stream or key: `CAIRN_STREAM_PREFIX` + `name`.
    public func streamKey(_ name: String) -> String {
        configuration.streamPrefix + name
    }
}

extension RoleDependencies {
    /// The ingest path for events a role produces itself (system events, invokes, cancels):
    /// the same group-commit ingestor as the event API, plus its relay; both are services the
    /// role must run.
    func eventIngest() -> (ingestor: EventIngestor, services: [any Service]) {
        let log = PostgresEventLog(database: postgres, logger: logger)
        let stream = RedisEventStream(client: redis, key: streamKey("events"))
        var settings = IngestSettings()
        settings.dedupeWindow = configuration.eventDedupeWindow
        settings.maximumPendingEvents = configuration.eventQueueLimit
        let ingestor = EventIngestor(
            log: log, stream: stream, clock: clock, settings: settings, metrics: IngestMetrics(factory: metricsFactory), logger: logger)
        let relay = EventRelay(log: log, stream: stream, clock: clock, logger: logger)
        return (ingestor, [ingestor, relay])
    }
}

/// What one role adds to a process: its background services (started after the clients,
/// before the listeners), the routes it serves on its listener, and what its listener needs
/// beyond plain HTTP.
struct RoleParts {
    /// Long-running loops of the role, in start order.
    var services: [any Service] = []
    /// Registers the role's HTTP routes; called once per listener that serves the role.
    var routes: [(Router<BasicRequestContext>) -> Void] = []
    /// Registers the role's web pages (the dashboard): served beside the routes, but not API,
    /// so not in the OpenAPI document.
    var pages: [(Router<BasicRequestContext>) -> Void] = []
    /// The connect gateway, when the role is one: its listener upgrades `/v0/connect` to
    /// WebSockets, and it runs as a service started after the listener, so that on shutdown it
    /// drains its workers before the listener closes their connections.
    var gateway: ConnectGatewayHub?
}

extension Role {
    /// The services and routes of this role. Each role's wiring lives in `Roles/`.
    func parts(_ dependencies: RoleDependencies) -> RoleParts {
        switch self {
        case .eventAPI: EventAPIRole.parts(dependencies)
        case .api: APIRole.parts(dependencies)
        case .scheduler: SchedulerRole.parts(dependencies)
        case .executor: ExecutorRole.parts(dependencies)
        case .gateway: GatewayRole.parts(dependencies)
        }
    }
}
