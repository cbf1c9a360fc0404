public import CairnCore
public import CairnEngine
public import Foundation
import Synchronization

/// A stream with one consumer group, in memory, delivering at least once as Redis does: an
/// entry read and not acknowledged stays pending until `redeliverPending()` (what `XAUTOCLAIM`
/// does after the idle time) or `flush()` (what a `FLUSHALL` does) .
public final class InMemoryStream: StreamSource, WorkQueue, EventStream {
    private struct State {
        var entries: [(id: String, fields: [String: [UInt8]])] = []
        var delivered: Set<String> = []
        var next = 1
    }

    private let state = Mutex(State())

    public init() {}

    /// Entries not yet acknowledged, delivered or not.
    public var backlog: Int { state.withLock { $0.entries.count } }

    /// Makes every delivered, unacknowledged entry deliverable again.
    public func redeliverPending() {
        state.withLock { $0.delivered.removeAll() }
    }

    /// Loses every entry, delivered or not.
    public func flush() {
        state.withLock { state in
            state.entries.removeAll()
            state.delivered.removeAll()
        }
    }

    func append(_ fields: [[String: [UInt8]]]) {
        state.withLock { state in
            for entry in fields {
                state.entries.append(("\(state.next)-0", entry))
                state.next += 1
            }
        }
    }

    public func read(maximum: Int) async throws -> [StreamDelivery] {
        state.withLock { state in
            var out: [StreamDelivery] = []
            for entry in state.entries where !state.delivered.contains(entry.id) {
                guard out.count < maximum else { break }
                state.delivered.insert(entry.id)
                out.append(StreamDelivery(entryID: entry.id, fields: entry.fields))
            }
            return out
        }
    }

    public func acknowledge(_ entryIDs: [String]) async throws {
        let ids = Set(entryIDs)
        state.withLock { state in
            state.entries.removeAll { ids.contains($0.id) }
            state.delivered.subtract(ids)
        }
    }

    public func publish(_ items: [WorkItem]) async throws {
        append(items.map { ["item": $0.json.serialized()] })
    }

    public func publish(_ events: [AcceptedEvent]) async throws {
        append(events.map { event in
            [
                "id": Array(event.id.description.utf8), "name": Array(event.name.utf8), "ts": Array(String(event.ts).utf8),
                "event": event.payload.serialized(),
            ]
        })
    }
}

/// A `TimerIndex` in memory.
public final class InMemoryTimerIndex: TimerIndex {
    private let timers = Mutex([String: Date]())

    public init() {}

    /// The timers held, by id.
    public var entries: [String: Date] { timers.withLock { $0 } }

    /// Loses every entry.
    public func flush() {
        timers.withLock { $0.removeAll() }
    }

    public func schedule(_ entries: [(id: String, due: Date)]) async throws {
        timers.withLock { timers in
            for entry in entries { timers[entry.id] = entry.due }
        }
    }

    public func nextDue() async throws -> Date? {
        timers.withLock { $0.values.min() }
    }

    public func clearDue(upTo now: Date) async throws {
        timers.withLock { timers in timers = timers.filter { $0.value > now } }
    }
}

/// A `TransportEpoch` in memory; `lose()` is a `FLUSHALL`, `failOver()` another server.
public final class InMemoryTransportEpoch: TransportEpoch {
    private let identity = Mutex(TransportIdentity(token: nil, serverID: "server-1"))

    public init() {}

    /// Forgets the token, as a flushed Redis does.
    public func lose() {
        identity.withLock { $0.token = nil }
    }

    /// Becomes another server that holds the same token (a replica with a stale copy).
    public func failOver() {
        identity.withLock { $0.serverID += "'" }
    }

    public func current() async throws -> TransportIdentity {
        identity.withLock { $0 }
    }

    public func mark(_ token: String) async throws {
        identity.withLock { $0.token = token }
    }
}

/// An `EventSink` in memory: `emit` stores events in `log` (with its dedupe rules) and
/// publishes the new ones on `stream`; `announce` publishes and marks events already stored.
public final class InMemoryEventSink: EventSink {
    let log: InMemoryEventLog
    let stream: InMemoryStream
    let clock: any WallClock
    private let ids = Mutex(ULIDGenerator())

    public init(log: InMemoryEventLog, stream: InMemoryStream, clock: any WallClock) {
        self.log = log
        self.stream = stream
        self.clock = clock
    }

    public func emit(_ events: [Event]) async throws {
        let now = clock.now
        let accepted = ids.withLock { generator in
            events.map { AcceptedEvent($0, id: generator.next(now: now), receivedAt: now.unixMilliseconds) }
        }
        let outcomes = try await log.append(accepted, dedupeUntil: now.addingTimeInterval(86_400), now: now)
        await announce(accepted.indices.filter { outcomes[$0] == .stored }.map { accepted[$0] })
    }

    public func announce(_ events: [AcceptedEvent]) async {
        try? await stream.publish(events)
        try? await log.markPublished(events.map(\.id), at: clock.now)
    }
}
