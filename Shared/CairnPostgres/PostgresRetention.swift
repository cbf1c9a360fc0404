public import CairnEngine
public import Foundation
public import Logging
import PostgresNIO

/// `RetentionStore` on Postgres: each batch is one statement that picks the oldest expired rows
/// `FOR UPDATE SKIP LOCKED` (so replicas share the work) and deletes them, committed without
/// waiting for the disk (`synchronous_commit = off`). Deleting a run
/// cascades to its steps, history, timers, pauses and claims.
public struct PostgresRetention: RetentionStore {
    let client: BoundedPostgresClient
    let logger: Logger

    public init(database: CairnPostgresDatabase, logger: Logger) {
        self.client = database.bounded
        self.logger = logger
    }

    public func deleteExpired(_ kind: RetentionKind, cutoff: Date, now: Date, limit: Int) async throws -> Int {
        let query: PostgresQuery
        switch kind {
        case .runs:
            query = """
                WITH gone AS (DELETE FROM runs WHERE id IN (
                    SELECT id FROM runs WHERE status IN ('Completed', 'Failed', 'Cancelled', 'Skipped') AND ended_at < \(cutoff)
                    ORDER BY ended_at LIMIT \(limit) FOR UPDATE SKIP LOCKED)
                RETURNING 1) SELECT count(*)::int8 FROM gone
                """
        case .events:
            // Kept while a run refers to it (its trigger, or any event of a run not ended),
            // while it is not routed yet, or while a delay timer still holds it.
            query = """
                WITH gone AS (DELETE FROM events WHERE id IN (
                    SELECT e.id FROM events e
                    WHERE e.received_at < \(cutoff) AND e.routed_at IS NOT NULL
                      AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.event_id = e.id)
                      AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.status IN ('Queued', 'Running') AND e.id = ANY(r.event_ids))
                      AND NOT EXISTS (SELECT 1 FROM timers t WHERE t.id = 'event:' || e.id AND t.fired_at IS NULL)
                      AND NOT EXISTS (SELECT 1 FROM debounces d WHERE d.event_id = e.id)
                      AND NOT EXISTS (SELECT 1 FROM batch_events be JOIN batches b ON b.id = be.batch_id
                                      WHERE be.event_id = e.id AND b.closed_at IS NULL)
                    ORDER BY e.received_at LIMIT \(limit) FOR UPDATE SKIP LOCKED)
                RETURNING 1) SELECT count(*)::int8 FROM gone
                """
        case .dedupe:
            query = """
                WITH gone AS (DELETE FROM event_dedupe WHERE external_id IN (
                    SELECT external_id FROM event_dedupe WHERE expires_at < \(now)
                    ORDER BY expires_at LIMIT \(limit) FOR UPDATE SKIP LOCKED)
                RETURNING 1) SELECT count(*)::int8 FROM gone
                """
        case .idempotency:
            query = """
                WITH gone AS (DELETE FROM run_idempotency WHERE (function_id, key) IN (
                    SELECT function_id, key FROM run_idempotency WHERE expires_at < \(now)
                    ORDER BY expires_at LIMIT \(limit) FOR UPDATE SKIP LOCKED)
                RETURNING 1) SELECT count(*)::int8 FROM gone
                """
        case .timers:
            query = """
                WITH gone AS (DELETE FROM timers WHERE id IN (
                    SELECT id FROM timers WHERE fired_at < \(cutoff) ORDER BY fired_at LIMIT \(limit) FOR UPDATE SKIP LOCKED)
                RETURNING 1) SELECT count(*)::int8 FROM gone
                """
        case .batches:
            query = """
                WITH gone AS (DELETE FROM batches WHERE id IN (
                    SELECT id FROM batches WHERE closed_at < \(cutoff) ORDER BY closed_at LIMIT \(limit) FOR UPDATE SKIP LOCKED)
                RETURNING 1) SELECT count(*)::int8 FROM gone
                """
        case .rateLimits:
            query = """
                WITH gone AS (DELETE FROM rate_limits WHERE (function_id, key) IN (
                    SELECT function_id, key FROM rate_limits WHERE tat < \(now) ORDER BY tat LIMIT \(limit) FOR UPDATE SKIP LOCKED)
                RETURNING 1) SELECT count(*)::int8 FROM gone
                """
        case .pauses:
            query = """
                WITH gone AS (DELETE FROM pauses WHERE id IN (
                    SELECT id FROM pauses WHERE consumed_at < \(cutoff) ORDER BY consumed_at LIMIT \(limit) FOR UPDATE SKIP LOCKED)
                RETURNING 1) SELECT count(*)::int8 FROM gone
                """
        }
        // A deletion lost to a crash is simply done again: it need not wait for its commit to
        // reach the disk, and so does not queue behind (or slow) the commits that do.
        return try await client.withTransaction(logger: logger) { [logger] connection in
            try await connection.query("SET LOCAL synchronous_commit = off", logger: logger)
            var count = 0
            for try await (deleted) in try await connection.query(query, logger: logger).decode(Int.self) { count = deleted }
            return count
        }
    }
}
