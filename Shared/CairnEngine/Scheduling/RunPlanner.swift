public import CairnCore
public import Foundation
import Synchronization

/// Turns a function and its event into an `Arrival`: the run with its id, its cancel pauses
/// and start timeout, and the flow-control options that apply to it, with their keys evaluated
/// on the event (docs/flow-control.md).
public final class RunPlanner: Sendable {
    /// How long an event blocks a second run of the same function: 24 h.
    let idempotencyWindow: TimeInterval
    private let runIDs = Mutex(ULIDGenerator())
    private let batchIDs = Mutex(ULIDGenerator())
    /// Key and `if` expressions, compiled once per source text.
    let expressions = ExpressionCache()

    public init(idempotencyWindow: TimeInterval = 86_400) {
        self.idempotencyWindow = idempotencyWindow
    }

    /// A new run id.
    public func nextRunID(now: Date) -> ULID {
        runIDs.withLock { $0.next(now: now) }
    }

    /// The arrival of `event` (`eventID`) for `function`, claimed under `key`. With
    /// `flowControl` false (a debounce firing) the event goes straight to a run and skips the
    /// rate limit, which it passed when it arrived.
    public func arrival(
        _ function: FunctionRecord, event: JSONValue, eventID: ULID, key: String, now: Date, runID: ULID? = nil,
        flowControl: Bool = true
    ) -> Arrival {
        let config = function.config
        let run = newRun(function, events: [(event, eventID)], key: key, now: now, runID: runID)
        var arrival = Arrival(run: run)
        // A paused function's arrivals are recorded as skipped, whatever their route.
        arrival.paused = function.pausedAt != nil
        let nowMilliseconds = now.unixMilliseconds
        if flowControl, let batch = config.batchEvents, passes(batch.condition, event: event, now: nowMilliseconds) {
            arrival.run.pauses = []
            arrival.run.startTimeout = nil
            arrival.route = .batch(BatchEntry(
                key: groupKey(batch.key, event: event, now: nowMilliseconds), maxSize: batch.maxSize, timeout: batch.timeout,
                bytes: event.jsonString.utf8.count, batchID: batchIDs.withLock { $0.next(now: now) }.description))
            // Batched events never meet the rate limit (as in Inngest).
            return arrival
        }
        if flowControl, let debounce = config.debounce {
            arrival.route = .debounce(DebounceEntry(
                key: groupKey(debounce.key, event: event, now: nowMilliseconds), eventTS: event["ts"]?.int64Value ?? nowMilliseconds,
                period: debounce.period, timeout: debounce.timeout, replacedRunID: nextRunID(now: now)))
        }
        if flowControl, let limit = config.effectiveRateLimit {
            switch self.key(limit.key, event: event, now: nowMilliseconds) {
            case .skip: break
            case .key(let value): arrival.rateLimit = Self.rateLimit(limit, key: value, config: config)
            case .failed: arrival.rateLimit = Self.rateLimit(limit, key: FlowKey.invalid, config: config)
            }
        }
        if let singleton = config.singleton, case .key(let value) = self.key(singleton.key, event: event, now: nowMilliseconds) {
            arrival.singleton = SingletonCheck(key: value, mode: singleton.mode)
            arrival.run.singletonKey = value
        }
        // A throttle spaces run starts: a debounced event meets it when its debounce fires.
        if case .start = arrival.route, let throttle = config.throttle {
            arrival.throttle = ThrottleCheck(
                key: groupKey(throttle.key, event: event, now: nowMilliseconds),
                gcra: .throttle(limit: throttle.limit, periodMilliseconds: throttle.period.milliseconds, burst: throttle.burst))
        }
        return arrival
    }

