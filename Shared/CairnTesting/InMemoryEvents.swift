public import CairnCore
public import CairnEngine
public import Foundation
import Synchronization

/// An `EventLog` in memory, with the same dedupe semantics as the Postgres one: a key is held
/// until its expiry, then free to claim again. For engine and route tests.
public final class InMemoryEventLog: EventLog {
    private struct State {
        var events: [ULID: AcceptedEvent] = [:]
        var published: Set<ULID> = []
        var routed: Set<ULID> = []
        var keys: [String: (holder: ULID, expires: Date)] = [:]
        var failNextAppend: (any Error)?
        var refusedName: String?
    }

    private let state = Mutex(State())

    /// Creates an empty log.
    public init() {}

    /// Makes the next `append` throw `error` and store nothing.
    public func failNextAppend(with error: any Error) {
        state.withLock { $0.failNextAppend = error }
    }

    /// Makes every `append` holding an event named `name` throw and store nothing, as a
    /// database refuses a whole transaction for one value it cannot store.
    public func refuseEvents(named name: String) {
        state.withLock { $0.refusedName = name }
    }

    struct Refused: Error {}

    /// Every stored event, oldest first.
    public var storedEvents: [AcceptedEvent] {
        state.withLock { $0.events.values.sorted { $0.id < $1.id } }
    }

    public func append(_ events: [AcceptedEvent], dedupeUntil: Date, now: Date) async throws -> [AppendOutcome] {
        try state.withLock { state in
            if let error = state.failNextAppend {
                state.failNextAppend = nil
                throw error
            }
            if let refused = state.refusedName, events.contains(where: { $0.name == refused }) { throw Refused() }
            return events.map { event in
                if let key = event.dedupeKey {
                    if let claim = state.keys[key], claim.expires > now { return .duplicate(of: claim.holder) }
                    state.keys[key] = (event.id, dedupeUntil)
                }
                if state.events[event.id] != nil { return .duplicate(of: event.id) }
                state.events[event.id] = event
                return .stored
            }
        }
    }

    public func markPublished(_ ids: [ULID], at: Date) async throws {
        state.withLock { $0.published.formUnion(ids) }
    }

    public func unpublished(receivedBefore: Date, limit: Int) async throws -> [AcceptedEvent] {
        let cutoff = receivedBefore.unixMilliseconds
        return state.withLock { state in
            Array(state.events.values.filter { !state.published.contains($0.id) && $0.receivedAt < cutoff }
                .sorted { $0.id < $1.id }.prefix(limit))
        }
    }

    public func event(id: ULID) async throws -> AcceptedEvent? {
        state.withLock { $0.events[id] }
    }

    public func events(ids: [ULID]) async throws -> [AcceptedEvent] {
        state.withLock { state in ids.compactMap { state.events[$0] } }
    }

    public func events(named name: String, after: ULID, limit: Int) async throws -> [AcceptedEvent] {
        state.withLock { state in
            Array(state.events.values.filter { $0.name == name && $0.id > after }.sorted { $0.id < $1.id }.prefix(limit))
        }
    }

    public func invokedEvents(correlationIDs: [String]) async throws -> [AcceptedEvent] {
        let wanted = Set(correlationIDs)
        return state.withLock { state in
            state.events.values.filter { event in
                event.name == Invocation.invokedEventName
                    && event.payload["data"]?["_inngest"]?["correlation_id"]?.stringValue.map(wanted.contains) == true
            }
        }
    }

    public func markRouted(_ ids: [ULID]) async throws {
        state.withLock { $0.routed.formUnion(ids) }
    }

    public func unrouted(after: ULID?, limit: Int) async throws -> [AcceptedEvent] {
        state.withLock { state in
            Array(state.events.values.filter { event in !state.routed.contains(event.id) && after.map { event.id > $0 } ?? true }
                .sorted { $0.id < $1.id }.prefix(limit))
        }
    }

    /// Ids of the events marked published.
    public var publishedIDs: Set<ULID> { state.withLock { $0.published } }

    /// Stores events a run store wrote in its own transaction (unpublished, unrouted), once per
    /// internal id.
    func storeCommitted(_ events: [AcceptedEvent]) {
        state.withLock { state in
            for event in events where state.events[event.id] == nil { state.events[event.id] = event }
        }
    }

    /// Stores events as a record only: published and routed already.
    func storeRecords(_ events: [AcceptedEvent]) {
        storeCommitted(events)
        state.withLock { state in
            state.published.formUnion(events.map(\.id))
            state.routed.formUnion(events.map(\.id))
        }
    }

    /// Marks events not routed again (delayed events delivered when due).
    func unmarkRouted(_ ids: [ULID]) {
        state.withLock { $0.routed.subtract(ids) }
    }

    /// The stored event `id`, read without suspending.
    func stored(_ id: ULID) -> AcceptedEvent? {
        state.withLock { $0.events[id] }
    }

    public func events(name: String?, before: ULID?, limit: Int) async throws -> [AcceptedEvent] {
        state.withLock { state in
            Array(state.events.values
                .filter { (name == nil || $0.name == name) && (before == nil || $0.id < before!) }
                .sorted { $0.id > $1.id }.prefix(limit))
        }
    }
}

/// An `EventStream` that records what was published, in order.
public final class RecordingEventStream: EventStream {
    private let published = Mutex<[AcceptedEvent]>([])

    /// Creates an empty recorder.
    public init() {}

    /// Everything published so far, in order (repeats included).
    public var events: [AcceptedEvent] { published.withLock { $0 } }

    public func publish(_ events: [AcceptedEvent]) async throws {
        published.withLock { $0 += events }
    }
}
