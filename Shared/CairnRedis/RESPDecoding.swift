/// Turns replies into the values typed calls return; every mismatch is a `RedisError` with code
/// `.unexpectedReply` naming the command, what was expected and what came.
enum RESPDecoding {
    static func text(_ reply: RESPValue, command: String) throws(RedisError) -> String {
        switch reply {
        case .bulkString, .simpleString: return reply.string ?? ""
        default: throw .unexpected(reply, expected: "a string", command: command)
        }
    }

    static func optionalText(_ reply: RESPValue, command: String) throws(RedisError) -> String? {
        if reply.isNull { return nil }
        return try text(reply, command: command)
    }

    static func int(_ reply: RESPValue, command: String) throws(RedisError) -> Int {
        Int(try int64(reply, command: command))
    }

    static func int64(_ reply: RESPValue, command: String) throws(RedisError) -> Int64 {
        guard let value = reply.int64 else { throw .unexpected(reply, expected: "an integer", command: command) }
        return value
    }

    static func bool(_ reply: RESPValue, command: String) throws(RedisError) -> Bool {
        try int64(reply, command: command) != 0
    }

    static func optionalBytes(_ reply: RESPValue, command: String) throws(RedisError) -> [UInt8]? {
        switch reply {
        case .null: return nil
        case .bulkString(let bytes): return bytes
        default: throw .unexpected(reply, expected: "a bulk string or nil", command: command)
        }
    }

    static func array(_ reply: RESPValue, command: String) throws(RedisError) -> [RESPValue] {
        guard let elements = reply.array else { throw .unexpected(reply, expected: "an array", command: command) }
        return elements
    }

    static func double(_ reply: RESPValue, command: String) throws(RedisError) -> Double {
        guard let text = reply.string, let value = Double(text) else {
            throw .unexpected(reply, expected: "a number", command: command)
        }
        return value
    }

    /// `[id, [field, value, ...]]`, or `[id, nil]` for a deleted entry.
    static func streamEntry(_ reply: RESPValue, command: String) throws(RedisError) -> RedisStreamEntry {
        let parts = try array(reply, command: command)
        guard parts.count == 2 else {
            throw .unexpected(reply, expected: "a stream entry [id, fields]", command: command)
        }
        let id = try text(parts[0], command: command)
        if parts[1].isNull {
            return RedisStreamEntry(id: id, fields: [], isDeleted: true)
        }
        let flat = try array(parts[1], command: command)
        guard flat.count % 2 == 0 else {
            throw .unexpected(parts[1], expected: "an even number of field/value items", command: command)
        }
        var fields: [(name: String, value: [UInt8])] = []
        fields.reserveCapacity(flat.count / 2)
        var index = 0
        while index < flat.count {
            let name = try text(flat[index], command: command)
            guard let value = flat[index + 1].bytes else {
                throw .unexpected(flat[index + 1], expected: "a field value", command: command)
            }
            fields.append((name: name, value: value))
            index += 2
        }
        return RedisStreamEntry(id: id, fields: fields)
    }

    static func streamEntries(_ reply: RESPValue, command: String) throws(RedisError) -> [RedisStreamEntry] {
        var entries: [RedisStreamEntry] = []
        for element in try array(reply, command: command) {
            entries.append(try streamEntry(element, command: command))
        }
        return entries
    }

    /// `nil` (timeout) or `[[stream, [entry, ...]], ...]`.
    static func streamReads(_ reply: RESPValue, command: String) throws(RedisError) -> [RedisStreamEntries] {
        if reply.isNull { return [] }
        var result: [RedisStreamEntries] = []
        for element in try array(reply, command: command) {
            let pair = try array(element, command: command)
            guard pair.count == 2 else {
                throw .unexpected(element, expected: "[stream, entries]", command: command)
            }
            let stream = try text(pair[0], command: command)
            let entries = pair[1].isNull ? [] : try streamEntries(pair[1], command: command)
            result.append(RedisStreamEntries(stream: stream, entries: entries))
        }
        return result
    }

