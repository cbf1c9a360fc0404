public import CairnCore
public import CairnEngine
public import Foundation

/// `ConnectState` in Redis (docs/connect.md, "Routing"). Keys, under `prefix`:
///
/// | key | type | holds |
/// |---|---|---|
/// | `connect:gateways` | hash | gateway id → JSON record (stale ones are skipped, then pruned) |
/// | `connect:conn:{connection}` | string | JSON `ConnectWorker`, expiring without heartbeats |
/// | `connect:app:{app}`, `connect:fn:{slug}` | set | connection ids (pruned when the record lapsed) |
/// | `connect:disconnects:{app}` | list | the last 50 disconnects, JSON |
/// | `connect:slots:{instance}` | zset | request id → lease expiry (ms): a worker's busy slots |
/// | `connect:lease:{request}` | hash | lease, previous lease, executor, instance, expiry |
/// | `connect:reply:{request}` | string | the buffered `SDKResponse` (protobuf), set once |
/// | `gw:{gateway}`, `reply:{executor}` | stream | a gateway's and an executor's inbox |
public struct RedisConnectState: ConnectState {
    let client: RedisClient
    let prefix: String
    /// How long an inbox or a lease outlives its last write, so a dead process strands nothing.
    static let inboxLifetime: Duration = .seconds(600)

    public init(client: RedisClient, prefix: String) {
        self.client = client
        self.prefix = prefix
    }

    var gatewaysKey: String { prefix + "connect:gateways" }
    func connectionKey(_ id: String) -> String { prefix + "connect:conn:" + id }
    func appKey(_ app: String) -> String { prefix + "connect:app:" + app }
    func functionKey(_ slug: String) -> String { prefix + "connect:fn:" + slug }
    func disconnectsKey(_ app: String) -> String { prefix + "connect:disconnects:" + app }
    func slotsKey(_ instance: String) -> String { prefix + "connect:slots:" + instance }
    func leaseKey(_ request: String) -> String { prefix + "connect:lease:" + request }
    func replyKey(_ request: String) -> String { prefix + "connect:reply:" + request }
    func gatewayInbox(_ id: String) -> String { prefix + "gw:" + id }
    func executorInbox(_ id: String) -> String { prefix + "reply:" + id }

    // MARK: Gateways

    public func heartbeat(gateway: ConnectGateway, ttl: Duration) async throws {
        _ = try await client.hset(gatewaysKey, fields: [(gateway.id, Array(gateway.json.serialized()))])
    }

    public func gateways() async throws -> [ConnectGateway] {
        try await client.hgetall(gatewaysKey).compactMap { try? ConnectGateway(json: JSONValue(parsing: $0.value)) }
    }

    public func removeGateway(id: String) async throws {
        _ = try await client.hdel(gatewaysKey, fields: [id])
    }

    // MARK: Connections

    public func upsert(workers: [ConnectWorker], ttl: Duration) async throws {
        var commands: [[RedisArgument]] = []
        for worker in workers {
            commands.append(["SET", .string(connectionKey(worker.connectionID)), .bytes(worker.json.serialized()), "PX", .integer(ttl.roundedUpMilliseconds)])
            for app in worker.apps { commands.append(["SADD", .string(appKey(app)), .string(worker.connectionID)]) }
            for slug in worker.functions.keys { commands.append(["SADD", .string(functionKey(slug)), .string(worker.connectionID)]) }
        }
        guard !commands.isEmpty else { return }
        try Self.check(try await client.pipeline(commands))
    }

    public func remove(worker: ConnectWorker, reason: String, at: Date) async throws {
        let disconnect = ConnectDisconnect(
            connectionID: worker.connectionID, instanceID: worker.instanceID, gatewayID: worker.gatewayID, reason: reason, at: at)
        var commands: [[RedisArgument]] = [["DEL", .string(connectionKey(worker.connectionID))]]
        for app in worker.apps {
            commands.append(["SREM", .string(appKey(app)), .string(worker.connectionID)])
            commands.append(["LPUSH", .string(disconnectsKey(app)), .bytes(disconnect.json.serialized())])
            commands.append(["LTRIM", .string(disconnectsKey(app)), 0, 49])
            commands.append(["PEXPIRE", .string(disconnectsKey(app)), .integer(Int64(7 * 24 * 3_600 * 1_000))])
        }
        for slug in worker.functions.keys { commands.append(["SREM", .string(functionKey(slug)), .string(worker.connectionID)]) }
        try Self.check(try await client.pipeline(commands))
    }

    public func workers(app: String) async throws -> [ConnectWorker] {
        try await members(of: appKey(app))
    }

    public func workers(function slug: String) async throws -> [ConnectWorker] {
        try await members(of: functionKey(slug))
    }

