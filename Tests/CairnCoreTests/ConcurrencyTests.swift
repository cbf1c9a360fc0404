import CairnCore
import Foundation
import Testing

/// Which counters a run counts against, and where its waiting work goes in line.
@Suite struct ConcurrencyTests {
    static let function = UUID(uuidString: "6F1A9E52-3C1B-4E0C-9F3A-2B7D1C0E5A44")!

    func limits(_ json: String) throws -> [ConcurrencyLimit] {
        try FunctionConfig(parsing: try JSONValue(parsing: #"{"id":"f","triggers":[{"event":"a/b"}],\#(FunctionConfigTests.step),"concurrency":\#(json)}"#))
            .concurrency
    }

    @Test func countersAreScopedAndKeyedAndLimitZeroIsNone() throws {
        let event = try JSONValue(parsing: #"{"name":"a/b","data":{"user":"u1"}}"#)
        let slots = ConcurrencySlot.of(
            try limits(#"[{"limit":2,"key":"event.data.user","scope":"env"},{"limit":5}]"#), functionID: Self.function, event: event,
            nowMilliseconds: 0)
        let user = FlowKey.group("event.data.user", event: event, nowMilliseconds: 0)
        // One counter per limit, in the order the function lists them.
        #expect(slots == [
            ConcurrencySlot(key: "e:\(user)", limit: 2), ConcurrencySlot(key: "f:6f1a9e52-3c1b-4e0c-9f3a-2b7d1c0e5a44:fn", limit: 5),
        ])
        // Another function with the same limits shares the environment counter (with its own
        // limit), not the function one; another user gets another counter.
        let other = ConcurrencySlot.of(
            try limits(#"[{"limit":3,"key":"event.data.user","scope":"env"},{"limit":5}]"#), functionID: UUID(), event: event,
            nowMilliseconds: 0)
        #expect(other[0] == ConcurrencySlot(key: "e:\(user)", limit: 3))
        #expect(other[1].key != slots[1].key)
        let someoneElse = try JSONValue(parsing: #"{"name":"a/b","data":{"user":"u2"}}"#)
        #expect(ConcurrencySlot.of(try limits(#"{"limit":2,"key":"event.data.user","scope":"env"}"#), functionID: Self.function, event: someoneElse, nowMilliseconds: 0)[0].key != "e:\(user)")
        #expect(ConcurrencySlot.of(try limits("0"), functionID: Self.function, event: event, nowMilliseconds: 0).isEmpty)
        // A key that cannot be evaluated: one shared counter.
        let failed = ConcurrencySlot.of(try limits(#"{"limit":1,"key":"int(event.data.user)"}"#), functionID: Self.function, event: event, nowMilliseconds: 0)
        #expect(failed == [ConcurrencySlot(key: "f:6f1a9e52-3c1b-4e0c-9f3a-2b7d1c0e5a44:\(FlowKey.invalid)", limit: 1)])
    }

    @Test func aRunLevelLimitHasItsOwnCounterBesideTheRequestLimits() throws {
        let event = try JSONValue(parsing: #"{"name":"a/b","data":{"user":"u1"}}"#)
        let parsed = try limits(#"{"fn":[{"limit":3,"key":"event.data.user"}],"step":[{"limit":1},{"limit":2,"key":"event.data.user"}]}"#)
        #expect(parsed.map(\.wholeRun) == [true, false, false])
        let slots = ConcurrencySlot.of(parsed, functionID: Self.function, event: event, nowMilliseconds: 0)
        let user = FlowKey.group("event.data.user", event: event, nowMilliseconds: 0)
        #expect(slots[0] == ConcurrencySlot(key: "r:6f1a9e52-3c1b-4e0c-9f3a-2b7d1c0e5a44:\(user)", limit: 3, wholeRun: true))
        #expect(slots[1...].allSatisfy { !$0.wholeRun && $0.key.hasPrefix("f:") })
    }

    @Test(arguments: [
        // (concurrency, field, rule)
        (#"{"fn":[{"limit":1},{"limit":2}]}"#, "concurrency.fn", "must have at most 1 run-level limit, got 2"),
        (#"{"fn":[{"limit":0}]}"#, "concurrency.fn[0].limit", "must be an integer from 1 to 100000, got 0"),
        (#"{"fn":[{"limit":1,"scope":"env","key":"event.data.user"}]}"#, "concurrency.fn[0].scope", #"must be fn for a run-level limit, got "env""#),
        (#"{"fn":{"limit":1}}"#, "concurrency.fn", "must be an array of objects"),
        (#"{"step":[{"limit":1},{"limit":2},{"limit":3}]}"#, "concurrency", "must have at most 2 limits, got 3"),
    ])
    func aBadRunLevelLimitIsRefusedByField(json: String, field: String, rule: String) throws {
        let error = #expect(throws: FunctionConfigError.self) { try limits(json) }
        #expect(error?.field == field)
        #expect(error?.rule == rule)
    }

    @Test func aSharedScopeNeedsAKey() throws {
        let error = #expect(throws: FunctionConfigError.self) { try limits(#"{"limit":1,"scope":"account"}"#) }
        #expect(error?.field == "concurrency.key")
        #expect(error?.rule == "is required when scope is account")
        #expect(try limits(#"{"limit":1,"scope":"account","key":"event.data.user"}"#).count == 1)
    }

    @Test(arguments: [
        // (expression, event data, factor)
        (nil as String?, #"{}"#, 0 as Int64),
        ("event.data.p", #"{"p":120}"#, 120),
        ("event.data.p", #"{"p":-600}"#, -600),
        ("event.data.p", #"{"p":100000}"#, 43_200),
        ("event.data.p", #"{"p":-100000}"#, -43_200),
        ("event.data.p", #"{"p":"high"}"#, 0),
        ("event.data.missing.deeper", #"{}"#, 0),
    ])
    func priorityIsAnIntegerOfSecondsClampedToTwelveHours(source: String?, data: String, factor: Int64) throws {
        let event = try JSONValue(parsing: #"{"name":"a/b","data":\#(data)}"#)
        #expect(RunPriority.factor(source, event: event, nowMilliseconds: 0) == factor)
    }

    @Test func aPositiveFactorGoesAheadOfWorkThatCameEarlier() {
        let early = RunPriority.score(createdMilliseconds: 1_000_000, factor: 0)
        let laterButUrgent = RunPriority.score(createdMilliseconds: 1_060_000, factor: 120)
        let laterAndLow = RunPriority.score(createdMilliseconds: 1_000_001, factor: -1)
        #expect(laterButUrgent < early)
        #expect(early < laterAndLow)
    }
}
