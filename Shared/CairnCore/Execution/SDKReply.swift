public import Foundation

/// What an SDK's reply to a call request means (docs/protocol.md §2.1), decided from its status,
/// headers and body.
public enum SDKOutcome: Sendable, Hashable {
    /// 200, or a `RunComplete` op: the function returned `output`.
    case completed(output: JSONValue)
    /// 206: operations to act on, in order, and what the reply's headers say about retrying a
    /// failed step (`x-inngest-no-retry`, `retry-after`).
    case ops([SDKOpcode], retry: RetryDirective)
    /// Non-2xx: the function (not one step) failed this attempt.
    case failed(RunFailure, retry: RetryDirective)

    /// Classifies a reply. `headers` are keyed by lower-cased name.
    public static func classify(status: Int, headers: [String: String], body: [UInt8], now: Date) throws(SDKResponseError) -> SDKOutcome {
        switch status {
        case 200:
            guard !body.isEmpty else { return .completed(output: .null) }
            do { return .completed(output: try JSONValue(parsing: body)) } catch {
                throw SDKResponseError(reason: "the 200 body is not JSON: \(error)")
            }
        case 206:
            let value: JSONValue
            do { value = try JSONValue(parsing: body) } catch {
                throw SDKResponseError(reason: "the 206 body is not JSON: \(error)")
            }
            let elements: [JSONValue]
            switch value {
            case .array(let array): elements = array
            case .object: elements = [value]
            default: throw SDKResponseError(reason: "the 206 body must be an array of ops, got \(value.shortRendering)")
            }
            var ops: [SDKOpcode] = []
            for (index, element) in elements.enumerated() {
                let op = try SDKOpcode(parsing: element, index: index)
                if op.kind == .runComplete { return .completed(output: op.data ?? .null) }
                ops.append(op)
            }
            return .ops(ops, retry: RetryDirective(headers: headers, now: now))
        case 200..<300:
            throw SDKResponseError(reason: "unexpected status \(status) from the SDK")
        default:
            // The SDK's error body is kept as sent; a body that is not a JSON object becomes
            // the message.
            let parsed = (try? JSONValue(parsing: body)) ?? .null
            var error: JSONValue
            if case .object = parsed {
                error = parsed
            } else {
                let text = String(decoding: body.prefix(4_096), as: UTF8.self)
                error = .object(["name": "Error", "message": .string(text.isEmpty ? "HTTP \(status)" : text)])
            }
            return .failed(.app(error, status: status), retry: RetryDirective(headers: headers, now: now))
        }
    }
}

/// What an SDK's reply says about retrying (docs/protocol.md §2.1).
public struct RetryDirective: Sendable, Hashable {
    /// `x-inngest-no-retry: true`: fail now.
    public var noRetry: Bool
    /// `retry-after`, clamped to [now + 1 s, now + 24 h].
    public var retryAt: Date?
    /// The call never reached the app (no connect worker took it), so it spent no attempt.
    public var notDelivered: Bool

    public init(noRetry: Bool = false, retryAt: Date? = nil, notDelivered: Bool = false) {
        self.noRetry = noRetry
        self.retryAt = retryAt
        self.notDelivered = notDelivered
    }

    init(headers: [String: String], now: Date) {
        noRetry = headers["x-inngest-no-retry"]?.lowercased() == "true"
        retryAt = headers["retry-after"].flatMap { Self.parseRetryAfter($0, now: now) }
        notDelivered = false
    }

    /// Integer seconds (up to 7 characters), or an RFC 3339 / HTTP date, clamped.
    static func parseRetryAfter(_ text: String, now: Date) -> Date? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        var at: Date?
        if trimmed.count <= 7, let seconds = Int(trimmed) {
            at = now.addingTimeInterval(Double(seconds))
        } else if let milliseconds = RFC3339.parseMilliseconds(trimmed) {
            at = Date(timeIntervalSince1970: Double(milliseconds) / 1_000)
        } else {
            let formatter = DateFormatter()
            formatter.locale = Locale(identifier: "en_US_POSIX")
            formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
            at = formatter.date(from: trimmed)
        }
        guard let at else { return nil }
        return min(max(at, now.addingTimeInterval(1)), now.addingTimeInterval(86_400))
    }
}

/// When failed attempts are tried again (docs/protocol.md §8).
public enum Backoff {
    /// Delays after failed attempt 0, 1, …; the last repeats.
    public static let schedule: [Double] = [15, 30, 60, 120, 300, 600, 1_200, 2_400, 3_600, 7_200]
    /// Up to this much random delay is added.
    public static let maximumJitter: Double = 30

    /// When to try again after failed attempt `attempt` (0-based); `jitter` is in 0...1;
    /// `scale` multiplies the whole delay (1 in production; smaller in development and tests).
    public static func retryAt(afterAttempt attempt: Int, now: Date, jitter: Double, scale: Double = 1) -> Date {
        let base = schedule[min(max(attempt, 0), schedule.count - 1)]
        return now.addingTimeInterval((base + maximumJitter * min(max(jitter, 0), 1)) * scale)
    }
}
