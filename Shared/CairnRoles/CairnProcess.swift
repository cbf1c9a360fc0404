public import CairnEngine
import CairnConnect
import CairnHTTP
import CairnPostgres
import CairnRedis
import Foundation
import Hummingbird
import Metrics
import NIOCore
import Prometheus
public import Logging
public import ServiceLifecycle

/// The composition root of a Cairn process: the dependencies, the services of the roles it
/// plays, and the HTTP listeners, in one ordered `ServiceGroup`.
///
/// Each role executable is `CairnProcess(roles: [that role])`; `cairn dev` is the same with
/// every role — there is no second implementation. Service order states dependencies:
/// Postgres and Redis first, then role services, then the HTTP listeners; shutdown runs in
/// reverse, so listeners stop taking requests before the clients they use go away.
public struct CairnProcess: Sendable {
    /// A port an HTTP listener of this process bound, reported once it accepts connections.
    public struct BoundListener: Sendable {
        /// The roles whose routes the listener serves.
        public var roles: [Role]
        /// The port it bound (useful when `0` asked for any free port).
        public var port: Int
    }

    /// The roles this process plays.
    public let roles: [Role]
    /// The validated configuration.
    public let configuration: CairnConfiguration
    let logger: Logger
    let clock: any WallClock
    let onListening: @Sendable (BoundListener) async -> Void

    /// Creates a process playing `roles`.
    ///
    /// - Parameter onListening: called once per HTTP listener when it accepts connections.
    public init(
        roles: [Role],
        configuration: CairnConfiguration,
        logger: Logger,
        clock: any WallClock = SystemWallClock(),
        onListening: @escaping @Sendable (BoundListener) async -> Void = { _ in }
    ) {
        precondition(!roles.isEmpty, "a process plays at least one role")
        self.roles = roles
        self.configuration = configuration
        self.logger = logger
        self.clock = clock
        self.onListening = onListening
    }

    /// Which listener serves which roles: one listener for a single role; under `cairn dev`
    /// the event API, the API and the background roles share `CAIRN_PORT` (8288) and the gateway
    /// has its own port (8289), as in production.
    func listeners() -> [(roles: [Role], port: Int)] {
        guard roles.count > 1 else { return [(roles, configuration.port(for: roles[0]))] }
        let main = roles.filter { $0 != .gateway }
        var result: [(roles: [Role], port: Int)] = []
        if !main.isEmpty { result.append((main, configuration.port ?? 8288)) }
        if roles.contains(.gateway) { result.append(([.gateway], configuration.gatewayPort)) }
        return result
    }

    /// Builds every service of the process, in start order.
    public func services() -> [any Service] {
        let (postgres, redis, dependencies, parts) = wiring()
        let readiness = Readiness(probes: [postgres.readinessProbe, redis.readinessProbe])

        var services: [any Service] = []
        for role in roles { services += parts[role]!.services }
        // Started after the listeners, so stopped before them: a gateway drains its workers
        // while its listener still holds their connections.
        var drainedBeforeListeners: [any Service] = []
        for (listenerRoles, port) in listeners() {
            let router = makeRouter(serving: listenerRoles, parts: parts, readiness: readiness, metrics: dependencies.metricsRegistry)
            let onListening = self.onListening
            let gateway = listenerRoles.lazy.compactMap { parts[$0]!.gateway }.first
            let address = BindAddress.hostname(configuration.host, port: port)
            let running: @Sendable (any Channel) async -> Void = { channel in
                let bound = channel.localAddress?.port ?? port
                gateway?.listening(on: bound)
                await onListening(BoundListener(roles: listenerRoles, port: bound))
            }
            if let gateway {
                services.append(
                    Application(
                        router: router, server: ConnectWebSocket.server(hub: gateway, maximumMessageBytes: configuration.connect.maximumMessageBytes),
                        configuration: .init(address: address, serverName: "cairn"), onServerRunning: running, logger: logger))
                drainedBeforeListeners.append(gateway)
            } else {
                services.append(
                    Application(router: router, configuration: .init(address: address, serverName: "cairn"), onServerRunning: running, logger: logger))
            }
        }
        services += drainedBeforeListeners
        return [postgres, redis.service] + (dependencies.traces.map { [$0] } ?? []) + services.map { AfterDatabase(database: postgres, service: $0) }
    }

    /// The clients and each role's parts; nothing connects until the services run.
    func wiring() -> (
        postgres: CairnPostgresDatabase, redis: (service: any Service, readinessProbe: any ReadinessProbe, client: RedisClient),
        dependencies: RoleDependencies, parts: [Role: RoleParts]
    ) {
        let registry = PrometheusCollectorRegistry()
        let factory = RoleDependencies.metricsFactory(registry)
        let postgres = CairnPostgresDatabase(settings: configuration.postgres, logger: logger) { operation, duration in
            Metrics.Timer(label: "cairn_postgres_query_duration_seconds", dimensions: [("op", operation)], factory: factory).recordSeconds(duration.timeInterval)
        }
        let redis = RedisWiring.makeClient(
            url: configuration.redisURL, poolSize: configuration.redisPoolSize, commandTimeout: configuration.redisTimeout, logger: logger
        ) { command, duration in
            Metrics.Timer(label: "cairn_redis_command_duration_seconds", dimensions: [("command", command)], factory: factory).recordSeconds(duration.timeInterval)
        }
        let dependencies = RoleDependencies(
            configuration: configuration, postgres: postgres, redis: redis.client, clock: clock, logger: logger,
            metricsRegistry: registry, traces: traceExporter(registry: registry))
        for role in roles {
            Gauge(label: "cairn_build_info", dimensions: [("version", CairnBuild.version), ("role", role.rawValue), ("commit", CairnBuild.commit)],
                  factory: dependencies.metricsFactory).record(1)
        }
        return (postgres, redis, dependencies, Dictionary(uniqueKeysWithValues: roles.map { ($0, $0.parts(dependencies)) }))
    }

