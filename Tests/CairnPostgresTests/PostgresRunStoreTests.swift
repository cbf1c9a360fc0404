import CairnCore
import CairnEngine
import CairnPostgres
import CairnTesting
import Foundation
import Logging
import PostgresNIO
import Testing

/// The Postgres run store keeps the run store contract on the real server; and fencing holds
/// when a takeover and a stale holder's write really race.
@Suite struct PostgresRunStoreTests {
    static let logger = Logger(label: "cairn.test.runs")

    static func withFixture(_ body: @Sendable (RunStoreFixture, CairnPostgresDatabase) async throws -> Void) async throws {
        try await withTestDatabase { db in
            let fixture = try await RunStoreFixture.make(
                store: PostgresRunStore(database: db, logger: logger), registry: PostgresAppRegistry(database: db, logger: logger),
                eventLog: PostgresEventLog(database: db, logger: logger), t0: Date(timeIntervalSince1970: 1_800_000_000))
            try await body(fixture, db)
        }
    }

    @Test(arguments: RunStoreContract.checks.map(\.name))
    func contract(_ name: String) async throws {
        let check = try #require(RunStoreContract.checks.first { $0.name == name })
        try await Self.withFixture { fixture, _ in try await check.run(fixture) }
    }

    /// A stale holder's step insert that runs while a takeover holds the run's row waits for it,
    /// then finds the token changed: it writes nothing. (Without the row lock, under READ
    /// COMMITTED, the insert would see the old token and commit after the takeover.)
    @Test func aStepInsertRacingATakeoverIsFenced() async throws {
        try await Self.withFixture { fixture, db in
            let stale = try await fixture.startedRun(owner: "one", duration: .zero)
            let (locked, lockedSignal) = AsyncStream.makeStream(of: Void.self)
            let (release, releaseSignal) = AsyncStream.makeStream(of: Void.self)
            // The takeover: bump the token in a transaction held open until told to commit.
            let takeover = Task {
                try await db.client.withTransaction(logger: Self.logger) { connection in
                    try await connection.query(
                        "UPDATE runs SET fencing_token = fencing_token + 1, lease_owner = 'two' WHERE id = \(stale.runID.description)",
                        logger: Self.logger)
                    lockedSignal.yield()
                    for await _ in release { break }
                }
            }
            for await _ in locked { break }
            let insert = Task { try await fixture.store.recordStep(stale, fixture.step("s", position: 0), now: fixture.t0) }
            // Commit the takeover only once the insert is waiting on the run's row lock.
            try await Self.waitForLockWait(db)
            releaseSignal.yield()
            try await takeover.value
            #expect(try await insert.value == .leaseLost)
            #expect(try await fixture.store.snapshot(stale.runID).stack.isEmpty)
        }
    }

    /// Returns once a step insert waits on a row lock.
    static func waitForLockWait(_ db: CairnPostgresDatabase) async throws {
        for _ in 0..<2_000 {
            let rows = try await db.client.query(
                """
                SELECT count(*)::int8 FROM pg_stat_activity
                WHERE wait_event_type = 'Lock' AND query LIKE '%INSERT INTO steps%FOR SHARE%'
                """,
                logger: logger)
            for try await count in rows.decode(Int64.self) where count > 0 { return }
            try await Task.sleep(for: .milliseconds(5))
        }
        Issue.record("the step insert never waited on the run's row lock")
    }
}
