public import Logging
import ServiceLifecycle

/// Runs `pass` over and over until graceful shutdown or cancellation: the loop every polling
/// service shares. A pass that throws is logged as `failure` and retried after a short pause
/// (a database restart must not end the service); cancellation ends the loop.
public func repeatUntilShutdown(logger: Logger, failure: Logger.Message, _ pass: () async throws -> Void) async {
    while !Task.isShuttingDownGracefully && !Task.isCancelled {
        do {
            try await pass()
        } catch is CancellationError {
            return
        } catch {
            logger.warning(failure, metadata: ["error": "\(error)"])
            try? await Task.sleep(for: .milliseconds(200))
        }
    }
}

/// Sleeps for `duration` on `clock` between two passes, ending at once (with a
/// `CancellationError`, which ends `repeatUntilShutdown`) when graceful shutdown begins: a
/// service that pauses for a minute must not hold up SIGTERM for that minute.
public func pauseUntilShutdown(for duration: Duration, on clock: any WallClock) async throws {
    try await cancelWhenGracefulShutdown { try await clock.sleep(for: duration) }
}
