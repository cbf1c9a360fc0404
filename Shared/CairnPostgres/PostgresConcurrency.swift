public import CairnCore
public import CairnEngine
public import Foundation
import PostgresNIO

/// `ConcurrencyStore` on Postgres (migrations 0008 and 0009). Acquirers of a counter serialize
/// on a transaction-scoped advisory lock on its key (taken in key order, so two drives never
/// wait on each other in a cycle); a request slot counts only while the run holds the lease it was
/// taken under, so a drive that ends or dies frees its slots without another write, and a
/// run-level slot (no token) counts until its run ends.
extension PostgresRunStore {
    /// Slots that count: their run holds the lease they were taken under, or, for a run-level
    /// slot, has not ended.
    static let liveSlot = """
        EXISTS (SELECT 1 FROM runs r WHERE r.id = s.run_id AND CASE WHEN s.fencing_token IS NULL
                THEN r.status IN ('Queued', 'Running')
                ELSE r.fencing_token = s.fencing_token AND r.lease_owner IS NOT NULL AND r.lease_expires_at > clock_timestamp() END)
        """

    public func acquireSlots(
        _ lease: RunLease, _ slots: [ConcurrencySlot], score: Int64, functionID: UUID, start: Bool, now: Date
    ) async throws -> SlotOutcome {
        let keys = slots.map(\.key)
        let run = lease.runID.description
        return try await client.withTransaction(logger: logger) { connection in
            try await lockCounters(keys, connection: connection)
            let held = try await connection.query("""
                SELECT 1 FROM runs WHERE id = \(run) AND fencing_token = \(lease.token) AND lease_owner = \(lease.owner)
                  AND lease_expires_at > clock_timestamp() AND status = 'Running'
                """, logger: logger)
            guard try await held.hasRows() else { return .leaseLost }
            // Rows whose lease has gone count for nothing: clear them.
            try await connection.query(
                "DELETE FROM concurrency_slots s WHERE s.key = ANY(\(keys)) AND NOT \(unescaped: Self.liveSlot)", logger: logger)
            let counts = try await connection.query("""
                SELECT key, count(*)::int8 FROM concurrency_slots WHERE key = ANY(\(keys)) AND run_id <> \(run) GROUP BY key
                """, logger: logger)
            var inUse: [String: Int64] = [:]
            for try await (key, count) in counts.decode((String, Int64).self) { inUse[key] = count }
            if let full = slots.first(where: { inUse[$0.key, default: 0] >= Int64($0.limit) }) {
                try await connection.query("""
                    INSERT INTO concurrency_backlog (entry_id, key, key_limit, score, run_id, function_id, created_at)
                    VALUES (\(lease.item), \(full.key), \(full.limit), \(score), \(run), \(functionID), \(now))
                    ON CONFLICT (entry_id) DO UPDATE SET key = EXCLUDED.key, key_limit = EXCLUDED.key_limit
                    """, logger: logger)
                // A start item that recorded nothing has not started.
                try await connection.query("""
                    UPDATE runs SET lease_owner = NULL, lease_expires_at = NULL, updated_at = \(now),
                        status = CASE WHEN fresh THEN 'Queued' ELSE status END, started_at = CASE WHEN fresh THEN NULL ELSE started_at END
                    FROM (SELECT \(start) AND NOT EXISTS (SELECT 1 FROM steps WHERE run_id = \(run)) AS fresh) f
                    WHERE id = \(run) AND fencing_token = \(lease.token)
                    """, logger: logger)
                return .backlogged(key: full.key)
            }
            let wholeRun = slots.map(\.wholeRun)
            try await connection.query("""
                INSERT INTO concurrency_slots (key, run_id, fencing_token)
                SELECT k, \(run), CASE WHEN whole THEN NULL ELSE \(lease.token) END FROM unnest(\(keys)::text[], \(wholeRun)::bool[]) AS u(k, whole)
                ON CONFLICT (key, run_id) DO UPDATE SET fencing_token = EXCLUDED.fencing_token
                """, logger: logger)
            return .held
        }
    }

