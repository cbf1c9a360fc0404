public import CairnCore
public import Foundation

/// A connect worker's connection as the registry holds it (docs/connect.md, "Routing").
public struct ConnectWorker: Sendable, Hashable {
    public enum Status: String, Sendable, Hashable {
        /// Handshake done, waiting for `WORKER_READY` (workers that ask for a manual ack).
        case connected
        /// Routable.
        case ready
        /// Paused by the worker or closing with its gateway: takes no new request.
        case draining
    }

    public var connectionID: String
    public var gatewayID: String
    public var instanceID: String
    /// The SDK app ids the connection serves (`AppConfiguration.app_name`).
    public var apps: [String]
    /// The slug of every function the connection serves → the app it belongs to.
    public var functions: [String: String]
    public var status: Status
    public var sdkLanguage: String
    public var sdkVersion: String
    /// `max_worker_concurrency`: how many requests the worker instance runs at once; nil is
    /// unlimited.
    public var maxConcurrency: Int?
    public var connectedAt: Date
    public var lastHeartbeat: Date

    public init(
        connectionID: String, gatewayID: String, instanceID: String, apps: [String], functions: [String: String], status: Status,
        sdkLanguage: String, sdkVersion: String, maxConcurrency: Int?, connectedAt: Date, lastHeartbeat: Date
    ) {
        self.connectionID = connectionID
        self.gatewayID = gatewayID
        self.instanceID = instanceID
        self.apps = apps
        self.functions = functions
        self.status = status
        self.sdkLanguage = sdkLanguage
        self.sdkVersion = sdkVersion
        self.maxConcurrency = maxConcurrency
        self.connectedAt = connectedAt
        self.lastHeartbeat = lastHeartbeat
    }

    public var json: JSONValue {
        .object([
            "connection_id": .string(connectionID), "gateway_id": .string(gatewayID), "instance_id": .string(instanceID),
            "apps": .array(apps.map(JSONValue.string)), "functions": .object(JSONObject(members: functions.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) })),
            "status": .string(status.rawValue), "sdk_language": .string(sdkLanguage), "sdk_version": .string(sdkVersion),
            "max_concurrency": maxConcurrency.map { .number(JSONNumber($0)) } ?? .null,
            "connected_at": .number(JSONNumber(connectedAt.unixMilliseconds)), "last_heartbeat_at": .number(JSONNumber(lastHeartbeat.unixMilliseconds)),
        ])
    }

    public init?(json: JSONValue) {
        guard let connectionID = json["connection_id"]?.stringValue, let gatewayID = json["gateway_id"]?.stringValue,
            let instanceID = json["instance_id"]?.stringValue, let status = json["status"]?.stringValue.flatMap(Status.init(rawValue:)),
            let connectedAt = json["connected_at"]?.int64Value.map(Date.init(unixMilliseconds:)),
            let lastHeartbeat = json["last_heartbeat_at"]?.int64Value.map(Date.init(unixMilliseconds:))
        else { return nil }
        self.init(
            connectionID: connectionID, gatewayID: gatewayID, instanceID: instanceID,
            apps: json["apps"]?.arrayValue?.compactMap(\.stringValue) ?? [], functions: Dictionary(
                (json["functions"]?.objectValue?.members ?? []).compactMap { member in member.value.stringValue.map { (member.key, $0) } },
                uniquingKeysWith: { first, _ in first }),
            status: status, sdkLanguage: json["sdk_language"]?.stringValue ?? "", sdkVersion: json["sdk_version"]?.stringValue ?? "",
            maxConcurrency: json["max_concurrency"]?.int64Value.map(Int.init), connectedAt: connectedAt, lastHeartbeat: lastHeartbeat)
    }
}

/// A gateway replica's liveness record.
public struct ConnectGateway: Sendable, Hashable {
    public enum Status: String, Sendable, Hashable {
        case active, draining
    }

    public var id: String
    public var status: Status
    public var lastHeartbeat: Date
    /// The WebSocket URL workers dial (`CAIRN_GATEWAY_URL`), when the gateway was given one.
    public var url: String?
    /// The port it listens on, for an API that builds the URL from the start request's host.
    public var port: Int

