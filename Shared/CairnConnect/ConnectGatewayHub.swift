public import CairnCore
public import CairnEngine
public import Foundation
public import Logging
public import Metrics
public import ServiceLifecycle
import Synchronization
import SwiftProtobuf

/// One WebSocket message from a worker.
public enum ConnectFrame: Sendable {
    case binary([UInt8])
    /// Workers send only binary frames; a text frame is a protocol error.
    case text
}

/// The gateway's way to talk back to one worker, whatever the WebSocket library.
public protocol ConnectSocket: Sendable {
    func send(_ message: [UInt8]) async throws
    /// Closes with a WebSocket status code and a short reason (a syscode, docs/connect.md).
    func close(code: UInt16, reason: String) async
}

/// The connect gateway of one process (docs/connect.md): serves workers' WebSocket sessions,
/// keeps its own and their records in the registry, and hands each request an executor puts in
/// its inbox to the connection it names.
///
/// Run it as a service started after the listener that serves the WebSocket: on graceful
/// shutdown it drains — tells every worker `GATEWAY_CLOSING`, waits up to `drainTimeout` for
/// them to reconnect elsewhere, and only then lets the listener close what is left.
public final class ConnectGatewayHub: Service {
    public let gatewayID: String
    let state: any ConnectState
    let sync: AppSync
    let secret: ConnectSessionSecret
    let clock: any WallClock
    let settings: ConnectSettings
    let logger: Logger
    let url: String?
    let port = Atomic<Int>(0)
    let sessions = Mutex<[String: ConnectSession]>([:])
    let draining = Atomic<Bool>(false)
    let ids = ULIDSource()
    let connectionsGauge: Gauge
    let slotsGauge: Gauge
    /// Executors in this process, reached without Redis.
    let exchange: ConnectLocalExchange?
    /// Spans of the calls handed to workers.
    let tracing: RunTracing

    public init(
        state: any ConnectState, sync: AppSync, keys: SigningKeys?, clock: any WallClock, settings: ConnectSettings, url: String?,
        metrics: any MetricsFactory, logger: Logger, exchange: ConnectLocalExchange? = nil, tracing: RunTracing = RunTracing()
    ) {
        self.tracing = tracing
        self.gatewayID = ULIDSource().next(at: Date()).description
        self.exchange = exchange
        self.state = state
        self.sync = sync
        self.secret = ConnectSessionSecret(keys: keys)
        self.clock = clock
        self.settings = settings
        self.url = url
        self.logger = logger
        connectionsGauge = Gauge(label: "cairn_connect_connections", factory: metrics)
        slotsGauge = Gauge(label: "cairn_connect_worker_slots", factory: metrics)
        exchange?.register(self)
    }

    /// Records the port the WebSocket listener bound, for APIs that build the URL from it.
    public func listening(on port: Int) {
        self.port.store(port, ordering: .relaxed)
    }

    public var isDraining: Bool { draining.load(ordering: .relaxed) }

    // MARK: Service

