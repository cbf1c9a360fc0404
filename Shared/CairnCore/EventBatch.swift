/// The body of `POST /e/{eventKey}`: one event object or an array of them.
///
/// Decoding is all-or-nothing: the first element that breaks a rule rejects the whole body,
/// so a sender never has half a batch accepted.
public enum EventBatch {
    /// The most events one request may carry.
    public static let maximumCount = 5_000

    /// Parses and validates a request body.
    ///
    /// - Parameters:
    ///   - body: the raw request body (UTF-8 JSON).
    ///   - validation: the rules; the server's own system events allow reserved names.
    /// - Returns: the events in body order; empty for an empty array.
    /// - Throws: `EventBatchError` naming the element, the field and the rule.
    public static func decode(
        _ body: some Collection<UInt8>, validation: EventValidation = EventValidation()
    ) throws(EventBatchError) -> [Event] {
        let value: JSONValue
        do {
            value = try JSONValue(parsing: body)
        } catch {
            throw .invalidJSON(error)
        }
        switch value {
        case .array(let elements):
            guard elements.count <= maximumCount else {
                throw .tooManyEvents(count: elements.count)
            }
            var events: [Event] = []
            events.reserveCapacity(elements.count)
            for (index, element) in elements.enumerated() {
                do {
                    events.append(try validation.validate(element, index: index))
                } catch {
                    throw .invalidEvent(error)
                }
            }
            return events
        case .object:
            do {
                return [try validation.validate(value, index: nil)]
            } catch {
                throw .invalidEvent(error)
            }
        default:
            throw .notAnEventOrArray(got: value.shortRendering)
        }
    }
}

/// Why an event request body was rejected; `description` is the message returned to the sender.
public enum EventBatchError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The body is not JSON.
    case invalidJSON(JSONParseError)
    /// The body is JSON but neither an object nor an array.
    case notAnEventOrArray(got: String)
    /// The array holds more than `EventBatch.maximumCount` events.
    case tooManyEvents(count: Int)
    /// An element broke a validation rule.
    case invalidEvent(EventValidationError)

    public var description: String {
        switch self {
        case .invalidJSON(let error):
            "body: must be JSON (\(error))"
        case .notAnEventOrArray(let got):
            "body: must be an event object or an array of events, got \(got)"
        case .tooManyEvents(let count):
            "events: at most \(EventBatch.maximumCount) events per request, got \(count)"
        case .invalidEvent(let error):
            error.description
        }
    }
}

/// An event the server accepted: the sender's event plus what the server assigned.
///
/// `payload` is the event as the SDK will see it in `event`/`events`: the sender's fields, `id`
/// defaulting to the internal ULID text when the sender gave none, `ts` defaulting to the
/// receive time, and `user` defaulting to `{}`.
public struct AcceptedEvent: Sendable, Hashable {
    /// The server-assigned ULID; the key the event is stored and streamed under.
    public var id: ULID
    /// The event name.
    public var name: String
    /// The sender's `id`, the 24-hour deduplication key; nil when the sender gave none.
    public var dedupeKey: String?
    /// When the event happened, in milliseconds since the Unix epoch.
    public var ts: Int64
    /// The full event JSON (see the type's contract).
    public var payload: JSONValue
    /// When the server received it, in milliseconds since the Unix epoch.
    public var receivedAt: Int64

    /// Creates an accepted event from its parts.
    public init(id: ULID, name: String, dedupeKey: String?, ts: Int64, payload: JSONValue, receivedAt: Int64) {
        self.id = id
        self.name = name
        self.dedupeKey = dedupeKey
        self.ts = ts
        self.payload = payload
        self.receivedAt = receivedAt
    }

    /// Accepts `event` under `id`, received at `receivedAt` (milliseconds).
    public init(_ event: Event, id: ULID, receivedAt: Int64) {
        var normalized = event
        normalized.ts = event.ts ?? receivedAt
        normalized.id = event.id ?? id.description
        if normalized.user == nil { normalized.user = .object([:]) }
        self.init(
            id: id, name: event.name, dedupeKey: event.id, ts: normalized.ts!, payload: normalized.jsonValue,
            receivedAt: receivedAt)
    }
}

/// Which events of a batch repeat an earlier one.
public enum EventDedupe {
    /// For each event, the index of the first earlier event in `events` with the same internal
    /// id (two requests resent with one `x-inngest-event-id-seed`) or the same `dedupeKey`, or
    /// nil when it repeats none.
    public static func earlierDuplicates(in events: [AcceptedEvent]) -> [Int?] {
        var firstByKey: [String: Int] = [:]
        var firstByID: [ULID: Int] = [:]
        return events.indices.map { index in
            let event = events[index]
            if let first = firstByID[event.id] { return first }
            if let key = event.dedupeKey, let first = firstByKey[key] { return first }
            firstByID[event.id] = index
            if let key = event.dedupeKey { firstByKey[key] = index }
            return nil
        }
    }
}
