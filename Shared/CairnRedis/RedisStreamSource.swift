public import CairnEngine
import Logging
import Synchronization

/// `StreamSource` on a Redis consumer group.
///
/// `read` first takes over entries other consumers left pending longer than `reclaimIdle`
/// (`XAUTOCLAIM`; a consumer that died), then reads new ones with `XREADGROUP … BLOCK`. The
/// group is created (with the stream) on first use, and again whenever Redis answers `NOGROUP`:
/// after a `FLUSHALL` or a failover that lost the streams, the source goes on by itself, and
/// the reconciler refills the new stream from Postgres.
///
/// Every `sweepInterval` (10 minutes), a read also removes the group's consumers that have held
/// nothing and read nothing for `consumerIdleLimit` (1 hour): the names of dead processes.
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
    let consumerIdleLimit: Duration = .seconds(3_600)
    let sweepInterval: Duration = .seconds(600)
    private let groupReady = GroupFlag()
    private let lastSweep = Mutex<ContinuousClock.Instant?>(nil)

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
        let now = ContinuousClock.now
        let sweepDue = lastSweep.withLock { last in
            guard last.map({ now - $0 >= sweepInterval }) ?? true else { return false }
            last = now
            return true
        }
        // Best effort: a failed sweep is tried again at the next interval.
        if sweepDue { _ = try? await removeIdleConsumers(idleFor: consumerIdleLimit) }
        let reclaimed = try await client.xautoclaim(stream, group: group, consumer: consumer, minIdle: reclaimIdle, count: maximum)
        if !reclaimed.entries.isEmpty { return reclaimed.entries.map(Self.delivery) }
        let reads = try await client.xreadgroup(
            group: group, consumer: consumer, streams: [(stream, ">")], count: maximum, block: block)
        return reads.flatMap(\.entries).map(Self.delivery)
    }

    /// Removes the group's consumers that hold no pending entry and have not read for
    /// `idleFor`: the names of processes that died or were replaced, which would otherwise stay
    /// in the group for ever. A consumer with pending entries is kept whatever its age (removing
    /// it would drop them). Returns the names removed.
    @discardableResult
    public func removeIdleConsumers(idleFor: Duration) async throws -> [String] {
        let limit = idleFor.roundedUpMilliseconds
        var removed: [String] = []
        for other in try await client.xinfoConsumers(stream, group: group)
        where other.name != consumer && other.pending == 0 && other.idleMilliseconds >= limit {
            try await client.xgroupDelConsumer(stream, group: group, consumer: other.name)
            removed.append(other.name)
        }
        return removed
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
