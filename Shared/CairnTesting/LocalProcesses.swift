public import CairnEngine
public import CairnRoles
import AsyncHTTPClient
public import Foundation
import Logging
import ServiceLifecycle

extension TestEnvironment {
    /// A TCP port on 127.0.0.1 that was free a moment ago.
    public static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
                bind(fd, sa, length) == 0 && getsockname(fd, sa, &length) == 0
            }
        }
        guard bound else { throw LocalProcessError(description: "could not bind a free port on 127.0.0.1") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}

/// A fixture process that did not start or answer.
public struct LocalProcessError: Error, CustomStringConvertible {
    public var description: String

    public init(description: String) {
        self.description = description
    }
}

/// A Cairn process running in this test process, on a schema and stream prefix of its own.
public struct RunningCairn: Sendable {
    /// The port of the listener serving the event API and the API.
    public let port: Int
    /// `http://127.0.0.1:<port>`.
    public var origin: String { "http://127.0.0.1:\(port)" }
    /// The Postgres schema the process uses (its own, migrated).
    public let schema: String
    /// The environment the process was configured from.
    public let environment: [String: String]

    /// Another process on the same database, Redis and streams, playing `roles`: a replica.
    public func sharing(roles: [Role], environment extra: [String: String] = [:]) -> CairnPeer {
        CairnPeer(roles: roles, environment: environment.merging(extra) { $1 })
    }
}

/// A replica of a `RunningCairn`, started on demand.
public struct CairnPeer: Sendable {
    public let roles: [Role]
    public let environment: [String: String]

    func makeGroup() throws -> ServiceGroup {
        let configuration = try CairnConfiguration(environment: environment)
        var logger = Logger(label: "cairn.test.peer")
        logger.logLevel = .critical
        return CairnProcess(roles: roles, configuration: configuration, logger: logger).serviceGroup(handlingSignals: false)
    }

    /// Runs the replica until `body` returns, then stops it dead, as a killed process stops:
    /// cancelled, not shut down, so its leases stay held and its stream entries stay pending.
    public func runUntil(_ body: @Sendable () async throws -> Void) async throws {
        let group = try makeGroup()
        let task = Task { try await group.run() }
        defer { task.cancel() }
        try await body()
        task.cancel()
        _ = await task.result
    }

    /// Runs the replica while `body` runs, then shuts it down gracefully.
    public func running<Result: Sendable>(_ body: @Sendable () async throws -> Result) async throws -> Result {
        let group = try makeGroup()
        let task = Task { try await group.run() }
        do {
            let result = try await body()
            await group.triggerGracefulShutdown()
            _ = await task.result
            return result
        } catch {
            await group.triggerGracefulShutdown()
            _ = await task.result
            throw error
        }
    }
}

/// Runs `body` while a Cairn process plays `roles` on a fresh schema; `environment` adds or
/// overrides variables (for example `INNGEST_SIGNING_KEY`). The process is shut down
/// gracefully afterwards, pass or fail.
public func withRunningCairn<Result: Sendable>(
    roles: [Role] = Role.allCases,
    environment extra: [String: String] = [:],
    _ body: @Sendable (RunningCairn) async throws -> Result
) async throws -> Result {
    try await withTestDatabase { database in
        let schema = database.settings.schema ?? "public"
        let base = try TestEnvironment.postgresURL()
        var environment = [
            "CAIRN_POSTGRES_URL": base + (base.contains("?") ? "&" : "?") + "search_path=\(schema)",
            "CAIRN_REDIS_URL": try TestEnvironment.redisURL(),
            "CAIRN_DEV": "1",
            "CAIRN_HOST": "127.0.0.1",
            "CAIRN_PORT": "0",
            "CAIRN_GATEWAY_PORT": "0",
            "CAIRN_STREAM_PREFIX": TestEnvironment.uniqueName("cairn-test-") + ":",
            "CAIRN_SHUTDOWN_GRACE_SECONDS": "5",
            "CAIRN_POSTGRES_POOL_SIZE": "8",
        ]
        environment.merge(extra) { $1 }
        let configuration = try CairnConfiguration(environment: environment)
        var logger = Logger(label: "cairn.test.process")
        logger.logLevel = ProcessInfo.processInfo.environment["CAIRN_TEST_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .warning
        let (listeners, continuation) = AsyncStream.makeStream(of: CairnProcess.BoundListener.self)
        let process = CairnProcess(roles: roles, configuration: configuration, logger: logger) { continuation.yield($0) }
        let group = process.serviceGroup(handlingSignals: false)
        return try await withThrowingTaskGroup(of: Result?.self) { tasks in
            tasks.addTask {
                try await group.run()
                return nil
            }
            do {
                // The listener of the HTTP roles; a gateway-only or worker-only process has one
                // listener, for health.
                let wanted: Set<Role> = Set(roles).intersection([.api, .eventAPI]).isEmpty ? Set(roles) : [.api, .eventAPI]
                var port: Int?
                for await listener in listeners where !wanted.isDisjoint(with: listener.roles) {
                    port = listener.port
                    break
                }
                guard let port else { throw LocalProcessError(description: "the Cairn process bound no listener") }
                let result = try await body(RunningCairn(port: port, schema: schema, environment: environment))
                await group.triggerGracefulShutdown()
                while try await tasks.next() != nil {}
                return result
            } catch {
                await group.triggerGracefulShutdown()
                while (try? await tasks.next()) != nil {}
                throw error
            }
        }
    }
}

/// The end-to-end app on the official Inngest Python SDK (Tests/EndToEndTests/PythonApp),
/// running as its own process.
public struct PythonApp: Sendable {
    public let port: Int
    /// The app's serve endpoint.
    public var serveURL: String { "http://127.0.0.1:\(port)/api/inngest" }

    /// The interpreter of the venv `make test` prepares: `CAIRN_TEST_PYTHON`.
    static func interpreter() throws -> String {
        guard let python = ProcessInfo.processInfo.environment["CAIRN_TEST_PYTHON"], !python.isEmpty else {
            throw LocalProcessError(description: "CAIRN_TEST_PYTHON is not set: run the tests with `make test`, which installs the Python SDK into a venv")
        }
        return python
    }

    /// Tests/EndToEndTests/PythonApp/app.py in this checkout.
    static var script: URL { script("app.py") }

    /// A script of Tests/EndToEndTests/PythonApp in this checkout.
    public static func script(_ name: String) -> URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Tests/EndToEndTests/PythonApp/\(name)")
    }
}

