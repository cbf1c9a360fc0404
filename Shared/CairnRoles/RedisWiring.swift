import CairnEngine
import CairnRedis
import Logging
import ServiceLifecycle

/// How a process makes its Redis client from configuration.
enum RedisWiring {
    /// `nil` when `url` is a usable Redis URL, else the rule it breaks.
    static func validate(url: String) -> String? {
        do {
            _ = try RedisURL(url)
            return nil
        } catch {
            return error.description
        }
    }

    /// The client as a service (started before the roles, stopped after them) and its probe.
    static func makeClient(
        url: String, poolSize: Int, commandTimeout: Duration, logger: Logger, observe: RedisObserver? = nil
    ) -> (service: any Service, readinessProbe: any ReadinessProbe, client: RedisClient) {
        // `validate(url:)` ran when the configuration was read.
        var configuration = try! RedisConfiguration(url: url, poolSize: poolSize, clientName: "cairn")
        configuration.commandTimeout = commandTimeout
        let client = RedisClient(configuration: configuration, logger: logger, observe: observe)
        return (client, RedisReadinessProbe(client: client), client)
    }
}

/// Ready when Redis answers `PING`.
struct RedisReadinessProbe: ReadinessProbe {
    let client: RedisClient
    var name: String { "redis" }

    func check() async throws {
        _ = try await client.ping()
    }
}
