import CairnCore
import CairnEngine
import CairnPostgres
import CairnTesting
import Foundation
import Logging
import Testing

/// `PostgresEventLog` on the real server: dedupe claims, expiry, races, the outbox marker and
/// the queries.
@Suite struct PostgresEventLogTests {
    static let start = Date(timeIntervalSince1970: 1_767_225_600)
    static let day: TimeInterval = 86_400

    static func event(_ name: String, key: String? = nil, at ms: Int64 = 1_767_225_600_000, generator: inout ULIDGenerator<SystemRandomNumberGenerator>) -> AcceptedEvent {
        AcceptedEvent(Event(name: name, data: ["n": .number(JSONNumber(literal: "18446744073709551617")!)], id: key), id: generator.next(milliseconds: UInt64(ms)), receivedAt: ms)
    }

    func log(_ db: CairnPostgresDatabase) -> PostgresEventLog {
        PostgresEventLog(database: db, logger: Logger(label: "test"))
    }

    @Test func storesAndDedupesByKeyUntilTheClaimExpires() async throws {
        try await withTestDatabase { db in
            let log = log(db)
            var ids = ULIDGenerator()
            let first = Self.event("a", key: "order-1", generator: &ids)
            let plain = Self.event("b", generator: &ids)
            let until = Self.start.addingTimeInterval(Self.day)
            #expect(try await log.append([first, plain], dedupeUntil: until, now: Self.start) == [.stored, .stored])

            let again = Self.event("a", key: "order-1", generator: &ids)
            let inside = Self.start.addingTimeInterval(Self.day - 1)
            #expect(try await log.append([again], dedupeUntil: inside.addingTimeInterval(Self.day), now: inside) == [.duplicate(of: first.id)])
            #expect(try await log.event(id: again.id) == nil)

            let after = Self.start.addingTimeInterval(Self.day)
            #expect(try await log.append([again], dedupeUntil: after.addingTimeInterval(Self.day), now: after) == [.stored])
            let later = Self.event("a", key: "order-1", generator: &ids)
            #expect(try await log.append([later], dedupeUntil: after.addingTimeInterval(Self.day), now: after) == [.duplicate(of: again.id)])

            // The payload comes back with its exact text.
            let stored = try #require(try await log.event(id: first.id))
            #expect(stored.payload.jsonString == first.payload.jsonString)
            #expect(stored.payload["data"]?["n"]?.jsonString == "18446744073709551617")
            #expect(stored.dedupeKey == "order-1")
            #expect(stored.receivedAt == first.receivedAt)
        }
    }

    @Test func invokedEventsAreFoundByTheirCorrelationIDOnly() async throws {
        try await withTestDatabase { db in
            let log = log(db)
            var ids = ULIDGenerator()
            let parent = ids.next(milliseconds: 1_767_225_600_000)
            func invoked(_ step: String, id: String? = nil) -> AcceptedEvent {
                let event = Invocation.invokedEvent(
                    functionID: "shop-child", payload: id.map { ["id": .string($0), "data": ["n": 1]] } ?? ["data": ["n": 1]],
                    correlationID: Invocation.correlationID(runID: parent, stepID: step), callerSlug: "shop-parent", expires: Self.start.addingTimeInterval(60),
                    now: Self.start)
                return AcceptedEvent(event, id: ids.next(milliseconds: 1_767_225_600_000), receivedAt: 1_767_225_600_000)
            }
            // One invoke with the default id, one whose payload names its own id, and an
            // ordinary event that merely carries a look-alike field.
            let first = invoked("call-a"), second = invoked("call-b", id: "caller-chosen")
            var lookalike = Self.event("shop/other", generator: &ids)
            lookalike.payload = ["name": "shop/other", "data": ["_inngest": ["correlation_id": .string(Invocation.correlationID(runID: parent, stepID: "call-a"))]]]
            _ = try await log.append([first, second, lookalike, invoked("call-c")], dedupeUntil: Self.start.addingTimeInterval(Self.day), now: Self.start)

            let found = try await log.invokedEvents(correlationIDs: ["call-a", "call-b", "call-z"].map { Invocation.correlationID(runID: parent, stepID: $0) })
            #expect(Set(found.map(\.id)) == [first.id, second.id])
            #expect(try await log.invokedEvents(correlationIDs: []).isEmpty)
            let memory = InMemoryEventLog()
            _ = try await memory.append([first, second, lookalike], dedupeUntil: Self.start.addingTimeInterval(Self.day), now: Self.start)
            #expect(Set(try await memory.invokedEvents(correlationIDs: [Invocation.correlationID(runID: parent, stepID: "call-b")]).map(\.id)) == [second.id])
        }
    }

