/// An event as a sender submitted it, after validation and normalization.
///
/// Invariants (kept by `EventValidation` and by `init`): `data` is always an object and has no
/// `_inngest` member when it came through validation; `user`, when present, is an object;
/// `id`, when present, is non-empty. Server-assigned values (the internal ULID, a default `ts`
/// of "now", a default `user` of `{}`) are not filled in here.
public struct Event: Sendable, Hashable {
    /// The event name, e.g. `app/user.created`: non-empty, at most
    /// `EventValidation.maximumNameLength` UTF-8 bytes.
    public var name: String
    /// The payload; always a JSON object (`{}` when the sender gave none).
    public var data: JSONValue
    /// The sender's deduplication id, or nil when none was given.
    public var id: String?
    /// When the event happened, in milliseconds since the Unix epoch, or nil when the sender
    /// gave none.
    public var ts: Int64?
    /// The sender's schema version string, or nil.
    public var v: String?
    /// Sender-supplied user context; an object when present.
    public var user: JSONValue?

    /// Creates an event from already-valid parts; `data` and `user` are objects by type.
    ///
    /// This does not apply the validation rules; use `EventValidation` for untrusted input.
    public init(
        name: String, data: JSONObject = [:], id: String? = nil, ts: Int64? = nil, v: String? = nil,
        user: JSONObject? = nil
    ) {
        self.name = name
        self.data = .object(data)
        self.id = id
        self.ts = ts
        self.v = v
        self.user = user.map(JSONValue.object)
    }

    /// The names starting with this prefix are reserved for events the server emits.
    public static let reservedNamePrefix = "inngest/"

    /// The canonical JSON object: keys in the order `name`, `data`, `id`, `ts`, `user`, `v`,
    /// with nil fields left out.
    public var jsonValue: JSONValue {
        var members: [JSONObject.Element] = [("name", .string(name)), ("data", data)]
        if let id { members.append(("id", .string(id))) }
        if let ts { members.append(("ts", .number(JSONNumber(ts)))) }
        if let user { members.append(("user", user)) }
        if let v { members.append(("v", .string(v))) }
        return .object(JSONObject(uniqueMembers: members))
    }
}
