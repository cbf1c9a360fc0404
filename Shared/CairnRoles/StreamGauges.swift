import CairnEngine
import CairnRedis
import Foundation
import Logging
import Metrics
import ServiceLifecycle

/// `cairn_redis_stream_pending{stream,group}` (entries delivered to the group and not yet
/// acknowledged) and `cairn_redis_stream_lag{stream,group}` (entries not yet delivered to it)
/// for the `events` and `work` streams, sampled every `interval` by the scheduler.
final class StreamGauges: Service {
    let redis: RedisClient
    let streams: [(name: String, key: String)]
    let factory: any MetricsFactory
    let clock: any WallClock
    let logger: Logger
    let interval: Duration

    init(redis: RedisClient, streams: [(name: String, key: String)], factory: any MetricsFactory, clock: any WallClock, logger: Logger,
         interval: Duration = .seconds(5)) {
        self.redis = redis
        self.streams = streams
        self.factory = factory
        self.clock = clock
        self.logger = logger
        self.interval = interval
    }

    func run() async throws {
        await repeatUntilShutdown(logger: logger, failure: "reading the streams' consumer groups failed; retrying") {
            try await self.update()
            try await pauseUntilShutdown(for: self.interval, on: self.clock)
        }
    }

    func update() async throws {
        for stream in streams {
            // A stream not created yet (no entry so far) has no group to report.
            guard let groups = try? await redis.xinfoGroups(stream.key) else { continue }
            let length = try await redis.xlen(stream.key)
            for group in groups {
                let dimensions = [("stream", stream.name), ("group", group.name)]
                Gauge(label: "cairn_redis_stream_pending", dimensions: dimensions, factory: factory).record(group.pending)
                Gauge(label: "cairn_redis_stream_lag", dimensions: dimensions, factory: factory).record(group.undelivered(streamLength: length))
            }
        }
    }
}
