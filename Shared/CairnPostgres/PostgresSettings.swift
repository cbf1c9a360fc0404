public import PostgresNIO
import NIOSSL
import CairnEngine

/// Where and how Cairn connects to Postgres, parsed from a URL.
///
/// Accepted forms: `postgres://[user[:password]@]host[:port]/database[?options]` (also
/// `postgresql://`), and `postgres:///database?host=/path/to/socket/dir` for a Unix socket.
/// Query options: `sslmode` (`disable`, the default, or `prefer`/`require`), `search_path`
/// (a schema; created by the migrator; isolates tests), `host` (a Unix socket directory),
/// `application_name`. Pool sizes come from configuration, not the URL.
public struct PostgresSettings: Sendable, Equatable {
    /// Host name or IP address; ignored when `unixSocketPath` is set.
    public var host: String
    /// TCP port. Default 5432.
    public var port: Int
    /// The socket file of a Unix-domain connection, when connecting over one.
    public var unixSocketPath: String?
    /// Role to connect as.
    public var username: String
    /// Password, if the server asks for one.
    public var password: String?
    /// Database name. Default: the user name.
    public var database: String
    /// Schema that Cairn's tables live in; `nil` uses the server's default (`public`).
    public var schema: String?
    /// TLS mode: `disable`, `prefer` or `require`.
    public var tlsMode: TLSMode
    /// Most connections the pool opens. Default 20.
    public var maximumConnections: Int
    /// Connections the pool keeps open when idle. Default 0.
    public var minimumConnections: Int
    /// Reported to the server as `application_name`. Default `cairn`.
    public var applicationName: String
    /// Longest a pool connection's statement may run before the server cancels it
    /// (`statement_timeout`); migrations run without it. Default 30 s.
    public var statementTimeout: Duration = .seconds(30)
    /// Longest a store's call may take (`BoundedPostgresClient`): the statement timeout plus
    /// 5 s for a transaction's other statements.
    public var callDeadline: Duration { statementTimeout + .seconds(5) }

    /// How the connection is encrypted.
    public enum TLSMode: String, Sendable, Equatable {
        case disable, prefer, require
    }

    /// Parses a Postgres URL; the error names the part that is wrong.
    public init(url: String) throws(PostgresSettingsError) {
        guard let schemeEnd = url.range(of: "://") else {
            throw PostgresSettingsError(url: url, reason: "must start with postgres:// or postgresql://")
        }
        let scheme = url[..<schemeEnd.lowerBound].lowercased()
        guard scheme == "postgres" || scheme == "postgresql" else {
            throw PostgresSettingsError(url: url, reason: "scheme must be postgres or postgresql, got \(scheme)")
        }
        var rest = Substring(url[schemeEnd.upperBound...])
        var query: Substring = ""
        if let q = rest.firstIndex(of: "?") {
            query = rest[rest.index(after: q)...]
            rest = rest[..<q]
        }
        var path: Substring = ""
        if let slash = rest.firstIndex(of: "/") {
            path = rest[rest.index(after: slash)...]
            rest = rest[..<slash]
        }
        var userInfo: Substring? = nil
        if let at = rest.lastIndex(of: "@") {
            userInfo = rest[..<at]
            rest = rest[rest.index(after: at)...]
        }

        username = "postgres"
        password = nil
        if let userInfo {
            if let colon = userInfo.firstIndex(of: ":") {
                username = Self.percentDecoded(userInfo[..<colon])
                password = Self.percentDecoded(userInfo[userInfo.index(after: colon)...])
            } else {
                username = Self.percentDecoded(userInfo)
            }
            if username.isEmpty {
                throw PostgresSettingsError(url: url, reason: "user name must not be empty")
            }
        }

        host = "127.0.0.1"
        port = 5432
        if !rest.isEmpty {
            if rest.hasPrefix("[") {
                guard let close = rest.firstIndex(of: "]") else {
                    throw PostgresSettingsError(url: url, reason: "IPv6 host is missing its closing ]")
                }
                host = String(rest[rest.index(after: rest.startIndex)..<close])
                rest = rest[rest.index(after: close)...]
                if rest.hasPrefix(":") { rest = rest.dropFirst() } else { rest = "" }
                if !rest.isEmpty { port = try Self.port(rest, url: url) }
            } else if let colon = rest.lastIndex(of: ":") {
                host = String(rest[..<colon])
                port = try Self.port(rest[rest.index(after: colon)...], url: url)
            } else {
                host = String(rest)
            }
        }
        database = path.isEmpty ? username : Self.percentDecoded(path)

        unixSocketPath = nil
        schema = nil
        tlsMode = .disable
        maximumConnections = 20
        minimumConnections = 0
        applicationName = "cairn"
        for pair in query.split(separator: "&") where !pair.isEmpty {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let key = String(parts[0])
            let value = parts.count > 1 ? Self.percentDecoded(parts[1]) : ""
            switch key {
            case "sslmode":
                guard let mode = TLSMode(rawValue: value) else {
                    throw PostgresSettingsError(url: url, reason: "sslmode must be disable, prefer or require, got \(value)")
                }
                tlsMode = mode
            case "search_path", "schema":
                guard Self.isPlainIdentifier(value) else {
                    throw PostgresSettingsError(url: url, reason: "search_path must be a plain identifier (letters, digits, _), got \(value)")
                }
                schema = value
            case "host":
                guard value.hasPrefix("/") else {
                    throw PostgresSettingsError(url: url, reason: "host option must be a socket directory starting with /, got \(value)")
                }
                unixSocketPath = value.hasSuffix("/") ? "\(value).s.PGSQL.\(port)" : "\(value)/.s.PGSQL.\(port)"
            case "application_name":
                applicationName = value
            default:
                throw PostgresSettingsError(url: url, reason: "unknown option \(key) (known: sslmode, search_path, host, application_name)")
            }
        }
    }

