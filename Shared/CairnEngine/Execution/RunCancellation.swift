public import CairnCore
public import Foundation

/// Cancelling a run: from the API, or by a `cancelOn` event. The run ends as Cancelled (its
/// lease token moves on, so an executor in the middle of a call records nothing more), its
/// pauses and timers are disarmed, and `function.cancelled` and `function.finished` are
/// emitted.
public struct RunCancellation: Sendable {
    let store: any RunStore
    let events: any EventSink
    let clock: any WallClock

    public init(store: any RunStore, events: any EventSink, clock: any WallClock) {
        self.store = store
        self.events = events
        self.clock = clock
    }

    /// Cancels `runID`; false when it had already ended.
    public func cancel(_ runID: ULID) async throws -> Bool {
        let now = clock.now
        guard let cancelled = try await store.cancel(runID, now: now) else { return false }
        try await events.emit(SystemEvents.forEnd(
            functionSlug: cancelled.functionSlug, runID: runID, events: cancelled.events, end: .cancelled, now: now))
        return true
    }
}
