public import CairnConnect
public import CairnCore
public import CairnEngine
public import CairnHTTP
public import CairnPostgres
public import Logging

/// Everything a Cairn process is configured with, read from environment variables in one place.
///
/// Every variable is documented here and in README.md with its default. `init(environment:)`
/// validates all of them and reports every problem at once, each naming its variable.
public struct CairnConfiguration: Sendable {
    /// `CAIRN_POSTGRES_URL` — the Postgres database that is Cairn's record. Required.
    /// Form: `postgres://user[:password]@host:port/database[?sslmode=…&search_path=…]`.
    public var postgres: PostgresSettings
    /// `CAIRN_REDIS_URL` — the Redis server for streams and hot indexes. Required.
    /// Form: `redis://[user:password@]host:port/db` or `unix:///path/to/redis.sock`.
    public var redisURL: String
    /// `CAIRN_POSTGRES_POOL_SIZE` — most Postgres connections per process. Default 20.
    public var postgresPoolSize: Int
    /// `CAIRN_POSTGRES_TIMEOUT_SECONDS` — longest a Postgres statement may run before the
    /// server cancels it; a call to Postgres fails 5 s after that. Default 30, 1…3600.
    public var postgresTimeout: Duration
    /// `CAIRN_REDIS_TIMEOUT_SECONDS` — longest a Redis command may take before it fails
    /// (blocking reads: beyond their block time). Default 10, 1…3600.
    public var redisTimeout: Duration
    /// `CAIRN_REDIS_POOL_SIZE` — Redis connections per process for ordinary commands (blocking
    /// reads use their own). Default 8.
    public var redisPoolSize: Int
    /// `CAIRN_HOST` — the address HTTP listeners bind. Default `0.0.0.0` (containers) with a
    /// signing key; `127.0.0.1` in dev mode, so that an unauthenticated Cairn is reachable from
    /// this machine only unless asked otherwise.
    public var host: String
    /// `CAIRN_PORT` — the HTTP port of this role (health, metrics and the role's own API).
    /// Default: event-api and api 8288, gateway 8289, scheduler 8290, executor 8291. Under
    /// `cairn dev` this is the port serving the event API, the API and `/healthz` (8288).
    public var port: Int?
    /// `CAIRN_GATEWAY_PORT` — under `cairn dev`, the connect gateway's port. Default 8289.
    public var gatewayPort: Int
    /// Connect's timings: `CAIRN_CONNECT_LEASE_SECONDS` (how long a request forwarded to a
    /// connect worker lives without the worker extending it; default 120, 4…3600),
    /// `CAIRN_CONNECT_ROUTE_WAIT_SECONDS` (how long a call waits for a connected worker before
    /// the run tries again later, without spending a retry; default 10, 0…600) and `CAIRN_CONNECT_DRAIN_SECONDS` (how long
    /// a gateway stopping waits for its workers to move; default 20, 0…3600).
    public var connect: ConnectSettings
    /// `CAIRN_CONNECT_GATEWAY_URL` — on cairn-api, the `ws://` or `wss://` URL
    /// `/v0/connect/start` gives workers (a load balancer in front of the gateways). Unset: a
    /// live gateway is picked from the registry, at the URL it advertises or at the start
    /// request's host name and the gateway's port.
    public var connectGatewayURL: String?
    /// `CAIRN_GATEWAY_URL` — on cairn-gateway, the `ws://` or `wss://` URL workers reach this
    /// replica at, advertised in the registry. Unset: the start request's host and this port.
    public var gatewayURL: String?
    /// `CAIRN_STREAM_PREFIX` — prefix of every Redis stream and key Cairn uses, so tenants or
    /// tests can share one Redis. Default `cairn:`.
    public var streamPrefix: String
    /// `CAIRN_SHUTDOWN_GRACE_SECONDS` — how long in-flight work may take to finish after
    /// SIGTERM before it is cancelled. Default 30.
    public var shutdownGrace: Duration
    /// `CAIRN_LOG_LEVEL` — `trace`, `debug`, `info`, `notice`, `warning`, `error` or
    /// `critical`. Default `info`.
    public var logLevel: Logger.Level
    /// `CAIRN_DEV` — `1` asks for dev mode: the process may run without a signing key, and then
    /// accepts unsigned SDK calls, sends unsigned requests, serves the control API to anyone
    /// who can reach it and (with no `INNGEST_EVENT_KEY`) accepts any event key. Default `0`.
    /// `cairn dev` sets it.
    public var devModeRequested: Bool
    /// `INNGEST_SIGNING_KEY` — key that signs requests to SDKs and authenticates SDK calls and
    /// control-plane callers. Required unless `CAIRN_DEV=1`.
    public var signingKey: SigningKey?
    /// `INNGEST_SIGNING_KEY_FALLBACK` — a second accepted key, for rotation. Optional.
    public var signingKeyFallback: SigningKey?
    /// `INNGEST_EVENT_KEY` — comma-separated event keys accepted by `POST /e/{key}`. Empty in
    /// dev mode accepts any key.
    public var eventKeys: [String]
    /// `CAIRN_EVENT_MAX_BODY_BYTES` — largest `POST /e/{key}` body, in bytes. Default 3145728
    /// (3 MiB); 1024…268435456 (256 MiB). `cairn dev` defaults it to 67108864 (64 MiB).
    public var eventMaxBodyBytes: Int
    /// `CAIRN_EVENT_MAX_BYTES` — largest single event (its JSON), in bytes. Default 524288
    /// (512 KiB); 1024…3145728 (3 MiB). `cairn dev` defaults it to 3 MiB, as Inngest's dev
    /// server does.
    public var eventMaxBytes: Int
    /// `CAIRN_EVENT_QUEUE_LIMIT` — most events an event API process holds waiting for their
    /// commit; beyond it `POST /e/{key}` answers 503 with `Retry-After: 1`. Default 100000,
    /// 1…10000000.
    public var eventQueueLimit: Int
    /// `CAIRN_EVENT_DEDUPE_WINDOW_SECONDS` — how long an event `id` blocks a repeat. Default
    /// 86400 (24 h).
    public var eventDedupeWindow: Duration
    /// `CAIRN_EXECUTOR_LEASE_SECONDS` — how long an executor's lease on a run lasts without
    /// renewal; a run whose executor died is taken over after about this long. Default 60,
    /// 1…3600.
    public var executorLease: Duration
    /// `CAIRN_EXECUTOR_CONCURRENCY` — how many runs one executor process drives at once (each
    /// waits on its app between steps). Default 64, 1…10000.
    public var executorConcurrency: Int
    /// `CAIRN_RETENTION_RUNS_DAYS`, `CAIRN_RETENTION_EVENTS_DAYS`,
    /// `CAIRN_RETENTION_BOOKKEEPING_DAYS` — how long ended runs (30), events (30), and fired
    /// timers and consumed pauses (7) are kept, in days; `0` keeps them for ever, otherwise
    /// 1…36500. Expired dedupe and idempotency claims always go.
    public var retention: RetentionSettings
    /// `CAIRN_RETRY_BACKOFF_SCALE` — multiplies every retry backoff (15 s, 30 s, 1 m, … plus up
    /// to 30 s of jitter). Default 1; development and tests use less. 0.001…1000.
    public var retryBackoffScale: Double
    /// `CAIRN_BULK_WORKERS` — how many bulk cancels and replays one API process works at once;
    /// 0 leaves them to other replicas. Default 1, 0…16.
    public var bulkWorkers: Int
    /// `CAIRN_BULK_LEASE_SECONDS` — how long a bulk job's worker holds it between pages; a job
    /// whose worker died is taken over after about this long. Default 30, 1…3600.
    public var bulkLease: Duration
    /// `CAIRN_BULK_PAGE_SIZE` — how many runs a bulk job handles between two records of its
    /// progress. Default 200, 1…10000.
    public var bulkPageSize: Int
    /// `CAIRN_METRICS_INNGEST_NAMES` — `1` also exports the run lifecycle and SDK request
    /// counters under Inngest's names (`inngest_function_run_*`, `inngest_sdk_req_*`), for
    /// dashboards and autoscalers built for Inngest. Default 0.
    public var metricsInngestNames: Bool
    /// `CAIRN_ADMIN_EMAIL` — the dashboard's first account, created as an admin with a
    /// one-time password printed once, on the first start against an empty database
    /// (docs/dashboard.md). Default `admin@localhost`.
    public var adminEmail: String
    /// `CAIRN_SECURE_COOKIES` — `1` marks the dashboard's session cookie `Secure`: set it when
    /// browsers reach Cairn over HTTPS (a TLS-terminating proxy). Default 0.
    public var secureCookies: Bool
    /// Run traces over OTLP/HTTP (docs/operations.md, "Traces"), or nil when
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is not set, or
    /// `OTEL_TRACES_EXPORTER=none`, or `OTEL_SDK_DISABLED=true`.
    public var otlp: OTLPSettings?

