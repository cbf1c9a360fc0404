public import CairnCore
public import CairnEngine
public import Foundation
import Testing

/// What every `AccountStore` must do, checked against the in-memory store (CairnEngineTests)
/// and the Postgres one (CairnPostgresTests).
public enum AccountStoreContract {
    /// Each check, by name; the test targets run every one against a fresh store.
    public static let checks: [(name: String, run: @Sendable (any AccountStore) async throws -> Void)] = [
        ("an email is unique, compared trimmed and in lower case, also under concurrent creation", uniqueEmails),
        ("passwords and roles change, and nothing is written for an unknown account", updates),
        ("a session is found by its token hash with its account, for existing accounts only", sessions),
        ("expired sessions are deleted, live ones kept", expiredSessions),
        ("a token is found by its hash while live; one live token per name; revoked once", tokens),
        ("a token is read with the account that made it, so that a disable or a demotion shows at once", tokenCreators),
        ("disabling deletes the account's sessions, and shows with any session read after; enabling clears only the flag", disabling),
        ("an account's sessions are deleted together, and no one else's", accountSessions),
        ("a new password ends the account's other sessions, all of them when reset", aNewPasswordEndsTheOtherSessions),
        ("the last enabled admin is neither demoted nor disabled, also when two admins change each other at once", lastEnabledAdmin),
        ("the audit log pages newest first by id, below the last id seen, and keeps the first of an id", auditPages),
    ]

    static let t0 = Date(timeIntervalSince1970: 1_800_000_000)

    /// An account with a stand-in hash (stores do not read it).
    static func account(_ email: String, role: AccountRole = .viewer, at: Date = t0) -> Account {
        Account(id: UUID(), email: email, role: role, passwordHash: "pbkdf2-sha256$1$stand-in-for-\(email)", mustChangePassword: true, createdAt: at)
    }

    /// 32 bytes, all `byte`: a stand-in token digest.
    static func digest(_ byte: UInt8) -> [UInt8] {
        [UInt8](repeating: byte, count: 32)
    }

    static func refusal(_ body: () async throws -> Void) async throws -> OperationRefusal {
        do {
            try await body()
        } catch let refusal as OperationRefusal {
            return refusal
        }
        Issue.record("expected an OperationRefusal, but the call succeeded")
        throw ContractFailure()
    }

    static func uniqueEmails(_ store: any AccountStore) async throws {
        #expect(try await store.accountCount() == 0)
        let ops = account("  Ops@Example.COM ", role: .admin)
        #expect(ops.email == "ops@example.com")
        try await store.createAccount(ops)
        #expect(try await store.account(email: "OPS@example.com\n") == ops)
        #expect(try await store.account(id: ops.id) == ops)
        #expect(try await store.account(email: "nobody@example.com") == nil)
        #expect(try await store.account(id: UUID()) == nil)

        let again = try await refusal { try await store.createAccount(account("ops@EXAMPLE.com")) }
        #expect(again.kind == .conflict)
        #expect(again.field == "email")
        #expect(again.description == "email: an account with ops@example.com exists")

        // Eight creations of one new email at once: exactly one wins.
        let created = try await withThrowingTaskGroup(of: Bool.self) { group in
            for n in 0..<8 {
                group.addTask {
                    do {
                        try await store.createAccount(account(n.isMultiple(of: 2) ? "dev@example.com" : "DEV@example.com"))
                        return true
                    } catch let refusal as OperationRefusal where refusal.kind == .conflict {
                        return false
                    }
                }
            }
            return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
        }
        #expect(created == 1)
        try await store.createAccount(account("ann@example.com"))
        #expect(try await store.accountCount() == 3)
        #expect(try await store.accounts().map(\.email) == ["ann@example.com", "dev@example.com", "ops@example.com"])
    }

