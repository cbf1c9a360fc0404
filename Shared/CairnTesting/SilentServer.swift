import NIOCore
import NIOPosix

/// A loopback TCP server that accepts connections, reads whatever comes and never answers:
/// the peer every client must be able to give up on (a database or Redis whose replies are
/// lost).
public final class SilentServer: Sendable {
    public let port: Int

    private init(port: Int) {
        self.port = port
    }

    /// Runs `body` with a silent server listening on 127.0.0.1, then closes it.
    public static func with<T>(_ body: (SilentServer) async throws -> T) async throws -> T {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in channel.eventLoop.makeSucceededVoidFuture() }
            .bind(host: "127.0.0.1", port: 0)
            .get()
        let server = SilentServer(port: channel.localAddress?.port ?? 0)
        do {
            let result = try await body(server)
            try await channel.close()
            return result
        } catch {
            try? await channel.close()
            throw error
        }
    }
}
