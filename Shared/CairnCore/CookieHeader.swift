import Foundation

/// Reading the `Cookie` request header (RFC 6265 §5.4): `name=value` pairs separated by `;`.
public enum CookieHeader {
    /// The dashboard's session cookie, which the API also reads (docs/dashboard.md).
    public static let session = "cairn_session"

    /// The value of the cookie `name` in any of the `Cookie` header lines; nil when absent.
    public static func value(_ name: String, in lines: [String]) -> String? {
        for line in lines {
            for pair in line.split(separator: ";") {
                let parts = pair.split(separator: "=", maxSplits: 1)
                if parts.count == 2, parts[0].trimmingCharacters(in: .whitespaces) == name {
                    return String(parts[1]).trimmingCharacters(in: .whitespaces)
                }
            }
        }
        return nil
    }
}
