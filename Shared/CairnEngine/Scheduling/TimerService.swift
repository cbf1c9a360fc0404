import CairnCore
public import Foundation
public import Logging
public import ServiceLifecycle

/// Fires durable timers (sleeps, retry backoffs, pause timeouts) when due and publishes the
/// work they hold; delivers events whose `ts` has come to the `events` stream again; fires
/// flow-control deadlines (`FlowScheduler`: debounces, batches, crons, timeouts); and
/// republishes work items a crash left in the outbox.
///
/// Firing is one transaction per batch (`FOR UPDATE SKIP LOCKED`), so two schedulers never
/// fire the same timer; publishing is at least once and the executor dedupes. Postgres is read
/// only when the Redis due index says something is due, and swept once a second regardless,
/// so a lost index delays timers by at most a second and loses none. Between passes the service
/// sleeps until the index's next due time, and never longer than `pollInterval`, which bounds
/// the lag of a timer set by another process to fire sooner than that.
public final class TimerService: Service {
    let store: any TimerStore & WorkOutbox
    let work: any WorkQueue
    let eventLog: any EventLog
    let eventStream: any EventStream
    let index: any TimerIndex
    let flow: FlowScheduler?
    let clock: any WallClock
    let logger: Logger
    /// The longest sleep between looks at the due index.
    let pollInterval: Duration
    /// Outbox entries older than this are republished by the relay pass.
    let relayGrace: TimeInterval = 5
    let batchSize = 500

    public init(
        store: any TimerStore & WorkOutbox, work: any WorkQueue, eventLog: any EventLog, eventStream: any EventStream, index: any TimerIndex,
        flow: FlowScheduler? = nil, clock: any WallClock, pollInterval: Duration = .milliseconds(25), logger: Logger
    ) {
        self.index = index
        self.flow = flow
        self.eventLog = eventLog
        self.eventStream = eventStream
        self.pollInterval = pollInterval
        self.store = store
        self.work = work
        self.clock = clock
        self.logger = logger
    }

    public func run() async throws {
        var lastSweep = ContinuousClock.now - .seconds(2)
        // When the index says the next timer is due; nil when it is empty or unreachable.
        var next: Date?
        await repeatUntilShutdown(logger: logger, failure: "firing timers failed; retrying") {
            let now = clock.now
            let sweep = ContinuousClock.now - lastSweep >= .seconds(1)
            var fired = 0
            // An unreachable index means Postgres is asked every time.
            let due: Bool
            do {
                next = try await index.nextDue()
                due = sweep || next.map { $0 <= now } ?? false
            } catch {
                next = nil
                due = true
            }
            if due {
                fired = try await fireDue() + deliverDueEvents() + (flow?.fireDue(sweep: sweep) ?? 0)
                // Everything due by `now` is fired (or was, by another scheduler).
                if fired < batchSize {
                    try? await index.clearDue(upTo: now)
                    next = try? await index.nextDue()
                }
            }
            if sweep {
                lastSweep = ContinuousClock.now
                _ = try await relayPending()
            }
            if fired < batchSize { try await Task.sleep(for: sleep(until: next, now: clock.now)) }
        }
    }

    /// How long to sleep before the next look: until `next` is due, at most `pollInterval`.
    func sleep(until next: Date?, now: Date) -> Duration {
        guard let next else { return pollInterval }
        let milliseconds = (next.timeIntervalSince(now) * 1_000).rounded(.up)
        return milliseconds <= 0 ? .zero : min(pollInterval, .milliseconds(Int64(min(milliseconds, 1e9))))
    }

    /// Fires what is due now; returns how many.
    public func fireDue() async throws -> Int {
        let items = try await store.fireDueTimers(now: clock.now, limit: batchSize)
        if items.isEmpty { return 0 }
        try await store.publish(items, on: work, now: clock.now)
        return items.count
    }

    /// Publishes the delayed events that are due; returns how many.
    public func deliverDueEvents() async throws -> Int {
        try await store.deliverDueEvents(now: clock.now, limit: batchSize) { ids in
            var events: [AcceptedEvent] = []
            for id in ids {
                if let event = try await self.eventLog.event(id: id) { events.append(event) }
            }
            try await self.eventStream.publish(events)
        }
    }

    /// Publishes outbox work that has waited unpublished longer than `relayGrace` (its writer
    /// died before publishing it, or Redis was down); returns how many.
    public func relayPending() async throws -> Int {
        let items = try await store.unpublishedWork(createdBefore: clock.now.addingTimeInterval(-relayGrace), limit: batchSize)
        try await store.publish(items, on: work, now: clock.now)
        return items.count
    }
}
