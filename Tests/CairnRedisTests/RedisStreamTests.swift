import CairnCore
import CairnEngine
import CairnRedis
import Foundation
import Testing

@Suite struct RedisStreamTests {
    @Test func twoConsumersInOneGroupSplitAStream() async throws {
        try await TestRedis.withClient { client, prefix in
            let stream = prefix + "work"
            #expect(try await client.xgroupCreate(stream, group: "executor", startID: "0"))
            var added: [String] = []
            for index in 0..<60 {
                added.append(try await client.xadd(stream, fields: [("n", "\(index)")]))
            }
            #expect(try await client.xlen(stream) == 60)

            var byConsumer: [String: [RedisStreamEntry]] = ["a": [], "b": []]
            var drained = false
            while !drained {
                drained = true
                for consumer in ["a", "b"] {
                    let read = try await client.xreadgroup(
                        group: "executor", consumer: consumer, streams: [(stream, ">")], count: 7)
                    let entries = read.flatMap(\.entries)
                    #expect(read.allSatisfy { $0.stream == stream })
                    if !entries.isEmpty { drained = false }
                    byConsumer[consumer, default: []] += entries
                }
            }
            let a = Set(byConsumer["a"]!.map(\.id))
            let b = Set(byConsumer["b"]!.map(\.id))
            #expect(!a.isEmpty && !b.isEmpty)
            #expect(a.isDisjoint(with: b))
            #expect(a.union(b) == Set(added))
            for entry in byConsumer["a"]! + byConsumer["b"]! {
                let index = try #require(added.firstIndex(of: entry.id))
                #expect(entry["n"]?.utf8String == "\(index)")
            }

            let summary = try await client.xpending(stream, group: "executor")
            #expect(summary.count == 60)
            #expect(summary.smallestID == added.first && summary.greatestID == added.last)
            #expect(Set(summary.consumers) == [.init(name: "a", count: a.count), .init(name: "b", count: b.count)])

            #expect(try await client.xack(stream, group: "executor", ids: Array(a)) == a.count)
            #expect(try await client.xack(stream, group: "executor", ids: Array(b)) == b.count)
            let after = try await client.xpending(stream, group: "executor")
            #expect(after.count == 0 && after.smallestID == nil && after.consumers.isEmpty)
        }
    }

    @Test func unacknowledgedEntryIsReclaimedAfterItsIdleTime() async throws {
        try await TestRedis.withClient { client, prefix in
            let stream = prefix + "work"
            try await client.xgroupCreate(stream, group: "g")
            let payload: [UInt8] = [0, 1, 2, 255]
            let id = try await client.xadd(stream, fields: [("run", payload), ("reason", Array("start".utf8))])
            let first = try await client.xreadgroup(group: "g", consumer: "a", streams: [(stream, ">")], count: 10)
            #expect(first.flatMap(\.entries).map(\.id) == [id])

            // Not idle long enough for a one-minute threshold: nothing to claim.
            let early = try await client.xautoclaim(stream, group: "g", consumer: "b", minIdle: .seconds(60), count: 10)
            #expect(early.entries.isEmpty)

            let claimed = try await TestRedis.eventually("XAUTOCLAIM to reclaim the entry") {
                let result = try await client.xautoclaim(
                    stream, group: "g", consumer: "b", minIdle: .milliseconds(50), count: 10)
                return result.entries.isEmpty ? nil : result
            }
            #expect(claimed.entries.map(\.id) == [id])
            #expect(claimed.entries.first?["run"] == payload)
            #expect(claimed.entries.first?["reason"]?.utf8String == "start")
            #expect(claimed.nextStart == "0-0")

            let pending = try await client.xpending(stream, group: "g", count: 10)
            #expect(pending.count == 1)
            #expect(pending.first?.id == id)
            #expect(pending.first?.consumer == "b")
            #expect(pending.first?.deliveryCount == 2)
            let onlyA = try await client.xpending(stream, group: "g", count: 10, consumer: "a")
            #expect(onlyA.isEmpty)
        }
    }

    @Test func autoclaimReportsDeletedEntries() async throws {
        try await TestRedis.withClient { client, prefix in
            let stream = prefix + "work"
            try await client.xgroupCreate(stream, group: "g")
            let gone = try await client.xadd(stream, fields: [("k", "v")])
            _ = try await client.xreadgroup(group: "g", consumer: "a", streams: [(stream, ">")], count: 10)
            #expect(try await client.xdel(stream, ids: [gone]) == 1)

            // Consumer a's history now holds an entry without a payload.
            let history = try await client.xreadgroup(group: "g", consumer: "a", streams: [(stream, "0")], count: 10)
            #expect(history.flatMap(\.entries) == [RedisStreamEntry(id: gone, fields: [], isDeleted: true)])

            let result = try await TestRedis.eventually("XAUTOCLAIM to see the deleted entry") {
                let result = try await client.xautoclaim(
                    stream, group: "g", consumer: "b", minIdle: .milliseconds(1), count: 10)
                return result.deletedIDs.isEmpty ? nil : result
            }
            #expect(result.deletedIDs == [gone])
            #expect(result.entries.isEmpty)
            #expect(try await client.xpending(stream, group: "g").count == 0)
        }
    }

