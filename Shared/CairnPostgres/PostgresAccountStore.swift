public import CairnCore
public import CairnEngine
public import Foundation
public import Logging
import PostgresNIO

/// `AccountStore` on Postgres (migrations 0012 and 0015): the tables `accounts`,
/// `account_sessions`, `api_tokens` and `audit_log`. Uniqueness (an email in lower case, a live
/// token's name, a token's digest) is kept by unique indexes, so concurrent creations from
/// several processes are decided by the database: inserts use `ON CONFLICT DO NOTHING`, and a
/// missing row is turned into the `OperationRefusal` the port promises. A change that may take
/// an enabled admin away (a role change, a disable) runs in a transaction under an advisory
/// lock, so it counts the other enabled admins after every such change before it committed.
public struct PostgresAccountStore: AccountStore {
    let client: BoundedPostgresClient
    let logger: Logger

    public init(database: CairnPostgresDatabase, logger: Logger) {
        self.client = database.bounded
        self.logger = logger
    }

    static let accountColumns = "id, email, role, password_hash, must_change_password, created_at, disabled_at"
    static let tokenColumns = "id, name, role, token_hash, created_by, created_at, last_used_at, revoked_at"

    // MARK: Accounts

    public func createAccount(_ account: Account) async throws {
        let rows = try await client.query("""
            INSERT INTO accounts (id, email, role, password_hash, must_change_password, created_at, updated_at)
            VALUES (\(account.id), \(account.email), \(account.role.rawValue), \(account.passwordHash), \(account.mustChangePassword),
                    \(account.createdAt), \(account.createdAt))
            ON CONFLICT DO NOTHING
            RETURNING 1
            """, logger: logger)
        guard try await rows.hasRows() else {
            if try await self.account(email: account.email) != nil {
                throw OperationRefusal(kind: .conflict, field: "email", rule: "an account with \(account.email) exists")
            }
            throw OperationRefusal(kind: .conflict, field: "id", rule: "an account with id \(account.id) exists")
        }
    }

    public func account(email: String) async throws -> Account? {
        let rows = try await client.query("""
            SELECT \(unescaped: Self.accountColumns) FROM accounts WHERE lower(email) = lower(\(Account.normalizedEmail(email)))
            """, logger: logger)
        return try await Self.decodeAccounts(rows).first
    }

    public func account(id: UUID) async throws -> Account? {
        let rows = try await client.query("SELECT \(unescaped: Self.accountColumns) FROM accounts WHERE id = \(id)", logger: logger)
        return try await Self.decodeAccounts(rows).first
    }

    public func accounts() async throws -> [Account] {
        let rows = try await client.query("SELECT \(unescaped: Self.accountColumns) FROM accounts ORDER BY email COLLATE \"C\"", logger: logger)
        return try await Self.decodeAccounts(rows)
    }

    public func accountCount() async throws -> Int {
        let rows = try await client.query("SELECT count(*) FROM accounts", logger: logger)
        var count: Int64 = 0
        for try await (value) in rows.decode(Int64.self) { count = value }
        return Int(count)
    }

    public func updatePassword(id: UUID, hash: String, mustChange: Bool, keepingSession: [UInt8]?) async throws -> Bool {
        // One statement: the sessions go with the password they were opened under.
        let rows = try await client.query("""
            WITH updated AS (
                UPDATE accounts SET password_hash = \(hash), must_change_password = \(mustChange), updated_at = now()
                WHERE id = \(id)
                RETURNING id
            ), ended AS (
                DELETE FROM account_sessions
                WHERE account_id IN (SELECT id FROM updated) AND token_hash IS DISTINCT FROM \(keepingSession.map { Data($0) })
            )
            SELECT 1 FROM updated
            """, logger: logger)
        return try await rows.hasRows()
    }

    public func updateRole(id: UUID, role: AccountRole) async throws -> Bool {
        try await changingAdmins { connection in
            guard let (email, enabledAdmin) = try await lockedAccount(id, on: connection) else { return false }
            if role != .admin, enabledAdmin, try await !otherEnabledAdmins(than: id, on: connection) {
                throw OperationRefusal.lastEnabledAdmin(email, field: "role")
            }
            try await connection.query("UPDATE accounts SET role = \(role.rawValue), updated_at = now() WHERE id = \(id)", logger: logger)
            return true
        }
    }

