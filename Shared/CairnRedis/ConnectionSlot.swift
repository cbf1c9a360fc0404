import Logging
import NIOCore
import Synchronization

/// One place in the shared pool: holds at most one live connection and replaces it when it dies.
///
/// State machine (transitions computed under the lock, effects performed after releasing it):
/// - `idle` → `connecting` on first use (`poll()`/`connection()`), or on `RedisClient.connect()`.
/// - `connecting` → `connected` when the connection opens (waiters resume with it), or →
///   `waitingToReconnect` when it fails (`failures` += 1; the next attempt is scheduled after
///   `reconnectBackoff.delay(afterFailures:)`).
/// - `connected` → `connecting` at once when the channel closes (first reconnect is immediate).
/// - any → `shutDown` on `shutdown()`; a connection that opens afterwards is closed at once.
///
/// Callers that find no live connection wait, each bounded by `connectTimeout`; on timeout they
/// fail with `.connectionUnavailable` naming the last connect error. Waiting is not cancellable;
/// the timeout bounds it.
final class ConnectionSlot: Sendable {
    private struct Waiter {
        let promise: EventLoopPromise<RedisConnection>
        let timeout: Scheduled<Void>
    }

    private enum Phase {
        case idle
        case connecting
        case connected(RedisConnection)
        case waitingToReconnect
        case shutDown
    }

    private struct State {
        var phase: Phase = .idle
        var failures = 0
        var lastError: RedisError?
        var waiters: [UInt64: Waiter] = [:]
    }

    let eventLoop: any EventLoop
    private let configuration: RedisConfiguration
    private let logger: Logger
    private let state = Mutex(State())
    private let waiterIDs = Atomic<UInt64>(0)

    init(eventLoop: any EventLoop, configuration: RedisConfiguration, logger: Logger) {
        self.eventLoop = eventLoop
        self.configuration = configuration
        self.logger = logger
    }

    /// The live connection if there is one; otherwise starts connecting if idle and returns nil.
    func poll() -> RedisConnection? {
        let (connection, start) = state.withLock { state -> (RedisConnection?, Bool) in
            switch state.phase {
            case .connected(let connection) where connection.isActive:
                return (connection, false)
            case .idle:
                state.phase = .connecting
                return (nil, true)
            case .connected, .connecting, .waitingToReconnect, .shutDown:
                return (nil, false)
            }
        }
        if start { startConnecting() }
        return connection
    }

    /// The live connection, waiting (up to `connectTimeout`) for one to open if needed.
    func connection() async throws(RedisError) -> RedisConnection {
        if let connection = poll() { return connection }
        let id = waiterIDs.wrappingAdd(1, ordering: .relaxed).oldValue
        let promise = eventLoop.makePromise(of: RedisConnection.self)
        let timeout = eventLoop.scheduleTask(in: TimeAmount(configuration.connectTimeout)) { [self] in
            self.waiterTimedOut(id)
        }
        enum Action {
            case ready(RedisConnection)
            case fail(RedisError)
            case wait(startConnecting: Bool)
        }
        let action = state.withLock { state -> Action in
            switch state.phase {
            case .connected(let connection) where connection.isActive:
                return .ready(connection)
            case .shutDown:
                return .fail(RedisClient.shutDownError)
            case .idle:
                state.phase = .connecting
                state.waiters[id] = Waiter(promise: promise, timeout: timeout)
                return .wait(startConnecting: true)
            case .connected, .connecting, .waitingToReconnect:
                // A `connected` phase whose channel is inactive has a close callback pending,
                // which will start the reconnect.
                state.waiters[id] = Waiter(promise: promise, timeout: timeout)
                return .wait(startConnecting: false)
            }
        }
        switch action {
        case .ready(let connection):
            timeout.cancel()
            promise.succeed(connection)
            return connection
        case .fail(let error):
            timeout.cancel()
            promise.fail(error)
            throw error
        case .wait(let startConnecting):
            if startConnecting { self.startConnecting() }
            do {
                return try await promise.futureResult.get()
            } catch let error as RedisError {
                throw error
            } catch {
                throw RedisError(code: .connectionUnavailable, message: "\(error)")
            }
        }
    }

    /// Stops reconnecting, fails waiters with `.clientShutdown`, and closes the connection.
    func shutdown() async {
        let (connection, waiters) = state.withLock { state -> (RedisConnection?, [Waiter]) in
            var connection: RedisConnection?
            if case .connected(let current) = state.phase { connection = current }
            state.phase = .shutDown
            let waiters = Array(state.waiters.values)
            state.waiters = [:]
            return (connection, waiters)
        }
        for waiter in waiters {
            waiter.timeout.cancel()
            waiter.promise.fail(RedisClient.shutDownError)
        }
        await connection?.close()
    }

    private func startConnecting() {
        logger.trace("redis pool slot connecting")
        RedisConnection.makeConnection(configuration: configuration, eventLoop: eventLoop, logger: logger)
            .whenComplete { [self] result in
                switch result {
                case .success(let connection): self.connected(connection)
                case .failure(let error): self.connectFailed(error)
                }
            }
    }

    private func connected(_ connection: RedisConnection) {
        let waiters = state.withLock { state -> [Waiter]? in
            guard case .connecting = state.phase else { return nil }
            state.phase = .connected(connection)
            state.failures = 0
            state.lastError = nil
            let waiters = Array(state.waiters.values)
            state.waiters = [:]
            return waiters
        }
        guard let waiters else {
            // Shut down while connecting.
            connection.channel.close(promise: nil)
            return
        }
        connection.closeFuture.whenComplete { [self] _ in
            self.connectionClosed(connection)
        }
        for waiter in waiters {
            waiter.timeout.cancel()
            waiter.promise.succeed(connection)
        }
    }

    private func connectFailed(_ error: any Error) {
        let redisError = (error as? RedisError) ?? RedisError(code: .connectFailed, message: "\(error)")
        let delay = state.withLock { state -> Duration? in
            guard case .connecting = state.phase else { return nil }
            state.phase = .waitingToReconnect
            state.failures += 1
            state.lastError = redisError
            return configuration.reconnectBackoff.delay(afterFailures: state.failures)
        }
        guard let delay else { return }
        logger.debug(
            "redis connect failed; retrying",
            metadata: ["error": "\(redisError)", "redis.retryIn": "\(delay)"])
        eventLoop.scheduleTask(in: TimeAmount(delay)) { [self] in
            self.reconnectDue()
        }
    }

    private func reconnectDue() {
        let start = state.withLock { state -> Bool in
            guard case .waitingToReconnect = state.phase else { return false }
            state.phase = .connecting
            return true
        }
        if start { startConnecting() }
    }

    private func connectionClosed(_ connection: RedisConnection) {
        let reconnect = state.withLock { state -> Bool in
            guard case .connected(let current) = state.phase, current === connection else { return false }
            state.phase = .connecting
            return true
        }
        guard reconnect else { return }
        logger.debug("redis connection closed; reconnecting")
        startConnecting()
    }

    private func waiterTimedOut(_ id: UInt64) {
        let (waiter, lastError) = state.withLock { state in
            (state.waiters.removeValue(forKey: id), state.lastError)
        }
        guard let waiter else { return }
        let because = lastError.map { ": last attempt failed: \($0.message)" } ?? ""
        waiter.promise.fail(
            RedisError(
                code: .connectionUnavailable,
                message: "no connection to \(configuration.url) within \(configuration.connectTimeout)\(because)"))
    }
}
