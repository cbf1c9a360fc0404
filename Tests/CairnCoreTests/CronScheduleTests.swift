import CairnCore
import Foundation
import Testing

/// Cron schedules: parsing rules, and the next fire time across zones and DST.
@Suite struct CronScheduleTests {
    static func date(_ text: String) -> Date {
        ISO8601DateFormatter().date(from: text)!
    }

    static func next(_ schedule: String, after: String) throws -> String? {
        let formatter = ISO8601DateFormatter()
        return try CronSchedule(parsing: schedule).next(after: date(after)).map { formatter.string(from: $0) }
    }

    @Test(arguments: [
        ("*/15 * * * *", "2026-03-01T10:07:00Z", "2026-03-01T10:15:00Z"),
        ("0 * * * *", "2026-03-01T10:00:00Z", "2026-03-01T11:00:00Z"),
        ("30 9 * * 1-5", "2026-02-27T10:00:00Z", "2026-03-02T09:30:00Z"),  // Friday after → Monday
        ("0 0 1 * *", "2026-01-31T12:00:00Z", "2026-02-01T00:00:00Z"),
        ("0 0 29 2 *", "2026-03-01T00:00:00Z", "2028-02-29T00:00:00Z"),
        ("0 12 * JAN,jul SUN", "2026-01-01T00:00:00Z", "2026-01-04T12:00:00Z"),
        ("0 0 13 * 5", "2026-03-01T00:00:00Z", "2026-03-06T00:00:00Z"),  // day 13 OR a Friday
        ("5-10/5 3 * * 7", "2026-03-01T00:00:00Z", "2026-03-01T03:05:00Z"),
        ("TZ=Europe/Paris 0 9 * * *", "2026-06-01T00:00:00Z", "2026-06-01T07:00:00Z"),
        ("TZ=Asia/Kolkata 0 9 * * *", "2026-06-01T00:00:00Z", "2026-06-01T03:30:00Z"),
        // Spring forward in Paris: 02:30 does not exist on 2026-03-29, so that day is skipped.
        ("TZ=Europe/Paris 30 2 * * *", "2026-03-28T12:00:00Z", "2026-03-30T00:30:00Z"),
        // New York leaves daylight time on 2026-11-01: midnight moves from 04:00Z to 05:00Z.
        ("CRON_TZ=America/New_York 0 0 * * *", "2026-10-31T12:00:00Z", "2026-11-01T04:00:00Z"),
        ("CRON_TZ=America/New_York 0 0 * * *", "2026-11-01T04:00:00Z", "2026-11-02T05:00:00Z"),
        // 01:30 happens twice in New York that night (05:30Z in daylight time, 06:30Z after):
        // it fires at the first only, and the next is the day after.
        ("CRON_TZ=America/New_York 30 1 * * *", "2026-11-01T05:00:00Z", "2026-11-01T05:30:00Z"),
        ("CRON_TZ=America/New_York 30 1 * * *", "2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"),
        // With named hours, the repeated hour fires once; with `*` hours the pace goes on.
        ("CRON_TZ=America/New_York */15 1 * * *", "2026-11-01T05:45:00Z", "2026-11-02T06:00:00Z"),
        ("CRON_TZ=America/New_York */15 * * * *", "2026-11-01T05:45:00Z", "2026-11-01T06:00:00Z"),
    ])
    func nextFireTime(schedule: String, after: String, expected: String) throws {
        #expect(try Self.next(schedule, after: after) == expected)
    }

    @Test func impossibleDatesNeverFire() throws {
        #expect(try Self.next("0 0 30 2 *", after: "2026-01-01T00:00:00Z") == nil)
    }

    @Test(arguments: [
        ("* * * *", "must have 5 fields"),
        ("* * * * * *", "must have 5 fields"),
        ("60 * * * *", "minute: 60 is outside 0-59"),
        ("* 24 * * *", "hour: 24 is outside 0-23"),
        ("* * 0 * *", "day-of-month: 0 is outside 1-31"),
        ("* * * 13 *", "month: 13 is outside 1-12"),
        ("* * * * 8", "day-of-week: 8 is outside 0-7"),
        ("*/0 * * * *", "minute: step in \"*/0\" must be a positive integer"),
        ("5-1 * * * *", "minute: range \"5-1\" runs backwards"),
        ("* * * FOO *", "month: \"FOO\" is not a number or a name"),
        ("1,,2 * * * *", "minute: empty item"),
        ("@hourly", "descriptors such as \"@hourly\" are not accepted"),
        ("TZ=Nowhere/City * * * * *", "TZ: unknown time zone"),
    ])
    func refuses(schedule: String, rule: String) {
        do {
            _ = try CronSchedule(parsing: schedule)
            Issue.record("\(schedule) should be refused")
        } catch {
            #expect(error.rule.contains(rule), "\(error.rule)")
        }
    }
}
