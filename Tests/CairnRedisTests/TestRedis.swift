import CairnRedis
import Foundation
import Logging
import Synchronization
import Testing

/// The Redis server the tests run against, from `CAIRN_TEST_REDIS_URL`, and helpers that give
/// each test its own key prefix and client.
enum TestRedis {
    struct MissingServer: Error, CustomStringConvertible {
        var description: String {
            "CAIRN_TEST_REDIS_URL is not set: these tests need a real redis-server, e.g. "
                + "`redis-server --port 6391 --save '' --appendonly no --daemonize yes` and "
                + "`CAIRN_TEST_REDIS_URL=redis://127.0.0.1:6391/0 swift test`"
        }
    }

    static func url() throws -> RedisURL {
        guard let text = ProcessInfo.processInfo.environment["CAIRN_TEST_REDIS_URL"], !text.isEmpty else {
            Issue.record(MissingServer())
            throw MissingServer()
        }
        return try RedisURL(text)
    }

    /// A key prefix no other test (or test run) uses.
    static func uniquePrefix(_ test: String = #function) -> String {
        let name = test.prefix(while: { $0 != "(" })
        return "cairn-test:\(name):\(UInt64.random(in: 0...UInt64.max)):"
    }

    static func configuration(
        poolSize: Int = 4, clientName: String? = nil, database: Int? = nil
    ) throws -> RedisConfiguration {
        var url = try url()
        if let database { url.database = database }
        return RedisConfiguration(url: url, poolSize: poolSize, clientName: clientName)
    }

    static let logger = Logger(label: "cairn.redis.tests")

    /// Runs `body` with a connected client and a fresh key prefix, then shuts the client down.
    static func withClient<T>(
        poolSize: Int = 4, clientName: String? = nil, database: Int? = nil,
        test: String = #function,
        _ body: (RedisClient, String) async throws -> T
    ) async throws -> T {
        let configuration = try configuration(poolSize: poolSize, clientName: clientName, database: database)
        let client = RedisClient(configuration: configuration, logger: logger)
        do {
            try await client.connect()
            let result = try await body(client, uniquePrefix(test))
            await client.shutdown()
            return result
        } catch {
            await client.shutdown()
            throw error
        }
    }

    struct TimedOut: Error, CustomStringConvertible {
        var what: String
        var description: String { "timed out waiting for \(what)" }
    }

    /// Polls `condition` until it returns a value, failing after `timeout`.
    static func eventually<T>(
        _ what: String, timeout: Duration = .seconds(10), _ condition: () async throws -> T?
    ) async throws -> T {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while clock.now < deadline {
            if let value = try await condition() { return value }
            try await Task.sleep(for: .milliseconds(10))
        }
        throw TimedOut(what: what)
    }

    /// `CLIENT LIST` as one dictionary per connection (`id`, `name`, `flags`, `cmd`, ...).
    static func clientList(_ client: RedisClient) async throws -> [[String: String]] {
        let reply = try await client.send(["CLIENT", "LIST"])
        let text = try #require(reply.string)
        return text.split(whereSeparator: \.isNewline).map { line in
            var fields: [String: String] = [:]
            for pair in line.split(separator: " ") {
                guard let equals = pair.firstIndex(of: "=") else { continue }
                fields[String(pair[..<equals])] = String(pair[equals...].dropFirst())
            }
            return fields
        }
    }
}

extension Array where Element == UInt8 {
    var utf8String: String { String(decoding: self, as: UTF8.self) }
}

/// A one-way flag shared between tasks.
final class Flag: Sendable {
    private let value = Atomic<Bool>(false)

    func set() { value.store(true, ordering: .sequentiallyConsistent) }

    var isSet: Bool { value.load(ordering: .sequentiallyConsistent) }
}
