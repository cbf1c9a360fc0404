public import CairnCore
public import CairnEngine

/// `EventStream` on a Redis stream (default key `cairn:events`).
///
/// One entry per event, all of a call's entries in one pipeline: fields `id` (the ULID),
/// `name`, `ts` (milliseconds) and `event` (the event JSON as the SDK will see it), so the
/// scheduler matches triggers without reading Postgres. The stream is not trimmed on write (a
/// trim could drop entries the scheduler has not handled yet): the scheduler deletes what it
/// has routed, so the stream holds the backlog. Postgres keeps every event regardless.
public struct RedisEventStream: EventStream {
    let client: RedisClient
    /// The stream key.
    public let key: String

    /// Creates the stream writer: `key` is the full stream name.
    public init(client: RedisClient, key: String) {
        self.client = client
        self.key = key
    }

    public func publish(_ events: [AcceptedEvent]) async throws {
        if events.isEmpty { return }
        let commands: [[RedisArgument]] = events.map { event in
            [
                "XADD", .string(key), "*",
                "id", .string(event.id.description),
                "name", .string(event.name),
                "ts", .integer(event.ts),
                "event", .bytes(event.payload.serialized()),
            ]
        }
        for result in try await client.pipeline(commands) {
            _ = try result.get()
        }
    }
}
