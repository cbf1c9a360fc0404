import CairnEngine
import CairnHTTP
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization
import Testing

/// The transport step calls take, against a real loopback server that misbehaves on request:
/// connections are kept alive and reused, an app that drops an idle connection costs no failed
/// call, and a reply that is too large, too slow or cut off is an error, never a hang.
@Suite struct HTTPSDKTransportTests {
    let transport = HTTPSDKTransport()

    func request(_ server: ScriptedServer, _ path: String, body: String = "", timeout: Duration = .seconds(5)) -> SDKRequest {
        SDKRequest(
            method: "POST", url: "http://127.0.0.1:\(server.port)\(path)",
            headers: [("content-type", "application/json"), ("x-test", "yes")], body: Array(body.utf8), timeout: timeout)
    }

    @Test func sendsTheRequestAndReturnsStatusHeadersAndBody() async throws {
        try await ScriptedServer.with { server in
            let reply = try await transport.send(request(server, "/echo?fnId=a", body: #"{"x":1}"#))
            #expect(reply.status == 206)
            #expect(reply.headers["x-echo-uri"] == "/echo?fnId=a")
            #expect(reply.headers["x-echo-test"] == "yes")
            #expect(reply.headers["x-echo-host"] == "127.0.0.1:\(server.port)")
            #expect(String(decoding: reply.body, as: UTF8.self) == #"{"x":1}"#)
        }
    }

    @Test func reusesOneConnectionForSequentialCalls() async throws {
        try await ScriptedServer.with { server in
            for index in 0..<20 {
                let reply = try await transport.send(request(server, "/echo", body: "\(index)"))
                #expect(String(decoding: reply.body, as: UTF8.self) == "\(index)")
            }
            #expect(server.connections == 1)
        }
    }

    @Test func aConnectionTheAppClosesIsNotReused() async throws {
        try await ScriptedServer.with { server in
            for _ in 0..<3 {
                let reply = try await transport.send(request(server, "/close"))
                #expect(reply.status == 200)
            }
            #expect(server.connections == 3)
        }
    }

    @Test func anHTTP10ReplyWithoutKeepAliveEndsItsConnection() async throws {
        try await ScriptedServer.with { server in
            for _ in 0..<3 {
                let reply = try await transport.send(request(server, "/http10"))
                #expect(reply.status == 200)
            }
            #expect(server.connections == 3)
        }
    }

    @Test func aKeptAliveConnectionDroppedByTheAppIsRetriedOnANewOne() async throws {
        try await ScriptedServer.with { server in
            _ = try await transport.send(request(server, "/echo"))
            // The server drops the next request on the open connection without answering.
            let reply = try await transport.send(request(server, "/drop-once", body: "again"))
            #expect(reply.status == 206)
            #expect(String(decoding: reply.body, as: UTF8.self) == "again")
            #expect(server.connections == 2)
        }
    }

    @Test func aFreshConnectionClosedBeforeAnAnswerIsAnError() async throws {
        try await ScriptedServer.with { server in
            await #expect(throws: (any Error).self) {
                _ = try await transport.send(request(server, "/drop"))
            }
        }
    }

    @Test func aReplyCutOffInTheMiddleIsAnError() async throws {
        try await ScriptedServer.with { server in
            await #expect(throws: (any Error).self) {
                _ = try await transport.send(request(server, "/truncate"))
            }
        }
    }

    @Test func aSlowAppTimesOut() async throws {
        try await ScriptedServer.with { server in
            let started = ContinuousClock.now
            await #expect(throws: (any Error).self) {
                _ = try await transport.send(request(server, "/never", timeout: .milliseconds(200)))
            }
            #expect(ContinuousClock.now - started < .seconds(4))
            // The timed-out connection is closed, and the next call works on a new one.
            let reply = try await transport.send(request(server, "/echo", body: "after"))
            #expect(String(decoding: reply.body, as: UTF8.self) == "after")
        }
    }

    @Test func aReplyLargerThanEightMiBIsRefused() async throws {
        try await ScriptedServer.with { server in
            // 8 MiB through a debug build on a busy machine can take seconds: the timeout is not
            // what is tested here.
            let fits = try await transport.send(request(server, "/bytes/\(8 * 1024 * 1024)", timeout: .seconds(120)))
            #expect(fits.body.count == 8 * 1024 * 1024)
            await #expect(throws: (any Error).self) {
                _ = try await transport.send(request(server, "/bytes/\(8 * 1024 * 1024 + 1)", timeout: .seconds(120)))
            }
        }
    }

    @Test func nothingListeningIsAnError() async throws {
        let port = try await ScriptedServer.with { $0.port }
        await #expect(throws: (any Error).self) {
            _ = try await transport.send(SDKRequest(
                method: "GET", url: "http://127.0.0.1:\(port)/", headers: [], body: [], timeout: .seconds(2)))
        }
    }
}

