import CairnRedis
import Foundation
import Testing

/// The timers' due index: the scheduler sleeps until its earliest entry and clears what it fired.
@Suite struct RedisTimerIndexTests {
    @Test func nextDueIsTheEarliestEntryAndClearingRemovesWhatIsDue() async throws {
        try await TestRedis.withClient { client, prefix in
            let index = RedisTimerIndex(client: client, key: prefix + "timers")
            #expect(try await index.nextDue() == nil)

            let base = Date(timeIntervalSince1970: 1_800_000_000)
            try await index.schedule([
                (id: "late", due: base.addingTimeInterval(60)),
                (id: "soon", due: base.addingTimeInterval(0.25)),
                (id: "later", due: base.addingTimeInterval(120)),
            ])
            #expect(try await index.nextDue() == base.addingTimeInterval(0.25))

            // Rescheduling an id moves it, as ZADD does.
            try await index.schedule([(id: "soon", due: base.addingTimeInterval(30))])
            #expect(try await index.nextDue() == base.addingTimeInterval(30))

            try await index.clearDue(upTo: base.addingTimeInterval(60))
            #expect(try await index.nextDue() == base.addingTimeInterval(120))
            try await index.clearDue(upTo: base.addingTimeInterval(120))
            #expect(try await index.nextDue() == nil)
        }
    }

    @Test func aDueTimeIsRoundedUpToTheMillisecond() async throws {
        try await TestRedis.withClient { client, prefix in
            let index = RedisTimerIndex(client: client, key: prefix + "timers")
            let due = Date(timeIntervalSince1970: 1_800_000_000.0004)
            try await index.schedule([(id: "t", due: due)])
            // Never earlier than asked: a timer found due by the index is due in Postgres too.
            #expect(try await index.nextDue() == Date(timeIntervalSince1970: 1_800_000_000.001))
        }
    }
}
