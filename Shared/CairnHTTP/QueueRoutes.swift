import CairnCore
public import CairnEngine
import Foundation
public import Hummingbird

/// The work queue over REST (docs/queue.md):
///
/// - `GET /v1/queues` — per live function with a concurrency limit or work waiting:
///   `{function_id, app, limits: [{limit, key, scope, run_level}], ready, backlog, running,
///   oldest_age_seconds}`, by slug.
public struct QueueRoutes: Sendable {
    let report: QueueReport
    let responses: RESTResponses
    let authorization: APIAuthorization

    public init(report: QueueReport, clock: any WallClock, authorization: APIAuthorization) {
        self.report = report
        self.responses = RESTResponses(clock: clock)
        self.authorization = authorization
    }

    public func register<Context: RequestContext>(on router: Router<Context>) {
        router.get("/v1/queues") { request, _ -> Response in
            if let refusal = await self.authorization.refusal(request) { return refusal }
            return self.responses.envelope(data: .array(try await self.report.lines().map(Self.render)))
        }
    }

    static func render(_ line: QueueReport.Line) -> JSONValue {
        .object([
            "function_id": .string(line.function.config.id), "app": .string(line.function.appName),
            "limits": .array(line.limits.map(FunctionRendering.concurrencyLimit)),
            "ready": .number(JSONNumber(line.ready)), "backlog": .number(JSONNumber(line.backlog)), "running": .number(JSONNumber(line.running)),
            "oldest_age_seconds": .number(JSONNumber((line.oldestAge * 1_000).rounded() / 1_000) ?? JSONNumber(0)),
        ])
    }
}
