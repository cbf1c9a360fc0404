public import CairnCore
public import Foundation

/// Where accepted events are recorded: Postgres in production. The record, with the dedupe
/// keys, is what makes an acknowledged event durable and a duplicate recognisable.
public protocol EventLog: Sendable {
    /// Records `events` in one transaction, unless their dedupe key is already held.
    ///
    /// - Parameters:
    ///   - events: events whose dedupe keys are distinct within the call (the ingestor removes
    ///     repeats inside a batch first).
    ///   - dedupeUntil: when keys claimed by this call expire.
    ///   - now: keys whose expiry is at or before `now` are free to claim again.
    /// - Returns: one outcome per event, in order: `.stored`, or `.duplicate(of:)` the event
    ///   that holds the key. An event whose internal id is already stored (an SDK resending a
    ///   request with the same `x-inngest-event-id-seed`) is `.duplicate(of:)` itself. Nothing
    ///   is written for duplicates.
    /// - Throws: when the transaction failed; then nothing was written.
    func append(_ events: [AcceptedEvent], dedupeUntil: Date, now: Date) async throws -> [AppendOutcome]

    /// Marks events as written to the stream, so the relay leaves them alone.
    func markPublished(_ ids: [ULID], at: Date) async throws

    /// Events not yet marked published that were received before `receivedBefore`, oldest
    /// first, at most `limit`.
    func unpublished(receivedBefore: Date, limit: Int) async throws -> [AcceptedEvent]

    /// The event with internal id `id`, if stored.
    func event(id: ULID) async throws -> AcceptedEvent?

    /// The stored events among `ids`, in one read, in no particular order.
    func events(ids: [ULID]) async throws -> [AcceptedEvent]

    /// Stored events, newest first: those named `name` (any name when nil) with an id below
    /// `before` (from the newest when nil), at most `limit`.
    func events(name: String?, before: ULID?, limit: Int) async throws -> [AcceptedEvent]

    /// Stored events named `name` with an id above `after`, oldest first, at most `limit`: what
    /// a new pause looks back over.
    func events(named name: String, after: ULID, limit: Int) async throws -> [AcceptedEvent]

    /// The stored `inngest/function.invoked` events whose correlation id
    /// (`data._inngest.correlation_id`, `Invocation.correlationID`) is among `correlationIDs`,
    /// in no particular order: what a run's invoke steps sent, to find the runs they started.
    func invokedEvents(correlationIDs: [String]) async throws -> [AcceptedEvent]

    /// Marks events as routed by the scheduler: their runs, resumes and cancels are committed.
    func markRouted(_ ids: [ULID]) async throws

    /// Events not yet routed with an id above `after`, oldest first, at most `limit`: what a
    /// rebuilt `events` stream is filled from.
    func unrouted(after: ULID?, limit: Int) async throws -> [AcceptedEvent]
}

/// What became of one event handed to `EventLog.append`.
public enum AppendOutcome: Sendable, Hashable {
    /// Recorded now.
    case stored
    /// Not recorded: an event accepted within the dedupe window holds the same key.
    case duplicate(of: ULID)
}

/// Where recorded events are announced to the scheduler: the Redis `events` stream.
///
/// Delivery is at least once: the relay may publish an event again after a crash, so the
/// consumers are idempotent by event id.
public protocol EventStream: Sendable {
    /// Appends one entry per event, in order, in as few round trips as the transport allows.
    func publish(_ events: [AcceptedEvent]) async throws
}
