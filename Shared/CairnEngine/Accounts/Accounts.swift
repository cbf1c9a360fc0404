public import CairnCore
import Dispatch
public import Foundation
import Synchronization

extension OperationRefusal {
    /// What a sign-in with an unknown email and one with a wrong password are both told, so
    /// that the answer does not reveal which emails have accounts.
    public static let signInRefused = OperationRefusal(
        kind: .unauthorized, field: "email and password", rule: "do not match an account; check both and try again")

    /// What a sign-in with the right password for a disabled account is told.
    public static func accountDisabled(_ email: String) -> OperationRefusal {
        OperationRefusal(kind: .forbidden, field: "email", rule: "the account \(email) is disabled; an admin can enable it")
    }
}

/// Who is making a request: a signed-in account, an API token, or the local developer.
public struct Principal: Sendable, Hashable {
    /// The signed-in account; nil for an API token and for `local`.
    public var accountID: UUID?
    /// The name audit entries give it: the account's email, `token:<name>`, or `local`.
    public var actor: String
    /// What it may do.
    public var role: AccountRole
    /// The session's CSRF token, which a form it posts must carry; nil for an API token and
    /// for `local` (neither signs in with a cookie).
    public var csrfToken: String?
    /// Whether the account must choose a new password before anything else.
    public var mustChangePassword: Bool

    public init(accountID: UUID?, actor: String, role: AccountRole, csrfToken: String? = nil, mustChangePassword: Bool = false) {
        self.accountID = accountID
        self.actor = actor
        self.role = role
        self.csrfToken = csrfToken
        self.mustChangePassword = mustChangePassword
    }

    /// The developer running `cairn dev`: an admin, signed in without a password.
    public static let local = Principal(accountID: nil, actor: "local", role: .admin)

    /// Whether this principal may do what `needed` may.
    public func allows(_ needed: AccountRole) -> Bool {
        role.allows(needed)
    }
}

/// How `Accounts` signs people in.
public struct AccountSettings: Sendable {
    /// How long a session signs its account in after sign-in; default 12 hours.
    public var sessionLifetime: Duration
    /// The PBKDF2 rounds new password hashes are made with; default `PasswordHash.defaultRounds`
    /// (600,000). Existing hashes keep the rounds they were made with. Tests use a few hundred.
    public var passwordRounds: Int

    public init(sessionLifetime: Duration = .seconds(12 * 3600), passwordRounds: Int = PasswordHash.defaultRounds) {
        self.sessionLifetime = sessionLifetime
        self.passwordRounds = passwordRounds
    }
}

/// Accounts, sign-in and API tokens for the dashboard and the API (docs/architecture.md): the
/// routes decide who is asking with `principal(sessionToken:)` or `principal(bearer:)`, then
/// come here to act on accounts and tokens, and call `audit` for what they do to runs and
/// functions.
///
/// The operations on accounts and tokens record their own audit entries (`account.create`,
/// `account.password`, `account.role`, `account.disable`, `account.enable`, `account.reset`,
/// `token.create`, `token.revoke`, `session.signin`); a caller does not record those again.
///
/// A disabled account signs nothing in, whenever the disable lands: sign-in refuses it, and
/// `principal(sessionToken:)` and `principal(bearer:)` read the account with the session or
/// the token's creator on every request, so a session or token presented after the disable is
/// refused even if it was made while the disable was under way. Disabling also deletes the
/// sessions; the tokens are kept (not revoked), and work again when the account is enabled.
///
/// Secrets: passwords are stored as `PasswordHash` encodings, session and API tokens as their
/// SHA-256 digests; the plaintext of a one-time password or an API token is returned once and
/// kept nowhere. Password hashing is slow on purpose and runs on a Dispatch thread, not the
/// caller's (an event loop in a role process). Safe to use concurrently.
public struct Accounts: Sendable {
    /// Where accounts, sessions, tokens and the audit log are kept (for the list pages).
    public let store: any AccountStore
    let clock: any WallClock
    /// The settings it was made with.
    public let settings: AccountSettings
    private let auditIDs = AuditIDs()

