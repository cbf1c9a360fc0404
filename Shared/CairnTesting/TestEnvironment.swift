import Foundation

/// Where the real servers of the test run are: exported by `make test`, which starts a
/// private Redis and Postgres (deploy/local/servers.sh) before `swift test`.
public enum TestEnvironment {
    /// `CAIRN_TEST_POSTGRES_URL`, else `CAIRN_POSTGRES_URL`.
    public static func postgresURL() throws -> String {
        try value("CAIRN_TEST_POSTGRES_URL", "CAIRN_POSTGRES_URL")
    }

    /// `CAIRN_TEST_REDIS_URL`, else `CAIRN_REDIS_URL`.
    public static func redisURL() throws -> String {
        try value("CAIRN_TEST_REDIS_URL", "CAIRN_REDIS_URL")
    }

    /// A name unique to this test: `prefix` plus random lowercase letters and digits, usable
    /// as a Postgres schema or a Redis key prefix.
    public static func uniqueName(_ prefix: String) -> String {
        let alphabet = Array("abcdefghijklmnopqrstuvwxyz0123456789")
        return prefix + String((0..<12).map { _ in alphabet.randomElement()! })
    }

    private static func value(_ names: String...) throws -> String {
        let environment = ProcessInfo.processInfo.environment
        for name in names {
            if let value = environment[name], !value.isEmpty { return value }
        }
        throw MissingTestServer(variables: names)
    }
}

/// The test needs a real server and was not told where one is.
public struct MissingTestServer: Error, CustomStringConvertible {
    /// The variables that were looked up.
    public var variables: [String]
    public var description: String {
        "\(variables.joined(separator: " or ")) is not set: run the tests with `make test`, which starts private Redis and Postgres servers"
    }
}
