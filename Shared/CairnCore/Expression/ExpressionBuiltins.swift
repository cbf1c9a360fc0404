/// The function implementations. Arguments arrive evaluated; for member calls the receiver is
/// `arguments[0]`. The parser has already checked the argument counts.
enum ExpressionBuiltins {
    static func call(
        _ function: ExpressionFunction, _ arguments: [ExpressionValue], now: ExpressionTimestamp
    ) throws(ExpressionFailure) -> ExpressionValue {
        switch function {
        case .size: return try size(arguments[0])
        case .contains, .startsWith, .endsWith: return try stringTest(function, arguments[0], arguments[1])
        case .matches: return try matches(arguments[0], arguments[1])
        case .int: return try toInt(arguments[0])
        case .uint: return try toUint(arguments[0])
        case .double: return try toDouble(arguments[0])
        case .string: return try toString(arguments[0])
        case .bool: return try toBool(arguments[0])
        case .bytes: return try toBytes(arguments[0])
        case .dyn: return arguments[0]
        case .timestamp: return try toTimestamp(arguments[0])
        case .duration: return try toDuration(arguments[0])
        case .lowercase, .uppercase:
            switch arguments[0] {
            case .string(let text): return .string(function == .lowercase ? text.lowercased() : text.uppercased())
            case .null: return .null
            case let other: throw .mismatch("\(function.rawValue)()", other)
            }
        case .b64decode:
            switch arguments[0] {
            case .string(let text):
                guard let bytes = ExpressionText.base64Decode(text) else {
                    throw ExpressionFailure(.invalidArgument, "b64decode(): the argument is not standard base64")
                }
                return .string(String(decoding: bytes, as: UTF8.self))
            case .null: return .null
            case let other: throw .mismatch("b64decode()", other)
            }
        case .jsonParse:
            switch arguments[0] {
            case .string(let text):
                do {
                    return ExpressionValue(try JSONValue(parsing: text))
                } catch {
                    throw ExpressionFailure(.invalidArgument, "json_parse(): \(error.description)")
                }
            case .null: return .null
            case let other: throw .mismatch("json_parse()", other)
            }
        case .date: return try date(arguments[0])
        case .now: return .timestamp(now)
        case .nowPlus, .nowMinus:
            guard case .string(let text) = arguments[0] else { throw .mismatch("\(function.rawValue)()", arguments[0]) }
            guard let duration = ExpressionCalendar.parseDuration(text) else {
                throw ExpressionFailure(
                    .invalidArgument, "\(function.rawValue)(): '\(text)' is not a duration such as '1h30m' or '2d'")
            }
            if function == .nowPlus { return .timestamp(try ExpressionSemantics.shift(now, by: duration.nanoseconds)) }
            guard duration.nanoseconds != .min else { throw ExpressionFailure(.outOfRange, "now_minus(): duration out of range") }
            return .timestamp(try ExpressionSemantics.shift(now, by: -duration.nanoseconds))
        case .getFullYear, .getMonth, .getDate, .getDayOfMonth, .getDayOfWeek, .getDayOfYear,
            .getHours, .getMinutes, .getSeconds, .getMilliseconds:
            return try accessor(function, arguments)
        }
    }

    // MARK: Strings and collections

    private static func size(_ value: ExpressionValue) throws(ExpressionFailure) -> ExpressionValue {
        switch value {
        case .string(let text): return .int(Int64(text.unicodeScalars.count))
        case .bytes(let bytes): return .int(Int64(bytes.count))
        case .list(let list): return .int(Int64(list.count))
        case .map(let map): return .int(Int64(map.count))
        case .null: return .int(0)
        default: throw .mismatch("size()", value)
        }
    }

    private static func stringTest(
        _ function: ExpressionFunction, _ receiver: ExpressionValue, _ argument: ExpressionValue
    ) throws(ExpressionFailure) -> ExpressionValue {
        switch (receiver, argument) {
        case (.string(let text), .string(let part)):
            switch function {
            case .contains: return .bool(ExpressionText.contains(text, part))
            case .startsWith: return .bool(text.utf8.starts(with: part.utf8))
            default: return .bool(text.utf8.reversed().starts(with: part.utf8.reversed()))
            }
        case (.null, .string):
            return .bool(false)
        default:
            throw ExpressionFailure(
                .typeMismatch,
                "\(function.rawValue)() needs a string receiver and a string argument, got \(receiver.typeName) and \(argument.typeName)")
        }
    }

    private static func matches(_ receiver: ExpressionValue, _ pattern: ExpressionValue) throws(ExpressionFailure) -> ExpressionValue {
        switch (receiver, pattern) {
        case (.string(let text), .string(let source)):
            guard let regex = ExpressionRegex(source) else {
                throw ExpressionFailure(.invalidRegex, "invalid regular expression '\(source)' in matches()")
            }
            return .bool(regex.matches(text))
        case (.null, .string):
            return .bool(false)
        default:
            throw ExpressionFailure(
                .typeMismatch,
                "matches() needs a string and a string pattern, got \(receiver.typeName) and \(pattern.typeName)")
        }
    }

