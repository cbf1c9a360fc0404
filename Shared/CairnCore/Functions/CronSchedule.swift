public import Foundation

/// A cron schedule as function triggers write it: five fields (minute, hour, day of month,
/// month, day of week), optionally prefixed with `TZ=<zone> ` (or `CRON_TZ=`). Without a zone
/// the schedule runs in UTC. Descriptors (`@hourly`) are refused, as Inngest refuses them at
/// sync.
///
/// Around daylight-saving changes the schedule follows the wall clock of its zone: a local
/// time that does not exist that day (spring forward) does not fire, and one that occurs twice
/// (fall back) fires once, at its first occurrence, when the hour field names hours. With `*`
/// hours the schedule keeps its pace through the repeated hour (as classic cron does).
///
/// Fields accept `*`, numbers, ranges `a-b`, steps `*/n`, `a-b/n` and `a/n`, comma lists, and
/// names (`JAN`–`DEC`, `SUN`–`SAT`, any case). Day of week is 0–6 with Sunday 0 (7 is also
/// Sunday); `?` means `*` in the two day fields. As in classic cron, when both day fields are
/// restricted a day matches if either does; when one is `*`, only the other applies.
public struct CronSchedule: Sendable, Hashable, CustomStringConvertible {
    /// The text as written, zone prefix included.
    public let text: String
    /// The zone the fields are read in.
    public let timeZone: TimeZone
    let minutes: UInt64
    let hours: UInt64
    let daysOfMonth: UInt64
    let months: UInt64
    let daysOfWeek: UInt64
    let daysOfMonthIsStar: Bool
    let hoursIsStar: Bool
    let daysOfWeekIsStar: Bool

    /// Parses `text`; the error's `rule` names the field and what is wrong.
    public init(parsing text: String) throws(CronScheduleError) {
        var rest = Substring(text.trimmingCharacters(in: .whitespaces))
        var zone = TimeZone(identifier: "UTC")!
        for prefix in ["TZ=", "CRON_TZ="] where rest.hasPrefix(prefix) {
            let afterPrefix = rest.dropFirst(prefix.count)
            let name = afterPrefix.prefix { $0 != " " && $0 != "\t" }
            guard let parsed = TimeZone(identifier: String(name)), !name.isEmpty else {
                throw CronScheduleError(rule: "TZ: unknown time zone \"\(name)\" (use an IANA name such as Europe/Paris)")
            }
            zone = parsed
            rest = afterPrefix.dropFirst(name.count).drop { $0 == " " || $0 == "\t" }
        }
        let fields = rest.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        if fields.count == 1, fields[0].hasPrefix("@") {
            throw CronScheduleError(rule: "descriptors such as \"\(fields[0])\" are not accepted; write the 5 fields (0 * * * * for @hourly)")
        }
        guard fields.count == 5 else {
            throw CronScheduleError(rule: "must have 5 fields (minute hour day-of-month month day-of-week), got \(fields.count) in \"\(text)\"")
        }
        self.text = text
        self.timeZone = zone
        minutes = try Self.field(fields[0], name: "minute", range: 0...59, names: [:])
        hours = try Self.field(fields[1], name: "hour", range: 0...23, names: [:])
        daysOfMonth = try Self.field(fields[2], name: "day-of-month", range: 1...31, names: [:])
        months = try Self.field(fields[3], name: "month", range: 1...12, names: Self.monthNames)
        var weekdays = try Self.field(fields[4], name: "day-of-week", range: 0...7, names: Self.weekdayNames)
        if weekdays & (1 << 7) != 0 { weekdays |= 1 }
        daysOfWeek = weekdays & 0x7F
        daysOfMonthIsStar = fields[2] == "*" || fields[2] == "?"
        hoursIsStar = fields[1] == "*"
        daysOfWeekIsStar = fields[4] == "*" || fields[4] == "?"
    }

    public var description: String { text }

