import CairnCore
import CairnEngine
import Foundation
import Logging
import Synchronization
import SwiftProtobuf

/// One worker's connection to a gateway (docs/connect.md, "A connection"): the handshake with
/// its app sync, then heartbeats, acks, lease extensions, replies and the pause.
final class ConnectSession: Sendable {
    let socket: any ConnectSocket
    let hub: ConnectGatewayHub
    private let fields = Mutex(Fields())

    struct Fields {
        var worker: ConnectWorker?
        var closing = false
        var closeReason: String?
        /// A heartbeat came since the registry record was last written.
        var refreshDue = false
    }

    init(socket: any ConnectSocket, hub: ConnectGatewayHub) {
        self.socket = socket
        self.hub = hub
    }

    var worker: ConnectWorker? { fields.withLock { $0.worker } }
    var closeReason: String? { fields.withLock { $0.closeReason } }
    /// Whether new requests may be handed to the worker.
    var isRoutable: Bool { fields.withLock { $0.worker?.status == .ready && !$0.closing } }
    var logger: Logger { hub.logger }

    /// Closes with `code` and records why.
    func refuse(_ code: UInt16, _ reason: String, detail: String) async {
        fields.withLock { $0.closeReason = reason }
        logger.notice("refused a connect worker", metadata: ["code": "\(code)", "reason": "\(reason)", "detail": "\(detail)"])
        await socket.close(code: code, reason: reason)
    }

    // MARK: Handshake

    /// Checks the worker's `WORKER_CONNECT`, syncs its apps and makes the connection ready.
    /// False when it closed the connection instead.
    func handshake(_ frame: ConnectFrame) async throws -> Bool {
        guard case .binary(let bytes) = frame, let message = try? Connect_V1_ConnectMessage(serializedBytes: bytes) else {
            await refuse(1008, "connect_worker_hello_invalid_payload", detail: "the first message is not a protobuf ConnectMessage")
            return false
        }
        guard message.kind == .workerConnect else {
            await refuse(1008, "connect_worker_hello_invalid_msg", detail: "the first message must be WORKER_CONNECT, got \(message.kind)")
            return false
        }
        guard let request = try? Connect_V1_WorkerConnectRequestData(serializedBytes: message.payload) else {
            await refuse(1008, "connect_worker_hello_invalid_payload", detail: "payload: not a WorkerConnectRequestData")
            return false
        }
        guard ULID(request.connectionID) != nil else {
            await refuse(1008, "connect_worker_hello_invalid_payload", detail: "connection_id: must be the ULID /v0/connect/start returned")
            return false
        }
        guard !request.instanceID.isEmpty else {
            await refuse(1008, "connect_worker_hello_invalid_payload", detail: "instance_id: must not be empty")
            return false
        }
        do {
            _ = try ConnectSessionToken(verifying: request.authData.sessionToken, secret: hub.secret, now: hub.clock.now)
        } catch {
            await refuse(1008, "connect_authentication_failed", detail: "\(error)")
            return false
        }
        guard !request.apps.isEmpty else {
            await refuse(1008, "connect_worker_hello_invalid_payload", detail: "apps: must name at least one app")
            return false
        }
        guard request.apps.count <= 100 else {
            await refuse(1008, "connect_too_many_apps_per_connection", detail: "apps: at most 100 per connection, got \(request.apps.count)")
            return false
        }
        var functions: [String: String] = [:]
        for app in request.apps {
            guard let synced = try await sync(app, request) else { return false }
            for slug in synced { functions[slug] = app.appName }
        }
        let now = hub.clock.now
        let worker = ConnectWorker(
            connectionID: request.connectionID, gatewayID: hub.gatewayID, instanceID: request.instanceID, apps: request.apps.map(\.appName),
            functions: functions, status: request.workerManualReadinessAck ? .connected : .ready, sdkLanguage: request.sdkLanguage,
            sdkVersion: request.sdkVersion,
            maxConcurrency: request.hasMaxWorkerConcurrency && request.maxWorkerConcurrency > 0 ? Int(request.maxWorkerConcurrency) : nil,
            connectedAt: now, lastHeartbeat: now)
        try await hub.state.upsert(workers: [worker], ttl: hub.settings.workerRecordLifetime)
        fields.withLock { $0.worker = worker }
        hub.register(self, id: worker.connectionID)
        var ready = Connect_V1_GatewayConnectionReadyData()
        ready.heartbeatInterval = "\(hub.settings.heartbeatInterval.components.seconds)s"
        ready.extendLeaseInterval = hub.settings.extendInterval
        try await socket.send(ConnectMessages.message(.gatewayConnectionReady, ready))
        logger.info(
            "connect worker connected",
            metadata: [
                "connection": "\(worker.connectionID)", "instance": "\(worker.instanceID)", "apps": "\(worker.apps.joined(separator: ","))",
                "sdk": "\(worker.sdkLanguage):\(worker.sdkVersion)",
            ])
        return true
    }

