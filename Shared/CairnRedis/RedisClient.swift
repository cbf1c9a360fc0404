public import Logging
public import NIOCore
import NIOPosix
public import ServiceLifecycle
import Synchronization

/// The entry point for talking to Redis: a pool of pipelining connections plus dedicated
/// connections for blocking reads.
///
/// Contract:
/// - **Pool.** `configuration.poolSize` connections carry ordinary commands, spread round-robin;
///   a slot whose connection is down is skipped while another is live. Connections open lazily
///   on first use, or all at once with `connect()` / `run()`.
/// - **Reconnect.** A connection that dies (server restart, `CLIENT KILL`, network) is replaced
///   at once, then with `configuration.reconnectBackoff` between failed attempts, until it opens
///   or the client shuts down. Commands that were in flight on it fail with the retryable
///   `.connectionClosed` (they may or may not have run; retrying is the caller's decision).
///   A command issued while no connection is live waits for one, at most
///   `configuration.connectTimeout`, then fails with the retryable `.connectionUnavailable`.
/// - **Blocking commands** (`xreadgroup(block:)`, `sendBlocking`) lease a dedicated connection
///   for the call, so they never delay pooled commands. Cancelling the calling task closes the
///   leased connection (the only way to abandon a parked command) and throws `CancellationError`.
/// - **Errors.** Methods throw `RedisError`: Redis's own text for error replies (`.server`),
///   connection-level codes otherwise (see `RedisError.isRetryable`).
/// - **Lifecycle.** Either run it as a `Service` (`run()` connects, stays up until graceful
///   shutdown or cancellation, then closes everything) or call `connect()` and `shutdown()`
///   yourself. After shutdown every call throws `.clientShutdown`. Commands already written
///   when shutdown begins fail with `.connectionClosed`.
/// - Thread-safe (`Sendable`); share one client per process.
public final class RedisClient: Sendable {
    /// The configuration the client was created with.
    public let configuration: RedisConfiguration
    let logger: Logger
    private let slots: [ConnectionSlot]
    private let nextSlot = Atomic<UInt>(0)
    private let blocking: BlockingConnectionPool
    private let isShutDown = Atomic<Bool>(false)
    /// Told the name and duration of every pooled command (blocking ones wait by design).
    let observe: RedisObserver?

    static let shutDownError = RedisError(code: .clientShutdown, message: "the Redis client has been shut down")

    /// Creates a client. Nothing connects until first use, `connect()` or `run()`.
    ///
    /// - Parameters:
    ///   - eventLoopGroup: the loops connections run on; `nil` uses NIO's shared
    ///     `MultiThreadedEventLoopGroup.singleton`. The client does not own or shut down the group.
    ///   - logger: receives debug/trace messages about connects, reconnects and failures.
    /// - Precondition: `configuration.poolSize >= 1`, `configuration.maxIdleBlockingConnections >= 0`.
    ///   - observe: told the name (`XADD`; `PIPELINE XADD` for a pipeline of them) and duration
    ///     of every command and pipeline sent on the pool, failed or not.
    public init(
        configuration: RedisConfiguration, eventLoopGroup: (any EventLoopGroup)? = nil, logger: Logger, observe: RedisObserver? = nil
    ) {
        self.observe = observe
        precondition(configuration.poolSize >= 1, "RedisConfiguration.poolSize must be at least 1")
        precondition(
            configuration.maxIdleBlockingConnections >= 0,
            "RedisConfiguration.maxIdleBlockingConnections must be >= 0")
        let group: any EventLoopGroup = eventLoopGroup ?? MultiThreadedEventLoopGroup.singleton
        var logger = logger
        logger[metadataKey: "redis.url"] = "\(configuration.url)"
        self.configuration = configuration
        self.logger = logger
        self.slots = (0..<configuration.poolSize).map { _ in
            ConnectionSlot(eventLoop: group.next(), configuration: configuration, logger: logger)
        }
        self.blocking = BlockingConnectionPool(configuration: configuration, eventLoopGroup: group, logger: logger)
    }

    // MARK: Lifecycle

