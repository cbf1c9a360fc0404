import CairnRedis
import CairnTesting
import NIOPosix
import Testing

@Suite struct RedisClientTests {
    @Test func tenThousandPipelinedCommandsReturnInOrder() async throws {
        try await TestRedis.withClient { client, prefix in
            var commands: [[RedisArgument]] = []
            commands.reserveCapacity(10_000)
            for index in 0..<5_000 {
                let key = "\(prefix)k\(index)"
                commands.append(["SET", .string(key), .string("v\(index)")])
                commands.append(["GET", .string(key)])
            }
            let results = try await client.pipeline(commands)
            #expect(results.count == 10_000)
            var mismatches = 0
            for index in 0..<5_000 {
                if (try? results[2 * index].get()) != .simpleString("OK") { mismatches += 1 }
                if (try? results[2 * index + 1].get()) != .bulkString(Array("v\(index)".utf8)) { mismatches += 1 }
            }
            #expect(mismatches == 0)

            let counter = prefix + "counter"
            let increments = try await client.pipeline(Array(repeating: ["INCR", .string(counter)], count: 10_000))
            let values = increments.map { try? $0.get().int64 }
            #expect(values == (1...10_000).map { Int64($0) })
        }
    }

    @Test func oneFailingCommandInAPipelineKeepsTheOthers() async throws {
        try await TestRedis.withClient { client, prefix in
            let key = prefix + "text"
            let results = try await client.pipeline([
                ["SET", .string(key), "not a number"],
                ["INCR", .string(key)],
                ["GET", .string(key)],
            ])
            #expect(try results[0].get() == .simpleString("OK"))
            #expect(throws: RedisError.self) { try results[1].get() }
            if case .failure(let error) = results[1] {
                #expect(error.code == .server)
                #expect(error.message == "ERR value is not an integer or out of range")
                #expect(error.command == "INCR")
            }
            #expect(try results[2].get() == .bulkString(Array("not a number".utf8)))
            #expect(try await client.pipeline([]).isEmpty)
        }
    }

    @Test func concurrentCommandsShareThePool() async throws {
        try await TestRedis.withClient(poolSize: 3) { client, prefix in
            let counter = prefix + "counter"
            let seen = try await withThrowingTaskGroup(of: Int64.self) { group in
                for _ in 0..<2_000 {
                    group.addTask { try await client.incrby(counter, by: 1) }
                }
                return try await group.reduce(into: Set<Int64>()) { $0.insert($1) }
            }
            #expect(seen == Set((1...2_000).map { Int64($0) }))
        }
    }

    @Test func clientRecoversAfterItsConnectionsAreKilled() async throws {
        let name = "cairn-test-\(UInt32.random(in: 0...UInt32.max))"
        try await TestRedis.withClient(poolSize: 3, clientName: name) { client, prefix in
            try await TestRedis.withClient(poolSize: 1) { killer, _ in
                let key = prefix + "key"
                let stream = prefix + "work"
                try await client.set(key, value: "before")
                try await client.xgroupCreate(stream, group: "g")

                // A command in flight when its connection dies: a parked blocking read.
                async let parked = client.xreadgroup(
                    group: "g", consumer: "c", streams: [(stream, ">")], count: 1, block: .seconds(30))
                let ours = try await TestRedis.eventually("the pool and the blocking read to be connected") {
                    let ours = try await TestRedis.clientList(killer).filter { $0["name"] == name }
                    return ours.count == 4 && ours.contains(where: { $0["cmd"] == "xreadgroup" }) ? ours : nil
                }
                let killedIDs = Set(ours.compactMap { $0["id"] })
                for id in killedIDs {
                    #expect(try await killer.send(["CLIENT", "KILL", "ID", .string(id)]) == .integer(1))
                }

                do {
                    _ = try await parked
                    Issue.record("the parked read should fail when its connection is killed")
                } catch let error as RedisError {
                    #expect(error.code == .connectionClosed)
                    #expect(error.isRetryable)
                }

                // Commands fail only with retryable errors until the pool has reconnected.
                let value = try await TestRedis.eventually("a command to succeed after the kill") { () -> [UInt8]? in
                    do {
                        return try await client.get(key)
                    } catch let error as RedisError {
                        #expect(error.isRetryable, "\(error.debugDescription)")
                        return nil
                    }
                }
                #expect(value.utf8String == "before")
                // A killed connection whose close the client has not yet read may still take one
                // command (which then fails, retryably); once every slot holds a new connection,
                // nothing may fail.
                let reconnected = try await TestRedis.eventually("all pooled connections to be back") {
                    let ours = try await TestRedis.clientList(killer).filter { $0["name"] == name }
                    return ours.count >= 3 ? ours : nil
                }
                #expect(Set(reconnected.compactMap { $0["id"] }).isDisjoint(with: killedIDs))
                for index in 0..<50 {
                    try await client.set(key, value: "after \(index)")
                    #expect(try await client.get(key)?.utf8String == "after \(index)")
                }
            }
        }
    }

