/// Turns one element of an event request body into an `Event`, or explains why it cannot.
///
/// Rules, checked in this order; the first broken rule is reported:
/// 1. The element is an object.
/// 2. `name` is present, a string, non-empty, at most `maximumNameLength` (512) UTF-8 bytes,
///    and does not start with `inngest/` unless `allowReservedNames` is set.
/// 3. `data` is missing or `null` (both become `{}`), or an object. A `data._inngest` member is
///    removed: that key carries server metadata and senders may not set it.
/// 4. `id` is missing, `null` or `""` (all mean "no id"), or a string of at most
///    `maximumIDLength` (1024) UTF-8 bytes.
/// 5. `ts` is missing, `null` or `0` (all mean "no timestamp"; some SDKs send 0 for unset),
///    or a JSON integer literal (no fraction, no exponent) strictly between
///    `minimumTimestamp` (1980-01-01) and `maximumTimestamp` (2100-01-01) in milliseconds.
/// 6. `v` is missing, `null`, or a string.
/// 7. `user` is missing or `null` (both become nil), or an object.
///
/// Other top-level fields (for example `meta`) are ignored. Validation is pure and cheap;
/// the event API runs it per element and reports the first failing element.
public struct EventValidation: Sendable, Hashable {
    /// When true, names starting with `inngest/` are accepted; only the server's own system
    /// events set this. Default false.
    public var allowReservedNames: Bool

    /// Creates a validator; senders use the default, the server passes
    /// `allowReservedNames: true` for its own system events.
    public init(allowReservedNames: Bool = false) {
        self.allowReservedNames = allowReservedNames
    }

    /// The longest accepted `name`, in UTF-8 bytes: 512.
    public static let maximumNameLength = 512
    /// The longest accepted `id`, in UTF-8 bytes: 1024. Ids are stored and indexed for
    /// deduplication, so they are bounded.
    public static let maximumIDLength = 1024
    /// 1980-01-01T00:00:00Z in milliseconds since the Unix epoch; `ts` must be greater.
    public static let minimumTimestamp: Int64 = 315_532_800_000
    /// 2100-01-01T00:00:00Z in milliseconds since the Unix epoch; `ts` must be smaller.
    public static let maximumTimestamp: Int64 = 4_102_444_800_000

    /// Validates and normalizes one element of a request body.
    ///
    /// - Parameters:
    ///   - element: the parsed JSON of one event.
    ///   - index: the element's position in the request array, used in error messages
    ///     (`events[3].ts`); nil when the body was a single object (`event.ts`).
    /// - Throws: `EventValidationError` naming the field, the rule and the bad value.
    public func validate(_ element: JSONValue, index: Int?) throws(EventValidationError) -> Event {
        guard case .object(let object) = element else {
            throw EventValidationError(index: index, field: "", rule: .mustBeObject, got: element.shortRendering)
        }
        func fail(_ field: String, _ rule: EventValidationError.Rule, got: String?) -> EventValidationError {
            EventValidationError(index: index, field: field, rule: rule, got: got)
        }

        // name
        let name: String
        switch object["name"] {
        case nil, .null?:
            throw fail("name", .required, got: nil)
        case .string(let value)?:
            name = value
        case let other?:
            throw fail("name", .mustBeString, got: other.shortRendering)
        }
        if name.isEmpty {
            throw fail("name", .mustNotBeEmpty, got: nil)
        }
        if name.utf8.count > EventValidation.maximumNameLength {
            throw fail("name", .tooLong, got: "\(name.utf8.count) bytes")
        }
        if name.utf8.contains(0) {
            throw fail("name", .containsNUL, got: JSONValue.string(name).shortRendering)
        }
        if !allowReservedNames, name.hasPrefix(Event.reservedNamePrefix) {
            throw fail("name", .reservedName, got: JSONValue.string(name).shortRendering)
        }

        // data
        var data: JSONObject
        switch object["data"] {
        case nil, .null?:
            data = [:]
        case .object(let value)?:
            data = value
        case let other?:
            throw fail("data", .mustBeObject, got: other.shortRendering)
        }
        data.removeValue(forKey: "_inngest")

        // id
        var id: String?
        switch object["id"] {
        case nil, .null?:
            id = nil
        case .string(let value)?:
            if value.utf8.count > EventValidation.maximumIDLength {
                throw fail("id", .tooLong, got: "\(value.utf8.count) bytes")
            }
            if value.utf8.contains(0) {
                throw fail("id", .containsNUL, got: JSONValue.string(value).shortRendering)
            }
            id = value.isEmpty ? nil : value
        case let other?:
            throw fail("id", .mustBeString, got: other.shortRendering)
        }

        // ts
        var ts: Int64?
        switch object["ts"] {
        case nil, .null?:
            ts = nil
        case .number(let number)? where number.isInteger:
            let rendered = JSONValue.number(number).shortRendering
            guard let millis = number.int64Value else {
                throw fail("ts", .outOfRange, got: rendered)
            }
            if millis == 0 {
                ts = nil
            } else if millis > EventValidation.minimumTimestamp, millis < EventValidation.maximumTimestamp {
                ts = millis
            } else {
                throw fail("ts", .outOfRange, got: rendered)
            }
        case let other?:
            throw fail("ts", .mustBeIntegerMilliseconds, got: other.shortRendering)
        }

        // v
        var v: String?
        switch object["v"] {
        case nil, .null?:
            v = nil
        case .string(let value)?:
            v = value
        case let other?:
            throw fail("v", .mustBeString, got: other.shortRendering)
        }

        // user
        var user: JSONObject?
        switch object["user"] {
        case nil, .null?:
            user = nil
        case .object(let value)?:
            user = value
        case let other?:
            throw fail("user", .mustBeObject, got: other.shortRendering)
        }

        return Event(name: name, data: data, id: id, ts: ts, v: v, user: user)
    }
}