    public init(id: String, status: Status, lastHeartbeat: Date, url: String?, port: Int) {
        self.id = id
        self.status = status
        self.lastHeartbeat = lastHeartbeat
        self.url = url
        self.port = port
    }

    public var json: JSONValue {
        .object([
            "id": .string(id), "status": .string(status.rawValue), "last_heartbeat_at": .number(JSONNumber(lastHeartbeat.unixMilliseconds)),
            "url": url.map(JSONValue.string) ?? .null, "port": .number(JSONNumber(port)),
        ])
    }

    public init?(json: JSONValue) {
        guard let id = json["id"]?.stringValue, let status = json["status"]?.stringValue.flatMap(Status.init(rawValue:)),
            let heartbeat = json["last_heartbeat_at"]?.int64Value.map(Date.init(unixMilliseconds:)), let port = json["port"]?.int64Value
        else { return nil }
        self.init(id: id, status: status, lastHeartbeat: heartbeat, url: json["url"]?.stringValue, port: Int(port))
    }
}

/// A connection that ended, kept for `GET /v1/apps/{app}/workers`.
public struct ConnectDisconnect: Sendable, Hashable {
    public var connectionID: String
    public var instanceID: String
    public var gatewayID: String
    public var reason: String
    public var at: Date

    public init(connectionID: String, instanceID: String, gatewayID: String, reason: String, at: Date) {
        self.connectionID = connectionID
        self.instanceID = instanceID
        self.gatewayID = gatewayID
        self.reason = reason
        self.at = at
    }

    public var json: JSONValue {
        .object([
            "connection_id": .string(connectionID), "instance_id": .string(instanceID), "gateway_id": .string(gatewayID),
            "reason": .string(reason), "at": .number(JSONNumber(at.unixMilliseconds)),
        ])
    }

    public init?(json: JSONValue) {
        guard let connectionID = json["connection_id"]?.stringValue, let at = json["at"]?.int64Value.map(Date.init(unixMilliseconds:)) else { return nil }
        self.init(
            connectionID: connectionID, instanceID: json["instance_id"]?.stringValue ?? "", gatewayID: json["gateway_id"]?.stringValue ?? "",
            reason: json["reason"]?.stringValue ?? "", at: at)
    }
}

/// The lease on one request forwarded to a worker. Its id is a ULID whose time is the lease's
/// expiry; a worker extends it with `WORKER_REQUEST_EXTEND_LEASE` while it runs the request.
public struct ConnectLease: Sendable, Hashable {
    public var requestID: String
    public var leaseID: ULID
    /// The executor waiting for the reply: where acks and replies are announced.
    public var executorID: String
    /// The worker instance holding a capacity slot for the request.
    public var instanceID: String

    public init(requestID: String, leaseID: ULID, executorID: String, instanceID: String) {
        self.requestID = requestID
        self.leaseID = leaseID
        self.executorID = executorID
        self.instanceID = instanceID
    }

    public var expiresAt: Date { leaseID.date }
}

/// A request for the connection `connectionID`, for the inbox of its gateway (`gw:{gatewayID}`).
public struct ConnectForward: Sendable {
    public var gatewayID: String
    public var connectionID: String
    /// A protobuf `GatewayExecutorRequestData`.
    public var request: [UInt8]

    public init(gatewayID: String, connectionID: String, request: [UInt8]) {
        self.gatewayID = gatewayID
        self.connectionID = connectionID
        self.request = request
    }
}

/// What a gateway tells the executor that forwarded a request.
public enum ConnectNotice: String, Sendable, Hashable {
    /// The worker accepted the request.
    case ack
    /// The reply is buffered: take it.
    case reply
    /// The gateway could not hand the request to the connection (gone, paused): route again.
    case undeliverable
}

/// Where the connect gateway and the executors keep what they share (docs/connect.md): the
/// registry of gateways and worker connections, capacity slots, request leases, buffered
/// replies, and the two kinds of inbox — a gateway's (`gw:{id}`) and an executor's
/// (`reply:{id}`). Every record that a dead process would strand has a TTL.
public protocol ConnectState: Sendable {
    // MARK: Gateways

