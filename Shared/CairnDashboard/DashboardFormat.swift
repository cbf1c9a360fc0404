import CairnCore
import Foundation

/// How values read on a page: times in UTC with milliseconds (and RFC 3339 for `<time>`),
/// durations at a useful precision, JSON indented and cut at a size a browser shows at once.
enum DashboardFormat {
    /// `2026-12-03 11:40:02.123`, UTC.
    static func time(_ date: Date) -> String {
        let text = RFC3339.format(milliseconds: date.unixMilliseconds)
        return text.replacingOccurrences(of: "T", with: " ").replacingOccurrences(of: "Z", with: "")
    }

    /// The value of a `<time>` element: `{"text", "iso"}`.
    static func stamp(_ date: Date?) -> [String: Any]? {
        guard let date else { return nil }
        return ["text": time(date), "iso": RFC3339.format(milliseconds: date.unixMilliseconds)]
    }

    static func duration(_ seconds: Double) -> String {
        let seconds = max(0, seconds)
        if seconds < 0.001 { return String(format: "%.0f µs", seconds * 1_000_000) }
        if seconds < 1 { return String(format: "%.1f ms", seconds * 1000) }
        if seconds < 60 { return String(format: "%.2f s", seconds) }
        if seconds < 3600 { return String(format: "%d min %02d s", Int(seconds) / 60, Int(seconds) % 60) }
        return String(format: "%d h %02d min", Int(seconds) / 3600, (Int(seconds) % 3600) / 60)
    }

    /// Bytes for people: `812 B`, `14.2 KiB`, `2.0 MiB`.
    static func bytes(_ count: Int) -> String {
        if count < 1024 { return "\(count) B" }
        if count < 1024 * 1024 { return String(format: "%.1f KiB", Double(count) / 1024) }
        return String(format: "%.1f MiB", Double(count) / 1024 / 1024)
    }

    /// What a page shows of a large JSON value: the start of it; the whole value stays one click
    /// away through the REST API.
    static let shownJSONBytes = 64 * 1024

    /// `{"text": indented JSON (cut at shownJSONBytes), "bytes": size, "size": "2.0 MiB", "cut": Bool}`.
    static func json(_ value: JSONValue) -> [String: Any] {
        let size = value.serialized().count
        var text = pretty(value)
        let cut = text.utf8.count > shownJSONBytes
        if cut { text = String(decoding: text.utf8.prefix(shownJSONBytes), as: UTF8.self) + "\n…" }
        return ["text": text, "bytes": size, "size": bytes(size), "cut": cut]
    }

    /// JSON indented by two spaces, members in their recorded order.
    static func pretty(_ value: JSONValue) -> String {
        var output: [UInt8] = []
        write(value, indent: 0, to: &output)
        return String(decoding: output, as: UTF8.self)
    }

    private static func write(_ value: JSONValue, indent: Int, to output: inout [UInt8]) {
        func pad(_ level: Int) { output.append(contentsOf: repeatElement(UInt8(ascii: " "), count: level * 2)) }
        switch value {
        case .array(let items) where !items.isEmpty:
            output.append(UInt8(ascii: "["))
            for (index, item) in items.enumerated() {
                output.append(contentsOf: index == 0 ? [0x0A] : [UInt8(ascii: ","), 0x0A])
                pad(indent + 1)
                write(item, indent: indent + 1, to: &output)
            }
            output.append(0x0A)
            pad(indent)
            output.append(UInt8(ascii: "]"))
        case .object(let object) where !object.isEmpty:
            output.append(UInt8(ascii: "{"))
            for (index, member) in object.enumerated() {
                output.append(contentsOf: index == 0 ? [0x0A] : [UInt8(ascii: ","), 0x0A])
                pad(indent + 1)
                JSONValue.writeString(member.key, to: &output)
                output.append(contentsOf: [UInt8(ascii: ":"), UInt8(ascii: " ")])
                write(member.value, indent: indent + 1, to: &output)
            }
            output.append(0x0A)
            pad(indent)
            output.append(UInt8(ascii: "}"))
        default:
            value.write(to: &output)
        }
    }

    /// A date-time form value: RFC 3339, or the `datetime-local` form `2026-12-03T11:40`
    /// (read as UTC). Nil when empty; throws naming the field otherwise.
    static func formDate(_ text: String?, field: String) throws -> Date? {
        guard let text = text?.trimmingCharacters(in: .whitespaces), !text.isEmpty else { return nil }
        if let milliseconds = RFC3339.parseMilliseconds(text) { return Date(timeIntervalSince1970: Double(milliseconds) / 1000) }
        for suffix in [":00Z", "Z"] {
            if let milliseconds = RFC3339.parseMilliseconds(text + suffix) { return Date(timeIntervalSince1970: Double(milliseconds) / 1000) }
        }
        throw DashboardPageError.invalid("\(field): must be a date-time such as 2026-12-03T11:40 (UTC) or RFC 3339, got \"\(text)\"")
    }

    /// The `datetime-local` value of a date, for refilling a form.
    static func formValue(_ date: Date?) -> String {
        guard let date else { return "" }
        return String(RFC3339.format(milliseconds: date.unixMilliseconds).prefix(16))
    }
}
