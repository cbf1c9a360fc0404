public import CairnCore
public import CairnEngine
import Foundation
public import Hummingbird
import HTTPTypes
public import Logging
import NIOCore

/// What the dashboard reads and operates on: the same engine ports and use cases the REST API
/// and the CLI use, so a page shows exactly what `GET /v1/...` would (docs/dashboard.md).
public struct DashboardSources: Sendable {
    public var registry: any AppRegistry
    public var runs: any RunQueries
    public var events: any EventLog
    public var operations: FunctionOperations
    public var cancellation: RunCancellation
    public var rerun: RunRerun
    public var jobs: any BulkStore
    public var queues: QueueReport
    public var connect: any ConnectState
    /// Records events sent from the events page or an invoke, as `POST /e/{key}` would; returns
    /// their internal ids.
    public var ingest: @Sendable ([Event]) async throws -> [ULID]
    public var clock: any WallClock

    public init(
        registry: any AppRegistry, runs: any RunQueries, events: any EventLog, operations: FunctionOperations, cancellation: RunCancellation,
        rerun: RunRerun, jobs: any BulkStore, queues: QueueReport, connect: any ConnectState,
        ingest: @escaping @Sendable ([Event]) async throws -> [ULID], clock: any WallClock
    ) {
        self.registry = registry
        self.runs = runs
        self.events = events
        self.operations = operations
        self.cancellation = cancellation
        self.rerun = rerun
        self.jobs = jobs
        self.queues = queues
        self.connect = connect
        self.ingest = ingest
        self.clock = clock
    }
}

/// The operator's dashboard: server-rendered pages at `/`, `/apps`, `/functions`, `/runs`,
/// `/events`, `/queues` and `/workers`, their actions (forms posted back with a CSRF token),
/// server-sent events for live updates, and the stylesheet and script they load. No page needs
/// anything from outside Cairn (docs/dashboard.md).
public struct Dashboard: Sendable {
    let sources: DashboardSources
    let access: DashboardAccess
    let templates: DashboardTemplates
    let logger: Logger

    public init(sources: DashboardSources, access: DashboardAccess, logger: Logger) throws {
        self.sources = sources
        self.access = access
        self.templates = try DashboardTemplates.load()
        self.logger = logger
    }

    /// A route of the dashboard: who may use it, and what answers it.
    struct Route: Sendable {
        enum Need: Sendable {
            /// Anyone, signed in or not (the login form, static files).
            case nobody
            /// A signed-in viewer or better.
            case viewer
            /// A signed-in viewer or better, with the form's CSRF token.
            case viewerForm
            /// An operator or admin, with the form's CSRF token.
            case operatorForm
        }
        var method: HTTPRequest.Method
        var path: String
        var need: Need
        var handler: @Sendable (Request, DashboardRequest) async throws -> Response
    }

    func routes() -> [Route] {
        let pages = DashboardPages(sources: sources, templates: templates)
        let actions = DashboardActions(sources: sources, access: access)
        let live = LiveUpdates(sources: sources)
        let settings = DashboardSettings(accounts: access.accounts, templates: templates, local: access.isLocal)
        return [
            Route(method: .get, path: "/", need: .viewer) { try await pages.overview($1) },
            Route(method: .get, path: "/apps", need: .viewer) { try await pages.apps($1) },
            Route(method: .get, path: "/functions", need: .viewer) { try await pages.functions($1) },
            Route(method: .get, path: "/functions/:slug", need: .viewer) { try await pages.function($1) },
            Route(method: .get, path: "/runs", need: .viewer) { try await pages.runs($1) },
            Route(method: .get, path: "/runs/:id", need: .viewer) { try await pages.run($1) },
            Route(method: .get, path: "/events", need: .viewer) { try await pages.events($1) },
            Route(method: .get, path: "/events/:id", need: .viewer) { try await pages.event($1) },
            Route(method: .get, path: "/queues", need: .viewer) { try await pages.queues($1) },
            Route(method: .get, path: "/schedules", need: .viewer) { try await pages.schedules($1) },
            Route(method: .get, path: "/bulk/:id", need: .viewer) { try await pages.bulk($1) },
            Route(method: .get, path: "/workers", need: .viewer) { try await pages.workers($1) },
            Route(method: .get, path: "/login", need: .nobody) { try await self.loginPage($0, $1, failure: nil) },
            Route(method: .post, path: "/login", need: .nobody) { try await self.signIn($0, $1) },
            Route(method: .post, path: "/logout", need: .viewerForm) { try await self.signOut($0, $1) },
            Route(method: .get, path: "/static/:file", need: .nobody) { _, request in self.templates.asset(request.parameter("file")) },
            Route(method: .get, path: "/live/runs", need: .viewer) { _, request in live.runs(request) },
            Route(method: .get, path: "/live/runs/:id", need: .viewer) { _, request in live.run(request) },
            Route(method: .post, path: "/runs/:id/cancel", need: .operatorForm) { try await actions.cancelRun($1) },
            Route(method: .post, path: "/runs/:id/rerun", need: .operatorForm) { try await actions.rerun($1) },
            Route(method: .post, path: "/runs/cancel", need: .operatorForm) { try await actions.cancelSelected($1) },
            Route(method: .post, path: "/runs/rerun", need: .operatorForm) { try await actions.rerunSelected($1) },
            Route(method: .post, path: "/runs/bulk", need: .operatorForm) { try await actions.bulk($1) },
            Route(method: .post, path: "/functions/:slug/pause", need: .operatorForm) { try await actions.pause($1) },
            Route(method: .post, path: "/functions/:slug/resume", need: .operatorForm) { try await actions.resume($1) },
            Route(method: .post, path: "/functions/:slug/invoke", need: .operatorForm) { try await actions.invoke($1) },
            Route(method: .post, path: "/events/send", need: .operatorForm) { try await actions.sendEvent($1) },
            Route(method: .get, path: "/settings", need: .viewer) { try await settings.page($1) },
            Route(method: .post, path: "/settings/password", need: .viewerForm) { try await settings.changePassword($1) },
            Route(method: .post, path: "/settings/tokens", need: .viewerForm) { try await settings.createToken($1) },
            Route(method: .post, path: "/settings/tokens/:id/revoke", need: .viewerForm) { try await settings.revokeToken($1) },
            Route(method: .post, path: "/settings/accounts", need: .viewerForm) { try await settings.createAccount($1) },
            Route(method: .post, path: "/settings/accounts/:id/role", need: .viewerForm) { try await settings.changeRole($1) },
            Route(method: .post, path: "/settings/accounts/:id/disable", need: .viewerForm) { try await settings.disableAccount($1) },
            Route(method: .post, path: "/settings/accounts/:id/enable", need: .viewerForm) { try await settings.enableAccount($1) },
            Route(method: .post, path: "/settings/accounts/:id/reset", need: .viewerForm) { try await settings.resetPassword($1) },
        ]
    }

