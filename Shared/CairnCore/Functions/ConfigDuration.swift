/// A duration written the way SDKs write them in function configuration: `30s`, `5m`, `1h`,
/// `2d`, `1w`, or a sequence of such parts (`1h30m`), with optional fractions (`1.5h`) and the
/// small units `ms`, `us`/`µs` and `ns` (docs/protocol.md §1.2).
///
/// The value is kept in whole milliseconds (smaller parts are rounded down); `text` keeps what
/// was written, so a config round-trips unchanged.
public struct ConfigDuration: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// The duration in milliseconds.
    public let milliseconds: Int64
    /// The text as written.
    public let text: String

    /// Parses `text`; the error's `rule` says what is wrong with it.
    public init(parsing text: String) throws(ConfigDurationError) {
        let scalars = Array(text.unicodeScalars)
        guard !scalars.isEmpty else { throw ConfigDurationError(rule: "must not be empty") }
        var total = 0.0
        var index = 0
        while index < scalars.count {
            let numberStart = index
            while index < scalars.count, scalars[index] == "." || ("0"..."9").contains(scalars[index]) {
                index += 1
            }
            let number = String(String.UnicodeScalarView(scalars[numberStart..<index]))
            guard let amount = Double(number), !number.isEmpty, number != "." else {
                throw ConfigDurationError(rule: "must be a number followed by a unit (s, m, h, d, w, ms, us, ns), got \"\(text)\"")
            }
            let unitStart = index
            while index < scalars.count, !(scalars[index] == "." || ("0"..."9").contains(scalars[index])) {
                index += 1
            }
            let unit = String(String.UnicodeScalarView(scalars[unitStart..<index]))
            guard let scale = Self.unitMilliseconds[unit] else {
                let shown = unit.isEmpty ? "no unit" : "unit \"\(unit)\""
                throw ConfigDurationError(rule: "must end each number with a unit (s, m, h, d, w, ms, us, ns); \"\(text)\" has \(shown)")
            }
            total += amount * scale
        }
        guard total < Double(Int64.max / 2) else {
            throw ConfigDurationError(rule: "is too long, got \"\(text)\"")
        }
        self.milliseconds = Int64(total.rounded(.down))
        self.text = text
    }

    /// A duration of `milliseconds`, written in the largest whole unit.
    public init(milliseconds: Int64) {
        self.milliseconds = milliseconds
        for (unit, scale) in [("w", 604_800_000), ("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1_000)] as [(String, Int64)]
        where milliseconds != 0 && milliseconds % scale == 0 {
            self.text = "\(milliseconds / scale)\(unit)"
            return
        }
        self.text = "\(milliseconds)ms"
    }

    static let unitMilliseconds: [String: Double] = [
        "ns": 1e-6, "us": 1e-3, "µs": 1e-3, "μs": 1e-3, "ms": 1, "s": 1_000, "m": 60_000, "h": 3_600_000,
        "d": 86_400_000, "w": 604_800_000,
    ]

    /// Whole seconds, rounded down.
    public var seconds: Int64 { milliseconds / 1_000 }

    public var description: String { text }

    public static func < (lhs: ConfigDuration, rhs: ConfigDuration) -> Bool {
        lhs.milliseconds < rhs.milliseconds
    }

    public static func == (lhs: ConfigDuration, rhs: ConfigDuration) -> Bool {
        lhs.milliseconds == rhs.milliseconds
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(milliseconds)
    }
}

/// A duration that could not be read.
public struct ConfigDurationError: Error, Sendable, Hashable {
    /// What is wrong, with the text that was given.
    public let rule: String
}
