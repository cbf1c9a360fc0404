/// One entry of a Redis stream.
///
/// Contract: `fields` keep the order they were added in; names are UTF-8 text, values raw
/// bytes. An entry read back from a consumer's pending history (`XREADGROUP` with an id other
/// than `>`) whose payload was deleted meanwhile (`XDEL`, trimming) has `isDeleted == true` and
/// no fields.
public struct RedisStreamEntry: Sendable, Equatable, CustomStringConvertible {
    /// The entry id, `<milliseconds>-<sequence>`.
    public var id: String
    /// The field/value pairs, in order.
    public var fields: [(name: String, value: [UInt8])]
    /// Whether the entry's payload no longer exists.
    public var isDeleted: Bool

    /// Creates an entry.
    public init(id: String, fields: [(name: String, value: [UInt8])], isDeleted: Bool = false) {
        self.id = id
        self.fields = fields
        self.isDeleted = isDeleted
    }

    /// The value of the first field named `name`, if any.
    public subscript(_ name: String) -> [UInt8]? {
        fields.first(where: { $0.name == name })?.value
    }

    /// Compares ids, deletion and fields in order.
    public static func == (lhs: RedisStreamEntry, rhs: RedisStreamEntry) -> Bool {
        lhs.id == rhs.id && lhs.isDeleted == rhs.isDeleted && lhs.fields.count == rhs.fields.count
            && zip(lhs.fields, rhs.fields).allSatisfy { $0.name == $1.name && $0.value == $1.value }
    }

    /// The id and field names.
    public var description: String {
        "\(id) [\(fields.map(\.name).joined(separator: ", "))]"
    }
}

/// Entries read from one stream.
public struct RedisStreamEntries: Sendable, Equatable {
    /// The stream's key.
    public var stream: String
    /// The entries, in stream order.
    public var entries: [RedisStreamEntry]

    /// Creates a stream's batch of entries.
    public init(stream: String, entries: [RedisStreamEntry]) {
        self.stream = stream
        self.entries = entries
    }
}

/// The reply of `XAUTOCLAIM`.
public struct RedisAutoClaimResult: Sendable, Equatable {
    /// Where the next scan should start; `0-0` once the whole pending list was scanned.
    public var nextStart: String
    /// The entries now owned by the claiming consumer (delivery count incremented).
    public var entries: [RedisStreamEntry]
    /// Ids that were pending but whose entries no longer exist; Redis 7 removes them from the
    /// pending list. Empty on Redis 6.2.
    public var deletedIDs: [String]

    /// Creates a result.
    public init(nextStart: String, entries: [RedisStreamEntry], deletedIDs: [String]) {
        self.nextStart = nextStart
        self.entries = entries
        self.deletedIDs = deletedIDs
    }
}

/// One consumer of a group, from `XINFO CONSUMERS`.
public struct RedisConsumerInfo: Sendable, Equatable {
    public var name: String
    /// Entries delivered to it and not yet acknowledged.
    public var pending: Int
    /// Milliseconds since it last read from the group (an attempt counts).
    public var idleMilliseconds: Int64

    public init(name: String, pending: Int, idleMilliseconds: Int64) {
        self.name = name
        self.pending = pending
        self.idleMilliseconds = idleMilliseconds
    }
}

/// One consumer group, as `XINFO GROUPS` reports it.
public struct RedisGroupInfo: Sendable, Equatable {
    public var name: String
    /// Entries delivered to the group and not yet acknowledged.
    public var pending: Int
    /// Entries in the stream not yet delivered to the group; nil when Redis cannot tell.
    public var lag: Int64?

    public init(name: String, pending: Int, lag: Int64?) {
        self.name = name
        self.pending = pending
        self.lag = lag
    }

    /// Entries not yet delivered to the group: `lag` when Redis can tell; otherwise, for a
    /// stream whose only group deletes what it acknowledges (Cairn's `events` and `work`), its
    /// length less what is pending. (Redis cannot tell once an entry behind the group's
    /// position was deleted, which acknowledging here always does.)
    public func undelivered(streamLength: Int) -> Int64 {
        lag ?? Int64(max(0, streamLength - pending))
    }
}

/// The summary form of `XPENDING stream group`.
public struct RedisPendingSummary: Sendable, Equatable {
    /// Entries delivered to the group and not yet acknowledged.
    public var count: Int
    /// The smallest pending id; `nil` when nothing is pending.
    public var smallestID: String?
    /// The greatest pending id; `nil` when nothing is pending.
    public var greatestID: String?
    /// Consumers with pending entries and how many each holds.
    public var consumers: [RedisPendingConsumer]

    /// Creates a summary.
    public init(count: Int, smallestID: String?, greatestID: String?, consumers: [RedisPendingConsumer]) {
        self.count = count
        self.smallestID = smallestID
        self.greatestID = greatestID
        self.consumers = consumers
    }
}

/// A consumer and how many pending entries it holds.
public struct RedisPendingConsumer: Sendable, Hashable {
    /// The consumer's name.
    public var name: String
    /// Its pending entries.
    public var count: Int