    static func updates(_ store: any AccountStore) async throws {
        let ann = account("ann@example.com")
        try await store.createAccount(ann)
        #expect(try await store.updatePassword(id: ann.id, hash: "pbkdf2-sha256$2$new", mustChange: false, keepingSession: nil))
        #expect(try await store.updateRole(id: ann.id, role: .operator))
        let changed = try #require(try await store.account(id: ann.id))
        #expect(changed.passwordHash == "pbkdf2-sha256$2$new")
        #expect(!changed.mustChangePassword)
        #expect(changed.role == .operator)
        #expect(changed.email == ann.email)
        #expect(changed.createdAt == ann.createdAt)

        let unknown = UUID()
        #expect(try await !store.updatePassword(id: unknown, hash: "x", mustChange: false, keepingSession: nil))
        #expect(try await !store.updateRole(id: unknown, role: .admin))
        #expect(try await store.accountCount() == 1)
    }

    static func sessions(_ store: any AccountStore) async throws {
        let ann = account("ann@example.com", role: .operator)
        try await store.createAccount(ann)
        let session = AccountSession(tokenHash: digest(1), accountID: ann.id, csrfToken: "csrf-1", createdAt: t0, expiresAt: t0.addingTimeInterval(3600))

        let orphan = try await refusal {
            try await store.createSession(AccountSession(tokenHash: digest(2), accountID: UUID(), csrfToken: "c", createdAt: t0, expiresAt: t0))
        }
        #expect(orphan.kind == .notFound)
        #expect(orphan.field == "account_id")
        #expect(try await store.session(tokenHash: digest(2)) == nil)

        try await store.createSession(session)
        let found = try #require(try await store.session(tokenHash: digest(1)))
        #expect(found.session == session)
        #expect(found.account == ann)
        // The account is read with the session, so a role change shows at once.
        #expect(try await store.updateRole(id: ann.id, role: .viewer))
        #expect(try await store.session(tokenHash: digest(1))?.account.role == .viewer)

        let twice = try await refusal { try await store.createSession(session) }
        #expect(twice.kind == .conflict)
        #expect(twice.field == "token_hash")

        try await store.deleteSession(tokenHash: digest(1))
        #expect(try await store.session(tokenHash: digest(1)) == nil)
        try await store.deleteSession(tokenHash: digest(1))
    }

    static func expiredSessions(_ store: any AccountStore) async throws {
        let ann = account("ann@example.com")
        try await store.createAccount(ann)
        for (byte, expires) in [(UInt8(1), 60.0), (2, 120), (3, 180)] {
            try await store.createSession(
                AccountSession(tokenHash: digest(byte), accountID: ann.id, csrfToken: "c\(byte)", createdAt: t0, expiresAt: t0.addingTimeInterval(expires)))
        }
        // Expiring exactly now counts as expired.
        #expect(try await store.deleteExpiredSessions(now: t0.addingTimeInterval(120)) == 2)
        #expect(try await store.session(tokenHash: digest(1)) == nil)
        #expect(try await store.session(tokenHash: digest(2)) == nil)
        #expect(try await store.session(tokenHash: digest(3))?.session.csrfToken == "c3")
        #expect(try await store.deleteExpiredSessions(now: t0.addingTimeInterval(120)) == 0)
    }

