import Logging
import NIOCore
import Synchronization

/// Dedicated connections for blocking commands, leased one per call so a command that parks on
/// the server (`XREADGROUP ... BLOCK`) never queues ordinary commands behind it.
///
/// Contract:
/// - `lease()` hands out an idle live connection, or opens a new one (bounded by the connect
///   timeout, no retry — the caller's loop decides); there is no cap on leased connections, the
///   number of concurrent blocking callers is the caller's bound.
/// - `giveBack(_:)` keeps a live connection for reuse while fewer than `maxIdle` are idle, and
///   closes it otherwise.
/// - `shutdown()` closes idle and leased connections (releasing parked callers with
///   `.connectionClosed`); later leases fail with `.clientShutdown`.
final class BlockingConnectionPool: Sendable {
    private struct State {
        var idle: [RedisConnection] = []
        var leased: [ObjectIdentifier: RedisConnection] = [:]
        var isShutDown = false
    }

    private let configuration: RedisConfiguration
    private let eventLoopGroup: any EventLoopGroup
    private let logger: Logger
    private let state = Mutex(State())

    init(configuration: RedisConfiguration, eventLoopGroup: any EventLoopGroup, logger: Logger) {
        self.configuration = configuration
        self.eventLoopGroup = eventLoopGroup
        self.logger = logger
    }

    func lease() async throws(RedisError) -> RedisConnection {
        let reused = try state.withLock { state throws(RedisError) -> RedisConnection? in
            if state.isShutDown { throw RedisClient.shutDownError }
            while let candidate = state.idle.popLast() {
                if candidate.isActive {
                    state.leased[ObjectIdentifier(candidate)] = candidate
                    return candidate
                }
            }
            return nil
        }
        if let reused { return reused }
        let connection = try await RedisConnection.connect(
            configuration: configuration, eventLoop: eventLoopGroup.next(), logger: logger)
        let accepted = state.withLock { state -> Bool in
            if state.isShutDown { return false }
            state.leased[ObjectIdentifier(connection)] = connection
            return true
        }
        guard accepted else {
            await connection.close()
            throw RedisClient.shutDownError
        }
        logger.trace("redis blocking connection opened")
        return connection
    }

    func giveBack(_ connection: RedisConnection) {
        let keep = state.withLock { state -> Bool in
            state.leased.removeValue(forKey: ObjectIdentifier(connection))
            guard !state.isShutDown, connection.isActive,
                state.idle.count < configuration.maxIdleBlockingConnections
            else { return false }
            state.idle.append(connection)
            return true
        }
        if !keep {
            connection.channel.close(promise: nil)
        }
    }

    func shutdown() async {
        let connections = state.withLock { state -> [RedisConnection] in
            state.isShutDown = true
            let all = state.idle + Array(state.leased.values)
            state.idle = []
            state.leased = [:]
            return all
        }
        for connection in connections {
            await connection.close()
        }
    }
}