    /// Creates a consumer count.
    public init(name: String, count: Int) {
        self.name = name
        self.count = count
    }
}

/// One entry of the extended form of `XPENDING`.
public struct RedisPendingEntry: Sendable, Hashable {
    /// The entry id.
    public var id: String
    /// The consumer that holds it.
    public var consumer: String
    /// Time since it was last delivered, in milliseconds.
    public var idleMilliseconds: Int64
    /// How many times it has been delivered (1 after the first read; claims add one).
    public var deliveryCount: Int64

    /// Creates a pending entry.
    public init(id: String, consumer: String, idleMilliseconds: Int64, deliveryCount: Int64) {
        self.id = id
        self.consumer = consumer
        self.idleMilliseconds = idleMilliseconds
        self.deliveryCount = deliveryCount
    }
}

extension RedisClient {
    /// `XADD stream [MAXLEN ~ n] id field value ...`: appends an entry and returns its id.
    ///
    /// - Parameters:
    ///   - id: `*` (default) lets Redis assign the id.
    ///   - fields: at least one pair; values are raw bytes.
    ///   - maxLengthApproximate: if set, trims the stream to about this many entries
    ///     (`MAXLEN ~`, which trims whole macro nodes only, so the length may stay a little above).
    public func xadd(
        _ stream: String, id: String = "*", fields: [(String, [UInt8])], maxLengthApproximate: Int? = nil
    ) async throws -> String {
        var arguments: [RedisArgument] = ["XADD", .string(stream)]
        arguments.reserveCapacity(6 + fields.count * 2)
        if let maxLength = maxLengthApproximate {
            arguments += ["MAXLEN", "~", .int(maxLength)]
        }
        arguments.append(.string(id))
        for (name, value) in fields {
            arguments.append(.string(name))
            arguments.append(.bytes(value))
        }
        return try RESPDecoding.text(try await send(arguments), command: "XADD")
    }

    /// `XADD` with text values; see `xadd(_:id:fields:maxLengthApproximate:)` for the contract.
    public func xadd(
        _ stream: String, id: String = "*", fields: [(String, String)], maxLengthApproximate: Int? = nil
    ) async throws -> String {
        try await xadd(
            stream, id: id, fields: fields.map { ($0.0, Array($0.1.utf8)) }, maxLengthApproximate: maxLengthApproximate)
    }

    /// `XREADGROUP GROUP group consumer COUNT count [BLOCK ms] [NOACK] STREAMS ...`.
    ///
    /// - Parameters:
    ///   - streams: stream keys with the id to read after: `>` for new entries, or an id (e.g.
    ///     `0`) to re-read this consumer's pending entries.
    ///   - count: at most this many entries per stream (bounds the work taken on).
    ///   - block: wait up to this long for new entries (rounded up to whole ms; `.zero` waits
    ///     forever). When set, the read runs on a dedicated connection (see `sendBlocking`);
    ///     `nil` returns at once.
    ///   - noAck: deliver without adding to the pending list.
    /// - Returns: one element per stream that had entries; empty when the block timed out.
    public func xreadgroup(
        group: String, consumer: String, streams: [(name: String, id: String)], count: Int,
        block: Duration? = nil, noAck: Bool = false
    ) async throws -> [RedisStreamEntries] {
        precondition(!streams.isEmpty, "XREADGROUP needs at least one stream")
        var arguments: [RedisArgument] = [
            "XREADGROUP", "GROUP", .string(group), .string(consumer), "COUNT", .int(count),
        ]
        arguments.reserveCapacity(arguments.count + 4 + streams.count * 2)
        if let block {
            arguments += ["BLOCK", .integer(block.roundedUpMilliseconds)]
        }
        if noAck { arguments.append("NOACK") }
        arguments.append("STREAMS")
        for stream in streams { arguments.append(.string(stream.name)) }
        for stream in streams { arguments.append(.string(stream.id)) }
        let reply: RESPValue
        if let block {
            reply = try await sendBlocking(arguments, blockingFor: block == .zero ? nil : block)
        } else {
            reply = try await send(arguments)
        }
        return try RESPDecoding.streamReads(reply, command: "XREADGROUP")
    }

    /// `XREAD COUNT count BLOCK ms STREAMS stream id`: entries after `id` in one stream, with no
    /// consumer group (each reader keeps its own cursor). Waits up to `block` (on a dedicated
    /// connection) when there are none.
    public func xread(_ stream: String, after id: String, count: Int, block: Duration) async throws -> [RedisStreamEntry] {
        let arguments: [RedisArgument] = [
            "XREAD", "COUNT", .int(count), "BLOCK", .integer(block.roundedUpMilliseconds), "STREAMS", .string(stream), .string(id),
        ]
        let reply = try await sendBlocking(arguments, blockingFor: block)
        return try RESPDecoding.streamReads(reply, command: "XREAD").first?.entries ?? []
    }

