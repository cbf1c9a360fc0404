import AsyncHTTPClient
import CairnTesting
import Foundation
import Testing

/// The built executables, run as an operator runs them.
@Suite struct ExecutableTests {
    /// The folder holding the built products: `CAIRN_TEST_BIN_DIR`, else the test bundle's.
    static func binary(_ name: String) throws -> URL {
        let environment = ProcessInfo.processInfo.environment
        let dir = environment["CAIRN_TEST_BIN_DIR"].map { URL(fileURLWithPath: $0) }
            ?? URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        let url = dir.appendingPathComponent(name)
        guard FileManager.default.isExecutableFile(atPath: url.path) else {
            throw MissingBinary(path: url.path)
        }
        return url
    }

    struct MissingBinary: Error, CustomStringConvertible {
        var path: String
        var description: String { "\(path) is not built: run `swift build` before the tests (make test does)" }
    }

    func launch(_ name: String, arguments: [String] = [], environment: [String: String]) throws -> (Process, Pipe) {
        let process = Process()
        process.executableURL = try Self.binary(name)
        process.arguments = arguments
        process.environment = environment
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        return (process, output)
    }

    func waitForExit(_ process: Process, within seconds: Double) async -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while process.isRunning && Date() < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
        return !process.isRunning
    }

    @Test func roleExecutableServesHealthAndExitsZeroOnSIGTERM() async throws {
        let port = try TestEnvironment.freePort()
        let (process, output) = try launch("cairn-scheduler", environment: [
            "CAIRN_POSTGRES_URL": try TestEnvironment.postgresURL(),
            "CAIRN_REDIS_URL": try TestEnvironment.redisURL(),
            "CAIRN_DEV": "1",
            "CAIRN_HOST": "127.0.0.1",
            "CAIRN_PORT": String(port),
            "CAIRN_LOG_LEVEL": "warning",
        ])
        defer { if process.isRunning { process.terminate() } }

        var body = ""
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline && process.isRunning {
            if let response = try? await HTTPClient.shared.execute(HTTPClientRequest(url: "http://127.0.0.1:\(port)/healthz"), timeout: .seconds(2)) {
                body = String(buffer: try await response.body.collect(upTo: 1 << 16))
                break
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(body == #"{"status":"ok","roles":["scheduler"]}"#)

        kill(process.processIdentifier, SIGTERM)
        #expect(await waitForExit(process, within: 20))
        #expect(process.terminationReason == .exit)
        #expect(process.terminationStatus == 0, "\(String(decoding: output.fileHandleForReading.availableData, as: UTF8.self))")
    }

    @Test func invalidConfigurationExitsTwoNamingTheVariable() async throws {
        let (process, output) = try launch("cairn-executor", environment: [
            "CAIRN_REDIS_URL": "redis://127.0.0.1:6379/0",
            "CAIRN_REDIS_POOL_SIZE": "0",
        ])
        #expect(await waitForExit(process, within: 20))
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(process.terminationStatus == 2)
        #expect(text.contains("CAIRN_POSTGRES_URL: is required"))
        #expect(text.contains("CAIRN_REDIS_POOL_SIZE: must be an integer from 1 to 256, got \"0\""))
    }

    @Test(arguments: ["cairn-api", "cairn-event-api", "cairn-scheduler", "cairn-executor", "cairn-gateway"])
    func roleRefusesToStartWithoutASigningKeyOutsideDevMode(_ executable: String) async throws {
        let port = try TestEnvironment.freePort()
        let (process, output) = try launch(executable, environment: [
            "CAIRN_POSTGRES_URL": try TestEnvironment.postgresURL(),
            "CAIRN_REDIS_URL": try TestEnvironment.redisURL(),
            "CAIRN_PORT": String(port),
        ])
        defer { if process.isRunning { process.terminate() } }
        #expect(await waitForExit(process, within: 20))
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(process.terminationStatus == 2, "\(text)")
        #expect(text.contains("INNGEST_SIGNING_KEY: is required"))
        #expect(text.contains("CAIRN_DEV=1"))
    }

    @Test func migrateTwiceIsANoOp() async throws {
        let schema = TestEnvironment.uniqueName("cli_")
        let base = try TestEnvironment.postgresURL()
        let url = base + (base.contains("?") ? "&" : "?") + "search_path=\(schema)"
        let env = ["CAIRN_POSTGRES_URL": url, "CAIRN_LOG_LEVEL": "warning"]

        let (first, firstOutput) = try launch("cairn", arguments: ["migrate"], environment: env)
        #expect(await waitForExit(first, within: 60))
        let firstText = String(decoding: firstOutput.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(first.terminationStatus == 0, "\(firstText)")
        #expect(firstText.contains("migrations: applied 1"))

        let (second, secondOutput) = try launch("cairn", arguments: ["migrate"], environment: env)
        #expect(await waitForExit(second, within: 60))
        let secondText = String(decoding: secondOutput.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(second.terminationStatus == 0)
        #expect(secondText.contains("migrations: schema is up to date"))
    }
}
