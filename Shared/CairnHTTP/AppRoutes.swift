import CairnCore
public import CairnEngine
import Foundation
public import Hummingbird
import HTTPTypes
import NIOCore

/// App sync and the app registry over HTTP.
///
/// - `POST /fn/register` — the SDK's register call (docs/protocol.md §1.2); replies as `AppSync`
///   describes.
/// - `POST /v1/apps/sync` `{"url": "<serve URL>"}` — makes Cairn send the app the `PUT` that
///   starts a sync; what `cairn sync URL` calls.
/// - `GET /v1/apps` — every app with its SDK, URL, checksum and function count.
/// - `GET /v1/apps/{app}/functions` — the app's live functions: slug, version, the parsed
///   triggers and options, and `config`, the object exactly as the SDK sent it.
public struct AppRoutes: Sendable {
    let sync: AppSync
    let registry: any AppRegistry
    let responses: RESTResponses
    let authorization: APIAuthorization
    /// Largest register body accepted: 16 MiB, room for hundreds of functions.
    public static let maximumRegisterBytes = 16 * 1024 * 1024

    public init(sync: AppSync, registry: any AppRegistry, clock: any WallClock, authorization: APIAuthorization) {
        self.sync = sync
        self.registry = registry
        self.responses = RESTResponses(clock: clock)
        self.authorization = authorization
    }

    static let expectedServerKind = HTTPField.Name("x-inngest-expected-server-kind")!

    /// Registers the routes on `router`.
    public func register<Context: RequestContext>(on router: Router<Context>) {
        router.post("/fn/register") { request, _ -> Response in
            // Who is calling is decided from the headers, before a byte of the body is read.
            let authorization = request.headers[.authorization], expectedServerKind = request.headers[Self.expectedServerKind]
            if let refusal = self.sync.refusal(authorization: authorization, expectedServerKind: expectedServerKind) {
                return Self.response(refusal)
            }
            guard let body = try await RESTResponses.collectBody(request, upTo: Self.maximumRegisterBytes) else {
                return RESTResponses.error(.contentTooLarge, "body: must be at most \(Self.maximumRegisterBytes) bytes")
            }
            let reply = try await self.sync.register(body: Array(buffer: body), authorization: authorization, expectedServerKind: expectedServerKind)
            return Self.response(reply)
        }
        router.post("/v1/apps/sync") { request, _ -> Response in
            if let refusal = await self.authorization.refusal(request) { return refusal }
            guard let body = try await RESTResponses.collectBody(request, upTo: 64 * 1024) else {
                return RESTResponses.error(.contentTooLarge, "body: must be at most 65536 bytes")
            }
            guard let value = try? JSONValue(parsing: Array(buffer: body)), case .string(let url)? = value["url"] else {
                return RESTResponses.error(.badRequest, "url: is required, as {\"url\": \"http://host:port/api/inngest\"}")
            }
            return Self.response(await self.sync.requestSync(url: url))
        }
        router.get("/v1/apps") { request, _ -> Response in
            if let refusal = await self.authorization.refusal(request) { return refusal }
            let apps = try await self.registry.apps()
            return self.responses.envelope(data: .array(apps.map(Self.render)))
        }
        router.get("/v1/apps/:app/functions") { request, context -> Response in
            if let refusal = await self.authorization.refusal(request) { return refusal }
            let name = context.parameters.get("app") ?? ""
            guard let functions = try await self.registry.functions(appName: name) else {
                return RESTResponses.error(.notFound, "app: must name a synced app, got \(JSONText.quoted(name))")
            }
            return self.responses.envelope(data: .array(functions.map(FunctionRendering.render)))
        }
    }

    static func response(_ reply: AppSync.Reply) -> Response {
        JSONText.response(status: HTTPResponse.Status(code: reply.status), body: reply.body.jsonString)
    }

    static func render(_ app: AppRecord) -> JSONValue {
        .object([
            "id": .string(app.id.uuidString.lowercased()), "name": .string(app.name), "url": .string(URLRedaction.redact(app.url)),
            "sdk_language": .string(app.sdkLanguage), "sdk_version": .string(app.sdkVersion),
            "framework": .string(app.framework), "checksum": .string(app.checksum),
            "function_count": .number(JSONNumber(app.functionCount)),
            "created_at": RESTResponses.render(app.createdAt), "synced_at": RESTResponses.render(app.syncedAt),
        ])
    }
}

