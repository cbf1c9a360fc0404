public import CairnCore
public import CairnEngine
public import Foundation
public import Logging
public import PostgresNIO

/// `AppRegistry` on Postgres: tables `apps`, `functions` and `function_versions` (migrations
/// 0001 and 0005).
///
/// A sync runs in one transaction under a transaction-scoped advisory lock, so concurrent
/// syncs (two API replicas, an SDK retrying) apply one after the other and the check that a
/// slug is not live in another app cannot race. Function configs are stored as `json` text
/// exactly as the SDK sent them and parsed again on read.
public struct PostgresAppRegistry: AppRegistry {
    let client: BoundedPostgresClient
    let logger: Logger

    /// Creates the registry on `client` (its pool must be running).
    /// Queries `database`'s pool; every call fails after its deadline (`BoundedPostgresClient`).
    public init(database: CairnPostgresDatabase, logger: Logger) {
        self.client = database.bounded
        self.logger = logger
    }

    /// Key of the advisory lock every sync takes.
    static let syncLock: Int64 = 0x6361_6972_6e73_796e  // "cairnsyn"

    public func sync(_ registration: AppRegistration, at now: Date) async throws -> AppSyncOutcome {
        do {
            return try await syncInTransaction(registration, at: now)
        } catch let error as PostgresTransactionError {
            // A refused sync is the caller's to report, not a database failure.
            if let conflict = error.closureError as? AppSyncConflict, error.rollbackError == nil { throw conflict }
            throw error
        }
    }

    private func syncInTransaction(_ registration: AppRegistration, at now: Date) async throws -> AppSyncOutcome {
        let syncID = UUID()
        let appConfig = JSONValue.object(registration.json).jsonString
        return try await client.withTransaction(logger: logger) { connection in
            try await connection.query("SELECT pg_advisory_xact_lock(\(Self.syncLock))", logger: logger)

            var existing: (id: UUID, checksum: String)?
            let appRows = try await connection.query(
                "SELECT id, checksum FROM apps WHERE name = \(registration.appName) FOR UPDATE", logger: logger)
            for try await (id, checksum) in appRows.decode((UUID, String).self) { existing = (id, checksum) }
            let appID = existing?.id ?? UUID()
            let slugs = registration.functions.map(\.id)

            let conflicts = try await connection.query("""
                SELECT f.slug, a.name FROM functions f JOIN apps a ON a.id = f.app_id
                WHERE f.slug = ANY(\(slugs)) AND f.archived_at IS NULL AND f.app_id <> \(appID)
                LIMIT 1
                """, logger: logger)
            for try await (slug, otherApp) in conflicts.decode((String, String).self) {
                throw AppSyncConflict(slug: slug, otherApp: otherApp)
            }

            try await connection.query("""
                INSERT INTO apps (id, name, url, sdk_language, sdk_version, framework, checksum, config, created_at, synced_at)
                VALUES (\(appID), \(registration.appName), \(registration.url), \(registration.sdkLanguage),
                        \(registration.sdkVersion), \(registration.framework), \(registration.checksum),
                        \(appConfig)::json, \(now), \(now))
                ON CONFLICT (id) DO UPDATE SET
                    url = EXCLUDED.url, sdk_language = EXCLUDED.sdk_language, sdk_version = EXCLUDED.sdk_version,
                    framework = EXCLUDED.framework, checksum = EXCLUDED.checksum, config = EXCLUDED.config,
                    synced_at = EXCLUDED.synced_at
                """, logger: logger)
            if let existing, existing.checksum == registration.checksum {
                return AppSyncOutcome(appID: appID, syncID: syncID, modified: false, added: [], changed: [], archived: [])
            }

            var live: [String: (id: UUID, config: String)] = [:]
            let liveRows = try await connection.query(
                "SELECT id, slug, config::text FROM functions WHERE app_id = \(appID) AND archived_at IS NULL", logger: logger)
            for try await (id, slug, config) in liveRows.decode((UUID, String, String).self) { live[slug] = (id, config) }

            var added: [String] = []
            var changed: [String] = []
            for function in registration.functions {
                let config = JSONValue.object(function.json).jsonString
                if let current = live[function.id] {
                    let currentValue = try? JSONValue(parsing: current.config)
                    if currentValue == .object(function.json) { continue }
                    try await connection.query("""
                        WITH changed AS (
                            UPDATE functions SET name = \(function.name), config = \(config)::json, version = version + 1,
                                updated_at = \(now)
                            WHERE id = \(current.id)
                            RETURNING id, version
                        )
                        INSERT INTO function_versions (function_id, version, config, created_at)
                        SELECT id, version, \(config)::json, \(now) FROM changed
                        """, logger: logger)
                    changed.append(function.id)
                } else {
                    let id = UUID()
                    try await connection.query("""
                        INSERT INTO functions (id, app_id, slug, name, version, config, created_at, updated_at)
                        VALUES (\(id), \(appID), \(function.id), \(function.name), 1, \(config)::json, \(now), \(now))
                        """, logger: logger)
                    try await connection.query("""
                        INSERT INTO function_versions (function_id, version, config, created_at) VALUES (\(id), 1, \(config)::json, \(now))
                        """, logger: logger)
                    added.append(function.id)
                }
            }
            var archived: [String] = []
            let archivedRows = try await connection.query("""
                UPDATE functions SET archived_at = \(now)
                WHERE app_id = \(appID) AND archived_at IS NULL AND NOT (slug = ANY(\(slugs)))
                RETURNING slug
                """, logger: logger)
            for try await slug in archivedRows.decode(String.self) { archived.append(slug) }
            return AppSyncOutcome(
                appID: appID, syncID: syncID, modified: true, added: added, changed: changed, archived: archived.sorted())
        }
    }