    public func releaseSlots(_ runID: ULID) async throws -> [WorkItem] {
        try await client.withTransaction(logger: logger) { connection in
            // The request slots, and the run-level ones once the run has ended; under the
            // acquirers' locks, so that work put in line meanwhile is seen here.
            let held = try await connection.query("""
                SELECT key FROM concurrency_slots s WHERE run_id = \(runID.description) AND (fencing_token IS NOT NULL OR NOT \(unescaped: Self.liveSlot))
                ORDER BY key
                """, logger: logger)
            var keys: [String] = []
            for try await key in held.decode(String.self) { keys.append(key) }
            if keys.isEmpty { return [] }
            try await lockCounters(keys, connection: connection)
            try await connection.query(
                "DELETE FROM concurrency_slots WHERE run_id = \(runID.description) AND key = ANY(\(keys))", logger: logger)
            var entries: [String] = []
            for key in keys.sorted() {
                let next = try await connection.query("""
                    DELETE FROM concurrency_backlog WHERE entry_id = (
                        SELECT entry_id FROM concurrency_backlog WHERE key = \(key) ORDER BY score, entry_id LIMIT 1 FOR UPDATE SKIP LOCKED)
                    RETURNING entry_id
                    """, logger: logger)
                for try await entry in next.decode(String.self) { entries.append(entry) }
            }
            return try await unpublish(entries, connection: connection)
        }
    }

    public func promoteBacklog(limit: Int) async throws -> [WorkItem] {
        try await client.withTransaction(logger: logger) { connection in
            let rows = try await connection.query("""
                WITH live AS (
                    SELECT s.key, count(*) AS n FROM concurrency_slots s WHERE \(unescaped: Self.liveSlot) GROUP BY s.key
                ), ranked AS (
                    SELECT b.entry_id, b.key, b.key_limit, row_number() OVER (PARTITION BY b.key ORDER BY b.score, b.entry_id) AS place
                    FROM concurrency_backlog b
                ), room AS (
                    SELECT r.entry_id FROM ranked r LEFT JOIN live l ON l.key = r.key
                    WHERE r.place <= r.key_limit - coalesce(l.n, 0) LIMIT \(limit)
                )
                DELETE FROM concurrency_backlog WHERE entry_id IN (SELECT entry_id FROM room) RETURNING entry_id
                """, logger: logger)
            var entries: [String] = []
            for try await entry in rows.decode(String.self) { entries.append(entry) }
            return try await unpublish(entries, connection: connection)
        }
    }

    public func queueStates() async throws -> [QueueState] {
        let rows = try await client.query("""
            SELECT function_id, sum(ready)::int8, sum(backlog)::int8, sum(running)::int8, min(oldest) FROM (
                SELECT r.function_id, count(*) AS ready, 0 AS backlog, 0 AS running, NULL::timestamptz AS oldest
                FROM outbox o JOIN runs r ON r.id = o.run_id
                WHERE o.stream = \(Self.workStream) AND NOT (r.lease_owner IS NOT NULL AND r.lease_expires_at > clock_timestamp())
                  AND NOT EXISTS (SELECT 1 FROM concurrency_backlog b WHERE b.entry_id = o.entry_id)
                GROUP BY r.function_id
                UNION ALL
                SELECT function_id, 0, count(*), 0, min(created_at) FROM concurrency_backlog GROUP BY function_id
                UNION ALL
                SELECT r.function_id, 0, 0, count(DISTINCT s.run_id), NULL FROM concurrency_slots s JOIN runs r ON r.id = s.run_id
                WHERE \(unescaped: Self.liveSlot) GROUP BY r.function_id
            ) parts GROUP BY function_id
            """, logger: logger)
        var states: [QueueState] = []
        for try await (function, ready, backlog, running, oldest) in rows.decode((UUID, Int64, Int64, Int64, Date?).self) {
            states.append(QueueState(functionID: function, ready: Int(ready), backlog: Int(backlog), running: Int(running), oldest: oldest))
        }
        return states
    }

    /// Takes the transaction-scoped lock of each counter in `keys`, in key order.
    func lockCounters(_ keys: [String], connection: PostgresConnection) async throws {
        try await connection.query(
            "SELECT pg_advisory_xact_lock(hashtextextended(k, 0)) FROM (SELECT DISTINCT unnest(\(keys)::text[]) AS k ORDER BY k) ks",
            logger: logger)
    }

    /// Marks the outbox rows of `entries` unpublished and returns their items (an entry whose
    /// run has ended since has no row, and comes back as nothing).
    func unpublish(_ entries: [String], connection: PostgresConnection) async throws -> [WorkItem] {
        if entries.isEmpty { return [] }
        let rows = try await connection.query("""
            UPDATE outbox SET published_at = NULL WHERE stream = \(Self.workStream) AND entry_id = ANY(\(entries)) RETURNING fields::text
            """, logger: logger)
        return try await Self.workItems(rows)
    }
}
