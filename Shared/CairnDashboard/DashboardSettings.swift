import CairnCore
import CairnEngine
import Foundation
import Hummingbird

/// The settings page (`/settings`): one's own password, API tokens for scripts, and, for an
/// admin, the accounts (with a role, disable or enable, and a password reset for each other
/// account) and the audit log. Each change is made by `Accounts`, which checks the role again
/// and records it in the audit log.
struct DashboardSettings: Sendable {
    let accounts: Accounts
    let templates: DashboardTemplates
    let local: Bool

    /// Audit entries per page.
    static let auditPageSize = 50

    /// - Parameters:
    ///   - newToken: a token just made, whose text is shown this once.
    ///   - newPassword: a one-time password an admin just set, shown this once.
    func page(
        _ request: DashboardRequest, newToken: (name: String, text: String)? = nil, newPassword: (email: String, text: String)? = nil,
        failure: String? = nil
    ) async throws -> Response {
        guard let viewer = request.viewer else { throw DashboardPageError(status: .unauthorized, message: "Sign in first.") }
        let principal = viewer.principal
        let tokens = try await accounts.store.tokens()
            .filter { principal.allows(.admin) || $0.createdBy == principal.actor }
            .sorted { $0.createdAt > $1.createdAt }
        // Only an admin lists accounts; a token whose creator is disabled is refused (`Accounts.principal(bearer:)`).
        let listed = principal.allows(.admin) ? try await accounts.store.accounts().sorted { $0.email < $1.email } : []
        let disabledEmails = Set(listed.filter { $0.disabledAt != nil }.map(\.email))
        var values: [String: Any] = [
            "mustChange": principal.mustChangePassword, "hasPassword": principal.accountID != nil,
            "tokens": tokens.map { token -> [String: Any] in
                [
                    "id": token.id.uuidString.lowercased(), "name": token.name, "role": token.role.rawValue, "by": token.createdBy,
                    "created": DashboardFormat.stamp(token.createdAt) as Any, "used": DashboardFormat.stamp(token.lastUsedAt) as Any,
                    "revoked": DashboardFormat.stamp(token.revokedAt) as Any, "creatorDisabled": disabledEmails.contains(token.createdBy.lowercased()),
                ]
            },
            "roles": AccountRole.allCases.filter { principal.allows($0) }.map { ["name": $0.rawValue] },
            "newToken": newToken.map { ["name": $0.name, "text": $0.text] } as Any, "failure": failure as Any,
            "newPassword": newPassword.map { ["email": $0.email, "text": $0.text] } as Any,
            "isAdmin": principal.allows(.admin),
        ]
        if principal.allows(.admin) {
            // Row keys differ from the page's, since Mustache looks a key missing in a row up in the page.
            values["accounts"] = listed.map { account -> [String: Any] in
                [
                    "email": account.email, "role": account.role.rawValue, "created": DashboardFormat.stamp(account.createdAt) as Any,
                    "mustChange": account.mustChangePassword, "accountID": account.id.uuidString.lowercased(),
                    "accountDisabled": DashboardFormat.stamp(account.disabledAt) as Any, "isSelf": account.id == principal.accountID,
                    "roleOptions": AccountRole.allCases.map { ["optionName": $0.rawValue, "optionSelected": $0 == account.role] },
                ]
            }
            values["allRoles"] = AccountRole.allCases.map { ["name": $0.rawValue] }
            var before: ULID?
            if let text = request["before"] {
                guard let id = ULID(text) else { throw DashboardPageError.invalid("before: must be a cursor from a previous page, got \"\(text)\"") }
                before = id
            }
            let entries = try await accounts.store.audit(before: before, limit: Self.auditPageSize + 1)
            values["audit"] = entries.prefix(Self.auditPageSize).map { entry -> [String: Any] in
                [
                    "at": DashboardFormat.stamp(entry.at) as Any, "actor": entry.actor, "action": entry.action, "target": entry.target,
                    "detail": entry.detail == .null || entry.detail == .object([:]) ? "" : entry.detail.jsonString,
                ]
            }
            if entries.count > Self.auditPageSize, let last = entries.prefix(Self.auditPageSize).last { values["auditNext"] = "/settings?before=\(last.id)#audit" }
        }
        return templates.page("settings", title: "Settings", request: request, nav: "/settings", values, status: failure == nil ? .ok : .badRequest)
    }