    @Test func racingAppendsOfOneKeyStoreItOnce() async throws {
        try await withTestDatabase { db in
            let log = log(db)
            var ids = ULIDGenerator()
            let contenders = (0..<8).map { _ in Self.event("race", key: "same", generator: &ids) }
            let outcomes = try await withThrowingTaskGroup(of: (ULID, AppendOutcome).self) { group in
                for event in contenders {
                    group.addTask {
                        let outcome = try await log.append([event], dedupeUntil: Self.start.addingTimeInterval(Self.day), now: Self.start)
                        return (event.id, outcome[0])
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            let winners = outcomes.filter { $0.1 == .stored }.map(\.0)
            #expect(winners.count == 1)
            for (_, outcome) in outcomes where outcome != .stored {
                #expect(outcome == .duplicate(of: winners[0]))
            }
            #expect(try await log.events(name: "race", before: nil, limit: 100).map(\.id) == winners)
        }
    }

    @Test func unpublishedUntilMarked() async throws {
        try await withTestDatabase { db in
            let log = log(db)
            var ids = ULIDGenerator()
            let events = (0..<3).map { Self.event("e\($0)", at: 1_767_225_600_000 + Int64($0), generator: &ids) }
            _ = try await log.append(events, dedupeUntil: Self.start.addingTimeInterval(Self.day), now: Self.start)
            let cutoff = Self.start.addingTimeInterval(1)
            #expect(try await log.unpublished(receivedBefore: cutoff, limit: 10).map(\.id) == events.map(\.id))
            #expect(try await log.unpublished(receivedBefore: Self.start, limit: 10).isEmpty)
            try await log.markPublished([events[0].id, events[2].id], at: cutoff)
            #expect(try await log.unpublished(receivedBefore: cutoff, limit: 10).map(\.id) == [events[1].id])
            #expect(try await log.unpublished(receivedBefore: cutoff, limit: 0).isEmpty)
        }
    }

    @Test func listsNewestFirstByNameWithACursor() async throws {
        try await withTestDatabase { db in
            let log = log(db)
            var ids = ULIDGenerator()
            let events = (0..<5).map { Self.event($0 % 2 == 0 ? "even" : "odd", generator: &ids) }
            _ = try await log.append(events, dedupeUntil: Self.start.addingTimeInterval(Self.day), now: Self.start)
            let page1 = try await log.events(name: nil, before: nil, limit: 3)
            #expect(page1.map(\.id) == [events[4].id, events[3].id, events[2].id])
            let page2 = try await log.events(name: nil, before: page1.last!.id, limit: 3)
            #expect(page2.map(\.id) == [events[1].id, events[0].id])
            #expect(try await log.events(name: "even", before: nil, limit: 10).map(\.id) == [events[4].id, events[2].id, events[0].id])
            #expect(try await log.events(name: "none", before: nil, limit: 10).isEmpty)
            // By ids, in one read: the stored ones only.
            let missing = ids.next(milliseconds: 1)
            let found = try await log.events(ids: [events[3].id, missing, events[0].id])
            #expect(Set(found.map(\.id)) == [events[3].id, events[0].id])
            #expect(found.first { $0.id == events[3].id }?.payload == events[3].payload)
            #expect(try await log.events(ids: []).isEmpty)
        }
    }
}
