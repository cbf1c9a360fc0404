public import CairnCore
public import CairnEngine
import Foundation
public import Hummingbird
import NIOCore

/// The control-plane REST conventions (docs/protocol.md §7): successes are
/// `{"data": …, "metadata": {"fetched_at": …, "cached_until": null, …}}`, failures are
/// `{"error": "<field>: <rule>", "status": <code>}`.
struct RESTResponses: Sendable {
    let clock: any WallClock

    func envelope(data: JSONValue, extra: [(String, JSONValue)] = [], status: HTTPResponse.Status = .ok) -> Response {
        var metadata: [(String, JSONValue)] = [("fetched_at", .string(RFC3339.format(milliseconds: nowMilliseconds))), ("cached_until", .null)]
        metadata += extra
        let body = JSONValue.object(JSONObject(members: [
            ("data", data), ("metadata", .object(JSONObject(members: metadata))),
        ]))
        return JSONText.response(status: status, body: body.jsonString)
    }

    var nowMilliseconds: Int64 { clock.now.unixMilliseconds }

    /// The request's body, or nil when it is larger than `limit` bytes: a declared
    /// `Content-Length` over the limit is refused before anything is read.
    static func collectBody(_ request: Request, upTo limit: Int) async throws -> ByteBuffer? {
        if let length = request.headers[.contentLength].flatMap(Int.init), length > limit { return nil }
        var request = request
        do {
            return try await request.collectBody(upTo: limit)
        } catch is NIOTooManyBytesError {
            return nil
        }
    }

    static func error(_ status: HTTPResponse.Status, _ message: String) -> Response {
        JSONText.response(status: status, body: #"{"error":\#(JSONText.quoted(message)),"status":\#(status.code)}"#)
    }

    /// A refused operation: 404, 409 or 400 by its kind, with its field and rule.
    static func refusal(_ refusal: OperationRefusal) -> Response {
        let status: HTTPResponse.Status =
            switch refusal.kind {
            case .notFound: .notFound
            case .conflict: .conflict
            case .invalid: .badRequest
            case .unauthorized: .unauthorized
            case .forbidden: .forbidden
            }
        return error(status, refusal.description)
    }

    static func render(_ date: Date) -> JSONValue {
        .string(RFC3339.format(milliseconds: date.unixMilliseconds))
    }
}

/// Who may call the control plane (`/v1/*`) and the SDK's callbacks (docs/dashboard.md#api-tokens):
/// outside dev mode, callers present one of
/// - `Authorization: Bearer <signing key or its hash>` (docs/protocol.md §5), as SDKs and the
///   CLI do: everything;
/// - `Authorization: Bearer cairn_…`, an API token: what its role allows, reading for a viewer,
///   everything for an operator or admin;
/// - the dashboard's session cookie: reading only (a change made from a browser goes through
///   the dashboard's forms, which carry a CSRF token).
///
/// In dev mode anyone may.
public struct APIAuthorization: Sendable {
    let keys: SigningKeys?
    let accounts: Accounts?

    /// Requires `keys` (or an account's token or session) when given; `nil` is dev mode.
    public init(keys: SigningKeys?, accounts: Accounts? = nil) {
        self.keys = keys
        self.accounts = accounts
    }

    /// A 401 (or, for a token whose role does not allow the method, 403) response when
    /// `request` is not authorized, else nil.
    func refusal(_ request: Request) async -> Response? {
        guard let keys else { return nil }
        let header = request.headers[.authorization]
        if keys.authorizes(authorization: header) { return nil }
        let reads = request.method == .get || request.method == .head
        if let accounts {
            do {
                if let header, header.hasPrefix("Bearer " + Accounts.tokenPrefix) {
                    if let principal = try await accounts.principal(bearer: String(header.dropFirst("Bearer ".count))) {
                        if reads || principal.role.allows(.operator) { return nil }
                        return RESTResponses.error(
                            .forbidden, "authorization: the token's role \(principal.role.rawValue) may only read; this needs operator or admin")
                    }
                } else if let token = CookieHeader.value(CookieHeader.session, in: request.headers[values: .cookie]), try await accounts.principal(sessionToken: token) != nil {
                    if reads { return nil }
                    return RESTResponses.error(.forbidden, "authorization: a browser session may only read the API; change things from the dashboard, or use an API token")
                }
            } catch {
                return RESTResponses.error(.serviceUnavailable, "authorization: could not be checked now; retry")
            }
        }
        return RESTResponses.error(.unauthorized, "authorization: must be Bearer <signing key or its hash> or Bearer <API token>")
    }
}
