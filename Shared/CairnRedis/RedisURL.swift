/// Where a Redis server is and how to log in to it, parsed from a URL.
///
/// Accepted forms:
/// - `redis://[user:password@]host[:port][/db]` — port defaults to 6379, db to 0; `host` may be
///   a name, an IPv4 address or a bracketed IPv6 address (`[::1]`). `redis://:password@host`
///   gives a password without a user name (the `default` user).
/// - `unix:///path/to/redis.sock[?db=N][&password=P][&user=U]` — also
///   `unix://user:password@/path/to/redis.sock` (userinfo before the absolute path).
/// - `redis://host/?db=N` and `?password=` / `?user=` query parameters are accepted on both
///   forms; giving the database both in the path and in the query is an error.
///
/// Contract:
/// - The user, password and socket path are percent-decoded.
/// - Invariants of a parsed value: port in 1...65535, database ≥ 0, socket path absolute,
///   a user name never without a password.
/// - `description` hides the password, so a `RedisURL` is safe to log.
public struct RedisURL: Sendable, Hashable, CustomStringConvertible {
    /// How to reach the server.
    public enum Endpoint: Sendable, Hashable {
        /// A TCP host and port.
        case tcp(host: String, port: Int)
        /// A unix domain socket at an absolute path.
        case unixSocket(path: String)
    }

    /// How to reach the server.
    public var endpoint: Endpoint
    /// The ACL user for `AUTH user password`; `nil` authenticates as the default user.
    public var username: String?
    /// The password for `AUTH`; `nil` skips `AUTH`.
    public var password: String?
    /// The database index to `SELECT` on connect (0 skips `SELECT`).
    public var database: Int

    /// The port Redis listens on unless told otherwise.
    public static let defaultPort = 6379

    /// Creates a URL from its parts.
    ///
    /// - Precondition: `database >= 0`; a `username` comes with a `password`.
    public init(endpoint: Endpoint, username: String? = nil, password: String? = nil, database: Int = 0) {
        precondition(database >= 0, "Redis database index must be >= 0")
        precondition(username == nil || password != nil, "a Redis user name needs a password")
        self.endpoint = endpoint
        self.username = username
        self.password = password
        self.database = database
    }

    /// Parses a `redis://` or `unix://` URL.
    ///
    /// - Throws: `RedisURLError` naming the part that is wrong and what was found.
    public init(_ text: String) throws(RedisURLError) {
        self = try RedisURLParser(text: text).parse()
    }

    /// The URL with the password replaced by `***`.
    public var description: String {
        var userinfo = ""
        if password != nil {
            userinfo = "\(username ?? ""):***@"
        }
        let query = database == 0 ? "" : (isUnix ? "?db=\(database)" : "/\(database)")
        switch endpoint {
        case .tcp(let host, let port):
            let shownHost = host.contains(":") ? "[\(host)]" : host
            return "redis://\(userinfo)\(shownHost):\(port)\(query)"
        case .unixSocket(let path):
            return "unix://\(userinfo)\(path)\(query)"
        }
    }

    private var isUnix: Bool {
        if case .unixSocket = endpoint { return true }
        return false
    }
}

/// Why a Redis URL could not be parsed.
///
/// Contract: `description` says which part is wrong and what was found; the URL it quotes has
/// its password hidden, so the error is safe to log and to show.
public struct RedisURLError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The kind of problem.
    public enum Code: String, Sendable, Hashable {
        /// The scheme is not `redis` or `unix` (TLS `rediss` is not supported).
        case unsupportedScheme
        /// There is no host (TCP) or no socket path (unix).
        case missingHost
        /// The port is not an integer in 1...65535.
        case invalidPort
        /// The database is not a non-negative integer, or is given twice.
        case invalidDatabase
        /// A `%` escape is malformed or decodes to invalid UTF-8.
        case invalidPercentEncoding
        /// The user information is malformed (e.g. a user name without a password).
        case invalidUserInfo
        /// A query parameter is unknown or malformed.
        case invalidQuery
        /// The URL has a part this form does not allow (e.g. a path other than the db).
        case malformed
    }

    /// The kind of problem.
    public var code: Code
    /// The URL as given, with its password hidden.
    public var url: String
    /// What is wrong, in words.
    public var reason: String

    /// `redis URL "<url>": <reason>`.
    public var description: String {
        "redis URL \"\(url)\": \(reason)"
    }
}

