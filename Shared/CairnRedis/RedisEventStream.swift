public import CairnCore
public import CairnEngine

/// `EventStream` on a Redis stream (default key `cairn:events`).
///
/// One entry per event, all of a call's entries in one pipeline: fields `id` (the ULID),
/// `name`, `ts` (milliseconds) and `event` (the event JSON as the SDK will see it), so the
/// scheduler matches triggers without reading Postgres. `MAXLEN ~` bounds the stream; Postgres
/// keeps every event regardless.
public struct RedisEventStream: EventStream {
    let client: RedisClient
    /// The stream key.
    public let key: String
    let maximumLength: Int

    /// Creates the stream writer: `key` is the full stream name, `maximumLength` the
    /// approximate bound kept by `XADD MAXLEN ~`.
    public init(client: RedisClient, key: String, maximumLength: Int) {
        self.client = client
        self.key = key
        self.maximumLength = maximumLength
    }

    public func publish(_ events: [AcceptedEvent]) async throws {
        if events.isEmpty { return }
        let commands: [[RedisArgument]] = events.map { event in
            [
                "XADD", .string(key), "MAXLEN", "~", .int(maximumLength), "*",
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
