import Crypto
public import Foundation

// The pure decisions of flow control (docs/flow-control.md): GCRA admission, keys, debounce
// and batch windows, cron jitter and missed ticks. Stores keep the state; these say what to
// do with it, for an injected `now`.

/// The generic cell rate algorithm: one admission per `emission` on average, up to `capacity`
/// at once from idle. The state is one instant, the theoretical arrival time (`tat`): an
/// arrival is admitted when `tat` is at most `(capacity − 1) × emission` ahead of it, and then
/// moves `tat` on by one emission. Nothing stored (or a `tat` in the past) is idle.
public struct GCRA: Sendable, Hashable {
    /// Microseconds between two admissions at the steady rate.
    public let emissionMicroseconds: Int64
    /// Admissions allowed at once from idle (at least 1).
    public let capacity: Int

    public init(limit: Int, periodMilliseconds: Int64, capacity: Int) {
        emissionMicroseconds = max(1, periodMilliseconds * 1_000 / Int64(max(1, limit)))
        self.capacity = max(1, capacity)
    }

    /// A lossy rate limit as Inngest applies one: `limit` per `period`, with a burst of a tenth
    /// of the limit, so `limit / 10 + 1` are admitted at once from idle.
    public static func rateLimit(limit: Int, periodMilliseconds: Int64) -> GCRA {
        GCRA(limit: limit, periodMilliseconds: periodMilliseconds, capacity: limit / 10 + 1)
    }

    /// A throttle as Inngest applies one: `limit` starts per `period` (whole seconds), with
    /// `limit + burst` at once from idle.
    public static func throttle(limit: Int, periodMilliseconds: Int64, burst: Int) -> GCRA {
        let limit = max(1, limit)
        return GCRA(limit: limit, periodMilliseconds: max(1_000, periodMilliseconds / 1_000 * 1_000), capacity: limit + max(0, burst))
    }

    /// When an arrival at `now` may go, given the stored `tat` (microseconds since the epoch):
    /// at once, or at the first instant the rate allows, and the `tat` to store after it. It
    /// never refuses: arrivals beyond the capacity are spaced one emission apart, in order.
    public func schedule(tat: Int64?, now: Int64) -> (start: Int64, tat: Int64) {
        let base = max(tat ?? now, now)
        return (max(now, base - emissionMicroseconds * Int64(capacity - 1)), base + emissionMicroseconds)
    }

    /// Whether an arrival at `now` is admitted given the stored `tat` (both in microseconds
    /// since the epoch), and the `tat` to store after it (unchanged when refused).
    public func admit(tat: Int64?, now: Int64) -> (admitted: Bool, tat: Int64) {
        let start = max(tat ?? now, now)
        guard start - now <= emissionMicroseconds * Int64(capacity - 1) else { return (false, tat ?? now) }
        return (true, start + emissionMicroseconds)
    }
}

/// The key a flow-control option groups events by: its expression evaluated on the event,
/// reduced to a fixed-size digest so that any value fits an index.
public enum FlowKey {
    /// The key when an option has no `key` expression: one group per function.
    public static let function = "fn"
    /// The key of events whose key expression failed: they share one group.
    public static let invalid = "invalid"

    /// What `source` makes of `event`: `.key` with the digest of its value, `.skip` when it
    /// evaluates to `false` (the option does not apply to this event), `.failed` when it
    /// cannot be evaluated. Without a source, the function's one key. `compile` may hand back
    /// an expression compiled before.
    public static func evaluate(
        _ source: String?, event: JSONValue, nowMilliseconds: Int64,
        compile: (String) throws -> Expression = { try Expression(compiling: $0) }
    ) -> Outcome {
        guard let source else { return .key(function) }
        do {
            let value = try compile(source).evaluate(ExpressionActivation(event: event, nowMilliseconds: nowMilliseconds))
            if value == .bool(false) { return .skip }
            return .key(digest(value.canonicalKey))
        } catch {
            return .failed("\(error)")
        }
    }

    /// The group `source` puts `event` in, for options that group every event (debounce,
    /// batch, throttle, concurrency): events whose key fails share one group, and `false` is a
    /// value like any other.
    public static func group(
        _ source: String?, event: JSONValue, nowMilliseconds: Int64,
        compile: (String) throws -> Expression = { try Expression(compiling: $0) }
    ) -> String {
        switch evaluate(source, event: event, nowMilliseconds: nowMilliseconds, compile: compile) {
        case .key(let value): return value
        case .skip: return digest("false")
        case .failed: return invalid
        }
    }

    public enum Outcome: Sendable, Hashable {
        case key(String)
        case skip
        case failed(String)
    }

    /// A hex SHA-256 digest of `text`, prefixed so that it never equals `function`.
    public static func digest(_ text: String) -> String {
        "k:" + SHA256.hash(data: Data(text.utf8)).prefix(16).map { String(format: "%02x", $0) }.joined()
    }
}

/// When a debounce fires: `period` after its last event, but never later than `timeout` after
/// its first.
public enum DebounceWindow {
    public static func due(openedAt: Date, lastAt: Date, period: ConfigDuration, timeout: ConfigDuration?) -> Date {
        let due = lastAt.addingTimeInterval(Double(period.milliseconds) / 1_000)
        guard let timeout else { return due }
        return min(due, openedAt.addingTimeInterval(Double(timeout.milliseconds) / 1_000))
    }
}

/// When a batch closes: at `maxSize` events, at `maximumBytes` of event payloads, or
/// `timeout` after its first event.
public enum BatchWindow {
    /// A batch closes once its events' payloads reach 10 MiB.
    public static let maximumBytes = 10 * 1_048_576

    public static func isFull(size: Int, bytes: Int, maxSize: Int) -> Bool {
        size >= maxSize || bytes >= maximumBytes
    }
}

extension CronSchedule {
    /// The tick to fire when the chain's next tick `tick` is due at `now`: `tick` itself, or,
    /// when later ticks are due too (Cairn was down through them), the most recent of them;
    /// the ticks before it are not fired (docs/flow-control.md, "Missed ticks").
    public func tickToFire(chain tick: Date, now: Date) -> Date {
        var fired = tick
        // Skip ahead in big strides first, so that a long outage costs little.
        if let recent = next(after: now.addingTimeInterval(-2 * 86_400)), recent > fired, recent <= now { fired = recent }
        while let following = next(after: fired), following <= now { fired = following }
        return fired
    }

    /// When tick `tick` fires: the tick itself, or with `jitter`, a delay from 1 s up to the
    /// jitter, the same for the same `seed` and tick on every replica.
    public static func fireTime(tick: Date, jitter: ConfigDuration?, seed: String) -> Date {
        guard let jitter, jitter.milliseconds > 1_000 else { return tick }
        let span = UInt64(jitter.milliseconds - 1_000)
        let digest = SHA256.hash(data: Data("\(seed):\(Int64(tick.timeIntervalSince1970))".utf8))
        let value = digest.prefix(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        return tick.addingTimeInterval(Double(1_000 + value % span) / 1_000)
    }
}
