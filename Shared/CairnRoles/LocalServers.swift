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

    /// Runs the script with stdin from /dev/null and stdout+stderr in one pipe (one reader,
    /// so a chatty stream can never fill its pipe and stall the script); returns the output.
    ///
    /// Spawned with `posix_spawn` and reaped with `waitpid` here, rather than through
    /// Foundation's `Process`, whose termination monitoring does not fire from the async
    /// context `cairn dev` runs in. Signal dispositions are reset to their defaults in the
    /// child: a signal the service group ignores must not be ignored by the servers.
    private static func run(_ script: URL, _ arguments: [String]) throws -> String {
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { throw LocalServersError(message: "pipe(): \(String(cString: strerror(errno)))") }
        let (readEnd, writeEnd) = (fds[0], fds[1])

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, writeEnd, 1)
        posix_spawn_file_actions_adddup2(&actions, writeEnd, 2)
        posix_spawn_file_actions_addclose(&actions, readEnd)
        posix_spawn_file_actions_addclose(&actions, writeEnd)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var allSignals = sigset_t()
        sigfillset(&allSignals)
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigdefault(&attributes, &allSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))

        let argv: [UnsafeMutablePointer<CChar>?] = ([script.path] + arguments).map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, script.path, &actions, &attributes, argv, environ)
        close(writeEnd)
        guard spawned == 0 else {
            close(readEnd)
            throw LocalServersError(message: "cannot run \(script.path): \(String(cString: strerror(spawned)))")
        }

        var output: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(readEnd, $0.baseAddress, $0.count) }
            if count > 0 {
                output += buffer[0..<count]
            } else if count == 0 || errno != EINTR {
                break
            }
        }
        close(readEnd)

        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
        let text = String(decoding: output, as: UTF8.self)
        // WIFEXITED && WEXITSTATUS == 0, spelled out: the macros are not imported into Swift.
        guard status & 0x7f == 0, (status >> 8) & 0xff == 0 else {
            throw LocalServersError(message: text.trimmingWhitespace())
        }
        return text
    }
}

/// The local-servers script failed; `message` is what it said.
public struct LocalServersError: Error, CustomStringConvertible {
    /// The script's error output.
    public var message: String
    public var description: String { "local servers: \(message)" }
}