    /// The trace exporter, when traces are configured. Its service is named after the roles
    /// (`cairn-executor`; `cairn-dev` for every role) unless `OTEL_SERVICE_NAME` says otherwise.
    func traceExporter(registry: PrometheusCollectorRegistry) -> OTLPTraceExporter? {
        guard let settings = configuration.otlp else { return nil }
        let name = roles.count == Role.allCases.count ? "cairn-dev" : roles.map { "cairn-" + $0.rawValue }.joined(separator: "+")
        let dropped = Counter(label: "cairn_trace_spans_dropped_total", factory: RoleDependencies.metricsFactory(registry))
        return OTLPTraceExporter(
            settings: settings,
            resource: [
                "service.name": settings.serviceName ?? name, "service.version": CairnBuild.version,
                "service.instance.id": UUID().uuidString.lowercased(),
            ],
            logger: logger, onDrop: { dropped.increment(by: $0) })
    }

    /// The router of a listener serving `listenerRoles`: health, metrics and the API contract,
    /// then each role's routes.
    func makeRouter(
        serving listenerRoles: [Role], parts: [Role: RoleParts], readiness: Readiness, metrics: PrometheusCollectorRegistry, pages: Bool = true
    ) -> Router<BasicRequestContext> {
        let router = Router()
        router.add(middleware: HTTPMetricsMiddleware(factory: RoleDependencies.metricsFactory(metrics)))
        let unserved = UnservedRoutes<BasicRequestContext>()
        router.add(middleware: unserved)
        HealthRoutes(roles: roles, readiness: readiness).register(on: router)
        MetricsRoute(registry: metrics).register(on: router)
        OpenAPIRoute().register(on: router)
        for role in listenerRoles {
            for register in parts[role]!.routes { register(router) }
            if pages { for register in parts[role]!.pages { register(router) } }
        }
        unserved.serve(router)
        return router
    }

    /// Every API route the process's listeners serve (`pages`: also the dashboard's pages), as
    /// `METHOD /path/{parameter}`, sorted. Builds the roles' wiring without connecting anything.
    public func routes(pages: Bool = false) -> [String] {
        let (_, _, dependencies, parts) = wiring()
        let readiness = Readiness(probes: [])
        var routes: Set<String> = []
        for (listenerRoles, _) in listeners() {
            let router = makeRouter(serving: listenerRoles, parts: parts, readiness: readiness, metrics: dependencies.metricsRegistry, pages: pages)
            for route in router.routes {
                let path = route.path.description.split(separator: "/").map { $0.hasPrefix(":") ? "{\($0.dropFirst())}" : String($0) }
                routes.insert("\(route.method.rawValue) /" + path.joined(separator: "/"))
            }
        }
        return routes.sorted()
    }

    /// The process's services in one group. With `handlingSignals`, SIGTERM and SIGINT start
    /// a graceful shutdown, bounded by `CAIRN_SHUTDOWN_GRACE_SECONDS`; without, the caller
    /// ends it with `triggerGracefulShutdown()` (tests do).
    public func serviceGroup(handlingSignals: Bool = true) -> ServiceGroup {
        var groupConfiguration = ServiceGroupConfiguration(
            services: services().map { .init(service: $0) },
            gracefulShutdownSignals: handlingSignals ? [.sigterm, .sigint] : [],
            cancellationSignals: [],
            logger: logger
        )
        groupConfiguration.maximumGracefulShutdownDuration = configuration.shutdownGrace
        return ServiceGroup(configuration: groupConfiguration)
    }

    /// Runs the process until SIGTERM or SIGINT, then shuts down gracefully, within the
    /// grace period and 10 s more (`ShutdownBackstop`).
    public func run() async throws {
        logger.info("starting", metadata: ["roles": "\(roles.map(\.rawValue).joined(separator: ","))"])
        let backstop = ShutdownBackstop(limit: configuration.shutdownGrace + .seconds(10), logger: logger)
        try await serviceGroup().run()
        _ = consume backstop
    }
}

extension CairnConfiguration {
    /// A logger for a process, at the configured level.
    public func makeLogger(label: String) -> Logger {
        var logger = Logger(label: label)
        logger.logLevel = logLevel
        return logger
    }
}

/// A service that starts once the Postgres pool runs: most services query as soon as they
/// start, and a query that reaches the pool before `run()` is logged as a warning.
struct AfterDatabase: Service {
    let database: CairnPostgresDatabase
    let service: any Service

    func run() async throws {
        await database.waitUntilRunning()
        try Task.checkCancellation()
        try await service.run()
    }
}
