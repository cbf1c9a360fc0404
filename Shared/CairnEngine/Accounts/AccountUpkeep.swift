public import Logging
public import ServiceLifecycle

/// The accounts' background work on cairn-api: on start, the first admin when there is no
/// account yet (its one-time password handed to `announce`, once); then, hourly, deleting
/// expired sessions so the table holds only live ones.
public struct AccountUpkeep: Service {
    let accounts: Accounts
    let adminEmail: String?
    let announce: @Sendable (_ email: String, _ password: String) -> Void
    let logger: Logger

    /// - Parameter adminEmail: the first admin's email; nil creates none (dev mode signs in
    ///   locally).
    public init(accounts: Accounts, adminEmail: String?, logger: Logger, announce: @escaping @Sendable (String, String) -> Void) {
        self.accounts = accounts
        self.adminEmail = adminEmail
        self.announce = announce
        self.logger = logger
    }

    public func run() async throws {
        if let adminEmail {
            // Every cairn-api replica tries; the store lets one create the account.
            while !Task.isShuttingDownGracefully && !Task.isCancelled {
                do {
                    if let password = try await accounts.bootstrap(adminEmail: adminEmail) { announce(adminEmail, password) }
                    break
                } catch {
                    logger.warning("could not create the first admin account; retrying", metadata: ["error": "\(error)"])
                    try? await pauseUntilShutdown(for: .seconds(1), on: accounts.clock)
                }
            }
        }
        await repeatUntilShutdown(logger: logger, failure: "could not delete expired dashboard sessions") {
            let deleted = try await accounts.deleteExpiredSessions()
            if deleted > 0 { logger.debug("deleted expired dashboard sessions", metadata: ["count": "\(deleted)"]) }
            try await pauseUntilShutdown(for: .seconds(3600), on: accounts.clock)
        }
    }
}
