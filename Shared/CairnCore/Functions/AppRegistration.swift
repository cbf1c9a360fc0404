import Crypto

/// A sync as an SDK sends it to `POST /fn/register` (docs/protocol.md §1.2): the app, where it is
/// served, and its functions, parsed and checked.
///
/// Keys are read case-insensitively (`appname` from Python, `appName` from JS), and
/// `deploy_type`/`deployType` are both accepted. A sync is all or nothing: any invalid function
/// makes the whole registration invalid, and the error lists every problem found.
public struct AppRegistration: Sendable, Hashable {
    /// The app's id (`appName` on the wire).
    public var appName: String
    /// The URL the server calls the app at.
    public var url: String
    public var framework: String
    /// The SDK's language and version from `sdk` (`py:v0.5.19` → `py`, `0.5.19`).
    public var sdkLanguage: String
    public var sdkVersion: String
    public var deployType: String?
    public var deployID: String?
    public var appVersion: String?
    /// The functions, in the order sent; their slugs are unique.
    public var functions: [FunctionConfig]
    /// SHA-256 over the URL and every function's JSON as sent: equal checksums mean an
    /// unchanged app.
    public var checksum: String
    /// The registration body as sent.
    public var json: JSONObject

    /// Parses a register body.
    public init(parsing value: JSONValue) throws(AppRegistrationError) {
        guard case .object(let object) = value else {
            throw AppRegistrationError(problems: [FunctionConfigError(functionID: nil, field: "body", rule: "must be a JSON object")])
        }
        func member(_ names: String...) -> JSONValue? {
            for (key, value) in object where names.contains(where: { $0.equalsIgnoringCase(key) }) { return value }
            return nil
        }
        var problems: [FunctionConfigError] = []
        func problem(_ field: String, _ rule: String) {
            problems.append(FunctionConfigError(functionID: nil, field: field, rule: rule))
        }
        func text(_ value: JSONValue?, _ field: String) -> String? {
            switch value {
            case nil, .null?: return nil
            case .string(let text)?: return text
            case let other?:
                problem(field, "must be a string, got \(other.shortRendering)")
                return nil
            }
        }

        // Names, URLs and slugs are stored as text, which cannot hold NUL.
        for path in Self.pathsHoldingNUL(value, at: "") { problem(path, "must not contain the NUL character (U+0000)") }

        let appName = text(member("appName"), "appName") ?? ""
        if appName.isEmpty { problem("appName", "is required and must be a non-empty string") }
        if appName.utf8.count > 255 { problem("appName", "must be at most 255 bytes") }
        let url = text(member("url"), "url") ?? ""
        if !["http://", "https://", "ws://", "wss://"].contains(where: url.hasPrefix) {
            problem("url", "must be an http:// or https:// URL, or ws:// or wss:// for a connect app, got \"\(url)\"")
        }
        let sdk = text(member("sdk"), "sdk") ?? ""
        let sdkParts = sdk.split(separator: ":", maxSplits: 1)
        self.sdkLanguage = sdkParts.count == 2 ? String(sdkParts[0]) : sdk
        self.sdkVersion = sdkParts.count == 2 ? String(sdkParts[1].drop { $0 == "v" }) : ""
        self.framework = text(member("framework"), "framework") ?? ""
        self.deployType = text(member("deployType", "deploy_type"), "deployType")
        self.deployID = text(member("deployId", "deploy_id"), "deployId")
        self.appVersion = text(member("appVersion", "app_version"), "appVersion")

        var functions: [FunctionConfig] = []
        var seen: Set<String> = []
        switch member("functions") {
        case nil, .null?: break
        case .array(let elements)?:
            for (index, element) in elements.enumerated() {
                do {
                    let function = try FunctionConfig(parsing: element)
                    if !seen.insert(function.id).inserted {
                        problem("functions[\(index)].id", "\"\(function.id)\" appears more than once")
                    }
                    functions.append(function)
                } catch {
                    var located = error
                    if located.functionID == nil {
                        located.field = located.field.isEmpty ? "functions[\(index)]" : "functions[\(index)].\(located.field)"
                    }
                    problems.append(located)
                }
            }
        case let other?:
            problem("functions", "must be an array, got \(other.shortRendering)")
        }
        guard problems.isEmpty else { throw AppRegistrationError(problems: problems) }

        self.appName = appName
        self.url = url
        self.functions = functions
        self.json = object
        var hash = SHA256()
        hash.update(data: Array(url.utf8))
        for function in functions {
            hash.update(data: [0])
            hash.update(data: JSONValue.object(function.json).serialized())
        }
        self.checksum = SigningKey.hex(hash.finalize())
    }
}

/// Why a sync was refused: every problem found, each naming the function and the field.
extension AppRegistration {
    /// The paths (`functions[0].name`) of the strings and keys in `value` that hold NUL.
    static func pathsHoldingNUL(_ value: JSONValue, at path: String) -> [String] {
        switch value {
        case .string(let text): return text.utf8.contains(0) ? [path.isEmpty ? "body" : path] : []
        case .array(let elements):
            return elements.enumerated().flatMap { pathsHoldingNUL($0.element, at: "\(path)[\($0.offset)]") }
        case .object(let object):
            return object.members.flatMap { member -> [String] in
                let child = path.isEmpty ? member.key : "\(path).\(member.key)"
                return (member.key.utf8.contains(0) ? [child] : []) + pathsHoldingNUL(member.value, at: child)
            }
        case .null, .bool, .number: return []
        }
    }
}

public struct AppRegistrationError: Error, Sendable, Hashable, CustomStringConvertible {
    public var problems: [FunctionConfigError]

    public var description: String {
        "invalid app configuration: " + problems.map(\.description).joined(separator: "; ")
    }
}

extension String {
    fileprivate func equalsIgnoringCase(_ other: String) -> Bool {
        lowercased() == other.lowercased()
    }
}
