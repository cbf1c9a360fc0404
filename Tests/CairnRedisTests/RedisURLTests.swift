import CairnRedis
import Testing

@Suite struct RedisURLTests {
    struct Valid: Sendable, CustomTestStringConvertible {
        var text: String
        var endpoint: RedisURL.Endpoint
        var username: String? = nil
        var password: String? = nil
        var database = 0
        var testDescription: String { text }
    }

    static let valid: [Valid] = [
        Valid(text: "redis://localhost", endpoint: .tcp(host: "localhost", port: 6379)),
        Valid(text: "redis://127.0.0.1:6390/3", endpoint: .tcp(host: "127.0.0.1", port: 6390), database: 3),
        Valid(text: "redis://host/", endpoint: .tcp(host: "host", port: 6379)),
        Valid(text: "REDIS://Host:1", endpoint: .tcp(host: "Host", port: 1)),
        Valid(text: "redis://:secret@host", endpoint: .tcp(host: "host", port: 6379), password: "secret"),
        Valid(
            text: "redis://alice:p%40ss%3A1@cache.internal:1234/2", endpoint: .tcp(host: "cache.internal", port: 1234),
            username: "alice", password: "p@ss:1", database: 2),
        Valid(text: "redis://[::1]:7000/1", endpoint: .tcp(host: "::1", port: 7000), database: 1),
        Valid(text: "redis://[::1]", endpoint: .tcp(host: "::1", port: 6379)),
        Valid(text: "redis://host?db=4", endpoint: .tcp(host: "host", port: 6379), database: 4),
        Valid(
            text: "redis://host:6380/?password=pw&user=bob", endpoint: .tcp(host: "host", port: 6380),
            username: "bob", password: "pw"),
        Valid(text: "unix:///tmp/redis.sock", endpoint: .unixSocket(path: "/tmp/redis.sock")),
        Valid(
            text: "unix:///var/run/redis%20x.sock?db=2&password=pw",
            endpoint: .unixSocket(path: "/var/run/redis x.sock"),
            password: "pw", database: 2),
        Valid(
            text: "unix://:pw@/var/run/redis.sock?db=1", endpoint: .unixSocket(path: "/var/run/redis.sock"),
            password: "pw", database: 1),
        Valid(
            text: "unix://bob:pw@/s.sock", endpoint: .unixSocket(path: "/s.sock"), username: "bob", password: "pw"),
    ]

    @Test(arguments: valid)
    func parsesValidURL(_ case: Valid) throws {
        let url = try RedisURL(`case`.text)
        #expect(url.endpoint == `case`.endpoint)
        #expect(url.username == `case`.username)
        #expect(url.password == `case`.password)
        #expect(url.database == `case`.database)
    }

    struct Invalid: Sendable, CustomTestStringConvertible {
        var text: String
        var code: RedisURLError.Code
        var mentions: String
        var testDescription: String { text }
    }

    static let invalid: [Invalid] = [
        Invalid(text: "http://host", code: .unsupportedScheme, mentions: "\"http\""),
        Invalid(text: "localhost:6379", code: .unsupportedScheme, mentions: "redis://host:port/db"),
        Invalid(text: "rediss://host", code: .unsupportedScheme, mentions: "TLS"),
        Invalid(text: "redis://", code: .missingHost, mentions: "host is missing"),
        Invalid(text: "redis://:pw@:6379", code: .missingHost, mentions: "host is missing"),
        Invalid(text: "redis://[::1:6379", code: .missingHost, mentions: "\"]\""),
        Invalid(text: "redis://host:0", code: .invalidPort, mentions: "got \"0\""),
        Invalid(text: "redis://host:abc", code: .invalidPort, mentions: "got \"abc\""),
        Invalid(text: "redis://host:70000", code: .invalidPort, mentions: "1...65535"),
        Invalid(text: "redis://host:", code: .invalidPort, mentions: "got \"\""),
        Invalid(text: "redis://host/abc", code: .invalidDatabase, mentions: "\"/abc\""),
        Invalid(text: "redis://host/-1", code: .invalidDatabase, mentions: "non-negative"),
        Invalid(text: "redis://host/1?db=2", code: .invalidDatabase, mentions: "both"),
        Invalid(text: "unix:///s.sock?db=x", code: .invalidDatabase, mentions: "got \"x\""),
        Invalid(text: "redis://alice@host", code: .invalidUserInfo, mentions: "without a password"),
        Invalid(text: "redis://:p%zzss@host", code: .invalidPercentEncoding, mentions: "password"),
        Invalid(text: "redis://:p%ffss@host", code: .invalidPercentEncoding, mentions: "UTF-8"),
        Invalid(text: "redis://host?foo=1", code: .invalidQuery, mentions: "\"foo\""),
        Invalid(text: "redis://host?db", code: .invalidQuery, mentions: "no value"),
        Invalid(text: "unix://", code: .missingHost, mentions: "socket path is missing"),
        Invalid(text: "unix://somehost/path.sock", code: .malformed, mentions: "three slashes"),
        Invalid(text: "redis://:pw@host?password=pw2", code: .invalidUserInfo, mentions: "both"),
    ]

    @Test(arguments: invalid)
    func rejectsInvalidURL(_ case: Invalid) {
        do {
            let url = try RedisURL(`case`.text)
            Issue.record("expected \(`case`.code) for \(`case`.text), parsed \(url)")
        } catch {
            #expect(error.code == `case`.code)
            #expect(error.description.contains(`case`.mentions), "\(error.description)")
            #expect(error.description.hasPrefix("redis URL \""))
        }
    }

    @Test func passwordsNeverAppearInDescriptions() throws {
        let url = try RedisURL("redis://alice:hunter2@host:6380/4")
        #expect(url.description == "redis://alice:***@host:6380/4")
        let socket = try RedisURL("unix:///run/r.sock?password=hunter2&db=3")
        #expect(socket.description == "unix://:***@/run/r.sock?db=3")
        do {
            _ = try RedisURL("redis://:hunter2@host:bad")
            Issue.record("expected a port error")
        } catch {
            #expect(!error.description.contains("hunter2"), "\(error.description)")
            #expect(error.description.contains("***"))
        }
        do {
            _ = try RedisURL("unix:///s.sock?password=hunter2&db=x")
            Issue.record("expected a db error")
        } catch {
            #expect(!error.description.contains("hunter2"), "\(error.description)")
        }
    }

    @Test func configurationDefaults() throws {
        let configuration = try RedisConfiguration(url: "redis://localhost")
        #expect(configuration.poolSize == 8)
        #expect(configuration.connectTimeout == .seconds(5))
        #expect(configuration.reconnectBackoff.initial == .milliseconds(50))
        #expect(configuration.reconnectBackoff.maximum == .seconds(2))
        #expect(configuration.clientName == nil)
    }

    @Test func backoffGrowsToItsCapWithJitter() {
        let backoff = RedisReconnectBackoff()
        #expect(backoff.delay(afterFailures: 0) == .zero)
        for _ in 0..<100 {
            let first = backoff.delay(afterFailures: 1)
            #expect(first >= .milliseconds(25) && first <= .milliseconds(50))
            let third = backoff.delay(afterFailures: 3)
            #expect(third >= .milliseconds(100) && third <= .milliseconds(200))
            let late = backoff.delay(afterFailures: 40)
            #expect(late >= .seconds(1) && late <= .seconds(2))
        }
    }
}