    /// The run of a cron tick: its `inngest/scheduled.timer` event (id: the tick in RFC 3339,
    /// data: `cron`, `scheduledAt`, `fireAt`) is stored with it, and the tick is its claim, so
    /// that each tick starts one run however many schedulers fire it.
    public func cronArrival(_ function: FunctionRecord, expression: String, tick: Date, fireAt: Date, stamper: EventStamper, now: Date) -> Arrival {
        // Ticks fall on whole minutes: written without a fraction, as Inngest writes them.
        let tickText = RFC3339.format(milliseconds: tick.unixMilliseconds).replacingOccurrences(of: ".000Z", with: "Z")
        let event = Event(
            name: SystemEvents.scheduledTimer,
            data: [
                "cron": .string(expression), "scheduledAt": .string(tickText),
                "fireAt": .string(RFC3339.format(milliseconds: fireAt.unixMilliseconds).replacingOccurrences(of: ".000Z", with: "Z")),
            ],
            id: tickText, ts: fireAt.unixMilliseconds)
        let accepted = stamper.accept([event], now: now)[0]
        var arrival = self.arrival(function, event: accepted.payload, eventID: accepted.id, key: "cron:" + tickText, now: now, flowControl: false)
        // Crons meet the rate limit (as in Inngest), never a debounce or a batch.
        if let limit = function.config.effectiveRateLimit,
            case .key(let value) = self.key(limit.key, event: accepted.payload, now: now.unixMilliseconds)
        {
            arrival.rateLimit = Self.rateLimit(limit, key: value, config: function.config)
        }
        arrival.events = [accepted]
        // Fired ahead of its time (`FlowScheduler.cronLead`): the run waits for it, and its
        // start timeout counts from it.
        if fireAt > now {
            arrival.run.notBefore = fireAt
            arrival.run.startTimeout = arrival.run.startTimeout?.addingTimeInterval(fireAt.timeIntervalSince(now))
        }
        return arrival
    }

    /// A run of `function` for `events` (the trigger first).
    public func newRun(_ function: FunctionRecord, events: [(event: JSONValue, id: ULID)], key: String, now: Date, runID: ULID? = nil) -> NewRun {
        let runID = runID ?? nextRunID(now: now)
        var run = NewRun(
            id: runID, functionID: function.id, functionVersion: function.version, eventIDs: events.map(\.id), idempotencyKey: key,
            idempotentUntil: now.addingTimeInterval(idempotencyWindow))
        run.functionSlug = function.slug
        let trigger = events.first?.event ?? .null
        // cancelOn: only events newer than the run cancel it (docs/protocol.md §8).
        run.pauses = function.config.cancel.enumerated().map { index, cancel in
            Pause(
                runID: runID, stepID: "cancel-\(index)", kind: .cancel, eventName: cancel.event, expression: cancel.condition,
                triggerEvent: trigger, eventsAfter: runID,
                expiresAt: now.addingTimeInterval(Double(cancel.timeout?.milliseconds ?? 366 * 86_400_000) / 1_000))
        }
        run.startTimeout = function.config.timeouts?.start.map { now.addingTimeInterval(Double($0.milliseconds) / 1_000) }
        return run
    }

    /// `FlowKey.evaluate` with the compiled expressions cached.
    func key(_ source: String?, event: JSONValue, now: Int64) -> FlowKey.Outcome {
        FlowKey.evaluate(source, event: event, nowMilliseconds: now, compile: expressions.compiled)
    }

    static func rateLimit(_ limit: RateLimit, key: String, config: FunctionConfig) -> RateLimitCheck {
        RateLimitCheck(
            key: key, gcra: .rateLimit(limit: limit.limit, periodMilliseconds: limit.period.milliseconds),
            reason: config.idempotency != nil ? .idempotent : .rateLimited)
    }

    /// `FlowKey.group` with the compiled expressions cached.
    func groupKey(_ source: String?, event: JSONValue, now: Int64) -> String {
        FlowKey.group(source, event: event, nowMilliseconds: now, compile: expressions.compiled)
    }

    /// Whether a batch's `if` lets the event in: an event it is false for, or cannot be
    /// evaluated on, runs on its own.
    func passes(_ condition: String?, event: JSONValue, now: Int64) -> Bool {
        guard let condition else { return true }
        guard let expression = try? expressions.compiled(condition) else { return false }
        return (try? expression.evaluateBool(ExpressionActivation(event: event, nowMilliseconds: now))) ?? false
    }
}