    /// The fewest characters a password may have.
    public static let minimumPasswordLength = 12
    /// The most UTF-8 bytes a password may have.
    public static let maximumPasswordBytes = 1024
    /// The prefix of every API token's text.
    public static let tokenPrefix = "cairn_"
    /// How stale an API token's `lastUsedAt` may get before a use writes it again, in seconds;
    /// so that a busy token does not cost a write per request.
    public static let tokenTouchInterval: TimeInterval = 60

    public init(store: any AccountStore, clock: any WallClock, settings: AccountSettings = AccountSettings()) {
        self.store = store
        self.clock = clock
        self.settings = settings
    }

    // MARK: Signing in

    /// Creates the first account, an admin with a random one-time password it must change at
    /// first sign-in, when there is no account yet. Returns that password (32 URL-safe
    /// characters) for the caller to show once; nil when an account exists.
    ///
    /// Safe when several processes start at once with the same email: the store refuses all but
    /// one creation, and those refused get nil.
    ///
    /// - Throws: `OperationRefusal` `.invalid` when `adminEmail` is not an address.
    public func bootstrap(adminEmail: String) async throws -> String? {
        let email = try Self.validEmail(adminEmail)
        guard try await store.accountCount() == 0 else { return nil }
        let password = AccountToken.text(Self.randomBytes(24))
        let hash = await hashPassword(password)
        let account = Account(id: UUID(), email: email, role: .admin, passwordHash: hash, mustChangePassword: true, createdAt: clock.now)
        do {
            try await store.createAccount(account)
        } catch let refusal as OperationRefusal where refusal.kind == .conflict {
            return nil
        }
        return password
    }

    /// Signs in with an email and a password: starts a session and returns the token for its
    /// cookie (43 base64url characters), the session and the account.
    ///
    /// An unknown email costs the same password verification as a known one, and both it and a
    /// wrong password get `OperationRefusal.signInRefused`; the right password of a disabled
    /// account gets `OperationRefusal.accountDisabled`.
    public func signIn(email: String, password: String) async throws -> (token: String, session: AccountSession, account: Account) {
        let found = try await store.account(email: email)
        let encoded = found?.passwordHash ?? PasswordHash.placeholder(rounds: settings.passwordRounds)
        let matches = await Self.offloaded { PasswordHash.verify(password: password, encoded: encoded) }
        guard let account = found, matches else { throw OperationRefusal.signInRefused }
        guard account.disabledAt == nil else { throw OperationRefusal.accountDisabled(account.email) }
        let now = clock.now
        let token = AccountToken.text(Self.randomBytes(32))
        let session = AccountSession(
            tokenHash: AccountToken.digest(token), accountID: account.id, csrfToken: AccountToken.text(Self.randomBytes(32)), createdAt: now,
            expiresAt: now.addingTimeInterval(settings.sessionLifetime.timeInterval))
        try await store.createSession(session)
        // A disable or a password reset may have landed while the password was checked, after
        // it deleted the account's sessions: this one then goes too, before anyone has its token.
        let current = try await store.account(id: account.id)
        guard let current, current.disabledAt == nil, current.passwordHash == account.passwordHash else {
            try await store.deleteSession(tokenHash: session.tokenHash)
            if let current, current.disabledAt != nil { throw OperationRefusal.accountDisabled(account.email) }
            throw OperationRefusal.signInRefused
        }
        try await record(actor: account.email, action: "session.signin", target: account.email, detail: [:], at: now)
        return (token, session, account)
    }

