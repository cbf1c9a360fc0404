public import CairnCore
public import CairnEngine
public import Foundation
public import Logging
import SwiftProtobuf
import Synchronization

/// The HTTP half of connect, served by cairn-api (docs/connect.md): `POST /v0/connect/start`,
/// which authenticates a worker and tells it which gateway to dial with which session token,
/// and `POST /v0/connect/flush`, where a worker posts a reply no gateway acknowledged.
public struct ConnectAPI: Sendable {
    /// A reply for the HTTP layer: protobuf on success, a JSON error otherwise.
    public struct Reply: Sendable {
        public var status: Int
        public var contentType: String
        public var body: [UInt8]
    }

    let state: any ConnectState
    let keys: SigningKeys?
    let secret: ConnectSessionSecret
    let clock: any WallClock
    let settings: ConnectSettings
    /// `CAIRN_CONNECT_GATEWAY_URL`: the URL every worker dials (a load balancer in front of the
    /// gateways). Without it, a live gateway is picked from the registry.
    let gatewayURL: String?
    let logger: Logger
    let ids = ULIDSource()

    /// The connections of `app` that are up, for `GET /v1/apps/{app}/workers`.
    public func workers(app: String) async throws -> [ConnectWorker] {
        try await state.liveWorkers(app: app, at: clock.now, settings: settings)
    }

    public init(
        state: any ConnectState, keys: SigningKeys?, clock: any WallClock, settings: ConnectSettings, gatewayURL: String?, logger: Logger
    ) {
        self.state = state
        self.keys = keys
        self.secret = ConnectSessionSecret(keys: keys)
        self.clock = clock
        self.settings = settings
        self.gatewayURL = gatewayURL
        self.logger = logger
    }

    /// The bearer token, when the caller may use connect: any caller in dev mode (no keys),
    /// otherwise one presenting a signing key or its hash.
    func authenticate(_ authorization: String?) -> String?? {
        let token = SigningKeys.bearerToken(authorization)
        guard let keys else { return .some(token) }
        return keys.authorizes(authorization: authorization) ? .some(token) : nil
    }

    /// `POST /v0/connect/start`.
    public func start(body: [UInt8], authorization: String?, environment: String?, host: String?) async -> Reply {
        guard let token = authenticate(authorization) else {
            return Self.error(401, "authorization: must be Bearer <signing key or its hash>")
        }
        var request = Connect_V1_StartRequest()
        if !body.isEmpty {
            guard body.count <= 1_048_576, let parsed = try? Connect_V1_StartRequest(serializedBytes: body) else {
                return Self.error(400, "body: must be a protobuf StartRequest of at most 1 MiB")
            }
            request = parsed
        }
        let endpoint: (url: String, group: String)
        if let gatewayURL {
            endpoint = (gatewayURL, "cairn")
        } else {
            let now = clock.now
            let live: [ConnectGateway]
            do {
                live = try await state.liveGateways(at: now, settings: settings)
            } catch {
                logger.warning("reading the connect gateways failed", metadata: ["error": "\(error)"])
                return Self.error(503, "the connect registry is unavailable: \(error)")
            }
            let preferred = live.filter { !request.excludeGateways.contains($0.id) }
            guard let gateway = (preferred.isEmpty ? live : preferred).randomElement() else {
                return Self.error(503, "no connect gateway is running (start cairn-gateway, or set CAIRN_CONNECT_GATEWAY_URL)")
            }
            let hostname = Self.hostname(host) ?? "127.0.0.1"
            endpoint = (gateway.url ?? "ws://\(hostname):\(gateway.port)/v0/connect", gateway.id)
        }
        let now = clock.now
        var response = Connect_V1_StartResponse()
        response.connectionID = ids.next(at: now).description
        response.gatewayEndpoint = endpoint.url
        response.gatewayGroup = endpoint.group
        response.sessionToken = ConnectSessionToken(environment: environment ?? "", issuedAt: now, id: ids.next(at: now).description).encoded(secret: secret)
        response.syncToken = token ?? ""
        return Reply(status: 200, contentType: "application/octet-stream", body: (try? response.serializedBytes()) ?? [])
    }

    /// `POST /v0/connect/flush`: a reply posted over HTTP, buffered exactly like one sent over
    /// the WebSocket (the first of the two wins).
    public func flush(body: [UInt8], authorization: String?) async -> Reply {
        guard authenticate(authorization) != nil else {
            return Self.error(401, "authorization: must be Bearer <signing key or its hash>")
        }
        guard !body.isEmpty else { return Self.error(400, "body: must be a protobuf SDKResponse, got an empty body") }
        guard let reply = try? Connect_V1_SDKResponse(serializedBytes: body) else {
            return Self.error(400, "body: must be a protobuf SDKResponse")
        }
        guard !reply.requestID.isEmpty else { return Self.error(400, "request_id: must not be empty") }
        if !reply.systemTraceCtx.isEmpty, (try? JSONValue(parsing: Array(reply.systemTraceCtx))) == nil {
            return Self.error(400, "system_trace_ctx: must be JSON")
        }
        do {
            try await state.accept(reply: body, requestID: reply.requestID, settings: settings)
        } catch {
            return Self.error(503, "the reply could not be buffered: \(error)")
        }
        var response = Connect_V1_FlushResponse()
        response.requestID = reply.requestID
        return Reply(status: 200, contentType: "application/octet-stream", body: (try? response.serializedBytes()) ?? [])
    }

    /// The host name of a `Host` header (without its port; IPv6 brackets kept).
    static func hostname(_ host: String?) -> String? {
        guard let host, !host.isEmpty else { return nil }
        if host.hasPrefix("["), let end = host.firstIndex(of: "]") { return String(host[...end]) }
        return String(host.split(separator: ":", maxSplits: 1).first ?? "")
    }

    static func error(_ status: Int, _ message: String) -> Reply {
        Reply(
            status: status, contentType: "application/json",
            body: JSONValue.object(["error": .string(message), "status": .number(JSONNumber(status))]).serialized())
    }
}

/// ULIDs from a shared generator (monotonic within a millisecond).
final class ULIDSource: Sendable {
    private let generator = Mutex(ULIDGenerator())

    func next(at date: Date) -> ULID {
        generator.withLock { $0.next(milliseconds: UInt64(date.unixMilliseconds)) }
    }
}
