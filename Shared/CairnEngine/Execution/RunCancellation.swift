public import CairnCore
public import Foundation

/// Cancelling a run: from the API, or by a `cancelOn` event. In one transaction the run ends
/// as Cancelled (its lease token moves on, so an executor in the middle of a call records
/// nothing more), its pauses, timers and work items are retired, and its `function.cancelled`
/// and `function.finished` events are stored; they are then announced.
public struct RunCancellation: Sendable {
    let store: any RunLog
    let events: any EventSink
    let stamper: EventStamper
    let clock: any WallClock
    let metrics: RunMetrics

    public init(store: any RunLog, events: any EventSink, clock: any WallClock, metrics: RunMetrics = RunMetrics()) {
        self.metrics = metrics
        self.store = store
        self.events = events
        self.stamper = EventStamper()
        self.clock = clock
    }

    /// What a store stores for a run it cancels at `now`: its `function.cancelled` and
    /// `function.finished` events.
    public static func emitter(now: Date, stamper: EventStamper) -> @Sendable (CancelledRun) -> [AcceptedEvent] {
        { run in
            stamper.accept(SystemEvents.forEnd(functionSlug: run.functionSlug, runID: run.runID, events: run.events, end: .cancelled), now: now)
        }
    }

    /// Cancels `runID`; false when it had already ended.
    public func cancel(_ runID: ULID) async throws -> Bool {
        let now = clock.now
        let counted = metrics.counting(Self.emitter(now: now, stamper: stamper), now: now)
        guard let stored = try await store.cancel(runID, now: now, emitting: counted.emit) else { return false }
        counted.report()
        await events.announce(stored)
        return true
    }
}