    public func register<Context: RequestContext>(on router: Router<Context>) {
        for route in routes() {
            router.on(RouterPath(route.path), method: route.method) { request, context -> Response in
                try await self.answer(route, request, parameters: context.parameters)
            }
        }
    }

    /// Checks who asks, then answers; a refusal or a failure becomes a page, never a bare 500.
    func answer(_ route: Route, _ request: Request, parameters: Parameters) async throws -> Response {
        var request = request
        // Static files and the login form need nobody: no session lookup for them.
        let viewer = route.need == .nobody ? nil : try await access.viewer(request)
        if route.need != .nobody, viewer == nil {
            if route.method == .get, !request.uri.path.hasPrefix("/live/") {
                return Self.redirect(to: "/login?next=" + Self.percentEncoded(request.uri.description))
            }
            return templates.errorPage(status: .unauthorized, message: "Sign in first.", viewer: nil)
        }
        var form: [String: [String]] = [:]
        if route.method == .post {
            guard let body = try await Self.collect(&request) else {
                return templates.errorPage(status: .contentTooLarge, message: "body: must be at most \(Self.maximumFormBytes) bytes", viewer: viewer)
            }
            form = FormBody.parse(body)
            // A form posted from another site is refused whatever it carries.
            if let refusal = Self.crossSiteRefusal(request) {
                return templates.errorPage(status: .forbidden, message: refusal, viewer: viewer)
            }
        }
        // A one-time password is for changing, first.
        if let viewer, viewer.principal.mustChangePassword, !request.uri.path.hasPrefix("/settings"), request.uri.path != "/logout" {
            return Self.redirect(to: "/settings?notice=" + Self.percentEncoded("Choose a new password to go on."))
        }
        if route.need == .operatorForm || route.need == .viewerForm, let viewer {
            guard route.need == .viewerForm || viewer.role.allows(.operator) else {
                return templates.errorPage(status: .forbidden, message: "role: \(viewer.role.rawValue) may only look; this needs operator or admin", viewer: viewer)
            }
            guard let token = form["csrf"]?.first, viewer.acceptsCSRF(token) else {
                return templates.errorPage(status: .forbidden, message: "csrf: the form's token is missing or stale; reload the page and try again", viewer: viewer)
            }
        }
        let context = DashboardRequest(viewer: viewer, query: request.uri.queryParameters, parameters: parameters, form: form, path: request.uri.description)
        do {
            return try await route.handler(request, context)
        } catch let page as DashboardPageError {
            return templates.errorPage(status: page.status, message: page.message, viewer: viewer)
        } catch let refusal as OperationRefusal {
            let status: HTTPResponse.Status =
                switch refusal.kind {
                case .notFound: .notFound
                case .conflict: .conflict
                case .invalid: .badRequest
                case .unauthorized: .unauthorized
                case .forbidden: .forbidden
                }
            return templates.errorPage(status: status, message: refusal.description, viewer: viewer)
        } catch {
            logger.error("dashboard page failed", metadata: ["path": "\(request.uri.path)", "error": "\(error)"])
            return templates.errorPage(status: .internalServerError, message: "This page could not be built: \(error)", viewer: viewer)
        }
    }

