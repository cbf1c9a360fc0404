public import CairnCore
public import Foundation

/// A person who signs in to the dashboard or the API with an email and a password.
public struct Account: Sendable, Hashable {
    /// The account's id; it never changes.
    public var id: UUID
    /// The sign-in name, trimmed and lower-cased (`Account.normalizedEmail`); unique.
    public var email: String
    /// What the account may do.
    public var role: AccountRole
    /// The password's `PasswordHash` encoding; never the password.
    public var passwordHash: String
    /// Whether the account must choose a new password before anything else (set on a
    /// one-time or admin-chosen password, cleared by `Accounts.changePassword`).
    public var mustChangePassword: Bool
    /// When the account was created.
    public var createdAt: Date
    /// When an admin disabled it; nil while it is enabled. A disabled account signs nothing
    /// in: not its password, not its sessions, not the API tokens it made.
    public var disabledAt: Date?

    /// An account; `email` is stored normalized (`normalizedEmail`).
    public init(
        id: UUID, email: String, role: AccountRole, passwordHash: String, mustChangePassword: Bool, createdAt: Date, disabledAt: Date? = nil
    ) {
        self.id = id
        self.email = Account.normalizedEmail(email)
        self.role = role
        self.passwordHash = passwordHash
        self.mustChangePassword = mustChangePassword
        self.createdAt = createdAt
        self.disabledAt = disabledAt
    }

    /// `email` as accounts store and look it up: without surrounding white space, lower-cased.
    public static func normalizedEmail(_ email: String) -> String {
        email.trimmingCharacters(in: .whitespacesAndNewlines).lowercased()
    }
}

extension OperationRefusal {
    /// What a store answers when a change would leave no enabled admin: `email`'s account is
    /// the last one, and `field` is what the change was to (`role` or `id`).
    public static func lastEnabledAdmin(_ email: String, field: String) -> OperationRefusal {
        OperationRefusal(kind: .conflict, field: field, rule: "\(email) is the last enabled admin; make another account an admin first")
    }
}

/// A signed-in browser session. The cookie carries a random token; only the token's SHA-256
/// digest is stored, so the session table signs nobody in.
public struct AccountSession: Sendable, Hashable {
    /// `AccountToken.digest` of the cookie's token (32 bytes); the session's key.
    public var tokenHash: [UInt8]
    /// The account signed in.
    public var accountID: UUID
    /// The token a form posted in this session must carry (random, independent of the
    /// cookie's token).
    public var csrfToken: String
    /// When the account signed in.
    public var createdAt: Date
    /// When the session stops signing the account in.
    public var expiresAt: Date

    public init(tokenHash: [UInt8], accountID: UUID, csrfToken: String, createdAt: Date, expiresAt: Date) {
        self.tokenHash = tokenHash
        self.accountID = accountID
        self.csrfToken = csrfToken
        self.createdAt = createdAt
        self.expiresAt = expiresAt
    }
}

/// A bearer token for the API (`cairn_` + base64url of 32 random bytes). Only its SHA-256
/// digest is stored; the text is shown once, when it is made.
public struct APIToken: Sendable, Hashable {
    /// The token's id (to list and revoke it by).
    public var id: UUID
    /// What its creator called it; audit entries name it `token:<name>`. A live (unrevoked)
    /// token's name is unique.
    public var name: String
    /// What a caller presenting it may do; never more than its creator's role.
    public var role: AccountRole
    /// `AccountToken.digest` of the token's text (32 bytes); unique.
    public var tokenHash: [UInt8]
    /// The email (or actor name) of the principal who made it. A token made by an account
    /// (the account with this email) signs nothing in while that account is disabled, and
    /// never more than that account's current role.
    public var createdBy: String
    /// When it was made.
    public var createdAt: Date
    /// When it last signed a request in, to within `Accounts.tokenTouchInterval`; nil if never.
    public var lastUsedAt: Date?
    /// When it was revoked; a revoked token signs nothing in.
    public var revokedAt: Date?

    public init(
        id: UUID, name: String, role: AccountRole, tokenHash: [UInt8], createdBy: String, createdAt: Date, lastUsedAt: Date? = nil,
        revokedAt: Date? = nil
    ) {
        self.id = id
        self.name = name
        self.role = role
        self.tokenHash = tokenHash
        self.createdBy = createdBy
        self.createdAt = createdAt
        self.lastUsedAt = lastUsedAt
        self.revokedAt = revokedAt
    }
}

/// One line of the audit log: who did what to what, and when.
public struct AuditEntry: Sendable, Hashable {
    /// The entry's id; the log is ordered by it (newest has the greatest).
    public var id: ULID
    /// When it happened.
    public var at: Date
    /// Who did it: an account's email, `token:<name>` for an API token, or `local` in
    /// `cairn dev` (see `Principal.actor`).
    public var actor: String
    /// What was done, as `<noun>.<verb>`: `run.cancel`, `run.rerun`, `bulk.cancel`,
    /// `bulk.replay`, `function.pause`, `function.resume`, `function.invoke`, `event.send`,
    /// `account.create`, `account.password`, `account.role`, `account.disable`,
    /// `account.enable`, `account.reset`, `token.create`, `token.revoke`, `session.signin`.
    public var action: String
    /// What it was done to: a run or bulk job id, a function slug, an event name, an email, a
    /// token name.
    public var target: String
    /// Anything else worth keeping (the filter of a bulk job, a token's role); `{}` if nothing.
    public var detail: JSONValue

