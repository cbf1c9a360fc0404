public import Foundation

// The pure half of concurrency limits and priority (docs/queue.md): which counters a
// run's requests take a slot on, and where its waiting work is ordered.

/// One counter a run's requests count against, with the limit its function sets on it.
public struct ConcurrencySlot: Sendable, Hashable {
    /// The counter's identity: `f:<function>:<key>` for a function-scoped limit, `e:<key>` or
    /// `a:<key>` for an environment- or account-scoped one (shared by every function that
    /// evaluates the same key; each checks it against its own limit), `r:<function>:<key>`
    /// for a run-level one.
    public var key: String
    public var limit: Int
    /// Held from the run's start until it ends, not only while a request runs.
    public var wholeRun: Bool

    public init(key: String, limit: Int, wholeRun: Bool = false) {
        self.key = key
        self.limit = limit
        self.wholeRun = wholeRun
    }

    /// The counters of `function`'s limits for a run of `event`: one per limit above 0. A key
    /// that cannot be evaluated puts the run in one shared group, as Inngest does.
    public static func of(
        _ limits: [ConcurrencyLimit], functionID: UUID, event: JSONValue, nowMilliseconds: Int64,
        compile: (String) throws -> Expression = { try Expression(compiling: $0) }
    ) -> [ConcurrencySlot] {
        let function = functionID.uuidString.lowercased()
        return limits.filter { $0.limit > 0 }.map { limit in
            let value = FlowKey.group(limit.key, event: event, nowMilliseconds: nowMilliseconds, compile: compile)
            if limit.wholeRun { return ConcurrencySlot(key: "r:\(function):\(value)", limit: limit.limit, wholeRun: true) }
            switch limit.scope {
            case .fn: return ConcurrencySlot(key: "f:\(function):\(value)", limit: limit.limit)
            case .env: return ConcurrencySlot(key: "e:\(value)", limit: limit.limit)
            case .account: return ConcurrencySlot(key: "a:\(value)", limit: limit.limit)
            }
        }
    }
}

/// Where a run's waiting work goes in line: the run's creation time less its priority, so
/// that the steps of older runs go ahead of newer runs, and `priority.run` moves a run ahead
/// (positive) or behind (negative) by that many seconds.
public enum RunPriority {
    /// Inngest's server clamps the factor to ±12 hours.
    public static let bound: Int64 = 43_200

    /// The factor `source` gives `event`, in seconds: an integer, clamped; anything else
    /// (no expression, a value that is not an integer, an error) is 0.
    public static func factor(
        _ source: String?, event: JSONValue, nowMilliseconds: Int64,
        compile: (String) throws -> Expression = { try Expression(compiling: $0) }
    ) -> Int64 {
        guard let source, let seconds = try? compile(source).evaluateInt(ExpressionActivation(event: event, nowMilliseconds: nowMilliseconds))
        else { return 0 }
        return min(bound, max(-bound, seconds))
    }

    /// The score of a run created at `createdMilliseconds` with `factor`: lower goes first.
    public static func score(createdMilliseconds: Int64, factor: Int64) -> Int64 {
        createdMilliseconds - factor * 1_000
    }
}
