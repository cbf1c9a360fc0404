public import CairnCore
public import CairnEngine
public import Foundation
public import Logging
public import ServiceLifecycle
import Synchronization
import SwiftProtobuf

/// The executor's side of connect (docs/connect.md): sends a call whose step URL is `ws://` or
/// `wss://` to a connected worker through the gateway holding its connection, and waits for
/// the reply.
///
/// One call:
/// 1. route: a live, ready connection serving the function, on a live gateway, whose
///    instance has a free slot — taking the slot, writing the request's lease and putting the
///    request in the gateway's inbox in one step (a gateway in this process is handed the
///    request directly; to its worker without a limit, before the lease is written, which
///    takes a Redis round trip off the call). With none, it waits up to `routeWait`, then
///    fails as not delivered: the run tries the same attempt again after its backoff, spending
///    none of its retries;
/// 2. wait for the worker's ack; an undeliverable
///    request or a missing ack routes again (three forwards in all, then not delivered);
/// 3. wait for the reply, announced in this executor's inbox — with the reply itself, unless
///    it is large — and buffered in the state. The worker keeps the lease alive while it runs;
///    a lease that lapses fails the attempt.
///
/// Run it as a service too: `run()` reads the executor's inbox.
public final class ConnectTransport: SDKTransport, Service {
    let state: any ConnectState
    let clock: any WallClock
    let settings: ConnectSettings
    let logger: Logger
    /// This process's inbox name.
    public let executorID: String
    let waiters = Mutex<[String: AsyncStream<Event>.Continuation]>([:])
    let connectionCache = Mutex<[String: (read: ContinuousClock.Instant, workers: [ConnectWorker])]>([:])
    let ids = ULIDSource()
    /// How often waiting calls look at their deadlines, leases and the reply buffer.
    let tick: Duration
    /// Gateways in this process, reached without Redis.
    let exchange: ConnectLocalExchange?
    /// The lease writes still under way of calls to local workers without a limit, by request.
    let leaseWrites = Mutex<[String: Task<Bool, any Error>]>([:])

    enum Event: Sendable {
        case notice(ConnectInboxNotice)
        case tick
    }

    public init(
        state: any ConnectState, clock: any WallClock, settings: ConnectSettings, logger: Logger, tick: Duration = .seconds(1),
        exchange: ConnectLocalExchange? = nil
    ) {
        self.exchange = exchange
        self.state = state
        self.clock = clock
        self.settings = settings
        self.logger = logger
        self.tick = tick
        self.executorID = ULIDSource().next(at: Date()).description
    }

    // MARK: The inbox

    /// Reads notices and hands each to the call waiting for it; every `tick` (and after a
    /// failed read) wakes every call to check its deadlines.
    public func run() async throws {
        try? await cancelWhenGracefulShutdown { await self.readInbox() }
    }

    func readInbox() async {
        var cursor = ""
        while !Task.isCancelled {
            do {
                let (next, notices) = try await state.nextNotices(executorID: executorID, after: cursor, timeout: tick)
                cursor = next
                waiters.withLock { waiters in
                    for notice in notices { waiters[notice.requestID]?.yield(.notice(notice)) }
                    for waiter in waiters.values { waiter.yield(.tick) }
                }
            } catch is CancellationError {
                break
            } catch {
                logger.warning("reading the connect inbox failed; retrying", metadata: ["error": "\(error)"])
                waiters.withLock { waiters in for waiter in waiters.values { waiter.yield(.tick) } }
                try? await Task.sleep(for: tick)
            }
        }
    }

    /// Hands a notice from a gateway in this process to the call waiting for it.
    func receive(_ notice: ConnectInboxNotice) {
        waiters.withLock { $0[notice.requestID]?.yield(.notice(notice)) }
    }

    // MARK: A call

    public func send(_ request: SDKRequest) async throws -> SDKReply {
        guard let target = ConnectTarget(url: request.url) else {
            throw ConnectCallError("the step URL \(request.url) names no function (fnId)")
        }
        let requestID = ids.next(at: clock.now).description
        let (events, continuation) = AsyncStream<Event>.makeStream(bufferingPolicy: .unbounded)
        waiters.withLock { $0[requestID] = continuation }
        defer {
            exchange?.forget(requestID)
            _ = waiters.withLock { $0.removeValue(forKey: requestID) }
            continuation.finish()
        }
        var iterator = events.makeAsyncIterator()
        let deadline = clock.now.addingTimeInterval(request.timeout.timeInterval)
        var lease: ConnectLease?
        do {
            for forwarding in 0..<3 {
                let taken = try await route(request, target, requestID: requestID, fresh: forwarding > 0, events: &iterator)
                lease = taken
                switch try await awaitAck(requestID, events: &iterator) {
                case .acknowledged:
                    let reply = try await awaitReply(requestID, lease: taken, deadline: deadline, events: &iterator)
                    release(taken)
                    return reply
                case .replied(let inline):
                    if let reply = try await reply(inline, requestID) {
                        release(taken)
                        return reply
                    }
                case .routeAgain:
                    break
                }
                await free(taken)
                lease = nil
            }
            throw SDKCallNotDelivered("no connected worker accepted the request for \(target.function) after 3 tries")
        } catch {
            if let lease { await free(lease) }
            throw error
        }
    }

