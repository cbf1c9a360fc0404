import CairnCore
import CairnEngine
import CairnTesting
import Foundation
import Logging
import ServiceLifecycle
import Testing

/// SIGTERM must not wait out a service's pause between passes: the retention collector pauses
/// a minute and the reconciler five seconds, and the process should stop at once, not after
/// the shutdown grace cancels them.
@Suite struct ShutdownTests {
    /// Deletes nothing: the collector's passes are empty and it goes straight to its pause.
    struct NothingExpires: RetentionStore {
        func deleteExpired(_ kind: RetentionKind, cutoff: Date, now: Date, limit: Int) async throws -> Int { 0 }
    }

    // The manual clock never advances and the group has no shutdown timeout, so the group
    // ends only if both services end their pause on graceful shutdown; the time limit turns a
    // hang into a failure.
    @Test(.timeLimit(.minutes(1))) func pausingServicesStopOnGracefulShutdown() async throws {
        let engine = EngineHarness()
        var logger = Logger(label: "cairn.test.shutdown")
        logger.logLevel = .critical
        let collector = RetentionCollector(store: NothingExpires(), settings: RetentionSettings(), clock: engine.clock, logger: logger)
        let group = ServiceGroup(services: [collector, engine.reconciler], logger: logger)
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            // Both services have finished a pass and are pausing.
            await engine.clock.waitForSleepers(2)
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
    }
}
