public import CairnCore
public import Foundation
public import Logging
import Synchronization

/// Matches events to pauses, one way for every path that does it: the router (each new event
/// against the open pauses), the writer of a new pause (looking back over events stored while
/// it was written), and the reconciler (a look-back a crash interrupted).
///
/// Why a look-back: the router matches an event against the pauses committed when it reads
/// them. A pause committed a moment later was not there; but an event is stored before it is
/// published, so every event the router missed is in the event log by the time the pause's
/// transaction has committed, and a scan from the pause's lower bound finds it. Matching twice
/// is harmless: a pause is consumed once.
public struct PauseMatcher: Sendable {
    let pauses: any PauseStore
    let cancellation: RunCancellation
    let eventLog: any EventLog
    let work: any WorkQueue
    let outbox: any WorkOutbox
    let clock: any WallClock
    let logger: Logger
    let expressions = ExpressionCache()
    /// How far ahead an event's `ts` may be and still be handled at once: 1 s. Later events are
    /// held on a timer and routed when their time comes.
    public static let futureTolerance: TimeInterval = 1
    /// Events read per page while looking back.
    let pageSize = 500

    /// A matcher over `store`'s pauses (cancels go through `store` too, resumes through its
    /// outbox), looking back in `eventLog` and publishing resumes on `work`.
    public init(
        store: any RunStore, events: any EventSink, eventLog: any EventLog, work: any WorkQueue, clock: any WallClock,
        metrics: RunMetrics = RunMetrics(), logger: Logger
    ) {
        self.pauses = store
        self.cancellation = RunCancellation(store: store, events: events, clock: clock, metrics: metrics)
        self.eventLog = eventLog
        self.work = work
        self.outbox = store
        self.clock = clock
        self.logger = logger
    }

    /// Whether `event` (internal id `eventID`) matches `pause`: late enough, and its
    /// expression holds. An expression that fails to compile or evaluate matches nothing.
    public func matches(_ pause: Pause, event: JSONValue, eventID: ULID, now: Date) -> Bool {
        guard pause.admits(eventID) else { return false }
        guard let source = pause.expression else { return true }
        let activation = ExpressionActivation(event: pause.triggerEvent, async: event, nowMilliseconds: now.unixMilliseconds)
        do {
            return try expressions.compiled(source).evaluateBool(activation)
        } catch {
            logger.notice("pause expression failed; the event does not match", metadata: ["run": "\(pause.runID)", "error": "\(error)"])
            return false
        }
    }

    /// Resumes (wait, invoke) or cancels (cancel) the pause's run for `event`. Returns the
    /// resume work to publish; nil when the pause was already consumed, or for a cancel.
    public func apply(_ pause: Pause, event: JSONValue, eventID: ULID, now: Date) async throws -> WorkItem? {
        switch pause.kind {
        case .wait, .invoke:
            let result = pause.kind == .wait ? event : Invocation.result(ofFinished: event)
            let item = WorkItem(runID: pause.runID, reason: .resume, call: SDKCall(stepID: pause.stepID, attempt: 0))
            return try await pauses.resume(pause, eventID: eventID, result: result, resume: item, now: now) ? item : nil
        case .cancel:
            if try await cancellation.cancel(pause.runID) {
                logger.info("run cancelled by an event", metadata: ["run": "\(pause.runID)", "event": "\(eventID)"])
            }
            return nil
        }
    }

    /// Matches `event` against `open` pauses; returns the resume work to publish.
    public func route(_ event: JSONValue, eventID: ULID, against open: [Pause], now: Date) async throws -> [WorkItem] {
        var resumed: [WorkItem] = []
        for pause in open where matches(pause, event: event, eventID: eventID, now: now) {
            if let item = try await apply(pause, event: event, eventID: eventID, now: now) { resumed.append(item) }
        }
        return resumed
    }

    /// Looks back over the events stored since each pause's lower bound: per event name, one
    /// scan from the lowest bound, oldest first, in which each pause takes the first event
    /// that matches it. Then notes those pauses as looked back. Pauses without a lower bound
    /// need nothing. Resumes are published at once (their outbox rows make that durable).
    /// Returns how many pauses an event matched.
    @discardableResult
    public func lookBack(_ candidates: [Pause]) async throws -> Int {
        let bounded = candidates.filter(\.needsLookBack)
        if bounded.isEmpty { return 0 }
        let now = clock.now
        let latestHandled = now.addingTimeInterval(Self.futureTolerance).unixMilliseconds
        var matched = 0
        var resumed: [WorkItem] = []
        for (name, named) in Dictionary(grouping: bounded, by: \.eventName) {
            var open = named
            guard var after = named.compactMap(\.eventsAfter).min() else { continue }
            while !open.isEmpty {
                let page = try await eventLog.events(named: name, after: after, limit: pageSize)
                // An event dated ahead is routed when its time comes.
                for event in page where event.ts <= latestHandled {
                    for pause in open where matches(pause, event: event.payload, eventID: event.id, now: now) {
                        if let item = try await apply(pause, event: event.payload, eventID: event.id, now: now) { resumed.append(item) }
                        open.removeAll { $0.id == pause.id }
                        matched += 1
                    }
                }
                guard page.count == pageSize, let last = page.last else { break }
                after = last.id
            }
        }
        try await outbox.publish(resumed, on: work, now: now)
        try await pauses.markLookedBack(bounded)
        return matched
    }
}

/// Compiled pause expressions by source text, bounded: an invoke's expression embeds a unique
/// correlation id, so the cache is emptied when it reaches `capacity` rather than growing.
final class ExpressionCache: Sendable {
    private let cache = Mutex([String: CairnCore.Expression]())
    let capacity = 4_096

    func compiled(_ source: String) throws -> CairnCore.Expression {
        if let cached = cache.withLock({ $0[source] }) { return cached }
        let expression = try CairnCore.Expression(compiling: source)
        cache.withLock { cache in
            if cache.count >= capacity { cache.removeAll(keepingCapacity: true) }
            cache[source] = expression
        }
        return expression
    }
}