    // MARK: Signing in

    func loginPage(_ request: Request, _ context: DashboardRequest, failure: String?) async throws -> Response {
        if access.isLocal { return Self.redirect(to: "/") }
        let next = context.query["next"].map(String.init) ?? context.form["next"]?.first ?? "/"
        return templates.page(
            "login", title: "Sign in", viewer: nil, nav: nil,
            ["next": Self.safeNext(next), "failure": failure as Any, "email": context.form["email"]?.first ?? ""],
            status: failure == nil ? .ok : .unauthorized)
    }

    func signIn(_ request: Request, _ context: DashboardRequest) async throws -> Response {
        if access.isLocal { return Self.redirect(to: "/") }
        let email = context.form["email"]?.first ?? "", password = context.form["password"]?.first ?? ""
        switch try await access.signIn(email: email, password: password) {
        case .failure(let message):
            return try await loginPage(request, context, failure: message)
        case .success(let cookie):
            var response = Self.redirect(to: Self.safeNext(context.form["next"]?.first ?? "/"))
            response.headers[values: .setCookie] = [cookie]
            return response
        }
    }

    func signOut(_ request: Request, _ context: DashboardRequest) async throws -> Response {
        let cookie = try await access.signOut(request)
        var response = Self.redirect(to: access.isLocal ? "/" : "/login")
        if let cookie { response.headers[values: .setCookie] = [cookie] }
        return response
    }

    // MARK: HTTP helpers

    static let maximumFormBytes = 1_048_576

    static func collect(_ request: inout Request) async throws -> ByteBuffer? {
        if let length = request.headers[.contentLength].flatMap(Int.init), length > maximumFormBytes { return nil }
        do {
            return try await request.collectBody(upTo: maximumFormBytes)
        } catch is NIOTooManyBytesError {
            return nil
        }
    }

    /// A refusal message when a form comes from another site: the browser says so in
    /// `Sec-Fetch-Site`, or its `Origin` names another host than the one it posts to.
    static func crossSiteRefusal(_ request: Request) -> String? {
        if let site = request.headers[HTTPField.Name("Sec-Fetch-Site")!], site == "cross-site" {
            return "origin: forms must be posted from Cairn's own pages, not another site"
        }
        if let origin = request.headers[HTTPField.Name("Origin")!], origin != "null", let host = request.head.authority {
            let stripped = origin.split(separator: "/", omittingEmptySubsequences: true).dropFirst().first.map(String.init) ?? ""
            if stripped != host { return "origin: forms must be posted from \(host), got \(origin)" }
        }
        return nil
    }

    static func redirect(to location: String) -> Response {
        Response(status: .seeOther, headers: [.location: location, .cacheControl: "no-store"])
    }

    /// Only a path on this site may follow a sign-in: never another host.
    static func safeNext(_ next: String) -> String {
        guard next.hasPrefix("/"), !next.hasPrefix("//"), !next.hasPrefix("/\\") else { return "/" }
        return next
    }

    static func percentEncoded(_ text: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~/")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? "/"
    }
}

/// One request as a page sees it: who asks, the query, the path's parameters and a posted form.
struct DashboardRequest: Sendable {
    var viewer: DashboardViewer?
    var query: [String: [String]]
    var parameters: [String: String]
    var form: [String: [String]]
    var path: String

    init(viewer: DashboardViewer?, query: Hummingbird.Parameters, parameters: Hummingbird.Parameters, form: [String: [String]], path: String) {
        self.viewer = viewer
        var values: [String: [String]] = [:]
        for (name, value) in query { values[String(name), default: []].append(String(value)) }
        self.query = values
        var named: [String: String] = [:]
        for (name, value) in parameters { named[String(name)] = String(value) }
        self.parameters = named
        self.form = form
        self.path = path
    }

    func parameter(_ name: String) -> String { parameters[name] ?? "" }

    /// The first non-empty value of a query parameter.
    func first(_ name: String) -> String? {
        query[name]?.first(where: { !$0.isEmpty })
    }

    /// The first non-empty value of a form field.
    func field(_ name: String) -> String? {
        form[name]?.first(where: { !$0.isEmpty })
    }
}

extension DashboardRequest {
    subscript(_ name: String) -> String? { first(name) }
}

/// A page that cannot be shown, with the status and a message naming what was wrong.
struct DashboardPageError: Error {
    var status: HTTPResponse.Status
    var message: String

    static func notFound(_ message: String) -> DashboardPageError { DashboardPageError(status: .notFound, message: message) }
    static func invalid(_ message: String) -> DashboardPageError { DashboardPageError(status: .badRequest, message: message) }
}