    /// The PostgresNIO client configuration these settings describe.
    public var clientConfiguration: PostgresClient.Configuration {
        var configuration: PostgresClient.Configuration
        if let unixSocketPath {
            configuration = .init(unixSocketPath: unixSocketPath, username: username, password: password, database: database)
        } else {
            let tls: PostgresClient.Configuration.TLS
            switch tlsMode {
            case .disable: tls = .disable
            case .prefer: tls = .prefer(.makeClientConfiguration())
            case .require: tls = .require(.makeClientConfiguration())
            }
            configuration = .init(host: host, port: port, username: username, password: password, database: database, tls: tls)
        }
        configuration.options.maximumConnections = maximumConnections
        configuration.options.minimumConnections = minimumConnections
        let milliseconds = Int64((statementTimeout.timeInterval * 1_000).rounded(.up))
        configuration.options.additionalStartupParameters = startupParameters + [("statement_timeout", String(milliseconds))]
        return configuration
    }

    /// The configuration of a single PostgresNIO connection with the same settings, for work
    /// that needs one session of its own (the migrator holds an advisory lock on it).
    public func connectionConfiguration() throws -> PostgresConnection.Configuration {
        var configuration: PostgresConnection.Configuration
        if let unixSocketPath {
            configuration = .init(unixSocketPath: unixSocketPath, username: username, password: password, database: database)
        } else {
            let tls: PostgresConnection.Configuration.TLS
            switch tlsMode {
            case .disable: tls = .disable
            case .prefer: tls = .prefer(try NIOSSLContext(configuration: .makeClientConfiguration()))
            case .require: tls = .require(try NIOSSLContext(configuration: .makeClientConfiguration()))
            }
            configuration = .init(host: host, port: port, username: username, password: password, database: database, tls: tls)
        }
        configuration.options.additionalStartupParameters = startupParameters
        return configuration
    }

    private var startupParameters: [(String, String)] {
        var startup: [(String, String)] = [("application_name", applicationName)]
        if let schema { startup.append(("search_path", schema)) }
        return startup
    }

    /// `true` for names that need no quoting: a letter or `_`, then letters, digits or `_`, at
    /// most 63 bytes.
    static func isPlainIdentifier(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, name.utf8.count <= 63 else { return false }
        let isStart = { (c: Unicode.Scalar) in c == "_" || ("a"..."z").contains(c) || ("A"..."Z").contains(c) }
        return isStart(first) && name.unicodeScalars.allSatisfy { isStart($0) || ("0"..."9").contains($0) }
    }

    private static func port(_ text: Substring, url: String) throws(PostgresSettingsError) -> Int {
        guard let port = Int(text), (1...65535).contains(port) else {
            throw PostgresSettingsError(url: url, reason: "port must be an integer from 1 to 65535, got \(text)")
        }
        return port
    }

    private static func percentDecoded(_ text: Substring) -> String {
        guard text.contains("%") else { return String(text) }
        var bytes: [UInt8] = []
        var index = text.utf8.startIndex
        let utf8 = text.utf8
        while index < utf8.endIndex {
            let byte = utf8[index]
            if byte == UInt8(ascii: "%"),
               let h1 = utf8.index(index, offsetBy: 1, limitedBy: utf8.endIndex), h1 < utf8.endIndex,
               let h2 = utf8.index(index, offsetBy: 2, limitedBy: utf8.endIndex), h2 < utf8.endIndex,
               let value = UInt8(String(decoding: [utf8[h1], utf8[h2]], as: UTF8.self), radix: 16) {
                bytes.append(value)
                index = utf8.index(after: h2)
            } else {
                bytes.append(byte)
                index = utf8.index(after: index)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// A Postgres URL that Cairn cannot use.
public struct PostgresSettingsError: Error, CustomStringConvertible, Equatable {
    /// The URL with any password replaced by `***`.
    public var url: String
    /// What is wrong with it.
    public var reason: String

    init(url: String, reason: String) {
        self.url = PostgresSettingsError.redacted(url)
        self.reason = reason
    }

    public var description: String { "invalid Postgres URL \(url): \(reason)" }

    static func redacted(_ url: String) -> String {
        guard let scheme = url.range(of: "://"), let at = url[scheme.upperBound...].lastIndex(of: "@") else { return url }
        let info = url[scheme.upperBound..<at]
        guard let colon = info.firstIndex(of: ":") else { return url }
        return url.replacingCharacters(in: url.index(after: colon)..<at, with: "***")
    }
}

extension String {
    fileprivate func replacingCharacters(in range: Range<String.Index>, with replacement: String) -> String {
        var copy = self
        copy.replaceSubrange(range, with: replacement)
        return copy
    }
}
