import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// A small HTTP/1.1 client for plain `http://` origins, with kept-alive connections per origin.
///
/// The executor calls an app once per step, one request at a time per run, so the cost of a call
/// is the step-to-step overhead. This client does the least work a call needs: one channel per
/// request in flight, the response collected into one buffer up to a bound, and the connection
/// handed back for the next call. TLS, proxies, redirects and credentials in URLs are out of its
/// scope; `HTTPSDKTransport` sends those requests through async-http-client.
final class PlainHTTPClient: Sendable {
    /// Where a URL points and what to put in the request line and `Host` header.
    struct Target: Hashable, Sendable {
        var host: String
        var port: Int
        var authority: String
        var path: String

        /// `http://host[:port][/path]`, or nil for anything this client does not serve.
        init?(url: String) {
            guard url.hasPrefix("http://") else { return nil }
            let rest = url.dropFirst("http://".count)
            let slash = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? rest.endIndex
            let authority = rest[..<slash]
            guard !authority.isEmpty, !authority.contains("@") else { return nil }
            var host = Substring(authority)
            var port = 80
            if authority.hasPrefix("[") {
                guard let close = authority.firstIndex(of: "]") else { return nil }
                host = authority[authority.index(after: authority.startIndex)..<close]
                let after = authority[authority.index(after: close)...]
                if !after.isEmpty {
                    guard after.hasPrefix(":"), let parsed = Int(after.dropFirst()) else { return nil }
                    port = parsed
                }
            } else if let colon = authority.lastIndex(of: ":") {
                host = authority[..<colon]
                guard let parsed = Int(authority[authority.index(after: colon)...]) else { return nil }
                port = parsed
            }
            guard !host.isEmpty, (1...65535).contains(port) else { return nil }
            let path = rest[slash...]
            self.host = String(host)
            self.port = port
            self.authority = String(authority)
            self.path = path.isEmpty ? "/" : (path.hasPrefix("?") ? "/" + path : String(path))
        }

        var origin: Origin { Origin(host: host, port: port) }
    }

    struct Origin: Hashable, Sendable {
        var host: String
        var port: Int
    }

    struct Response: Sendable {
        var status: Int
        var headers: HTTPHeaders
        var body: ByteBuffer
        /// Whether the connection may carry another request (HTTP/1.1 without `connection:
        /// close`, or HTTP/1.0 with `connection: keep-alive`).
        var keepAlive: Bool
    }

    /// Why a request got no response.
    struct Failure: Error, CustomStringConvertible {
        enum Reason: Equatable {
            case timedOut
            /// The connection closed before the response was complete.
            case closed(beforeResponse: Bool)
            case bodyTooLarge(limit: Int)
        }
        var reason: Reason

        var description: String {
            switch reason {
            case .timedOut: "the app did not answer before the request's timeout"
            case .closed(true): "the app closed the connection before answering"
            case .closed(false): "the app closed the connection in the middle of its response"
            case .bodyTooLarge(let limit): "the app's response body is larger than the limit of \(limit) bytes"
            }
        }
    }

    static let shared = PlainHTTPClient(group: MultiThreadedEventLoopGroup.singleton)

    let group: any EventLoopGroup
    let maxBodyBytes: Int
    let maxIdlePerOrigin: Int
    private let idle = Mutex<[Origin: [any Channel]]>([:])

    init(group: any EventLoopGroup, maxBodyBytes: Int = 8 * 1024 * 1024, maxIdlePerOrigin: Int = 256) {
        self.group = group
        self.maxBodyBytes = maxBodyBytes
        self.maxIdlePerOrigin = maxIdlePerOrigin
    }

    /// Sends one request and collects its response. A kept-alive connection that turns out to be
    /// closed before any of the response arrived (the app closed it while idle) is retried once on
    /// a new connection; every other failure is thrown.
    func execute(
        method: HTTPMethod, target: Target, headers: HTTPHeaders, body: ByteBuffer, timeout: TimeAmount
    ) async throws -> Response {
        let deadline = NIODeadline.now() + timeout
        var head = HTTPRequestHead(version: .http1_1, method: method, uri: target.path, headers: headers)
        if !head.headers.contains(name: "host") { head.headers.add(name: "host", value: target.authority) }
        head.headers.replaceOrAdd(name: "content-length", value: String(body.readableBytes))
        var retried = false
        while true {
            let (channel, reused) = try await connection(to: target.origin, deadline: deadline)
            let promise = channel.eventLoop.makePromise(of: Response.self)
            let exchange = Exchange(head: head, body: body, deadline: deadline, response: promise)
            channel.writeAndFlush(exchange).whenFailure { promise.fail($0) }
            do {
                let response = try await promise.futureResult.get()
                release(channel, to: target.origin, keepAlive: response.keepAlive)
                return response
            } catch where reused && !retried && Self.isStale(error) {
                retried = true
                channel.close(promise: nil)
            } catch {
                channel.close(promise: nil)
                throw error
            }
        }
    }