    /// `XACK stream group id ...`: acknowledges entries; returns how many were pending.
    public func xack(_ stream: String, group: String, ids: [String]) async throws -> Int {
        if ids.isEmpty { return 0 }
        var arguments: [RedisArgument] = ["XACK", .string(stream), .string(group)]
        arguments.reserveCapacity(3 + ids.count)
        for id in ids { arguments.append(.string(id)) }
        return try RESPDecoding.int(try await send(arguments), command: "XACK")
    }

    /// `XAUTOCLAIM stream group consumer min-idle start COUNT count`: takes over entries that
    /// have been pending longer than `minIdle` (rounded up to whole ms) from any consumer.
    ///
    /// Scan the whole pending list by passing each result's `nextStart` back until it is `0-0`.
    public func xautoclaim(
        _ stream: String, group: String, consumer: String, minIdle: Duration, start: String = "0-0", count: Int
    ) async throws -> RedisAutoClaimResult {
        let reply = try await send([
            "XAUTOCLAIM", .string(stream), .string(group), .string(consumer),
            .integer(minIdle.roundedUpMilliseconds), .string(start), "COUNT", .int(count),
        ])
        return try RESPDecoding.autoClaim(reply)
    }

    /// `XPENDING stream group`: the summary of the group's pending entries.
    public func xpending(_ stream: String, group: String) async throws -> RedisPendingSummary {
        try RESPDecoding.pendingSummary(try await send(["XPENDING", .string(stream), .string(group)]))
    }

    /// `XPENDING stream group [IDLE ms] start end count [consumer]`: pending entries one by one.
    ///
    /// - Parameters:
    ///   - start, end: id range, inclusive; `-` and `+` (defaults) mean the whole list.
    ///   - minIdle: only entries idle at least this long.
    ///   - consumer: only this consumer's entries.
    public func xpending(
        _ stream: String, group: String, start: String = "-", end: String = "+", count: Int,
        consumer: String? = nil, minIdle: Duration? = nil
    ) async throws -> [RedisPendingEntry] {
        var arguments: [RedisArgument] = ["XPENDING", .string(stream), .string(group)]
        if let minIdle {
            arguments += ["IDLE", .integer(minIdle.roundedUpMilliseconds)]
        }
        arguments += [.string(start), .string(end), .int(count)]
        if let consumer { arguments.append(.string(consumer)) }
        return try RESPDecoding.pendingEntries(try await send(arguments))
    }

    /// `XGROUP CREATE stream group id [MKSTREAM]`: creates a consumer group.
    ///
    /// - Parameters:
    ///   - startID: `$` (default) delivers only entries added from now on; `0` delivers the
    ///     whole stream.
    ///   - makeStream: create an empty stream if the key does not exist (default true).
    ///   - ignoreExisting: if the group already exists, return `false` instead of throwing the
    ///     `BUSYGROUP` error (default true).
    /// - Returns: `true` if the group was created.
    @discardableResult
    public func xgroupCreate(
        _ stream: String, group: String, startID: String = "$", makeStream: Bool = true,
        ignoreExisting: Bool = true
    ) async throws -> Bool {
        var arguments: [RedisArgument] = ["XGROUP", "CREATE", .string(stream), .string(group), .string(startID)]
        if makeStream { arguments.append("MKSTREAM") }
        do {
            _ = try await send(arguments)
            return true
        } catch let error as RedisError where ignoreExisting && error.serverErrorPrefix == "BUSYGROUP" {
            return false
        }
    }

    /// `XINFO GROUPS stream`: the stream's consumer groups.
    public func xinfoGroups(_ stream: String) async throws -> [RedisGroupInfo] {
        try RESPDecoding.groups(try await send(["XINFO", "GROUPS", .string(stream)]))
    }

    /// `XINFO CONSUMERS stream group`: the group's consumers.
    public func xinfoConsumers(_ stream: String, group: String) async throws -> [RedisConsumerInfo] {
        try RESPDecoding.consumers(try await send(["XINFO", "CONSUMERS", .string(stream), .string(group)]))
    }

    /// `XGROUP DELCONSUMER stream group consumer`: removes a consumer; returns how many entries
    /// it still had pending (those are dropped from the group's pending list).
    @discardableResult
    public func xgroupDelConsumer(_ stream: String, group: String, consumer: String) async throws -> Int {
        try RESPDecoding.int(
            try await send(["XGROUP", "DELCONSUMER", .string(stream), .string(group), .string(consumer)]), command: "XGROUP DELCONSUMER")
    }

    /// `XLEN stream`: the number of entries (0 if the key does not exist).
    public func xlen(_ stream: String) async throws -> Int {
        try RESPDecoding.int(try await send(["XLEN", .string(stream)]), command: "XLEN")
    }

    /// `XDEL stream id ...`: deletes entries; returns how many existed.
    public func xdel(_ stream: String, ids: [String]) async throws -> Int {
        if ids.isEmpty { return 0 }
        return try RESPDecoding.int(
            try await send(["XDEL", .string(stream)] + ids.map { .string($0) }), command: "XDEL")
    }
}
