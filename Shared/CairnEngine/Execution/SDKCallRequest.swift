public import CairnCore
public import Foundation

/// The HTTP request that calls a function (docs/protocol.md §2).
public enum SDKCallRequest {
    /// The largest call body sent with the run's state inline: 4 MiB.
    public static let maximumRequestBytes = 4 * 1024 * 1024

    /// Builds the call for `call` on `snapshot`'s run.
    ///
    /// The body carries the run's events, every recorded step (in the order recorded) and the
    /// context the SDKs require. `ctx.fn_id` is left out on purpose: it would switch JS SDKs to
    /// a checkpointing API Cairn does not serve. With signing keys the body is written with
    /// sorted keys (JCS), the form SDKs canonicalize to before checking the signature.
    public static func make(
        snapshot: RunSnapshot, call: SDKCall, maxAttempts: Int, version: Int, keys: SigningKeys?, now: Date, timeout: Duration,
        disableImmediateExecution: Bool = false
    ) throws -> SDKRequest {
        guard let step = snapshot.function.steps.first else {
            throw SDKResponseError(reason: "function \(snapshot.function.id) has no step to call")
        }
        let url = callURL(step.url, functionID: snapshot.function.id, stepID: call.stepID)

        var steps: [(String, JSONValue)] = []
        steps.reserveCapacity(snapshot.stack.count)
        for id in snapshot.stack { steps.append((id, snapshot.steps[id] ?? .null)) }
        let stack: JSONValue = .array(snapshot.stack.map(JSONValue.string))
        let context: JSONValue = .object(JSONObject(members: [
            ("run_id", .string(snapshot.runID.description)), ("attempt", .number(JSONNumber(call.attempt))),
            ("max_attempts", .number(JSONNumber(maxAttempts))), ("step_id", .string(call.stepID)), ("env", ""),
            ("disable_immediate_execution", .bool(disableImmediateExecution)), ("use_api", false),
            ("stack", .object(JSONObject(members: [("stack", stack), ("current", .number(JSONNumber(snapshot.stack.count)))]))),
        ]))
        func body(useAPI: Bool) -> JSONValue {
            var context = context
            context.setValue(.bool(useAPI), forKey: "use_api")
            return .object(JSONObject(members: [
                ("event", snapshot.events.first ?? .object([:])), ("events", .array(useAPI ? [] : snapshot.events)),
                ("steps", .object(JSONObject(members: useAPI ? [] : steps))), ("ctx", context),
                ("version", .number(JSONNumber(version))), ("use_api", .bool(useAPI)),
            ]))
        }
        var headers = [
            ("content-type", "application/json"), ("x-inngest-server-kind", keys == nil ? "dev" : "cloud"),
            ("x-run-id", snapshot.runID.description),
        ]
        // A request over 4 MiB carries no events or steps; the SDK fetches them from
        // /v0/runs/{id}/batch and /v0/runs/{id}/actions instead (docs/protocol.md §2).
        var value = body(useAPI: false)
        if keys != nil { value = value.sortingKeys() }
        var bytes = value.serialized()
        if bytes.count > maximumRequestBytes {
            value = body(useAPI: true)
            if keys != nil { value = value.sortingKeys() }
            bytes = value.serialized()
        }
        if let keys {
            headers.append(("x-inngest-signature", keys.primary.signatureHeader(body: bytes, unixSeconds: Int64(now.timeIntervalSince1970))))
        }
        return SDKRequest(method: "POST", url: url, headers: headers, body: bytes, timeout: timeout)
    }

    /// The function's step URL with `fnId` and `stepId` set to the call's and every other query
    /// parameter kept as it is. Plain string work: this runs for every call of every step.
    static func callURL(_ url: String, functionID: String, stepID: String) -> String {
        var base = Substring(url)
        var fragment: Substring = ""
        if let hash = base.firstIndex(of: "#") {
            fragment = base[hash...]
            base = base[..<hash]
        }
        var query: [Substring] = []
        if let mark = base.firstIndex(of: "?") {
            query = base[base.index(after: mark)...].split(separator: "&").filter { pair in
                let name = pair.prefix(while: { $0 != "=" })
                return name != "fnId" && name != "stepId"
            }
            base = base[..<mark]
        }
        query.append("fnId=" + percentEncoded(functionID))
        query.append("stepId=" + percentEncoded(stepID))
        return base + "?" + query.joined(separator: "&") + fragment
    }

    /// `value` with every byte but RFC 3986's unreserved characters percent-encoded.
    static func percentEncoded(_ value: String) -> Substring {
        if value.utf8.allSatisfy(isUnreserved) { return Substring(value) }
        var encoded = ""
        for byte in value.utf8 {
            if isUnreserved(byte) {
                encoded.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                encoded += "%" + String(byte >> 4, radix: 16, uppercase: true) + String(byte & 0xF, radix: 16, uppercase: true)
            }
        }
        return Substring(encoded)
    }

    private static func isUnreserved(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
            UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
            true
        default:
            false
        }
    }
}

extension JSONValue {
    /// The same value with every object's keys in JCS order (by UTF-16 code units).
    func sortingKeys() -> JSONValue {
        switch self {
        case .object(let object):
            let members = object.members.map { ($0.key, $0.value.sortingKeys()) }.sorted { $0.0.utf16.lexicographicallyPrecedes($1.0.utf16) }
            return .object(JSONObject(members: members))
        case .array(let elements):
            return .array(elements.map { $0.sortingKeys() })
        default:
            return self
        }
    }
}
