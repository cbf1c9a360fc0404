import ArgumentParser
import CairnEngine
import CairnRoles
import Foundation

/// `cairn dev`: every role in one process, with private Redis and Postgres unless URLs are given.
struct Dev: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run every Cairn role in one process (API and event API on 8288, gateway on 8289).",
        discussion: """
            Without CAIRN_POSTGRES_URL and CAIRN_REDIS_URL, starts a private redis-server and \
            Postgres cluster (deploy/local/servers.sh) with data under --data-dir, and stops \
            them on exit. Applies migrations, then runs until Ctrl-C.
            """
    )

    @Option(help: "Where the private servers keep their data.")
    var dataDir: String = ".data/dev"

    @Option(help: "Port for the API, the event API and /healthz.")
    var port: Int = 8288

    @Option(help: "Port for the connect gateway.")
    var gatewayPort: Int = 8289

    func run() async throws {
        var environment = ProcessInfo.processInfo.environment
        var servers: LocalServers?
        if environment["CAIRN_POSTGRES_URL"] == nil || environment["CAIRN_REDIS_URL"] == nil {
            let executable = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
            guard let script = LocalServers.locateScript(environment: environment, executable: executable) else {
                throw ValidationError("deploy/local/servers.sh not found: run from the Cairn checkout, set CAIRN_LOCAL_SERVERS_SCRIPT, or set CAIRN_POSTGRES_URL and CAIRN_REDIS_URL")
            }
            let dir = URL(fileURLWithPath: dataDir, relativeTo: URL(fileURLWithPath: FileManager.default.currentDirectoryPath)).standardizedFileURL
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            say("cairn dev: starting private Redis and Postgres under \(dir.path)")
            let started = try LocalServers.start(script: script, directory: dir)
            servers = started
            environment.merge(started.environment) { _, new in new }
        }
        defer {
            if let servers {
                do { try servers.stop() } catch { say("cairn dev: \(error)") }
            }
        }
        // Dev mode: no signing key needed; then only this machine can reach it (CAIRN_HOST).
        environment["CAIRN_DEV"] = "1"
        environment["CAIRN_HOST"] = environment["CAIRN_HOST"] ?? "127.0.0.1"
        // The limits of Inngest's dev server, so that what an app sends to it locally is
        // accepted here too: events up to 3 MiB each, and requests of many of them.
        environment["CAIRN_EVENT_MAX_BYTES"] = environment["CAIRN_EVENT_MAX_BYTES"] ?? String(3 * 1024 * 1024)
        environment["CAIRN_EVENT_MAX_BODY_BYTES"] = environment["CAIRN_EVENT_MAX_BODY_BYTES"] ?? String(64 * 1024 * 1024)
        environment["CAIRN_PORT"] = String(port)
        environment["CAIRN_GATEWAY_PORT"] = String(gatewayPort)

        let configuration: CairnConfiguration
        do { configuration = try CairnConfiguration(environment: environment) } catch {
            throw ValidationError(error.description)
        }
        let logger = configuration.makeLogger(label: "cairn.dev")
        try await MigrationCommand.apply(configuration: configuration, logger: logger)
        let process = CairnProcess(roles: Role.allCases, configuration: configuration, logger: logger) { listener in
            let roles = listener.roles.map(\.rawValue).joined(separator: ", ")
            say("cairn dev: http://\(configuration.host):\(listener.port) serving \(roles)")
        }
        try await process.run()
    }
}