    public func disableAccount(id: UUID, now: Date) async throws -> Bool {
        try await changingAdmins { connection in
            guard let (email, enabledAdmin) = try await lockedAccount(id, on: connection) else { return false }
            if enabledAdmin, try await !otherEnabledAdmins(than: id, on: connection) { throw OperationRefusal.lastEnabledAdmin(email, field: "id") }
            let rows = try await connection.query(
                "UPDATE accounts SET disabled_at = \(now), updated_at = now() WHERE id = \(id) AND disabled_at IS NULL RETURNING 1", logger: logger)
            guard try await rows.hasRows() else { return false }
            try await connection.query("DELETE FROM account_sessions WHERE account_id = \(id)", logger: logger)
            return true
        }
    }

    public func enableAccount(id: UUID) async throws -> Bool {
        let rows = try await client.query(
            "UPDATE accounts SET disabled_at = NULL, updated_at = now() WHERE id = \(id) AND disabled_at IS NOT NULL RETURNING 1", logger: logger)
        return try await rows.hasRows()
    }

    /// Key of the advisory lock every change that may take an enabled admin away takes.
    static let adminsLock: Int64 = 0x6361_6972_6e61_646d  // "cairnadm"

    /// Runs `body` in a transaction holding `adminsLock`; a refusal it throws is rethrown as is.
    private func changingAdmins(_ body: @escaping @Sendable (PostgresConnection) async throws -> Bool) async throws -> Bool {
        do {
            return try await client.withTransaction(logger: logger) { connection in
                try await connection.query("SELECT pg_advisory_xact_lock(\(Self.adminsLock))", logger: logger)
                return try await body(connection)
            }
        } catch let error as PostgresTransactionError {
            if let refusal = error.closureError as? OperationRefusal, error.rollbackError == nil { throw refusal }
            throw error
        }
    }

    /// The account `id`'s email and whether it is an enabled admin, its row locked; nil if none.
    private func lockedAccount(_ id: UUID, on connection: PostgresConnection) async throws -> (email: String, enabledAdmin: Bool)? {
        let rows = try await connection.query(
            "SELECT email, role = 'admin' AND disabled_at IS NULL FROM accounts WHERE id = \(id) FOR UPDATE", logger: logger)
        var found: (email: String, enabledAdmin: Bool)?
        for try await (email, enabledAdmin) in rows.decode((String, Bool).self) { found = (email, enabledAdmin) }
        return found
    }

    /// Whether an enabled admin other than `id` exists.
    private func otherEnabledAdmins(than id: UUID, on connection: PostgresConnection) async throws -> Bool {
        try await connection.query(
            "SELECT 1 FROM accounts WHERE role = 'admin' AND disabled_at IS NULL AND id <> \(id) LIMIT 1", logger: logger
        ).hasRows()
    }

    static func decodeAccounts(_ rows: PostgresRowSequence) async throws -> [Account] {
        var accounts: [Account] = []
        for try await (id, email, role, hash, mustChange, createdAt, disabledAt)
            in rows.decode((UUID, String, String, String, Bool, Date, Date?).self)
        {
            accounts.append(
                try account(id: id, email: email, role: role, hash: hash, mustChange: mustChange, createdAt: createdAt, disabledAt: disabledAt))
        }
        return accounts
    }

    static func account(id: UUID, email: String, role: String, hash: String, mustChange: Bool, createdAt: Date, disabledAt: Date?) throws -> Account {
        guard let role = AccountRole(rawValue: role) else {
            throw PostgresAccountStoreError(detail: "accounts holds a row \(id) with the unknown role \(JSONValue.string(role).jsonString)")
        }
        return Account(
            id: id, email: email, role: role, passwordHash: hash, mustChangePassword: mustChange, createdAt: createdAt, disabledAt: disabledAt)
    }

    // MARK: Sessions

    public func createSession(_ session: AccountSession) async throws {
        let rows = try await client.query("""
            INSERT INTO account_sessions (token_hash, account_id, csrf_token, created_at, expires_at)
            SELECT \(Data(session.tokenHash)), \(session.accountID), \(session.csrfToken), \(session.createdAt), \(session.expiresAt)
            WHERE EXISTS (SELECT 1 FROM accounts WHERE id = \(session.accountID))
            ON CONFLICT DO NOTHING
            RETURNING 1
            """, logger: logger)
        guard try await rows.hasRows() else {
            guard try await account(id: session.accountID) != nil else {
                throw OperationRefusal(kind: .notFound, field: "account_id", rule: "must name an account, got \(session.accountID)")
            }
            throw OperationRefusal(kind: .conflict, field: "token_hash", rule: "a session with this token hash exists")
        }
    }