    /// Syncs one app as `POST /fn/register` would, returning its function slugs; on a refusal
    /// tells the worker (`SYNC_FAILED`) and closes.
    func sync(_ app: Connect_V1_AppConfiguration, _ request: Connect_V1_WorkerConnectRequestData) async throws -> [String]? {
        guard let functions = try? JSONValue(parsing: Array(app.functions)), functions.arrayValue != nil else {
            await refuse(1008, "connect_invalid_function_config", detail: "apps[\(app.appName)].functions: must be a JSON array")
            return nil
        }
        var members: [(String, JSONValue)] = [
            ("url", .string("wss://connect/" + (app.appName.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? app.appName))), ("deployType", "connect"), ("framework", .string(request.framework)),
            ("sdk", .string(request.sdkLanguage + ":" + request.sdkVersion)), ("appName", .string(app.appName)), ("functions", functions),
        ]
        if app.hasAppVersion { members.append(("appVersion", .string(app.appVersion))) }
        if let capabilities = try? JSONValue(parsing: Array(request.capabilities)) { members.append(("capabilities", capabilities)) }
        let body = JSONValue.object(JSONObject(members: members)).serialized()
        let reply = try await hub.sync.register(body: body, authorization: "Bearer " + request.authData.syncToken, expectedServerKind: nil)
        guard reply.status == 200 else {
            let code = reply.body["code"]?.stringValue ?? (reply.status == 401 ? "connect_authentication_failed" : "connect_sync_failed")
            var failure = Connect_V1_SystemError()
            failure.code = code
            failure.message = reply.body["error"]?.stringValue ?? "the app could not be synced"
            try? await socket.send(ConnectMessages.message(.syncFailed, failure))
            await refuse(1008, code, detail: failure.message)
            return nil
        }
        return functions.arrayValue?.compactMap { $0["id"]?.stringValue } ?? []
    }

    // MARK: Messages

