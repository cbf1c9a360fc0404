public import CairnCore
public import CairnEngine
public import Foundation
import Synchronization

/// `BulkStore` in memory, with the Postgres store's rules: one job per idempotency key, one
/// owner per job while its lease lasts.
public final class InMemoryBulkStore: BulkStore {
    struct Row {
        var job: BulkJob
        var owner: String?
        var leaseExpires: Date?
    }

    private let rows = Mutex<[ULID: Row]>([:])

    public init() {}

    public func createBulk(_ job: BulkJob) async throws -> BulkJob {
        rows.withLock { rows in
            if let key = job.idempotencyKey, let existing = rows.values.first(where: { $0.job.idempotencyKey == key }) { return existing.job }
            rows[job.id] = Row(job: job)
            return job
        }
    }

    public func bulk(id: ULID) async throws -> BulkJob? {
        rows.withLock { $0[id]?.job }
    }

    public func claimBulk(owner: String, lease: Duration, now: Date) async throws -> BulkJob? {
        rows.withLock { rows in
            guard let id = rows.values.filter({ $0.job.status == .running && ($0.leaseExpires.map { $0 <= now } ?? true) }).map(\.job.id).min()
            else { return nil }
            rows[id]?.owner = owner
            rows[id]?.leaseExpires = now.addingTimeInterval(lease.timeInterval)
            return rows[id]?.job
        }
    }

    public func advanceBulk(_ job: BulkJob, owner: String, lease: Duration, now: Date) async throws -> Bool {
        rows.withLock { rows in
            guard let row = rows[job.id], row.owner == owner, let expires = row.leaseExpires, expires > now, row.job.status == .running else {
                return false
            }
            rows[job.id]?.job = job
            rows[job.id]?.leaseExpires = now.addingTimeInterval(lease.timeInterval)
            return true
        }
    }
}