    public func session(tokenHash: [UInt8]) async throws -> (session: AccountSession, account: Account)? {
        let rows = try await client.query("""
            SELECT s.csrf_token, s.created_at, s.expires_at, a.id, a.email, a.role, a.password_hash, a.must_change_password, a.created_at,
                   a.disabled_at
            FROM account_sessions s JOIN accounts a ON a.id = s.account_id
            WHERE s.token_hash = \(Data(tokenHash))
            """, logger: logger)
        var found: (session: AccountSession, account: Account)?
        for try await (csrf, createdAt, expiresAt, id, email, role, hash, mustChange, accountCreatedAt, disabledAt)
            in rows.decode((String, Date, Date, UUID, String, String, String, Bool, Date, Date?).self)
        {
            let account = try Self.account(
                id: id, email: email, role: role, hash: hash, mustChange: mustChange, createdAt: accountCreatedAt, disabledAt: disabledAt)
            found = (AccountSession(tokenHash: tokenHash, accountID: id, csrfToken: csrf, createdAt: createdAt, expiresAt: expiresAt), account)
        }
        return found
    }

    public func deleteSession(tokenHash: [UInt8]) async throws {
        _ = try await client.query("DELETE FROM account_sessions WHERE token_hash = \(Data(tokenHash)) RETURNING 1", logger: logger).hasRows()
    }

    public func deleteSessions(accountID: UUID) async throws -> Int {
        let rows = try await client.query("""
            WITH deleted AS (DELETE FROM account_sessions WHERE account_id = \(accountID) RETURNING 1)
            SELECT count(*) FROM deleted
            """, logger: logger)
        var count: Int64 = 0
        for try await (value) in rows.decode(Int64.self) { count = value }
        return Int(count)
    }

    public func deleteExpiredSessions(now: Date) async throws -> Int {
        let rows = try await client.query("""
            WITH deleted AS (DELETE FROM account_sessions WHERE expires_at <= \(now) RETURNING 1)
            SELECT count(*) FROM deleted
            """, logger: logger)
        var count: Int64 = 0
        for try await (value) in rows.decode(Int64.self) { count = value }
        return Int(count)
    }

    // MARK: API tokens

    public func createToken(_ token: APIToken) async throws {
        let rows = try await client.query("""
            INSERT INTO api_tokens (\(unescaped: Self.tokenColumns))
            VALUES (\(token.id), \(token.name), \(token.role.rawValue), \(Data(token.tokenHash)), \(token.createdBy), \(token.createdAt),
                    \(token.lastUsedAt), \(token.revokedAt))
            ON CONFLICT DO NOTHING
            RETURNING 1
            """, logger: logger)
        guard try await rows.hasRows() else {
            let live = try await client.query(
                "SELECT 1 FROM api_tokens WHERE name = \(token.name) AND revoked_at IS NULL", logger: logger)
            if token.revokedAt == nil, try await live.hasRows() {
                throw OperationRefusal(kind: .conflict, field: "name", rule: "a live API token is named \(JSONValue.string(token.name).jsonString)")
            }
            let sameHash = try await client.query("SELECT 1 FROM api_tokens WHERE token_hash = \(Data(token.tokenHash))", logger: logger)
            if try await sameHash.hasRows() {
                throw OperationRefusal(kind: .conflict, field: "token_hash", rule: "a token with this hash exists")
            }
            throw OperationRefusal(kind: .conflict, field: "id", rule: "a token with id \(token.id) exists")
        }
    }

    public func token(hash: [UInt8]) async throws -> (token: APIToken, creator: Account?)? {
        // The creator by its email in lower case, as the unique index `accounts_email` has it.
        let rows = try await client.query("""
            SELECT t.id, t.name, t.role, t.token_hash, t.created_by, t.created_at, t.last_used_at, t.revoked_at,
                   a.id, a.email, a.role, a.password_hash, a.must_change_password, a.created_at, a.disabled_at
            FROM api_tokens t LEFT JOIN accounts a ON lower(a.email) = lower(t.created_by)
            WHERE t.token_hash = \(Data(hash)) AND t.revoked_at IS NULL
            """, logger: logger)
        var found: (token: APIToken, creator: Account?)?
        for try await (id, name, role, tokenHash, createdBy, createdAt, lastUsedAt, revokedAt, accountID, email, accountRole, hash, mustChange,
            accountCreatedAt, disabledAt)
            in rows.decode((UUID, String, String, Data, String, Date, Date?, Date?, UUID?, String?, String?, String?, Bool?, Date?, Date?).self)
        {
            let token = try Self.token(
                id: id, name: name, role: role, hash: tokenHash, createdBy: createdBy, createdAt: createdAt, lastUsedAt: lastUsedAt, revokedAt: revokedAt)
            var creator: Account?
            if let accountID, let email, let accountRole, let hash, let mustChange, let accountCreatedAt {
                creator = try Self.account(
                    id: accountID, email: email, role: accountRole, hash: hash, mustChange: mustChange, createdAt: accountCreatedAt, disabledAt: disabledAt)
            }
            found = (token, creator)
        }
        return found
    }

