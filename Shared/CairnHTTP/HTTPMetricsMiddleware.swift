import Foundation
public import Hummingbird
public import Metrics

/// `cairn_http_requests_total{route,method,status}` and
/// `cairn_http_request_duration_seconds{route,method}` for every request a listener answers.
/// `route` is the route's template (`/v1/runs/{id}`), or `unmatched`: never the raw path, so
/// the labels stay as few as the routes.
public struct HTTPMetricsMiddleware<Context: RequestContext>: RouterMiddleware {
    let factory: any MetricsFactory

    public init(factory: any MetricsFactory) {
        self.factory = factory
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        do {
            let response = try await next(request, context)
            record(request, context, status: response.status.code, since: start)
            return response
        } catch {
            record(request, context, status: (error as? any HTTPResponseError)?.status.code ?? 500, since: start)
            throw error
        }
    }

    func record(_ request: Request, _ context: Context, status: Int, since start: ContinuousClock.Instant) {
        let route = context.endpointPath.map(Self.template) ?? "unmatched"
        let method = request.method.rawValue
        Counter(label: "cairn_http_requests_total", dimensions: [("route", route), ("method", method), ("status", String(status))], factory: factory)
            .increment()
        let (seconds, attoseconds) = (ContinuousClock.now - start).components
        Metrics.Timer(label: "cairn_http_request_duration_seconds", dimensions: [("route", route), ("method", method)], factory: factory)
            .recordSeconds(Double(seconds) + Double(attoseconds) / 1e18)
    }

    /// `/v1/runs/:id` as the API documents it: `/v1/runs/{id}`.
    static func template(_ path: String) -> String {
        path.split(separator: "/", omittingEmptySubsequences: false).map { $0.hasPrefix(":") ? "{\($0.dropFirst())}" : String($0) }
            .joined(separator: "/")
    }
}
