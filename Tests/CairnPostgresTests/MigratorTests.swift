import CairnPostgres
import CairnTesting
import Logging
import PostgresNIO
import Testing

@Suite struct MigratorTests {
    @Test func applyingTwiceIsANoOp() async throws {
        try await withTestDatabase(migrate: false) { db in
            let all = try Migration.bundled().map(\.version)
            #expect(!all.isEmpty)
            let first = try await db.migrate()
            #expect(first.applied == all)
            #expect(first.alreadyApplied.isEmpty)
            let second = try await db.migrate()
            #expect(second.applied.isEmpty)
            #expect(second.alreadyApplied == all)
            let count = try await scalarInt(db, "SELECT count(*)::int FROM cairn_schema_migrations")
            #expect(count == all.count)
        }
    }

    @Test func concurrentMigratorsAreSafe() async throws {
        try await withTestDatabase(migrate: false) { db in
            let all = try Migration.bundled().map(\.version)
            let reports = try await withThrowingTaskGroup(of: Migrator.Report.self) { group in
                for _ in 0..<4 { group.addTask { try await db.migrate() } }
                var reports: [Migrator.Report] = []
                for try await report in group { reports.append(report) }
                return reports
            }
            // Exactly one pass applied everything; the others found it done.
            #expect(reports.filter { $0.applied == all }.count == 1)
            #expect(reports.filter { $0.alreadyApplied == all && $0.applied.isEmpty }.count == 3)
            let tables = try await scalarInt(db, "SELECT count(*)::int FROM information_schema.tables WHERE table_schema = current_schema() AND table_name IN ('apps','functions','events','event_dedupe','runs','run_idempotency','steps','run_history','timers','pauses','outbox')")
            #expect(tables == 11)
        }
    }

    @Test func failingMigrationLeavesNothingBehind() async throws {
        try await withTestDatabase(migrate: false) { db in
            let broken = [
                Migration(version: 1, name: "good", sql: "CREATE TABLE a (x int)"),
                Migration(version: 2, name: "bad", sql: "CREATE TABLE b (x int); SELECT * FROM no_such_table"),
            ]
            await #expect {
                _ = try await db.migrate(migrations: broken)
            } throws: { error in
                guard let error = error as? MigrationError else { return false }
                return error.code == .failed && error.version == 2 && error.description.contains("bad.sql failed")
            }
            let b = try await scalarInt(db, "SELECT count(*)::int FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = 'b'")
            #expect(b == 0)
            let versions = try await scalarInt(db, "SELECT coalesce(max(version), 0) FROM cairn_schema_migrations")
            #expect(versions == 1)
        }
    }

    @Test func editedMigrationIsReported() async throws {
        try await withTestDatabase(migrate: false) { db in
            _ = try await db.migrate(migrations: [Migration(version: 1, name: "one", sql: "CREATE TABLE a (x int)")])
            await #expect {
                _ = try await db.migrate(migrations: [Migration(version: 1, name: "one", sql: "CREATE TABLE a (x bigint)")])
            } throws: { error in
                (error as? MigrationError)?.code == .checksumMismatch
            }
        }
    }

    @Test func unknownAppliedVersionIsReported() async throws {
        try await withTestDatabase(migrate: false) { db in
            _ = try await db.migrate(migrations: [
                Migration(version: 1, name: "one", sql: "SELECT 1"),
                Migration(version: 2, name: "two", sql: "SELECT 2"),
            ])
            await #expect {
                _ = try await db.migrate(migrations: [Migration(version: 1, name: "one", sql: "SELECT 1")])
            } throws: { error in
                let error = error as? MigrationError
                return error?.code == .unknownVersion && error?.version == 2
            }
        }
    }
}

func scalarInt(_ db: CairnPostgresDatabase, _ sql: String) async throws -> Int {
    let rows = try await db.client.query(PostgresQuery(unsafeSQL: sql))
    for try await value in rows.decode(Int.self) { return value }
    throw PostgresTestError("no row from \(sql)")
}

struct PostgresTestError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
