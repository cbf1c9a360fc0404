import ArgumentParser
import AsyncHTTPClient
import CairnCore
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// What the benchmarks' SDK stubs share: serving on a free port, syncing themselves the way an
/// SDK does, and posting JSON to Cairn.
enum Stub {
    static let headers: HTTPFields = [
        .contentType: "application/json", HTTPField.Name("x-inngest-sdk")!: "cairn-stub:v1",
        HTTPField.Name("x-inngest-req-version")!: "1",
    ]

    /// Serves `router` on a free loopback port and runs `body` with the stub's serve URL
    /// (`http://127.0.0.1:<port>/api/inngest`); the server stops when `body` returns.
    static func serve(_ router: Router<BasicRequestContext>, _ body: @escaping @Sendable (String) async throws -> Void) async throws {
        let (ports, portContinuation) = AsyncStream.makeStream(of: Int.self)
        var logger = Logger(label: "cairn-bench.stub")
        logger.logLevel = .critical
        let app = Application(
            router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { channel in portContinuation.yield(channel.localAddress?.port ?? 0) }, logger: logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await app.runService() }
            var iterator = ports.makeAsyncIterator()
            guard let port = await iterator.next() else { throw ValidationError("the stub did not start") }
            try await body("http://127.0.0.1:\(port)/api/inngest")
            group.cancelAll()
        }
    }

    /// Registers app `name` served at `url` with `functions` at Cairn's `/fn/register` (what
    /// an SDK does when Cairn sends the sync PUT), and answers the PUT with Cairn's reply.
    static func register(api: String, name: String, url: String, functions: [JSONValue]) async throws -> Response {
        let body: JSONValue = [
            "appname": .string(name), "url": .string(url), "sdk": "stub:v1", "framework": "bench", "v": "0.1",
            "functions": .array(functions),
        ]
        var request = HTTPClientRequest(url: "\(api)/fn/register")
        request.method = .POST
        request.headers.add(name: "content-type", value: "application/json")
        request.body = .bytes(ByteBuffer(bytes: body.serialized()))
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        let reply = try await response.body.collect(upTo: 1 << 20)
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: reply))
    }

    /// A function of the stub: `slug` under `cairn-bench-<prefix>`, one HTTP step at `url`.
    static func function(_ id: String, slug: String, url: String, triggers: [JSONValue], options: [(String, JSONValue)] = []) -> JSONValue {
        var members: [(String, JSONValue)] = [
            ("id", .string(id)), ("name", .string(slug)), ("triggers", .array(triggers)),
            ("steps", ["step": ["id": "step", "name": "step", "runtime": ["type": "http", "url": .string("\(url)?fnId=\(slug)&stepId=step")]]]),
        ]
        members += options
        return .object(JSONObject(members: members))
    }

    /// POSTs `body` as JSON; the status and the body's text.
    static func post(_ url: String, body: JSONValue) async throws -> (status: Int, body: String) {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "content-type", value: "application/json")
        request.body = .bytes(ByteBuffer(bytes: body.serialized()))
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(60))
        let text = String(buffer: try await response.body.collect(upTo: 1 << 20))
        return (Int(response.status.code), text)
    }
}
