import CairnPostgres
import CairnTesting
import PostgresNIO
import Testing

/// The keys that enforce the rules in docs/architecture.md hold on the real server.
@Suite struct SchemaKeyTests {
    static let runID = "01JD0000000000000000000001"
    static let eventID = "01JD0000000000000000000002"

    /// An app, a function, an event and a run to hang rows on.
    func seed(_ db: CairnPostgresDatabase) async throws -> String {
        let appID = "00000000-0000-0000-0000-000000000001"
        let fnID = "00000000-0000-0000-0000-000000000002"
        try await db.client.query("""
            INSERT INTO apps (id, name, url, checksum, config) VALUES (\(appID)::uuid, 'app', 'http://127.0.0.1/api/inngest', 'c', '{}')
            """)
        try await db.client.query("""
            INSERT INTO functions (id, app_id, slug, name, version, config) VALUES (\(fnID)::uuid, \(appID)::uuid, 'app-fn', 'fn', 1, '{}')
            """)
        try await db.client.query("""
            INSERT INTO events (id, name, ts, payload) VALUES (\(Self.eventID), 'app/x', 1700000000000, '{"name":"app/x"}')
            """)
        try await db.client.query("""
            INSERT INTO runs (id, function_id, function_version, event_id) VALUES (\(Self.runID), \(fnID)::uuid, 1, \(Self.eventID))
            """)
        return fnID
    }

    func expectUniqueViolation(_ db: CairnPostgresDatabase, _ query: PostgresQuery, constraint: String) async {
        do {
            try await db.client.query(query)
            Issue.record("expected a unique violation on \(constraint)")
        } catch let error as PSQLError {
            #expect(error.serverInfo?[.sqlState] == "23505", "\(String(reflecting: error))")
            #expect(error.serverInfo?[.constraintName] == constraint)
        } catch {
            Issue.record("unexpected error \(error)")
        }
    }

