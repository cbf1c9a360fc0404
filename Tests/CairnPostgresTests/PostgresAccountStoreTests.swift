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

    /// Two admins in two "processes" disable each other at once, again and again: one of them
    /// is refused each time, and the one enabled admin left still signs in, with a token that
    /// the other's disable made useless.
    @Test func adminsDisablingEachOtherAtOnceLeaveOneAndItsTokensWork() async throws {
        try await withTestDatabase { db in
            let clock = ManualClock()
            func accounts() -> Accounts {
                Accounts(store: PostgresAccountStore(database: db, logger: Self.logger), clock: clock, settings: AccountSettings(passwordRounds: 100))
            }
            let store = PostgresAccountStore(database: db, logger: Self.logger)
            let ann = try await accounts().createAccount(
                by: .local, email: "ann@example.com", role: .admin, password: "ann's own password", mustChangePassword: false)
            let bob = try await accounts().createAccount(
                by: .local, email: "bob@example.com", role: .admin, password: "bob's own password", mustChangePassword: false)
            let annPrincipal = Principal(accountID: ann.id, actor: ann.email, role: .admin)
            let bobPrincipal = Principal(accountID: bob.id, actor: bob.email, role: .admin)
            let (annToken, _) = try await accounts().createToken(by: annPrincipal, name: "ann-ci", role: .admin)
            let (bobToken, _) = try await accounts().createToken(by: bobPrincipal, name: "bob-ci", role: .admin)
            for _ in 0..<5 {
                let refused = try await withThrowingTaskGroup(of: Bool.self) { group in
                    for (by, target) in [(annPrincipal, bob.id), (bobPrincipal, ann.id)] {
                        group.addTask {
                            do {
                                try await accounts().disableAccount(by: by, id: target)
                                return false
                            } catch let refusal as OperationRefusal where refusal.kind == .conflict {
                                return true
                            }
                        }
                    }
                    return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
                }
                #expect(refused == 1)
                let left = try #require(try await store.accounts().first { $0.disabledAt == nil })
                let (leftToken, goneToken) = left.id == ann.id ? (annToken, bobToken) : (bobToken, annToken)
                #expect(try await accounts().principal(bearer: leftToken)?.role == .admin)
                #expect(try await accounts().principal(bearer: goneToken) == nil)
                let password = left.id == ann.id ? "ann's own password" : "bob's own password"
                #expect(try await accounts().signIn(email: left.email, password: password).account.id == left.id)
                try await accounts().enableAccount(by: .local, id: left.id == ann.id ? bob.id : ann.id)
            }
            #expect(try await store.accounts().allSatisfy { $0.disabledAt == nil && $0.role == .admin })
        }
    }
}
