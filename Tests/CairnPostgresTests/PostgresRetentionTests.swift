import CairnCore
import CairnEngine
import CairnPostgres
import CairnTesting
import Foundation
import Logging
import PostgresNIO
import Testing

/// Retention deletes exactly what has expired, and nothing a kept run still needs.
@Suite struct PostgresRetentionTests {
    static let logger = Logger(label: "cairn.test.retention")
    static let day: TimeInterval = 86_400

    /// The ids in `table`'s column `column`, sorted.
    static func ids(_ db: CairnPostgresDatabase, _ sql: PostgresQuery) async throws -> [String] {
        var ids: [String] = []
        for try await id in try await db.client.query(sql, logger: logger).decode(String.self) { ids.append(id) }
        return ids.sorted()
    }

    @Test func retentionDeletesExactlyWhatHasExpired() async throws {
        try await PostgresRunStoreTests.withFixture { f, db in
            let t0 = f.t0
            let now = t0.addingTimeInterval(40 * Self.day)
            // Run A ended 40 days ago, with a step and a fired timer: expired, with all it has.
            let a = try await f.startedRun(entropy: 7)
            #expect(try await f.store.recordStep(a, f.step("s1", position: 0), now: t0) == .recorded)
            let wake = WorkItem(runID: a.runID, reason: .wake, call: SDKCall(stepID: "nap", attempt: 0), generation: a.token)
            #expect(try await f.store.park(a, Parking(timers: [(wake, t0.addingTimeInterval(1))]), now: t0))
            #expect(try await f.store.fireDueTimers(now: t0.addingTimeInterval(1), limit: 10) == [wake])
            let woken = try await f.lease(wake, owner: "one")
            #expect(try await f.store.finish(woken, .completed(output: "a"), steps: 1, emitting: [], now: t0) == .finished)
            // Run B ended yesterday: kept.
            let b = try await f.startedRun(entropy: 8)
            #expect(try await f.store.finish(b, .completed(output: "b"), steps: 0, emitting: [], now: now.addingTimeInterval(-Self.day)) == .finished)
            // Run S was skipped (a rate limit) 40 days ago: expired like any ended run.
            let skipped = f.newRun(key: "event:skipped", entropy: 10).id.description
            try await db.client.query("""
                INSERT INTO runs (id, function_id, function_version, event_id, event_ids, status, skip_reason, created_at, updated_at, ended_at)
                VALUES (\(skipped), \(f.functionID), 1, \(f.eventID.description), ARRAY[\(f.eventID.description)], 'Skipped', 'rate_limited',
                        \(t0), \(t0), \(t0))
                """, logger: Self.logger)
            // Run C has not ended, its timer fired 40 days ago: the run stays, the fired timer goes.
            let c = try await f.startedRun(entropy: 9)
            let nap = WorkItem(runID: c.runID, reason: .wake, call: SDKCall(stepID: "nap", attempt: 0), generation: c.token)
            #expect(try await f.store.park(c, Parking(timers: [(nap, t0.addingTimeInterval(1))]), now: t0))
            #expect(try await f.store.fireDueTimers(now: t0.addingTimeInterval(1), limit: 10) == [nap])
            // Events: old and routed (goes), old and not routed (stays), recent (stays); the
            // fixture's event is old but C and B refer to it (stays). The old events' dedupe
            // claims have expired: k3 goes with its event, k4 alone.
            func event(_ n: UInt8, at received: Date, key: String?) -> AcceptedEvent {
                AcceptedEvent(
                    id: ULID(milliseconds: UInt64(received.unixMilliseconds), entropy: [UInt8](repeating: n, count: 10)), name: "shop/e",
                    dedupeKey: key, ts: received.unixMilliseconds, payload: ["name": "shop/e", "data": [:]], receivedAt: received.unixMilliseconds)
            }
            let oldRouted = event(3, at: t0, key: "k3"), oldUnrouted = event(4, at: t0, key: "k4")
            let recent = event(5, at: now.addingTimeInterval(-Self.day), key: "k5")
            _ = try await f.eventLog.append([oldRouted, oldUnrouted], dedupeUntil: t0.addingTimeInterval(Self.day), now: t0)
            _ = try await f.eventLog.append([recent], dedupeUntil: now.addingTimeInterval(Self.day), now: now)
            try await f.eventLog.markRouted([f.eventID, oldRouted.id, recent.id])
            // Old routed events that flow control still holds stay: one in a debounce, one in an
            // open batch. A batch closed 40 days ago goes with the record of its events; so does a
            // rate limit that has drained, not one still counting.
            let debounced = event(6, at: t0, key: nil), batched = event(7, at: t0, key: nil)
            _ = try await f.eventLog.append([debounced, batched], dedupeUntil: t0, now: t0)
            try await f.eventLog.markRouted([debounced.id, batched.id])
            let function = f.functionID
            try await db.client.query("""
                INSERT INTO debounces (function_id, key, run_id, event_id, event_key, event_ts, opened_at, due_at)
                VALUES (\(function), 'k', 'RUN', \(debounced.id.description), 'event:x', 0, \(now), \(now.addingTimeInterval(60)))
                """, logger: Self.logger)
            try await db.client.query("""
                INSERT INTO batches (id, function_id, key, run_id, size, opened_at, due_at, closed_at) VALUES
                    ('open', \(function), 'k', 'RUN2', 1, \(now), \(now.addingTimeInterval(60)), NULL),
                    ('old', \(function), 'j', 'RUN3', 1, \(t0), \(t0), \(t0))
                """, logger: Self.logger)
            try await db.client.query("""
                INSERT INTO batch_events (batch_id, function_id, event_id, position) VALUES
                    ('open', \(function), \(batched.id.description), 0), ('old', \(function), 'gone', 0)
                """, logger: Self.logger)
            try await db.client.query("""
                INSERT INTO rate_limits (function_id, key, tat) VALUES
                    (\(function), 'drained', \(now.addingTimeInterval(-1))), (\(function), 'counting', \(now.addingTimeInterval(60)))
                """, logger: Self.logger)
            // The run store counts received_at from the events' own times.
            try await db.client.query("UPDATE events SET received_at = to_timestamp(ts / 1000.0)", logger: Self.logger)

            let collector = RetentionCollector(
                store: PostgresRetention(database: db, logger: Self.logger), settings: RetentionSettings(), clock: ManualClock(start: now),
                logger: Self.logger)
            let deleted = try await collector.pass()
            #expect(deleted == [.runs: 2, .events: 1, .dedupe: 1, .idempotency: 2, .timers: 1, .pauses: 0, .batches: 1, .rateLimits: 1])

            #expect(try await Self.ids(db, "SELECT id FROM runs") == [b.runID.description, c.runID.description].sorted())
            #expect(try await Self.ids(db, "SELECT run_id FROM steps").isEmpty)
            #expect(try await Self.ids(db, "SELECT id FROM timers").isEmpty)
            #expect(
                try await Self.ids(db, "SELECT id FROM events")
                    == [f.eventID, oldUnrouted.id, recent.id, debounced.id, batched.id].map(\.description).sorted())
            #expect(try await Self.ids(db, "SELECT id FROM batches") == ["open"])
            #expect(try await Self.ids(db, "SELECT event_id FROM batch_events") == [batched.id.description])
            #expect(try await Self.ids(db, "SELECT key FROM rate_limits") == ["counting"])
            #expect(try await Self.ids(db, "SELECT external_id FROM event_dedupe") == ["k5"])
            // Run C is still driven from its live item.
            #expect(try await f.store.liveWork(after: nil, limit: 10).items == [nap])
            // Nothing else has expired.
            let again = try await collector.pass()
            #expect(again.values.allSatisfy { $0 == 0 })
        }
    }

    /// Nothing is deleted of a kind kept for ever.
    @Test func zeroDaysKeepsForEver() async throws {
        var settings = RetentionSettings()
        settings.runs = nil
        settings.events = nil
        settings.bookkeeping = nil
        try await PostgresRunStoreTests.withFixture { [settings] f, db in
            let a = try await f.startedRun(entropy: 7)
            #expect(try await f.store.finish(a, .completed(output: "a"), steps: 0, emitting: [], now: f.t0) == .finished)
            let collector = RetentionCollector(
                store: PostgresRetention(database: db, logger: Self.logger), settings: settings,
                clock: ManualClock(start: f.t0.addingTimeInterval(3_650 * Self.day)), logger: Self.logger)
            let deleted = try await collector.pass()
            #expect(deleted[.runs] == nil && deleted[.events] == nil && deleted[.timers] == nil)
            #expect(try await Self.ids(db, "SELECT id FROM runs") == [a.runID.description])
        }
    }
}
