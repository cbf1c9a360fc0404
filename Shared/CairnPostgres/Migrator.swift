public import Logging
public import PostgresNIO
import Foundation

/// One versioned schema change: a file `NNNN_name.sql` in `Migrations/`.
public struct Migration: Sendable, Equatable {
    /// The number the file name starts with; migrations apply in ascending order.
    public var version: Int
    /// The rest of the file name, without `.sql`.
    public var name: String
    /// The SQL text, applied in one transaction.
    public var sql: String

    /// Creates a migration.
    public init(version: Int, name: String, sql: String) {
        self.version = version
        self.name = name
        self.sql = sql
    }

    /// A stable fingerprint of the SQL, recorded when applied; a file edited after it was
    /// applied is reported instead of silently ignored.
    public var checksum: String {
        // FNV-1a 64: stable across runs and platforms (Swift's Hasher is seeded per process).
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in sql.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01b3
        }
        let hex = String(hash, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }

    /// The migrations shipped with Cairn, in version order.
    ///
    /// Read from the `Migrations` resource folder; a file whose name does not start with a
    /// number and `_` is a packaging error and traps.
    public static func bundled() throws -> [Migration] {
        guard let folder = Bundle.module.url(forResource: "Migrations", withExtension: nil) else {
            throw MigrationError(code: .missingResources, version: nil, detail: "the Migrations resource folder is not next to the executable")
        }
        let files = try FileManager.default.contentsOfDirectory(at: folder, includingPropertiesForKeys: nil)
            .filter { $0.pathExtension == "sql" }
        var migrations: [Migration] = []
        for file in files {
            let base = file.deletingPathExtension().lastPathComponent
            guard let underscore = base.firstIndex(of: "_"), let version = Int(base[..<underscore]) else {
                preconditionFailure("migration file \(file.lastPathComponent) must be named NNNN_name.sql")
            }
            let sql = try String(contentsOf: file, encoding: .utf8)
            migrations.append(Migration(version: version, name: String(base[base.index(after: underscore)...]), sql: sql))
        }
        migrations.sort { $0.version < $1.version }
        for (a, b) in zip(migrations, migrations.dropFirst()) where a.version == b.version {
            preconditionFailure("two migrations share version \(a.version): \(a.name) and \(b.name)")
        }
        return migrations
    }
}

/// Why migrating failed.
public struct MigrationError: Error, CustomStringConvertible {
    /// What went wrong.
    public enum Code: String, Sendable {
        /// The SQL resource folder was not packaged with the executable.
        case missingResources
        /// An applied migration's SQL no longer matches what was applied.
        case checksumMismatch
        /// The database holds a migration this build does not know (it is older than the schema).
        case unknownVersion
        /// A migration's SQL failed; nothing of it was applied.
        case failed
    }

    /// What went wrong.
    public var code: Code
    /// The migration concerned, if any.
    public var version: Int?
    /// Human-readable detail.
    public var detail: String

    public var description: String {
        if let version { return "migration \(version): \(detail)" }
        return "migrations: \(detail)"
    }
}

/// Applies versioned migrations under a Postgres advisory lock.
///
/// Applying twice is a no-op: each applied version is recorded in `cairn_schema_migrations`
/// with its checksum. Concurrent migrators are safe: they serialize on an advisory lock keyed by
/// the schema, and the second one finds the work done. Each migration runs in its own
/// transaction, so a failing migration leaves nothing half-applied.
public struct Migrator: Sendable {
    /// The migrations to apply, ascending by version.
    public let migrations: [Migration]
    /// The schema the tables go into; `nil` for the connection's default schema.
    public let schema: String?
    let logger: Logger

    /// Creates a migrator for `migrations` (default: the ones shipped with Cairn).
    public init(migrations: [Migration], schema: String?, logger: Logger) {
        self.migrations = migrations
        self.schema = schema
        self.logger = logger
    }

    /// The outcome of a migration pass.
    public struct Report: Sendable, Equatable {
        /// Versions this pass applied.
        public var applied: [Int]
        /// Versions that were already there.
        public var alreadyApplied: [Int]
    }