/// A loopback HTTP/1.1 server whose answer depends on the path:
/// `/echo` 206 with the body and some request facts in headers; `/close` answers with
/// `connection: close`; `/http10` answers as HTTP/1.0 without keep-alive; `/drop` closes without answering; `/drop-once` does that the first time,
/// then echoes; `/truncate` promises more body than it sends; `/never` never answers;
/// `/bytes/N` answers N bytes.
final class ScriptedServer: Sendable {
    let port: Int
    private let accepted = Mutex(0)
    private let dropped = Mutex(false)

    var connections: Int { accepted.withLock { $0 } }

    private init(port: Int) {
        self.port = port
    }

    @discardableResult
    static func with<T>(_ body: (ScriptedServer) async throws -> T) async throws -> T {
        let box = Box()
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    box.server?.accepted.withLock { $0 += 1 }
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(Handler(box: box))
                }
            }
            .bind(host: "127.0.0.1", port: 0)
            .get()
        let server = ScriptedServer(port: channel.localAddress!.port!)
        box.server = server
        do {
            let result = try await body(server)
            try await channel.close()
            return result
        } catch {
            try? await channel.close()
            throw error
        }
    }

    final class Box: @unchecked Sendable {
        // Set once, before the first connection is accepted.
        var server: ScriptedServer?
    }

    private final class Handler: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart

        let box: Box
        var head: HTTPRequestHead?
        var body = ByteBuffer()

        init(box: Box) { self.box = box }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let received):
                head = received
                body.clear()
            case .body(var chunk):
                body.writeBuffer(&chunk)
            case .end:
                guard let head else { return }
                respond(context: context, to: head)
            }
        }

        func respond(context: ChannelHandlerContext, to head: HTTPRequestHead) {
            let path = head.uri.split(separator: "?").first.map(String.init) ?? head.uri
            switch path {
            case "/close":
                send(context, status: .ok, headers: ["connection": "close"], body: ByteBuffer(string: "bye"))
            case "/http10":
                send(context, version: .http1_0, status: .ok, headers: [:], body: ByteBuffer(string: "old"))
            case "/drop":
                context.close(promise: nil)
            case "/drop-once":
                if box.server!.dropped.withLock({ dropped in defer { dropped = true }; return !dropped }) {
                    context.close(promise: nil)
                } else {
                    echo(context, head)
                }
            case "/truncate":
                let responseHead = HTTPResponseHead(version: .http1_1, status: .ok, headers: ["content-length": "100"])
                context.write(wrapOutboundOut(.head(responseHead)), promise: nil)
                context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: "short")))), promise: nil)
                context.close(promise: nil)
            case "/never":
                break
            case _ where path.hasPrefix("/bytes/"):
                let count = Int(path.dropFirst("/bytes/".count)) ?? 0
                send(context, status: .ok, headers: [:], body: ByteBuffer(repeating: UInt8(ascii: "a"), count: count))
            default:
                echo(context, head)
            }
        }

        func echo(_ context: ChannelHandlerContext, _ head: HTTPRequestHead) {
            let headers: HTTPHeaders = [
                "x-echo-uri": head.uri,
                "x-echo-test": head.headers["x-test"].first ?? "",
                "x-echo-host": head.headers["host"].first ?? "",
            ]
            send(context, status: .partialContent, headers: headers, body: body)
        }

        func send(
            _ context: ChannelHandlerContext, version: HTTPVersion = .http1_1, status: HTTPResponseStatus, headers: HTTPHeaders,
            body: ByteBuffer
        ) {
            var headers = headers
            headers.add(name: "content-length", value: String(body.readableBytes))
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: version, status: status, headers: headers))), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        }
    }
}