    static func tokens(_ store: any AccountStore) async throws {
        let ci = APIToken(id: UUID(), name: "ci", role: .operator, tokenHash: digest(1), createdBy: "ops@example.com", createdAt: t0)
        try await store.createToken(ci)
        let found = try #require(try await store.token(hash: digest(1)))
        #expect(found.token == ci)
        #expect(found.creator == nil)
        #expect(try await store.token(hash: digest(9)) == nil)

        let sameName = try await refusal {
            try await store.createToken(APIToken(id: UUID(), name: "ci", role: .viewer, tokenHash: digest(2), createdBy: "x", createdAt: t0))
        }
        #expect(sameName.kind == .conflict)
        #expect(sameName.description == #"name: a live API token is named "ci""#)
        let sameHash = try await refusal {
            try await store.createToken(APIToken(id: UUID(), name: "other", role: .viewer, tokenHash: digest(1), createdBy: "x", createdAt: t0))
        }
        #expect(sameHash.kind == .conflict)
        #expect(sameHash.field == "token_hash")

        try await store.touchToken(id: ci.id, now: t0.addingTimeInterval(5))
        #expect(try await store.token(hash: digest(1))?.token.lastUsedAt == t0.addingTimeInterval(5))
        try await store.touchToken(id: UUID(), now: t0)

        #expect(try await store.revokeToken(id: ci.id, now: t0.addingTimeInterval(10)))
        #expect(try await !store.revokeToken(id: ci.id, now: t0.addingTimeInterval(20)))
        #expect(try await !store.revokeToken(id: UUID(), now: t0))
        #expect(try await store.token(hash: digest(1)) == nil)

        // A revoked token's name may be used again; the list has both, newest first.
        let next = APIToken(id: UUID(), name: "ci", role: .viewer, tokenHash: digest(3), createdBy: "ops@example.com", createdAt: t0.addingTimeInterval(30))
        try await store.createToken(next)
        let listed = try await store.tokens()
        #expect(listed.map(\.id) == [next.id, ci.id])
        #expect(listed.last?.revokedAt == t0.addingTimeInterval(10))
        #expect(listed.last?.lastUsedAt == t0.addingTimeInterval(5))
        #expect(listed.first == next)
    }

    static func tokenCreators(_ store: any AccountStore) async throws {
        let ops = account("ops@example.com", role: .operator)
        try await store.createAccount(ops)
        try await store.createAccount(account("admin@example.com", role: .admin))
        try await store.createToken(APIToken(id: UUID(), name: "ci", role: .operator, tokenHash: digest(1), createdBy: "ops@example.com", createdAt: t0))
        try await store.createToken(APIToken(id: UUID(), name: "dev", role: .admin, tokenHash: digest(2), createdBy: "local", createdAt: t0))
        #expect(try await store.token(hash: digest(1))?.creator == ops)
        #expect(try await store.token(hash: digest(2))?.creator == nil)

        #expect(try await store.updateRole(id: ops.id, role: .viewer))
        #expect(try await store.token(hash: digest(1))?.creator?.role == .viewer)
        #expect(try await store.disableAccount(id: ops.id, now: t0.addingTimeInterval(10)))
        let found = try #require(try await store.token(hash: digest(1)))
        #expect(found.token.revokedAt == nil)
        #expect(found.creator?.disabledAt == t0.addingTimeInterval(10))
        #expect(try await store.enableAccount(id: ops.id))
        #expect(try await store.token(hash: digest(1))?.creator?.disabledAt == nil)
    }

    /// Accounts ann (with `role`) and bob, signed in with sessions 1 and 2 (ann) and 3 (bob).
    static func annAndBobSignedIn(_ store: any AccountStore, annRole role: AccountRole = .viewer) async throws -> (ann: Account, bob: Account) {
        let ann = account("ann@example.com", role: role)
        let bob = account("bob@example.com")
        try await store.createAccount(ann)
        try await store.createAccount(bob)
        for (byte, owner) in [(UInt8(1), ann), (2, ann), (3, bob)] {
            try await store.createSession(
                AccountSession(tokenHash: digest(byte), accountID: owner.id, csrfToken: "c\(byte)", createdAt: t0, expiresAt: t0.addingTimeInterval(3600)))
        }
        return (ann, bob)
    }