    public func run() async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await self.heartbeatLoop() }
            group.addTask { try await self.inboxLoop() }
            try? await gracefulShutdown()
            await drain()
            group.cancelAll()
        }
        try? await state.removeGateway(id: gatewayID)
    }

    func record() -> ConnectGateway {
        ConnectGateway(id: gatewayID, status: isDraining ? .draining : .active, lastHeartbeat: clock.now, url: url, port: port.load(ordering: .relaxed))
    }

    func heartbeatLoop() async throws {
        // Advertised only once workers can be told where to dial.
        while url == nil && port.load(ordering: .relaxed) == 0 { try await Task.sleep(for: .milliseconds(20)) }
        while !Task.isCancelled {
            do {
                try await state.heartbeat(gateway: record(), ttl: settings.gatewayHeartbeatInterval * 3)
            } catch {
                logger.warning("recording the gateway's heartbeat failed", metadata: ["error": "\(error)"])
            }
            let live = sessions.withLock { Array($0.values) }
            await sweep(live)
            connectionsGauge.record(live.count)
            slotsGauge.record(live.compactMap { $0.worker?.maxConcurrency }.reduce(0, +))
            try await Task.sleep(for: settings.gatewayHeartbeatInterval)
        }
    }

    /// Closes connections whose heartbeats stopped, and writes the registry records of those
    /// that heartbeated since the last sweep in one round trip (one timer for every
    /// connection: per-connection timers and writes cost more than the heartbeats themselves).
    func sweep(_ live: [ConnectSession]) async {
        let now = clock.now
        var refreshed: [ConnectWorker] = []
        for session in live {
            if await session.closeIfSilent(at: now) { continue }
            if let worker = session.takeRefresh() { refreshed.append(worker) }
        }
        do {
            try await state.upsert(workers: refreshed, ttl: settings.workerRecordLifetime)
        } catch {
            // The records outlive two missed sweeps; the next heartbeats write them again.
            logger.warning("refreshing connect workers in the registry failed", metadata: ["error": "\(error)", "workers": "\(refreshed.count)"])
        }
    }

    /// Hands requests from executors to their connections; one that cannot be handed over is
    /// announced undeliverable so its executor routes it again at once.
    func inboxLoop() async throws {
        var cursor = ""
        while !Task.isCancelled {
            do {
                let (next, requests) = try await state.nextForwards(gatewayID: gatewayID, after: cursor, timeout: .seconds(1))
                cursor = next
                for (connectionID, bytes) in requests { await deliver(bytes, to: connectionID) }
            } catch is CancellationError {
                return
            } catch {
                logger.warning("reading the gateway's inbox failed; retrying", metadata: ["error": "\(error)"])
                try await Task.sleep(for: .seconds(1))
            }
        }
    }

    func deliver(_ bytes: [UInt8], to connectionID: String) async {
        let session = sessions.withLock { $0[connectionID] }
        if let session, session.isRoutable {
            do {
                let start = clock.now
                try await session.socket.send(ConnectMessages.message(.gatewayExecutorRequest, payload: bytes))
                if tracing.isEnabled, let request = try? Connect_V1_GatewayExecutorRequestData(serializedBytes: bytes) {
                    let context = try? JSONValue(parsing: Array(request.systemTraceCtx))
                    tracing.gatewayForward(
                        runID: request.runID, traceparent: context?["traceparent"]?.stringValue, gatewayID: gatewayID, connectionID: connectionID,
                        function: request.functionSlug, start: start, end: clock.now)
                }
                return
            } catch {
                logger.notice("sending a request to a connect worker failed", metadata: ["connection": "\(connectionID)", "error": "\(error)"])
            }
        }
        guard let request = try? Connect_V1_GatewayExecutorRequestData(serializedBytes: bytes) else { return }
        do {
            try await notify(ConnectInboxNotice(requestID: request.requestID, notice: .undeliverable))
        } catch {
            logger.warning("announcing an undeliverable request failed", metadata: ["request": "\(request.requestID)", "error": "\(error)"])
        }
    }

    /// Tells the executor waiting for a request: directly when it is in this process, else
    /// through its inbox.
    func notify(_ notice: ConnectInboxNotice) async throws {
        if exchange?.deliver(notice) == true { return }
        if notice.notice == .reply, let reply = notice.reply {
            try await state.accept(reply: reply, requestID: notice.requestID, settings: settings)
        } else {
            try await state.announce(requestID: notice.requestID, notice.notice)
        }
    }

    /// Drain: no new connections; every worker told to reconnect elsewhere; wait for them.
    func drain() async {
        draining.store(true, ordering: .relaxed)
        try? await state.heartbeat(gateway: record(), ttl: settings.gatewayHeartbeatInterval * 3)
        let live = sessions.withLock { Array($0.values) }
        logger.info("draining connect workers", metadata: ["connections": "\(live.count)"])
        for session in live { await session.beginClosing() }
        let giveUp = ContinuousClock.now + settings.drainTimeout
        while ContinuousClock.now < giveUp, !sessions.withLock({ $0.isEmpty }) {
            try? await Task.sleep(for: .milliseconds(100))
        }
        for session in sessions.withLock({ Array($0.values) }) {
            await session.socket.close(code: 1001, reason: "connect_gateway_closing")
        }
    }

    // MARK: One connection

    /// Serves one worker's WebSocket from the gateway's hello to the close.
    public func serve<Inbound: AsyncSequence>(_ inbound: Inbound, socket: any ConnectSocket) async throws where Inbound.Element == ConnectFrame {
        if isDraining {
            await socket.close(code: 1001, reason: "connect_gateway_closing")
            return
        }
        let session = ConnectSession(socket: socket, hub: self)
        try await socket.send(ConnectMessages.message(.gatewayHello))
        var iterator = inbound.makeAsyncIterator()
        let helloTimeout = Task {
            try await Task.sleep(for: .seconds(5))
            if session.worker == nil { await socket.close(code: 1008, reason: "connect_worker_hello_timeout") }
        }
        defer { helloTimeout.cancel() }
        var reason = "the worker closed the connection"
        do {
            guard let first = try await iterator.next() else { return }
            helloTimeout.cancel()
            guard try await session.handshake(first) else { return }
        } catch {
            await socket.close(code: 1011, reason: "connect_internal_error")
            throw error
        }
        do {
            while let frame = try await iterator.next() {
                if let closing = await session.handle(frame) {
                    reason = closing
                    break
                }
            }
        } catch {
            reason = "\(error)"
            await session.ended(reason: session.closeReason ?? reason)
            throw error
        }
        await session.ended(reason: session.closeReason ?? reason)
    }

    func register(_ session: ConnectSession, id: String) {
        sessions.withLock { $0[id] = session }
    }

    func unregister(id: String) {
        _ = sessions.withLock { $0.removeValue(forKey: id) }
    }
}

