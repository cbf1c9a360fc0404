/// A bound of a sorted-set score range, for `ZRANGEBYSCORE`.
///
/// Integer and float literals are inclusive bounds: `zrangebyscore(key, min: 0, max: 10)`.
public enum RedisScoreBound: Sendable, Hashable, ExpressibleByFloatLiteral, ExpressibleByIntegerLiteral {
    /// Scores `>=`/`<=` this value.
    case inclusive(Double)
    /// Scores `>`/`<` this value (`(value` on the wire).
    case exclusive(Double)
    /// No lower bound (`-inf`).
    case negativeInfinity
    /// No upper bound (`+inf`).
    case positiveInfinity

    /// An inclusive bound.
    public init(floatLiteral value: Double) {
        self = .inclusive(value)
    }

    /// An inclusive bound.
    public init(integerLiteral value: Int64) {
        self = .inclusive(Double(value))
    }

    var argument: RedisArgument {
        switch self {
        case .inclusive(let value): .double(value)
        case .exclusive(let value): .string("(" + value.description)
        case .negativeInfinity: "-inf"
        case .positiveInfinity: "+inf"
        }
    }
}

// MARK: Strings and keys

extension RedisClient {
    /// `SET key value [NX] [PX ms]`.
    ///
    /// - Parameters:
    ///   - onlyIfAbsent: set only if the key does not exist (`NX`).
    ///   - expiresIn: time to live, rounded up to whole milliseconds (`PX`); `nil` keeps the key
    ///     until deleted (and clears an existing TTL).
    /// - Returns: `true` if the value was set; `false` when `NX` found the key present.
    @discardableResult
    public func set(
        _ key: String, value: [UInt8], onlyIfAbsent: Bool = false, expiresIn: Duration? = nil
    ) async throws -> Bool {
        try await set(key, argument: .bytes(value), onlyIfAbsent: onlyIfAbsent, expiresIn: expiresIn)
    }

    /// `SET` with a text value; see `set(_:value:onlyIfAbsent:expiresIn:)`.
    @discardableResult
    public func set(
        _ key: String, value: String, onlyIfAbsent: Bool = false, expiresIn: Duration? = nil
    ) async throws -> Bool {
        try await set(key, argument: .string(value), onlyIfAbsent: onlyIfAbsent, expiresIn: expiresIn)
    }

    private func set(
        _ key: String, argument: RedisArgument, onlyIfAbsent: Bool, expiresIn: Duration?
    ) async throws -> Bool {
        var arguments: [RedisArgument] = ["SET", .string(key), argument]
        if onlyIfAbsent { arguments.append("NX") }
        if let expiresIn {
            arguments += ["PX", .integer(max(1, expiresIn.roundedUpMilliseconds))]
        }
        let reply = try await send(arguments)
        switch reply {
        case .simpleString: return true
        case .null: return false
        default: throw RedisError.unexpected(reply, expected: "OK or nil", command: "SET")
        }
    }

    /// `GET key`: the value, or `nil` if the key does not exist.
    public func get(_ key: String) async throws -> [UInt8]? {
        try RESPDecoding.optionalBytes(try await send(["GET", .string(key)]), command: "GET")
    }

    /// `DEL key ...`: returns how many keys existed. An empty list sends nothing and returns 0.
    @discardableResult
    public func del(_ keys: [String]) async throws -> Int {
        if keys.isEmpty { return 0 }
        return try RESPDecoding.int(try await send(["DEL"] + keys.map { .string($0) }), command: "DEL")
    }

    /// `INCRBY key by`: adds to an integer value (a missing key counts as 0); returns the new value.
    @discardableResult
    public func incrby(_ key: String, by increment: Int64 = 1) async throws -> Int64 {
        try RESPDecoding.int64(try await send(["INCRBY", .string(key), .integer(increment)]), command: "INCRBY")
    }

    /// `PEXPIRE key ms`: sets a time to live (rounded up to whole milliseconds); `false` if the
    /// key does not exist.
    @discardableResult
    public func expire(_ key: String, in duration: Duration) async throws -> Bool {
        try RESPDecoding.bool(
            try await send(["PEXPIRE", .string(key), .integer(duration.roundedUpMilliseconds)]), command: "PEXPIRE")
    }

    /// `PING`: Redis's answer, `PONG`.
    public func ping() async throws -> String {
        try RESPDecoding.text(try await send(["PING"]), command: "PING")
    }

    /// `FLUSHDB`: deletes every key of the selected database. For tests and `cairn dev` only.
    public func flushdb() async throws {
        _ = try await send(["FLUSHDB"])
    }

    /// `CLIENT ID` of the pooled connection the command happens to go to.
    public func clientID() async throws -> Int64 {
        try RESPDecoding.int64(try await send(["CLIENT", "ID"]), command: "CLIENT ID")
    }
}

// MARK: Sorted sets

extension RedisClient {
    /// `ZADD key score member ...`: adds members or updates their scores; returns how many were
    /// added (not updated).
    @discardableResult
    public func zadd(_ key: String, _ members: [(score: Double, member: String)]) async throws -> Int {
        if members.isEmpty { return 0 }
        var arguments: [RedisArgument] = ["ZADD", .string(key)]
        arguments.reserveCapacity(2 + members.count * 2)
        for item in members {
            arguments.append(.double(item.score))
            arguments.append(.string(item.member))
        }
        return try RESPDecoding.int(try await send(arguments), command: "ZADD")
    }