/// Why one event in a request was rejected.
///
/// `rule` is the error's code. `description` is the message returned to the sender, naming the
/// path, the rule and the offending value, e.g.
/// `events[3].ts: must be integer milliseconds, got "tomorrow"`.
public struct EventValidationError: Error, CustomStringConvertible, Hashable, Sendable {
    /// The broken rule.
    public enum Rule: String, Sendable, Hashable {
        /// The element, `data` or `user` is not a JSON object.
        case mustBeObject
        /// A required field (`name`) is missing or null.
        case required
        /// `name`, `id` or `v` is not a string.
        case mustBeString
        /// `name` is the empty string.
        case mustNotBeEmpty
        /// `name` or `id` is longer than its maximum in UTF-8 bytes.
        case tooLong
        /// `name` starts with the reserved `inngest/` prefix.
        case reservedName
        /// `name` or `id` holds a NUL character, which text columns cannot store.
        case containsNUL
        /// `ts` is not a JSON integer literal.
        case mustBeIntegerMilliseconds
        /// `ts` is an integer outside the accepted 1980–2100 range.
        case outOfRange
    }

    /// The element's position in the request array; nil when the body was a single object.
    public let index: Int?
    /// The top-level field (`name`, `data`, `id`, `ts`, `v`, `user`); empty when the element
    /// itself is at fault.
    public let field: String
    /// The broken rule.
    public let rule: Rule
    /// A short rendering of the offending value (compact JSON cut to about 40 characters, or a
    /// size like `600 bytes`); nil when there is nothing useful to show.
    public let got: String?

    /// Creates an error; `field` is empty when the element itself is at fault.
    public init(index: Int?, field: String, rule: Rule, got: String?) {
        self.index = index
        self.field = field
        self.rule = rule
        self.got = got
    }

    /// Where the problem is: `events[3].ts`, `events[3]`, or `event.ts` without an index.
    public var path: String {
        let element = index.map { "events[\($0)]" } ?? "event"
        return field.isEmpty ? element : "\(element).\(field)"
    }

    /// `<path>: <rule>[, got <value>]`.
    public var description: String {
        let message: String
        switch rule {
        case .mustBeObject:
            message = "must be an object"
        case .required:
            message = "required, must be a non-empty string"
        case .mustBeString:
            message = "must be a string"
        case .mustNotBeEmpty:
            message = "must not be empty"
        case .tooLong:
            let limit = field == "id" ? EventValidation.maximumIDLength : EventValidation.maximumNameLength
            message = "must be at most \(limit) bytes"
        case .reservedName:
            message = "must not start with \"\(Event.reservedNamePrefix)\" (reserved for system events)"
        case .containsNUL:
            message = "must not contain the NUL character (U+0000)"
        case .mustBeIntegerMilliseconds:
            message = "must be integer milliseconds"
        case .outOfRange:
            message = "must be integer milliseconds after 1980-01-01 and before 2100-01-01 "
                + "(\(EventValidation.minimumTimestamp) < ts < \(EventValidation.maximumTimestamp))"
        }
        guard let got else { return "\(path): \(message)" }
        return "\(path): \(message), got \(got)"
    }
}

extension JSONValue {
    /// Compact JSON cut to 40 characters with a trailing `…`, for error messages.
    var shortRendering: String {
        let text = jsonString
        guard text.count > 40 else { return text }
        return String(text.prefix(40)) + "…"
    }
}