/// A function as the REST API shows it: identity and version, then every option as Cairn
/// understood it (durations in milliseconds next to the text sent), then the config as sent.
enum FunctionRendering {
    static func render(_ record: FunctionRecord) -> JSONValue {
        let config = record.config
        var members: [(String, JSONValue)] = [
            ("id", .string(record.id.uuidString.lowercased())), ("slug", .string(config.id)), ("name", .string(config.name)),
            ("app", .string(record.appName)), ("version", .number(JSONNumber(record.version))),
            ("triggers", .array(config.triggers.map(trigger))),
            ("steps", .array(config.steps.map { step in
                .object(["id": .string(step.id), "name": .string(step.name), "type": .string(step.runtimeType), "url": .string(URLRedaction.redact(step.url))])
            })),
            ("retries", .number(JSONNumber(config.retries))),
            ("concurrency", .array(config.concurrency.map(concurrencyLimit))),
        ]
        if let throttle = config.throttle {
            members.append(("throttle", .object([
                "limit": .number(JSONNumber(throttle.limit)), "period": duration(throttle.period),
                "burst": .number(JSONNumber(throttle.burst)), "key": optional(throttle.key),
            ])))
        }
        if let rateLimit = config.rateLimit {
            members.append(("rate_limit", .object([
                "limit": .number(JSONNumber(rateLimit.limit)), "period": duration(rateLimit.period), "key": optional(rateLimit.key),
            ])))
        }
        if let idempotency = config.idempotency { members.append(("idempotency", .string(idempotency))) }
        if let debounce = config.debounce {
            members.append(("debounce", .object([
                "period": duration(debounce.period), "key": optional(debounce.key),
                "timeout": debounce.timeout.map(duration) ?? .null,
            ])))
        }
        if let batch = config.batchEvents {
            members.append(("batch_events", .object([
                "max_size": .number(JSONNumber(batch.maxSize)), "timeout": duration(batch.timeout),
                "key": optional(batch.key), "if": optional(batch.condition),
            ])))
        }
        if !config.cancel.isEmpty {
            members.append(("cancel", .array(config.cancel.map { cancel in
                .object(["event": .string(cancel.event), "if": optional(cancel.condition), "timeout": cancel.timeout.map(duration) ?? .null])
            })))
        }
        if let priority = config.priority { members.append(("priority", .object(["run": optional(priority.run)]))) }
        if let timeouts = config.timeouts {
            members.append(("timeouts", .object([
                "start": timeouts.start.map(duration) ?? .null, "finish": timeouts.finish.map(duration) ?? .null,
            ])))
        }
        if let singleton = config.singleton {
            members.append(("singleton", .object(["key": optional(singleton.key), "mode": .string(singleton.mode.rawValue)])))
        }
        members += [
            ("created_at", RESTResponses.render(record.createdAt)), ("updated_at", RESTResponses.render(record.updatedAt)),
            ("config", URLRedaction.redactingURLs(in: .object(config.json))),
        ]
        return .object(JSONObject(members: members))
    }

    static func trigger(_ trigger: FunctionTrigger) -> JSONValue {
        switch trigger {
        case .event(let name, let expression):
            return .object(["event": .string(name), "expression": optional(expression)])
        case .cron(let schedule, let jitter):
            return .object([
                "cron": .string(schedule.text), "timezone": .string(schedule.timeZone.identifier),
                "jitter": jitter.map(duration) ?? .null,
            ])
        }
    }

    /// A concurrency limit as the function view and `GET /v1/queues` show it.
    static func concurrencyLimit(_ limit: ConcurrencyLimit) -> JSONValue {
        .object([
            "limit": .number(JSONNumber(limit.limit)), "key": optional(limit.key), "scope": .string(limit.scope.rawValue),
            "run_level": .bool(limit.wholeRun),
        ])
    }

    static func duration(_ duration: ConfigDuration) -> JSONValue {
        .object(["text": .string(duration.text), "ms": .number(JSONNumber(duration.milliseconds))])
    }

    static func optional(_ text: String?) -> JSONValue {
        text.map(JSONValue.string) ?? .null
    }
}