    /// The live records of the connections in the set `key`; ids whose record lapsed (the
    /// worker or its gateway died without removing it) are dropped from the set.
    func members(of key: String) async throws -> [ConnectWorker] {
        let ids = try RESPDecoding.array(try await client.send("SMEMBERS", .string(key)), command: "SMEMBERS").compactMap(\.string)
        if ids.isEmpty { return [] }
        let records = try RESPDecoding.array(
            try await client.send([RedisArgument.string("MGET")] + ids.map { .string(connectionKey($0)) }), command: "MGET")
        var workers: [ConnectWorker] = []
        var lapsed: [RedisArgument] = []
        for (id, record) in zip(ids, records) {
            if let bytes = record.bytes, let worker = try? ConnectWorker(json: JSONValue(parsing: bytes)) {
                workers.append(worker)
            } else {
                lapsed.append(.string(id))
            }
        }
        if !lapsed.isEmpty { _ = try await client.send(["SREM", .string(key)] + lapsed) }
        return workers
    }

    public func disconnects(app: String) async throws -> [ConnectDisconnect] {
        try RESPDecoding.array(try await client.send("LRANGE", .string(disconnectsKey(app)), 0, 49), command: "LRANGE")
            .compactMap { $0.bytes.flatMap { try? ConnectDisconnect(json: JSONValue(parsing: $0)) } }
    }

    // MARK: Capacity and leases

    /// Drops lapsed slots, checks the limit, takes a slot, writes the lease and, when a
    /// connection is named (ARGV[9]), adds the request to the gateway's inbox (KEYS[3]), in one
    /// step.
    static let assignScript = RedisScript(
        """
        redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
        local limit = tonumber(ARGV[2])
        if limit > 0 and redis.call('ZCARD', KEYS[1]) >= limit then return 0 end
        redis.call('ZADD', KEYS[1], ARGV[7], ARGV[3])
        redis.call('PEXPIRE', KEYS[1], ARGV[8])
        redis.call('HSET', KEYS[2], 'lease', ARGV[4], 'previous', '', 'executor', ARGV[5], 'instance', ARGV[6], 'expires', ARGV[7])
        redis.call('PEXPIRE', KEYS[2], ARGV[8])
        if ARGV[9] ~= '' then
          redis.call('XADD', KEYS[3], 'MAXLEN', '~', 10000, '*', 'connection', ARGV[9], 'request', ARGV[10])
          redis.call('PEXPIRE', KEYS[3], ARGV[8])
        end
        return 1
        """)

    /// Replaces the current lease (ARGV[1]) with the next (ARGV[2]) while it is unexpired at
    /// ARGV[3]; a repeat of the last extension returns the lease in force.
    static let extendScript = RedisScript(
        """
        local lease = redis.call('HMGET', KEYS[1], 'lease', 'previous', 'expires', 'instance')
        if not lease[1] then return false end
        if lease[1] == ARGV[1] then
          if tonumber(lease[3]) <= tonumber(ARGV[3]) then return false end
          redis.call('HSET', KEYS[1], 'lease', ARGV[2], 'previous', ARGV[1], 'expires', ARGV[4])
          redis.call('PEXPIRE', KEYS[1], ARGV[5])
          redis.call('ZADD', ARGV[6] .. lease[4], 'XX', ARGV[4], ARGV[7])
          return ARGV[2]
        end
        if lease[2] == ARGV[1] then return lease[1] end
        return false
        """)

    public func assign(_ lease: ConnectLease, limit: Int?, now: Date, forward: ConnectForward?) async throws -> Bool {
        let reply = try await client.evalsha(
            Self.assignScript, keys: [slotsKey(lease.instanceID), leaseKey(lease.requestID), gatewayInbox(forward?.gatewayID ?? "")],
            args: [
                .integer(now.unixMilliseconds), .int(limit ?? 0), .string(lease.requestID), .string(lease.leaseID.description),
                .string(lease.executorID), .string(lease.instanceID), .integer(Int64(lease.leaseID.milliseconds)),
                .integer(Self.inboxLifetime.roundedUpMilliseconds), .string(forward?.connectionID ?? ""), .bytes(forward?.request ?? []),
            ])
        return reply.int64 == 1
    }

    public func lease(requestID: String) async throws -> ConnectLease? {
        let fields = try RESPDecoding.array(
            try await client.send("HMGET", .string(leaseKey(requestID)), "lease", "executor", "instance"), command: "HMGET")
        guard fields.count == 3, let lease = fields[0].string.flatMap(ULID.init), let executor = fields[1].string, let instance = fields[2].string else {
            return nil
        }
        return ConnectLease(requestID: requestID, leaseID: lease, executorID: executor, instanceID: instance)
    }

    public func extend(requestID: String, current: ULID, next: ULID, now: Date) async throws -> ULID? {
        let reply = try await client.evalsha(
            Self.extendScript, keys: [leaseKey(requestID)],
            args: [
                .string(current.description), .string(next.description), .integer(now.unixMilliseconds), .integer(Int64(next.milliseconds)),
                .integer(Self.inboxLifetime.roundedUpMilliseconds), .string(prefix + "connect:slots:"), .string(requestID),
            ])
        return reply.string.flatMap(ULID.init)
    }