    /// Dev mode: asked for with `CAIRN_DEV=1` and no signing key configured, so SDK calls are
    /// accepted unsigned, requests to SDKs go unsigned, and (with no `INNGEST_EVENT_KEY`) any
    /// event key is accepted. Never the result of a key merely missing: that is refused.
    public var isDevMode: Bool { signingKey == nil }

    /// The signing keys, or nil in dev mode.
    public var signingKeys: SigningKeys? {
        signingKey.map { SigningKeys(primary: $0, fallback: signingKeyFallback) }
    }

    /// Reads and validates the configuration.
    ///
    /// - Parameter environment: the process environment (tests pass their own).
    /// - Throws: `ConfigurationError` listing every invalid or missing variable.
    public init(environment: [String: String]) throws(ConfigurationError) {
        var problems: [ConfigurationError.Problem] = []
        func value(_ name: String) -> String? {
            guard let raw = environment[name]?.trimmingWhitespace(), !raw.isEmpty else { return nil }
            return raw
        }
        func integer(_ name: String, default fallback: Int, range: ClosedRange<Int>) -> Int {
            guard let raw = value(name) else { return fallback }
            guard let parsed = Int(raw), range.contains(parsed) else {
                problems.append(.init(variable: name, rule: "must be an integer from \(range.lowerBound) to \(range.upperBound), got \"\(raw)\""))
                return fallback
            }
            return parsed
        }

        var postgres = try? PostgresSettings(url: "postgres://cairn@127.0.0.1:5432/cairn")
        if let raw = value("CAIRN_POSTGRES_URL") {
            do { postgres = try PostgresSettings(url: raw) } catch {
                problems.append(.init(variable: "CAIRN_POSTGRES_URL", rule: error.description))
            }
        } else {
            problems.append(.init(variable: "CAIRN_POSTGRES_URL", rule: "is required (e.g. postgres://cairn@127.0.0.1:5432/cairn)"))
        }
        let redisURL = value("CAIRN_REDIS_URL") ?? ""
        if redisURL.isEmpty {
            problems.append(.init(variable: "CAIRN_REDIS_URL", rule: "is required (e.g. redis://127.0.0.1:6379/0)"))
        } else if let rule = RedisWiring.validate(url: redisURL) {
            problems.append(.init(variable: "CAIRN_REDIS_URL", rule: rule))
        }
        let postgresPoolSize = integer("CAIRN_POSTGRES_POOL_SIZE", default: 20, range: 1...1000)
        let redisPoolSize = integer("CAIRN_REDIS_POOL_SIZE", default: 8, range: 1...256)
        let postgresTimeoutSeconds = integer("CAIRN_POSTGRES_TIMEOUT_SECONDS", default: 30, range: 1...3_600)
        let redisTimeoutSeconds = integer("CAIRN_REDIS_TIMEOUT_SECONDS", default: 10, range: 1...3_600)
        func flag(_ name: String, meaning: String) -> Bool {
            guard let raw = value(name) else { return false }
            switch raw.lowercased() {
            case "1", "true", "yes": return true
            case "0", "false", "no": return false
            default:
                problems.append(.init(variable: name, rule: "must be 1 (\(meaning)) or 0, got \"\(raw)\""))
                return false
            }
        }
        let devModeRequested = flag("CAIRN_DEV", meaning: "dev mode")
        let metricsInngestNames = flag("CAIRN_METRICS_INNGEST_NAMES", meaning: "export Inngest's metric names too")
        let secureCookies = flag("CAIRN_SECURE_COOKIES", meaning: "mark the dashboard's session cookie Secure")
        let adminEmail = (value("CAIRN_ADMIN_EMAIL") ?? "admin@localhost").trimmingCharacters(in: .whitespaces)
        if !adminEmail.contains("@") || adminEmail.count > 254 || adminEmail.contains(where: { $0 == " " || $0 == "\n" }) {
            problems.append(.init(variable: "CAIRN_ADMIN_EMAIL", rule: "must be an email address such as ops@example.com, got \"\(adminEmail)\""))
        }
        let port: Int? = value("CAIRN_PORT") == nil ? nil : integer("CAIRN_PORT", default: 0, range: 0...65535)
        let gatewayPort = integer("CAIRN_GATEWAY_PORT", default: 8289, range: 0...65535)
        let streamPrefix = value("CAIRN_STREAM_PREFIX") ?? "cairn:"
        if streamPrefix.contains(where: { $0 == " " || $0 == "\n" }) {
            problems.append(.init(variable: "CAIRN_STREAM_PREFIX", rule: "must not contain spaces or newlines"))
        }
        let grace = integer("CAIRN_SHUTDOWN_GRACE_SECONDS", default: 30, range: 0...3600)
        var logLevel = Logger.Level.info
        if let raw = value("CAIRN_LOG_LEVEL") {
            if let level = Logger.Level(rawValue: raw.lowercased()) { logLevel = level } else {
                problems.append(.init(variable: "CAIRN_LOG_LEVEL", rule: "must be one of trace, debug, info, notice, warning, error, critical, got \"\(raw)\""))
            }
        }
        func readSigningKey(_ name: String) -> SigningKey? {
            guard let raw = value(name) else { return nil }
            do { return try SigningKey(raw) } catch {
                problems.append(.init(variable: name, rule: error.rule))
                return nil
            }
        }
        let signingKey = readSigningKey("INNGEST_SIGNING_KEY")
        let signingKeyFallback = readSigningKey("INNGEST_SIGNING_KEY_FALLBACK")
        if value("INNGEST_SIGNING_KEY") == nil && !devModeRequested {
            problems.append(.init(
                variable: "INNGEST_SIGNING_KEY",
                rule: "is required: set it to your signing key (signkey-<env>-<hex>; make one with `openssl rand -hex 32`), "
                    + "or set CAIRN_DEV=1 to run without authentication on a trusted machine"))
        }
        // Dev mode without a key listens on this machine only, unless told otherwise.
        let host = value("CAIRN_HOST") ?? (signingKey == nil ? "127.0.0.1" : "0.0.0.0")
        if signingKeyFallback != nil && signingKey == nil && value("INNGEST_SIGNING_KEY") == nil {
            problems.append(.init(variable: "INNGEST_SIGNING_KEY_FALLBACK", rule: "is set without INNGEST_SIGNING_KEY"))
        }
        let eventKeys = (value("INNGEST_EVENT_KEY") ?? "")
            .split(separator: ",").map { String($0).trimmingWhitespace() }.filter { !$0.isEmpty }
        let eventMaxBodyBytes = integer("CAIRN_EVENT_MAX_BODY_BYTES", default: 3 * 1024 * 1024, range: 1024...(256 * 1024 * 1024))
        let eventMaxBytes = integer("CAIRN_EVENT_MAX_BYTES", default: 512 * 1024, range: 1024...(3 * 1024 * 1024))
        let eventQueueLimit = integer("CAIRN_EVENT_QUEUE_LIMIT", default: 100_000, range: 1...10_000_000)
        let dedupeSeconds = integer("CAIRN_EVENT_DEDUPE_WINDOW_SECONDS", default: 86_400, range: 1...(366 * 86_400))
        let executorLeaseSeconds = integer("CAIRN_EXECUTOR_LEASE_SECONDS", default: 60, range: 1...3_600)
        let executorConcurrency = integer("CAIRN_EXECUTOR_CONCURRENCY", default: 64, range: 1...10_000)
        let bulkWorkers = integer("CAIRN_BULK_WORKERS", default: 1, range: 0...16)
        let bulkLeaseSeconds = integer("CAIRN_BULK_LEASE_SECONDS", default: 30, range: 1...3_600)
        let bulkPageSize = integer("CAIRN_BULK_PAGE_SIZE", default: 200, range: 1...10_000)
        var retention = RetentionSettings()
        func retentionDays(_ name: String, default fallback: Int) -> Duration? {
            let days = integer(name, default: fallback, range: 0...36_500)
            return days == 0 ? nil : .seconds(days * 86_400)
        }
        retention.runs = retentionDays("CAIRN_RETENTION_RUNS_DAYS", default: 30)
        retention.events = retentionDays("CAIRN_RETENTION_EVENTS_DAYS", default: 30)
        retention.bookkeeping = retentionDays("CAIRN_RETENTION_BOOKKEEPING_DAYS", default: 7)
        var connect = ConnectSettings()
        connect.leaseDuration = .seconds(integer("CAIRN_CONNECT_LEASE_SECONDS", default: 120, range: 4...3_600))
        connect.routeWait = .seconds(integer("CAIRN_CONNECT_ROUTE_WAIT_SECONDS", default: 10, range: 0...600))
        connect.drainTimeout = .seconds(integer("CAIRN_CONNECT_DRAIN_SECONDS", default: 20, range: 0...3_600))
        func webSocketURL(_ name: String) -> String? {
            guard let raw = value(name) else { return nil }
            guard (raw.hasPrefix("ws://") || raw.hasPrefix("wss://")) && raw.count > "wss://".count else {
                problems.append(.init(variable: name, rule: "must be a ws:// or wss:// URL, got \"\(raw)\""))
                return nil
            }
            return raw
        }
        let connectGatewayURL = webSocketURL("CAIRN_CONNECT_GATEWAY_URL")
        let gatewayURL = webSocketURL("CAIRN_GATEWAY_URL")
        var retryBackoffScale = 1.0
        if let raw = value("CAIRN_RETRY_BACKOFF_SCALE") {
            if let parsed = Double(raw), (0.001...1_000).contains(parsed) { retryBackoffScale = parsed } else {
                problems.append(.init(variable: "CAIRN_RETRY_BACKOFF_SCALE", rule: "must be a number from 0.001 to 1000, got \"\(raw)\""))
            }
        }

        /// The trace exporter's settings, from the OpenTelemetry variables. Only OTLP/HTTP with
        /// JSON is sent; asking for another protocol is an error rather than silence.
        func otlpSettings() -> OTLPSettings? {
            if value("OTEL_SDK_DISABLED")?.lowercased() == "true" { return nil }
            if let exporter = value("OTEL_TRACES_EXPORTER")?.lowercased() {
                if exporter == "none" { return nil }
                if exporter != "otlp" {
                    problems.append(.init(variable: "OTEL_TRACES_EXPORTER", rule: "must be otlp or none, got \"\(exporter)\""))
                    return nil
                }
            }
            var url: String
            var variable: String
            if let traces = value("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") {
                (url, variable) = (traces, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            } else if let base = value("OTEL_EXPORTER_OTLP_ENDPOINT") {
                (url, variable) = ((base.hasSuffix("/") ? String(base.dropLast()) : base) + "/v1/traces", "OTEL_EXPORTER_OTLP_ENDPOINT")
            } else {
                return nil
            }
            guard (url.hasPrefix("http://") || url.hasPrefix("https://")) && url.count > "https://".count else {
                problems.append(.init(variable: variable, rule: "must be an http:// or https:// URL, got \"\(url)\""))
                return nil
            }
            for name in ["OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"] {
                if let proto = value(name), proto != "http/json" {
                    problems.append(.init(variable: name, rule: "must be http/json, the protocol Cairn exports with, got \"\(proto)\""))
                }
            }
            var settings = OTLPSettings(tracesURL: url)
            func pairs(_ name: String) -> [String: String] {
                guard let raw = value(name) else { return [:] }
                var result: [String: String] = [:]
                for pair in raw.split(separator: ",") {
                    let parts = pair.split(separator: "=", maxSplits: 1)
                    let key = parts.first.map { String($0).trimmingWhitespace().removingPercentEncoding ?? "" } ?? ""
                    guard parts.count == 2, !key.isEmpty else {
                        problems.append(.init(variable: name, rule: "must be a list of key=value pairs separated by commas, got \"\(pair)\""))
                        continue
                    }
                    let text = String(parts[1]).trimmingWhitespace()
                    result[key] = text.removingPercentEncoding ?? text
                }
                return result
            }
            settings.headers = pairs("OTEL_EXPORTER_OTLP_HEADERS").merging(pairs("OTEL_EXPORTER_OTLP_TRACES_HEADERS")) { $1 }
            settings.resourceAttributes = pairs("OTEL_RESOURCE_ATTRIBUTES")
            settings.serviceName = value("OTEL_SERVICE_NAME")
            settings.timeout = .milliseconds(integer("OTEL_EXPORTER_OTLP_TIMEOUT", default: 10_000, range: 1...600_000))
            settings.scheduleDelay = .milliseconds(integer("OTEL_BSP_SCHEDULE_DELAY", default: 5_000, range: 1...600_000))
            settings.maximumQueueSize = integer("OTEL_BSP_MAX_QUEUE_SIZE", default: 8_192, range: 1...1_000_000)
            settings.maximumBatchSize = min(settings.maximumQueueSize, integer("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", default: 512, range: 1...100_000))
            return settings
        }
        let otlp = otlpSettings()

        guard problems.isEmpty, var postgresSettings = postgres else {
            throw ConfigurationError(problems: problems)
        }
        postgresSettings.maximumConnections = postgresPoolSize
        postgresSettings.statementTimeout = .seconds(postgresTimeoutSeconds)
        self.postgresTimeout = .seconds(postgresTimeoutSeconds)
        self.redisTimeout = .seconds(redisTimeoutSeconds)
        self.postgres = postgresSettings
        self.redisURL = redisURL
        self.postgresPoolSize = postgresPoolSize
        self.redisPoolSize = redisPoolSize
        self.host = host
        self.port = port
        self.gatewayPort = gatewayPort
        self.streamPrefix = streamPrefix
        self.connect = connect
        self.connectGatewayURL = connectGatewayURL
        self.gatewayURL = gatewayURL
        self.shutdownGrace = .seconds(grace)
        self.logLevel = logLevel
        self.devModeRequested = devModeRequested
        self.signingKey = signingKey
        self.signingKeyFallback = signingKeyFallback
        self.eventKeys = eventKeys
        self.eventMaxBodyBytes = eventMaxBodyBytes
        self.eventMaxBytes = eventMaxBytes
        self.eventQueueLimit = eventQueueLimit
        self.eventDedupeWindow = .seconds(dedupeSeconds)
        self.retryBackoffScale = retryBackoffScale
        self.retention = retention
        self.executorLease = .seconds(executorLeaseSeconds)
        self.executorConcurrency = executorConcurrency
        self.bulkWorkers = bulkWorkers
        self.bulkLease = .seconds(bulkLeaseSeconds)
        self.bulkPageSize = bulkPageSize
        self.metricsInngestNames = metricsInngestNames
        self.adminEmail = adminEmail
        self.secureCookies = secureCookies
        self.otlp = otlp
    }

    /// The HTTP port a process playing only `role` listens on: `CAIRN_PORT`, else the role's
    /// default.
    public func port(for role: Role) -> Int {
        if let port { return port }
        switch role {
        case .eventAPI, .api: return 8288
        case .gateway: return 8289
        case .scheduler: return 8290
        case .executor: return 8291
        }
    }
}

/// Invalid or missing configuration: every problem, each naming its environment variable.
public struct ConfigurationError: Error, CustomStringConvertible, Equatable {
    /// One variable and the rule it breaks.
    public struct Problem: Sendable, Equatable, CustomStringConvertible {
        /// The environment variable.
        public var variable: String
        /// The rule it breaks, with the value that broke it.
        public var rule: String
        public var description: String { "\(variable): \(rule)" }
    }

    /// Every problem found, in the order the variables are read.
    public var problems: [Problem]

    public var description: String {
        "invalid configuration:\n" + problems.map { "  \($0)" }.joined(separator: "\n")
    }
}

extension String {
    func trimmingWhitespace() -> String {
        var s = Substring(self)
        while let c = s.first, c.isWhitespace { s.removeFirst() }
        while let c = s.last, c.isWhitespace { s.removeLast() }
        return String(s)
    }
}
