import CairnCore
import Foundation
import Testing

/// The pure flow-control decisions, by tables with an injected `now`.
@Suite struct FlowControlTests {
    /// Arrivals (seconds from 0) and which were admitted.
    @Test(arguments: [
        // 1 per 24 h (`idempotency`): one, then nothing until the day has passed.
        (1, 86_400_000 as Int64, 1, [0.0, 1, 3_600, 86_399, 86_400, 86_401], [true, false, false, false, true, false]),
        // 10 per hour as Inngest limits: 2 at once (a tenth of the limit as burst), then one
        // every 6 minutes.
        (10, 3_600_000, 2, [0, 0, 0, 359, 360, 361, 720], [true, true, false, false, true, false, true]),
        // 3 per second with a capacity of 3 (throttle-like): 3 at once, then one per 1/3 s.
        (3, 1_000, 3, [0, 0, 0, 0, 0.34, 0.5, 0.67], [true, true, true, false, true, false, true]),
    ])
    func gcraAdmits(limit: Int, period: Int64, capacity: Int, arrivals: [Double], admitted: [Bool]) {
        let gcra = GCRA(limit: limit, periodMilliseconds: period, capacity: capacity)
        var tat: Int64?
        var decisions: [Bool] = []
        for second in arrivals {
            let (ok, next) = gcra.admit(tat: tat, now: Int64(second * 1_000_000))
            decisions.append(ok)
            tat = next
        }
        #expect(decisions == admitted)
    }

    /// Throttle arrivals (seconds from 0) and when each may start: never refused, spaced.
    @Test(arguments: [
        // 1 per 2 s with the Python SDK's default burst of 1: 2 at once, then one every 2 s.
        (1, 2_000 as Int64, 1, [0.0, 0, 0, 0, 0.5], [0.0, 0, 2, 4, 6]),
        // 2 per 10 s, no burst: 2 at once, then one per 5 s; an arrival after the backlog has
        // drained starts at once.
        (2, 10_000, 0, [0, 0, 0, 1, 30], [0, 0, 5, 10, 30]),
        // Sub-second periods count in whole seconds (1.5 s is 1 s), as Inngest counts them.
        (1, 1_500, 0, [0, 0, 0], [0, 1, 2]),
    ])
    func throttleSpacesStartsWithoutDropping(limit: Int, period: Int64, burst: Int, arrivals: [Double], starts: [Double]) {
        let gcra = GCRA.throttle(limit: limit, periodMilliseconds: period, burst: burst)
        var tat: Int64?
        var scheduled: [Double] = []
        for second in arrivals {
            let (start, next) = gcra.schedule(tat: tat, now: Int64(second * 1_000_000))
            scheduled.append(Double(start) / 1_000_000)
            tat = next
        }
        #expect(scheduled == starts)
    }

    @Test func rateLimitCapacityIsATenthOfTheLimitPlusOne() {
        #expect(GCRA.rateLimit(limit: 1, periodMilliseconds: 1_000).capacity == 1)
        #expect(GCRA.rateLimit(limit: 10, periodMilliseconds: 1_000).capacity == 2)
        #expect(GCRA.rateLimit(limit: 35, periodMilliseconds: 1_000).capacity == 4)
    }

