import CairnCore
import CairnEngine
import CairnRedis
import Foundation
import Testing

/// The connect registry, capacity slots, leases, replies and inboxes on a real Redis: what the
/// gateways and executors rely on to route a request once and never strand one.
@Suite struct RedisConnectStateTests {
    static let base = Date(timeIntervalSince1970: 1_800_000_000)

    static func worker(_ connection: String, instance: String = "host-1", app: String = "shop", limit: Int? = nil) -> ConnectWorker {
        ConnectWorker(
            connectionID: connection, gatewayID: "gw-1", instanceID: instance, apps: [app], functions: ["\(app)-checkout": app], status: .ready,
            sdkLanguage: "py", sdkVersion: "0.5.19", maxConcurrency: limit, connectedAt: base, lastHeartbeat: base)
    }

    static func lease(_ request: String, instance: String = "host-1", expiresAt: Date) -> ConnectLease {
        ConnectLease(
            requestID: request, leaseID: ULID(milliseconds: UInt64(expiresAt.unixMilliseconds), entropy: [UInt8](repeating: 7, count: 10)),
            executorID: "exec-1", instanceID: instance)
    }

    @Test func connectionsAreFoundByAppAndFunctionAndLeaveADisconnectWithItsReason() async throws {
        try await TestRedis.withClient { (client, prefix) async throws in
            let state = RedisConnectState(client: client, prefix: prefix)
            let first = Self.worker("c1", limit: 2)
            try await state.upsert(workers: [first, Self.worker("c2", app: "billing")], ttl: .seconds(60))

            #expect(try await state.workers(app: "shop") == [first])
            #expect(try await state.workers(function: "shop-checkout") == [first])
            #expect(try await state.workers(function: "billing-checkout").map(\.connectionID) == ["c2"])

            try await state.remove(worker: first, reason: "connect_worker_heartbeats_missed", at: Self.base.addingTimeInterval(5))
            #expect(try await state.workers(app: "shop").isEmpty)
            #expect(try await state.workers(function: "shop-checkout").isEmpty)
            let disconnects = try await state.disconnects(app: "shop")
            #expect(disconnects == [ConnectDisconnect(connectionID: "c1", instanceID: "host-1", gatewayID: "gw-1", reason: "connect_worker_heartbeats_missed", at: Self.base.addingTimeInterval(5))])
        }
    }

    @Test func aConnectionWithoutHeartbeatsLapses() async throws {
        try await TestRedis.withClient { (client, prefix) async throws in
            let state = RedisConnectState(client: client, prefix: prefix)
            try await state.upsert(workers: [Self.worker("c1")], ttl: .seconds(60))
            #expect(try await state.workers(app: "shop").count == 1)
            // A last refresh, then none: the record's own TTL ends it; nothing has to clean up
            // after a dead gateway.
            try await state.upsert(workers: [Self.worker("c1")], ttl: .milliseconds(1))
            _ = try await TestRedis.eventually("the connection to lapse") { try await state.workers(app: "shop").isEmpty ? true : nil }
            #expect(try await state.workers(function: "shop-checkout").isEmpty)
        }
    }

    @Test func aWorkerGetsNoMoreLeasesThanItsLimitUntilOneIsReleasedOrLapses() async throws {
        try await TestRedis.withClient { (client, prefix) async throws in
            let state = RedisConnectState(client: client, prefix: prefix)
            let expiry = Self.base.addingTimeInterval(120)
            #expect(try await state.assign(Self.lease("r1", expiresAt: expiry), limit: 1, now: Self.base, forward: nil))
            #expect(try await state.assign(Self.lease("r2", expiresAt: expiry), limit: 1, now: Self.base, forward: nil) == false)
            #expect(try await state.lease(requestID: "r2") == nil, "a refused assignment records nothing")
            // Another instance has its own slots.
            #expect(try await state.assign(Self.lease("r3", instance: "host-2", expiresAt: expiry), limit: 1, now: Self.base, forward: nil))

            try await state.release(requestID: "r1", instanceID: "host-1")
            #expect(try await state.lease(requestID: "r1") == nil)
            #expect(try await state.assign(Self.lease("r2", expiresAt: expiry), limit: 1, now: Self.base, forward: nil))

            // A lease nobody extended frees its slot once it has expired.
            #expect(try await state.assign(Self.lease("r4", expiresAt: expiry), limit: 1, now: expiry.addingTimeInterval(-1), forward: nil) == false)
            #expect(try await state.assign(Self.lease("r4", expiresAt: expiry.addingTimeInterval(120)), limit: 1, now: expiry, forward: nil))

            // No limit: any number.
            for n in 0..<5 {
                #expect(try await state.assign(Self.lease("u\(n)", instance: "host-3", expiresAt: expiry), limit: nil, now: Self.base, forward: nil))
            }
        }
    }