    public init(id: ULID, at: Date, actor: String, action: String, target: String, detail: JSONValue = [:]) {
        self.id = id
        self.at = at
        self.actor = actor
        self.action = action
        self.target = target
        self.detail = detail
    }
}

/// Accounts, their sessions, API tokens and the audit log, as the engine stores them.
///
/// Every method may throw an infrastructure error (the database is unreachable); the
/// refusals below are `OperationRefusal`s and leave the store unchanged. Each write is atomic.
/// Safe to call concurrently, from any number of processes sharing the store.
/// `AccountStoreContract` in CairnTesting holds every implementation to this.
public protocol AccountStore: Sendable {
    // MARK: Accounts

    /// Stores a new account.
    ///
    /// - Throws: `OperationRefusal` `.conflict` on the field `email` when an account with the same
    ///   normalized email exists (also when another caller creates it at the same moment: one
    ///   of them wins, the other is refused).
    func createAccount(_ account: Account) async throws

    /// The account with `email` (compared normalized, `Account.normalizedEmail`); nil if none.
    func account(email: String) async throws -> Account?

    /// The account with `id`; nil if none.
    func account(id: UUID) async throws -> Account?

    /// Every account, in email order.
    func accounts() async throws -> [Account]

    /// How many accounts exist.
    func accountCount() async throws -> Int

    /// Replaces an account's password hash and its must-change flag and deletes the account's
    /// sessions, all but the one whose token hash is `keepingSession`, together. False
    /// (nothing written) when no account has `id`.
    @discardableResult
    func updatePassword(id: UUID, hash: String, mustChange: Bool, keepingSession: [UInt8]?) async throws -> Bool

    /// Changes an account's role. False (nothing written) when no account has `id`.
    ///
    /// - Throws: `OperationRefusal.lastEnabledAdmin` on `role` when the account is the last
    ///   enabled admin and `role` is not admin. Decided atomically with the other changes that
    ///   take an admin away (`disableAccount`): of two admins demoting or disabling each other
    ///   at once, one is refused.
    @discardableResult
    func updateRole(id: UUID, role: AccountRole) async throws -> Bool

    /// Disables an account at `now` and deletes its sessions, in one write. True when it was
    /// enabled; false (nothing written) when no account has `id` or it is already disabled.
    ///
    /// - Throws: `OperationRefusal.lastEnabledAdmin` on `id` when the account is the last
    ///   enabled admin (decided atomically, as for `updateRole`).
    @discardableResult
    func disableAccount(id: UUID, now: Date) async throws -> Bool

    /// Enables a disabled account (its sessions stay deleted; its API tokens work again). True
    /// when it was disabled; false (nothing written) when no account has `id` or it is enabled.
    @discardableResult
    func enableAccount(id: UUID) async throws -> Bool

    // MARK: Sessions

    /// Stores a session.
    ///
    /// - Throws: `OperationRefusal` `.notFound` on `account_id` when its account does not exist;
    ///   `.conflict` on `token_hash` when a session with the same token hash exists.
    func createSession(_ session: AccountSession) async throws

    /// The session with `tokenHash` and its account, expired or not (the caller judges expiry
    /// by its clock); nil if none.
    func session(tokenHash: [UInt8]) async throws -> (session: AccountSession, account: Account)?

    /// Deletes the session with `tokenHash`; deleting one that does not exist does nothing.
    func deleteSession(tokenHash: [UInt8]) async throws

    /// Deletes every session of the account `accountID`. Returns how many.
    @discardableResult
    func deleteSessions(accountID: UUID) async throws -> Int

    /// Deletes every session that expires at or before `now`. Returns how many.
    @discardableResult
    func deleteExpiredSessions(now: Date) async throws -> Int

    // MARK: API tokens

    /// Stores an API token.
    ///
    /// - Throws: `OperationRefusal` `.conflict` on `name` when a live (unrevoked) token has the
    ///   same name, or on `token_hash` when any token has the same hash.
    func createToken(_ token: APIToken) async throws

    /// The live (unrevoked) token with `hash` and the account that made it (the one whose
    /// email is its `createdBy`; nil when none has, as for `local`), read together, so that a
    /// disable or a role change shows at once; nil if no token has `hash`, or if it was revoked.
    func token(hash: [UInt8]) async throws -> (token: APIToken, creator: Account?)?

    /// Every token, revoked ones included, newest first (by creation time, then id).
    func tokens() async throws -> [APIToken]

    /// Revokes the token with `id` at `now`. True when it was live and is now revoked; false
    /// (nothing written) when it does not exist or was already revoked.
    @discardableResult
    func revokeToken(id: UUID, now: Date) async throws -> Bool

    /// Sets the token's `lastUsedAt` to `now`; does nothing for an unknown id.
    func touchToken(id: UUID, now: Date) async throws

    // MARK: Audit log

    /// Appends `entry`. Recording the same id again keeps the first entry (so a retried write
    /// records once).
    func record(_ entry: AuditEntry) async throws

    /// A page of the audit log, newest first: at most `limit` entries (at least one is asked
    /// for), with ids below `before` (from the newest when nil). The next page is asked for
    /// with the last id of this one.
    func audit(before: ULID?, limit: Int) async throws -> [AuditEntry]
}
