public import CairnCore
public import CairnEngine
public import Foundation
import Synchronization

/// `AccountStore` in memory, with the Postgres store's rules: one account per normalized
/// email, sessions only for existing accounts, one live token per name, one token per hash,
/// one audit entry per id, always an enabled admin once there was one.
public final class InMemoryAccountStore: AccountStore {
    struct State {
        var accounts: [UUID: Account] = [:]
        var sessions: [[UInt8]: AccountSession] = [:]
        var tokens: [UUID: APIToken] = [:]
        var audit: [ULID: AuditEntry] = [:]

        /// Whether `account` is an enabled admin and no other account is.
        func isLastEnabledAdmin(_ account: Account) -> Bool {
            account.role == .admin && account.disabledAt == nil
                && !accounts.values.contains { $0.id != account.id && $0.role == .admin && $0.disabledAt == nil }
        }
    }

    private let state = Mutex(State())

    public init() {}

    public func createAccount(_ account: Account) async throws {
        try state.withLock { state throws(OperationRefusal) in
            guard !state.accounts.values.contains(where: { $0.email == account.email }) else {
                throw OperationRefusal(kind: .conflict, field: "email", rule: "an account with \(account.email) exists")
            }
            guard state.accounts[account.id] == nil else {
                throw OperationRefusal(kind: .conflict, field: "id", rule: "an account with id \(account.id) exists")
            }
            state.accounts[account.id] = account
        }
    }

    public func account(email: String) async throws -> Account? {
        let email = Account.normalizedEmail(email)
        return state.withLock { $0.accounts.values.first { $0.email == email } }
    }

    public func account(id: UUID) async throws -> Account? {
        state.withLock { $0.accounts[id] }
    }

    public func accounts() async throws -> [Account] {
        state.withLock { $0.accounts.values.sorted { $0.email < $1.email } }
    }

    public func accountCount() async throws -> Int {
        state.withLock { $0.accounts.count }
    }

    public func updatePassword(id: UUID, hash: String, mustChange: Bool, keepingSession: [UInt8]?) async throws -> Bool {
        state.withLock { state in
            guard state.accounts[id] != nil else { return false }
            state.accounts[id]?.passwordHash = hash
            state.accounts[id]?.mustChangePassword = mustChange
            state.sessions = state.sessions.filter { $0.value.accountID != id || $0.value.tokenHash == keepingSession }
            return true
        }
    }

    public func updateRole(id: UUID, role: AccountRole) async throws -> Bool {
        try state.withLock { state throws(OperationRefusal) in
            guard let account = state.accounts[id] else { return false }
            if role != .admin, state.isLastEnabledAdmin(account) { throw OperationRefusal.lastEnabledAdmin(account.email, field: "role") }
            state.accounts[id]?.role = role
            return true
        }
    }

    public func disableAccount(id: UUID, now: Date) async throws -> Bool {
        try state.withLock { state throws(OperationRefusal) in
            guard let account = state.accounts[id], account.disabledAt == nil else { return false }
            if state.isLastEnabledAdmin(account) { throw OperationRefusal.lastEnabledAdmin(account.email, field: "id") }
            state.accounts[id]?.disabledAt = now
            state.sessions = state.sessions.filter { $0.value.accountID != id }
            return true
        }
    }

    public func enableAccount(id: UUID) async throws -> Bool {
        state.withLock { state in
            guard state.accounts[id]?.disabledAt != nil else { return false }
            state.accounts[id]?.disabledAt = nil
            return true
        }
    }

    public func createSession(_ session: AccountSession) async throws {
        try state.withLock { state throws(OperationRefusal) in
            guard state.accounts[session.accountID] != nil else {
                throw OperationRefusal(kind: .notFound, field: "account_id", rule: "must name an account, got \(session.accountID)")
            }
            guard state.sessions[session.tokenHash] == nil else {
                throw OperationRefusal(kind: .conflict, field: "token_hash", rule: "a session with this token hash exists")
            }
            state.sessions[session.tokenHash] = session
        }
    }

    public func session(tokenHash: [UInt8]) async throws -> (session: AccountSession, account: Account)? {
        state.withLock { state in
            guard let session = state.sessions[tokenHash], let account = state.accounts[session.accountID] else { return nil }
            return (session, account)
        }
    }

    public func deleteSession(tokenHash: [UInt8]) async throws {
        _ = state.withLock { $0.sessions.removeValue(forKey: tokenHash) }
    }

    public func deleteSessions(accountID: UUID) async throws -> Int {
        state.withLock { state in
            let count = state.sessions.count
            state.sessions = state.sessions.filter { $0.value.accountID != accountID }
            return count - state.sessions.count
        }
    }

    public func deleteExpiredSessions(now: Date) async throws -> Int {
        state.withLock { state in
            let expired = state.sessions.filter { $0.value.expiresAt <= now }.keys
            for key in expired { state.sessions.removeValue(forKey: key) }
            return expired.count
        }
    }

    public func createToken(_ token: APIToken) async throws {
        try state.withLock { state throws(OperationRefusal) in
            guard !state.tokens.values.contains(where: { $0.name == token.name && $0.revokedAt == nil }) || token.revokedAt != nil else {
                throw OperationRefusal(kind: .conflict, field: "name", rule: "a live API token is named \(JSONValue.string(token.name).jsonString)")
            }
            guard !state.tokens.values.contains(where: { $0.tokenHash == token.tokenHash }) else {
                throw OperationRefusal(kind: .conflict, field: "token_hash", rule: "a token with this hash exists")
            }
            guard state.tokens[token.id] == nil else {
                throw OperationRefusal(kind: .conflict, field: "id", rule: "a token with id \(token.id) exists")
            }
            state.tokens[token.id] = token
        }
    }

    public func token(hash: [UInt8]) async throws -> (token: APIToken, creator: Account?)? {
        state.withLock { state in
            guard let token = state.tokens.values.first(where: { $0.tokenHash == hash && $0.revokedAt == nil }) else { return nil }
            return (token, state.accounts.values.first { $0.email == token.createdBy.lowercased() })
        }
    }

    public func tokens() async throws -> [APIToken] {
        state.withLock { state in
            state.tokens.values.sorted { ($0.createdAt, $0.id.uuidString) > ($1.createdAt, $1.id.uuidString) }
        }
    }

    public func revokeToken(id: UUID, now: Date) async throws -> Bool {
        state.withLock { state in
            guard let token = state.tokens[id], token.revokedAt == nil else { return false }
            state.tokens[id]?.revokedAt = now
            return true
        }
    }

    public func touchToken(id: UUID, now: Date) async throws {
        state.withLock { $0.tokens[id]?.lastUsedAt = now }
    }

    public func record(_ entry: AuditEntry) async throws {
        state.withLock { state in
            if state.audit[entry.id] == nil { state.audit[entry.id] = entry }
        }
    }

    public func audit(before: ULID?, limit: Int) async throws -> [AuditEntry] {
        state.withLock { state in
            let page = state.audit.values.filter { entry in before.map { entry.id < $0 } ?? true }
            return Array(page.sorted { $0.id > $1.id }.prefix(max(1, limit)))
        }
    }
}
