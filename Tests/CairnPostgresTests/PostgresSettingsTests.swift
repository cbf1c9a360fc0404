import CairnPostgres
import Testing

@Suite struct PostgresSettingsTests {
    @Test func parsesFullURL() throws {
        let s = try PostgresSettings(url: "postgres://alice:s%40cret@db.internal:6543/cairn_prod?sslmode=require&search_path=tenant_1&application_name=exec")
        #expect(s.username == "alice")
        #expect(s.password == "s@cret")
        #expect(s.host == "db.internal")
        #expect(s.port == 6543)
        #expect(s.database == "cairn_prod")
        #expect(s.tlsMode == .require)
        #expect(s.schema == "tenant_1")
        #expect(s.applicationName == "exec")
        #expect(s.unixSocketPath == nil)
    }

    @Test func defaults() throws {
        let s = try PostgresSettings(url: "postgresql://cairn@localhost")
        #expect(s.port == 5432)
        #expect(s.database == "cairn")
        #expect(s.password == nil)
        #expect(s.tlsMode == .disable)
        #expect(s.schema == nil)
    }

    @Test func ipv6AndUnixSocket() throws {
        let v6 = try PostgresSettings(url: "postgres://u@[::1]:5433/d")
        #expect(v6.host == "::1")
        #expect(v6.port == 5433)
        let unix = try PostgresSettings(url: "postgres://u@:5434/d?host=/run/pg")
        #expect(unix.unixSocketPath == "/run/pg/.s.PGSQL.5434")
    }

    @Test(arguments: [
        ("mysql://u@h/d", "scheme must be postgres or postgresql"),
        ("localhost:5432", "must start with postgres://"),
        ("postgres://u@h:0/d", "port must be an integer from 1 to 65535, got 0"),
        ("postgres://u@h:abc/d", "port must be an integer from 1 to 65535, got abc"),
        ("postgres://u@h/d?sslmode=verify", "sslmode must be disable, prefer or require, got verify"),
        ("postgres://u@h/d?search_path=a;drop", "search_path must be a plain identifier"),
        ("postgres://u@h/d?pool_max=3", "unknown option pool_max"),
        ("postgres://u@h/d?host=relative", "host option must be a socket directory"),
        ("postgres://@h/d", "user name must not be empty"),
    ])
    func rejects(url: String, reason: String) {
        #expect {
            try PostgresSettings(url: url)
        } throws: { error in
            (error as? PostgresSettingsError)?.description.contains(reason) == true
        }
    }

    @Test func redactsPasswordInErrors() {
        do {
            _ = try PostgresSettings(url: "postgres://u:hunter2@h:99999/d")
            Issue.record("expected an error")
        } catch {
            #expect(!error.description.contains("hunter2"))
            #expect(error.description.contains("u:***@h"))
        }
    }
}
