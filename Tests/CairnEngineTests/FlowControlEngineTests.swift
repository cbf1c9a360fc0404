import CairnCore
import CairnEngine
import CairnTesting
import Foundation
import Testing

/// Flow control end to end through the engine on in-memory ports and a manual clock: the
/// router admits, the flow scheduler fires, executors drive.
@Suite struct FlowControlEngineTests {
    static let quick = FakeSDKApp.Function([.run("a", output: 1)], output: { $0["a"] ?? .null })
    static let sleepy = FakeSDKApp.Function([.sleep("nap", duration: "1h"), .run("a", output: 1)], output: { $0["a"] ?? .null })

    /// The ids of the events a run was started with.
    static func eventIDs(_ engine: EngineHarness, _ run: RunRecord) async throws -> [String] {
        try await engine.store.snapshot(run.id).events.compactMap { $0["id"]?.stringValue }
    }

    static func statuses(_ runs: [RunRecord]) -> [String] { runs.map(\.status) }

    // MARK: Debounce

    @Test func debounceStartsOneRunWithTheLastEventAPeriodAfterIt() async throws {
        let engine = EngineHarness()
        try await engine.sync(configs: [("d", #""triggers":[{"event":"shop/typed"}],"debounce":{"period":"10s"}"#, Self.quick)])
        let first = try await engine.send("shop/typed", ["n": 1], id: "e1")
        try await engine.settle()
        try await engine.advance(3)
        let last = try await engine.send("shop/typed", ["n": 2], id: "e2")
        try await engine.settle()
        try await engine.advance(9.9)
        #expect(engine.runs(ofFunction: "d").map(\.status) == ["Skipped"], "the replaced event is recorded at once; no run yet")
        try await engine.advance(0.1)
        let runs = engine.runs(ofFunction: "d")
        #expect(Self.statuses(runs).sorted() == ["Completed", "Skipped"])
        let run = try #require(runs.first { $0.status == "Completed" })
        #expect(try await Self.eventIDs(engine, run) == ["e2"])
        #expect(run.eventID == last)
        // The replaced event points at the run that took its debounce.
        let skipped = try #require(try await engine.runs(of: first).first)
        #expect(skipped.skipReason == "debounced")
        #expect(skipped.skipRunID == run.id)
    }

    @Test func debounceTimeoutCountsFromTheFirstEvent() async throws {
        let engine = EngineHarness()
        try await engine.sync(configs: [("d", #""triggers":[{"event":"shop/typed"}],"debounce":{"period":"10s","timeout":"15s"}"#, Self.quick)])
        for (n, at) in [(1, 0.0), (2, 8), (3, 6)] {
            try await engine.advance(at)
            try await engine.send("shop/typed", ["n": .number(JSONNumber(n))], id: "e\(n)")
            try await engine.settle()
        }
        // Events at 0, 8 and 14: the period would end at 24, the timeout ends it at 15.
        try await engine.advance(0.9)
        #expect(engine.runs(ofFunction: "d").filter { $0.status != "Skipped" }.isEmpty)
        try await engine.advance(0.1)
        let run = try #require(engine.runs(ofFunction: "d").first { $0.status == "Completed" })
        #expect(try await Self.eventIDs(engine, run) == ["e3"])
    }

    @Test func debounceKeysAreSeparateAndAnOlderEventDoesNotReplace() async throws {
        let engine = EngineHarness()
        try await engine.sync(configs: [("d", #""triggers":[{"event":"shop/typed"}],"debounce":{"period":"5s","key":"event.data.user"}"#, Self.quick)])
        try await engine.send("shop/typed", ["user": "ada"], id: "a1", ts: 2_000_000)
        try await engine.send("shop/typed", ["user": "bob"], id: "b1", ts: 2_000_000)
        // Sent later, but happened earlier than the one held: ignored.
        let older = try await engine.send("shop/typed", ["user": "ada"], id: "a0", ts: 1_000_000)
        try await engine.settle()
        try await engine.advance(5)
        let started = engine.runs(ofFunction: "d").filter { $0.status == "Completed" }
        var taken: [String] = []
        for run in started { taken += try await Self.eventIDs(engine, run) }
        #expect(taken.sorted() == ["a1", "b1"])
        #expect(try await engine.runs(of: older).map(\.skipReason) == ["debounced"])
    }

    @Test func aRedeliveredEventDoesNotExtendOrRestartADebounce() async throws {
        let engine = EngineHarness()
        try await engine.sync(configs: [("d", #""triggers":[{"event":"shop/typed"}],"debounce":{"period":"5s"}"#, Self.quick)])
        try await engine.send("shop/typed", id: "e1")
        try await engine.route()
        let delivery = try #require(engine.eventLog.storedEvents.first)
        try await engine.advance(5)
        #expect(Self.statuses(engine.runs(ofFunction: "d")) == ["Completed"])
        // The stream delivers the same event again after the run started: nothing new.
        try await engine.events.publish([delivery])
        try await engine.advance(10)
        #expect(Self.statuses(engine.runs(ofFunction: "d")) == ["Completed"])
    }

    // MARK: A scheduler that dies

    /// A scheduler dies at each point of a debounce's and a batch's life: before its firing
    /// commits, right after (before publishing the run's work), and right after admitting
    /// events (before acknowledging them, so they are delivered again). No event is lost, and
    /// none starts two runs.
    @Test(arguments: [InMemoryRunStore.Fault.failBefore, .failAfter])
    func aSchedulerKilledMidDebounceOrBatchLosesNothingAndStartsNothingTwice(fault: InMemoryRunStore.Fault) async throws {
        let engine = EngineHarness()
        try await engine.sync(configs: [
            ("d", #""triggers":[{"event":"shop/typed"}],"debounce":{"period":"5s"}"#, Self.quick),
            ("b", #""triggers":[{"event":"shop/item"}],"batchEvents":{"maxSize":10,"timeout":"5s"}"#, Self.quick),
        ])
        try await engine.send("shop/typed", id: "t1")
        try await engine.send("shop/item", id: "i1")
        try await engine.send("shop/item", id: "i2")
        // The router dies after admitting, before acknowledging: the events come again.
        engine.store.inject(.failAfter, on: .admit)
        await #expect(throws: InMemoryRunStore.InjectedFault.self) { try await engine.route() }
        engine.events.redeliverPending()
        try await engine.route()
        // The firing scheduler dies.
        engine.clock.advance(by: 5)
        engine.store.inject(fault, on: .fireDue)
        await #expect(throws: InMemoryRunStore.InjectedFault.self) { try await engine.flow.fireDue() }
        // Another pass (or the relay's sweep, for work committed and not published) finishes
        // the job.
        try await engine.advance(6)
        _ = try await engine.timers.relayPending()
        try await engine.settle()
        let debounced = engine.runs(ofFunction: "d")
        #expect(Self.statuses(debounced) == ["Completed"])
        let batched = engine.runs(ofFunction: "b")
        #expect(Self.statuses(batched) == ["Completed"])
        #expect(try await Self.eventIDs(engine, try #require(batched.first)) == ["i1", "i2"])
    }

    // MARK: Rate limit and idempotency

    @Test func rateLimitAdmitsATenthAsBurstThenOnePerInterval() async throws {
        let engine = EngineHarness()
        try await engine.sync(configs: [("r", #""triggers":[{"event":"shop/hit"}],"rateLimit":{"limit":10,"period":"1h"}"#, Self.quick)])
        for n in 0..<3 { try await engine.send("shop/hit", id: "h\(n)") }
        try await engine.settle()
        #expect(Self.statuses(engine.runs(ofFunction: "r")) == ["Completed", "Completed", "Skipped"])
        #expect(engine.runs(ofFunction: "r").last?.skipReason == "rate_limited")
        try await engine.advance(359)
        try await engine.send("shop/hit", id: "h3")
        try await engine.settle()
        try await engine.advance(1)
        try await engine.send("shop/hit", id: "h4")
        try await engine.settle()
        #expect(Self.statuses(engine.runs(ofFunction: "r")) == ["Completed", "Completed", "Skipped", "Skipped", "Completed"])
    }

    @Test func idempotencyStartsOneRunPerKeyPer24Hours() async throws {
        let engine = EngineHarness()
        try await engine.sync(configs: [
            ("i", #""triggers":[{"event":"shop/paid"}],"idempotency":"event.data.order","rateLimit":{"limit":100,"period":"1s"}"#, Self.quick),
        ])
        try await engine.send("shop/paid", ["order": "o1"], id: "p1")
        try await engine.send("shop/paid", ["order": "o1"], id: "p2")
        try await engine.send("shop/paid", ["order": "o2"], id: "p3")
        try await engine.settle()
        let runs = engine.runs(ofFunction: "i")
        #expect(Self.statuses(runs) == ["Completed", "Skipped", "Completed"])
        #expect(runs[1].skipReason == "idempotent")
        try await engine.advance(86_400)
        try await engine.send("shop/paid", ["order": "o1"], id: "p4")
        try await engine.settle()
        #expect(engine.runs(ofFunction: "i").last?.status == "Completed")
    }

    @Test func anInvokeOfARateLimitedFunctionFailsAtOnceInsteadOfWaitingForItsTimeout() async throws {
        let engine = EngineHarness()
        try await engine.sync(configs: [
            ("parent", #""triggers":[{"event":"shop/parent"}]"#,
             FakeSDKApp.Function([.invoke("call", function: "shop-child", timeout: "1h")], output: { $0["call"] ?? .null })),
            ("child", #""triggers":[{"event":"shop/never"}],"rateLimit":{"limit":1,"period":"1h"}"#, Self.quick),
        ])
        let first = try await engine.send("shop/parent", id: "p1")
        let second = try await engine.send("shop/parent", id: "p2")
        try await engine.settle()
        #expect(try await engine.run(of: first).status == "Completed")
        let refused = try await engine.run(of: second)
        #expect(refused.status == "Failed")
        #expect(refused.steps.first?.result["error"]?["message"] == "invoked function is rate limited")
        #expect(Self.statuses(engine.runs(ofFunction: "child")) == ["Completed", "Skipped"])
    }

    // MARK: Singleton

    @Test func singletonSkipRecordsTheHolder() async throws {
        let engine = EngineHarness()
        try await engine.sync(configs: [("s", #""triggers":[{"event":"shop/sync"}],"singleton":{"mode":"skip","key":"event.data.user"}"#, Self.sleepy)])
        try await engine.send("shop/sync", ["user": "ada"], id: "s1")
        try await engine.settle()
        try await engine.send("shop/sync", ["user": "ada"], id: "s2")
        try await engine.send("shop/sync", ["user": "bob"], id: "s3")
        try await engine.settle()
        var runs = engine.runs(ofFunction: "s")
        #expect(Self.statuses(runs) == ["Running", "Skipped", "Running"])
        #expect(runs[1].skipReason == "singleton")
        #expect(runs[1].skipRunID == runs[0].id)
        // Once the holder ends, the key is free.
        try await engine.advance(3_600)
        try await engine.send("shop/sync", ["user": "ada"], id: "s4")
        try await engine.settle()
        runs = engine.runs(ofFunction: "s")
        #expect(Self.statuses(runs) == ["Completed", "Skipped", "Completed", "Running"])
    }

    @Test func singletonCancelCancelsTheHolderAndStartsTheNewRun() async throws {
        let engine = EngineHarness()
        try await engine.sync(configs: [("s", #""triggers":[{"event":"shop/sync"}],"singleton":{"mode":"cancel"}"#, Self.sleepy)])
        try await engine.send("shop/sync", id: "s1")
        try await engine.settle()
        try await engine.send("shop/sync", id: "s2")
        try await engine.settle()
        let runs = engine.runs(ofFunction: "s")
        #expect(Self.statuses(runs) == ["Cancelled", "Running"])
        #expect(engine.systemEvents(SystemEvents.cancelled, of: runs[0].id).count == 1)
        try await engine.advance(3_600)
        #expect(Self.statuses(engine.runs(ofFunction: "s")) == ["Cancelled", "Completed"])
    }

    // MARK: Batches

    @Test func batchesCloseAtMaxSizeOrAfterTheirTimeout() async throws {
        let engine = EngineHarness()
        try await engine.sync(configs: [("b", #""triggers":[{"event":"shop/item"}],"batchEvents":{"maxSize":3,"timeout":"10s"}"#, Self.quick)])
        var sent: [ULID] = []
        for n in 0..<7 { sent.append(try await engine.send("shop/item", ["n": .number(JSONNumber(n))], id: "i\(n)")) }
        try await engine.settle()
        var runs = engine.runs(ofFunction: "b")
        #expect(Self.statuses(runs) == ["Completed", "Completed"])
        #expect(try await Self.eventIDs(engine, runs[0]) == ["i0", "i1", "i2"])
        #expect(try await Self.eventIDs(engine, runs[1]) == ["i3", "i4", "i5"])
        try await engine.advance(9.9)
        #expect(engine.runs(ofFunction: "b").count == 2)
        try await engine.advance(0.1)
        runs = engine.runs(ofFunction: "b")
        #expect(Self.statuses(runs) == ["Completed", "Completed", "Completed"])
        #expect(try await Self.eventIDs(engine, runs[2]) == ["i6"])
        #expect(runs.allSatisfy { $0.batchID != nil })
        // Each event links the run that took it.
        #expect(try await engine.runs(of: sent[4]).map(\.id) == [runs[1].id])
    }

    @Test func batchKeysGroupAndEventsFailingIfRunAlone() async throws {
        let engine = EngineHarness()
        try await engine.sync(configs: [(
            "b", #""triggers":[{"event":"shop/item"}],"batchEvents":{"maxSize":2,"timeout":"1m","key":"event.data.shop","if":"event.data.batch == true"}"#,
            Self.quick
        )])
        try await engine.send("shop/item", ["shop": "x", "batch": true], id: "x1")
        try await engine.send("shop/item", ["shop": "y", "batch": true], id: "y1")
        try await engine.send("shop/item", ["shop": "x", "batch": false], id: "solo")
        try await engine.send("shop/item", ["shop": "x", "batch": true], id: "x2")
        try await engine.settle()
        var groups: [[String]] = []
        for run in engine.runs(ofFunction: "b") { groups.append(try await Self.eventIDs(engine, run)) }
        #expect(groups.sorted { $0[0] < $1[0] } == [["solo"], ["x1", "x2"]])
        try await engine.advance(60)
        #expect(engine.runs(ofFunction: "b").count == 3)
    }

    // MARK: Crons

    @Test func eachCronTickStartsOneRunWithItsTimerEvent() async throws {
        let engine = EngineHarness()
        engine.clock.set(try Self.date("2026-03-01T10:02:30Z"))
        try await engine.sync(configs: [("c", #""triggers":[{"cron":"*/5 * * * *"}]"#, Self.quick)])
        try await engine.settle()
        #expect(engine.runs(ofFunction: "c").isEmpty)
        for _ in 0..<100 { try await engine.advance(150) }
        let runs = engine.runs(ofFunction: "c")
        #expect(runs.count == 50)
        #expect(runs.allSatisfy { $0.status == "Completed" })
        let firstRun = try #require(runs.first)
        let first = try #require(try await engine.store.snapshot(firstRun.id).events.first)
        #expect(first["name"] == .string("inngest/scheduled.timer"))
        #expect(first["id"] == "2026-03-01T10:05:00Z")
        #expect(first["data"]?["cron"] == "*/5 * * * *")
        #expect(first["data"]?["scheduledAt"] == "2026-03-01T10:05:00Z")
    }

    @Test func ticksMissedWhileDownFireTheMostRecentOnceAndAResyncKeepsTheChain() async throws {
        let engine = EngineHarness()
        engine.clock.set(try Self.date("2026-03-01T10:00:30Z"))
        let config = #""triggers":[{"cron":"* * * * *"}]"#
        try await engine.sync(configs: [("c", config, Self.quick)])
        try await engine.settle()
        try await engine.advance(60)
        #expect(engine.runs(ofFunction: "c").count == 1)
        // Nothing fired for an hour.
        engine.clock.advance(by: 3_600)
        try await engine.settle()
        #expect(engine.runs(ofFunction: "c").count == 2)
        let latestRun = try #require(engine.runs(ofFunction: "c").last)
        let latest = try #require(try await engine.store.snapshot(latestRun.id).events.first)
        #expect(latest["id"] == "2026-03-01T11:01:00Z")
        // A re-sync of the same trigger in the middle of a minute: no gap, no duplicate.
        try await engine.advance(15)
        try await engine.sync(configs: [("c", config, Self.quick)])
        try await engine.advance(30)
        #expect(engine.runs(ofFunction: "c").count == 3)
        try await engine.advance(60)
        #expect(engine.runs(ofFunction: "c").count == 4)
        // Removing the trigger ends the chain.
        try await engine.sync(configs: [("c", #""triggers":[{"event":"shop/never"}]"#, Self.quick)])
        try await engine.advance(300)
        #expect(engine.runs(ofFunction: "c").count == 4)
    }

    @Test func aCronTickIsWrittenAheadAndItsRunStartsOnTheTick() async throws {
        let engine = EngineHarness()
        engine.clock.set(try Self.date("2026-03-01T10:00:30Z"))
        try await engine.sync(configs: [("c", #""triggers":[{"cron":"* * * * *"}]"#, Self.quick)])
        try await engine.settle()
        try await engine.advance(28.5)
        #expect(engine.runs(ofFunction: "c").isEmpty)
        // Within the lead (a second): the run is written, queued, and nothing calls the app yet.
        try await engine.advance(0.5)
        #expect(engine.runs(ofFunction: "c").map(\.status) == ["Queued"])
        try await engine.advance(0.9)
        #expect(engine.runs(ofFunction: "c").map(\.status) == ["Queued"])
        // On the tick it runs.
        try await engine.advance(0.1)
        #expect(engine.runs(ofFunction: "c").map(\.status) == ["Completed"])
    }

    // MARK: Throttle

    @Test func aThrottleSpacesStartsPerKeyAndDropsNone() async throws {
        let engine = EngineHarness()
        try await engine.sync(configs: [("t", #""triggers":[{"event":"shop/go"}],"throttle":{"limit":1,"period":"10s","burst":1,"key":"event.data.k"}"#, Self.quick)])
        for n in 0..<4 { _ = try await engine.send("shop/go", ["k": "a", "n": .number(JSONNumber(n))]) }
        _ = try await engine.send("shop/go", ["k": "b"])
        try await engine.settle()
        // Key a: 2 at once (limit + burst), the others queued; key b is not held back by a.
        #expect(engine.runs(ofFunction: "t").map(\.status).sorted() == ["Completed", "Completed", "Completed", "Queued", "Queued"])
        try await engine.advance(9.9)
        #expect(engine.runs(ofFunction: "t").filter { $0.status == "Queued" }.count == 2)
        try await engine.advance(0.1)
        #expect(engine.runs(ofFunction: "t").filter { $0.status == "Queued" }.count == 1)
        try await engine.advance(10)
        #expect(engine.runs(ofFunction: "t").allSatisfy { $0.status == "Completed" })
    }

    // MARK: Concurrency

    @Test func aSleepingRunHoldsNoRequestSlot() async throws {
        let engine = EngineHarness()
        try await engine.sync(configs: [("c", #""triggers":[{"event":"shop/go"}],"concurrency":1"#, Self.sleepy)])
        let first = try await engine.send("shop/go", ["n": 1])
        let second = try await engine.send("shop/go", ["n": 2])
        try await engine.settle()
        // One request at a time, but both runs got through their first request to the sleep.
        #expect(try await engine.run(of: first).status == "Running")
        #expect(try await engine.run(of: second).status == "Running")
        try await engine.advance(3_600)
        #expect(engine.runs(ofFunction: "c").map(\.status) == ["Completed", "Completed"])
    }

    @Test func aRunLevelSlotIsHeldThroughASleepUntilTheRunEnds() async throws {
        let engine = EngineHarness()
        try await engine.sync(configs: [("r", #""triggers":[{"event":"shop/go"}],"concurrency":{"fn":[{"limit":1}]}"#, Self.sleepy)])
        let first = try await engine.send("shop/go", ["n": 1])
        try await engine.settle()
        let second = try await engine.send("shop/go", ["n": 2])
        try await engine.settle()
        // The first run sleeps with the slot: the second waits in line, not started.
        #expect(try await engine.run(of: first).status == "Running")
        #expect(try await engine.run(of: second).status == "Queued")
        try await engine.advance(3_599)
        #expect(try await engine.run(of: second).status == "Queued")
        // The first run ends and its slot goes to the second, which starts.
        try await engine.advance(1)
        #expect(try await engine.run(of: first).status == "Completed")
        #expect(try await engine.run(of: second).status == "Running")
        try await engine.advance(3_600)
        #expect(try await engine.run(of: second).status == "Completed")
    }

    // MARK: Timeouts

    @Test func aStartTimeoutCancelsARunThatDidNotStart() async throws {
        let engine = EngineHarness()
        try await engine.sync(configs: [("t", #""triggers":[{"event":"shop/go"}],"timeouts":{"start":"10s"}"#, Self.quick)])
        let event = try await engine.send("shop/go")
        try await engine.route()
        // No executor takes it in time.
        engine.clock.advance(by: 10)
        _ = try await engine.flow.fireDue()
        let run = try await engine.run(of: event)
        #expect(run.status == "Cancelled")
        #expect(engine.systemEvents(SystemEvents.cancelled, of: run.id).count == 1)
        #expect(engine.systemEvents(SystemEvents.finished, of: run.id).count == 1)
        #expect(engine.systemEvents(SystemEvents.failed, of: run.id).isEmpty)
        // Its start item is stale now.
        try await engine.settle()
        #expect(try await engine.run(of: event).status == "Cancelled")
    }

    @Test func aFinishTimeoutCountsFromTheFirstRequest() async throws {
        let engine = EngineHarness()
        try await engine.sync(configs: [("t", #""triggers":[{"event":"shop/go"}],"timeouts":{"start":"1m","finish":"30m"}"#, Self.sleepy)])
        let event = try await engine.send("shop/go")
        try await engine.route()
        try await engine.advance(50)
        #expect(try await engine.run(of: event).status == "Running")
        // It started at 50 s: the finish timeout ends it at 50 s + 30 m.
        try await engine.advance(30 * 60 - 1)
        #expect(try await engine.run(of: event).status == "Running")
        try await engine.advance(1)
        #expect(try await engine.run(of: event).status == "Cancelled")
    }

    static func date(_ text: String) throws -> Date {
        Date(timeIntervalSince1970: Double(try #require(RFC3339.parseMilliseconds(text))) / 1_000)
    }
}