    @Test func scriptRunsAgainAfterScriptFlush() async throws {
        try await TestRedis.withClient { client, prefix in
            let key = prefix + "counter"
            // The prefix in a comment gives this test a script digest no other test uses.
            let script = RedisScript("-- \(prefix)\nreturn redis.call('INCRBY', KEYS[1], ARGV[1])")
            #expect(try await client.scriptLoad(script.source) == script.sha1)
            #expect(try await client.evalsha(script, keys: [key], args: [5]) == .integer(5))

            try await client.scriptFlush()
            do {
                _ = try await client.send(["EVALSHA", .string(script.sha1), 1, .string(key), 1])
                Issue.record("EVALSHA should fail with NOSCRIPT after SCRIPT FLUSH")
            } catch let error as RedisError {
                #expect(error.serverErrorPrefix == "NOSCRIPT")
                #expect(error.message.hasPrefix("NOSCRIPT No matching script"))
            }
            #expect(try await client.evalsha(script, keys: [key], args: [5]) == .integer(10))

            let failing = RedisScript("-- \(prefix)\nreturn redis.error_reply('BOOM custom failure')")
            do {
                _ = try await client.evalsha(failing)
                Issue.record("a script error should throw")
            } catch let error as RedisError {
                #expect(error.code == .server)
                #expect(error.message.hasPrefix("BOOM custom failure"), "\(error.message)")
            }
        }
    }

    @Test func errorRepliesKeepRedisText() async throws {
        try await TestRedis.withClient { client, prefix in
            do {
                _ = try await client.send("NOSUCHCOMMAND", "x")
                Issue.record("an unknown command should throw")
            } catch let error as RedisError {
                #expect(error.code == .server)
                #expect(!error.isRetryable)
                #expect(error.message.hasPrefix("ERR unknown command 'NOSUCHCOMMAND'"), "\(error.message)")
                #expect(error.description == error.message)
                #expect(error.command == "NOSUCHCOMMAND")
            }

            let stream = prefix + "s"
            #expect(try await client.xgroupCreate(stream, group: "g"))
            #expect(try await client.xgroupCreate(stream, group: "g") == false)
            do {
                try await client.xgroupCreate(stream, group: "g", ignoreExisting: false)
                Issue.record("creating a group twice should throw BUSYGROUP")
            } catch let error as RedisError {
                #expect(error.serverErrorPrefix == "BUSYGROUP")
                #expect(error.message == "BUSYGROUP Consumer Group name already exists")
                #expect("\(error)".hasPrefix("BUSYGROUP"))
            }

            do {
                _ = try await client.get(stream)
                Issue.record("GET on a stream should throw WRONGTYPE")
            } catch let error as RedisError {
                #expect(error.message.hasPrefix("WRONGTYPE Operation against a key holding the wrong kind of value"))
            }
        }
    }

    @Test func keysExpireAndSetOnlyIfAbsent() async throws {
        try await TestRedis.withClient { client, prefix in
            let key = prefix + "lease"
            #expect(try await client.get(key) == nil)
            #expect(try await client.set(key, value: [1, 2, 3], onlyIfAbsent: true, expiresIn: .seconds(30)))
            #expect(try await client.set(key, value: "other", onlyIfAbsent: true) == false)
            #expect(try await client.get(key) == [1, 2, 3])
            let ttl = try await client.send("PTTL", .string(key)).int64 ?? -1
            #expect(ttl > 0 && ttl <= 30_000)

            // Long enough that the key is still there when it is deleted below, however slow
            // the machine.
            #expect(try await client.expire(key, in: .seconds(20)))
            let shorter = try await client.send("PTTL", .string(key)).int64 ?? -1
            #expect(shorter > 0 && shorter <= 20_000)
            #expect(try await client.expire(prefix + "missing", in: .seconds(1)) == false)

            let counter = prefix + "n"
            #expect(try await client.incrby(counter, by: 5) == 5)
            #expect(try await client.incrby(counter, by: -7) == -2)
            #expect(try await client.del([key, counter, prefix + "missing"]) == 2)
            #expect(try await client.get(key) == nil)
            #expect(try await client.ping() == "PONG")
            #expect(try await client.clientID() > 0)
        }
    }