    public func apps() async throws -> [AppRecord] {
        let rows = try await client.query("""
            SELECT a.id, a.name, a.url, a.sdk_language, a.sdk_version, a.framework, a.checksum, a.created_at, a.synced_at,
                   (SELECT count(*) FROM functions f WHERE f.app_id = a.id AND f.archived_at IS NULL)::int8
            FROM apps a ORDER BY a.name
            """, logger: logger)
        var apps: [AppRecord] = []
        for try await (id, name, url, language, version, framework, checksum, created, synced, count)
            in rows.decode((UUID, String, String, String, String, String, String, Date, Date, Int64).self)
        {
            apps.append(AppRecord(
                id: id, name: name, url: url, sdkLanguage: language, sdkVersion: version, framework: framework,
                checksum: checksum, createdAt: created, syncedAt: synced, functionCount: Int(count)))
        }
        return apps
    }

    public func functions(appName: String) async throws -> [FunctionRecord]? {
        let apps = try await client.query("SELECT 1 FROM apps WHERE name = \(appName)", logger: logger)
        guard try await apps.hasRows() else { return nil }
        return try await selectFunctions("""
            SELECT f.id, f.app_id, a.name, f.version, f.config::text, f.created_at, f.updated_at, f.paused_at
            FROM functions f JOIN apps a ON a.id = f.app_id
            WHERE a.name = \(appName) AND f.archived_at IS NULL ORDER BY f.slug
            """)
    }

    public func liveFunctions() async throws -> [FunctionRecord] {
        try await selectFunctions("""
            SELECT f.id, f.app_id, a.name, f.version, f.config::text, f.created_at, f.updated_at, f.paused_at
            FROM functions f JOIN apps a ON a.id = f.app_id
            WHERE f.archived_at IS NULL ORDER BY f.slug
            """)
    }

    public func liveFunctionVersions() async throws -> [UUID: FunctionRevision] {
        let rows = try await client.query("SELECT id, version, paused_at IS NOT NULL FROM functions WHERE archived_at IS NULL", logger: logger)
        var versions: [UUID: FunctionRevision] = [:]
        for try await (id, version, paused) in rows.decode((UUID, Int32, Bool).self) { versions[id] = FunctionRevision(version: Int(version), paused: paused) }
        return versions
    }

    public func setPaused(functionID: UUID, at: Date?) async throws -> Date? {
        // The old value, read under the row lock the update takes; a second pause keeps the first date.
        let rows = try await client.query("""
            UPDATE functions f SET paused_at = CASE WHEN \(at)::timestamptz IS NULL THEN NULL ELSE coalesce(old.paused_at, \(at)) END
            FROM (SELECT id, paused_at FROM functions WHERE id = \(functionID) AND archived_at IS NULL FOR UPDATE) old
            WHERE f.id = old.id
            RETURNING old.paused_at
            """, logger: logger)
        for try await before in rows.decode(Date?.self) { return before }
        return nil
    }

    public func functionVersion(id: UUID, version: Int) async throws -> FunctionConfig? {
        let rows = try await client.query(
            "SELECT config::text FROM function_versions WHERE function_id = \(id) AND version = \(Int32(version))", logger: logger)
        for try await config in rows.decode(String.self) {
            return try FunctionConfig(parsing: try JSONValue(parsing: config))
        }
        return nil
    }

    private func selectFunctions(_ query: PostgresQuery) async throws -> [FunctionRecord] {
        let rows = try await client.query(query, logger: logger)
        var functions: [FunctionRecord] = []
        for try await (id, appID, appName, version, config, created, updated, pausedAt)
            in rows.decode((UUID, UUID, String, Int32, String, Date, Date, Date?).self)
        {
            let parsed: FunctionConfig
            do {
                parsed = try FunctionConfig(parsing: try JSONValue(parsing: config))
            } catch {
                throw PostgresAppRegistryError(detail: "function \(id) has a stored config that no longer parses: \(error)")
            }
            var function = FunctionRecord(
                id: id, appID: appID, appName: appName, version: Int(version), config: parsed, createdAt: created, updatedAt: updated)
            function.pausedAt = pausedAt
            functions.append(function)
        }
        return functions
    }
}

/// Stored data the registry cannot read.
public struct PostgresAppRegistryError: Error, CustomStringConvertible {
    /// What was found.
    public var detail: String
    public var description: String { "app registry: \(detail)" }
}