    static func disabling(_ store: any AccountStore) async throws {
        let (ann, bob) = try await annAndBobSignedIn(store, annRole: .operator)
        let at = t0.addingTimeInterval(60)
        #expect(try await store.disableAccount(id: ann.id, now: at))
        #expect(try await store.account(id: ann.id)?.disabledAt == at)
        #expect(try await store.accounts().first { $0.id == ann.id }?.disabledAt == at)
        #expect(try await store.account(email: "ann@example.com")?.disabledAt == at)
        #expect(try await store.session(tokenHash: digest(1)) == nil)
        #expect(try await store.session(tokenHash: digest(2)) == nil)
        #expect(try await store.session(tokenHash: digest(3))?.account == bob)
        // Twice, or an unknown account: nothing written.
        #expect(try await !store.disableAccount(id: ann.id, now: at.addingTimeInterval(1)))
        #expect(try await store.account(id: ann.id)?.disabledAt == at)
        #expect(try await !store.disableAccount(id: UUID(), now: at))

        // A session made while the disable was under way is read with the flag.
        try await store.createSession(
            AccountSession(tokenHash: digest(4), accountID: ann.id, csrfToken: "c4", createdAt: at, expiresAt: at.addingTimeInterval(60)))
        #expect(try await store.session(tokenHash: digest(4))?.account.disabledAt == at)

        #expect(try await store.enableAccount(id: ann.id))
        let enabled = try #require(try await store.account(id: ann.id))
        #expect(enabled == ann)
        #expect(try await !store.enableAccount(id: ann.id))
        #expect(try await !store.enableAccount(id: UUID()))
    }

    static func accountSessions(_ store: any AccountStore) async throws {
        let (ann, _) = try await annAndBobSignedIn(store)
        #expect(try await store.deleteSessions(accountID: ann.id) == 2)
        #expect(try await store.session(tokenHash: digest(1)) == nil)
        #expect(try await store.session(tokenHash: digest(2)) == nil)
        #expect(try await store.session(tokenHash: digest(3)) != nil)
        #expect(try await store.deleteSessions(accountID: ann.id) == 0)
        #expect(try await store.deleteSessions(accountID: UUID()) == 0)
        #expect(try await store.account(id: ann.id) == ann)
    }

    static func aNewPasswordEndsTheOtherSessions(_ store: any AccountStore) async throws {
        let (ann, _) = try await annAndBobSignedIn(store)
        // Changed from session 1: session 2 ends, 1 and the other account's 3 stay.
        #expect(try await store.updatePassword(id: ann.id, hash: "pbkdf2-sha256$2$new", mustChange: false, keepingSession: digest(1)))
        #expect(try await store.session(tokenHash: digest(1)) != nil)
        #expect(try await store.session(tokenHash: digest(2)) == nil)
        #expect(try await store.session(tokenHash: digest(3)) != nil)
        // Reset by an admin: every session of the account ends.
        #expect(try await store.updatePassword(id: ann.id, hash: "pbkdf2-sha256$2$reset", mustChange: true, keepingSession: nil))
        #expect(try await store.session(tokenHash: digest(1)) == nil)
        #expect(try await store.session(tokenHash: digest(3)) != nil)
        #expect(try await store.account(id: ann.id)?.passwordHash == "pbkdf2-sha256$2$reset")
    }

