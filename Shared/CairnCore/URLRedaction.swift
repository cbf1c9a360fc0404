import Foundation

/// Keeps credentials that live inside URLs out of everything Cairn shows: stored run errors,
/// system events, API answers and logs. An app's URL may carry `user:password@` or a token in
/// its query; Cairn uses the URL as given to call the app, and shows it redacted.
public enum URLRedaction {
    /// What replaces a secret.
    public static let placeholder = "REDACTED"
    /// Query parameters the SDK protocol itself puts in a URL; their values are kept.
    static let protocolParameters: Set<String> = ["fnId", "stepId", "deployId", "probe"]

    /// `url` with its user information and every query value but the protocol's own replaced
    /// by `REDACTED`. Text that is not an absolute URL comes back unchanged.
    public static func redact(_ url: some StringProtocol) -> String {
        guard let schemeEnd = url.range(of: "://") else { return String(url) }
        var result = String(url[..<schemeEnd.upperBound])
        let rest = url[schemeEnd.upperBound...]
        let authorityEnd = rest.firstIndex { $0 == "/" || $0 == "?" || $0 == "#" } ?? rest.endIndex
        let authority = rest[..<authorityEnd]
        if let at = authority.lastIndex(of: "@") {
            result += placeholder + authority[at...]
        } else {
            result += authority
        }
        let tail = rest[authorityEnd...]
        guard let question = tail.firstIndex(of: "?") else { return result + tail }
        result += tail[...question]
        let queryEnd = tail[question...].firstIndex(of: "#") ?? tail.endIndex
        let query = tail[tail.index(after: question)..<queryEnd]
        result += query.split(separator: "&", omittingEmptySubsequences: false).map { pair -> String in
            guard let equals = pair.firstIndex(of: "=") else { return pair.isEmpty ? "" : placeholder }
            let name = pair[..<equals]
            return protocolParameters.contains(String(name)) ? String(pair) : name + "=" + placeholder
        }.joined(separator: "&")
        return result + tail[queryEnd...]
    }

    /// `text` with every `http://` or `https://` URL in it redacted; a URL ends at whitespace,
    /// a quote or an angle bracket.
    public static func redactingURLs(in text: String) -> String {
        guard text.contains("://") else { return text }
        var result = ""
        var rest = Substring(text)
        while let start = firstURLStart(in: rest) {
            result += rest[..<start]
            let end = rest[start...].firstIndex { $0.isWhitespace || "\"'<>`".contains($0) } ?? rest.endIndex
            result += redact(rest[start..<end])
            rest = rest[end...]
        }
        return result + rest
    }

    /// `value` with every URL in its strings redacted (an SDK's function config, as shown).
    public static func redactingURLs(in value: JSONValue) -> JSONValue {
        switch value {
        case .string(let text): .string(redactingURLs(in: text))
        case .array(let elements): .array(elements.map(redactingURLs(in:)))
        case .object(let object): .object(JSONObject(members: object.members.map { ($0.key, redactingURLs(in: $0.value)) }))
        case .null, .bool, .number: value
        }
    }

    static func firstURLStart(in text: Substring) -> Substring.Index? {
        ["http://", "https://"].compactMap { text.range(of: $0, options: .caseInsensitive)?.lowerBound }.min()
    }
}
