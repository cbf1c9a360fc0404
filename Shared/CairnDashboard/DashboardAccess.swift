public import CairnCore
public import CairnEngine
import Crypto
import Foundation
public import Hummingbird
import HTTPTypes
import Synchronization

/// Who is looking at the dashboard, and what they may do (docs/dashboard.md#signing-in).
///
/// Outside dev mode every page needs a session: the login form trades an email and password for
/// a cookie (`HttpOnly`, `SameSite=Strict`), and each session carries its own CSRF token that
/// every form posts back. Under `cairn dev` the dashboard is local: whoever reaches the port is
/// the `local` admin, with no password, and forms still carry a token, one per process, so
/// another site cannot post to it.
public struct DashboardAccess: Sendable {
    let accounts: Accounts
    /// The token forms carry in local mode; nil outside it.
    let localToken: String?
    /// Adds `Secure` to the session cookie: set when Cairn is served over HTTPS.
    let secureCookies: Bool

    /// Sign-in with accounts (cairn-api).
    public static func accounts(_ accounts: Accounts, secureCookies: Bool) -> DashboardAccess {
        DashboardAccess(accounts: accounts, localToken: nil, secureCookies: secureCookies)
    }

    /// The local admin without a password (`cairn dev`); actions are still audited.
    public static func local(_ accounts: Accounts) -> DashboardAccess {
        DashboardAccess(accounts: accounts, localToken: randomToken(), secureCookies: false)
    }

    var isLocal: Bool { localToken != nil }

    static let cookieName = CookieHeader.session

    /// The viewer a request comes from; nil when it has no live session.
    func viewer(_ request: Request) async throws -> DashboardViewer? {
        if let localToken { return DashboardViewer(principal: Principal.local, csrf: localToken) }
        guard let token = CookieHeader.value(Self.cookieName, in: request.headers[values: .cookie]), let principal = try await accounts.principal(sessionToken: token),
            let csrf = principal.csrfToken
        else { return nil }
        return DashboardViewer(principal: principal, csrf: csrf, sessionToken: token)
    }

    enum SignInOutcome {
        /// The `Set-Cookie` value of the new session.
        case success(cookie: String)
        case failure(String)
    }

    /// Sign-ins hashing a password at once, at most: each costs a PBKDF2 hash (600,000 rounds),
    /// so a flood of attempts must not take every core.
    static let maximumConcurrentSignIns = 4
    let signingIn = SignInGate()

    func signIn(email: String, password: String) async throws -> SignInOutcome {
        guard signingIn.enter(limit: Self.maximumConcurrentSignIns) else {
            return .failure("Too many sign-ins at once: try again in a moment.")
        }
        defer { signingIn.leave() }
        do {
            let grant = try await accounts.signIn(email: email, password: password)
            let lifetime = Int(grant.session.expiresAt.timeIntervalSince(grant.session.createdAt))
            return .success(cookie: cookie(value: grant.token, maxAge: lifetime))
        } catch let refusal as OperationRefusal {
            return .failure(refusal.description)
        }
    }

    /// Ends the request's session; the `Set-Cookie` value that clears it.
    func signOut(_ request: Request) async throws -> String? {
        guard !isLocal, let token = CookieHeader.value(Self.cookieName, in: request.headers[values: .cookie]) else { return nil }
        try await accounts.signOut(sessionToken: token)
        return cookie(value: "", maxAge: 0)
    }

    /// Records what `viewer` did in the audit log.
    func audit(_ viewer: DashboardViewer?, _ action: String, target: String, detail: JSONValue = .null) async throws {
        guard let viewer else { return }
        try await accounts.audit(viewer.principal, action: action, target: target, detail: detail)
    }

    func cookie(value: String, maxAge: Int) -> String {
        "\(Self.cookieName)=\(value); Path=/; Max-Age=\(maxAge); HttpOnly; SameSite=Strict" + (secureCookies ? "; Secure" : "")
    }

    static func randomToken() -> String {
        let key = SymmetricKey(size: .bits256)
        return key.withUnsafeBytes { Data($0) }.base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }
}

/// Counts sign-ins in progress.
final class SignInGate: Sendable {
    private let inProgress = Mutex(0)

    /// Takes a place if fewer than `limit` are taken.
    func enter(limit: Int) -> Bool {
        inProgress.withLock { count in
            guard count < limit else { return false }
            count += 1
            return true
        }
    }

    func leave() {
        inProgress.withLock { $0 -= 1 }
    }
}

/// A signed-in viewer: who (for the header and the audit log), their role, and the CSRF token
/// their forms must carry.
struct DashboardViewer: Sendable {
    var principal: Principal
    var csrf: String
    /// The session cookie's token; nil for `cairn dev`'s local admin.
    var sessionToken: String?

    var actor: String { principal.actor }
    var role: AccountRole { principal.role }

    /// Whether `token` is this viewer's CSRF token, compared in constant time.
    func acceptsCSRF(_ token: String) -> Bool {
        let given = Array(token.utf8), expected = Array(csrf.utf8)
        guard given.count == expected.count else { return false }
        var difference: UInt8 = 0
        for (a, b) in zip(given, expected) { difference |= a ^ b }
        return difference == 0
    }
}