    /// The first time strictly after `date` (to the minute) at which the schedule fires, or nil
    /// if none falls within the next five years (for example `0 0 30 2 *`).
    public func next(after date: Date) -> Date? {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        let startSeconds = (date.timeIntervalSince1970 / 60).rounded(.down) * 60 + 60
        var time = Date(timeIntervalSince1970: startSeconds)
        let limit = date.addingTimeInterval(5 * 366 * 86_400)
        while time < limit {
            let parts = calendar.dateComponents([.year, .month, .day, .hour, .minute, .weekday], from: time)
            guard let month = parts.month, let day = parts.day, let hour = parts.hour, let minute = parts.minute,
                let weekday = parts.weekday
            else { return nil }
            if months & (1 << UInt64(month)) == 0 {
                var first = DateComponents(year: parts.year, month: month, day: 1)
                first.hour = 0
                guard let startOfMonth = calendar.date(from: first),
                    let nextMonth = calendar.date(byAdding: .month, value: 1, to: startOfMonth)
                else { return nil }
                time = nextMonth
                continue
            }
            if !dayMatches(day: day, weekday: weekday - 1) {
                guard let nextDay = calendar.date(byAdding: .day, value: 1, to: calendar.startOfDay(for: time)) else { return nil }
                time = nextDay
                continue
            }
            if hours & (1 << UInt64(hour)) == 0 {
                // The next local hour boundary (also right in zones with half-hour offsets).
                time = time.addingTimeInterval(Double((60 - minute) * 60))
                continue
            }
            if minutes & (1 << UInt64(minute)) == 0 || isRepeatedWallClock(time, calendar: calendar) {
                time = time.addingTimeInterval(60)
                continue
            }
            return time
        }
        return nil
    }

    /// Whether the local time at `time` already occurred earlier (the clocks went back).
    func isRepeatedWallClock(_ time: Date, calendar: Calendar) -> Bool {
        if hoursIsStar { return false }
        let earlier = time.addingTimeInterval(-3 * 3_600)
        let shift = timeZone.secondsFromGMT(for: earlier) - timeZone.secondsFromGMT(for: time)
        guard shift > 0 else { return false }
        let fields: Set<Calendar.Component> = [.year, .month, .day, .hour, .minute]
        return calendar.dateComponents(fields, from: time.addingTimeInterval(-Double(shift)))
            == calendar.dateComponents(fields, from: time)
    }

    func dayMatches(day: Int, weekday: Int) -> Bool {
        let domMatch = daysOfMonth & (1 << UInt64(day)) != 0
        let dowMatch = daysOfWeek & (1 << UInt64(weekday)) != 0
        if daysOfMonthIsStar || daysOfWeekIsStar { return domMatch && dowMatch }
        return domMatch || dowMatch
    }

    static let monthNames: [String: Int] = [
        "jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6, "jul": 7, "aug": 8, "sep": 9, "oct": 10,
        "nov": 11, "dec": 12,
    ]
    static let weekdayNames: [String: Int] = ["sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6]

    /// The bit set of the values `text` selects within `range`.
    static func field(_ text: String, name: String, range: ClosedRange<Int>, names: [String: Int]) throws(CronScheduleError) -> UInt64 {
        func value(_ token: Substring) throws(CronScheduleError) -> Int {
            if let number = Int(token) {
                guard range.contains(number) else {
                    throw CronScheduleError(rule: "\(name): \(number) is outside \(range.lowerBound)-\(range.upperBound)")
                }
                return number
            }
            if let named = names[token.lowercased()] { return named }
            throw CronScheduleError(rule: "\(name): \"\(token)\" is not a number or a name")
        }
        var bits: UInt64 = 0
        for item in text.split(separator: ",", omittingEmptySubsequences: false) {
            var base = item
            var step = 1
            if let slash = item.firstIndex(of: "/") {
                base = item[..<slash]
                guard let parsed = Int(item[item.index(after: slash)...]), parsed >= 1 else {
                    throw CronScheduleError(rule: "\(name): step in \"\(item)\" must be a positive integer")
                }
                step = parsed
            }
            var low: Int
            var high: Int
            if base == "*" || (base == "?" && (name == "day-of-month" || name == "day-of-week")) {
                low = range.lowerBound
                high = name == "day-of-week" ? 6 : range.upperBound
            } else if let dash = base.firstIndex(of: "-") {
                low = try value(base[..<dash])
                high = try value(base[base.index(after: dash)...])
                guard low <= high else {
                    throw CronScheduleError(rule: "\(name): range \"\(base)\" runs backwards")
                }
            } else if !base.isEmpty {
                low = try value(base)
                high = step > 1 ? range.upperBound : low
            } else {
                throw CronScheduleError(rule: "\(name): empty item in \"\(text)\"")
            }
            for selected in stride(from: low, through: high, by: step) { bits |= 1 << UInt64(selected) }
        }
        return bits
    }
}

/// A cron schedule that could not be read.
public struct CronScheduleError: Error, Sendable, Hashable {
    /// The field and what is wrong with it.
    public let rule: String
}
