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

    public func nextDue() async throws -> Date? {
        let first = try await client.zrangebyscoreWithScores(key, min: .negativeInfinity, max: .positiveInfinity, limit: (0, 1))
        return first.first.map { Date(timeIntervalSince1970: $0.score / 1_000) }
    }

    public func clearDue(upTo now: Date) async throws {
        _ = try await client.send(["ZREMRANGEBYSCORE", .string(key), "-inf", .double(now.timeIntervalSince1970 * 1_000)])
    }
}
