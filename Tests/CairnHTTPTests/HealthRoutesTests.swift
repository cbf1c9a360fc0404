import CairnEngine
import CairnHTTP
import Hummingbird
import HummingbirdTesting
import Testing

struct FixedProbe: ReadinessProbe {
    struct Down: Error, CustomStringConvertible { var description: String { "ECONNREFUSED" } }
    var name: String
    var up: Bool
    func check() async throws { if !up { throw Down() } }
}

@Suite struct HealthRoutesTests {
    func app(roles: [Role], probes: [any ReadinessProbe]) -> some ApplicationProtocol {
        let router = Router()
        HealthRoutes(roles: roles, readiness: Readiness(probes: probes)).register(on: router)
        return Application(router: router)
    }

    @Test func healthzListsTheRoles() async throws {
        let app = app(roles: Role.allCases, probes: [FixedProbe(name: "postgres", up: false)])
        try await app.test(.router) { client in
            try await client.execute(uri: "/healthz", method: .get) { response in
                #expect(response.status == .ok)
                #expect(String(buffer: response.body) == #"{"status":"ok","roles":["event-api","api","scheduler","executor","gateway"]}"#)
            }
        }
    }

    @Test func readyzIsReadyOnlyWhenEveryDependencyAnswers() async throws {
        let ready = app(roles: [.api], probes: [FixedProbe(name: "postgres", up: true), FixedProbe(name: "redis", up: true)])
        try await ready.test(.router) { client in
            try await client.execute(uri: "/readyz", method: .get) { response in
                #expect(response.status == .ok)
                #expect(String(buffer: response.body) == #"{"status":"ready","checks":{"postgres":"ok","redis":"ok"}}"#)
            }
        }
        let notReady = app(roles: [.api], probes: [FixedProbe(name: "postgres", up: true), FixedProbe(name: "redis", up: false)])
        try await notReady.test(.router) { client in
            try await client.execute(uri: "/readyz", method: .get) { response in
                #expect(response.status == .serviceUnavailable)
                #expect(String(buffer: response.body) == #"{"status":"not ready","checks":{"postgres":"ok","redis":"ECONNREFUSED"}}"#)
            }
        }
    }
}
