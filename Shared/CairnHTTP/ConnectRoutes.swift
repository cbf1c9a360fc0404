public import CairnConnect
import CairnCore
public import CairnEngine
import Foundation
public import Hummingbird
import HTTPTypes
import NIOCore

/// Connect over HTTP, on cairn-api (docs/connect.md):
///
/// - `POST /v0/connect/start` — a worker asks where to connect; replies a protobuf
///   `StartResponse`, or 401/503 JSON errors.
/// - `POST /v0/connect/flush` — a worker posts a reply (protobuf `SDKResponse`) that no gateway
///   acknowledged.
/// - `GET /v1/apps/{app}/workers` — the app's connected workers (SDK, version, capacity,
///   status, last heartbeat) and its recent disconnects with their reasons.
public struct ConnectRoutes: Sendable {
    let api: ConnectAPI
    let state: any ConnectState
    let responses: RESTResponses
    let authorization: APIAuthorization

    public init(api: ConnectAPI, state: any ConnectState, clock: any WallClock, authorization: APIAuthorization) {
        self.api = api
        self.state = state
        self.responses = RESTResponses(clock: clock)
        self.authorization = authorization
    }

    static let environment = HTTPField.Name("x-inngest-env")!

    public func register<Context: RequestContext>(on router: Router<Context>) {
        router.post("/v0/connect/start") { request, _ -> Response in
            guard let body = try await RESTResponses.collectBody(request, upTo: 1_048_576) else {
                return RESTResponses.error(.contentTooLarge, "body: must be at most 1048576 bytes")
            }
            return Self.response(
                await self.api.start(
                    body: Array(buffer: body), authorization: request.headers[.authorization], environment: request.headers[Self.environment],
                    host: request.head.authority))
        }
        router.post("/v0/connect/flush") { request, _ -> Response in
            guard let body = try await RESTResponses.collectBody(request, upTo: 8 * 1024 * 1024) else {
                return RESTResponses.error(.contentTooLarge, "body: must be at most 8388608 bytes")
            }
            return Self.response(await self.api.flush(body: Array(buffer: body), authorization: request.headers[.authorization]))
        }
        router.get("/v1/apps/:app/workers") { request, context -> Response in
            if let refusal = await self.authorization.refusal(request) { return refusal }
            let app = context.parameters.get("app") ?? ""
            let workers = try await self.api.workers(app: app).sorted { $0.connectedAt < $1.connectedAt }
            let disconnects = try await self.state.disconnects(app: app)
            return self.responses.envelope(
                data: .object([
                    "workers": .array(workers.map(Self.render)),
                    "disconnects": .array(
                        disconnects.map {
                            .object([
                                "connection_id": .string($0.connectionID), "instance_id": .string($0.instanceID), "gateway_id": .string($0.gatewayID),
                                "reason": .string($0.reason), "at": RESTResponses.render($0.at),
                            ])
                        }),
                ]))
        }
    }

    static func render(_ worker: ConnectWorker) -> JSONValue {
        .object([
            "connection_id": .string(worker.connectionID), "instance_id": .string(worker.instanceID), "gateway_id": .string(worker.gatewayID),
            "status": .string(worker.status.rawValue), "sdk_language": .string(worker.sdkLanguage), "sdk_version": .string(worker.sdkVersion),
            "max_concurrency": worker.maxConcurrency.map { .number(JSONNumber($0)) } ?? .null,
            "functions": .array(worker.functions.keys.sorted().map(JSONValue.string)),
            "connected_at": RESTResponses.render(worker.connectedAt), "last_heartbeat_at": RESTResponses.render(worker.lastHeartbeat),
        ])
    }

    static func response(_ reply: ConnectAPI.Reply) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = reply.contentType
        return Response(status: HTTPResponse.Status(code: reply.status), headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: reply.body)))
    }
}
