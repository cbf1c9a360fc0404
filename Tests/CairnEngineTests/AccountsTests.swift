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

    /// A new password signs the account out everywhere but where it was changed: a session
    /// opened with the old password (on a lost laptop, by whoever learned it) ends with it.
    @Test func changingThePasswordEndsTheAccountsOtherSessions() async throws {
        let ann = try await account("ann@example.com", role: .viewer)
        let here = try await accounts.signIn(email: "ann@example.com", password: "a long enough password")
        let elsewhere = try await accounts.signIn(email: "ann@example.com", password: "a long enough password")
        _ = try await account("bob@example.com", role: .viewer)
        let bob = try await accounts.signIn(email: "bob@example.com", password: "a long enough password")
        try await accounts.changePassword(accountID: ann.id, current: "a long enough password", new: "a brand new password", keepingSession: here.token)
        #expect(try await accounts.principal(sessionToken: here.token)?.accountID == ann.id)
        #expect(try await accounts.principal(sessionToken: elsewhere.token) == nil)
        #expect(try await accounts.principal(sessionToken: bob.token) != nil)
        // A refused change ends nothing.
        await #expect(throws: OperationRefusal.self) {
            try await accounts.changePassword(accountID: ann.id, current: "not the password", new: "another new password", keepingSession: nil)
        }
        #expect(try await accounts.principal(sessionToken: here.token) != nil)
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

    // MARK: Managing accounts

    @Test func onlyAnAdminManagesAccountsAndAnUnknownIdIsNotFound() async throws {
        let ops = principal(try await account("ops@example.com", role: .operator))
        let ann = try await account("ann@example.com", role: .viewer)
        let refusals = [
            try await #require(throws: OperationRefusal.self) { try await accounts.changeRole(by: ops, id: ann.id, role: .admin) },
            try await #require(throws: OperationRefusal.self) { try await accounts.disableAccount(by: ops, id: ann.id) },
            try await #require(throws: OperationRefusal.self) { try await accounts.enableAccount(by: ops, id: ann.id) },
            try await #require(throws: OperationRefusal.self) { try await accounts.resetPassword(by: ops, id: ann.id) },
        ]
        #expect(refusals.allSatisfy { $0.kind == .forbidden && $0.field == "role" })
        #expect(refusals.map(\.rule) == [
            "changing an account's role needs the admin role; ops@example.com is operator",
            "disabling an account needs the admin role; ops@example.com is operator",
            "enabling an account needs the admin role; ops@example.com is operator",
            "resetting a password needs the admin role; ops@example.com is operator",
        ])
        #expect(try await store.account(id: ann.id) == ann)

        let unknown = UUID()
        let notFound = try await #require(throws: OperationRefusal.self) { try await accounts.disableAccount(by: .local, id: unknown) }
        #expect(notFound.kind == .notFound)
        #expect(notFound.description == "id: must name an account, got \(unknown)")
        for refused in [
            { try await accounts.changeRole(by: .local, id: unknown, role: .viewer) },
            { try await accounts.enableAccount(by: .local, id: unknown) },
            { _ = try await accounts.resetPassword(by: .local, id: unknown) },
        ] as [() async throws -> Void] {
            await #expect(throws: notFound) { try await refused() }
        }
        #expect(try await store.audit(before: nil, limit: 10).isEmpty)
    }

    @Test func aRoleChangeShowsAtOnceInSessionsAndTokens() async throws {
        let admin = principal(try await account("admin@example.com", role: .admin))
        let ann = try await account("ann@example.com", role: .admin)
        let (session, _, _) = try await accounts.signIn(email: "ann@example.com", password: "a long enough password")
        let (token, _) = try await accounts.createToken(by: principal(ann), name: "ann-ci", role: .operator)

        let changed = try await accounts.changeRole(by: admin, id: ann.id, role: .viewer)
        #expect(changed.role == .viewer)
        #expect(try await store.account(id: ann.id)?.role == .viewer)
        #expect(try await accounts.principal(sessionToken: session)?.role == .viewer)
        // A token never acts with more than its creator's role now.
        #expect(try await accounts.principal(bearer: token)?.role == .viewer)
        let entry = try #require(try await store.audit(before: nil, limit: 1).first)
        #expect([entry.actor, entry.action, entry.target] == ["admin@example.com", "account.role", "ann@example.com"])
        #expect(entry.detail == ["from": "admin", "role": "viewer"])

        // The same role again changes and records nothing; promoting gives the token its role back.
        try await accounts.changeRole(by: admin, id: ann.id, role: .viewer)
        #expect(try await store.audit(before: nil, limit: 10).filter { $0.action == "account.role" }.count == 1)
        try await accounts.changeRole(by: .local, id: ann.id, role: .admin)
        #expect(try await accounts.principal(bearer: token)?.role == .operator)
        #expect(try await store.audit(before: nil, limit: 1).first?.actor == "local")
    }

    @Test func anAdminCannotDemoteOrDisableThemselves() async throws {
        let me = try await account("admin@example.com", role: .admin)
        _ = try await account("other@example.com", role: .admin)
        let demote = try await #require(throws: OperationRefusal.self) { try await accounts.changeRole(by: principal(me), id: me.id, role: .operator) }
        #expect(demote.kind == .forbidden)
        #expect(demote.description == "role: an admin cannot demote their own account (admin@example.com); another admin can")
        let disable = try await #require(throws: OperationRefusal.self) { try await accounts.disableAccount(by: principal(me), id: me.id) }
        #expect(disable.kind == .forbidden)
        #expect(disable.description == "id: an admin cannot disable their own account (admin@example.com); another admin can")
        #expect(try await store.account(id: me.id) == me)
        #expect(try await store.audit(before: nil, limit: 10).isEmpty)
        // Keeping one's own role is no change.
        #expect(try await accounts.changeRole(by: principal(me), id: me.id, role: .admin) == me)
    }

    @Test func theLastEnabledAdminIsNeitherDemotedNorDisabled() async throws {
        let only = try await account("admin@example.com", role: .admin)
        let other = try await account("other@example.com", role: .admin)
        // Another admin that is disabled does not count.
        try await accounts.disableAccount(by: principal(only), id: other.id)
        let demote = try await #require(throws: OperationRefusal.self) { try await accounts.changeRole(by: .local, id: only.id, role: .viewer) }
        #expect(demote.kind == .conflict)
        #expect(demote.description == "role: admin@example.com is the last enabled admin; make another account an admin first")
        let disable = try await #require(throws: OperationRefusal.self) { try await accounts.disableAccount(by: .local, id: only.id) }
        #expect(disable.kind == .conflict)
        #expect(disable.description == "id: admin@example.com is the last enabled admin; make another account an admin first")
        #expect(try await store.account(id: only.id) == only)
        #expect(try await store.audit(before: nil, limit: 10).map(\.action) == ["account.disable"])

        try await accounts.enableAccount(by: .local, id: other.id)
        try await accounts.changeRole(by: principal(other), id: only.id, role: .viewer)
        #expect(try await store.account(id: only.id)?.role == .viewer)
    }

    @Test func aDisabledAccountSignsNothingInUntilItIsEnabled() async throws {
        let admin = principal(try await account("admin@example.com", role: .admin))
        let ann = try await account("ann@example.com", role: .operator, password: "ann's own password")
        let (session, _, _) = try await accounts.signIn(email: "ann@example.com", password: "ann's own password")
        let (token, _) = try await accounts.createToken(by: principal(ann), name: "ann-ci", role: .operator)
        let (localToken, _) = try await accounts.createToken(by: .local, name: "dev", role: .operator)

        clock.advance(by: 5)
        let disabled = try await accounts.disableAccount(by: admin, id: ann.id)
        #expect(disabled.disabledAt == clock.now)
        #expect(try await store.account(id: ann.id)?.disabledAt == clock.now)
        #expect(try await store.session(tokenHash: AccountToken.digest(session)) == nil)
        #expect(try await accounts.principal(sessionToken: session) == nil)
        #expect(try await accounts.principal(bearer: token) == nil)
        #expect(try await accounts.principal(bearer: localToken) != nil)
        // Kept, not revoked.
        #expect(try await store.tokens().first { $0.name == "ann-ci" }?.revokedAt == nil)
        // The right password is told the account is disabled; a wrong one learns nothing.
        let refused = try await #require(throws: OperationRefusal.self) { try await accounts.signIn(email: "ann@example.com", password: "ann's own password") }
        #expect(refused == .accountDisabled("ann@example.com"))
        #expect(refused.description == "email: the account ann@example.com is disabled; an admin can enable it")
        await #expect(throws: OperationRefusal.signInRefused) { try await accounts.signIn(email: "ann@example.com", password: "not ann's password") }

        let again = try await #require(throws: OperationRefusal.self) { try await accounts.disableAccount(by: admin, id: ann.id) }
        #expect(again.kind == .conflict)
        #expect(again.description == "id: the account ann@example.com is already disabled")

        try await accounts.enableAccount(by: admin, id: ann.id)
        #expect(try await store.account(id: ann.id)?.disabledAt == nil)
        #expect(try await accounts.principal(bearer: token)?.actor == "token:ann-ci")
        #expect(try await accounts.principal(sessionToken: session) == nil)
        #expect(try await accounts.signIn(email: "ann@example.com", password: "ann's own password").account.id == ann.id)
        let notDisabled = try await #require(throws: OperationRefusal.self) { try await accounts.enableAccount(by: admin, id: ann.id) }
        #expect(notDisabled.description == "id: the account ann@example.com is not disabled")

        let entries = try await store.audit(before: nil, limit: 10).filter { $0.action.hasPrefix("account.") }
        #expect(entries.map { [$0.actor, $0.action, $0.target] } == [
            ["admin@example.com", "account.enable", "ann@example.com"], ["admin@example.com", "account.disable", "ann@example.com"],
        ])
    }

    @Test func aPasswordResetSetsAOneTimePasswordAndSignsTheAccountOut() async throws {
        let admin = principal(try await account("admin@example.com", role: .admin))
        let ann = try await account("ann@example.com", role: .viewer, password: "forgotten password")
        let first = try await accounts.signIn(email: "ann@example.com", password: "forgotten password")
        let second = try await accounts.signIn(email: "ann@example.com", password: "forgotten password")

        let (password, account) = try await accounts.resetPassword(by: admin, id: ann.id)
        #expect(password.count == 32)
        #expect(account.mustChangePassword)
        let stored = try #require(try await store.account(id: ann.id))
        #expect(stored.mustChangePassword)
        #expect(!stored.passwordHash.contains(password))
        #expect(try await accounts.principal(sessionToken: first.token) == nil)
        #expect(try await accounts.principal(sessionToken: second.token) == nil)
        await #expect(throws: OperationRefusal.signInRefused) { try await accounts.signIn(email: "ann@example.com", password: "forgotten password") }
        let signedIn = try await accounts.signIn(email: "ann@example.com", password: password)
        #expect(try await accounts.principal(sessionToken: signedIn.token)?.mustChangePassword == true)
        try await accounts.changePassword(accountID: ann.id, current: password, new: "a new own password")

        let entry = try #require(try await store.audit(before: nil, limit: 10).first { $0.action == "account.reset" })
        #expect([entry.actor, entry.target] == ["admin@example.com", "ann@example.com"])
        #expect(!entry.detail.jsonString.contains(password))
        // Another reset gives another password.
        #expect(try await accounts.resetPassword(by: .local, id: ann.id).password != password)
    }

    /// A disable or a reset that lands while a sign-in checks the password (after the sign-in
    /// read the account, before it stored its session) leaves no session behind.
    @Test(arguments: ["disable", "reset"])
    func aSignInUnderWayWhenTheAccountChangesStartsNoSession(_ change: String) async throws {
        let ann = try await account("ann@example.com", role: .viewer, password: "ann's own password")
        let admin = accounts
        let racing = Accounts(
            store: SessionHook(inner: store) {
                if change == "disable" {
                    try await admin.disableAccount(by: .local, id: ann.id)
                } else {
                    _ = try await admin.resetPassword(by: .local, id: ann.id)
                }
            }, clock: clock, settings: AccountSettings(passwordRounds: 100))
        let refusal = try await #require(throws: OperationRefusal.self) { try await racing.signIn(email: "ann@example.com", password: "ann's own password") }
        #expect(refusal == (change == "disable" ? .accountDisabled("ann@example.com") : .signInRefused))
        #expect(try await store.deleteSessions(accountID: ann.id) == 0)
        #expect(try await store.audit(before: nil, limit: 10).map(\.action) == ["account.\(change)"])
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

/// An account store that runs `beforeCreateSession` just before it stores a session, to land
/// a change in the middle of a sign-in.
private struct SessionHook: AccountStore {
    let inner: InMemoryAccountStore
    let beforeCreateSession: @Sendable () async throws -> Void

    func createSession(_ session: AccountSession) async throws {
        try await beforeCreateSession()
        try await inner.createSession(session)
    }

    func createAccount(_ account: Account) async throws { try await inner.createAccount(account) }
    func account(email: String) async throws -> Account? { try await inner.account(email: email) }
    func account(id: UUID) async throws -> Account? { try await inner.account(id: id) }
    func accounts() async throws -> [Account] { try await inner.accounts() }
    func accountCount() async throws -> Int { try await inner.accountCount() }
    func updatePassword(id: UUID, hash: String, mustChange: Bool, keepingSession: [UInt8]?) async throws -> Bool {
        try await inner.updatePassword(id: id, hash: hash, mustChange: mustChange, keepingSession: keepingSession)
    }
    func updateRole(id: UUID, role: AccountRole) async throws -> Bool { try await inner.updateRole(id: id, role: role) }
    func disableAccount(id: UUID, now: Date) async throws -> Bool { try await inner.disableAccount(id: id, now: now) }
    func enableAccount(id: UUID) async throws -> Bool { try await inner.enableAccount(id: id) }
    func session(tokenHash: [UInt8]) async throws -> (session: AccountSession, account: Account)? { try await inner.session(tokenHash: tokenHash) }
    func deleteSession(tokenHash: [UInt8]) async throws { try await inner.deleteSession(tokenHash: tokenHash) }
    func deleteSessions(accountID: UUID) async throws -> Int { try await inner.deleteSessions(accountID: accountID) }
    func deleteExpiredSessions(now: Date) async throws -> Int { try await inner.deleteExpiredSessions(now: now) }
    func createToken(_ token: APIToken) async throws { try await inner.createToken(token) }
    func token(hash: [UInt8]) async throws -> (token: APIToken, creator: Account?)? { try await inner.token(hash: hash) }
    func tokens() async throws -> [APIToken] { try await inner.tokens() }
    func revokeToken(id: UUID, now: Date) async throws -> Bool { try await inner.revokeToken(id: id, now: now) }
    func touchToken(id: UUID, now: Date) async throws { try await inner.touchToken(id: id, now: now) }
    func record(_ entry: AuditEntry) async throws { try await inner.record(entry) }
    func audit(before: ULID?, limit: Int) async throws -> [AuditEntry] { try await inner.audit(before: before, limit: limit) }
}
