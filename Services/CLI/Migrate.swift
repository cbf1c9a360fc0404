import ArgumentParser
import CairnPostgres
import CairnRoles
import Foundation
import Logging

/// `cairn migrate`: apply the schema migrations to CAIRN_POSTGRES_URL.
struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Apply Cairn's schema migrations to CAIRN_POSTGRES_URL (safe to run twice or concurrently)."
    )

    func run() async throws {
        var environment = ProcessInfo.processInfo.environment
        // Migrating needs only Postgres and serves nothing: placeholders keep the Redis and
        // signing-key checks quiet.
        environment["CAIRN_REDIS_URL"] = environment["CAIRN_REDIS_URL"] ?? "redis://127.0.0.1:6379/0"
        environment["CAIRN_DEV"] = environment["INNGEST_SIGNING_KEY"] == nil ? "1" : environment["CAIRN_DEV"]
        let configuration: CairnConfiguration
        do { configuration = try CairnConfiguration(environment: environment) } catch {
            throw ValidationError(error.description)
        }
        try await MigrationCommand.apply(configuration: configuration, logger: configuration.makeLogger(label: "cairn.migrate"))
    }
}

enum MigrationCommand {
    /// Applies the bundled migrations and prints what changed.
    static func apply(configuration: CairnConfiguration, logger: Logger) async throws {
        let database = CairnPostgresDatabase(settings: configuration.postgres, logger: logger)
        let report = try await database.migrate()
        if report.applied.isEmpty {
            say("migrations: schema is up to date (\(report.alreadyApplied.count) applied)")
        } else {
            say("migrations: applied \(report.applied.map(String.init).joined(separator: ", "))")
        }
    }
}
