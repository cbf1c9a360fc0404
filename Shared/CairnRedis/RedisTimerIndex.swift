public import CairnEngine
public import Foundation

/// `TimerIndex` on a Redis sorted set: member = timer id, score = due time in milliseconds.
public struct RedisTimerIndex: TimerIndex {
    let client: RedisClient
    public let key: String

    public init(client: RedisClient, key: String) {
        self.client = client
        self.key = key
    }

    public func schedule(_ timers: [(id: String, due: Date)]) async throws {
        _ = try await client.zadd(key, timers.map { (score: ($0.due.timeIntervalSince1970 * 1_000).rounded(.up), member: $0.id) })
    }

    public func hasDue(now: Date) async throws -> Bool {
        let due = try await client.zrangebyscore(key, min: .negativeInfinity, max: .inclusive(now.timeIntervalSince1970 * 1_000), limit: (0, 1))
        return !due.isEmpty
    }

    public func clearDue(upTo now: Date) async throws {
        _ = try await client.send(["ZREMRANGEBYSCORE", .string(key), "-inf", .double(now.timeIntervalSince1970 * 1_000)])
    }
}
