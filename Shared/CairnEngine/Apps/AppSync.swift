public import CairnCore
public import Foundation
public import Logging

/// App sync: the SDK's `POST /fn/register`, and the `PUT` to an app that makes it register
/// (docs/protocol.md §1).
///
/// Outside dev mode (signing keys configured) a register call must carry
/// `Authorization: Bearer <key or its hash>`; in dev mode it may be unsigned. The server kind
/// Cairn announces follows the same switch: `dev` without keys, `cloud` with them, so SDKs in
/// either mode accept the sync.
public struct AppSync: Sendable {
    /// What Cairn tells SDKs it is.
    public enum ServerKind: String, Sendable {
        case dev, cloud
    }

    /// A reply for the HTTP layer to send as JSON.
    public struct Reply: Sendable {
        public var status: Int
        public var body: JSONValue
    }

    let registry: any AppRegistry
    let transport: any SDKTransport
    let keys: SigningKeys?
    let clock: any WallClock
    let logger: Logger
    /// How long the app may take to answer the sync `PUT` (it registers before answering).
    public var syncTimeout: Duration = .seconds(30)

    public init(registry: any AppRegistry, transport: any SDKTransport, keys: SigningKeys?, clock: any WallClock, logger: Logger) {
        self.registry = registry
        self.transport = transport
        self.keys = keys
        self.clock = clock
        self.logger = logger
    }

    public var serverKind: ServerKind { keys == nil ? .dev : .cloud }

    /// The reply that refuses a register call from its headers alone (a missing or wrong key, a
    /// server-kind mismatch), or nil. The HTTP layer asks before reading the body.
    public func refusal(authorization: String?, expectedServerKind: String?) -> Reply? {
        if let keys, !keys.authorizes(authorization: authorization) {
            return Self.failure(401, "authorization: must be Bearer <signing key or its hash>")
        }
        if let expected = expectedServerKind?.lowercased(), !expected.isEmpty, expected != serverKind.rawValue {
            return Self.failure(
                400, "x-inngest-expected-server-kind: the SDK expects a \(expected) server, but Cairn runs in \(serverKind.rawValue) mode",
                code: "server_kind_mismatch")
        }
        return nil
    }

    /// Handles a register call: checks who is calling, parses and checks the app, records it.
    ///
    /// Replies 200 `{"ok":true,"modified":…,"sync_id":…,"app_id":…}`; 401 for a missing or
    /// wrong key; 400 `{"error":…,"status":400,…}` for a server-kind mismatch, a body that is
    /// not JSON, or invalid functions (then `data.errors` lists each with `function_id`,
    /// `field` and `message`), and 409 when a slug belongs to another app. Nothing is recorded
    /// unless the whole app is valid.
    public func register(body: [UInt8], authorization: String?, expectedServerKind: String?) async throws -> Reply {
        if let refusal = refusal(authorization: authorization, expectedServerKind: expectedServerKind) { return refusal }
        let value: JSONValue
        do {
            value = try JSONValue(parsing: body)
        } catch {
            return Self.failure(400, "body: must be JSON: \(error)")
        }
        let registration: AppRegistration
        do {
            registration = try AppRegistration(parsing: value)
        } catch {
            let errors = error.problems.map { problem -> JSONValue in
                .object([
                    "function_id": problem.functionID.map(JSONValue.string) ?? .null,
                    "field": .string(problem.field), "message": .string(problem.rule),
                ])
            }
            logger.notice("sync refused", metadata: ["error": "\(error)"])
            return Self.failure(400, error.description, code: "invalid_config", data: .object(["errors": .array(errors)]))
        }
        let outcome: AppSyncOutcome
        do {
            outcome = try await registry.sync(registration, at: clock.now)
        } catch let conflict as AppSyncConflict {
            return Self.failure(409, conflict.description, code: "function_id_conflict")
        }
        logger.info(
            "app synced",
            metadata: [
                "app": "\(registration.appName)", "url": "\(URLRedaction.redact(registration.url))", "modified": "\(outcome.modified)",
                "added": "\(outcome.added.count)", "changed": "\(outcome.changed.count)", "archived": "\(outcome.archived.count)",
            ])
        return Reply(
            status: 200,
            body: .object([
                "ok": true, "modified": .bool(outcome.modified),
                "sync_id": .string(outcome.syncID.uuidString.lowercased()),
                "app_id": .string(outcome.appID.uuidString.lowercased()),
            ]))
    }

    /// Asks the app at `url` to sync: sends it the `PUT` an SDK expects (signed outside dev
    /// mode, with `X-Inngest-Server-Kind`), and waits for its answer, which comes after the
    /// app has called `POST /fn/register`.
    ///
    /// Replies 200 `{"ok":true,"url":…,"app_reply":…}` when the app reports success; 400 for
    /// a URL that is not http(s); 502 when the app cannot be reached or reports a failure,
    /// with the app's message.
    public func requestSync(url: String) async -> Reply {
        guard let parsed = URL(string: url), ["http", "https"].contains(parsed.scheme?.lowercased() ?? ""), parsed.host != nil else {
            return Self.failure(400, "url: must be the app's http:// or https:// serve URL, got \"\(URLRedaction.redact(url))\"")
        }
        let body = JSONValue.object(["url": .string(url)]).serialized()
        var headers = [("content-type", "application/json"), ("x-inngest-server-kind", serverKind.rawValue)]
        if let keys {
            let seconds = Int64(clock.now.timeIntervalSince1970.rounded(.down))
            headers.append(("x-inngest-signature", keys.primary.signatureHeader(body: body, unixSeconds: seconds)))
        }
        let reply: SDKReply
        do {
            reply = try await transport.send(SDKRequest(method: "PUT", url: url, headers: headers, body: body, timeout: syncTimeout))
        } catch {
            return Self.failure(502, "could not reach the app at \(URLRedaction.redact(url)): \(URLRedaction.redactingURLs(in: "\(error)"))")
        }
        let replyBody = (try? JSONValue(parsing: reply.body)) ?? .string(String(decoding: reply.body.prefix(2_048), as: UTF8.self))
        let message = replyBody["error"]?.stringValue ?? replyBody["message"]?.stringValue
        let failed = !(200..<300).contains(reply.status) || replyBody["error"] != nil
            || (replyBody["status"]?.int64Value).map { !(200..<300).contains($0) } == true
        if failed {
            return Self.failure(
                502, "the app at \(URLRedaction.redact(url)) did not sync (HTTP \(reply.status)): \(message ?? "no message")", data: replyBody)
        }
        return Reply(status: 200, body: .object(["ok": true, "url": .string(URLRedaction.redact(url)), "app_reply": replyBody]))
    }

    static func failure(_ status: Int, _ message: String, code: String? = nil, data: JSONValue? = nil) -> Reply {
        var members: [(String, JSONValue)] = [("error", .string(message)), ("status", .number(JSONNumber(status)))]
        if let code { members.append(("code", .string(code))) }
        if let data { members.append(("data", data)) }
        return Reply(status: status, body: .object(JSONObject(members: members)))
    }
}