    /// `ZRANGEBYSCORE key min max [LIMIT offset count]`: members by ascending score.
    public func zrangebyscore(
        _ key: String, min: RedisScoreBound, max: RedisScoreBound, limit: (offset: Int, count: Int)? = nil
    ) async throws -> [String] {
        let reply = try await send(Self.rangeByScore(key, min, max, limit, withScores: false))
        return try RESPDecoding.array(reply, command: "ZRANGEBYSCORE").map { element throws(RedisError) in
            try RESPDecoding.text(element, command: "ZRANGEBYSCORE")
        }
    }

    /// `ZRANGEBYSCORE key min max WITHSCORES [LIMIT offset count]`: members and scores by
    /// ascending score.
    public func zrangebyscoreWithScores(
        _ key: String, min: RedisScoreBound, max: RedisScoreBound, limit: (offset: Int, count: Int)? = nil
    ) async throws -> [(member: String, score: Double)] {
        let reply = try await send(Self.rangeByScore(key, min, max, limit, withScores: true))
        let flat = try RESPDecoding.array(reply, command: "ZRANGEBYSCORE")
        var result: [(member: String, score: Double)] = []
        result.reserveCapacity(flat.count / 2)
        var index = 0
        while index + 1 < flat.count {
            result.append(
                (
                    member: try RESPDecoding.text(flat[index], command: "ZRANGEBYSCORE"),
                    score: try RESPDecoding.double(flat[index + 1], command: "ZRANGEBYSCORE")
                ))
            index += 2
        }
        return result
    }

    /// `ZREM key member ...`: returns how many members existed.
    @discardableResult
    public func zrem(_ key: String, members: [String]) async throws -> Int {
        if members.isEmpty { return 0 }
        return try RESPDecoding.int(
            try await send(["ZREM", .string(key)] + members.map { .string($0) }), command: "ZREM")
    }

    private static func rangeByScore(
        _ key: String, _ min: RedisScoreBound, _ max: RedisScoreBound, _ limit: (offset: Int, count: Int)?,
        withScores: Bool
    ) -> [RedisArgument] {
        var arguments: [RedisArgument] = ["ZRANGEBYSCORE", .string(key), min.argument, max.argument]
        if withScores { arguments.append("WITHSCORES") }
        if let limit {
            arguments += ["LIMIT", .int(limit.offset), .int(limit.count)]
        }
        return arguments
    }
}

// MARK: Hashes

extension RedisClient {
    /// `HSET key field value ...`: returns how many fields were added (not updated).
    @discardableResult
    public func hset(_ key: String, fields: [(String, [UInt8])]) async throws -> Int {
        try await hset(key, arguments: fields.map { ($0.0, .bytes($0.1)) })
    }

    /// `HSET` with text values; see `hset(_:fields:)`.
    @discardableResult
    public func hset(_ key: String, fields: [(String, String)]) async throws -> Int {
        try await hset(key, arguments: fields.map { ($0.0, .string($0.1)) })
    }

    private func hset(_ key: String, arguments fields: [(String, RedisArgument)]) async throws -> Int {
        if fields.isEmpty { return 0 }
        var arguments: [RedisArgument] = ["HSET", .string(key)]
        arguments.reserveCapacity(2 + fields.count * 2)
        for (name, value) in fields {
            arguments.append(.string(name))
            arguments.append(value)
        }
        return try RESPDecoding.int(try await send(arguments), command: "HSET")
    }

    /// `HGET key field`: the value, or `nil` if the key or field does not exist.
    public func hget(_ key: String, field: String) async throws -> [UInt8]? {
        try RESPDecoding.optionalBytes(try await send(["HGET", .string(key), .string(field)]), command: "HGET")
    }

    /// `HGETALL key`: every field and value, in Redis's order (empty if the key does not exist).
    public func hgetall(_ key: String) async throws -> [(field: String, value: [UInt8])] {
        let flat = try RESPDecoding.array(try await send(["HGETALL", .string(key)]), command: "HGETALL")
        var result: [(field: String, value: [UInt8])] = []
        result.reserveCapacity(flat.count / 2)
        var index = 0
        while index + 1 < flat.count {
            guard let value = flat[index + 1].bytes else {
                throw RedisError.unexpected(flat[index + 1], expected: "a field value", command: "HGETALL")
            }
            result.append((field: try RESPDecoding.text(flat[index], command: "HGETALL"), value: value))
            index += 2
        }
        return result
    }

    /// `HDEL key field ...`: returns how many fields existed.
    @discardableResult
    public func hdel(_ key: String, fields: [String]) async throws -> Int {
        if fields.isEmpty { return 0 }
        return try RESPDecoding.int(
            try await send(["HDEL", .string(key)] + fields.map { .string($0) }), command: "HDEL")
    }

    /// `HINCRBY key field by`: adds to an integer field (missing counts as 0); returns the new value.
    @discardableResult
    public func hincrby(_ key: String, field: String, by increment: Int64 = 1) async throws -> Int64 {
        try RESPDecoding.int64(
            try await send(["HINCRBY", .string(key), .string(field), .integer(increment)]), command: "HINCRBY")
    }
}
