import CairnConnect
import CairnCore
import CairnDashboard
import CairnEngine
import CairnHTTP
import CairnPostgres
import CairnRedis
import Foundation
import ServiceLifecycle

/// Wiring of `cairn-api`: the control plane — app sync, queries, run operations (with the
/// bulk jobs' worker) and the SDK's callbacks.
///
/// Routes: `POST /fn/register`, `POST /v1/apps/sync`, `GET /v1/apps`,
/// `GET /v1/apps/{app}/functions`, `GET /v1/events/{id}`, `GET /v1/events`, `GET /v1/runs/{id}`,
/// `GET /v1/runs`, `DELETE /v1/runs/{id}`, `POST /v1/runs/{id}/rerun`, `POST /v1/cancellations`, `POST /v1/replays`,
/// `GET /v1/bulk/{id}`, `POST /v1/functions/{id}/pause|resume`, `GET /v1/events/{id}/runs`, `GET /v1/queues`, and connect's `POST /v0/connect/start`,
/// `POST /v0/connect/flush` and `GET /v1/apps/{app}/workers`, and `POST /v1/traces/userland`;
/// and the dashboard's pages (docs/dashboard.md), with its accounts.
enum APIRole {
    static func parts(_ dependencies: RoleDependencies) -> RoleParts {
        let configuration = dependencies.configuration
        let accounts = Accounts(store: PostgresAccountStore(database: dependencies.postgres, logger: dependencies.logger), clock: dependencies.clock)
        let authorization = APIAuthorization(keys: configuration.signingKeys, accounts: accounts)
        let log = PostgresEventLog(database: dependencies.postgres, logger: dependencies.logger)
        let events = EventQueryRoutes(log: log, clock: dependencies.clock, authorization: authorization)
        let registry = PostgresAppRegistry(database: dependencies.postgres, logger: dependencies.logger)
        let sync = AppSync(
            registry: registry, transport: HTTPSDKTransport(), keys: configuration.signingKeys, clock: dependencies.clock,
            logger: dependencies.logger)
        let apps = AppRoutes(sync: sync, registry: registry, clock: dependencies.clock, authorization: authorization)
        let store = PostgresRunStore(database: dependencies.postgres, logger: dependencies.logger)
        let ingest = dependencies.eventIngest()
        let catalog = FunctionCatalog(registry: registry, clock: dependencies.clock)
        let rerun = RunRerun(
            store: store, catalog: catalog, eventLog: log,
            work: dependencies.workQueue(), clock: dependencies.clock)
        let cancellation = RunCancellation(store: store, events: ingest.ingestor, clock: dependencies.clock, metrics: dependencies.runMetrics)
        let runs = RunRoutes(runs: store, cancellation: cancellation, rerun: rerun, clock: dependencies.clock, authorization: authorization)
        let jobs = PostgresBulkStore(database: dependencies.postgres, logger: dependencies.logger)
        let functionOperations = FunctionOperations(registry: registry, catalog: catalog, runs: store, jobs: jobs, clock: dependencies.clock)
        let operations = OperationRoutes(
            runs: store, operations: functionOperations, jobs: jobs,
            clock: dependencies.clock, authorization: authorization)
        let bulk: [any Service] = (0..<configuration.bulkWorkers).map { _ in
            BulkOperator(
                store: store, jobs: jobs, eventLog: log, cancellation: cancellation, rerun: rerun, clock: dependencies.clock,
                logger: dependencies.logger, pageSize: configuration.bulkPageSize, lease: configuration.bulkLease)
        }
        let queueReport = QueueReport(registry: registry, store: store, clock: dependencies.clock)
        let queues = QueueRoutes(
            report: queueReport, clock: dependencies.clock,
            authorization: authorization)
        let connectState = dependencies.connectState()
        let connect = ConnectRoutes(
            api: ConnectAPI(
                state: connectState, keys: configuration.signingKeys, clock: dependencies.clock, settings: configuration.connect,
                gatewayURL: configuration.connectGatewayURL, logger: dependencies.logger),
            state: connectState, clock: dependencies.clock, authorization: authorization)
        // Dev mode has no accounts to sign in with: whoever reaches `cairn dev` is its admin.
        let access: DashboardAccess =
            configuration.isDevMode ? .local(accounts) : .accounts(accounts, secureCookies: configuration.secureCookies)
        let logger = dependencies.logger
        let upkeep = AccountUpkeep(accounts: accounts, adminEmail: configuration.isDevMode ? nil : configuration.adminEmail, logger: logger) { email, password in
            // Printed once, on the first start against an empty database: the only copy.
            // Written straight to the file descriptor: `print` buffers when standard output is a pipe.
            FileHandle.standardOutput.write(
                Data("cairn-api: created the first dashboard account \(email) (admin) with the one-time password \(password) — sign in and change it\n".utf8))
            logger.notice("created the first dashboard account; its one-time password is on standard output", metadata: ["email": "\(email)"])
        }
        let sources = DashboardSources(
            registry: registry, runs: store, events: log, operations: functionOperations, cancellation: cancellation, rerun: rerun, jobs: jobs,
            queues: queueReport,
            connect: connectState, ingest: { try await ingest.ingestor.ingest($0, seed: nil).ids }, clock: dependencies.clock)
        let dashboard: Dashboard
        do {
            dashboard = try Dashboard(sources: sources, access: access, logger: logger)
        } catch {
            fatalError("the dashboard cannot start: \(error)")
        }
        return RoleParts(
            services: ingest.services + bulk + [upkeep],
            routes: [
                events.register(on:), apps.register(on:), runs.register(on:), operations.register(on:), queues.register(on:),
                connect.register(on:), TraceRoutes(exporter: dependencies.traces, authorization: authorization).register(on:),
            ],
            pages: [dashboard.register(on:)])
    }
}
