public import Foundation

/// Private Redis and Postgres servers for `cairn dev`, started by `deploy/local/servers.sh` —
/// the same script `make dev` and `make test` use.
///
/// The script starts both on free loopback ports under a data directory and prints their URLs.
/// `stop()` stops them and waits until their processes are gone; if this process dies without
/// stopping them, the script's watchdog (keyed on our pid) stops them.
public struct LocalServers: Sendable {
    /// The script that manages the servers.
    public let script: URL
    /// Where the servers keep their data; it survives restarts, so dev data persists.
    public let directory: URL
    /// The variables the script reported: `CAIRN_POSTGRES_URL`, `CAIRN_REDIS_URL`.
    public let environment: [String: String]

    /// Starts the servers; returns once both answer.
    ///
    /// - Throws: `LocalServersError` with the script's own message when it fails.
    public static func start(script: URL, directory: URL) throws -> LocalServers {
        let output = try run(script, ["start", directory.path, "--owner-pid", String(getpid())])
        var environment: [String: String] = [:]
        for line in output.split(separator: "\n") {
            let parts = line.split(separator: "=", maxSplits: 1)
            if parts.count == 2 { environment[String(parts[0])] = String(parts[1]) }
        }
        guard environment["CAIRN_POSTGRES_URL"] != nil, environment["CAIRN_REDIS_URL"] != nil else {
            throw LocalServersError(message: "\(script.path) printed no server URLs:\n\(output)")
        }
        return LocalServers(script: script, directory: directory, environment: environment)
    }

    /// Stops both servers and waits for their processes to exit.
    public func stop() throws {
        _ = try Self.run(script, ["stop", directory.path])
    }

    /// Finds the script: `CAIRN_LOCAL_SERVERS_SCRIPT`, else `deploy/local/servers.sh` under the
    /// current directory or above the executable (a build tree inside the checkout).
    public static func locateScript(environment: [String: String], executable: URL) -> URL? {
        if let path = environment["CAIRN_LOCAL_SERVERS_SCRIPT"], !path.isEmpty {
            return URL(fileURLWithPath: path)
        }
        var candidates = [URL(fileURLWithPath: FileManager.default.currentDirectoryPath)]
        var dir = executable.deletingLastPathComponent()
        for _ in 0..<6 {
            candidates.append(dir)
            dir = dir.deletingLastPathComponent()
        }
        for base in candidates {
            let script = base.appendingPathComponent("deploy/local/servers.sh")
            if FileManager.default.isExecutableFile(atPath: script.path) { return script }
        }
        return nil
    }

    private static func run(_ script: URL, _ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = script
        process.arguments = arguments
        let stdout = Pipe()
        let stderr = Pipe()
        process.standardOutput = stdout
        process.standardError = stderr
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let out = stdout.fileHandleForReading.readDataToEndOfFile()
        let err = stderr.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw LocalServersError(message: String(decoding: err, as: UTF8.self).trimmingWhitespace())
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// The local-servers script failed; `message` is what it said.
public struct LocalServersError: Error, CustomStringConvertible {
    /// The script's error output.
    public var message: String
    public var description: String { "local servers: \(message)" }
}