    /// Frees the slot of a call that has its reply and drops the buffered copy, off the call's
    /// path (a slot not freed is freed when its lease lapses, a buffer when its TTL does).
    func release(_ lease: ConnectLease) {
        Task { await self.free(lease) }
    }

    /// Frees the call's slot once its lease is written (see `route`).
    func free(_ lease: ConnectLease) async {
        if let written = leaseWrites.withLock({ $0.removeValue(forKey: lease.requestID) }) { _ = try? await written.value }
        try? await state.release(requestID: lease.requestID, instanceID: lease.instanceID)
    }

    /// The connections serving `function` on live gateways, read again when `fresh` or when
    /// the last read is over 250 ms old. A connection that has gone since is found out by its
    /// gateway, and the request routed again with a fresh read; capacity is always checked
    /// anew, by `assign`.
    func connections(serving function: String, at now: Date, fresh: Bool) async throws -> [ConnectWorker] {
        let moment = ContinuousClock.now
        if !fresh, let cached = connectionCache.withLock({ $0[function] }), moment - cached.read < .milliseconds(250) {
            return cached.workers
        }
        let workers = try await state.liveWorkers(function: function, at: now, settings: settings)
        connectionCache.withLock { $0[function] = (moment, workers) }
        return workers
    }

    /// Takes a slot on a live, ready connection serving the function and forwards the request
    /// to its gateway, waiting for such a connection up to `routeWait`.
    func route(_ request: SDKRequest, _ target: ConnectTarget, requestID: String, fresh: Bool, events: inout AsyncStream<Event>.Iterator)
        async throws -> ConnectLease
    {
        let giveUp = clock.now.addingTimeInterval(settings.routeWait.timeInterval)
        var fresh = fresh
        while true {
            let now = clock.now
            let candidates = try await connections(serving: target.function, at: now, fresh: fresh).filter {
                $0.status == .ready && now.timeIntervalSince($0.lastHeartbeat) < settings.heartbeatTimeout.timeInterval
            }
            fresh = true
            for worker in candidates.shuffled() {
                let expiry = now.addingTimeInterval(settings.leaseDuration.timeInterval)
                let lease = ConnectLease(
                    requestID: requestID, leaseID: ids.next(at: expiry), executorID: executorID,
                    instanceID: worker.instanceID)
                let forward = ConnectForward(
                    gatewayID: worker.gatewayID, connectionID: worker.connectionID, request: try message(request, target: target, worker: worker, lease: lease))
                // A gateway in this process takes the request directly; another, through its inbox.
                guard let local = exchange?.gateway(worker.gatewayID) else {
                    if try await state.assign(lease, limit: worker.maxConcurrency, now: now, forward: forward) { return lease }
                    continue
                }
                // A worker without a concurrency limit has no slot to check: the request goes to it
                // at once and its lease is written beside the call, not before it. Nothing reads
                // the lease in the call's first seconds (the worker's first lease extension, this
                // call's lapse check), and the slot is freed only once it is written (`free`).
                if worker.maxConcurrency == nil {
                    let written = Task { [state] in try await state.assign(lease, limit: nil, now: now, forward: nil) }
                    leaseWrites.withLock { $0[requestID] = written }
                    exchange?.expect(requestID, by: self)
                    await local.deliver(forward.request, to: forward.connectionID)
                    return lease
                }
                if try await state.assign(lease, limit: worker.maxConcurrency, now: now, forward: nil) {
                    exchange?.expect(requestID, by: self)
                    await local.deliver(forward.request, to: forward.connectionID)
                    return lease
                }
            }
            if clock.now >= giveUp {
                let why = candidates.isEmpty ? "no connected worker serves it" : "every connected worker serving it is at its maximum concurrency"
                throw SDKCallNotDelivered(
                    "function \(target.function): \(why) (waited \(settings.routeWait.components.seconds) s; the same attempt goes again after its backoff)")
            }
            _ = await iterator(&events)
        }
    }

    /// The request as the gateway hands it to the worker.
    func message(_ request: SDKRequest, target: ConnectTarget, worker: ConnectWorker, lease: ConnectLease) throws -> [UInt8] {
        var data = Connect_V1_GatewayExecutorRequestData()
        data.requestID = lease.requestID
        data.appName = worker.functions[target.function] ?? worker.apps.first ?? ""
        data.functionSlug = target.function
        data.stepID = target.step
        data.requestPayload = Data(request.body)
        // The call's span, so the worker's own spans join the run's trace (docs/operations.md).
        let traceparent = request.headers.first { $0.0 == "traceparent" }?.1
        data.systemTraceCtx = Data(JSONValue.object(traceparent.map { ["traceparent": .string($0)] } ?? [:]).serialized())
        data.userTraceCtx = Data([UInt8]("{}".utf8))
        data.runID = request.headers.first { $0.0 == "x-run-id" }?.1 ?? ""
        data.leaseID = lease.leaseID.description
        data.jobID = lease.requestID
        return try data.serializedBytes()
    }

