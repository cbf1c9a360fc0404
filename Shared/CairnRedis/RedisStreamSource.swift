public import CairnEngine
import Logging

/// `StreamSource` on a Redis consumer group.
///
/// `read` first takes over entries other consumers left pending longer than `reclaimIdle`
/// (`XAUTOCLAIM`; a consumer that died), then reads new ones with `XREADGROUP … BLOCK`. The
/// group is created (with the stream) on first use.
public final class RedisStreamSource: StreamSource {
    let client: RedisClient
    public let stream: String
    public let group: String
    public let consumer: String
    let block: Duration
    let reclaimIdle: Duration
    private let groupReady = GroupFlag()

    public init(client: RedisClient, stream: String, group: String, consumer: String, block: Duration = .milliseconds(500), reclaimIdle: Duration = .seconds(30)) {
        self.client = client
        self.stream = stream
        self.group = group
        self.consumer = consumer
        self.block = block
        self.reclaimIdle = reclaimIdle
    }

    public func read(maximum: Int) async throws -> [StreamDelivery] {
        if await !groupReady.isSet {
            // From the start of the stream: entries written before the group existed are work too.
            _ = try await client.xgroupCreate(stream, group: group, startID: "0")
            await groupReady.set()
        }
        let reclaimed = try await client.xautoclaim(stream, group: group, consumer: consumer, minIdle: reclaimIdle, count: maximum)
        if !reclaimed.entries.isEmpty { return reclaimed.entries.map(Self.delivery) }
        let reads = try await client.xreadgroup(
            group: group, consumer: consumer, streams: [(stream, ">")], count: maximum, block: block)
        return reads.flatMap(\.entries).map(Self.delivery)
    }

    public func acknowledge(_ entryIDs: [String]) async throws {
        _ = try await client.xack(stream, group: group, ids: entryIDs)
    }

    static func delivery(_ entry: RedisStreamEntry) -> StreamDelivery {
        var fields: [String: [UInt8]] = [:]
        for field in entry.fields { fields[field.name] = field.value }
        return StreamDelivery(entryID: entry.id, fields: fields)
    }
}

/// Whether the consumer group is known to exist.
actor GroupFlag {
    private(set) var isSet = false
    func set() { isSet = true }
}

/// `WorkQueue` on the `work` stream: one entry per item, field `item` (the item's JSON), all of
/// a call's items in one pipeline.
public struct RedisWorkQueue: WorkQueue {
    let client: RedisClient
    public let stream: String
    let maximumLength: Int

    public init(client: RedisClient, stream: String, maximumLength: Int = 1_000_000) {
        self.client = client
        self.stream = stream
        self.maximumLength = maximumLength
    }

    public func publish(_ items: [WorkItem]) async throws {
        if items.isEmpty { return }
        let commands: [[RedisArgument]] = items.map { item in
            ["XADD", .string(stream), "MAXLEN", "~", .int(maximumLength), "*", "item", .bytes(item.json.serialized())]
        }
        for result in try await client.pipeline(commands) { _ = try result.get() }
    }
}
