import CairnConnect
import CairnEngine
import CairnHTTP
import CairnPostgres

/// Wiring of `cairn-gateway`: holds connect workers' WebSocket connections at `/v0/connect`,
/// syncs their apps, and hands them the requests executors route to them (docs/connect.md).
enum GatewayRole {
    static func parts(_ dependencies: RoleDependencies) -> RoleParts {
        let configuration = dependencies.configuration
        let sync = AppSync(
            registry: PostgresAppRegistry(database: dependencies.postgres, logger: dependencies.logger), transport: HTTPSDKTransport(),
            keys: configuration.signingKeys, clock: dependencies.clock, logger: dependencies.logger)
        let hub = ConnectGatewayHub(
            state: dependencies.connectState(), sync: sync, keys: configuration.signingKeys, clock: dependencies.clock,
            settings: configuration.connect, url: configuration.gatewayURL, metrics: dependencies.metricsFactory, logger: dependencies.logger,
            exchange: dependencies.connectExchange, tracing: dependencies.runMetrics.tracing)
        return RoleParts(gateway: hub)
    }
}
