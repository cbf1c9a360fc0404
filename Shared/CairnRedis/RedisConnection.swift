public import Logging
public import NIOCore
import NIOPosix

/// One connection to Redis: a NIO channel with pipelining.
///
/// Contract:
/// - Commands are written in call order (per calling thread; concurrent callers interleave) and
///   replies are matched to them first in first out, so any number may be in flight at once.
/// - On open it authenticates (`AUTH`) and selects the database (`SELECT`) from the URL, and
///   names itself (`CLIENT SETNAME`) if configured; if any of these is refused, opening fails
///   with `.connectFailed` carrying Redis's text.
/// - When the channel closes (server gone, `CLIENT KILL`, `close()`), every command in flight
///   or sent afterwards fails with the retryable `.connectionClosed`. A connection never
///   reopens; `RedisClient` replaces dead ones.
/// - Thread-safe (`Sendable`): all mutable state lives in the channel's handlers on its event loop.
public final class RedisConnection: Sendable {
    /// The underlying channel.
    public let channel: any Channel
    private let logger: Logger
    /// How long a command waits for its reply before the connection is closed.
    let commandTimeout: TimeAmount

    private init(channel: any Channel, commandTimeout: Duration, logger: Logger) {
        self.channel = channel
        self.commandTimeout = TimeAmount(commandTimeout)
        self.logger = logger
    }

    /// Opens a connection on `eventLoop`, bounded by `configuration.connectTimeout` for the
    /// TCP/unix connect and again for the `AUTH`/`SELECT`/`CLIENT SETNAME` handshake.
    ///
    /// - Throws: `RedisError` with code `.connectFailed` (retryable).
    public static func connect(
        configuration: RedisConfiguration, eventLoop: any EventLoop, logger: Logger
    ) async throws(RedisError) -> RedisConnection {
        do {
            return try await makeConnection(configuration: configuration, eventLoop: eventLoop, logger: logger).get()
        } catch let error as RedisError {
            throw error
        } catch {
            throw RedisError(code: .connectFailed, message: "\(error)")
        }
    }

