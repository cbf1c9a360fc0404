public import CairnCore
public import CairnEngine
public import Foundation
public import Logging
import PostgresNIO

/// `BulkStore` on Postgres (migration 0011): the `bulk_jobs` table. A job is claimed by
/// writing its owner and lease; its progress is written with the lease's renewal, only while
/// the owner holds it.
public struct PostgresBulkStore: BulkStore {
    let client: BoundedPostgresClient
    let logger: Logger

    public init(database: CairnPostgresDatabase, logger: Logger) {
        self.client = database.bounded
        self.logger = logger
    }

    static let columns = """
        id, kind, idempotency_key, function_id, function_slug, statuses, created_from, created_until, skip_reason, expression, status, cursor,
        total, scanned, matched, done, error, created_at, finished_at
        """

    public func createBulk(_ job: BulkJob) async throws -> BulkJob {
        let rows = try await client.query("""
            WITH stored AS (
                INSERT INTO bulk_jobs (id, kind, idempotency_key, function_id, function_slug, statuses, created_from, created_until, skip_reason, expression,
                                       total, created_at, updated_at)
                VALUES (\(job.id.description), \(job.kind.rawValue), \(job.idempotencyKey), \(job.functionID), \(job.functionSlug), \(job.statuses),
                        \(job.createdFrom), \(job.createdUntil), \(job.skipReason), \(job.expression), \(Int64(job.total)), \(job.createdAt), \(job.createdAt))
                ON CONFLICT (idempotency_key) DO NOTHING
                RETURNING \(unescaped: Self.columns)
            )
            SELECT \(unescaped: Self.columns) FROM stored
            UNION ALL
            SELECT \(unescaped: Self.columns) FROM bulk_jobs WHERE idempotency_key = \(job.idempotencyKey)
            LIMIT 1
            """, logger: logger)
        guard let stored = try await Self.decode(rows).first else {
            throw PostgresRunStoreError(detail: "bulk job \(job.id) was neither stored nor found by its idempotency key")
        }
        return stored
    }

    public func bulk(id: ULID) async throws -> BulkJob? {
        try await Self.decode(try await client.query("SELECT \(unescaped: Self.columns) FROM bulk_jobs WHERE id = \(id.description)", logger: logger))
            .first
    }

    public func claimBulk(owner: String, lease: Duration, now: Date) async throws -> BulkJob? {
        let rows = try await client.query("""
            UPDATE bulk_jobs SET owner = \(owner), lease_expires_at = \(now.addingTimeInterval(lease.timeInterval)), updated_at = \(now)
            WHERE id = (
                SELECT id FROM bulk_jobs WHERE status = 'Running' AND (lease_expires_at IS NULL OR lease_expires_at <= \(now))
                ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED
            )
            RETURNING \(unescaped: Self.columns)
            """, logger: logger)
        return try await Self.decode(rows).first
    }

    public func advanceBulk(_ job: BulkJob, owner: String, lease: Duration, now: Date) async throws -> Bool {
        let rows = try await client.query("""
            UPDATE bulk_jobs SET status = \(job.status.rawValue), cursor = \(job.cursor?.description), scanned = \(Int64(job.scanned)), matched = \(Int64(job.matched)),
                done = \(Int64(job.done)), error = \(job.error), finished_at = \(job.finishedAt),
                lease_expires_at = \(now.addingTimeInterval(lease.timeInterval)), updated_at = \(now)
            WHERE id = \(job.id.description) AND owner = \(owner) AND lease_expires_at > \(now) AND status = 'Running'
            RETURNING 1
            """, logger: logger)
        return try await rows.hasRows()
    }

    static func decode(_ rows: PostgresRowSequence) async throws -> [BulkJob] {
        var jobs: [BulkJob] = []
        for try await (id, kind, key, function, slug, statuses, from, until, skipReason, expression, status, cursor, total, scanned, matched, done, error, createdAt, finishedAt)
            in rows.decode((String, String, String?, UUID, String, [String], Date?, Date, String?, String?, String, String?, Int64, Int64, Int64, Int64, String?, Date, Date?).self)
        {
            guard let jobID = ULID(id), let kind = BulkJob.Kind(rawValue: kind), let status = BulkJob.Status(rawValue: status) else {
                throw PostgresRunStoreError(detail: "bulk_jobs holds a malformed row \(id)")
            }
            var job = BulkJob(
                id: jobID, kind: kind, idempotencyKey: key, functionID: function, functionSlug: slug, statuses: statuses, createdFrom: from, createdUntil: until,
                skipReason: skipReason, expression: expression, createdAt: createdAt)
            job.status = status
            job.cursor = cursor.flatMap(ULID.init)
            job.total = Int(total)
            job.scanned = Int(scanned)
            job.matched = Int(matched)
            job.done = Int(done)
            job.error = error
            job.finishedAt = finishedAt
            jobs.append(job)
        }
        return jobs
    }
}