    /// Records a gateway's liveness; the record lapses after `ttl` without a new heartbeat.
    func heartbeat(gateway: ConnectGateway, ttl: Duration) async throws
    /// Every gateway with a live record.
    func gateways() async throws -> [ConnectGateway]
    /// Drops a stopped gateway's record.
    func removeGateway(id: String) async throws

    // MARK: Connections

    /// Records or refreshes connections, in one round trip; each lapses after `ttl` unless
    /// refreshed again.
    func upsert(workers: [ConnectWorker], ttl: Duration) async throws
    /// Removes a connection from every index and records why it ended.
    func remove(worker: ConnectWorker, reason: String, at: Date) async throws
    /// The live connections serving `app`.
    func workers(app: String) async throws -> [ConnectWorker]
    /// The live connections serving the function `slug`.
    func workers(function slug: String) async throws -> [ConnectWorker]
    /// The most recent disconnects of `app`'s connections, newest first.
    func disconnects(app: String) async throws -> [ConnectDisconnect]

    // MARK: Capacity and leases

    /// Takes one of `instance`'s `limit` slots (nil: unlimited) for `lease`, records the lease
    /// and, given `forward`, puts the request in its gateway's inbox, all in one step; false,
    /// doing nothing, when every slot is taken by an unexpired lease.
    func assign(_ lease: ConnectLease, limit: Int?, now: Date, forward: ConnectForward?) async throws -> Bool
    /// The request's current lease, if it has not been released or lapsed.
    func lease(requestID: String) async throws -> ConnectLease?
    /// Replaces the lease `current` with `next` if `current` is the request's lease and
    /// unexpired at `now`. Returns the lease now in force: `next`; the current one when
    /// `current` was the one just replaced (a repeated extension); nil when the lease is lost.
    func extend(requestID: String, current: ULID, next: ULID, now: Date) async throws -> ULID?
    /// Frees the request's slot and drops its lease and any buffered reply.
    func release(requestID: String, instanceID: String) async throws

    // MARK: Requests and replies

    /// Waits up to `timeout` for requests in `gatewayID`'s inbox after `cursor` ("" = from now).
    func nextForwards(gatewayID: String, after cursor: String, timeout: Duration) async throws
        -> (cursor: String, requests: [(connectionID: String, request: [UInt8])])
    /// Buffers a reply for `ttl` unless one is already buffered and, when this one was stored,
    /// tells the executor holding the request's lease, in one step; true if it was stored. A
    /// reply of up to `ConnectInboxNotice.inlineReplyLimit` bytes rides in the notice too, so
    /// the executor need not read the buffer.
    func deliver(reply: [UInt8], requestID: String, ttl: Duration) async throws -> Bool
    /// Takes (reads and deletes) the buffered reply.
    func takeReply(requestID: String) async throws -> [UInt8]?
    /// Puts a notice about `requestID` in the inbox of the executor holding its lease, in one
    /// step; nothing when the lease is gone (that executor has stopped waiting).
    func announce(requestID: String, _ notice: ConnectNotice) async throws
    /// Waits up to `timeout` for notices in `executorID`'s inbox after `cursor` ("" = from now).
    func nextNotices(executorID: String, after cursor: String, timeout: Duration) async throws
        -> (cursor: String, notices: [ConnectInboxNotice])
}

/// One entry of an executor's inbox.
public struct ConnectInboxNotice: Sendable, Equatable {
    /// The largest reply carried in its notice; a larger one is read from the buffer.
    public static let inlineReplyLimit = 256 * 1024

    public var requestID: String
    public var notice: ConnectNotice
    /// The reply itself, with a `.reply` notice for a reply small enough.
    public var reply: [UInt8]?

    public init(requestID: String, notice: ConnectNotice, reply: [UInt8]? = nil) {
        self.requestID = requestID
        self.notice = notice
        self.reply = reply
    }
}