    /// `[next, [entry, ...]]` (Redis 6.2) or `[next, [entry, ...], [deleted id, ...]]` (7.0+).
    static func autoClaim(_ reply: RESPValue) throws(RedisError) -> RedisAutoClaimResult {
        let command = "XAUTOCLAIM"
        let parts = try array(reply, command: command)
        guard parts.count >= 2 else {
            throw .unexpected(reply, expected: "[next start, entries, deleted ids]", command: command)
        }
        var entries: [RedisStreamEntry] = []
        var deleted: [String] = []
        for element in try array(parts[1], command: command) {
            // Redis 6.2 reports a deleted entry as nil in the entries list.
            if element.isNull { continue }
            let entry = try streamEntry(element, command: command)
            if entry.isDeleted { deleted.append(entry.id) } else { entries.append(entry) }
        }
        if parts.count >= 3 {
            for element in try array(parts[2], command: command) {
                deleted.append(try text(element, command: command))
            }
        }
        return RedisAutoClaimResult(
            nextStart: try text(parts[0], command: command), entries: entries, deletedIDs: deleted)
    }

    static func pendingSummary(_ reply: RESPValue) throws(RedisError) -> RedisPendingSummary {
        let command = "XPENDING"
        let parts = try array(reply, command: command)
        guard parts.count == 4 else {
            throw .unexpected(reply, expected: "[count, smallest, greatest, consumers]", command: command)
        }
        var consumers: [RedisPendingConsumer] = []
        if !parts[3].isNull {
            for element in try array(parts[3], command: command) {
                let pair = try array(element, command: command)
                guard pair.count == 2 else {
                    throw .unexpected(element, expected: "[consumer, count]", command: command)
                }
                consumers.append(
                    RedisPendingConsumer(
                        name: try text(pair[0], command: command), count: try int(pair[1], command: command)))
            }
        }
        return RedisPendingSummary(
            count: try int(parts[0], command: command),
            smallestID: try optionalText(parts[1], command: command),
            greatestID: try optionalText(parts[2], command: command),
            consumers: consumers)
    }

    /// `XINFO CONSUMERS`: one flat `[field, value, ...]` array per consumer (RESP2).
    /// An `XINFO` entry: a flat array of field names and values.
    static func fields(_ element: RESPValue, command: String) throws(RedisError) -> [String: RESPValue] {
        let fields = try array(element, command: command)
        var values: [String: RESPValue] = [:]
        for index in stride(from: 0, to: fields.count - 1, by: 2) {
            values[try text(fields[index], command: command)] = fields[index + 1]
        }
        return values
    }

    static func groups(_ reply: RESPValue) throws(RedisError) -> [RedisGroupInfo] {
        let command = "XINFO GROUPS"
        var groups: [RedisGroupInfo] = []
        for element in try array(reply, command: command) {
            let values = try fields(element, command: command)
            guard let name = values["name"], let pending = values["pending"] else {
                throw .unexpected(element, expected: "[name, …, pending, …]", command: command)
            }
            // `lag` is null when Redis cannot tell (entries deleted past the group's position).
            var lag: Int64?
            if let value = values["lag"], case .integer(let count) = value { lag = count }
            groups.append(RedisGroupInfo(name: try text(name, command: command), pending: try int(pending, command: command), lag: lag))
        }
        return groups
    }

    static func consumers(_ reply: RESPValue) throws(RedisError) -> [RedisConsumerInfo] {
        let command = "XINFO CONSUMERS"
        var consumers: [RedisConsumerInfo] = []
        for element in try array(reply, command: command) {
            let values = try fields(element, command: command)
            guard let name = values["name"], let pending = values["pending"], let idle = values["idle"] else {
                throw .unexpected(element, expected: "[name, …, pending, …, idle, …]", command: command)
            }
            consumers.append(RedisConsumerInfo(
                name: try text(name, command: command), pending: try int(pending, command: command),
                idleMilliseconds: try int64(idle, command: command)))
        }
        return consumers
    }

    static func pendingEntries(_ reply: RESPValue) throws(RedisError) -> [RedisPendingEntry] {
        let command = "XPENDING"
        var entries: [RedisPendingEntry] = []
        for element in try array(reply, command: command) {
            let parts = try array(element, command: command)
            guard parts.count == 4 else {
                throw .unexpected(element, expected: "[id, consumer, idle, deliveries]", command: command)
            }
            entries.append(
                RedisPendingEntry(
                    id: try text(parts[0], command: command),
                    consumer: try text(parts[1], command: command),
                    idleMilliseconds: try int64(parts[2], command: command),
                    deliveryCount: try int64(parts[3], command: command)))
        }
        return entries
    }
}