/// A hand-written parser for the two URL forms; no Foundation, so behaviour is the same on every
/// platform.
private struct RedisURLParser {
    let text: String

    func parse() throws(RedisURLError) -> RedisURL {
        guard let schemeEnd = text.firstRange(of: "://") else {
            throw fail(.unsupportedScheme, "expected redis://host:port/db or unix:///path/to/socket")
        }
        let scheme = text[..<schemeEnd.lowerBound].lowercased()
        let rest = text[schemeEnd.upperBound...]
        switch scheme {
        case "redis": return try parseTCP(rest)
        case "unix", "redis+unix": return try parseUnix(rest)
        case "rediss": throw fail(.unsupportedScheme, "TLS (rediss://) is not supported")
        default:
            throw fail(.unsupportedScheme, "scheme must be redis or unix, got \"\(scheme)\"")
        }
    }

    private func parseTCP(_ rest: Substring) throws(RedisURLError) -> RedisURL {
        let (beforeQuery, query) = splitQuery(rest)
        let authorityEnd = beforeQuery.firstIndex(of: "/") ?? beforeQuery.endIndex
        let authority = beforeQuery[..<authorityEnd]
        let path = beforeQuery[authorityEnd...]

        let (credentials, hostPort) = try splitUserInfo(authority)
        var host: Substring
        var portText: Substring?
        if hostPort.hasPrefix("[") {
            guard let close = hostPort.firstIndex(of: "]") else {
                throw fail(.missingHost, "IPv6 host is missing its closing \"]\"")
            }
            host = hostPort[hostPort.index(after: hostPort.startIndex)..<close]
            let afterBracket = hostPort[hostPort.index(after: close)...]
            if !afterBracket.isEmpty {
                guard afterBracket.hasPrefix(":") else {
                    throw fail(.malformed, "unexpected \"\(afterBracket)\" after the IPv6 host")
                }
                portText = afterBracket.dropFirst()
            }
        } else if let colon = hostPort.lastIndex(of: ":") {
            host = hostPort[..<colon]
            portText = hostPort[hostPort.index(after: colon)...]
        } else {
            host = hostPort
        }
        guard !host.isEmpty else {
            throw fail(.missingHost, "host is missing (write redis://host:port/db)")
        }
        var port = RedisURL.defaultPort
        if let portText {
            guard let value = Int(portText), (1...65535).contains(value) else {
                throw fail(.invalidPort, "port must be an integer in 1...65535, got \"\(portText)\"")
            }
            port = value
        }

        var database: Int?
        let dbText = path.dropFirst()  // the "/"
        if !dbText.isEmpty {
            guard let value = Int(dbText), value >= 0 else {
                throw fail(
                    .invalidDatabase, "path must be a database index (a non-negative integer), got \"/\(dbText)\"")
            }
            database = value
        }
        var parameters = try parseQuery(query)
        if parameters.database != nil, database != nil {
            throw fail(.invalidDatabase, "database is given both in the path and as ?db=")
        }
        parameters.database = parameters.database ?? database
        return try build(endpoint: .tcp(host: String(host), port: port), credentials, parameters)
    }

    private func parseUnix(_ rest: Substring) throws(RedisURLError) -> RedisURL {
        let (beforeQuery, query) = splitQuery(rest)
        let pathStart = beforeQuery.firstIndex(of: "/") ?? beforeQuery.endIndex
        let authority = beforeQuery[..<pathStart]
        let (credentials, host) = try splitUserInfo(authority)
        guard host.isEmpty || host == "localhost" else {
            throw fail(
                .malformed,
                "a unix socket URL has no host; write unix:///absolute/path (three slashes), got host \"\(host)\"")
        }
        let path = try percentDecode(beforeQuery[pathStart...], part: "socket path")
        guard path.count > 1 else {
            throw fail(.missingHost, "socket path is missing (write unix:///path/to/redis.sock)")
        }
        let parameters = try parseQuery(query)
        return try build(endpoint: .unixSocket(path: path), credentials, parameters)
    }

    private struct Credentials {
        var username: String?
        var password: String?
        var hasUserWithoutPassword = false
    }

    private struct QueryParameters {
        var database: Int?
        var username: String?
        var password: String?
    }