    // MARK: Conversions

    private static func toInt(_ value: ExpressionValue) throws(ExpressionFailure) -> ExpressionValue {
        switch value {
        case .int: return value
        case .uint(let v):
            guard let result = Int64(exactly: v) else { throw ExpressionFailure(.integerOverflow, "int(): \(v)u is out of the int range") }
            return .int(result)
        case .double(let v):
            // Truncates toward zero; the bounds are exclusive because 2^63 is not an Int64.
            guard v.isFinite, v > -9_223_372_036_854_775_809.0, v < 9_223_372_036_854_775_808.0 else {
                throw ExpressionFailure(.integerOverflow, "int(): \(ExpressionText.formatDouble(v)) is out of the int range")
            }
            return .int(Int64(v))
        case .string(let text):
            guard let result = ExpressionText.parseInt(text) else {
                throw ExpressionFailure(.invalidArgument, "int(): '\(text)' is not a decimal integer")
            }
            return .int(result)
        case .timestamp(let t): return .int(t.seconds)
        case .duration(let d): return .int(d.nanoseconds)
        default: throw .mismatch("int()", value)
        }
    }

    private static func toUint(_ value: ExpressionValue) throws(ExpressionFailure) -> ExpressionValue {
        switch value {
        case .uint: return value
        case .int(let v):
            guard let result = UInt64(exactly: v) else { throw ExpressionFailure(.integerOverflow, "uint(): \(v) is negative") }
            return .uint(result)
        case .double(let v):
            guard v.isFinite, v > -1, v < 18_446_744_073_709_551_616.0 else {
                throw ExpressionFailure(.integerOverflow, "uint(): \(ExpressionText.formatDouble(v)) is out of the uint range")
            }
            return .uint(UInt64(v))
        case .string(let text):
            guard let result = UInt64(text) else {
                throw ExpressionFailure(.invalidArgument, "uint(): '\(text)' is not a decimal unsigned integer")
            }
            return .uint(result)
        default: throw .mismatch("uint()", value)
        }
    }

    private static func toDouble(_ value: ExpressionValue) throws(ExpressionFailure) -> ExpressionValue {
        switch value {
        case .double: return value
        case .int(let v): return .double(Double(v))
        case .uint(let v): return .double(Double(v))
        case .string(let text):
            guard let result = ExpressionText.parseDouble(text) else {
                throw ExpressionFailure(.invalidArgument, "double(): '\(text)' is not a number")
            }
            return .double(result)
        default: throw .mismatch("double()", value)
        }
    }

    private static func toString(_ value: ExpressionValue) throws(ExpressionFailure) -> ExpressionValue {
        switch value {
        case .string: return value
        case .int, .uint, .double, .bool, .timestamp, .duration: return .string(value.canonicalKey)
        case .bytes(let bytes):
            guard let text = String(validating: bytes, as: UTF8.self) else {
                throw ExpressionFailure(.invalidArgument, "string(): bytes are not valid UTF-8")
            }
            return .string(text)
        default: throw .mismatch("string()", value)
        }
    }

    private static func toBool(_ value: ExpressionValue) throws(ExpressionFailure) -> ExpressionValue {
        switch value {
        case .bool: return value
        case .string(let text):
            switch text {
            case "true", "TRUE", "True", "t", "1": return .bool(true)
            case "false", "FALSE", "False", "f", "0": return .bool(false)
            default: throw ExpressionFailure(.invalidArgument, "bool(): '\(text)' is not a boolean")
            }
        default: throw .mismatch("bool()", value)
        }
    }

    private static func toBytes(_ value: ExpressionValue) throws(ExpressionFailure) -> ExpressionValue {
        switch value {
        case .bytes: return value
        case .string(let text): return .bytes(Array(text.utf8))
        default: throw .mismatch("bytes()", value)
        }
    }

    // MARK: Time

    private static func toTimestamp(_ value: ExpressionValue) throws(ExpressionFailure) -> ExpressionValue {
        switch value {
        case .timestamp: return value
        case .string(let text):
            guard let timestamp = ExpressionCalendar.parseDateTime(text, requireTime: true, requireZone: true) else {
                throw ExpressionFailure(.invalidArgument, "timestamp(): '\(text)' is not an RFC 3339 timestamp")
            }
            return .timestamp(timestamp)
        case .int(let seconds):
            guard let timestamp = ExpressionTimestamp(seconds: seconds) else {
                throw ExpressionFailure(.outOfRange, "timestamp(): \(seconds) seconds is out of range")
            }
            return .timestamp(timestamp)
        default: throw .mismatch("timestamp()", value)
        }
    }

