import CairnHTTP
import Hummingbird
import HummingbirdTesting
import Testing

@Suite struct UnservedRoutesTests {
    func app() -> some ApplicationProtocol {
        let router = Router()
        let unserved = UnservedRoutes<BasicRequestContext>()
        router.add(middleware: unserved)
        router.get("/v1/runs/{id}") { _, context in "run \(context.parameters.get("id") ?? "")" }
        router.delete("/v1/runs/{id}") { _, _ in "cancelled" }
        router.post("/e/{key}") { _, _ in "sent" }
        unserved.serve(router)
        return Application(router: router)
    }

    @Test func anUnknownPathIsA404NamingThePath() async throws {
        try await app().test(.router) { client in
            try await client.execute(uri: "/v1/nothing/here", method: .get) { response in
                #expect(response.status == .notFound)
                #expect(response.headers[.contentType] == "application/json")
                #expect(String(buffer: response.body).contains(#"path: must be a route Cairn serves (listed at /openapi.json), got \"/v1/nothing/here\""#))
            }
        }
    }

    @Test func aServedPathWithAnotherMethodIs405WithAllow() async throws {
        try await app().test(.router) { client in
            try await client.execute(uri: "/v1/runs/01ABC", method: .put) { response in
                #expect(response.status == .methodNotAllowed)
                #expect(response.headers[.allow] == "DELETE, GET")
                #expect(String(buffer: response.body).contains("method: must be DELETE or GET for /v1/runs/01ABC, got PUT"))
            }
            try await client.execute(uri: "/e/key", method: .get) { response in
                #expect(response.status == .methodNotAllowed)
                #expect(response.headers[.allow] == "POST")
            }
        }
    }

    @Test func headIsTheGetAnswerWithoutItsBody() async throws {
        try await app().test(.router) { client in
            try await client.execute(uri: "/v1/runs/01ABC", method: .head) { response in
                #expect(response.status == .ok)
                #expect(response.body.readableBytes == 0)
            }
            try await client.execute(uri: "/e/key", method: .head) { response in
                #expect(response.status == .methodNotAllowed)
            }
        }
    }

    @Test func servedRoutesAreUntouched() async throws {
        try await app().test(.router) { client in
            try await client.execute(uri: "/v1/runs/01ABC", method: .get) { response in
                #expect(response.status == .ok)
                #expect(String(buffer: response.body) == "run 01ABC")
            }
        }
    }
}
