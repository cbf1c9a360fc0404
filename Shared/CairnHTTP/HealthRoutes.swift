public import CairnEngine
public import Hummingbird

/// `/healthz` and `/readyz`, served by every role.
///
/// - `GET /healthz` answers 200 while the process runs: `{"status":"ok","roles":[...]}` lists
///   the roles this process plays (all five under `cairn dev`). It checks no dependency, so an
///   orchestrator restarts only a process that is truly stuck.
/// - `GET /readyz` answers 200 only when every probe (Postgres, Redis) answers, else 503; the
///   body lists each dependency with `ok` or the reason it is not ready.
public struct HealthRoutes: Sendable {
    /// The roles reported by `/healthz`.
    public let roles: [Role]
    /// The dependencies `/readyz` checks.
    public let readiness: Readiness

    /// Creates the routes for a process playing `roles`.
    public init(roles: [Role], readiness: Readiness) {
        self.roles = roles
        self.readiness = readiness
    }

    /// Registers both routes on `router`.
    public func register<Context: RequestContext>(on router: Router<Context>) {
        let roles = self.roles
        let readiness = self.readiness
        router.get("/healthz") { _, _ -> Response in
            let names = roles.map { JSONText.quoted($0.rawValue) }.joined(separator: ",")
            return JSONText.response(status: .ok, body: "{\"status\":\"ok\",\"roles\":[\(names)]}")
        }
        router.get("/readyz") { _, _ -> Response in
            let results = await readiness.check()
            let ready = results.allSatisfy(\.isReady)
            let checks = results.map { result in
                "\(JSONText.quoted(result.name)):\(JSONText.quoted(result.failure ?? "ok"))"
            }.joined(separator: ",")
            let body = "{\"status\":\(JSONText.quoted(ready ? "ready" : "not ready")),\"checks\":{\(checks)}}"
            return JSONText.response(status: ready ? .ok : .serviceUnavailable, body: body)
        }
    }
}

/// Small JSON bodies written directly, without an encoder round trip.
enum JSONText {
    /// `text` as a JSON string literal.
    static func quoted(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case let c where c.value < 0x20:
                let hex = String(c.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    /// A JSON response with `body`.
    static func response(status: HTTPResponse.Status, body: String) -> Response {
        Response(
            status: status,
            headers: [.contentType: "application/json"],
            body: ResponseBody(byteBuffer: ByteBuffer(string: body))
        )
    }
}