    private static func toDuration(_ value: ExpressionValue) throws(ExpressionFailure) -> ExpressionValue {
        switch value {
        case .duration: return value
        case .string(let text):
            guard let duration = ExpressionCalendar.parseDuration(text) else {
                throw ExpressionFailure(.invalidArgument, "duration(): '\(text)' is not a duration such as '1h30m' or '1.5s'")
            }
            return .duration(duration)
        default: throw .mismatch("duration()", value)
        }
    }

    /// Inngest's `date()`: an RFC 3339 timestamp, `YYYY-MM-DDTHH:MM:SS` (UTC) or `YYYY-MM-DD`
    /// (UTC midnight); or a number read as Unix seconds (below 10^10), milliseconds (below
    /// 10^13) or nanoseconds, refusing values before 2000-01-01 (946684800) as likely not
    /// dates. A timestamp is returned unchanged.
    private static func date(_ value: ExpressionValue) throws(ExpressionFailure) -> ExpressionValue {
        let number: Int64
        switch value {
        case .timestamp: return value
        case .string(let text):
            guard let timestamp = ExpressionCalendar.parseDateTime(text, requireTime: false, requireZone: false) else {
                throw ExpressionFailure(.invalidArgument, "date(): '\(text)' is not a date such as '2024-05-01T12:00:00Z'")
            }
            return .timestamp(timestamp)
        case .int(let v): number = v
        case .uint(let v):
            guard let v = Int64(exactly: v) else { throw ExpressionFailure(.outOfRange, "date(): \(v) is out of range") }
            number = v
        case .double(let v):
            guard v.isFinite, v > -9_223_372_036_854_775_809.0, v < 9_223_372_036_854_775_808.0 else {
                throw ExpressionFailure(.outOfRange, "date(): \(ExpressionText.formatDouble(v)) is out of range")
            }
            number = Int64(v)
        default: throw .mismatch("date()", value)
        }
        guard number >= 946_684_800 else {
            throw ExpressionFailure(.invalidArgument, "date(): \(number) is before 2000-01-01 in Unix seconds, so it is not read as a date")
        }
        let timestamp: ExpressionTimestamp?
        if number < 9_999_999_999 {
            timestamp = ExpressionTimestamp(seconds: number)
        } else if number < 9_999_999_999_999 {
            timestamp = ExpressionTimestamp(seconds: number / 1000, nanoseconds: number % 1000 * 1_000_000)
        } else {
            timestamp = ExpressionTimestamp(seconds: number / 1_000_000_000, nanoseconds: number % 1_000_000_000)
        }
        guard let timestamp else { throw ExpressionFailure(.outOfRange, "date(): \(number) is out of range") }
        return .timestamp(timestamp)
    }

    private static func accessor(_ function: ExpressionFunction, _ arguments: [ExpressionValue]) throws(ExpressionFailure) -> ExpressionValue {
        switch arguments[0] {
        case .timestamp(let timestamp):
            var offset: Int64 = 0
            if arguments.count == 2 {
                guard case .string(let zone) = arguments[1] else {
                    throw .mismatch("\(function.rawValue)() time zone", arguments[1])
                }
                guard let parsed = ExpressionCalendar.parseOffset(zone) else {
                    throw ExpressionFailure(
                        .invalidArgument, "\(function.rawValue)(): time zone '\(zone)' is not supported; use 'UTC' or '+HH:MM'")
                }
                offset = parsed
            }
            let fields = ExpressionCalendar.fields(of: timestamp, offsetSeconds: offset)
            switch function {
            case .getFullYear: return .int(fields.year)
            case .getMonth: return .int(fields.month - 1)
            case .getDate: return .int(fields.day)
            case .getDayOfMonth: return .int(fields.day - 1)
            case .getDayOfWeek: return .int(fields.dayOfWeek)
            case .getDayOfYear: return .int(fields.dayOfYear)
            case .getHours: return .int(fields.hour)
            case .getMinutes: return .int(fields.minute)
            case .getSeconds: return .int(fields.second)
            default: return .int(fields.nanosecond / 1_000_000)
            }
        case .duration(let duration) where arguments.count == 1:
            switch function {
            case .getHours: return .int(duration.nanoseconds / 3_600_000_000_000)
            case .getMinutes: return .int(duration.nanoseconds / 60_000_000_000)
            case .getSeconds: return .int(duration.nanoseconds / 1_000_000_000)
            case .getMilliseconds: return .int(duration.nanoseconds / 1_000_000)
            default: throw .mismatch("\(function.rawValue)()", arguments[0])
            }
        default:
            throw .mismatch("\(function.rawValue)()", arguments[0])
        }
    }
}