    @Test func blockingReadTimesOutEmptyAndApproximateTrimBoundsTheStream() async throws {
        try await TestRedis.withClient { client, prefix in
            let stream = prefix + "events"
            try await client.xgroupCreate(stream, group: "g")
            let nothing = try await client.xreadgroup(
                group: "g", consumer: "c", streams: [(stream, ">")], count: 5, block: .milliseconds(20))
            #expect(nothing.isEmpty)

            for index in 0..<1000 {
                _ = try await client.xadd(stream, fields: [("i", "\(index)")], maxLengthApproximate: 100)
            }
            let length = try await client.xlen(stream)
            #expect(length >= 100 && length < 1000)
        }
    }

    @Test func blockingReadDoesNotDelayOtherCommands() async throws {
        let name = "cairn-test-\(UInt32.random(in: 0...UInt32.max))"
        // One pooled connection: if the blocking read shared it, the GET would queue behind it.
        try await TestRedis.withClient(poolSize: 1, clientName: name) { client, prefix in
            let stream = prefix + "work"
            let key = prefix + "key"
            try await client.xgroupCreate(stream, group: "g")
            try await client.set(key, value: "value")
            let readFinished = Flag()

            try await withThrowingTaskGroup(of: [RedisStreamEntries].self) { group in
                group.addTask {
                    let result = try await client.xreadgroup(
                        group: "g", consumer: "blocker", streams: [(stream, ">")], count: 1, block: .seconds(60))
                    readFinished.set()
                    return result
                }

                func blockedReaders() async throws -> [[String: String]] {
                    try await TestRedis.clientList(client).filter {
                        $0["name"] == name && ($0["flags"] ?? "").contains("b") && $0["cmd"] == "xreadgroup"
                    }
                }
                _ = try await TestRedis.eventually("the XREADGROUP to be parked on the server") {
                    try await blockedReaders().isEmpty ? nil : true
                }

                let value = try await client.get(key)
                #expect(value?.utf8String == "value")
                // The GET has its reply, and the read is still parked on the server.
                #expect(readFinished.isSet == false)
                #expect(try await blockedReaders().count == 1)

                let id = try await client.xadd(stream, fields: [("wake", "up")])
                let read = try #require(try await group.next())
                #expect(read.flatMap(\.entries).map(\.id) == [id])
            }
        }
    }

    @Test func cancellingABlockingReadReleasesIt() async throws {
        let name = "cairn-test-\(UInt32.random(in: 0...UInt32.max))"
        try await TestRedis.withClient(clientName: name) { client, prefix in
            let stream = prefix + "work"
            try await client.xgroupCreate(stream, group: "g")
            let task = Task {
                try await client.xreadgroup(
                    group: "g", consumer: "c", streams: [(stream, ">")], count: 1, block: .zero)
            }
            _ = try await TestRedis.eventually("the XREADGROUP to be parked on the server") {
                let parked = try await TestRedis.clientList(client).filter {
                    $0["name"] == name && $0["cmd"] == "xreadgroup"
                }
                return parked.isEmpty ? nil : true
            }
            task.cancel()
            let result = await task.result
            #expect(throws: CancellationError.self) { try result.get() }
            #expect(try await client.ping() == "PONG")
            // The parked connection was closed, not returned to the blocking pool.
            _ = try await TestRedis.eventually("the cancelled read's connection to close") {
                let parked = try await TestRedis.clientList(client).filter {
                    $0["name"] == name && $0["cmd"] == "xreadgroup"
                }
                return parked.isEmpty ? true : nil
            }
        }
    }

    /// A consumer whose group vanished (a `FLUSHALL`, a failover that lost the stream) creates
    /// it again and goes on, instead of failing with `NOGROUP` until restarted.
    @Test func aSourceWhoseGroupVanishedGoesOn() async throws {
        try await TestRedis.withClient { client, prefix in
            let stream = prefix + "work"
            let source = RedisStreamSource(client: client, stream: stream, group: "executor", consumer: "a", block: .milliseconds(10))
            let queue = RedisWorkQueue(client: client, stream: stream)
            let item = WorkItem(runID: ULID(milliseconds: 1, entropy: [UInt8](repeating: 1, count: 10)), reason: .start, call: .discovery)
            try await queue.publish([item])
            #expect(try await source.read(maximum: 10).count == 1)
            // The stream and its group are gone.
            _ = try await client.del([stream])
            try await queue.publish([item])
            let after = try await source.read(maximum: 10)
            #expect(after.count == 1)
            try await source.acknowledge(after.map(\.entryID))
            // And gone again before an acknowledgement: the acknowledgement does not throw.
            try await queue.publish([item])
            let pending = try await source.read(maximum: 10)
            _ = try await client.del([stream])
            try await source.acknowledge(pending.map(\.entryID))
            try await queue.publish([item])
            #expect(try await source.read(maximum: 10).count == 1)
        }
    }