    public func release(requestID: String, instanceID: String) async throws {
        try Self.check(
            try await client.pipeline([
                ["DEL", .string(leaseKey(requestID)), .string(replyKey(requestID))], ["ZREM", .string(slotsKey(instanceID)), .string(requestID)],
            ]))
    }

    // MARK: Requests and replies

    public func nextForwards(gatewayID: String, after cursor: String, timeout: Duration) async throws
        -> (cursor: String, requests: [(connectionID: String, request: [UInt8])])
    {
        let (next, entries) = try await read(gatewayInbox(gatewayID), after: cursor, timeout: timeout)
        return (next, entries.compactMap { entry in
            guard let connection = entry.fields.first(where: { $0.name == "connection" }), let request = entry.fields.first(where: { $0.name == "request" })
            else { return nil }
            return (String(decoding: connection.value, as: UTF8.self), request.value)
        })
    }

    /// Stores the reply if none is (KEYS[1]); then notifies the lease's (KEYS[2]) executor,
    /// whose inbox is ARGV[3] followed by its id, with the reply itself when ARGV[6] is 1.
    static let deliverScript = RedisScript(
        """
        if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 0 end
        local executor = redis.call('HGET', KEYS[2], 'executor')
        if executor then
          local inbox = ARGV[3] .. executor
          if ARGV[6] == '1' then
            redis.call('XADD', inbox, 'MAXLEN', '~', 10000, '*', 'request', ARGV[4], 'notice', 'reply', 'reply', ARGV[1])
          else
            redis.call('XADD', inbox, 'MAXLEN', '~', 10000, '*', 'request', ARGV[4], 'notice', 'reply')
          end
          redis.call('PEXPIRE', inbox, ARGV[5])
        end
        return 1
        """)

    public func deliver(reply: [UInt8], requestID: String, ttl: Duration) async throws -> Bool {
        let stored = try await client.evalsha(
            Self.deliverScript, keys: [replyKey(requestID), leaseKey(requestID)],
            args: [
                .bytes(reply), .integer(ttl.roundedUpMilliseconds), .string(executorInbox("")), .string(requestID),
                .integer(Self.inboxLifetime.roundedUpMilliseconds), .int(reply.count <= ConnectInboxNotice.inlineReplyLimit ? 1 : 0),
            ])
        return stored.int64 == 1
    }

    public func takeReply(requestID: String) async throws -> [UInt8]? {
        try await client.send("GETDEL", .string(replyKey(requestID))).bytes
    }

    /// Notifies the executor of the lease KEYS[1], whose inbox is ARGV[1] followed by its id.
    static let announceScript = RedisScript(
        """
        local executor = redis.call('HGET', KEYS[1], 'executor')
        if not executor then return 0 end
        local inbox = ARGV[1] .. executor
        redis.call('XADD', inbox, 'MAXLEN', '~', 10000, '*', 'request', ARGV[2], 'notice', ARGV[3])
        redis.call('PEXPIRE', inbox, ARGV[4])
        return 1
        """)

    public func announce(requestID: String, _ notice: ConnectNotice) async throws {
        _ = try await client.evalsha(
            Self.announceScript, keys: [leaseKey(requestID)],
            args: [
                .string(executorInbox("")), .string(requestID), .string(notice.rawValue), .integer(Self.inboxLifetime.roundedUpMilliseconds),
            ])
    }

    public func nextNotices(executorID: String, after cursor: String, timeout: Duration) async throws
        -> (cursor: String, notices: [ConnectInboxNotice])
    {
        let (next, entries) = try await read(executorInbox(executorID), after: cursor, timeout: timeout)
        return (next, entries.compactMap { entry in
            guard let request = entry.fields.first(where: { $0.name == "request" }),
                let notice = entry.fields.first(where: { $0.name == "notice" }).flatMap({ ConnectNotice(rawValue: String(decoding: $0.value, as: UTF8.self)) })
            else { return nil }
            return ConnectInboxNotice(
                requestID: String(decoding: request.value, as: UTF8.self), notice: notice, reply: entry.fields.first { $0.name == "reply" }?.value)
        })
    }

    /// Entries after `cursor`. An empty cursor starts at the current millisecond, so the
    /// first read of a new reader sees what is added from now on, and no later read skips any.
    func read(_ stream: String, after cursor: String, timeout: Duration) async throws -> (String, [RedisStreamEntry]) {
        let start = cursor.isEmpty ? "\(Date().unixMilliseconds)-0" : cursor
        let entries = try await client.xread(stream, after: start, count: 100, block: timeout)
        return (entries.last?.id ?? start, entries)
    }

    static func check(_ results: [Result<RESPValue, RedisError>]) throws {
        for result in results { _ = try result.get() }
    }
}
