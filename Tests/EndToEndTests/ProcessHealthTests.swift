import AsyncHTTPClient
import CairnEngine
import CairnRoles
import CairnTesting
import Foundation
import Logging
import ServiceLifecycle
import Testing

/// Every role, started for real against the test run's Postgres and Redis.
@Suite struct ProcessHealthTests {
    func environment() throws -> [String: String] {
        [
            "CAIRN_POSTGRES_URL": try TestEnvironment.postgresURL(),
            "CAIRN_REDIS_URL": try TestEnvironment.redisURL(),
            "CAIRN_DEV": "1",
            "CAIRN_HOST": "127.0.0.1",
            "CAIRN_PORT": "0",
            "CAIRN_GATEWAY_PORT": "0",
            "CAIRN_SHUTDOWN_GRACE_SECONDS": "10",
        ]
    }

    func get(_ url: String) async throws -> (status: UInt, body: String) {
        let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: url), timeout: .seconds(10))
        let body = try await response.body.collect(upTo: 1 << 20)
        return (response.status.code, String(buffer: body))
    }

    @Test func devProcessServesHealthForEveryRoleAndStopsCleanly() async throws {
        let configuration = try CairnConfiguration(environment: environment())
        var logger = Logger(label: "cairn.test.process")
        logger.logLevel = .warning
        let (listeners, continuation) = AsyncStream.makeStream(of: CairnProcess.BoundListener.self)
        let process = CairnProcess(roles: Role.allCases, configuration: configuration, logger: logger) { listener in
            continuation.yield(listener)
        }
        let group = process.serviceGroup(handlingSignals: false)
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }

            var bound: [CairnProcess.BoundListener] = []
            for await listener in listeners {
                bound.append(listener)
                if bound.count == 2 { break }
            }
            let main = try #require(bound.first { $0.roles.contains(.api) })
            let gateway = try #require(bound.first { $0.roles == [.gateway] })
            #expect(main.roles == [.eventAPI, .api, .scheduler, .executor])

            let health = try await get("http://127.0.0.1:\(main.port)/healthz")
            #expect(health.status == 200)
            #expect(health.body == #"{"status":"ok","roles":["event-api","api","scheduler","executor","gateway"]}"#)
            let ready = try await get("http://127.0.0.1:\(main.port)/readyz")
            #expect(ready.status == 200)
            #expect(ready.body == #"{"status":"ready","checks":{"postgres":"ok","redis":"ok"}}"#)
            let gatewayHealth = try await get("http://127.0.0.1:\(gateway.port)/healthz")
            #expect(gatewayHealth.body == health.body)

            await group.triggerGracefulShutdown()
            try await tasks.next()
        }
    }

    @Test func readyzReportsAnUnreachableDependency() async throws {
        var env = try environment()
        // Nothing listens on port 1: Redis never answers, Postgres does.
        env["CAIRN_REDIS_URL"] = "redis://127.0.0.1:1/0"
        let configuration = try CairnConfiguration(environment: env)
        var logger = Logger(label: "cairn.test.process")
        logger.logLevel = .critical
        let (listeners, continuation) = AsyncStream.makeStream(of: CairnProcess.BoundListener.self)
        let process = CairnProcess(roles: [.scheduler], configuration: configuration, logger: logger) { continuation.yield($0) }
        let group = process.serviceGroup(handlingSignals: false)
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            var iterator = listeners.makeAsyncIterator()
            let listener = try #require(await iterator.next())
            let ready = try await get("http://127.0.0.1:\(listener.port)/readyz")
            #expect(ready.status == 503)
            #expect(ready.body.contains(#""postgres":"ok""#))
            #expect(!ready.body.contains(#""redis":"ok""#))
            await group.triggerGracefulShutdown()
            try await tasks.next()
        }
    }
}