    /// Handles one message; returns a reason when the connection must end.
    func handle(_ frame: ConnectFrame) async -> String? {
        guard case .binary(let bytes) = frame, let message = try? Connect_V1_ConnectMessage(serializedBytes: bytes) else {
            await refuse(1007, "failed to unmarshal Protobuf", detail: "a message is not a protobuf ConnectMessage")
            return "invalid message"
        }
        do {
            switch message.kind {
            case .workerHeartbeat:
                // The registry learns of it with the hub's next sweep, with the other heartbeats.
                let now = hub.clock.now
                fields.withLock {
                    $0.worker?.lastHeartbeat = now
                    $0.refreshDue = true
                }
                try await socket.send(ConnectMessages.message(.gatewayHeartbeat))
            case .workerReady:
                if hub.isDraining {
                    await refuse(1001, "connect_gateway_closing", detail: "ready while the gateway drains")
                    return "gateway draining"
                }
                try await update { if $0.status == .connected { $0.status = .ready } }
            case .workerPause:
                try await update { $0.status = .draining }
            case .workerRequestAck:
                let ack = try Connect_V1_WorkerRequestAckData(serializedBytes: message.payload)
                // Off this connection's path: the reply, which often follows at once, need not
                // wait for it (an executor takes a reply that comes before its ack).
                Task { [hub] in
                    do { try await hub.notify(ConnectInboxNotice(requestID: ack.requestID, notice: .ack)) } catch {
                        hub.logger.warning("announcing a connect ack failed", metadata: ["request": "\(ack.requestID)", "error": "\(error)"])
                    }
                }
            case .workerRequestExtendLease:
                let extend = try Connect_V1_WorkerRequestExtendLeaseData(serializedBytes: message.payload)
                guard let current = ULID(extend.leaseID) else {
                    await refuse(1008, "connect_worker_request_extend_lease_invalid_payload", detail: "lease_id: must be a ULID")
                    return "invalid lease extension"
                }
                let now = hub.clock.now
                let expiry = now.addingTimeInterval(hub.settings.leaseDuration.timeInterval)
                let next = hub.ids.next(at: expiry)
                var ack = Connect_V1_WorkerRequestExtendLeaseAckData()
                ack.requestID = extend.requestID
                ack.accountID = extend.accountID
                ack.envID = extend.envID
                ack.appID = extend.appID
                ack.functionSlug = extend.functionSlug
                if let granted = try await hub.state.extend(requestID: extend.requestID, current: current, next: next, now: now) {
                    ack.newLeaseID = granted.description
                }
                try await socket.send(ConnectMessages.message(.workerRequestExtendLeaseAck, ack))
            case .workerReply:
                let reply = try Connect_V1_SDKResponse(serializedBytes: message.payload)
                try await hub.notify(ConnectInboxNotice(requestID: reply.requestID, notice: .reply, reply: Array(message.payload)))
                var ack = Connect_V1_WorkerReplyAckData()
                ack.requestID = reply.requestID
                try await socket.send(ConnectMessages.message(.workerReplyAck, ack))
            default:
                // Status reports, and kinds newer than this gateway, are not acted on.
                break
            }
        } catch let error as SwiftProtobuf.BinaryDecodingError {
            await refuse(1007, "failed to unmarshal Protobuf", detail: "\(message.kind) payload: \(error)")
            return "invalid message"
        } catch {
            logger.warning("handling a connect message failed", metadata: ["kind": "\(message.kind)", "error": "\(error)"])
            await refuse(1011, "connect_internal_error", detail: "\(error)")
            return "internal error: \(error)"
        }
        return nil
    }

    /// Changes the worker's record and writes it to the registry.
    func update(_ change: @Sendable (inout ConnectWorker) -> Void) async throws {
        guard let worker = fields.withLock({ fields -> ConnectWorker? in
            guard var worker = fields.worker else { return nil }
            change(&worker)
            if fields.closing { worker.status = .draining }
            fields.worker = worker
            return worker
        }) else { return }
        try await hub.state.upsert(workers: [worker], ttl: hub.settings.workerRecordLifetime)
    }

    /// The worker's record, if a heartbeat came since it was last written (and clears that).
    func takeRefresh() -> ConnectWorker? {
        fields.withLock { fields in
            guard fields.refreshDue, let worker = fields.worker else { return nil }
            fields.refreshDue = false
            return worker
        }
    }

    /// Closes the connection if its heartbeats stopped; whether it did.
    func closeIfSilent(at now: Date) async -> Bool {
        guard let worker, now.timeIntervalSince(worker.lastHeartbeat) > hub.settings.heartbeatTimeout.timeInterval else { return false }
        await refuse(1008, "connect_worker_heartbeats_missed", detail: "no heartbeat for \(hub.settings.heartbeatTimeout)")
        return true
    }

    /// The gateway drains: no new requests, and the worker is told to reconnect elsewhere.
    func beginClosing() async {
        fields.withLock { $0.closing = true }
        try? await update { $0.status = .draining }
        try? await socket.send(ConnectMessages.message(.gatewayClosing))
    }

    /// The connection ended: out of the registry, with its reason recorded.
    func ended(reason: String) async {
        guard let worker else { return }
        hub.unregister(id: worker.connectionID)
        do {
            try await hub.state.remove(worker: worker, reason: reason, at: hub.clock.now)
        } catch {
            logger.warning("removing a connect worker's record failed", metadata: ["connection": "\(worker.connectionID)", "error": "\(error)"])
        }
        logger.info("connect worker disconnected", metadata: ["connection": "\(worker.connectionID)", "reason": "\(reason)"])
    }
}