    @Test func sortedSetsRangeByScore() async throws {
        try await TestRedis.withClient { client, prefix in
            let key = prefix + "timers"
            #expect(try await client.zadd(key, [(1, "a"), (2.5, "b"), (3, "c"), (10, "d")]) == 4)
            #expect(try await client.zadd(key, [(4, "c")]) == 0)
            #expect(try await client.zrangebyscore(key, min: .negativeInfinity, max: 4) == ["a", "b", "c"])
            #expect(try await client.zrangebyscore(key, min: .exclusive(1), max: .positiveInfinity) == ["b", "c", "d"])
            #expect(
                try await client.zrangebyscore(key, min: .negativeInfinity, max: .positiveInfinity, limit: (1, 2))
                    == ["b", "c"])
            let scored = try await client.zrangebyscoreWithScores(key, min: 2, max: .exclusive(10))
            #expect(scored.map(\.member) == ["b", "c"])
            #expect(scored.map(\.score) == [2.5, 4])
            #expect(try await client.zrem(key, members: ["a", "zz"]) == 1)
            let remaining = try await client.zrangebyscore(key, min: .negativeInfinity, max: .positiveInfinity)
            #expect(remaining == ["b", "c", "d"])
        }
    }

    @Test func hashesStoreFields() async throws {
        try await TestRedis.withClient { client, prefix in
            let key = prefix + "conn"
            #expect(try await client.hset(key, fields: [("gateway", "gw-1"), ("app", "shop")]) == 2)
            #expect(try await client.hset(key, fields: [("blob", [0, 255])]) == 1)
            #expect(try await client.hget(key, field: "gateway")?.utf8String == "gw-1")
            #expect(try await client.hget(key, field: "missing") == nil)
            let all = try await client.hgetall(key)
            #expect(all.map(\.field) == ["gateway", "app", "blob"])
            #expect(all.last?.value == [0, 255])
            #expect(try await client.hincrby(key, field: "count", by: 3) == 3)
            #expect(try await client.hdel(key, fields: ["app", "nope"]) == 1)
            #expect(try await client.hgetall(prefix + "absent").isEmpty)
        }
    }

    @Test func selectsTheDatabaseFromTheURL() async throws {
        let base = try TestRedis.url().database
        let other = (base + 1) % 16
        try await TestRedis.withClient { client, prefix in
            try await TestRedis.withClient(database: other) { otherClient, _ in
                let key = prefix + "where"
                try await otherClient.set(key, value: "db \(other)")
                #expect(try await otherClient.get(key)?.utf8String == "db \(other)")
                #expect(try await client.get(key) == nil)
                #expect(try await otherClient.del([key]) == 1)
            }
        }
    }

    @Test func refusedAuthenticationFailsTheConnectWithRedisText() async throws {
        var url = try TestRedis.url()
        url.password = "wrong-password"
        let configuration = RedisConfiguration(url: url)
        do {
            let connection = try await RedisConnection.connect(
                configuration: configuration, eventLoop: MultiThreadedEventLoopGroup.singleton.next(),
                logger: TestRedis.logger)
            await connection.close()
            Issue.record("AUTH with a password the server does not have should fail")
        } catch {
            #expect(error.code == .connectFailed)
            #expect(error.isRetryable)
            #expect(error.message.contains("AUTH refused"), "\(error.message)")
            // Redis's own text: `ERR AUTH ... without any password configured` on a server
            // without a password, `WRONGPASS invalid username-password pair` on one with.
            #expect(
                error.message.contains("ERR AUTH") || error.message.contains("WRONGPASS"), "\(error.message)")
            #expect(!error.message.contains("wrong-password"))
        }
    }

    @Test func unreachableServerFailsWithinTheConnectTimeout() async throws {
        let configuration = RedisConfiguration(
            url: RedisURL(endpoint: .tcp(host: "127.0.0.1", port: 1)), poolSize: 1,
            connectTimeout: .milliseconds(300))
        let client = RedisClient(configuration: configuration, logger: TestRedis.logger)
        do {
            _ = try await client.ping()
            Issue.record("a ping to a closed port should fail")
        } catch let error as RedisError {
            #expect(error.code == .connectionUnavailable)
            #expect(error.isRetryable)
            #expect(error.message.contains("127.0.0.1:1"), "\(error.message)")
            #expect(error.message.contains("last attempt failed"), "\(error.message)")
        }
        await client.shutdown()
    }

    @Test func runServesUntilCancelledThenShutsDown() async throws {
        let client = RedisClient(configuration: try TestRedis.configuration(), logger: TestRedis.logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await client.run() }
            #expect(try await client.ping() == "PONG")
            group.cancelAll()
            try await group.waitForAll()
        }
        do {
            _ = try await client.ping()
            Issue.record("a shut-down client should refuse commands")
        } catch let error as RedisError {
            #expect(error.code == .clientShutdown)
            #expect(!error.isRetryable)
        }
        await client.shutdown()
    }

    /// A server that takes commands and never answers (a reply lost for good): the command
    /// fails once the command timeout has passed, the connection is dropped, and a blocking
    /// read gets the timeout beyond its block time.
    @Test func aCommandWithoutAReplyFailsAtTheCommandTimeout() async throws {
        try await SilentServer.with { server in
            var configuration = RedisConfiguration(
                url: RedisURL(endpoint: .tcp(host: "127.0.0.1", port: server.port)), poolSize: 1, connectTimeout: .seconds(5))
            configuration.commandTimeout = .milliseconds(200)
            let client = RedisClient(configuration: configuration, logger: TestRedis.logger)
            for attempt in 0..<2 {
                do {
                    _ = try await client.send(["PING"])
                    Issue.record("a command the server never answers should fail (attempt \(attempt))")
                } catch let error as RedisError {
                    #expect(error.code == .connectionClosed, "\(error)")
                    #expect(error.isRetryable)
                }
            }
            do {
                _ = try await client.xreadgroup(group: "g", consumer: "c", streams: [("s", ">")], count: 1, block: .milliseconds(100))
                Issue.record("a blocking read the server never answers should fail")
            } catch let error as RedisError {
                #expect(error.code == .connectionClosed, "\(error)")
            }
            await client.shutdown()
        }
    }
}
