public import Hummingbird
import HTTPTypes

/// Answers what the router does not serve with a JSON error like every other refusal, instead
/// of an empty 404:
/// - a path no route has: 404 naming the path;
/// - a path served for other methods: 405 with `Allow`, naming the method;
/// - `HEAD` on a path served for `GET`: the `GET` answer without its body.
///
/// Add it to a router before its routes, and hand it the router with `serve(_:)` once
/// they are all registered.
public final class UnservedRoutes<Context: RequestContext>: RouterMiddleware, @unchecked Sendable {
    // Written once by `serve`, before the router is built and serves anything; read after.
    private var templates: [(segments: [Substring], methods: [HTTPRequest.Method])] = []
    private var responder: RouterResponder<Context>?

    public init() {}

    /// Records the routes `router` serves, with a responder of its own for `HEAD`.
    public func serve(_ router: Router<Context>) {
        var byPath: [String: [HTTPRequest.Method]] = [:]
        for route in router.routes { byPath[route.path.description, default: []].append(route.method) }
        templates = byPath.map { (Self.segments($0.key), $0.value) }
        responder = router.buildResponder()
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as HTTPError where error.status == .notFound && context.endpointPath == "NotFound" {
            let path = request.uri.path
            let methods = allowed(path)
            if methods.isEmpty {
                return RESTResponses.error(.notFound, "path: must be a route Cairn serves (listed at /openapi.json), got \(JSONText.quoted(path))")
            }
            if request.method == .head, methods.contains(.get), let responder {
                var head = request.head
                head.method = .get
                var response = try await responder.respond(to: Request(head: head, body: request.body), context: context)
                response.body = ResponseBody()
                return response
            }
            let names = methods.map(\.rawValue).sorted()
            var response = RESTResponses.error(
                .methodNotAllowed, "method: must be \(names.joined(separator: " or ")) for \(path), got \(request.method.rawValue)")
            response.headers[.allow] = names.joined(separator: ", ")
            return response
        }
    }

    /// The methods served at `path`, whichever template it matches.
    func allowed(_ path: String) -> [HTTPRequest.Method] {
        let parts = Self.segments(path)
        var methods: [HTTPRequest.Method] = []
        for template in templates where Self.matches(parts, template.segments) {
            for method in template.methods where !methods.contains(method) { methods.append(method) }
        }
        return methods
    }

    static func segments(_ path: String) -> [Substring] { path.split(separator: "/") }

    static func matches(_ parts: [Substring], _ template: [Substring]) -> Bool {
        if let last = template.last, last == "**" { return parts.count >= template.count - 1 && zip(parts, template.dropLast()).allSatisfy(segmentMatches) }
        return parts.count == template.count && zip(parts, template).allSatisfy(segmentMatches)
    }

    static func segmentMatches(_ part: Substring, _ template: Substring) -> Bool {
        template == part || template.hasPrefix(":") || template.hasPrefix("{") || template == "*"
    }
}
