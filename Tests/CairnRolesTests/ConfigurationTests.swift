import CairnEngine
import CairnRoles
import Testing

@Suite struct ConfigurationTests {
    let minimal = [
        "CAIRN_POSTGRES_URL": "postgres://cairn@127.0.0.1:5432/cairn",
        "CAIRN_REDIS_URL": "redis://127.0.0.1:6379/0",
        "CAIRN_DEV": "1",
    ]

    @Test func defaults() throws {
        let c = try CairnConfiguration(environment: minimal)
        #expect(c.postgres.maximumConnections == 20)
        #expect(c.redisPoolSize == 8)
        #expect(c.host == "127.0.0.1", "dev mode without a key listens on this machine only")
        #expect(c.port(for: .eventAPI) == 8288)
        #expect(c.port(for: .api) == 8288)
        #expect(c.port(for: .gateway) == 8289)
        #expect(c.port(for: .scheduler) == 8290)
        #expect(c.port(for: .executor) == 8291)
        #expect(c.gatewayPort == 8289)
        #expect(c.streamPrefix == "cairn:")
        #expect(c.shutdownGrace == .seconds(30))
        #expect(c.logLevel == .info)
        #expect(c.isDevMode)
        #expect(c.eventKeys.isEmpty)
        #expect(c.executorConcurrency == 64)
        #expect(c.executorLease == .seconds(60))
    }

    @Test func overrides() throws {
        var env = minimal
        env["CAIRN_POSTGRES_POOL_SIZE"] = "5"
        env["CAIRN_PORT"] = "9000"
        env["CAIRN_LOG_LEVEL"] = "DEBUG"
        env["INNGEST_SIGNING_KEY"] = "signkey-prod-0123456789abcdef"
        env["INNGEST_SIGNING_KEY_FALLBACK"] = "abcd"
        env["INNGEST_EVENT_KEY"] = " k1, k2 ,,"
        env["CAIRN_EXECUTOR_CONCURRENCY"] = "256"
        let c = try CairnConfiguration(environment: env)
        #expect(c.postgres.maximumConnections == 5)
        #expect(c.port(for: .executor) == 9000)
        #expect(c.logLevel == .debug)
        #expect(c.signingKey?.hex == "0123456789abcdef")
        #expect(c.signingKeyFallback?.hex == "abcd")
        #expect(!c.isDevMode)
        #expect(c.host == "0.0.0.0")
        #expect(c.eventKeys == ["k1", "k2"])
        #expect(c.executorConcurrency == 256)
    }