    /// Opens every pooled connection and waits until each is up.
    ///
    /// - Throws: `RedisError` (`.connectionUnavailable` naming the connect failure) if a
    ///   connection is not up within `connectTimeout`; slots keep retrying in the background, so
    ///   the client stays usable once Redis is reachable.
    public func connect() async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for slot in slots {
                group.addTask { _ = try await slot.connection() }
            }
            try await group.waitForAll()
        }
    }

    /// Closes every connection (pooled and blocking) and stops reconnecting. Idempotent.
    ///
    /// Commands in flight fail with `.connectionClosed`; later calls throw `.clientShutdown`.
    public func shutdown() async {
        guard !isShutDown.exchange(true, ordering: .acquiringAndReleasing) else { return }
        logger.debug("redis client shutting down")
        await withTaskGroup(of: Void.self) { group in
            for slot in slots {
                group.addTask { await slot.shutdown() }
            }
            group.addTask { await self.blocking.shutdown() }
        }
    }

    // MARK: Raw commands

    /// Sends one command on a pooled connection and returns its reply.
    ///
    /// Do not send blocking commands here (`BLPOP`, `XREAD ... BLOCK`); use `sendBlocking`.
    /// - Throws: `RedisError`: `.server` with Redis's text for an error reply, or a
    ///   connection-level code.
    public func send(_ arguments: [RedisArgument]) async throws -> RESPValue {
        let started = ContinuousClock.now
        defer { observe?(Self.name(of: arguments), ContinuousClock.now - started) }
        let connection = try await pooledConnection()
        return try await connection.send(arguments)
    }

    /// A command's name, upper-cased: its first argument.
    static func name(of command: [RedisArgument]) -> String {
        switch command.first {
        case .string(let text)?: text.uppercased()
        case .bytes(let bytes)?: String(decoding: bytes, as: UTF8.self).uppercased()
        default: "?"
        }
    }

    /// A pipeline's name: `PIPELINE XADD` when every command in it is an `XADD`, else
    /// `PIPELINE`.
    static func name(ofPipeline commands: [[RedisArgument]]) -> String {
        let names = Set(commands.map(name(of:)))
        return names.count == 1 ? "PIPELINE " + names.first! : "PIPELINE"
    }

    /// Variadic form of `send(_:)`: `try await client.send("INCR", "counter")`.
    public func send(_ arguments: RedisArgument...) async throws -> RESPValue {
        try await send(arguments)
    }

    /// Sends `commands` on one pooled connection with a single flush and returns one result per
    /// command, in order.
    ///
    /// Contract: an error reply fails only its own entry (`.server`, Redis's text); if the
    /// connection dies midway, entries without a reply get `.connectionClosed`. The commands are
    /// not a transaction: other clients' commands may run between them.
    /// - Throws: `RedisError` only when no connection could be had (`.connectionUnavailable`,
    ///   `.clientShutdown`).
    public func pipeline(_ commands: [[RedisArgument]]) async throws -> [Result<RESPValue, RedisError>] {
        if commands.isEmpty { return [] }
        let started = ContinuousClock.now
        defer { if let observe { observe(Self.name(ofPipeline: commands), ContinuousClock.now - started) } }
        let connection = try await pooledConnection()
        return await connection.pipeline(commands)
    }

    /// Sends a command that may park on the server (`XREADGROUP ... BLOCK`, `BLPOP`, `WAIT`)
    /// on a dedicated leased connection, so pooled commands are never queued behind it.
    ///
    /// - Throws: `RedisError` as `send`; `CancellationError` if the task is cancelled (before
    ///   sending, or while parked — the leased connection is then closed).
    /// `blockingFor` is how long the command may block before it answers (its `BLOCK` or
    /// timeout argument): the command timeout counts from then. Nil: it blocks without limit.
    public func sendBlocking(_ arguments: [RedisArgument], blockingFor: Duration? = nil) async throws -> RESPValue {
        try Task.checkCancellation()
        let connection = try await blocking.lease()
        do {
            let reply = try await withTaskCancellationHandler {
                try await connection.send(arguments, blockingFor: blockingFor.map(TimeAmount.init))
            } onCancel: {
                connection.channel.close(promise: nil)
            }
            blocking.giveBack(connection)
            return reply
        } catch {
            blocking.giveBack(connection)
            if Task.isCancelled, (error as? RedisError)?.code != .server {
                throw CancellationError()
            }
            throw error
        }
    }

    private func pooledConnection() async throws(RedisError) -> RedisConnection {
        if isShutDown.load(ordering: .relaxed) { throw Self.shutDownError }
        let count = UInt(slots.count)
        let start = nextSlot.wrappingAdd(1, ordering: .relaxed).oldValue
        let home = slots[Int(start % count)]
        if let connection = home.poll() { return connection }
        for offset in 1..<count {
            if let connection = slots[Int((start &+ offset) % count)].poll() {
                return connection
            }
        }
        return try await home.connection()
    }
}

extension RedisClient: Service {
    /// Runs the client as a service: starts opening the pool (without failing if Redis is not up
    /// yet — commands wait and the pool retries), stays up until graceful shutdown or
    /// cancellation, then closes every connection.
    ///
    /// Put it before the services that use it in a `ServiceGroup`, so it shuts down after them.
    public func run() async throws {
        for slot in slots { _ = slot.poll() }
        try? await gracefulShutdown()
        await shutdown()
    }
}

/// Told the command name and duration of every pooled command a `RedisClient` sends.
public typealias RedisObserver = @Sendable (_ command: String, _ duration: Duration) -> Void