    /// The principal a session cookie's token signs in; nil when the token names no session,
    /// or its session has expired or its account is disabled (such a session is deleted).
    public func principal(sessionToken: String) async throws -> Principal? {
        guard !sessionToken.isEmpty, sessionToken.utf8.count <= 256 else { return nil }
        guard let (session, account) = try await store.session(tokenHash: AccountToken.digest(sessionToken)) else { return nil }
        guard session.expiresAt > clock.now, account.disabledAt == nil else {
            try await store.deleteSession(tokenHash: session.tokenHash)
            return nil
        }
        return Principal(
            accountID: account.id, actor: account.email, role: account.role, csrfToken: session.csrfToken, mustChangePassword: account.mustChangePassword)
    }

    /// The principal an API token (the text after `Bearer `) signs in, acting as
    /// `token:<name>` with the token's role, lowered to its creator's role if that account has
    /// since been demoted; nil when it names no live token, or its creator's account is
    /// disabled. Notes the use in the token's `lastUsedAt` (at most once per
    /// `tokenTouchInterval`).
    public func principal(bearer: String) async throws -> Principal? {
        guard bearer.hasPrefix(Self.tokenPrefix), bearer.utf8.count <= 256 else { return nil }
        guard let (token, creator) = try await store.token(hash: AccountToken.digest(bearer)), creator?.disabledAt == nil else { return nil }
        let now = clock.now
        if token.lastUsedAt.map({ now.timeIntervalSince($0) >= Self.tokenTouchInterval }) ?? true {
            try await store.touchToken(id: token.id, now: now)
        }
        return Principal(accountID: nil, actor: "token:\(token.name)", role: min(token.role, creator?.role ?? token.role))
    }

    /// Ends the session a cookie's token names; ending one that does not exist does nothing.
    public func signOut(sessionToken: String) async throws {
        try await store.deleteSession(tokenHash: AccountToken.digest(sessionToken))
    }

    /// Deletes the sessions that have expired by now. Returns how many.
    @discardableResult
    public func deleteExpiredSessions() async throws -> Int {
        try await store.deleteExpiredSessions(now: clock.now)
    }

    // MARK: Managing accounts

    /// Replaces an account's password, given its current one, and clears its must-change flag.
    /// Every session of the account ends with the old password but the one `keepingSession`
    /// (the token of the session making the change) names.
    ///
    /// - Throws: `OperationRefusal`: `.invalid` on `new_password` when it is shorter than
    ///   `minimumPasswordLength` characters, longer than `maximumPasswordBytes` bytes, or equal
    ///   to the current one; `.unauthorized` on `current_password` when it does not match;
    ///   `.notFound` on `account_id`.
    public func changePassword(accountID: UUID, current: String, new: String, keepingSession: String? = nil) async throws {
        guard let account = try await store.account(id: accountID) else {
            throw OperationRefusal(kind: .notFound, field: "account_id", rule: "must name an account, got \(accountID)")
        }
        try Self.checkPassword(new, field: "new_password")
        let matches = await Self.offloaded { PasswordHash.verify(password: current, encoded: account.passwordHash) }
        guard matches else {
            throw OperationRefusal(kind: .unauthorized, field: "current_password", rule: "does not match the account's password")
        }
        guard new != current else {
            throw OperationRefusal(kind: .invalid, field: "new_password", rule: "must differ from the current password")
        }
        let hash = await hashPassword(new)
        guard try await store.updatePassword(id: accountID, hash: hash, mustChange: false, keepingSession: keepingSession.map(AccountToken.digest))
        else {
            throw OperationRefusal(kind: .notFound, field: "account_id", rule: "must name an account, got \(accountID)")
        }
        try await record(actor: account.email, action: "account.password", target: account.email, detail: [:], at: clock.now)
    }