    @Test(arguments: [
        ("CAIRN_POSTGRES_POOL_SIZE", "0", "CAIRN_POSTGRES_POOL_SIZE: must be an integer from 1 to 1000, got \"0\""),
        ("CAIRN_REDIS_POOL_SIZE", "many", "CAIRN_REDIS_POOL_SIZE: must be an integer from 1 to 256, got \"many\""),
        ("CAIRN_PORT", "70000", "CAIRN_PORT: must be an integer from 0 to 65535, got \"70000\""),
        ("CAIRN_LOG_LEVEL", "loud", "CAIRN_LOG_LEVEL: must be one of trace"),
        ("CAIRN_POSTGRES_URL", "mysql://x", "CAIRN_POSTGRES_URL: invalid Postgres URL"),
        ("CAIRN_REDIS_URL", "http://x", "CAIRN_REDIS_URL:"),
        ("INNGEST_SIGNING_KEY", "signkey-prod-xyz", "INNGEST_SIGNING_KEY: must be an even-length hex string"),
        ("INNGEST_SIGNING_KEY", "abc", "INNGEST_SIGNING_KEY: must be an even-length hex string"),
        ("CAIRN_SHUTDOWN_GRACE_SECONDS", "-1", "CAIRN_SHUTDOWN_GRACE_SECONDS: must be an integer from 0 to 3600"),
        ("CAIRN_EXECUTOR_CONCURRENCY", "0", "CAIRN_EXECUTOR_CONCURRENCY: must be an integer from 1 to 10000, got \"0\""),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318", "OTEL_EXPORTER_OTLP_ENDPOINT: must be an http:// or https:// URL, got \"collector:4318/v1/traces\""),
        ("OTEL_TRACES_EXPORTER", "jaeger", "OTEL_TRACES_EXPORTER: must be otlp or none, got \"jaeger\""),
    ])
    func rejects(variable: String, value: String, message: String) {
        var env = minimal
        env[variable] = value
        #expect {
            try CairnConfiguration(environment: env)
        } throws: { error in
            (error as? ConfigurationError)?.description.contains(message) == true
        }
    }

    @Test func tracesAreOffUntilAnEndpointIsSetAndReadTheOpenTelemetryVariables() throws {
        #expect(try CairnConfiguration(environment: minimal).otlp == nil)
        var env = minimal
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = "http://collector:4318/"
        env["OTEL_EXPORTER_OTLP_HEADERS"] = "api-key=s%3Dcret, tenant = a"
        env["OTEL_SERVICE_NAME"] = "cairn-prod"
        env["OTEL_RESOURCE_ATTRIBUTES"] = "deployment.environment=prod"
        env["OTEL_BSP_SCHEDULE_DELAY"] = "250"
        env["OTEL_BSP_MAX_QUEUE_SIZE"] = "100"
        let otlp = try #require(try CairnConfiguration(environment: env).otlp)
        #expect(otlp.tracesURL == "http://collector:4318/v1/traces")
        #expect(otlp.headers == ["api-key": "s=cret", "tenant": "a"])
        #expect(otlp.serviceName == "cairn-prod")
        #expect(otlp.resourceAttributes == ["deployment.environment": "prod"])
        #expect(otlp.scheduleDelay == .milliseconds(250))
        #expect(otlp.maximumQueueSize == 100)
        #expect(otlp.maximumBatchSize == 100, "a batch is never larger than the queue")
        env["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] = "https://traces.example/otlp"
        #expect(try CairnConfiguration(environment: env).otlp?.tracesURL == "https://traces.example/otlp")
        env["OTEL_TRACES_EXPORTER"] = "none"
        #expect(try CairnConfiguration(environment: env).otlp == nil)
        env["OTEL_TRACES_EXPORTER"] = nil
        env["OTEL_EXPORTER_OTLP_PROTOCOL"] = "grpc"
        #expect {
            try CairnConfiguration(environment: env)
        } throws: { error in
            (error as? ConfigurationError)?.problems.map(\.description)
                == ["OTEL_EXPORTER_OTLP_PROTOCOL: must be http/json, the protocol Cairn exports with, got \"grpc\""]
        }
    }

    @Test func reportsEveryMissingVariableAtOnce() {
        #expect {
            try CairnConfiguration(environment: [:])
        } throws: { error in
            let problems = (error as? ConfigurationError)?.problems.map(\.variable)
            return problems == ["CAIRN_POSTGRES_URL", "CAIRN_REDIS_URL", "INNGEST_SIGNING_KEY"]
        }
    }

    @Test func refusesToRunWithoutASigningKeyUnlessDevModeIsAskedFor() throws {
        var env = minimal
        env["CAIRN_DEV"] = nil
        #expect {
            try CairnConfiguration(environment: env)
        } throws: { error in
            let problems = (error as? ConfigurationError)?.problems ?? []
            return problems.count == 1 && problems[0].variable == "INNGEST_SIGNING_KEY"
                && problems[0].rule.contains("is required") && problems[0].rule.contains("CAIRN_DEV=1")
        }
        env["CAIRN_DEV"] = "0"
        #expect(throws: ConfigurationError.self) { try CairnConfiguration(environment: env) }
        env["CAIRN_DEV"] = "maybe"
        #expect {
            try CairnConfiguration(environment: env)
        } throws: { error in
            (error as? ConfigurationError)?.description.contains("CAIRN_DEV: must be 1 (dev mode) or 0, got \"maybe\"") == true
        }
        env["CAIRN_DEV"] = nil
        env["INNGEST_SIGNING_KEY"] = "signkey-prod-00ff"
        let keyed = try CairnConfiguration(environment: env)
        #expect(!keyed.isDevMode)
        #expect(keyed.host == "0.0.0.0")
        // Dev mode asked for with a key: the key is used.
        env["CAIRN_DEV"] = "1"
        #expect(try !CairnConfiguration(environment: env).isDevMode)
    }
}
