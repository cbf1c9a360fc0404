public import CairnEngine
import Foundation

/// The `main` of a role executable: configuration from the environment, then the process.
public enum RoleEntryPoint {
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