    /// Consumers of processes that are gone leave the group once idle, unless they hold
    /// pending entries (removing those would drop them); the sweeping consumer stays.
    @Test func idleConsumersWithNothingPendingAreRemoved() async throws {
        try await TestRedis.withClient { client, prefix in
            let stream = prefix + "work"
            let queue = RedisWorkQueue(client: client, stream: stream)
            let item = WorkItem(runID: ULID(milliseconds: 1, entropy: [UInt8](repeating: 1, count: 10)), reason: .start, call: .discovery)
            func source(_ name: String) -> RedisStreamSource {
                RedisStreamSource(client: client, stream: stream, group: "executor", consumer: name, block: .milliseconds(10))
            }
            let live = source("live"), finished = source("finished"), holding = source("holding")
            try await queue.publish([item])
            try await finished.acknowledge(try await finished.read(maximum: 1).map(\.entryID))
            try await queue.publish([item])
            #expect(try await holding.read(maximum: 1).count == 1)
            try await queue.publish([item])
            try await live.acknowledge(try await live.read(maximum: 1).map(\.entryID))
            #expect(try await live.removeIdleConsumers(idleFor: .seconds(3_600)).isEmpty)
            #expect(try await live.removeIdleConsumers(idleFor: .zero) == ["finished"])
            let names = try await client.xinfoConsumers(stream, group: "executor").map(\.name).sorted()
            #expect(names == ["holding", "live"])
        }
    }

    /// What the stream gauges read: per group, entries delivered and not acknowledged
    /// (pending) and entries not delivered yet (lag).
    @Test func groupsReportTheirPendingAndLag() async throws {
        try await TestRedis.withClient { client, prefix in
            let stream = prefix + "work"
            let queue = RedisWorkQueue(client: client, stream: stream)
            let source = RedisStreamSource(client: client, stream: stream, group: "executor", consumer: "a", block: .milliseconds(10))
            let items = (0..<5).map { WorkItem(runID: ULID(milliseconds: 1, entropy: [UInt8](repeating: 1, count: 10)), reason: .retry, call: SDKCall(stepID: "s\($0)", attempt: 1)) }
            try await queue.publish(Array(items.prefix(1)))
            _ = try await source.read(maximum: 1)
            try await queue.publish(Array(items.dropFirst()))
            let read = try await source.read(maximum: 2)
            try await source.acknowledge([try #require(read.last).entryID])
            // Delivered: 3, acknowledged (and so deleted): 1, not delivered: 2. Redis cannot tell
            // the lag past a deleted entry; the stream's length less what is pending does.
            let groups = try await client.xinfoGroups(stream)
            #expect(groups == [RedisGroupInfo(name: "executor", pending: 2, lag: nil)], "\(groups)")
            #expect(try #require(groups.first).undelivered(streamLength: try await client.xlen(stream)) == 2)
            #expect(RedisGroupInfo(name: "g", pending: 1, lag: 7).undelivered(streamLength: 100) == 7)
        }
    }

    /// Acknowledged entries are deleted, and nothing else: the stream holds exactly what is not
    /// handled yet, however long it gets, so no pending entry is ever trimmed away.
    @Test func acknowledgingDeletesAndNothingPendingIsTrimmed() async throws {
        try await TestRedis.withClient { client, prefix in
            let stream = prefix + "work"
            let source = RedisStreamSource(client: client, stream: stream, group: "executor", consumer: "a", block: .milliseconds(10), reclaimIdle: .zero)
            let queue = RedisWorkQueue(client: client, stream: stream)
            let items = (0..<3_000).map { WorkItem(runID: ULID(milliseconds: 1, entropy: [UInt8](repeating: 1, count: 10)), reason: .retry, call: SDKCall(stepID: "s\($0)", attempt: 1)) }
            try await queue.publish(Array(items.prefix(10)))
            let first = try await source.read(maximum: 10)
            try await queue.publish(Array(items.dropFirst(10)))
            #expect(try await client.xlen(stream) == 3_000)
            // The ten read first are still there to be reclaimed.
            let reclaimed = try await source.read(maximum: 10)
            #expect(Set(reclaimed.map(\.entryID)) == Set(first.map(\.entryID)))
            try await source.acknowledge(reclaimed.map(\.entryID))
            #expect(try await client.xlen(stream) == 2_990)
        }
    }

    /// The transport's identity: the token Cairn wrote, and the server's run id.
    @Test func theTransportEpochReadsItsTokenAndTheServersID() async throws {
        try await TestRedis.withClient { client, prefix in
            let epoch = RedisTransportEpoch(client: client, key: prefix + "epoch")
            let before = try await epoch.current()
            #expect(before.token == nil)
            #expect(before.serverID.count == 40)
            try await epoch.mark("token-1")
            #expect(try await epoch.current() == TransportIdentity(token: "token-1", serverID: before.serverID))
        }
    }
}
