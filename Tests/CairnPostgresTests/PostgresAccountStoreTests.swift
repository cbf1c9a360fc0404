import CairnCore
import CairnEngine
import CairnPostgres
import CairnTesting
import Foundation
import Logging
import PostgresNIO
import Testing

/// The Postgres account store keeps the account store contract on the real server, and what
/// only a database can show: processes racing to bootstrap, and the schema's own checks.
@Suite struct PostgresAccountStoreTests {
    static let logger = Logger(label: "cairn.test.accounts")

    @Test(arguments: AccountStoreContract.checks.map(\.name))
    func contract(_ name: String) async throws {
        let check = try #require(AccountStoreContract.checks.first { $0.name == name })
        try await withTestDatabase { db in try await check.run(PostgresAccountStore(database: db, logger: Self.logger)) }
    }

    /// Four "processes" (each its own `Accounts` and store) bootstrap at once: one admin is
    /// made, one password returned.
    @Test func concurrentBootstrapsCreateOneAdmin() async throws {
        try await withTestDatabase { db in
            let clock = ManualClock()
            let passwords = try await withThrowingTaskGroup(of: String?.self) { group in
                for _ in 0..<4 {
                    group.addTask {
                        let accounts = Accounts(
                            store: PostgresAccountStore(database: db, logger: Self.logger), clock: clock, settings: AccountSettings(passwordRounds: 100))
                        return try await accounts.bootstrap(adminEmail: "admin@example.com")
                    }
                }
                var passwords: [String] = []
                for try await password in group { if let password { passwords.append(password) } }
                return passwords
            }
            #expect(passwords.count == 1)
            let store = PostgresAccountStore(database: db, logger: Self.logger)
            #expect(try await store.accountCount() == 1)
            let accounts = Accounts(store: store, clock: clock, settings: AccountSettings(passwordRounds: 100))
            let signedIn = try await accounts.signIn(email: "admin@example.com", password: try #require(passwords.first))
            #expect(signedIn.account.role == .admin)
            #expect(try await accounts.principal(sessionToken: signedIn.token)?.actor == "admin@example.com")
        }
    }

    /// The schema refuses a role outside the three, and deleting an account ends its sessions.
    @Test func theSchemaChecksRolesAndCascadesSessions() async throws {
        try await withTestDatabase { db in
            let store = PostgresAccountStore(database: db, logger: Self.logger)
            let now = Date(timeIntervalSince1970: 1_800_000_000)
            await #expect(throws: PSQLError.self) {
                try await db.client.query("""
                    INSERT INTO accounts (id, email, role, password_hash, created_at, updated_at)
                    VALUES (\(UUID()), 'x@example.com', 'owner', 'h', \(now), \(now))
                    """)
            }
            let ann = Account(id: UUID(), email: "ann@example.com", role: .viewer, passwordHash: "h", mustChangePassword: false, createdAt: now)
            try await store.createAccount(ann)
            let digest = [UInt8](repeating: 4, count: 32)
            try await store.createSession(AccountSession(tokenHash: digest, accountID: ann.id, csrfToken: "c", createdAt: now, expiresAt: now))
            try await db.client.query("DELETE FROM accounts WHERE id = \(ann.id)")
            #expect(try await store.session(tokenHash: digest) == nil)
            let rows = try await db.client.query("SELECT count(*) FROM account_sessions")
            var remaining: Int64 = -1
            for try await count in rows.decode(Int64.self) { remaining = count }
            #expect(remaining == 0)
        }
    }
}