/// Runs `body` while the Python app serves on `port` (default: a free one), pointed at `cairn`. In dev mode
/// (no `INNGEST_SIGNING_KEY` in `environment`) the SDK runs with `INNGEST_DEV=1`; otherwise in
/// cloud mode. The app is stopped afterwards; its output is attached to any failure.
public func withPythonApp<Result: Sendable>(
    pointingAt cairn: RunningCairn,
    port: Int? = nil,
    environment extra: [String: String] = [:],
    _ body: @Sendable (PythonApp) async throws -> Result
) async throws -> Result {
    var environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("INNGEST_") }
    environment["INNGEST_BASE_URL"] = cairn.origin
    if extra["INNGEST_SIGNING_KEY"] == nil { environment["INNGEST_DEV"] = "1" }
    environment.merge(extra) { $1 }
    return try await withPythonScript(PythonApp.script, port: port, environment: environment, readyPath: "/api/inngest") { port in
        try await body(PythonApp(port: port))
    }
}

/// Runs `body` while a script of Tests/EndToEndTests/PythonApp runs on the test venv's
/// interpreter, told its port (default: a free one) in `APP_PORT`, with `environment`, once
/// it answers a GET of `readyPath`. The process is stopped afterwards; its output is attached
/// to any failure.
public func withPythonScript<Result: Sendable>(
    _ script: URL,
    port: Int? = nil,
    environment: [String: String] = ProcessInfo.processInfo.environment,
    readyPath: String = "/",
    _ body: @Sendable (Int) async throws -> Result
) async throws -> Result {
    let port = try port ?? TestEnvironment.freePort()
    var environment = environment
    environment["APP_PORT"] = String(port)
    environment["PYTHONUNBUFFERED"] = "1"

    let log = FileManager.default.temporaryDirectory.appendingPathComponent("cairn-python-\(script.deletingPathExtension().lastPathComponent)-\(port).log")
    FileManager.default.createFile(atPath: log.path, contents: nil)
    let output = try FileHandle(forWritingTo: log)
    let process = Process()
    process.executableURL = URL(fileURLWithPath: try PythonApp.interpreter())
    process.arguments = [script.path]
    process.environment = environment
    process.standardOutput = output
    process.standardError = output
    try process.run()
    func stop() async {
        if process.isRunning { process.terminate() }
        for _ in 0..<100 where process.isRunning { try? await Task.sleep(for: .milliseconds(20)) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        try? output.close()
    }
    func withOutput(_ error: any Error) -> any Error {
        let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
        return LocalProcessError(description: "\(error)\n--- \(script.lastPathComponent) output ---\n\(text.suffix(4_000))")
    }
    do {
        let deadline = ContinuousClock.now + .seconds(30)
        while true {
            guard process.isRunning else { throw LocalProcessError(description: "\(script.lastPathComponent) exited at start") }
            var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)\(readyPath)")
            request.method = .GET
            if let response = try? await HTTPClient.shared.execute(request, timeout: .seconds(2)) {
                _ = try? await response.body.collect(upTo: 1 << 20)
                break
            }
            guard ContinuousClock.now < deadline else { throw LocalProcessError(description: "\(script.lastPathComponent) did not answer within 30 s") }
            try await Task.sleep(for: .milliseconds(100))
        }
        let result = try await body(port)
        await stop()
        return result
    } catch {
        await stop()
        throw withOutput(error)
    }
}