    @Test func keysGroupEqualValuesAndNeverCollideWithTheFunctionKey() throws {
        let a = try JSONValue(parsing: #"{"name":"x","data":{"user":"u1","n":1,"flag":false}}"#)
        let b = try JSONValue(parsing: #"{"name":"x","data":{"user":"u1","n":2}}"#)
        let key = FlowKey.evaluate("event.data.user", event: a, nowMilliseconds: 0)
        #expect(key == FlowKey.evaluate("event.data.user", event: b, nowMilliseconds: 0))
        #expect(key != FlowKey.evaluate("event.data.n", event: a, nowMilliseconds: 0))
        #expect(FlowKey.evaluate(nil, event: a, nowMilliseconds: 0) == .key(FlowKey.function))
        #expect(FlowKey.evaluate("event.data.flag", event: a, nowMilliseconds: 0) == .skip)
        let failed = FlowKey.evaluate("int(event.data.user)", event: a, nowMilliseconds: 0)
        #expect({ if case .failed = failed { true } else { false } }(), "a key that cannot be evaluated fails: \(failed)")
        let text = try #require({ if case .key(let text) = key { text } else { nil } }())
        #expect(text.hasPrefix("k:") && text.count == 34)
    }

    @Test(arguments: [
        // (first event, last event, period, timeout, due) in seconds
        (0.0, 0.0, "10s", nil as String?, 10.0),
        (0, 7, "10s", nil, 17),
        (0, 7, "10s", "12s", 12),
        (0, 1, "10s", "1m", 11),
    ])
    func debounceIsDueAPeriodAfterTheLastEventWithinTheTimeout(first: Double, last: Double, period: String, timeout: String?, due: Double) throws {
        let at = DebounceWindow.due(
            openedAt: Date(timeIntervalSince1970: first), lastAt: Date(timeIntervalSince1970: last),
            period: try ConfigDuration(parsing: period), timeout: try timeout.map { try ConfigDuration(parsing: $0) })
        #expect(at == Date(timeIntervalSince1970: due))
    }

    @Test func batchesCloseBySizeOrBytes() {
        #expect(!BatchWindow.isFull(size: 9, bytes: 100, maxSize: 10))
        #expect(BatchWindow.isFull(size: 10, bytes: 100, maxSize: 10))
        #expect(BatchWindow.isFull(size: 2, bytes: 10 * 1_048_576, maxSize: 100))
    }

    static func date(_ text: String) throws -> Date {
        Date(timeIntervalSince1970: Double(try #require(RFC3339.parseMilliseconds(text))) / 1_000)
    }

    @Test(arguments: [
        // On time or a little late: the chain's own tick.
        ("*/5 * * * *", "2026-03-01T10:05:00Z", "2026-03-01T10:05:00.020Z", "2026-03-01T10:05:00Z"),
        ("*/5 * * * *", "2026-03-01T10:05:00Z", "2026-03-01T10:09:59Z", "2026-03-01T10:05:00Z"),
        // Down through several ticks: only the most recent fires.
        ("*/5 * * * *", "2026-03-01T10:05:00Z", "2026-03-01T11:02:00Z", "2026-03-01T11:00:00Z"),
        // Down for a week: the most recent daily tick.
        ("0 9 * * *", "2026-03-01T09:00:00Z", "2026-03-08T12:00:00Z", "2026-03-08T09:00:00Z"),
    ])
    func missedTicksFireTheMostRecentOnce(schedule: String, chain: String, now: String, fired: String) throws {
        let cron = try CronSchedule(parsing: schedule)
        #expect(cron.tickToFire(chain: try Self.date(chain), now: try Self.date(now)) == (try Self.date(fired)))
    }

    @Test func jitterIsStablePerSeedAndTickAndWithinItsBounds() throws {
        let tick = try Self.date("2026-03-01T10:00:00Z")
        let jitter = try ConfigDuration(parsing: "30s")
        let one = CronSchedule.fireTime(tick: tick, jitter: jitter, seed: "fn:0 * * * *")
        #expect(one == CronSchedule.fireTime(tick: tick, jitter: jitter, seed: "fn:0 * * * *"))
        var offsets: Set<Int> = []
        for minute in 0..<200 {
            let at = tick.addingTimeInterval(Double(minute) * 60)
            let offset = CronSchedule.fireTime(tick: at, jitter: jitter, seed: "fn").timeIntervalSince(at)
            #expect(offset >= 1 && offset < 30)
            offsets.insert(Int(offset))
        }
        #expect(offsets.count > 20)
        #expect(CronSchedule.fireTime(tick: tick, jitter: nil, seed: "fn") == tick)
    }
}
