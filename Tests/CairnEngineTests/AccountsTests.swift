import CairnCore
import CairnEngine
import CairnTesting
import Foundation
import Testing

/// The in-memory account store keeps the account store contract, so the tests of `Accounts`
/// on it mean what they would on Postgres.
@Suite struct InMemoryAccountStoreTests {
    @Test(arguments: AccountStoreContract.checks.map(\.name))
    func contract(_ name: String) async throws {
        let check = try #require(AccountStoreContract.checks.first { $0.name == name })
        try await check.run(InMemoryAccountStore())
    }
}

@Suite struct AccountsTests {
    let store = InMemoryAccountStore()
    let clock = ManualClock()
    /// One instance per test, as a process has one (its audit ids are monotonic). Few rounds,
    /// so that hashing in tests is quick; production uses 600,000.
    let accounts: Accounts

    init() {
        accounts = Accounts(store: store, clock: clock, settings: AccountSettings(passwordRounds: 100))
    }

    /// An account made directly in the store, with `password`.
    func account(_ email: String, role: AccountRole, password: String = "a long enough password", mustChange: Bool = false) async throws -> Account {
        let account = Account(
            id: UUID(), email: email, role: role, passwordHash: PasswordHash.encode(password: password, salt: Array(0..<16), rounds: 100),
            mustChangePassword: mustChange, createdAt: clock.now)
        try await store.createAccount(account)
        return account
    }

    func principal(_ account: Account) -> Principal {
        Principal(accountID: account.id, actor: account.email, role: account.role)
    }

    // MARK: Bootstrap

    @Test func bootstrapCreatesOneAdminWithAOneTimePasswordOnlyWhenThereIsNoAccount() async throws {
        let password = try #require(try await accounts.bootstrap(adminEmail: " Admin@Example.com "))
        #expect(password.count >= 20)
        #expect(password.unicodeScalars.allSatisfy { CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_").contains($0) })
        let admin = try #require(try await store.account(email: "admin@example.com"))
        #expect(admin.role == .admin)
        #expect(admin.mustChangePassword)
        #expect(PasswordHash.rounds(of: admin.passwordHash) == 100)
        #expect(!admin.passwordHash.contains(password))
        // The one-time password signs in, and says it must be changed.
        let signedIn = try await accounts.signIn(email: "admin@example.com", password: password)
        #expect(try await accounts.principal(sessionToken: signedIn.token)?.mustChangePassword == true)

        #expect(try await accounts.bootstrap(adminEmail: "admin@example.com") == nil)
        #expect(try await accounts.bootstrap(adminEmail: "other@example.com") == nil)
        #expect(try await store.accountCount() == 1)
    }

    @Test func concurrentBootstrapsCreateOneAdmin() async throws {
        let shared = accounts
        let passwords = try await withThrowingTaskGroup(of: String?.self) { group in
            for _ in 0..<8 { group.addTask { try await shared.bootstrap(adminEmail: "admin@example.com") } }
            return try await group.compactMap { $0 }.reduce(into: [String]()) { $0.append($1) }
        }
        #expect(passwords.count == 1)
        #expect(try await store.accountCount() == 1)
        let password = try #require(passwords.first)
        #expect(try await accounts.signIn(email: "admin@example.com", password: password).account.role == .admin)
    }

    @Test func bootstrapRefusesAnEmailThatIsNotAnAddress() async throws {
        let refusal = try await #require(throws: OperationRefusal.self) { try await accounts.bootstrap(adminEmail: "admin") }
        #expect(refusal.kind == .invalid)
        #expect(refusal.description == #"email: must be an address such as ops@example.com, got "admin""#)
        #expect(try await store.accountCount() == 0)
    }

    // MARK: Sign-in and sessions