    enum AckOutcome {
        case acknowledged, routeAgain
        /// The reply came first; with its bytes when the notice carried them.
        case replied([UInt8]?)
    }

    func awaitAck(_ requestID: String, events: inout AsyncStream<Event>.Iterator) async throws -> AckOutcome {
        let giveUp = clock.now.addingTimeInterval(settings.ackTimeout.timeInterval)
        while true {
            switch await iterator(&events) {
            case .notice(let notice):
                switch notice.notice {
                case .ack: return .acknowledged
                case .reply: return .replied(notice.reply)
                case .undeliverable: return .routeAgain
                }
            case .tick:
                if clock.now >= giveUp {
                    logger.notice("connect worker did not acknowledge a request; routing it again", metadata: ["request": "\(requestID)"])
                    return .routeAgain
                }
            }
        }
    }

    func awaitReply(_ requestID: String, lease: ConnectLease, deadline: Date, events: inout AsyncStream<Event>.Iterator) async throws -> SDKReply {
        var lastCheck = clock.now
        while true {
            let event = await iterator(&events)
            if case .notice(let notice) = event, notice.notice == .reply, let reply = try await reply(notice.reply, requestID) { return reply }
            let now = clock.now
            guard now.timeIntervalSince(lastCheck) >= 2 else { continue }
            lastCheck = now
            // A notice can be lost with a gateway; the buffer and the lease say where things are.
            if let reply = try await takeReply(requestID) { return reply }
            if let written = leaseWrites.withLock({ $0[requestID] }) { _ = try? await written.value }
            guard let current = try await state.lease(requestID: requestID), current.expiresAt >= now else {
                throw ConnectCallError("the connect worker stopped responding: the request's lease lapsed")
            }
            if now >= deadline {
                throw ConnectCallError("the connect worker did not reply by the request's deadline, \(deadline.formatted(.iso8601))")
            }
        }
    }

    /// The reply a notice carried, or else the buffered one.
    func reply(_ inline: [UInt8]?, _ requestID: String) async throws -> SDKReply? {
        if let inline { return try ConnectReplies.sdkReply(Connect_V1_SDKResponse(serializedBytes: inline)) }
        return try await takeReply(requestID)
    }

    func takeReply(_ requestID: String) async throws -> SDKReply? {
        guard let bytes = try await state.takeReply(requestID: requestID) else { return nil }
        return try ConnectReplies.sdkReply(Connect_V1_SDKResponse(serializedBytes: bytes))
    }

    /// The next event; a finished stream (never, while the call holds it) reads as a tick.
    func iterator(_ events: inout AsyncStream<Event>.Iterator) async -> Event {
        await events.next() ?? .tick
    }
}

/// The function and step a connect step URL names: `wss://connect?fnId=<slug>&stepId=<step>`.
struct ConnectTarget {
    var function: String
    var step: String

    init?(url: String) {
        guard let components = URLComponents(string: url),
            let function = components.queryItems?.first(where: { $0.name == "fnId" })?.value, !function.isEmpty
        else { return nil }
        self.function = function
        self.step = components.queryItems?.first(where: { $0.name == "stepId" })?.value ?? "step"
    }
}

/// A connect call that could not complete; the executor counts it as a failed attempt.
public struct ConnectCallError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}

/// The worker's `SDKResponse` as the HTTP reply it stands for (docs/connect.md).
enum ConnectReplies {
    static func sdkReply(_ response: Connect_V1_SDKResponse) -> SDKReply {
        let status: Int
        switch response.status {
        case .done: status = 200
        case .notCompleted: status = 206
        default: status = 500
        }
        var headers = ["x-inngest-sdk": response.sdkVersion, "x-inngest-no-retry": response.noRetry ? "true" : "false"]
        if response.requestVersion > 0 { headers["x-inngest-req-version"] = "\(response.requestVersion)" }
        if response.hasRetryAfter { headers["retry-after"] = response.retryAfter }
        var reply = SDKReply(status: status, headers: headers, body: Array(response.body))
        // The worker proved who it is with its session token; connect replies carry no signature.
        reply.authenticatedByChannel = true
        return reply
    }
}

/// Sends each call by its URL's scheme: `ws(s)://` through connect, anything else over HTTP.
public struct SchemeRoutingTransport: SDKTransport {
    let http: any SDKTransport
    let connect: ConnectTransport

    public init(http: any SDKTransport, connect: ConnectTransport) {
        self.http = http
        self.connect = connect
    }

    public func send(_ request: SDKRequest) async throws -> SDKReply {
        if request.url.hasPrefix("ws://") || request.url.hasPrefix("wss://") { return try await connect.send(request) }
        return try await http.send(request)
    }
}
