public import CairnEngine
import Foundation
import NIOCore
import NIOPosix

/// The `main` of a role executable: configuration from the environment, then the process.
public enum RoleEntryPoint {
    /// Makes the process's NIO event loops the executor of every task, so that a task awaiting
    /// a socket (a Postgres reply, an app's response) resumes on the thread that read it rather
    /// than after a hop to another pool. On the step path this roughly halves the context
    /// switches and cuts the CPU per step by a fifth (bench/steps.sh, measured with perf stat).
    ///
    /// Call it first in `main`, before anything creates a task; later calls do nothing. With it,
    /// code in a task must never block its thread.
    public static func useEventLoopsForTasks() {
        _ = NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
    }

    /// Runs a process playing `role` until SIGTERM/SIGINT; exits 2 on invalid configuration
    /// (each problem printed, naming its variable) and 1 when the process fails.
    public static func run(_ role: Role) async -> Never {
        let configuration: CairnConfiguration
        do {
            configuration = try CairnConfiguration(environment: ProcessInfo.processInfo.environment)
        } catch {
            FileHandle.standardError.write(Data("cairn-\(role.rawValue): \(error)\n".utf8))
            exit(2)
        }
        let logger = configuration.makeLogger(label: "cairn.\(role.rawValue)")
        do {
            try await CairnProcess(roles: [role], configuration: configuration, logger: logger).run()
            exit(0)
        } catch {
            logger.critical("stopped with an error", metadata: ["error": "\(error)"])
            exit(1)
        }
    }
}
