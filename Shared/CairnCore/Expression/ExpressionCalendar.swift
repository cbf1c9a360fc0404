/// Calendar arithmetic, timestamp and duration text for the expression language: proleptic
/// Gregorian calendar, UTC or fixed offsets only (no time-zone database), pure arithmetic.
enum ExpressionCalendar {
    // MARK: Civil dates

    /// Days since 1970-01-01 of a proleptic Gregorian date (month 1–12).
    static func days(year: Int64, month: Int64, day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let monthIndex = month > 2 ? month - 3 : month + 9
        let dayOfYear = (153 * monthIndex + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    /// Year, month (1–12) and day (1–31) of a day count since 1970-01-01.
    static func civil(days: Int64) -> (year: Int64, month: Int64, day: Int64) {
        let shifted = days + 719_468
        let era = (shifted >= 0 ? shifted : shifted - 146_096) / 146_097
        let dayOfEra = shifted - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
        let month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    static func daysInMonth(year: Int64, month: Int64) -> Int64 {
        switch month {
        case 2: return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    /// Floor division and its non-negative remainder.
    static func floorDivide(_ value: Int64, _ divisor: Int64) -> (Int64, Int64) {
        let quotient = value >= 0 ? value / divisor : (value - divisor + 1) / divisor
        return (quotient, value - quotient * divisor)
    }

    // MARK: Fields

    /// The broken-down local time of a timestamp at a fixed offset from UTC.
    struct Fields {
        var year: Int64
        var month: Int64
        var day: Int64
        var hour: Int64
        var minute: Int64
        var second: Int64
        var nanosecond: Int64
        var dayOfWeek: Int64
        var dayOfYear: Int64
    }

    static func fields(of timestamp: ExpressionTimestamp, offsetSeconds: Int64) -> Fields {
        let local = timestamp.seconds + offsetSeconds
        let (days, secondOfDay) = floorDivide(local, 86_400)
        let (year, month, day) = civil(days: days)
        let dayOfWeek = floorDivide(days + 4, 7).1  // 1970-01-01 was a Thursday
        let dayOfYear = days - Self.days(year: year, month: 1, day: 1)
        return Fields(
            year: year, month: month, day: day, hour: secondOfDay / 3600, minute: secondOfDay % 3600 / 60,
            second: secondOfDay % 60, nanosecond: Int64(timestamp.nanoseconds), dayOfWeek: dayOfWeek,
            dayOfYear: dayOfYear)
    }

    // MARK: Formatting

    /// RFC 3339 with the fraction digits needed and `Z` (offset 0) or `±hh:mm`.
    static func format(_ timestamp: ExpressionTimestamp, offsetSeconds: Int64) -> String {
        let f = fields(of: timestamp, offsetSeconds: offsetSeconds)
        var text = "\(pad(f.year, 4))-\(pad(f.month, 2))-\(pad(f.day, 2))T\(pad(f.hour, 2)):\(pad(f.minute, 2)):\(pad(f.second, 2))"
        if f.nanosecond != 0 {
            var fraction = pad(f.nanosecond, 9)
            while fraction.hasSuffix("0") { fraction.removeLast() }
            text += "." + fraction
        }
        if offsetSeconds == 0 { return text + "Z" }
        let sign = offsetSeconds < 0 ? "-" : "+"
        let magnitude = abs(offsetSeconds)
        return text + "\(sign)\(pad(magnitude / 3600, 2)):\(pad(magnitude % 3600 / 60, 2))"
    }

    private static func pad(_ value: Int64, _ width: Int) -> String {
        let text = String(value)
        return text.count >= width ? text : String(repeating: "0", count: width - text.count) + text
    }

    // MARK: Parsing

    /// A cursor over ASCII text.
    private struct Scanner {
        let bytes: [UInt8]
        var index = 0

        init(_ text: String) { bytes = Array(text.utf8) }

        var atEnd: Bool { index == bytes.count }

        mutating func digits(_ count: Int) -> Int64? {
            guard index + count <= bytes.count else { return nil }
            var value: Int64 = 0
            for offset in 0..<count {
                let byte = bytes[index + offset]
                guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
                value = value * 10 + Int64(byte - UInt8(ascii: "0"))
            }
            index += count
            return value
        }

        mutating func take(_ byte: UInt8) -> Bool {
            guard index < bytes.count, bytes[index] == byte else { return false }
            index += 1
            return true
        }

        mutating func take(oneOf options: [UInt8]) -> Bool {
            guard index < bytes.count, options.contains(bytes[index]) else { return false }
            index += 1
            return true
        }
    }

    /// Parses `YYYY-MM-DD`, then optionally `THH:MM:SS[.fraction]`, then a zone `Z` or
    /// `±HH:MM`. `requireTime` and `requireZone` select RFC 3339 strictly; without a zone the
    /// time is UTC. Nil when the text does not match or a field is out of range.
    static func parseDateTime(_ text: String, requireTime: Bool, requireZone: Bool) -> ExpressionTimestamp? {
        var scanner = Scanner(text)
        guard let year = scanner.digits(4), scanner.take(UInt8(ascii: "-")),
            let month = scanner.digits(2), scanner.take(UInt8(ascii: "-")),
            let day = scanner.digits(2)
        else { return nil }
        guard year >= 1, (1...12).contains(month), day >= 1, day <= daysInMonth(year: year, month: month) else {
            return nil
        }
        var hour: Int64 = 0, minute: Int64 = 0, second: Int64 = 0, nanosecond: Int64 = 0
        var offset: Int64 = 0
        if scanner.atEnd {
            guard !requireTime else { return nil }
        } else {
            guard scanner.take(oneOf: [UInt8(ascii: "T"), UInt8(ascii: "t")]),
                let h = scanner.digits(2), scanner.take(UInt8(ascii: ":")),
                let m = scanner.digits(2), scanner.take(UInt8(ascii: ":")),
                let s = scanner.digits(2), h < 24, m < 60, s < 60
            else { return nil }
            (hour, minute, second) = (h, m, s)
            if scanner.take(UInt8(ascii: ".")) {
                var count = 0
                while !scanner.atEnd, let digit = scanner.digits(1) {
                    if count < 9 { nanosecond = nanosecond * 10 + digit }
                    count += 1
                }
                guard count > 0 else { return nil }
                for _ in count..<max(count, 9) { nanosecond *= 10 }
            }
            if scanner.take(oneOf: [UInt8(ascii: "Z"), UInt8(ascii: "z")]) {
                offset = 0
            } else if !scanner.atEnd {
                let negative: Bool
                if scanner.take(UInt8(ascii: "+")) {
                    negative = false
                } else if scanner.take(UInt8(ascii: "-")) {
                    negative = true
                } else {
                    return nil
                }
                guard let oh = scanner.digits(2), scanner.take(UInt8(ascii: ":")), let om = scanner.digits(2),
                    oh < 24, om < 60
                else { return nil }
                offset = (oh * 3600 + om * 60) * (negative ? -1 : 1)
            } else if requireZone {
                return nil
            }
        }
        guard scanner.atEnd else { return nil }
        let seconds = days(year: year, month: month, day: day) * 86_400 + hour * 3600 + minute * 60 + second - offset
        return ExpressionTimestamp(seconds: seconds, nanoseconds: nanosecond)
    }

    /// Parses a time-zone argument of the timestamp accessors: `UTC`, `Z`, or `±HH:MM`;
    /// nil for anything else (time-zone names need a database this module does not carry).
    static func parseOffset(_ text: String) -> Int64? {
        if text == "UTC" || text == "Z" || text == "GMT" { return 0 }
        var scanner = Scanner(text)
        let negative: Bool
        if scanner.take(UInt8(ascii: "+")) {
            negative = false
        } else if scanner.take(UInt8(ascii: "-")) {
            negative = true
        } else {
            return nil
        }
        guard let hours = scanner.digits(2), scanner.take(UInt8(ascii: ":")), let minutes = scanner.digits(2),
            scanner.atEnd, hours < 24, minutes < 60
        else { return nil }
        return (hours * 3600 + minutes * 60) * (negative ? -1 : 1)
    }

    /// Parses a duration: an optional sign, then one or more decimal numbers (fractions
    /// allowed) each followed by a unit `ns`, `us`/`µs`, `ms`, `s`, `m`, `h`, `d` (24 h) or
    /// `w` (7 d): `1h30m`, `1.5s`, `-2m`, `300ms`, `2d`. A bare `0` is zero. Nil when the
    /// text is malformed or the total does not fit in Int64 nanoseconds.
    static func parseDuration(_ text: String) -> ExpressionDuration? {
        var scalars = Array(text.unicodeScalars)
        var negative = false
        if let first = scalars.first, first == "-" || first == "+" {
            negative = first == "-"
            scalars.removeFirst()
        }
        if scalars == ["0"] { return ExpressionDuration(nanoseconds: 0) }
        guard !scalars.isEmpty else { return nil }
        var index = 0
        var total: Int64 = 0
        func isDigit(_ scalar: Unicode.Scalar) -> Bool { scalar >= "0" && scalar <= "9" }
        while index < scalars.count {
            var whole: Int64 = 0
            var wholeDigits = 0
            while index < scalars.count, isDigit(scalars[index]) {
                let (times, o1) = whole.multipliedReportingOverflow(by: 10)
                let (sum, o2) = times.addingReportingOverflow(Int64(scalars[index].value - 48))
                guard !o1, !o2 else { return nil }
                whole = sum
                wholeDigits += 1
                index += 1
            }
            var fraction: Int64 = 0
            var fractionScale: Int64 = 1
            var fractionDigits = 0
            if index < scalars.count, scalars[index] == "." {
                index += 1
                while index < scalars.count, isDigit(scalars[index]) {
                    if fractionScale < 1_000_000_000_000_000 {
                        fraction = fraction * 10 + Int64(scalars[index].value - 48)
                        fractionScale *= 10
                    }
                    fractionDigits += 1
                    index += 1
                }
            }
            guard wholeDigits + fractionDigits > 0 else { return nil }
            var unitText = ""
            while index < scalars.count, !isDigit(scalars[index]), scalars[index] != "." {
                unitText.unicodeScalars.append(scalars[index])
                index += 1
            }
            let unit: Int64
            switch unitText {
            case "ns": unit = 1
            case "us", "µs", "μs": unit = 1_000
            case "ms": unit = 1_000_000
            case "s": unit = 1_000_000_000
            case "m": unit = 60_000_000_000
            case "h": unit = 3_600_000_000_000
            case "d": unit = 86_400_000_000_000
            case "w": unit = 604_800_000_000_000
            default: return nil
            }
            let (wholePart, o1) = whole.multipliedReportingOverflow(by: unit)
            guard !o1 else { return nil }
            // fraction / fractionScale of a unit, truncated; the product is taken at double
            // width so large units cannot overflow, and the quotient is below `unit`.
            let product = fraction.multipliedFullWidth(by: unit)
            let fractionPart = fractionScale.dividingFullWidth(product).quotient
            let (part, o2) = wholePart.addingReportingOverflow(fractionPart)
            let (sum, o3) = total.addingReportingOverflow(part)
            guard !o2, !o3 else { return nil }
            total = sum
        }
        return ExpressionDuration(nanoseconds: negative ? -total : total)
    }
}