    /// Whether `error` says a kept-alive connection was already gone when the request went out.
    private static func isStale(_ error: any Error) -> Bool {
        if let failure = error as? Failure { return failure.reason == .closed(beforeResponse: true) }
        if let error = error as? ChannelError { return error == .ioOnClosedChannel || error == .outputClosed }
        return false
    }

    private func connection(to origin: Origin, deadline: NIODeadline) async throws -> (any Channel, reused: Bool) {
        while let channel = idle.withLock({ $0[origin]?.popLast() }) {
            if channel.isActive { return (channel, true) }
        }
        let limit = maxBodyBytes
        let channel = try await ClientBootstrap(group: group)
            .connectTimeout(max(.milliseconds(1), deadline - .now()))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(ExchangeHandler(maxBodyBytes: limit))
                }
            }
            .connect(host: origin.host, port: origin.port)
            .get()
        return (channel, false)
    }

    private func release(_ channel: any Channel, to origin: Origin, keepAlive: Bool) {
        let kept = keepAlive && channel.isActive && idle.withLock { idle in
            guard idle[origin, default: []].count < maxIdlePerOrigin else { return false }
            idle[origin, default: []].append(channel)
            return true
        }
        if !kept { channel.close(promise: nil) }
    }
}

/// One request handed to the channel, and where its response goes.
private struct Exchange: Sendable {
    var head: HTTPRequestHead
    var body: ByteBuffer
    var deadline: NIODeadline
    var response: EventLoopPromise<PlainHTTPClient.Response>
}

/// Writes one request at a time and collects its response, bounded in size and time.
private final class ExchangeHandler: ChannelDuplexHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = Exchange
    typealias OutboundOut = HTTPClientRequestPart

    let maxBodyBytes: Int
    private var pending: EventLoopPromise<PlainHTTPClient.Response>?
    private var head: HTTPResponseHead?
    private var body = ByteBuffer()
    private var timeout: Scheduled<Void>?

    init(maxBodyBytes: Int) {
        self.maxBodyBytes = maxBodyBytes
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let exchange = unwrapOutboundIn(data)
        precondition(pending == nil, "one request at a time per connection")
        pending = exchange.response
        head = nil
        body.clear()
        let loop = context.eventLoop.assumeIsolated()
        timeout = loop.scheduleTask(deadline: exchange.deadline) { [self] in
            finish(context: context, with: .failure(PlainHTTPClient.Failure(reason: .timedOut)))
        }
        context.write(wrapOutboundOut(.head(exchange.head)), promise: nil)
        if exchange.body.readableBytes > 0 {
            context.write(wrapOutboundOut(.body(.byteBuffer(exchange.body))), promise: nil)
        }
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: promise)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard pending != nil else { return }
        switch unwrapInboundIn(data) {
        case .head(let received):
            // Informational responses (100 Continue and the like) precede the real one.
            if received.status.code >= 200 { head = received }
        case .body(var chunk):
            guard body.readableBytes + chunk.readableBytes <= maxBodyBytes else {
                finish(context: context, with: .failure(PlainHTTPClient.Failure(reason: .bodyTooLarge(limit: maxBodyBytes))))
                return
            }
            body.writeBuffer(&chunk)
        case .end:
            guard let head else { return }
            let response = PlainHTTPClient.Response(status: Int(head.status.code), headers: head.headers, body: body, keepAlive: head.isKeepAlive)
            finish(context: context, with: .success(response))
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        let before = head == nil && body.readableBytes == 0
        finish(context: context, with: .failure(PlainHTTPClient.Failure(reason: .closed(beforeResponse: before))), close: false)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A reset before any of the response is the same as a close: the app dropped the connection.
        if error is IOError, head == nil, body.readableBytes == 0 {
            finish(context: context, with: .failure(PlainHTTPClient.Failure(reason: .closed(beforeResponse: true))))
        } else {
            finish(context: context, with: .failure(error))
        }
    }

    /// Completes the request in flight, if any; a failure also closes the connection, which can
    /// no longer be trusted to be at a response boundary.
    private func finish(
        context: ChannelHandlerContext, with result: Result<PlainHTTPClient.Response, any Error>, close: Bool = true
    ) {
        timeout?.cancel()
        timeout = nil
        guard let promise = pending else { return }
        pending = nil
        head = nil
        if case .failure = result, close { context.close(promise: nil) }
        promise.completeWith(result)
        body = ByteBuffer()
    }
}