    /// Creates an account with a password an admin chose; by default its owner must change it
    /// at first sign-in.
    ///
    /// - Throws: `OperationRefusal`: `.forbidden` on `role` unless `principal` is an admin;
    ///   `.invalid` on `email` or `password`; `.conflict` on `email` when it is taken.
    public func createAccount(by principal: Principal, email: String, role: AccountRole, password: String, mustChangePassword: Bool = true)
        async throws -> Account
    {
        guard principal.allows(.admin) else {
            throw OperationRefusal(
                kind: .forbidden, field: "role", rule: "creating an account needs the admin role; \(principal.actor) is \(principal.role)")
        }
        let email = try Self.validEmail(email)
        try Self.checkPassword(password, field: "password")
        let hash = await hashPassword(password)
        let now = clock.now
        let account = Account(id: UUID(), email: email, role: role, passwordHash: hash, mustChangePassword: mustChangePassword, createdAt: now)
        try await store.createAccount(account)
        try await record(actor: principal.actor, action: "account.create", target: account.email, detail: ["role": .string(role.rawValue)], at: now)
        return account
    }

    /// Gives the account `id` another role; giving it the role it has changes nothing. Returns
    /// the account as it is now. Its sessions and tokens act with the new role at once (a token
    /// never with more than its creator's role).
    ///
    /// - Throws: `OperationRefusal`: `.forbidden` on `role` unless `principal` is an admin, or
    ///   when an admin demotes their own account; `.notFound` on `id`;
    ///   `OperationRefusal.lastEnabledAdmin` on `role` when it would leave no enabled admin.
    @discardableResult
    public func changeRole(by principal: Principal, id: UUID, role: AccountRole) async throws -> Account {
        var account = try await managedAccount(by: principal, id: id, doing: "changing an account's role")
        guard account.role != role else { return account }
        guard account.id != principal.accountID else {
            throw OperationRefusal(kind: .forbidden, field: "role", rule: "an admin cannot demote their own account (\(account.email)); another admin can")
        }
        guard try await store.updateRole(id: id, role: role) else { throw Self.noAccount(id) }
        try await record(
            actor: principal.actor, action: "account.role", target: account.email,
            detail: ["from": .string(account.role.rawValue), "role": .string(role.rawValue)], at: clock.now)
        account.role = role
        return account
    }

    /// Disables the account `id`: it can no longer sign in, its sessions are deleted, and its
    /// sessions and API tokens are refused from now on (kept, not revoked: enabling it gives
    /// the tokens back). Returns the account as it is now.
    ///
    /// - Throws: `OperationRefusal`: `.forbidden` on `role` unless `principal` is an admin;
    ///   `.notFound` on `id`; `.forbidden` on `id` when an admin disables their own account;
    ///   `.conflict` on `id` when it is already disabled; `OperationRefusal.lastEnabledAdmin` on
    ///   `id` when it would leave no enabled admin.
    @discardableResult
    public func disableAccount(by principal: Principal, id: UUID) async throws -> Account {
        var account = try await managedAccount(by: principal, id: id, doing: "disabling an account")
        guard account.id != principal.accountID else {
            throw OperationRefusal(kind: .forbidden, field: "id", rule: "an admin cannot disable their own account (\(account.email)); another admin can")
        }
        let now = clock.now
        guard account.disabledAt == nil, try await store.disableAccount(id: id, now: now) else {
            throw OperationRefusal(kind: .conflict, field: "id", rule: "the account \(account.email) is already disabled")
        }
        try await record(actor: principal.actor, action: "account.disable", target: account.email, detail: [:], at: now)
        account.disabledAt = now
        return account
    }

    /// Enables the disabled account `id`: its password signs in again, and its API tokens work
    /// again. Returns the account as it is now.
    ///
    /// - Throws: `OperationRefusal`: `.forbidden` on `role` unless `principal` is an admin;
    ///   `.notFound` on `id`; `.conflict` on `id` when it is not disabled.
    @discardableResult
    public func enableAccount(by principal: Principal, id: UUID) async throws -> Account {
        var account = try await managedAccount(by: principal, id: id, doing: "enabling an account")
        guard account.disabledAt != nil, try await store.enableAccount(id: id) else {
            throw OperationRefusal(kind: .conflict, field: "id", rule: "the account \(account.email) is not disabled")
        }
        try await record(actor: principal.actor, action: "account.enable", target: account.email, detail: [:], at: clock.now)
        account.disabledAt = nil
        return account
    }