    public func tokens() async throws -> [APIToken] {
        let rows = try await client.query(
            "SELECT \(unescaped: Self.tokenColumns) FROM api_tokens ORDER BY created_at DESC, id DESC", logger: logger)
        return try await Self.decodeTokens(rows)
    }

    public func revokeToken(id: UUID, now: Date) async throws -> Bool {
        let rows = try await client.query(
            "UPDATE api_tokens SET revoked_at = \(now) WHERE id = \(id) AND revoked_at IS NULL RETURNING 1", logger: logger)
        return try await rows.hasRows()
    }

    public func touchToken(id: UUID, now: Date) async throws {
        _ = try await client.query("UPDATE api_tokens SET last_used_at = \(now) WHERE id = \(id) RETURNING 1", logger: logger).hasRows()
    }

    static func decodeTokens(_ rows: PostgresRowSequence) async throws -> [APIToken] {
        var tokens: [APIToken] = []
        for try await (id, name, role, hash, createdBy, createdAt, lastUsedAt, revokedAt)
            in rows.decode((UUID, String, String, Data, String, Date, Date?, Date?).self)
        {
            tokens.append(
                try token(id: id, name: name, role: role, hash: hash, createdBy: createdBy, createdAt: createdAt, lastUsedAt: lastUsedAt, revokedAt: revokedAt))
        }
        return tokens
    }

    static func token(
        id: UUID, name: String, role: String, hash: Data, createdBy: String, createdAt: Date, lastUsedAt: Date?, revokedAt: Date?
    ) throws -> APIToken {
        guard let role = AccountRole(rawValue: role) else {
            throw PostgresAccountStoreError(detail: "api_tokens holds a row \(id) with the unknown role \(JSONValue.string(role).jsonString)")
        }
        return APIToken(
            id: id, name: name, role: role, tokenHash: Array(hash), createdBy: createdBy, createdAt: createdAt, lastUsedAt: lastUsedAt,
            revokedAt: revokedAt)
    }

    // MARK: Audit log

    public func record(_ entry: AuditEntry) async throws {
        _ = try await client.query("""
            INSERT INTO audit_log (id, at, actor, action, target, detail)
            VALUES (\(entry.id.description), \(entry.at), \(entry.actor), \(entry.action), \(entry.target), \(entry.detail.jsonString)::json)
            ON CONFLICT (id) DO NOTHING
            RETURNING 1
            """, logger: logger).hasRows()
    }

    public func audit(before: ULID?, limit: Int) async throws -> [AuditEntry] {
        let limit = Int64(max(1, limit))
        let rows: PostgresRowSequence
        if let before {
            rows = try await client.query("""
                SELECT id, at, actor, action, target, detail::text FROM audit_log WHERE id < \(before.description) ORDER BY id DESC LIMIT \(limit)
                """, logger: logger)
        } else {
            rows = try await client.query(
                "SELECT id, at, actor, action, target, detail::text FROM audit_log ORDER BY id DESC LIMIT \(limit)", logger: logger)
        }
        var entries: [AuditEntry] = []
        for try await (id, at, actor, action, target, detail) in rows.decode((String, Date, String, String, String, String).self) {
            guard let entryID = ULID(id) else { throw PostgresAccountStoreError(detail: "audit_log holds a malformed id \(id)") }
            entries.append(AuditEntry(id: entryID, at: at, actor: actor, action: action, target: target, detail: try JSONValue(parsing: detail)))
        }
        return entries
    }
}

/// The account tables hold a row the store cannot read (written by something else).
struct PostgresAccountStoreError: Error, CustomStringConvertible {
    var detail: String
    var description: String { "account store: \(detail)" }
}
