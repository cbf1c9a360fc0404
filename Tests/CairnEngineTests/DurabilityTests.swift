import CairnCore
@testable import CairnEngine
import CairnTesting
import Foundation
import Testing

/// The engine never loses, strands or double-advances a run: each hole of docs/durability.md,
/// shown on the in-memory store with a manual clock, with faults injected exactly where a
/// process could die or a message could be duplicated, late or lost.
@Suite(.timeLimit(.minutes(2))) struct DurabilityTests {
    typealias Step = FakeSDKApp.Step

    // MARK: Retries

    /// Two steps that each fail once: each failure schedules its own retry timer.
    @Test func twoStepsThatEachFailOnceAreEachRetried() async throws {
        let engine = EngineHarness()
        try await engine.sync([("two", "shop/two", 3, [], FakeSDKApp.Function(
            [.run("a", failures: 1, output: 1), .run("b", failures: 1, output: 2)],
            output: { ["a": $0["a"] ?? .null, "b": $0["b"] ?? .null] }))])
        let event = try await engine.send("shop/two")
        try await engine.settle()
        for _ in 0..<4 { try await engine.advance(60) }
        let run = try await engine.run(of: event)
        #expect(run.status == "Completed")
        #expect(run.output == ["a": 1, "b": 2])
        #expect(engine.app.executions(run.id, "a") == 2)
        #expect(engine.app.executions(run.id, "b") == 2)
        #expect(run.steps.map(\.name) == ["a", "b"])
        #expect(run.steps.map(\.attempts) == [2, 2])
    }

    /// A function that raises outside a step once before its first step and once after it.
    @Test func aFunctionRaisingBeforeAndAfterItsFirstStepIsRetriedBothTimes() async throws {
        let engine = EngineHarness()
        try await engine.sync([("raise", "shop/raise", 3, [], FakeSDKApp.Function(
            [.raise("before", failures: 1), .run("a", output: "x"), .raise("after", failures: 1)], output: { $0["a"] ?? .null }))])
        let event = try await engine.send("shop/raise")
        try await engine.settle()
        for _ in 0..<4 { try await engine.advance(60) }
        let run = try await engine.run(of: event)
        #expect(run.status == "Completed")
        #expect(run.output == "x")
        #expect(engine.app.executions(run.id, "a") == 1)
    }

    /// A step insert the database reported done is undone by a crash before its commit: the
    /// next write finds the log short, the run is reloaded, and the step runs again. The log
    /// never has a gap, and the run ends with every step recorded.
    @Test(arguments: [1, 2, 3])
    func aStepLostBeforeItsCommitIsFoundAtTheNextWrite(lostStep: Int) async throws {
        let engine = EngineHarness()
        try await engine.sync([("three", "shop/three", 0, [], FakeSDKApp.Function(
            [.run("s1", output: 1), .run("s2", output: 2), .run("s3", output: 3)],
            output: { ["s1": $0["s1"] ?? .null, "s2": $0["s2"] ?? .null, "s3": $0["s3"] ?? .null] }))])
        let event = try await engine.send("shop/three")
        try await engine.route()
        // Lose the write of step `lostStep`: the fault is taken by that write.
        for _ in 1..<lostStep {
            engine.store.inject(.before {}, on: .recordStep)
        }
        engine.store.inject(.lose, on: .recordStep)
        try await engine.settle()
        let run = try await engine.run(of: event)
        #expect(run.status == "Completed")
        #expect(run.output == ["s1": 1, "s2": 2, "s3": 3])
        #expect(run.steps.map(\.name) == ["s1", "s2", "s3"])
        #expect(engine.app.executions(run.id, "s\(lostStep)") == 2)
    }

    /// A parallel group's retry recorded its step, and its drive died before retiring the
    /// item: driven again, the item must not ask the app for that step again (the app would
    /// refuse a call targeting a step it no longer reaches) but go on with the group.
    @Test func aRetriedParallelStepRecordedByADriveThatDiedIsNotCalledAgain() async throws {
        let engine = EngineHarness()
        try await engine.sync([("group", "shop/group", 3, [], FakeSDKApp.Function(
            [.parallel(["p1", "p2", "p3"], failures: ["p3": 1], outputs: ["p1": 1, "p2": 2, "p3": 3]), .run("p4", output: 4)],
            output: { ["p3": $0["p3"] ?? .null, "p4": $0["p4"] ?? .null] }))])
        let event = try await engine.send("shop/group")
        try await engine.settle()
        // p1 and p2 recorded, p3 waits for its retry; its drive records p3, then dies.
        engine.store.inject(.failAfter, on: .recordStep)
        try await engine.advance(60)
        #expect(try await engine.run(of: event).steps.map(\.name).sorted() == ["p1", "p2", "p3"])
        engine.work.redeliverPending()
        try await engine.settle()
        let run = try await engine.run(of: event)
        #expect(run.status == "Completed", "\(run.error ?? .null)")
        #expect(run.output == ["p3": 3, "p4": 4])
        #expect(engine.app.executions(run.id, "p3") == 2)
        #expect(engine.app.executions(run.id, "p4") == 1)
    }

    /// Two members of a parallel group end at once: the drive of a retried member has
    /// recorded it and is letting go of the run (the wait is not recorded yet) when the wait is
    /// matched; the router records it and publishes its resume, which is refused because the
    /// drive still holds the run, and stays pending. Neither may leave the run to the
    /// redelivery of the refused resume a minute later.
    @Test func aGroupMemberRecordedWhileAnotherMembersDriveHoldsTheRunIsSeenByThatDrive() async throws {
        let engine = EngineHarness()
        try await engine.sync([("group", "shop/group", 3, [], FakeSDKApp.Function(
            [.group([[.run("p1", failures: 1, output: 1)], [.wait("w", event: "shop/approved", timeout: "1h")]]), .run("after", output: 2)],
            output: { ["p1": $0["p1"] ?? .null, "by": $0["w"]?["data"]?["by"] ?? .null, "after": $0["after"] ?? .null] }))])
        let event = try await engine.send("shop/group")
        try await engine.settle()
        // p1 failed once and waits for its retry; w waits for its event.
        engine.store.inject(.before {
            _ = try await engine.send("shop/approved", ["by": "ada"])
            #expect(try await engine.route() == 1)
            // The resume the match published, driven now: the run is busy.
            #expect(try await engine.drive() == 1)
        }, on: .release)
        try await engine.advance(60)
        let run = try await engine.run(of: event)
        #expect(run.status == "Completed", "\(run.status) \(run.steps.map(\.name))")
        #expect(run.output == ["p1": 1, "by": "ada", "after": 2])
        #expect(engine.app.executions(run.id, "after") == 1)
    }

    /// The event a wait is for is routed while the drive that parked the run still winds up
    /// (it is looking back for that event), and its resume reaches the same executor: the
    /// resume waits for that drive and drives the run when it ends, instead of being refused
    /// as a second drive of the run and left to its redelivery a lease duration later.
    @Test func aResumeReachingTheExecutorStillWindingUpTheRunWaitsForThatDrive() async throws {
        let engine = EngineHarness()
        try await engine.sync([("wait", "shop/order", 0, [], FakeSDKApp.Function(
            [.wait("approval", event: "shop/approved", timeout: "1h")], output: { $0["approval"]?["data"]?["by"] ?? "timed out" }))])
        let order = try await engine.send("shop/order")
        try await engine.route()
        let runID = try #require(try await engine.runs(of: order).first?.id)
        let second = SecondDrive()
        engine.store.inject(.before {
            _ = try await engine.send("shop/approved", ["by": "ada"])
            #expect(try await engine.route() == 1)
            // The resume, delivered to executor 0 while its first drive is here.
            await second.start { try await engine.drive(with: 0) }
            while await !second.isDone, !engine.executors[0].hasWaiter(for: runID) { await Task.yield() }
        }, on: .markLookedBack)
        #expect(try await engine.drive(with: 0) == 1)
        #expect(try await second.value() == 1)
        let run = try await engine.run(of: order)
        #expect(run.status == "Completed")
        #expect(run.output == "ada")
        #expect(engine.work.backlog == 0)
    }

    // MARK: Pauses

    /// The event a wait is for arrives while the wait's pause is being stored: the router
    /// matched it against nothing, and the pause's look-back finds it.
    @Test func anEventRoutedWhileAWaitIsBeingStoredResumesIt() async throws {
        let engine = EngineHarness()
        try await engine.sync([("wait", "shop/order", 0, [], FakeSDKApp.Function(
            [.wait("approval", event: "shop/approved", condition: "async.data.key == event.data.key", timeout: "1h")],
            output: { $0["approval"]?["data"]?["by"] ?? "timed out" }))])
        let order = try await engine.send("shop/order", ["key": "k1"])
        try await engine.route()
        engine.store.inject(.before {
            _ = try await engine.send("shop/approved", ["key": "k1", "by": "ada"])
            let routed = try await engine.route()
            #expect(routed == 1)
        }, on: .park)
        try await engine.settle()
        let run = try await engine.run(of: order)
        #expect(run.status == "Completed")
        #expect(run.output == "ada")
    }

    /// The writer of a new pause dies before it looks back: the reconciler does it.
    @Test func aLookBackACrashSkippedIsDoneByTheReconciler() async throws {
        let engine = EngineHarness()
        try await engine.sync([("wait", "shop/order", 0, [], FakeSDKApp.Function(
            [.wait("approval", event: "shop/approved", timeout: "1h")], output: { $0["approval"]?["data"]?["by"] ?? "timed out" }))])
        let order = try await engine.send("shop/order")
        try await engine.route()
        engine.store.inject(.before {
            _ = try await engine.send("shop/approved", ["by": "ada"])
            try await engine.route()
        }, on: .park)
        // The writer's look-back fails (it dies): the pause stays open and not looked back.
        engine.store.inject(.failBefore, on: .resume)
        try await engine.settle()
        #expect(try await engine.run(of: order).status == "Running")
        try await engine.reconciler.pass()
        engine.clock.advance(by: 20)
        let healed = try await engine.reconciler.pass()
        #expect(healed == [.pause: 1])
        try await engine.settle()
        let run = try await engine.run(of: order)
        #expect(run.status == "Completed")
        #expect(run.output == "ada")
    }

    /// `cancelOn` events routed while a batch of runs is being created: the batch's one
    /// look-back cancels each run an event matches, and only those.
    @Test func cancelEventsRoutedWhileRunsAreCreatedCancelExactlyTheirRuns() async throws {
        let engine = EngineHarness()
        try await engine.sync([("order", "shop/order", 0, ["shop/stop"], FakeSDKApp.Function(
            [.run("a", output: 1)], output: { $0["a"] ?? .null }))])
        let orders = [try await engine.send("shop/order", ["key": "k1"]), try await engine.send("shop/order", ["key": "k2"]),
                      try await engine.send("shop/order", ["key": "k3"])]
        engine.store.inject(.before {
            engine.clock.advance(by: 1)
            _ = try await engine.send("shop/stop", ["key": "k1"])
            _ = try await engine.send("shop/stop", ["key": "k3"])
            let routed = try await engine.route()
            #expect(routed == 2)
        }, on: .admit)
        try await engine.settle()
        var statuses: [String] = []
        for order in orders { statuses.append(try await engine.run(of: order).status) }
        #expect(statuses == ["Cancelled", "Completed", "Cancelled"])
        #expect(try await engine.store.pausesToLookBack(createdBefore: engine.clock.now.addingTimeInterval(1), limit: 10).isEmpty)
    }

    /// An invoke stores the callee's trigger with the caller's pause, so a callee that ends at
    /// once cannot end before the caller waits for it.
    @Test func anInvokedFunctionStartsOnlyOnceTheCallersPauseIsStored() async throws {
        let engine = EngineHarness()
        try await engine.sync([
            ("parent", "shop/parent", 0, [], FakeSDKApp.Function([.invoke("call", function: "shop-child", data: ["n": 2])], output: { $0["call"] ?? .null })),
            ("child", "shop/never", 0, [], FakeSDKApp.Function([.run("work", output: 42)], output: { $0["work"] ?? .null })),
        ])
        let parent = try await engine.send("shop/parent")
        try await engine.route()
        engine.store.inject(.before {
            #expect(!engine.eventLog.storedEvents.contains { $0.name == Invocation.invokedEventName })
        }, on: .park)
        try await engine.settle()
        let run = try await engine.run(of: parent)
        #expect(run.status == "Completed")
        #expect(run.output == 42)
    }

    /// The drive that times out a pause dies right after its commit: the redelivered timeout
    /// goes on from the recorded timeout.
    @Test(arguments: [true, false])
    func aPauseTimeoutSurvivesACrashAroundItsCommit(afterCommit: Bool) async throws {
        let engine = EngineHarness()
        try await engine.sync([("wait", "shop/order", 0, [], FakeSDKApp.Function(
            [.wait("approval", event: "shop/approved", timeout: "1m"), .run("after", output: "went on")], output: { $0["after"] ?? .null }))])
        let order = try await engine.send("shop/order")
        try await engine.settle()
        engine.store.inject(afterCommit ? .failAfter : .failBefore, on: .timeOutPause)
        try await engine.advance(61)
        #expect(try await engine.run(of: order).status == "Running")
        engine.work.redeliverPending()
        try await engine.settle()
        let run = try await engine.run(of: order)
        #expect(run.status == "Completed")
        #expect(run.output == "went on")
        #expect(run.steps.map(\.op) == ["WaitForEvent", "StepRun"])
        #expect(run.steps.first?.result == .null)
    }

    /// An event and a timeout race for one pause: a router that read the open pauses just
    /// before they expired matches the event after the timeout fired. Only one drive goes on:
    /// the resume retired the fired timeout's item.
    @Test func aTimeoutThatFiredBeforeTheEventMatchedIsRetired() async throws {
        let engine = EngineHarness()
        try await engine.sync([("wait", "shop/order", 0, [], FakeSDKApp.Function(
            [.wait("approval", event: "shop/approved", timeout: "1m"), .run("after", output: 1)],
            output: { $0["approval"]?["data"]?["by"] ?? "timed out" }))])
        let order = try await engine.send("shop/order")
        try await engine.settle()
        let pause = try #require(try await engine.store.openPauses(eventName: "shop/approved", now: engine.clock.now, after: nil, limit: 10).first)
        engine.clock.advance(by: 60)
        #expect(try await engine.timers.fireDue() == 1)
        let approval = try await engine.send("shop/approved", ["by": "ada"])
        let event = try #require(try await engine.eventLog.event(id: approval))
        let resume = WorkItem(runID: pause.runID, reason: .resume, call: SDKCall(stepID: pause.stepID, attempt: 0))
        #expect(try await engine.store.resume(pause, eventID: approval, result: event.payload, resume: resume, now: engine.clock.now))
        try await engine.work.publish([resume])
        try await engine.settle()
        let run = try await engine.run(of: order)
        #expect(run.status == "Completed")
        #expect(run.output == "ada")
        #expect(engine.app.executions(run.id, "after") == 1)
    }

    // MARK: System events

    /// The executor that decided a run failed lost its lease before it could say so; the one
    /// that took over completed the run. Only what really happened is emitted.
    @Test func aLostLeaseEmitsNoSystemEvents() async throws {
        let engine = EngineHarness(executors: 2)
        // Without retries: the first attempt's error fails the run; a second attempt succeeds.
        try await engine.sync([("flaky", "shop/flaky", 0, [], FakeSDKApp.Function([.raise("boom", failures: 1), .run("a", output: "ok")], output: { $0["a"] ?? .null }))])
        let event = try await engine.send("shop/flaky")
        try await engine.route()
        engine.store.inject(.before {
            // Executor 0 stalls past its lease (its renewal fails); executor 1 takes the item
            // over and completes the run. Executor 1 runs in a task of its own, so that
            // executor 0 losing its lease cancels nothing of it.
            engine.store.inject(.failBefore, on: .renew)
            engine.clock.advance(by: 61)
            engine.work.redeliverPending()
            let drove = try await Task { try await engine.drive(with: 1) }.value
            #expect(drove == 1)
        }, on: .finish)
        try await engine.drive(with: 0)
        let run = try await engine.run(of: event)
        #expect(run.status == "Completed")
        #expect(engine.systemEvents(SystemEvents.failed, of: run.id).isEmpty)
        let finished = engine.systemEvents(SystemEvents.finished, of: run.id)
        #expect(finished.count == 1)
        #expect(finished.first?.payload["data"]?["_inngest"]?["status"] == "Completed")
    }

    /// A run cancelled while its executor was about to fail it: the cancel wins, and its
    /// `function.cancelled` is emitted (it used to share a dedupe id with `failed`).
    @Test func aRunCancelledAsItFailsEmitsCancelledOnly() async throws {
        let engine = EngineHarness()
        try await engine.sync([("doomed", "shop/doomed", 0, [], FakeSDKApp.Function([.run("a", failures: 5)]))])
        let event = try await engine.send("shop/doomed")
        try await engine.route()
        let runID = try #require(try await engine.runs(of: event).first?.id)
        engine.store.inject(.before {
            let cancelled = try await RunCancellation(store: engine.store, events: engine.sink, clock: engine.clock).cancel(runID)
            #expect(cancelled)
        }, on: .finish)
        try await engine.settle()
        let run = try await engine.run(of: event)
        #expect(run.status == "Cancelled")
        #expect(engine.systemEvents(SystemEvents.failed, of: runID).isEmpty)
        #expect(engine.systemEvents(SystemEvents.cancelled, of: runID).count == 1)
        #expect(engine.systemEvents(SystemEvents.finished, of: runID).first?.payload["data"]?["_inngest"]?["status"] == "Cancelled")
    }

    /// The end commits with its events; a crash before they are published leaves them to the
    /// relay, never lost.
    @Test func systemEventsCommittedWithTheEndSurviveACrashBeforePublishing() async throws {
        let engine = EngineHarness()
        try await engine.sync([("one", "shop/one", 0, [], FakeSDKApp.Function([.run("a", output: 1)]))])
        let event = try await engine.send("shop/one")
        try await engine.route()
        engine.store.inject(.failAfter, on: .finish)
        try await engine.drive()
        let run = try await engine.run(of: event)
        #expect(run.status == "Completed")
        let finished = try #require(engine.systemEvents(SystemEvents.finished, of: run.id).first)
        #expect(!engine.eventLog.publishedIDs.contains(finished.id))
        #expect(try await engine.eventLog.unpublished(receivedBefore: .distantFuture, limit: 10).map(\.id).contains(finished.id))
    }

    // MARK: Leases

    /// A renewal that finds the lease gone stops the call in flight at once.
    @Test func aLeaseLostOnRenewalStopsTheCall() async throws {
        let engine = EngineHarness()
        try await engine.sync([("slow", "shop/slow", 0, [], FakeSDKApp.Function([.run("long", output: 1)]))])
        let event = try await engine.send("shop/slow")
        try await engine.route()
        let runID = try #require(try await engine.runs(of: event).first?.id)
        engine.app.hold("long")
        let driving = Task { try await engine.drive() }
        await engine.app.waitUntilHeld("long")
        await engine.clock.waitForSleepers()
        #expect(try await RunCancellation(store: engine.store, events: engine.sink, clock: engine.clock).cancel(runID))
        engine.clock.advance(by: 20)
        try await driving.value
        #expect(engine.app.cancelledCalls == 1)
        #expect(try await engine.run(of: event).status == "Cancelled")
        // The run has ended: its delivery is acknowledged, not left pending for a redelivery.
        #expect(engine.work.backlog == 0)
    }

    /// A renewal that fails (the database is unreachable) is retried; the call goes on.
    @Test func aFailedRenewalIsRetriedAndTheCallGoesOn() async throws {
        let engine = EngineHarness()
        try await engine.sync([("slow", "shop/slow", 0, [], FakeSDKApp.Function([.run("long", output: 1)], output: { $0["long"] ?? .null }))])
        let event = try await engine.send("shop/slow")
        try await engine.route()
        engine.app.hold("long")
        engine.store.inject(.failBefore, on: .renew)
        let driving = Task { try await engine.drive() }
        await engine.app.waitUntilHeld("long")
        await engine.clock.waitForSleepers()
        engine.clock.advance(by: 20)
        await engine.clock.waitForSleepers()
        engine.clock.advance(by: 1)
        await engine.clock.waitForSleepers()
        engine.app.release("long")
        try await driving.value
        #expect(engine.app.cancelledCalls == 0)
        #expect(try await engine.run(of: event).status == "Completed")
    }

    /// When no renewal succeeds for a whole lease duration, the lease may have lapsed: the call
    /// stops, and the item is driven again later.
    @Test func aLeaseThatCannotBeRenewedStopsTheCall() async throws {
        let engine = EngineHarness()
        try await engine.sync([("slow", "shop/slow", 0, [], FakeSDKApp.Function([.run("long", output: 1)], output: { $0["long"] ?? .null }))])
        let event = try await engine.send("shop/slow")
        try await engine.route()
        engine.app.hold("long")
        // Renewals at 20 s, then every second after a failure; at 60 s none has succeeded for
        // a lease duration.
        for _ in 0...40 { engine.store.inject(.failBefore, on: .renew) }
        let driving = Task { try await engine.drive() }
        await engine.app.waitUntilHeld("long")
        await engine.clock.waitForSleepers()
        engine.clock.advance(by: 20)
        for _ in 0..<40 {
            await engine.clock.waitForSleepers()
            engine.clock.advance(by: 1)
        }
        try await driving.value
        #expect(engine.app.cancelledCalls == 1)
        #expect(try await engine.run(of: event).status == "Running")
        // Delivered again, by then renewable, it completes.
        engine.work.redeliverPending()
        engine.clock.advance(by: 61)
        try await engine.settle()
        #expect(try await engine.run(of: event).status == "Completed")
    }

    // MARK: Redelivery

    /// Every work entry delivered twice, and the events stream too: nothing runs twice.
    @Test func everyMessageDeliveredTwiceChangesNothing() async throws {
        let engine = EngineHarness()
        try await engine.sync([("mixed", "shop/mixed", 3, [], FakeSDKApp.Function(
            [.run("a", output: 1), .sleep("nap", duration: "10s"), .run("b", failures: 1, output: 2)],
            output: { ["a": $0["a"] ?? .null, "b": $0["b"] ?? .null] }))])
        let event = try await engine.send("shop/mixed")
        for _ in 0..<20 {
            // Route and drive, but acknowledge nothing until each delivery was seen twice.
            let deliveries = try await engine.events.read(maximum: 100)
            if !deliveries.isEmpty {
                try await engine.router.route(deliveries)
                try await engine.router.route(deliveries)
                try await engine.events.acknowledge(deliveries.map(\.entryID))
            }
            for delivery in try await engine.work.read(maximum: 100) {
                let item = try #require(delivery.fields["item"].flatMap { try? JSONValue(parsing: $0) }.flatMap(WorkItem.init(json:)))
                _ = try await engine.executors[0].drive(item)
                _ = try await engine.executors[0].drive(item)
                try await engine.work.acknowledge([delivery.entryID])
            }
            _ = try await engine.timers.fireDue()
            engine.clock.advance(by: 30)
        }
        let run = try await engine.run(of: event)
        #expect(run.status == "Completed")
        #expect(run.output == ["a": 1, "b": 2])
        #expect(engine.app.executions(run.id, "a") == 1)
        #expect(engine.app.executions(run.id, "b") == 2)
        #expect(try await engine.runs(of: event).count == 1)
    }

    // MARK: Transport loss and stranded runs

    /// An executor dies holding a run; then Redis loses every stream before its entry is
    /// reclaimed. The reconciler sees the transport was lost and republishes the live item.
    @Test func aRunWhoseExecutorDiedSurvivesARedisLoss() async throws {
        let engine = EngineHarness()
        try await engine.sync([("steps", "shop/steps", 0, [], FakeSDKApp.Function(
            [.run("a", output: 1), .run("b", output: 2)], output: { ["a": $0["a"] ?? .null, "b": $0["b"] ?? .null] }))])
        #expect(try await engine.reconciler.pass().isEmpty)
        let event = try await engine.send("shop/steps")
        try await engine.route()
        engine.store.inject(.failAfter, on: .recordStep)
        try await engine.drive()
        #expect(engine.work.backlog == 1)
        // FLUSHALL.
        engine.work.flush()
        engine.events.flush()
        engine.index.flush()
        engine.epoch.lose()
        engine.clock.advance(by: 61)
        let healed = try await engine.reconciler.pass()
        #expect(healed == [.work: 1])
        try await engine.settle()
        let run = try await engine.run(of: event)
        #expect(run.status == "Completed")
        #expect(run.output == ["a": 1, "b": 2])
        #expect(engine.app.executions(run.id, "a") == 1)
        #expect(try await engine.reconciler.pass().isEmpty)
    }

    /// Redis is lost with events published but not routed, and sleeping runs: the events are
    /// published again and the timers indexed again; a failover to another server too.
    @Test(arguments: [false, true])
    func aLostTransportIsRebuiltFromPostgres(failover: Bool) async throws {
        let engine = EngineHarness()
        try await engine.sync([("nap", "shop/nap", 0, [], FakeSDKApp.Function([.sleep("nap", duration: "30s"), .run("a", output: 1)], output: { $0["a"] ?? .null }))])
        #expect(try await engine.reconciler.pass().isEmpty)
        let sleeping = try await engine.send("shop/nap")
        try await engine.settle()
        let waiting = try await engine.send("shop/nap")
        if failover { engine.epoch.failOver() } else { engine.epoch.lose() }
        engine.events.flush()
        engine.work.flush()
        engine.index.flush()
        let healed = try await engine.reconciler.pass()
        #expect(healed == [.events: 1])
        #expect(engine.index.entries.count == 1)
        try await engine.settle()
        try await engine.advance(31)
        #expect(try await engine.run(of: sleeping).status == "Completed")
        #expect(try await engine.run(of: waiting).status == "Completed")
        #expect(try await engine.reconciler.pass().isEmpty)
    }

    /// A run left with nothing pending (a bug elsewhere) is recovered, once, and completes.
    @Test func aStrandedRunIsRecovered() async throws {
        let engine = EngineHarness()
        try await engine.sync([("steps", "shop/steps", 0, [], FakeSDKApp.Function([.run("a", output: 1)], output: { $0["a"] ?? .null }))])
        #expect(try await engine.reconciler.pass().isEmpty)
        let event = try await engine.send("shop/steps")
        try await engine.route()
        // The item's row disappears under a live run, as a bug would do.
        let item = try #require(engine.store.liveItems.first)
        let lease = try await { () async throws -> RunLease in
            guard case .granted(let lease) = try await engine.store.lease(item, owner: "bug", duration: .zero) else { throw ContractFailure() }
            return lease
        }()
        #expect(try await engine.store.release(lease, now: engine.clock.now))
        try await engine.settle()
        #expect(try await engine.run(of: event).status == "Running")
        #expect(try await engine.reconciler.pass() == [.stranded: 1])
        try await engine.settle()
        #expect(try await engine.run(of: event).status == "Completed")
        #expect(try await engine.reconciler.pass().isEmpty)
    }

    /// A workload with every kind of wait, run to the end with a reconciler pass between every
    /// move: in normal operation it heals nothing.
    @Test func theReconcilerHealsNothingInNormalOperation() async throws {
        let engine = EngineHarness()
        try await engine.sync([
            ("mixed", "shop/mixed", 3, ["shop/stop"], FakeSDKApp.Function(
                [.run("a", failures: 1, output: 1), .sleep("nap", duration: "5s"), .wait("go", event: "shop/go", timeout: "1m"),
                 .invoke("call", function: "shop-child"), .run("b", output: 2)],
                output: { ["a": $0["a"] ?? .null, "b": $0["b"] ?? .null] })),
            ("child", "shop/none", 0, [], FakeSDKApp.Function([.run("c", output: 3)], output: { $0["c"] ?? .null })),
        ])
        var heals: [Reconciler.HealKind: Int] = [:]
        func pass() async throws {
            for (kind, count) in try await engine.reconciler.pass() { heals[kind, default: 0] += count }
        }
        try await pass()
        let first = try await engine.send("shop/mixed", ["key": "1"])
        let second = try await engine.send("shop/mixed", ["key": "2"])
        for round in 0..<12 {
            try await pass()
            try await engine.route()
            try await pass()
            try await engine.drive()
            try await pass()
            _ = try await engine.timers.fireDue()
            if round == 4 { _ = try await engine.send("shop/go") }
            if round == 6 { _ = try await engine.send("shop/stop", ["key": "2"]) }
            engine.clock.advance(by: 20)
        }
        try await engine.settle()
        try await pass()
        #expect(heals.isEmpty)
        #expect(try await engine.run(of: first).status == "Completed")
        #expect(try await engine.run(of: first).output == ["a": 1, "b": 2])
        #expect(try await engine.run(of: second).status == "Cancelled")
    }

    /// An event sent right after a sync that added its function starts its run: the router
    /// checks the function versions once per batch, whatever its cache's age.
    @Test func anEventSentRightAfterASyncStartsItsRun() async throws {
        let engine = EngineHarness()
        try await engine.sync([("a", "shop/a", 0, [], FakeSDKApp.Function([.run("x", output: 1)]))])
        try await engine.send("shop/a")
        try await engine.settle()
        try await engine.sync([
            ("a", "shop/a", 0, [], FakeSDKApp.Function([.run("x", output: 1)])), ("b", "shop/b", 0, [], FakeSDKApp.Function([.run("y", output: 2)])),
        ])
        let event = try await engine.send("shop/b")
        try await engine.settle()
        #expect(try await engine.run(of: event).status == "Completed")
    }

    /// A run keeps the function version it started with when the app is synced again in the
    /// middle of it.
    @Test func aResyncDoesNotChangeRunsAlreadyStarted() async throws {
        let engine = EngineHarness()
        let script = FakeSDKApp.Function([.run("a", failures: 2, output: 1)], output: { $0["a"] ?? .null })
        try await engine.sync([("flaky", "shop/flaky", 5, [], script)])
        let event = try await engine.send("shop/flaky")
        try await engine.settle()
        #expect(try await engine.run(of: event).steps.isEmpty)
        // The new version allows one retry only; the run started with five.
        try await engine.sync([("flaky", "shop/flaky", 1, [], script)])
        for _ in 0..<3 { try await engine.advance(60) }
        let run = try await engine.run(of: event)
        #expect(run.status == "Completed")
        #expect(run.functionVersion == 1)
        #expect(engine.app.executions(run.id, "a") == 3)
    }
}

/// A drive started from inside another (a fault hook), awaited once that one has ended.
private actor SecondDrive {
    private var task: Task<Int, any Error>?
    private(set) var isDone = false

    func start(_ body: @escaping @Sendable () async throws -> Int) {
        task = Task {
            defer { Task { await self.finished() } }
            return try await body()
        }
    }

    private func finished() { isDone = true }

    func value() async throws -> Int {
        try await #require(task).value
    }
}