    /// Gives the account `id` a new random one-time password that its owner must change at
    /// next sign-in, and deletes its sessions. Returns the password (32 URL-safe characters),
    /// for the caller to show once, and the account as it is now.
    ///
    /// - Throws: `OperationRefusal`: `.forbidden` on `role` unless `principal` is an admin;
    ///   `.notFound` on `id`.
    public func resetPassword(by principal: Principal, id: UUID) async throws -> (password: String, account: Account) {
        var account = try await managedAccount(by: principal, id: id, doing: "resetting a password")
        let password = AccountToken.text(Self.randomBytes(24))
        let hash = await hashPassword(password)
        // Its sessions end with the new hash: a sign-in still checking the old password sees
        // the change and drops its session (`signIn`).
        guard try await store.updatePassword(id: id, hash: hash, mustChange: true, keepingSession: nil) else { throw Self.noAccount(id) }
        try await record(actor: principal.actor, action: "account.reset", target: account.email, detail: [:], at: clock.now)
        account.passwordHash = hash
        account.mustChangePassword = true
        return (password, account)
    }

    /// The account `id`, for an admin to manage.
    func managedAccount(by principal: Principal, id: UUID, doing what: String) async throws -> Account {
        guard principal.allows(.admin) else {
            throw OperationRefusal(kind: .forbidden, field: "role", rule: "\(what) needs the admin role; \(principal.actor) is \(principal.role)")
        }
        guard let account = try await store.account(id: id) else { throw Self.noAccount(id) }
        return account
    }

    static func noAccount(_ id: UUID) -> OperationRefusal {
        OperationRefusal(kind: .notFound, field: "id", rule: "must name an account, got \(id)")
    }

    // MARK: API tokens

    /// Creates an API token named `name` with `role`, on behalf of `principal`. Returns its
    /// text (`cairn_` + 43 base64url characters), to be shown once, and its record.
    ///
    /// - Throws: `OperationRefusal`: `.invalid` on `name` unless it is 1 to 64 letters, digits,
    ///   `.`, `_` or `-`; `.forbidden` on `role` when it exceeds `principal`'s; `.conflict` on
    ///   `name` when a live token has it.
    public func createToken(by principal: Principal, name: String, role: AccountRole) async throws -> (token: String, record: APIToken) {
        guard (1...64).contains(name.utf8.count), name.utf8.allSatisfy(Self.isTokenNameByte) else {
            throw OperationRefusal(
                kind: .invalid, field: "name", rule: "must be 1 to 64 letters, digits, '.', '_' or '-', got \(JSONValue.string(name).jsonString)")
        }
        guard principal.allows(role) else {
            throw OperationRefusal(kind: .forbidden, field: "role", rule: "must not exceed the creator's role (\(principal.role)), got \(role)")
        }
        let text = Self.tokenPrefix + AccountToken.text(Self.randomBytes(32))
        let now = clock.now
        let token = APIToken(id: UUID(), name: name, role: role, tokenHash: AccountToken.digest(text), createdBy: principal.actor, createdAt: now)
        try await store.createToken(token)
        try await record(
            actor: principal.actor, action: "token.create", target: name, detail: ["id": .string(token.id.uuidString), "role": .string(role.rawValue)], at: now)
        return (text, token)
    }

    /// Revokes the API token `id`; an admin may revoke any token, anyone else the tokens they
    /// made. Returns the token as it was before.
    ///
    /// - Throws: `OperationRefusal`: `.notFound` on `id` when no token has it; `.forbidden` on
    ///   `id` when `principal` is neither an admin nor the token's creator; `.conflict` on `id`
    ///   when it is already revoked.
    @discardableResult
    public func revokeToken(by principal: Principal, id: UUID) async throws -> APIToken {
        guard let token = try await store.tokens().first(where: { $0.id == id }) else {
            throw OperationRefusal(kind: .notFound, field: "id", rule: "must name an API token, got \(id)")
        }
        guard principal.allows(.admin) || token.createdBy == principal.actor else {
            throw OperationRefusal(
                kind: .forbidden, field: "id", rule: "revoking a token made by someone else needs the admin role; \(principal.actor) is \(principal.role)")
        }
        let now = clock.now
        guard token.revokedAt == nil, try await store.revokeToken(id: id, now: now) else {
            throw OperationRefusal(kind: .conflict, field: "id", rule: "token \(JSONValue.string(token.name).jsonString) is already revoked")
        }
        try await record(actor: principal.actor, action: "token.revoke", target: token.name, detail: ["id": .string(id.uuidString)], at: now)
        return token
    }