    @Test func onlyTheCurrentUnexpiredLeaseExtendsAndARepeatedExtensionIsAnswered() async throws {
        try await TestRedis.withClient { (client, prefix) async throws in
            let state = RedisConnectState(client: client, prefix: prefix)
            let first = Self.lease("r1", expiresAt: Self.base.addingTimeInterval(30))
            #expect(try await state.assign(first, limit: 1, now: Self.base, forward: nil))
            let next = Self.lease("r1", expiresAt: Self.base.addingTimeInterval(60)).leaseID
            let stranger = Self.lease("r1", expiresAt: Self.base.addingTimeInterval(45)).leaseID

            #expect(try await state.extend(requestID: "r1", current: stranger, next: next, now: Self.base) == nil)
            #expect(try await state.extend(requestID: "r1", current: first.leaseID, next: next, now: Self.base) == next)
            // The worker sent the same extension twice (its ack was lost): it learns the lease in force.
            #expect(try await state.extend(requestID: "r1", current: first.leaseID, next: stranger, now: Self.base) == next)
            #expect(try await state.lease(requestID: "r1")?.leaseID == next)

            // The extended lease holds the slot past the first expiry …
            #expect(try await state.assign(Self.lease("r2", expiresAt: Self.base.addingTimeInterval(90)), limit: 1, now: Self.base.addingTimeInterval(40), forward: nil) == false)
            // … and a lapsed lease can no longer be extended.
            let later = Self.lease("r1", expiresAt: Self.base.addingTimeInterval(200)).leaseID
            #expect(try await state.extend(requestID: "r1", current: next, next: later, now: Self.base.addingTimeInterval(60)) == nil)
            #expect(try await state.extend(requestID: "r9", current: next, next: later, now: Self.base) == nil)
        }
    }

    @Test func theFirstReplyWinsIsAnnouncedOnceAndIsTakenOnce() async throws {
        try await TestRedis.withClient { (client, prefix) async throws in
            let state = RedisConnectState(client: client, prefix: prefix)
            #expect(try await state.assign(Self.lease("r1", expiresAt: Self.base.addingTimeInterval(60)), limit: nil, now: Self.base, forward: nil))
            let (start, _) = try await state.nextNotices(executorID: "exec-1", after: "", timeout: .milliseconds(1))
            #expect(try await state.deliver(reply: [1, 2, 3], requestID: "r1", ttl: .seconds(60)))
            // The same reply over /v0/connect/flush after the WebSocket copy.
            #expect(try await state.deliver(reply: [9], requestID: "r1", ttl: .seconds(60)) == false)
            let (_, notices) = try await state.nextNotices(executorID: "exec-1", after: start, timeout: .milliseconds(100))
            // The notice carries the first reply; the buffer holds it too, for a lost notice.
            #expect(notices == [ConnectInboxNotice(requestID: "r1", notice: .reply, reply: [1, 2, 3])])
            #expect(try await state.takeReply(requestID: "r1") == [1, 2, 3])
            #expect(try await state.takeReply(requestID: "r1") == nil)
            // A reply too large for a notice is only announced; releasing drops its buffer.
            #expect(try await state.assign(Self.lease("r3", expiresAt: Self.base.addingTimeInterval(60)), limit: nil, now: Self.base, forward: nil))
            let large = [UInt8](repeating: 7, count: ConnectInboxNotice.inlineReplyLimit + 1)
            #expect(try await state.deliver(reply: large, requestID: "r3", ttl: .seconds(60)))
            let (_, announced) = try await state.nextNotices(executorID: "exec-1", after: start, timeout: .milliseconds(100))
            #expect(announced.last == ConnectInboxNotice(requestID: "r3", notice: .reply, reply: nil))
            try await state.release(requestID: "r3", instanceID: "host-1")
            #expect(try await state.takeReply(requestID: "r3") == nil)
            // A reply for a request whose lease is gone is still kept, for an executor that looks.
            #expect(try await state.deliver(reply: [4], requestID: "r2", ttl: .seconds(60)))
            #expect(try await state.takeReply(requestID: "r2") == [4])
        }
    }

    @Test func inboxesDeliverInOrderFromWhereTheReaderStarted() async throws {
        try await TestRedis.withClient { (client, prefix) async throws in
            let state = RedisConnectState(client: client, prefix: prefix)
            let (start, none) = try await state.nextForwards(gatewayID: "gw-1", after: "", timeout: .milliseconds(10))
            #expect(none.isEmpty)

            // Taking a slot forwards the request in the same step; a refused one forwards nothing.
            let expiry = Self.base.addingTimeInterval(60)
            for (request, gateway, connection) in [("r1", "gw-1", "c1"), ("r2", "gw-1", "c2"), ("r3", "gw-2", "c3")] {
                let forward = ConnectForward(gatewayID: gateway, connectionID: connection, request: [UInt8(request.last!.wholeNumberValue!)])
                #expect(try await state.assign(Self.lease(request, instance: connection, expiresAt: expiry), limit: 1, now: Self.base, forward: forward))
            }
            let refused = ConnectForward(gatewayID: "gw-1", connectionID: "c1", request: [9])
            #expect(try await state.assign(Self.lease("r4", instance: "c1", expiresAt: expiry), limit: 1, now: Self.base, forward: refused) == false)
            let (cursor, requests) = try await state.nextForwards(gatewayID: "gw-1", after: start, timeout: .milliseconds(100))
            #expect(requests.map(\.connectionID) == ["c1", "c2"])
            #expect(requests.map(\.request) == [[1], [2]])
            let (_, after) = try await state.nextForwards(gatewayID: "gw-1", after: cursor, timeout: .milliseconds(10))
            #expect(after.isEmpty)

            // Notices go to the executor holding the lease; a released request's go nowhere.
            let (executorStart, _) = try await state.nextNotices(executorID: "exec-1", after: "", timeout: .milliseconds(1))
            try await state.announce(requestID: "r1", .ack)
            try await state.announce(requestID: "r2", .undeliverable)
            try await state.release(requestID: "r3", instanceID: "c3")
            try await state.announce(requestID: "r3", .ack)
            let (_, notices) = try await state.nextNotices(executorID: "exec-1", after: executorStart, timeout: .milliseconds(100))
            #expect(notices == [ConnectInboxNotice(requestID: "r1", notice: .ack), ConnectInboxNotice(requestID: "r2", notice: .undeliverable)])
        }
    }
}