    private func build(
        endpoint: RedisURL.Endpoint, _ credentials: Credentials, _ parameters: QueryParameters
    ) throws(RedisURLError) -> RedisURL {
        if parameters.password != nil, credentials.password != nil {
            throw fail(.invalidUserInfo, "password is given both before \"@\" and as ?password=")
        }
        let username = credentials.username ?? parameters.username
        let password = credentials.password ?? parameters.password
        if username != nil, password == nil {
            throw fail(
                .invalidUserInfo,
                "user name without a password; write user:password@ (or :password@ for the default user)")
        }
        return RedisURL(endpoint: endpoint, username: username, password: password, database: parameters.database ?? 0)
    }

    private func splitQuery(_ text: Substring) -> (Substring, Substring?) {
        guard let mark = text.firstIndex(of: "?") else { return (text, nil) }
        return (text[..<mark], text[text.index(after: mark)...])
    }

    private func splitUserInfo(_ authority: Substring) throws(RedisURLError) -> (Credentials, Substring) {
        guard let at = authority.lastIndex(of: "@") else { return (Credentials(), authority) }
        let userinfo = authority[..<at]
        let hostPart = authority[authority.index(after: at)...]
        var credentials = Credentials()
        if let colon = userinfo.firstIndex(of: ":") {
            let user = try percentDecode(userinfo[..<colon], part: "user name")
            credentials.username = user.isEmpty ? nil : user
            credentials.password = try percentDecode(userinfo[userinfo.index(after: colon)...], part: "password")
        } else if !userinfo.isEmpty {
            credentials.username = try percentDecode(userinfo, part: "user name")
        }
        return (credentials, hostPart)
    }

    private func parseQuery(_ query: Substring?) throws(RedisURLError) -> QueryParameters {
        var parameters = QueryParameters()
        guard let query, !query.isEmpty else { return parameters }
        for pair in query.split(separator: "&", omittingEmptySubsequences: true) {
            guard let equals = pair.firstIndex(of: "=") else {
                throw fail(.invalidQuery, "query parameter \"\(pair)\" has no value (write name=value)")
            }
            let name = pair[..<equals]
            let value = pair[pair.index(after: equals)...]
            switch name {
            case "db":
                guard parameters.database == nil else {
                    throw fail(.invalidDatabase, "db is given more than once")
                }
                guard let index = Int(value), index >= 0 else {
                    throw fail(.invalidDatabase, "db must be a non-negative integer, got \"\(value)\"")
                }
                parameters.database = index
            case "password":
                parameters.password = try percentDecode(value, part: "password")
            case "user", "username":
                parameters.username = try percentDecode(value, part: "user name")
            default:
                throw fail(
                    .invalidQuery, "unknown query parameter \"\(name)\" (supported: db, password, user)")
            }
        }
        return parameters
    }

    private func percentDecode(_ text: Substring, part: String) throws(RedisURLError) -> String {
        guard text.contains("%") else { return String(text) }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count)
        var iterator = text.utf8.makeIterator()
        while let byte = iterator.next() {
            guard byte == UInt8(ascii: "%") else {
                bytes.append(byte)
                continue
            }
            guard let high = iterator.next().flatMap(hexValue), let low = iterator.next().flatMap(hexValue) else {
                throw fail(.invalidPercentEncoding, "\(part) has a malformed %-escape (expected %XX)")
            }
            bytes.append(high << 4 | low)
        }
        guard let decoded = String(validating: bytes, as: UTF8.self) else {
            throw fail(.invalidPercentEncoding, "\(part) decodes to invalid UTF-8")
        }
        return decoded
    }

    private func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    private func fail(_ code: RedisURLError.Code, _ reason: String) -> RedisURLError {
        RedisURLError(code: code, url: redacted, reason: reason)
    }

    /// The input with anything between the scheme's `://`+userinfo colon and `@` hidden, and
    /// `password=` values hidden.
    private var redacted: String {
        var result = text
        if let schemeEnd = result.firstRange(of: "://") {
            let afterScheme = result[schemeEnd.upperBound...]
            let authorityEnd = afterScheme.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? afterScheme.endIndex
            let authority = afterScheme[..<authorityEnd]
            if let at = authority.lastIndex(of: "@"), let colon = authority[..<at].firstIndex(of: ":") {
                result.replaceSubrange(result.index(after: colon)..<at, with: "***")
            }
        }
        if let passwordRange = result.firstRange(of: "password=") {
            let valueEnd = result[passwordRange.upperBound...].firstIndex(of: "&") ?? result.endIndex
            result.replaceSubrange(passwordRange.upperBound..<valueEnd, with: "***")
        }
        return result
    }
}