    @Test func aStepIsRecordedOnce() async throws {
        try await withTestDatabase { db in
            _ = try await seed(db)
            try await db.client.query("""
                INSERT INTO steps (run_id, step_id, position, op, result) VALUES (\(Self.runID), 'a1', 0, 'StepRun', '{"data":1}')
                """)
            await expectUniqueViolation(db, """
                INSERT INTO steps (run_id, step_id, position, op, result) VALUES (\(Self.runID), 'a1', 1, 'StepRun', '{"data":2}')
                """, constraint: "steps_once")
            // The engine's write: first write wins, a late duplicate changes nothing.
            let inserted = try await db.client.query("""
                INSERT INTO steps (run_id, step_id, position, op, result) VALUES (\(Self.runID), 'a1', 1, 'StepRun', '{"data":2}')
                ON CONFLICT ON CONSTRAINT steps_once DO NOTHING RETURNING step_id
                """)
            var count = 0
            for try await _ in inserted { count += 1 }
            #expect(count == 0)
            let stored = try await db.client.query("SELECT result::text FROM steps WHERE run_id = \(Self.runID) AND step_id = 'a1'")
            for try await text in stored.decode(String.self) { #expect(text == #"{"data":1}"#) }
        }
    }

    @Test func eventIdDedupeHasOneLiveRow() async throws {
        try await withTestDatabase { db in
            _ = try await seed(db)
            try await db.client.query("INSERT INTO event_dedupe (external_id, event_id, expires_at) VALUES ('order-1', \(Self.eventID), now() + interval '24 hours')")
            await expectUniqueViolation(db, "INSERT INTO event_dedupe (external_id, event_id, expires_at) VALUES ('order-1', \(Self.eventID), now() + interval '24 hours')", constraint: "event_dedupe_pkey")
        }
    }

    @Test func runIdempotencyPerFunction() async throws {
        try await withTestDatabase { db in
            let fnID = try await seed(db)
            try await db.client.query("INSERT INTO run_idempotency (function_id, key, run_id, expires_at) VALUES (\(fnID)::uuid, 'evt', \(Self.runID), now() + interval '1 day')")
            await expectUniqueViolation(db, "INSERT INTO run_idempotency (function_id, key, run_id, expires_at) VALUES (\(fnID)::uuid, 'evt', \(Self.runID), now() + interval '1 day')", constraint: "run_idempotency_pkey")
        }
    }

    @Test func liveFunctionSlugIsUniqueButArchivedOnesMayRepeat() async throws {
        try await withTestDatabase { db in
            _ = try await seed(db)
            let appID = "00000000-0000-0000-0000-000000000001"
            await expectUniqueViolation(db, """
                INSERT INTO functions (id, app_id, slug, name, version, config) VALUES ('00000000-0000-0000-0000-000000000003'::uuid, \(appID)::uuid, 'app-fn', 'fn', 2, '{}')
                """, constraint: "functions_live_slug")
            try await db.client.query("UPDATE functions SET archived_at = now() WHERE slug = 'app-fn'")
            try await db.client.query("""
                INSERT INTO functions (id, app_id, slug, name, version, config) VALUES ('00000000-0000-0000-0000-000000000003'::uuid, \(appID)::uuid, 'app-fn', 'fn', 2, '{}')
                """)
        }
    }

    @Test func timersPausesAndOutboxEntriesAreUnique() async throws {
        try await withTestDatabase { db in
            _ = try await seed(db)
            try await db.client.query("INSERT INTO timers (id, kind, run_id, due_at) VALUES ('t1', 'sleep', \(Self.runID), now())")
            await expectUniqueViolation(db, "INSERT INTO timers (id, kind, run_id, due_at) VALUES ('t1', 'sleep', \(Self.runID), now())", constraint: "timers_pkey")
            try await db.client.query("INSERT INTO pauses (id, run_id, step_id, kind, event_name, expires_at) VALUES ('p1', \(Self.runID), 's', 'wait', 'app/y', now())")
            await expectUniqueViolation(db, "INSERT INTO pauses (id, run_id, step_id, kind, event_name, expires_at) VALUES ('p2', \(Self.runID), 's', 'wait', 'app/y', now())", constraint: "pauses_once")
            try await db.client.query("INSERT INTO outbox (stream, entry_id, fields) VALUES ('cairn:work', 'r1-s1-0', '{}')")
            await expectUniqueViolation(db, "INSERT INTO outbox (stream, entry_id, fields) VALUES ('cairn:work', 'r1-s1-0', '{}')", constraint: "outbox_entry_once")
        }
    }

    @Test func fencingTokenConditionsWrites() async throws {
        try await withTestDatabase { db in
            _ = try await seed(db)
            // Two executors take the lease in turn; the first one's token is stale afterwards.
            let first = try await scalarInt(db, "UPDATE runs SET fencing_token = fencing_token + 1, lease_owner = 'a' WHERE id = '\(Self.runID)' RETURNING fencing_token::int")
            let second = try await scalarInt(db, "UPDATE runs SET fencing_token = fencing_token + 1, lease_owner = 'b' WHERE id = '\(Self.runID)' RETURNING fencing_token::int")
            #expect(second == first + 1)
            let stale = try await db.client.query("UPDATE runs SET status = 'Completed' WHERE id = \(Self.runID) AND fencing_token = \(first) RETURNING id")
            var changed = 0
            for try await _ in stale { changed += 1 }
            #expect(changed == 0)
        }
    }

    @Test func jsonPayloadsKeepTheirExactText() async throws {
        try await withTestDatabase { db in
            _ = try await seed(db)
            let text = #"{"z":1,"a":12345678901234567890123,"f":1.50,"u":"\u00e9😀"}"#
            try await db.client.query("UPDATE runs SET output = \(text)::json WHERE id = \(Self.runID)")
            let rows = try await db.client.query("SELECT output::text FROM runs WHERE id = \(Self.runID)")
            for try await stored in rows.decode(String.self) { #expect(stored == text) }
        }
    }
}