    /// Future-based `connect`, for callers on an event loop. The future fails with `RedisError`
    /// code `.connectFailed`.
    static func makeConnection(
        configuration: RedisConfiguration, eventLoop: any EventLoop, logger: Logger
    ) -> EventLoopFuture<RedisConnection> {
        let timeout = TimeAmount(configuration.connectTimeout)
        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(timeout)
            .channelOption(.socketOption(.so_keepalive), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandlers([
                        RESPReplyDecoder(), RedisCommandHandler(logger: logger),
                    ])
                }
            }
        let url = configuration.url
        let channelFuture: EventLoopFuture<any Channel>
        switch url.endpoint {
        case .tcp(let host, let port):
            channelFuture = bootstrap.channelOption(.socketOption(.tcp_nodelay), value: 1)
                .connect(host: host, port: port)
        case .unixSocket(let path):
            channelFuture = bootstrap.connect(unixDomainSocketPath: path)
        }
        return channelFuture.flatMapError { error in
            eventLoop.makeFailedFuture(
                RedisError(code: .connectFailed, message: "cannot connect to \(url): \(error)"))
        }.flatMap { channel in
            let connection = RedisConnection(channel: channel, commandTimeout: configuration.commandTimeout, logger: logger)
            var handshake: [[RedisArgument]] = []
            if let password = url.password {
                if let username = url.username {
                    handshake.append(["AUTH", .string(username), .string(password)])
                } else {
                    handshake.append(["AUTH", .string(password)])
                }
            }
            if url.database != 0 {
                handshake.append(["SELECT", .int(url.database)])
            }
            if let name = configuration.clientName {
                handshake.append(["CLIENT", "SETNAME", .string(name)])
            }
            guard !handshake.isEmpty else {
                return eventLoop.makeSucceededFuture(connection)
            }
            let commands = handshake
            let deadline = eventLoop.scheduleTask(in: timeout) {
                channel.close(promise: nil)
            }
            return connection.pipelineFuture(commands).always { _ in
                deadline.cancel()
            }.flatMapThrowing { results in
                for (command, result) in zip(commands, results) {
                    let name = command.count > 1 && command[0] == "CLIENT" ? "CLIENT SETNAME" : Self.name(of: command)
                    switch result {
                    case .success(.error(let text)):
                        throw RedisError(code: .connectFailed, message: "\(name) refused by \(url): \(text)")
                    case .failure(let error):
                        throw RedisError(
                            code: .connectFailed, message: "\(name) on \(url) did not complete: \(error.message)")
                    case .success:
                        continue
                    }
                }
                logger.debug("redis connection open", metadata: ["redis.url": "\(url)"])
                return connection
            }.flatMapErrorThrowing { error in
                channel.close(promise: nil)
                throw error
            }
        }
    }

    /// Whether the channel is still open. A `true` answer can be stale by the time a command is
    /// written; the command then fails with `.connectionClosed`.
    public var isActive: Bool {
        channel.isActive
    }

    /// Completes when the connection has closed, for whatever reason.
    public var closeFuture: EventLoopFuture<Void> {
        channel.closeFuture
    }

    /// Sends one command and returns its reply.
    ///
    /// - Throws: `RedisError` `.server` with Redis's text for an error reply; `.connectionClosed`
    ///   (retryable) if the connection closes before the reply arrives.
    public func send(_ arguments: [RedisArgument]) async throws(RedisError) -> RESPValue {
        try await send(arguments, blockingFor: .zero)
    }

    /// `send`, for a command that may block up to `blockingFor` before it answers; nil waits
    /// as long as it takes (a command blocking without limit).
    func send(_ arguments: [RedisArgument], blockingFor: TimeAmount?) async throws(RedisError) -> RESPValue {
        let reply = try await Self.await(sendFuture(arguments, blockingFor: blockingFor))
        if case .error(let text) = reply {
            throw RedisError.server(text, command: Self.name(of: arguments))
        }
        return reply
    }

    /// Writes `commands` with a single flush and returns one result per command, in order.
    ///
    /// Contract: an error reply fails only its own command (`.failure` with code `.server` and
    /// Redis's text); if the connection closes midway, the commands whose replies had arrived
    /// keep them and the rest get `.connectionClosed` (each may or may not have run).
    public func pipeline(_ commands: [[RedisArgument]]) async -> [Result<RESPValue, RedisError>] {
        if commands.isEmpty { return [] }
        let raw: [Result<RESPValue, RedisError>]
        do {
            raw = try await pipelineFuture(commands).get()
        } catch {
            let failure = RedisError(code: .connectionClosed, message: "connection closed: \(error)")
            return Array(repeating: .failure(failure), count: commands.count)
        }
        return Self.surfaceErrors(raw, commands: commands)
    }

    /// Closes the connection; commands in flight fail with `.connectionClosed`. Closing twice is
    /// harmless.
    public func close() async {
        try? await channel.close()
    }

    /// Sends one command; the reply may be `.error`. The future fails only for connection-level
    /// problems.
    func sendFuture(_ arguments: [RedisArgument], blockingFor: TimeAmount? = .zero) -> EventLoopFuture<RESPValue> {
        var buffer = channel.allocator.buffer(capacity: RESPCommandEncoder.estimatedSize(of: arguments))
        RESPCommandEncoder.encode(arguments, into: &buffer)
        let promise = channel.eventLoop.makePromise(of: RESPValue.self)
        if let blockingFor { closeUnlessAnswered(promise.futureResult, within: commandTimeout + blockingFor) }
        // If the write never reaches the command handler (channel already torn down), fail the
        // reply here; if it did, the handler completes it and this second completion is ignored
        // (NIO promises keep their first result).
        channel.writeAndFlush(RedisRequest.single(buffer, promise)).whenFailure { error in
            promise.fail(Self.writeFailure(error))
        }
        return promise.futureResult
    }

    /// Writes `commands` with one flush; error replies arrive as `.success(.error)`.
    func pipelineFuture(_ commands: [[RedisArgument]]) -> EventLoopFuture<[Result<RESPValue, RedisError>]> {
        var size = 0
        for command in commands { size += RESPCommandEncoder.estimatedSize(of: command) }
        var buffer = channel.allocator.buffer(capacity: size)
        for command in commands { RESPCommandEncoder.encode(command, into: &buffer) }
        let promise = channel.eventLoop.makePromise(of: [Result<RESPValue, RedisError>].self)
        closeUnlessAnswered(promise.futureResult, within: commandTimeout)
        let count = commands.count
        channel.writeAndFlush(RedisRequest.batch(buffer, count: count, promise)).whenFailure { error in
            promise.succeed(Array(repeating: .failure(Self.writeFailure(error)), count: count))
        }
        return promise.futureResult
    }

    /// Closes the connection when `reply` has not come within `limit`. Replies are matched to
    /// commands in order, so one that never comes would hold every later one too: closing fails
    /// them all with `.connectionClosed`, and the pool replaces the connection.
    private func closeUnlessAnswered<Value>(_ reply: EventLoopFuture<Value>, within limit: TimeAmount) {
        let channel = channel, logger = logger
        let deadline = channel.eventLoop.scheduleTask(in: limit) {
            logger.warning("a Redis command got no reply in time; closing its connection", metadata: ["timeout": "\(limit)"])
            channel.close(promise: nil)
        }
        reply.whenComplete { _ in deadline.cancel() }
    }

    static func surfaceErrors(
        _ raw: [Result<RESPValue, RedisError>], commands: [[RedisArgument]]
    ) -> [Result<RESPValue, RedisError>] {
        var results = raw
        for index in results.indices {
            switch results[index] {
            case .success(.error(let text)):
                results[index] = .failure(.server(text, command: name(of: commands[index])))
            case .failure(var error):
                error.command = name(of: commands[index])
                results[index] = .failure(error)
            case .success:
                continue
            }
        }
        return results
    }

    static func await(_ future: EventLoopFuture<RESPValue>) async throws(RedisError) -> RESPValue {
        do {
            return try await future.get()
        } catch let error as RedisError {
            throw error
        } catch {
            throw writeFailure(error)
        }
    }

    private static func writeFailure(_ error: any Error) -> RedisError {
        if let error = error as? RedisError { return error }
        return RedisError(code: .connectionClosed, message: "connection closed before the command was sent: \(error)")
    }

    /// The command's name for error context: its first argument, upper-cased.
    static func name(of arguments: [RedisArgument]) -> String {
        switch arguments.first {
        case .string(let text): text.uppercased()
        case .bytes(let bytes): String(decoding: bytes, as: UTF8.self).uppercased()
        case .integer(let value): String(value)
        case .double(let value): value.description
        case nil: ""
        }
    }
}