    static func lastEnabledAdmin(_ store: any AccountStore) async throws {
        let ann = account("ann@example.com", role: .admin)
        let bob = account("bob@example.com", role: .admin)
        try await store.createAccount(ann)
        try await store.createAccount(bob)

        // Two admins change each other at once, again and again: one change wins each time.
        for round in 0..<6 {
            let (first, second) = round.isMultiple(of: 2) ? (ann, bob) : (bob, ann)
            let outcomes = try await withThrowingTaskGroup(of: OperationRefusal?.self) { group in
                group.addTask {
                    do {
                        _ = try await store.disableAccount(id: first.id, now: t0)
                        return nil
                    } catch let refusal as OperationRefusal { return refusal }
                }
                group.addTask {
                    do {
                        _ = try await round < 3 ? store.updateRole(id: second.id, role: .operator) : store.disableAccount(id: second.id, now: t0)
                        return nil
                    } catch let refusal as OperationRefusal { return refusal }
                }
                return try await group.reduce(into: [OperationRefusal?]()) { $0.append($1) }
            }
            #expect(outcomes.compactMap { $0 }.count == 1, "round \(round): \(outcomes)")
            let refusedRule = "is the last enabled admin; make another account an admin first"
            #expect(outcomes.compactMap { $0 }.allSatisfy { $0.kind == .conflict && $0.rule.hasSuffix(refusedRule) })
            let admins = try await store.accounts().filter { $0.role == .admin && $0.disabledAt == nil }
            #expect(admins.count == 1, "round \(round)")
            // Back to two enabled admins.
            for other in [ann, bob] {
                _ = try await store.enableAccount(id: other.id)
                _ = try await store.updateRole(id: other.id, role: .admin)
            }
        }

        // Alone, an admin is neither demoted nor disabled; with a second one, it is.
        _ = try await store.updateRole(id: bob.id, role: .viewer)
        let demoted = try await refusal { _ = try await store.updateRole(id: ann.id, role: .operator) }
        #expect(demoted == .lastEnabledAdmin("ann@example.com", field: "role"))
        #expect(demoted.description == "role: ann@example.com is the last enabled admin; make another account an admin first")
        let disabled = try await refusal { _ = try await store.disableAccount(id: ann.id, now: t0) }
        #expect(disabled == .lastEnabledAdmin("ann@example.com", field: "id"))
        #expect(try await store.account(id: ann.id) == ann)
        // A disabled admin does not count; an admin keeping the role, or a viewer, changes freely.
        #expect(try await store.updateRole(id: bob.id, role: .admin))
        #expect(try await store.disableAccount(id: bob.id, now: t0))
        await #expect(throws: OperationRefusal.lastEnabledAdmin("ann@example.com", field: "id")) {
            _ = try await store.disableAccount(id: ann.id, now: t0)
        }
        #expect(try await store.updateRole(id: ann.id, role: .admin))
        #expect(try await store.updateRole(id: bob.id, role: .viewer))
        #expect(try await store.enableAccount(id: bob.id))
        #expect(try await !store.updateRole(id: UUID(), role: .viewer))
    }

    static func auditPages(_ store: any AccountStore) async throws {
        func entry(_ n: UInt8, detail: JSONValue = [:]) -> AuditEntry {
            AuditEntry(
                id: ULID(milliseconds: UInt64(t0.unixMilliseconds) + UInt64(n), entropy: [UInt8](repeating: n, count: 10)),
                at: t0.addingTimeInterval(Double(n)), actor: "ops@example.com", action: "run.cancel", target: "run-\(n)", detail: detail)
        }
        #expect(try await store.audit(before: nil, limit: 10).isEmpty)
        // Recorded out of order; the log is ordered by id all the same.
        let detail = try JSONValue(parsing: #"{"z":1,"a":12345678901234567890,"filter":["Failed"]}"#)
        for n: UInt8 in [3, 1, 5, 2, 4] { try await store.record(entry(n, detail: n == 4 ? detail : [:])) }
        // The same id again keeps the first.
        var changed = entry(5)
        changed.actor = "someone-else"
        try await store.record(changed)

        let first = try await store.audit(before: nil, limit: 2)
        #expect(first == [entry(5), entry(4, detail: detail)])
        #expect(first.last?.detail.jsonString == #"{"z":1,"a":12345678901234567890,"filter":["Failed"]}"#)
        let second = try await store.audit(before: try #require(first.last?.id), limit: 2)
        #expect(second.map(\.target) == ["run-3", "run-2"])
        let third = try await store.audit(before: try #require(second.last?.id), limit: 2)
        #expect(third.map(\.target) == ["run-1"])
        #expect(try await store.audit(before: entry(1).id, limit: 2).isEmpty)
    }
}