/// Building the gateway's messages.
enum ConnectMessages {
    static func message(_ kind: Connect_V1_GatewayMessageType, payload: [UInt8] = []) -> [UInt8] {
        var message = Connect_V1_ConnectMessage()
        message.kind = kind
        message.payload = Data(payload)
        return (try? message.serializedBytes()) ?? []
    }

    static func message(_ kind: Connect_V1_GatewayMessageType, _ payload: some SwiftProtobuf.Message) -> [UInt8] {
        message(kind, payload: (try? payload.serializedBytes()) ?? [])
    }
}

extension ConnectState {
    /// The gateways that are taking work: active, and heartbeating within three intervals.
    public func liveGateways(at now: Date, settings: ConnectSettings) async throws -> [ConnectGateway] {
        try await gateways().filter {
            $0.status == .active && now.timeIntervalSince($0.lastHeartbeat) < (settings.gatewayHeartbeatInterval * 3).timeInterval
        }
    }

    /// The connections of `app` on live gateways.
    public func liveWorkers(app: String, at now: Date, settings: ConnectSettings) async throws -> [ConnectWorker] {
        try await onLiveGateways(at: now, settings: settings) { try await self.workers(app: app) }
    }

    /// The connections serving the function `slug` on live gateways.
    public func liveWorkers(function slug: String, at now: Date, settings: ConnectSettings) async throws -> [ConnectWorker] {
        try await onLiveGateways(at: now, settings: settings) { try await self.workers(function: slug) }
    }

    /// The connections `workers` finds, less those held by gateways that are not live (a dead
    /// gateway's connections linger in the registry until their records lapse). Both reads at
    /// once: this is on every connect call's path.
    func onLiveGateways(at now: Date, settings: ConnectSettings, _ workers: @Sendable () async throws -> [ConnectWorker]) async throws
        -> [ConnectWorker]
    {
        async let gateways = liveGateways(at: now, settings: settings)
        let found = try await workers()
        let live = Set(try await gateways.map(\.id))
        return found.filter { live.contains($0.gatewayID) }
    }

    /// Buffers a worker's reply (from its WebSocket or the HTTP flush, in either order, as often
    /// as it is sent) and, the first time, tells the executor waiting for it.
    func accept(reply bytes: [UInt8], requestID: String, settings: ConnectSettings) async throws {
        _ = try await deliver(reply: bytes, requestID: requestID, ttl: settings.replyLifetime)
    }
}
