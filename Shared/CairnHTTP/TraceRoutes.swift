import CairnCore
public import CairnEngine
import Foundation
public import Hummingbird

/// The SDK's own spans (docs/operations.md, "Traces"):
///
/// - `POST /v1/traces/userland` — an OTLP/HTTP export request (`application/x-protobuf` or
///   `application/json`) from an SDK's tracing extension. The SDK's spans name the
///   `cairn.sdk.request` span of the call they ran in as their parent (Cairn sent its id in
///   `traceparent`), so they are forwarded unchanged to Cairn's own trace endpoint and appear
///   under their step. Without a trace endpoint they are accepted and dropped.
public struct TraceRoutes: Sendable {
    let exporter: OTLPTraceExporter?
    let authorization: APIAuthorization

    /// The largest export request accepted: 4 MiB.
    static let maximumBytes = 4 * 1024 * 1024

    public init(exporter: OTLPTraceExporter?, authorization: APIAuthorization) {
        self.exporter = exporter
        self.authorization = authorization
    }

    public func register<Context: RequestContext>(on router: Router<Context>) {
        router.post("/v1/traces/userland") { request, _ -> Response in
            if let refusal = await self.authorization.refusal(request) { return refusal }
            let contentType = (request.headers[.contentType] ?? "").split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
            guard contentType == "application/x-protobuf" || contentType == "application/json" else {
                return RESTResponses.error(
                    .unsupportedMediaType, "content-type: must be application/x-protobuf or application/json (an OTLP export request), got \(JSONText.quoted(contentType))")
            }
            guard let buffer = try await RESTResponses.collectBody(request, upTo: Self.maximumBytes) else {
                return RESTResponses.error(.contentTooLarge, "body: must be at most \(Self.maximumBytes) bytes")
            }
            let body = Array(buffer: buffer)
            if contentType == "application/json" {
                guard case .object(let object)? = try? JSONValue(parsing: body), case .array? = object["resourceSpans"] else {
                    return RESTResponses.error(.badRequest, "body: must be an OTLP export request, a JSON object with a resourceSpans array")
                }
            } else if body.isEmpty {
                return RESTResponses.error(.badRequest, "body: must be an OTLP export request, got nothing")
            }
            if let exporter = self.exporter, await !exporter.forward(body: body, contentType: contentType) {
                return RESTResponses.error(.badGateway, "the trace endpoint did not accept the spans; see the API's log")
            }
            // An empty ExportTraceServiceResponse, in the request's encoding.
            if contentType == "application/json" { return JSONText.response(status: .ok, body: "{}") }
            return Response(status: .ok, headers: [.contentType: "application/x-protobuf"], body: .init(byteBuffer: ByteBuffer()))
        }
    }
}