    func changePassword(_ request: DashboardRequest) async throws -> Response {
        guard let viewer = request.viewer, let accountID = viewer.principal.accountID else {
            throw DashboardPageError.invalid("account: the local admin of cairn dev has no password")
        }
        let new = request.field("new_password") ?? ""
        guard new == request.field("confirm_password") ?? "" else {
            return try await page(request, failure: "confirm_password: must repeat the new password exactly")
        }
        do {
            try await accounts.changePassword(
                accountID: accountID, current: request.field("current_password") ?? "", new: new, keepingSession: viewer.sessionToken)
        } catch let refusal as OperationRefusal {
            return try await page(request, failure: refusal.description)
        }
        return DashboardActions.back(to: "/settings", notice: "Password changed.")
    }

    /// Creates a token and shows its text on the page, once: never in a URL or a log.
    func createToken(_ request: DashboardRequest) async throws -> Response {
        guard let viewer = request.viewer else { throw DashboardPageError(status: .unauthorized, message: "Sign in first.") }
        let name = request.field("name") ?? ""
        guard let role = AccountRole(rawValue: request.field("role") ?? "") else {
            return try await page(request, failure: "role: must be one of \(AccountRole.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        do {
            let (text, _) = try await accounts.createToken(by: viewer.principal, name: name, role: role)
            return try await page(request, newToken: (name, text))
        } catch let refusal as OperationRefusal {
            return try await page(request, failure: refusal.description)
        }
    }

    func revokeToken(_ request: DashboardRequest) async throws -> Response {
        guard let viewer = request.viewer else { throw DashboardPageError(status: .unauthorized, message: "Sign in first.") }
        guard let id = UUID(uuidString: request.parameter("id")) else { throw DashboardPageError.invalid("id: must be a token id (UUID)") }
        do {
            let token = try await accounts.revokeToken(by: viewer.principal, id: id)
            return DashboardActions.back(to: "/settings", notice: "Token \(token.name) revoked.")
        } catch let refusal as OperationRefusal {
            return try await page(request, failure: refusal.description)
        }
    }

    func createAccount(_ request: DashboardRequest) async throws -> Response {
        guard let viewer = request.viewer else { throw DashboardPageError(status: .unauthorized, message: "Sign in first.") }
        guard let role = AccountRole(rawValue: request.field("role") ?? "") else {
            return try await page(request, failure: "role: must be one of \(AccountRole.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        do {
            let account = try await accounts.createAccount(by: viewer.principal, email: request.field("email") ?? "", role: role, password: request.field("password") ?? "")
            return DashboardActions.back(to: "/settings", notice: "Account \(account.email) (\(role.rawValue)) created; its owner sets a new password at first sign-in.")
        } catch let refusal as OperationRefusal {
            return try await page(request, failure: refusal.description)
        }
    }

    // MARK: Managing accounts (admins)

    func changeRole(_ request: DashboardRequest) async throws -> Response {
        try await managing(request) { principal, id in
            guard let role = AccountRole(rawValue: request.field("role") ?? "") else {
                throw OperationRefusal(kind: .invalid, field: "role", rule: "must be one of \(AccountRole.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            let account = try await accounts.changeRole(by: principal, id: id, role: role)
            return DashboardActions.back(to: "/settings", notice: "Account \(account.email) is \(role.rawValue) now.")
        }
    }

    func disableAccount(_ request: DashboardRequest) async throws -> Response {
        try await managing(request) { principal, id in
            let account = try await accounts.disableAccount(by: principal, id: id)
            return DashboardActions.back(
                to: "/settings", notice: "Account \(account.email) disabled: it is signed out, and its API tokens are refused until it is enabled.")
        }
    }

    func enableAccount(_ request: DashboardRequest) async throws -> Response {
        try await managing(request) { principal, id in
            let account = try await accounts.enableAccount(by: principal, id: id)
            return DashboardActions.back(to: "/settings", notice: "Account \(account.email) enabled.")
        }
    }

    /// Sets a one-time password and shows it on the page, once: never in a URL or a log.
    func resetPassword(_ request: DashboardRequest) async throws -> Response {
        try await managing(request) { principal, id in
            let (password, account) = try await accounts.resetPassword(by: principal, id: id)
            return try await page(request, newPassword: (account.email, password))
        }
    }

    /// Runs `change` on the account the path names; a refusal is shown on the page.
    private func managing(_ request: DashboardRequest, _ change: (Principal, UUID) async throws -> Response) async throws -> Response {
        guard let viewer = request.viewer else { throw DashboardPageError(status: .unauthorized, message: "Sign in first.") }
        guard let id = UUID(uuidString: request.parameter("id")) else { throw DashboardPageError.invalid("id: must be an account id (UUID)") }
        do {
            return try await change(viewer.principal, id)
        } catch let refusal as OperationRefusal {
            return try await page(request, failure: refusal.description)
        }
    }
}
