public import CairnEngine
import Logging

/// `StreamSource` on a Redis consumer group.
///
/// `read` first takes over entries other consumers left pending longer than `reclaimIdle`
/// (`XAUTOCLAIM`; a consumer that died), then reads new ones with `XREADGROUP … BLOCK`. The
/// group is created (with the stream) on first use, and again whenever Redis answers `NOGROUP`:
/// after a `FLUSHALL` or a failover that lost the streams, the source goes on by itself, and
/// the reconciler refills the new stream from Postgres.
///
/// `acknowledge` acknowledges and deletes the entries in one round trip: with one group per
/// stream, a handled entry is needed by no one, so the stream holds exactly the entries not yet
/// handled and is never trimmed (trimming could drop entries still pending).
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
        do {
            return try await readOnce(maximum: maximum)
        } catch let error as RedisError where error.serverErrorPrefix == "NOGROUP" {
            await groupReady.clear()
            return try await readOnce(maximum: maximum)
        }
    }

    private func readOnce(maximum: Int) async throws -> [StreamDelivery] {
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
        if entryIDs.isEmpty { return }
        let ids = entryIDs.map { RedisArgument.string($0) }
        let results = try await client.pipeline([
            ["XACK", .string(stream), .string(group)] + ids,
            ["XDEL", .string(stream)] + ids,
        ])
        for result in results {
            guard case .failure(let error) = result else { continue }
            // The group is gone with the stream; the next read creates it again.
            guard error.serverErrorPrefix == "NOGROUP" else { throw error }
            await groupReady.clear()
        }
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
    func clear() { isSet = false }
}

/// `WorkQueue` on the `work` stream: one entry per item, field `item` (the item's JSON), all of
/// a call's items in one pipeline. The stream is not trimmed on write: consumers delete what
/// they have handled.
public struct RedisWorkQueue: WorkQueue {
    let client: RedisClient
    public let stream: String

    public init(client: RedisClient, stream: String) {
        self.client = client
        self.stream = stream
    }

    public func publish(_ items: [WorkItem]) async throws {
        if items.isEmpty { return }
        let commands: [[RedisArgument]] = items.map { item in
            ["XADD", .string(stream), "*", "item", .bytes(item.json.serialized())]
        }
        for result in try await client.pipeline(commands) { _ = try result.get() }
    }
}

/// `TransportEpoch` on Redis: the token is the string key `key`; the server's id is the
/// `run_id` field of `INFO server`, which changes when the server restarts or another takes
/// over.
public struct RedisTransportEpoch: TransportEpoch {
    let client: RedisClient
    public let key: String

    public init(client: RedisClient, key: String) {
        self.client = client
        self.key = key
    }

    public func current() async throws -> TransportIdentity {
        let results = try await client.pipeline([["GET", .string(key)], ["INFO", "server"]])
        let token = try RESPDecoding.optionalBytes(try results[0].get(), command: "GET").map { String(decoding: $0, as: UTF8.self) }
        let info = try RESPDecoding.optionalBytes(try results[1].get(), command: "INFO").map { String(decoding: $0, as: UTF8.self) } ?? ""
        let runID = info.split(whereSeparator: \.isNewline).first { $0.hasPrefix("run_id:") }.map { String($0.dropFirst("run_id:".count)) }
        return TransportIdentity(token: token, serverID: runID ?? "")
    }

    public func mark(_ token: String) async throws {
        _ = try await client.send(["SET", .string(key), .string(token)])
    }
}