    @Test func anUnknownEmailAndAWrongPasswordGetTheSameRefusal() async throws {
        _ = try await account("ann@example.com", role: .viewer, password: "the right password")
        let unknown = try await #require(throws: OperationRefusal.self) {
            try await accounts.signIn(email: "bob@example.com", password: "the right password")
        }
        let wrong = try await #require(throws: OperationRefusal.self) {
            try await accounts.signIn(email: "ann@example.com", password: "the wrong password")
        }
        #expect(unknown == wrong)
        #expect(unknown.kind == .unauthorized)
        #expect(unknown.description == "email and password: do not match an account; check both and try again")
        #expect(try await store.audit(before: nil, limit: 10).isEmpty)
    }

    @Test func signingInStartsASessionStoredByItsTokensDigest() async throws {
        let ann = try await account("ann@example.com", role: .operator, password: "the right password")
        let (token, session, account) = try await accounts.signIn(email: " ANN@example.com", password: "the right password")
        #expect(account == ann)
        #expect(token.count == 43)
        #expect(session.tokenHash == AccountToken.digest(token))
        #expect(session.accountID == ann.id)
        #expect(session.expiresAt == clock.now.addingTimeInterval(12 * 3600))
        #expect(session.csrfToken.count == 43)
        #expect(session.csrfToken != token)
        let stored = try #require(try await store.session(tokenHash: AccountToken.digest(token)))
        #expect(stored.session == session)

        let principal = try #require(try await accounts.principal(sessionToken: token))
        #expect(principal == Principal(accountID: ann.id, actor: "ann@example.com", role: .operator, csrfToken: session.csrfToken))
        #expect(try await accounts.principal(sessionToken: token + "x") == nil)
        #expect(try await accounts.principal(sessionToken: "") == nil)

        let entries = try await store.audit(before: nil, limit: 10)
        #expect(entries.map { [$0.actor, $0.action, $0.target] } == [["ann@example.com", "session.signin", "ann@example.com"]])
    }

    @Test func anExpiredSessionSignsNobodyInAndIsDeleted() async throws {
        _ = try await account("ann@example.com", role: .viewer)
        let (token, _, _) = try await accounts.signIn(email: "ann@example.com", password: "a long enough password")
        clock.advance(by: 12 * 3600 - 1)
        #expect(try await accounts.principal(sessionToken: token) != nil)
        clock.advance(by: 1)
        #expect(try await accounts.principal(sessionToken: token) == nil)
        #expect(try await store.session(tokenHash: AccountToken.digest(token)) == nil)
    }

    @Test func sessionLifetimeComesFromTheSettingsAndExpiredSessionsAreSwept() async throws {
        _ = try await account("ann@example.com", role: .viewer)
        let short = Accounts(store: store, clock: clock, settings: AccountSettings(sessionLifetime: .seconds(60), passwordRounds: 100))
        let first = try await short.signIn(email: "ann@example.com", password: "a long enough password")
        #expect(first.session.expiresAt == clock.now.addingTimeInterval(60))
        clock.advance(by: 30)
        let second = try await short.signIn(email: "ann@example.com", password: "a long enough password")
        clock.advance(by: 30)
        #expect(try await short.deleteExpiredSessions() == 1)
        #expect(try await short.principal(sessionToken: first.token) == nil)
        #expect(try await short.principal(sessionToken: second.token) != nil)
    }

    @Test func signingOutEndsTheSession() async throws {
        _ = try await account("ann@example.com", role: .viewer)
        let (token, _, _) = try await accounts.signIn(email: "ann@example.com", password: "a long enough password")
        try await accounts.signOut(sessionToken: token)
        #expect(try await accounts.principal(sessionToken: token) == nil)
        try await accounts.signOut(sessionToken: token)
    }

    // MARK: Passwords and accounts

    @Test func changingThePasswordClearsMustChangeAndReplacesTheOldOne() async throws {
        let ann = try await account("ann@example.com", role: .viewer, password: "one-time password", mustChange: true)
        let short = try await #require(throws: OperationRefusal.self) {
            try await accounts.changePassword(accountID: ann.id, current: "one-time password", new: "short")
        }
        #expect(short.kind == .invalid)
        #expect(short.description == "new_password: must be at least 12 characters, got 5")
        let wrong = try await #require(throws: OperationRefusal.self) {
            try await accounts.changePassword(accountID: ann.id, current: "not the password", new: "a brand new password")
        }
        #expect(wrong.kind == .unauthorized)
        #expect(wrong.description == "current_password: does not match the account's password")
        let same = try await #require(throws: OperationRefusal.self) {
            try await accounts.changePassword(accountID: ann.id, current: "one-time password", new: "one-time password")
        }
        #expect(same.description == "new_password: must differ from the current password")
        #expect(try await store.account(id: ann.id)?.mustChangePassword == true)

        try await accounts.changePassword(accountID: ann.id, current: "one-time password", new: "a brand new password")
        let changed = try #require(try await store.account(id: ann.id))
        #expect(!changed.mustChangePassword)
        await #expect(throws: OperationRefusal.signInRefused) { try await accounts.signIn(email: "ann@example.com", password: "one-time password") }
        #expect(try await accounts.signIn(email: "ann@example.com", password: "a brand new password").account.id == ann.id)
        #expect(try await store.audit(before: nil, limit: 10).map(\.action).contains("account.password"))

        let unknown = try await #require(throws: OperationRefusal.self) {
            try await accounts.changePassword(accountID: UUID(), current: "x", new: "a brand new password")
        }
        #expect(unknown.kind == .notFound)
    }

    @Test func onlyAnAdminCreatesAccountsAndAnEmailIsTakenOnce() async throws {
        let ops = try await account("ops@example.com", role: .operator)
        let forbidden = try await #require(throws: OperationRefusal.self) {
            try await accounts.createAccount(by: principal(ops), email: "new@example.com", role: .viewer, password: "a long enough password")
        }
        #expect(forbidden.kind == .forbidden)
        #expect(forbidden.description == "role: creating an account needs the admin role; ops@example.com is operator")

        let admin = principal(try await account("admin@example.com", role: .admin))
        let created = try await accounts.createAccount(by: admin, email: "New@Example.com", role: .viewer, password: "a long enough password")
        #expect(created.email == "new@example.com")
        #expect(created.mustChangePassword)
        #expect(try await store.account(email: "new@example.com") == created)

        let taken = try await #require(throws: OperationRefusal.self) {
            try await accounts.createAccount(by: admin, email: "NEW@example.com", role: .admin, password: "another long password")
        }
        #expect(taken.kind == .conflict)
        #expect(taken.description == "email: an account with new@example.com exists")
        let badEmail = try await #require(throws: OperationRefusal.self) {
            try await accounts.createAccount(by: .local, email: "new@", role: .viewer, password: "a long enough password")
        }
        #expect(badEmail.field == "email")
        let shortPassword = try await #require(throws: OperationRefusal.self) {
            try await accounts.createAccount(by: .local, email: "x@example.com", role: .viewer, password: "too short")
        }
        #expect(shortPassword.description == "password: must be at least 12 characters, got 9")

        let entry = try #require(try await store.audit(before: nil, limit: 1).first)
        #expect([entry.actor, entry.action, entry.target] == ["admin@example.com", "account.create", "new@example.com"])
        #expect(entry.detail == ["role": "viewer"])
    }

    // MARK: API tokens

    @Test func aTokensRoleCannotExceedItsCreators() async throws {
        let ops = principal(try await account("ops@example.com", role: .operator))
        let refusal = try await #require(throws: OperationRefusal.self) { try await accounts.createToken(by: ops, name: "ci", role: .admin) }
        #expect(refusal.kind == .forbidden)
        #expect(refusal.description == "role: must not exceed the creator's role (operator), got admin")
        #expect(try await store.tokens().isEmpty)

        let (text, record) = try await accounts.createToken(by: ops, name: "ci", role: .operator)
        #expect(text.hasPrefix("cairn_"))
        #expect(text.count == 6 + 43)
        #expect(record.tokenHash == AccountToken.digest(text))
        #expect(record.createdBy == "ops@example.com")
        _ = try await accounts.createToken(by: ops, name: "dashboards", role: .viewer)

        let badName = try await #require(throws: OperationRefusal.self) { try await accounts.createToken(by: ops, name: "two words", role: .viewer) }
        #expect(badName.description == #"name: must be 1 to 64 letters, digits, '.', '_' or '-', got "two words""#)
        let taken = try await #require(throws: OperationRefusal.self) { try await accounts.createToken(by: ops, name: "ci", role: .viewer) }
        #expect(taken.kind == .conflict)
    }

    @Test func aBearerTokenSignsInAsTheTokenAndNotesItsUse() async throws {
        let (text, record) = try await accounts.createToken(by: .local, name: "ci", role: .operator)
        let principal = try #require(try await accounts.principal(bearer: text))
        #expect(principal == Principal(accountID: nil, actor: "token:ci", role: .operator))
        let used = clock.now
        #expect(try await store.tokens().first?.lastUsedAt == used)
        // Within a minute another use writes nothing; after it, it does.
        clock.advance(by: 59)
        _ = try await accounts.principal(bearer: text)
        #expect(try await store.tokens().first?.lastUsedAt == used)
        clock.advance(by: 1)
        _ = try await accounts.principal(bearer: text)
        #expect(try await store.tokens().first?.lastUsedAt == clock.now)

        #expect(try await accounts.principal(bearer: String(text.dropFirst(6))) == nil)
        #expect(try await accounts.principal(bearer: "cairn_" + String(repeating: "A", count: 43)) == nil)
        #expect(record.role == .operator)
    }

    @Test func aRevokedTokenIsRefused() async throws {
        let ops = principal(try await account("ops@example.com", role: .operator))
        let viewer = principal(try await account("viewer@example.com", role: .viewer))
        let (text, record) = try await accounts.createToken(by: ops, name: "ci", role: .operator)

        let notTheirs = try await #require(throws: OperationRefusal.self) { try await accounts.revokeToken(by: viewer, id: record.id) }
        #expect(notTheirs.kind == .forbidden)
        #expect(try await accounts.principal(bearer: text) != nil)

        clock.advance(by: 5)
        try await accounts.revokeToken(by: ops, id: record.id)
        #expect(try await accounts.principal(bearer: text) == nil)
        #expect(try await store.tokens().first?.revokedAt == clock.now)

        let again = try await #require(throws: OperationRefusal.self) { try await accounts.revokeToken(by: .local, id: record.id) }
        #expect(again.kind == .conflict)
        #expect(again.description == #"id: token "ci" is already revoked"#)
        let unknown = try await #require(throws: OperationRefusal.self) { try await accounts.revokeToken(by: .local, id: UUID()) }
        #expect(unknown.kind == .notFound)

        // An admin revokes anyone's token.
        let (other, otherRecord) = try await accounts.createToken(by: ops, name: "deploy", role: .viewer)
        try await accounts.revokeToken(by: .local, id: otherRecord.id)
        #expect(try await accounts.principal(bearer: other) == nil)
        #expect(try await store.audit(before: nil, limit: 10).filter { $0.action == "token.revoke" }.map(\.actor) == ["local", "ops@example.com"])
    }

    // MARK: Audit

    @Test func auditEntriesPageNewestFirstEvenWithinOneMillisecond() async throws {
        var recorded: [AuditEntry] = []
        for n in 0..<5 {
            recorded.append(try await accounts.audit(.local, action: "run.cancel", target: "run-\(n)", detail: ["n": .number(JSONNumber(n))]))
        }
        #expect(recorded.allSatisfy { $0.actor == "local" && $0.at == clock.now })
        let first = try await store.audit(before: nil, limit: 3)
        #expect(first.map(\.target) == ["run-4", "run-3", "run-2"])
        let rest = try await store.audit(before: try #require(first.last?.id), limit: 3)
        #expect(rest.map(\.target) == ["run-1", "run-0"])
        #expect(rest.last?.detail == ["n": 0])
    }

    @Test func theLocalPrincipalIsAnAdminNamedLocal() {
        #expect(Principal.local.role == .admin)
        #expect(Principal.local.actor == "local")
        #expect(Principal.local.accountID == nil)
        #expect(Principal.local.csrfToken == nil)
        #expect(Principal.local.allows(.admin))
    }
}
