/// Why a run failed. `body` is the error as its origin gave it: an app's reply body, kept
/// exactly as the SDK sent it (`{name, message, stack, code?}`), or an error Cairn made
/// (`{name, message}`). The run stores and the API returns `body` unchanged. `summary` is
/// the one line the standard error of `function.failed` carries as `error`
/// (docs/protocol.md §7): for an app's failure, the reply's status.
public struct RunFailure: Sendable, Hashable {
    public var body: JSONValue
    public var summary: String

    public init(body: JSONValue, summary: String) {
        self.body = body
        self.summary = summary
    }

    /// A failure the app reported in a reply with HTTP status `status`.
    public static func app(_ body: JSONValue, status: Int) -> RunFailure {
        RunFailure(body: body, summary: "invalid status code: \(status)")
    }

    /// A failure Cairn decided (a limit, an unsupported or invalid operation, an app that did
    /// not answer).
    public static func cairn(name: String, message: String) -> RunFailure {
        RunFailure(body: ["name": .string(name), "message": .string(message)], summary: message)
    }

    /// The error as `function.failed` and `function.finished` carry it: `{error, name,
    /// message, stack?, cause?}`. The fields come from the body (or from its `error` object,
    /// when it wraps one); `error` is the body's own `error` text, else the summary.
    public var standardError: JSONValue {
        var source = body
        if let wrapped = body["error"], wrapped.objectValue != nil { source = wrapped }
        func text(_ key: String) -> String? {
            source[key]?.stringValue.flatMap { $0.isEmpty ? nil : $0 }
        }
        var members: [(String, JSONValue)] = [
            ("error", .string(text("error") ?? summary)), ("name", .string(text("name") ?? "Error")),
            ("message", .string(text("message") ?? summary)),
        ]
        if let stack = text("stack") { members.append(("stack", .string(stack))) }
        if let cause = source["cause"], !cause.isNull { members.append(("cause", cause)) }
        return .object(JSONObject(members: members))
    }
}