    /// Applies every migration not yet recorded; returns what it did.
    public func migrate(_ client: PostgresClient) async throws -> Report {
        try await client.withConnection { connection in
            try await self.migrate(on: connection)
        }
    }

    /// Applies the pending migrations on one connection (it holds the advisory lock).
    public func migrate(on connection: PostgresConnection) async throws -> Report {
        let schemaName = schema ?? "public"
        let lockKey = Int64(bitPattern: Self.lockKey(schema: schemaName))
        if let schema {
            precondition(PostgresSettings.isPlainIdentifier(schema), "schema names are validated when settings are parsed")
            // CREATE SCHEMA IF NOT EXISTS can race with itself; the lock below comes first.
            try await connection.query("SELECT pg_advisory_lock(\(lockKey))", logger: logger)
            do {
                try await execute("CREATE SCHEMA IF NOT EXISTS \"\(schema)\"", on: connection)
                try await execute("SET search_path TO \"\(schema)\"", on: connection)
            } catch {
                _ = try? await connection.query("SELECT pg_advisory_unlock(\(lockKey))", logger: logger)
                throw error
            }
        } else {
            try await connection.query("SELECT pg_advisory_lock(\(lockKey))", logger: logger)
        }
        do {
            let report = try await applyPending(on: connection)
            try await connection.query("SELECT pg_advisory_unlock(\(lockKey))", logger: logger)
            return report
        } catch {
            _ = try? await connection.query("SELECT pg_advisory_unlock(\(lockKey))", logger: logger)
            throw error
        }
    }

    private func applyPending(on connection: PostgresConnection) async throws -> Report {
        try await execute("""
            CREATE TABLE IF NOT EXISTS cairn_schema_migrations (
                version    integer     PRIMARY KEY,
                name       text        NOT NULL,
                checksum   text        NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            )
            """, on: connection)
        var recorded: [Int: String] = [:]
        let rows = try await connection.query("SELECT version, checksum FROM cairn_schema_migrations", logger: logger)
        for try await (version, checksum) in rows.decode((Int, String).self) {
            recorded[version] = checksum
        }
        let known = Set(migrations.map(\.version))
        if let unknown = recorded.keys.sorted().first(where: { !known.contains($0) }) {
            throw MigrationError(code: .unknownVersion, version: unknown, detail: "is recorded in the database but unknown to this build; run a newer cairn")
        }

        var report = Report(applied: [], alreadyApplied: [])
        for migration in migrations {
            if let checksum = recorded[migration.version] {
                guard checksum == migration.checksum else {
                    throw MigrationError(code: .checksumMismatch, version: migration.version, detail: "\(migration.name).sql changed after it was applied (recorded \(checksum), file \(migration.checksum))")
                }
                report.alreadyApplied.append(migration.version)
                continue
            }
            logger.info("applying migration", metadata: ["version": "\(migration.version)", "name": "\(migration.name)"])
            do {
                try await execute("BEGIN", on: connection)
                for statement in SQLScript.statements(migration.sql) {
                    try await execute(statement, on: connection)
                }
                try await connection.query("""
                    INSERT INTO cairn_schema_migrations (version, name, checksum)
                    VALUES (\(migration.version), \(migration.name), \(migration.checksum))
                    """, logger: logger)
                try await execute("COMMIT", on: connection)
            } catch {
                try? await execute("ROLLBACK", on: connection)
                throw MigrationError(code: .failed, version: migration.version, detail: "\(migration.name).sql failed: \(String(reflecting: error))")
            }
            report.applied.append(migration.version)
        }
        return report
    }

    /// Runs one statement that returns no rows we need.
    private func execute(_ sql: String, on connection: PostgresConnection) async throws {
        let rows = try await connection.query(PostgresQuery(unsafeSQL: sql), logger: logger)
        for try await _ in rows {}
    }

    /// A 64-bit advisory-lock key derived from the schema name, so migrators of different
    /// schemas (parallel tests) do not wait on each other.
    static func lockKey(schema: String) -> UInt64 {
        var hash: UInt64 = 0x43_61_69_72_6e_4d_69_67 // "CairnMig"
        for byte in schema.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01b3
        }
        return hash
    }
}
