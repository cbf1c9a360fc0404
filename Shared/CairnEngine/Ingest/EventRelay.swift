import CairnCore
public import Foundation
public import Logging
public import ServiceLifecycle

/// Publishes events that were committed but never marked published — the other half of the
/// outbox: a crash between commit and `XADD` (or a Redis outage) is healed here.
///
/// Every `interval`, events received more than `grace` ago and still unmarked are published in
/// order, `batchSize` at a time, then marked. Replicas may race on the same events; consumers are
/// idempotent by event id, so a double publish is harmless.
public final class EventRelay: Service, Sendable {
    let log: any EventLog
    let stream: any EventStream
    let clock: any WallClock
    let interval: Duration
    let grace: Duration
    let batchSize: Int
    let logger: Logger

    /// Creates the relay: by default every 1 s, for events unmarked for 5 s, 1,000 at a time.
    public init(
        log: any EventLog, stream: any EventStream, clock: any WallClock, interval: Duration = .seconds(1),
        grace: Duration = .seconds(5), batchSize: Int = 1_000, logger: Logger
    ) {
        self.log = log
        self.stream = stream
        self.clock = clock
        self.interval = interval
        self.grace = grace
        self.batchSize = batchSize
        self.logger = logger
    }

    /// Publishes and marks every overdue event; returns how many it published.
    @discardableResult
    public func publishOverdue() async throws -> Int {
        var total = 0
        while true {
            let cutoff = clock.now - grace
            let events = try await log.unpublished(receivedBefore: cutoff, limit: batchSize)
            if events.isEmpty { return total }
            try await stream.publish(events)
            try await log.markPublished(events.map(\.id), at: clock.now)
            total += events.count
            if events.count < batchSize { return total }
        }
    }

    /// Runs `publishOverdue()` every `interval` until graceful shutdown.
    public func run() async throws {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            do {
                let count = try await publishOverdue()
                if count > 0 { logger.info("relayed unpublished events", metadata: ["events": "\(count)"]) }
            } catch {
                logger.warning("event relay pass failed", metadata: ["error": "\(error)"])
            }
            try? await Task.sleep(for: interval)
        }
    }
}

extension Date {
    static func - (date: Date, duration: Duration) -> Date {
        date.addingTimeInterval(-duration.timeInterval)
    }

    static func + (date: Date, duration: Duration) -> Date {
        date.addingTimeInterval(duration.timeInterval)
    }
}

extension Duration {
    /// The duration in seconds, as a `TimeInterval`.
    public var timeInterval: TimeInterval {
        let (seconds, attoseconds) = components
        return TimeInterval(seconds) + TimeInterval(attoseconds) / 1e18
    }
}
