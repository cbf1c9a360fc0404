import CairnCore
import CairnEngine
import CairnHTTP
import CairnTesting
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import NIOPosix
import Testing

/// App sync and the registry routes over in-memory ports.
@Suite struct AppRoutesTests {
    static let key = try! SigningKey("signkey-prod-" + String(repeating: "0123456789abcdef", count: 4))
    static let fallback = try! SigningKey("signkey-prod-abcd")

    struct Fixture {
        let registry = InMemoryAppRegistry()
        let clock = ManualClock(start: Date(timeIntervalSince1970: 1_800_000_000))
        let transport: ScriptedSDKTransport
        let keys: SigningKeys?

        init(signed: Bool = false, app: @escaping @Sendable (SDKRequest) async throws -> SDKReply = { _ in SDKReply(status: 200, headers: [:], body: Array(#"{"ok":true,"modified":true}"#.utf8)) }) {
            keys = signed ? SigningKeys(primary: AppRoutesTests.key, fallback: AppRoutesTests.fallback) : nil
            transport = ScriptedSDKTransport(app)
        }

        func test(_ mode: TestingSetup = .router, _ body: @escaping @Sendable (any TestClientProtocol) async throws -> Void) async throws {
            let sync = AppSync(registry: registry, transport: transport, keys: keys, clock: clock, logger: Logger(label: "test"))
            let routes = AppRoutes(sync: sync, registry: registry, clock: clock, authorization: APIAuthorization(keys: keys))
            let router = Router()
            routes.register(on: router)
            try await Application(router: router).test(mode) { client in try await body(client) }
        }
    }

    static func body(functions: String = #"{"id":"shop-a","triggers":[{"event":"shop/a"}],"steps":{"step":{"runtime":{"type":"http","url":"http://127.0.0.1:9/api/inngest?fnId=shop-a&stepId=step"}}}}"#) -> String {
        #"{"appname":"shop","url":"http://127.0.0.1:9/api/inngest","sdk":"py:v0.5.19","framework":"flask","deploy_type":"ping","v":"0.1","functions":[\#(functions)]}"#
    }

    static func call(
        _ client: any TestClientProtocol, _ method: HTTPRequest.Method, _ uri: String, body: String? = nil, headers: HTTPFields = [:]
    ) async throws -> (HTTPResponse.Status, JSONValue) {
        try await client.execute(uri: uri, method: method, headers: headers, body: body.map { ByteBuffer(string: $0) }) { response in
            (response.status, (try? JSONValue(parsing: String(buffer: response.body))) ?? .string(String(buffer: response.body)))
        }
    }

    static func bearer(_ token: String) -> HTTPFields {
        [.authorization: "Bearer \(token)"]
    }

    @Test func registerStoresTheAppAndTheAPIListsIt() async throws {
        let fixture = Fixture()
        try await fixture.test { client in
            let (status, reply) = try await Self.call(client, .post, "/fn/register", body: Self.body())
            #expect(status == .ok)
            #expect(reply["ok"] == true)
            #expect(reply["modified"] == true)
            #expect(reply["app_id"]?.stringValue?.count == 36)
            #expect(reply["sync_id"]?.stringValue?.count == 36)

            let (_, again) = try await Self.call(client, .post, "/fn/register", body: Self.body())
            #expect(again["modified"] == false)
            #expect(again["app_id"] == reply["app_id"])

            let (appsStatus, apps) = try await Self.call(client, .get, "/v1/apps")
            #expect(appsStatus == .ok)
            #expect(apps["data"]?[0]?["name"] == "shop")
            #expect(apps["data"]?[0]?["function_count"] == 1)
            #expect(apps["metadata"]?["fetched_at"] == "2027-01-15T08:00:00.000Z")

            let (functionsStatus, functions) = try await Self.call(client, .get, "/v1/apps/shop/functions")
            #expect(functionsStatus == .ok)
            let function = try #require(functions["data"]?[0])
            #expect(function["slug"] == "shop-a")
            #expect(function["version"] == 1)
            #expect(function["triggers"] == [["event": "shop/a", "expression": nil]])
            #expect(function["retries"] == 4)
            #expect(function["config"]?["id"] == "shop-a")

            let (missing, error) = try await Self.call(client, .get, "/v1/apps/nope/functions")
            #expect(missing == .notFound)
            #expect(error["error"] == #"app: must name a synced app, got "nope""#)
        }
    }

    @Test func invalidFunctionsAreReportedAndNothingIsStored() async throws {
        let fixture = Fixture()
        try await fixture.test { client in
            let bad = #"{"id":"shop-a","triggers":[{"event":"shop/a","expression":"event.data.x ==="}],"steps":{"step":{"runtime":{"url":"http://h/"}}}},{"id":"shop-b","triggers":[{"cron":"99 * * * *"}],"steps":{"step":{"runtime":{"url":"http://h/"}}}}"#
            let (status, reply) = try await Self.call(client, .post, "/fn/register", body: Self.body(functions: bad))
            #expect(status == .badRequest)
            #expect(reply["status"] == 400)
            #expect(reply["code"] == "invalid_config")
            let errors = try #require(reply["data"]?["errors"]?.arrayValue)
            #expect(errors.map { $0["function_id"] } == ["shop-a", "shop-b"])
            #expect(errors.map { $0["field"] } == ["triggers[0].expression", "triggers[0].cron"])
            #expect(errors[1]["message"] == "minute: 99 is outside 0-59")
            #expect(reply["error"]?.stringValue?.contains(#"function "shop-b": triggers[0].cron"#) == true)
            #expect(try await fixture.registry.apps().isEmpty)

            let (notJSON, notJSONReply) = try await Self.call(client, .post, "/fn/register", body: "{nope")
            #expect(notJSON == .badRequest)
            #expect(notJSONReply["error"]?.stringValue?.hasPrefix("body: must be JSON") == true)
        }
    }

    @Test func signedModeRequiresTheKeyInAnyForm() async throws {
        let fixture = Fixture(signed: true)
        try await fixture.test { client in
            let (unsigned, reply) = try await Self.call(client, .post, "/fn/register", body: Self.body())
            #expect(unsigned == .unauthorized)
            #expect(reply["error"]?.stringValue?.hasPrefix("authorization:") == true)
            let (wrong, _) = try await Self.call(client, .post, "/fn/register", body: Self.body(), headers: Self.bearer(String(repeating: "0", count: 64)))
            #expect(wrong == .unauthorized)
            #expect(try await fixture.registry.apps().isEmpty)

            for token in [Self.key.hashed, "signkey-prod-\(Self.key.hashed)", Self.fallback.hashed] {
                let (status, _) = try await Self.call(client, .post, "/fn/register", body: Self.body(), headers: Self.bearer(token))
                #expect(status == .ok, "\(token)")
            }
            let (listUnsigned, _) = try await Self.call(client, .get, "/v1/apps")
            #expect(listUnsigned == .unauthorized)
            let (listSigned, _) = try await Self.call(client, .get, "/v1/apps", headers: Self.bearer(Self.key.hashed))
            #expect(listSigned == .ok)
        }
    }

    @Test func aServerKindMismatchIsRefused() async throws {
        let fixture = Fixture()
        try await fixture.test { client in
            var headers: HTTPFields = [:]
            headers[HTTPField.Name("x-inngest-expected-server-kind")!] = "cloud"
            let (status, reply) = try await Self.call(client, .post, "/fn/register", body: Self.body(), headers: headers)
            #expect(status == .badRequest)
            #expect(reply["code"] == "server_kind_mismatch")
            headers[HTTPField.Name("x-inngest-expected-server-kind")!] = "dev"
            let (ok, _) = try await Self.call(client, .post, "/fn/register", body: Self.body(), headers: headers)
            #expect(ok == .ok)
        }
    }

    @Test func aSlugOfAnotherAppIsAConflict() async throws {
        let fixture = Fixture()
        try await fixture.test { client in
            _ = try await Self.call(client, .post, "/fn/register", body: Self.body())
            let other = Self.body().replacingOccurrences(of: #""appname":"shop""#, with: #""appname":"other""#)
            let (status, reply) = try await Self.call(client, .post, "/fn/register", body: other)
            #expect(status == .conflict)
            #expect(reply["error"] == #"function "shop-a": the id is already used by app "shop""#)
        }
    }

    @Test func syncSendsTheSignedPUTAndRelaysTheOutcome() async throws {
        let fixture = Fixture(signed: true)
        try await fixture.test { client in
            let (status, reply) = try await Self.call(
                client, .post, "/v1/apps/sync", body: #"{"url":"http://127.0.0.1:9/api/inngest"}"#, headers: Self.bearer(Self.key.hashed))
            #expect(status == .ok)
            #expect(reply["app_reply"]?["modified"] == true)
            let sent = try #require(fixture.transport.requests.first)
            #expect(sent.method == "PUT")
            #expect(sent.url == "http://127.0.0.1:9/api/inngest")
            #expect(try JSONValue(parsing: sent.body) == ["url": "http://127.0.0.1:9/api/inngest"])
            let headers = Dictionary(uniqueKeysWithValues: sent.headers)
            #expect(headers["x-inngest-server-kind"] == "cloud")
            let keys = try #require(fixture.keys)
            #expect(keys.verify(signatureHeader: headers["x-inngest-signature"], body: sent.body, nowSeconds: 1_800_000_000) == .valid)
        }
    }

    @Test func syncReportsAnAppThatFailsOrCannotBeReached() async throws {
        let refusing = Fixture { _ in
            SDKReply(status: 200, headers: [:], body: Array(#"{"error":"invalid app configuration","status":400}"#.utf8))
        }
        try await refusing.test { client in
            let (status, reply) = try await Self.call(client, .post, "/v1/apps/sync", body: #"{"url":"http://127.0.0.1:9/api/inngest"}"#)
            #expect(status == .badGateway)
            #expect(reply["error"]?.stringValue?.contains("did not sync (HTTP 200): invalid app configuration") == true)
            #expect(refusing.transport.requests.first.map { Dictionary(uniqueKeysWithValues: $0.headers)["x-inngest-server-kind"] } == "dev")
        }
        struct Refused: Error, CustomStringConvertible { var description: String { "connection refused" } }
        let unreachable = Fixture { _ in throw Refused() }
        try await unreachable.test { client in
            let (status, reply) = try await Self.call(client, .post, "/v1/apps/sync", body: #"{"url":"http://127.0.0.1:9/api/inngest"}"#)
            #expect(status == .badGateway)
            #expect(reply["error"] == "could not reach the app at http://127.0.0.1:9/api/inngest: connection refused")
            let (bad, badReply) = try await Self.call(client, .post, "/v1/apps/sync", body: #"{"url":"ftp://x"}"#)
            #expect(bad == .badRequest)
            #expect(badReply["error"]?.stringValue?.hasPrefix("url: must be") == true)
            let (missing, _) = try await Self.call(client, .post, "/v1/apps/sync", body: #"{}"#)
            #expect(missing == .badRequest)
        }
    }

    /// Sends `head` (a request line and headers, no body) on a new connection and returns what
    /// the server answers before the connection is closed or a full response head arrives.
    static func exchange(port: Int, head: String) async throws -> String {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture { try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel) }
            }
        return try await channel.executeThenClose { inbound, outbound in
            try await outbound.write(ByteBuffer(string: head))
            var text = ""
            for try await chunk in inbound {
                text += String(buffer: chunk)
                if text.contains("\r\n\r\n") { break }
            }
            return text
        }
    }

    /// A caller without the key is refused from the headers alone: the server answers 401
    /// while the 10 MB body it announced has not been sent (were it read first, no answer
    /// would come and the time limit would fail the test).
    @Test(.timeLimit(.minutes(1)))
    func anUnauthorizedRegisterIsRefusedBeforeItsBodyIsRead() async throws {
        let fixture = Fixture(signed: true)
        try await fixture.test(.live) { client in
            let port = try #require(client.port)
            for path in ["/fn/register", "/v1/apps/sync"] {
                let answer = try await Self.exchange(
                    port: port, head: "POST \(path) HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 10000000\r\n\r\n")
                #expect(answer.hasPrefix("HTTP/1.1 401"), "\(path): \(answer)")
            }
            #expect(try await fixture.registry.apps().isEmpty)
        }
    }

    @Test func credentialsInTheAppURLAreNeverShown() async throws {
        let fixture = Fixture()
        let url = "http://deploy:pw-secret@127.0.0.1:9/api/inngest?token=tok-secret"
        let functions = #"{"id":"shop-a","triggers":[{"event":"shop/a"}],"steps":{"step":{"runtime":{"type":"http","url":"\#(url)&fnId=shop-a&stepId=step"}}}}"#
        let body = Self.body(functions: functions).replacingOccurrences(of: #""url":"http://127.0.0.1:9/api/inngest""#, with: #""url":"\#(url)""#)
        try await fixture.test { client in
            let (status, _) = try await Self.call(client, .post, "/fn/register", body: body)
            #expect(status == .ok)
            let (_, apps) = try await Self.call(client, .get, "/v1/apps")
            let (_, functionList) = try await Self.call(client, .get, "/v1/apps/shop/functions")
            let (_, synced) = try await Self.call(client, .post, "/v1/apps/sync", body: #"{"url":"\#(url)"}"#)
            // Cairn itself uses the URL as given.
            #expect(fixture.transport.requests.first?.url == url)
            for answer in [apps, functionList, synced] {
                let text = answer.jsonString
                #expect(!text.contains("pw-secret") && !text.contains("tok-secret"), "\(text)")
                #expect(text.contains("REDACTED@127.0.0.1:9"), "\(text)")
            }
        }
    }
}