    // MARK: Audit

    /// Records that `principal` did `action` (`run.cancel`, `function.pause`, …; see
    /// `AuditEntry.action`) to `target`, now. Returns the entry.
    @discardableResult
    public func audit(_ principal: Principal, action: String, target: String, detail: JSONValue = [:]) async throws -> AuditEntry {
        try await record(actor: principal.actor, action: action, target: target, detail: detail, at: clock.now)
    }

    @discardableResult
    func record(actor: String, action: String, target: String, detail: JSONValue, at now: Date) async throws -> AuditEntry {
        let entry = AuditEntry(id: auditIDs.next(now: now), at: now, actor: actor, action: action, target: target, detail: detail)
        try await store.record(entry)
        return entry
    }

    // MARK: Rules

    /// `email` normalized, if it is an address: 3 to 254 bytes, one `@` with text either side,
    /// no white space or control characters.
    static func validEmail(_ email: String) throws(OperationRefusal) -> String {
        let normalized = Account.normalizedEmail(email)
        let parts = normalized.split(separator: "@", omittingEmptySubsequences: false)
        guard (3...254).contains(normalized.utf8.count), parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty,
            !normalized.unicodeScalars.contains(where: { $0.properties.isWhitespace || $0.properties.generalCategory == .control })
        else {
            throw OperationRefusal(kind: .invalid, field: "email", rule: "must be an address such as ops@example.com, got \(JSONValue.string(email).jsonString)")
        }
        return normalized
    }

    /// Checks a new password's length (the password itself is never quoted in a message).
    static func checkPassword(_ password: String, field: String) throws(OperationRefusal) {
        guard password.count >= minimumPasswordLength else {
            throw OperationRefusal(
                kind: .invalid, field: field, rule: "must be at least \(minimumPasswordLength) characters, got \(password.count)")
        }
        guard password.utf8.count <= maximumPasswordBytes else {
            throw OperationRefusal(kind: .invalid, field: field, rule: "must be at most \(maximumPasswordBytes) bytes, got \(password.utf8.count)")
        }
    }

    static func isTokenNameByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"): true
        case UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "-"): true
        default: false
        }
    }

    // MARK: Secrets

    func hashPassword(_ password: String) async -> String {
        let salt = Self.randomBytes(PasswordHash.saltByteCount)
        let rounds = settings.passwordRounds
        return await Self.offloaded { PasswordHash.encode(password: password, salt: salt, rounds: rounds) }
    }

    /// `count` bytes from the system's cryptographically secure generator (`getrandom` on
    /// Linux, `arc4random` on Darwin).
    static func randomBytes(_ count: Int) -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<count).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
    }

    /// Runs `work` (a password hash: CPU for a fraction of a second) on a Dispatch thread, so
    /// that it never holds the caller's thread, which may be an event loop.
    static func offloaded<Result: Sendable>(_ work: @escaping @Sendable () -> Result) async -> Result {
        await withCheckedContinuation { continuation in
            DispatchQueue.global(qos: .userInitiated).async { continuation.resume(returning: work()) }
        }
    }
}

/// The ids of audit entries: ULIDs, monotonic within the process.
private final class AuditIDs: Sendable {
    private let generator = Mutex(ULIDGenerator())

    func next(now: Date) -> ULID {
        generator.withLock { $0.next(now: now) }
    }
}
