import CairnCore
import CairnEngine
import CairnTesting
import Foundation
import Synchronization
import Testing

/// The timing of a run's attempts, as `RunQueries.run(_:)` shows it for the waterfall of
/// attempts (docs/operations.md, "One run"): each failed attempt from the run's history, and
/// each step with its final attempt's queue and send times, all from the manual clock.
@Suite struct AttemptTimingTests {
    /// Passes calls to the scripted app; each call takes `seconds` of the manual clock, so an
    /// attempt's send and end differ.
    final class TimedTransport: SDKTransport {
        let app: FakeSDKApp
        let seconds: TimeInterval
        let clock = Mutex<ManualClock?>(nil)

        init(_ app: FakeSDKApp, seconds: TimeInterval) {
            self.app = app
            self.seconds = seconds
        }

        func send(_ request: SDKRequest) async throws -> SDKReply {
            let reply = try await app.send(request)
            clock.withLock { $0 }?.advance(by: seconds)
            return reply
        }
    }

    static func engine(callSeconds: TimeInterval = 1) -> (EngineHarness, FakeSDKApp) {
        let app = FakeSDKApp()
        let transport = TimedTransport(app, seconds: callSeconds)
        let engine = EngineHarness(sdk: transport)
        transport.clock.withLock { $0 = engine.clock }
        return (engine, app)
    }

    @Test func aStepThatFailsTwiceThenSucceedsShowsTwoFailedAttemptsAndItsFinalAttempt() async throws {
        let (engine, app) = Self.engine()
        let script = FakeSDKApp.Function([.run("a", failures: 2, output: 1)])
        try await engine.sync([("flaky", "shop/flaky", 2, [], script)])
        app.serve("shop-flaky", script)
        let t0 = engine.clock.now
        let eventID = try await engine.send("shop/flaky")
        // The start item is published at t0 and taken up 2 s later; the call takes 1 s.
        #expect(try await engine.route() == 1)
        engine.clock.advance(by: 2)
        #expect(try await engine.drive(queuedAt: t0) == 1)
        // The retry fires at t0 + 10 and is taken up at t0 + 12.
        engine.clock.set(t0.addingTimeInterval(10))
        #expect(try await engine.timers.fireDue() == 1)
        engine.clock.advance(by: 2)
        #expect(try await engine.drive(queuedAt: t0.addingTimeInterval(10)) == 1)
        // The second retry fires at t0 + 20 and is taken up at t0 + 25: the step succeeds at
        // t0 + 26, and the discovery after it (sent at once) completes the run at t0 + 27.
        engine.clock.set(t0.addingTimeInterval(20))
        #expect(try await engine.timers.fireDue() == 1)
        engine.clock.advance(by: 5)
        #expect(try await engine.drive(queuedAt: t0.addingTimeInterval(20)) == 1)

        let run = try await engine.run(of: eventID)
        #expect(run.status == "Completed")
        #expect(run.endedAt == t0.addingTimeInterval(27))
        let a = StepID.hashed("a")
        let error: JSONValue = ["name": "Error", "message": "a failed"]
        #expect(run.failedAttempts == [
            RunRecord.FailedAttempt(
                stepID: a, attempt: 1, queuedAt: t0, startedAt: t0.addingTimeInterval(2), endedAt: t0.addingTimeInterval(3), error: error),
            RunRecord.FailedAttempt(
                stepID: a, attempt: 2, queuedAt: t0.addingTimeInterval(10), startedAt: t0.addingTimeInterval(12),
                endedAt: t0.addingTimeInterval(13), error: error),
        ])
        let step = try #require(run.steps.first)
        #expect(run.steps.count == 1)
        #expect(step.id == a)
        #expect(step.attempts == 3)
        #expect(step.queuedAt == t0.addingTimeInterval(20))
        #expect(step.startedAt == t0.addingTimeInterval(25))
        #expect(step.recordedAt == t0.addingTimeInterval(26))
    }

    @Test func aFunctionThatFailsForGoodKeepsEveryAttemptTheLastWithTheRunsEnd() async throws {
        let (engine, app) = Self.engine()
        let script = FakeSDKApp.Function([.raise("boom", failures: 5)])
        try await engine.sync([("broken", "shop/broken", 1, [], script)])
        app.serve("shop-broken", script)
        let t0 = engine.clock.now
        let eventID = try await engine.send("shop/broken")
        #expect(try await engine.route() == 1)
        #expect(try await engine.drive(queuedAt: t0) == 1)
        engine.clock.set(t0.addingTimeInterval(10))
        #expect(try await engine.timers.fireDue() == 1)
        engine.clock.advance(by: 1)
        #expect(try await engine.drive(queuedAt: t0.addingTimeInterval(10)) == 1)

        let run = try await engine.run(of: eventID)
        #expect(run.status == "Failed")
        let error: JSONValue = ["name": "Error", "message": "raised at boom"]
        #expect(run.error == error)
        // Outside any step: no step id. The second attempt failed the run, in the same write.
        #expect(run.failedAttempts == [
            RunRecord.FailedAttempt(stepID: nil, attempt: 1, queuedAt: t0, startedAt: t0, endedAt: t0.addingTimeInterval(1), error: error),
            RunRecord.FailedAttempt(
                stepID: nil, attempt: 2, queuedAt: t0.addingTimeInterval(10), startedAt: t0.addingTimeInterval(11),
                endedAt: t0.addingTimeInterval(12), error: error),
        ])
        #expect(run.endedAt == t0.addingTimeInterval(12))
        #expect(run.steps.isEmpty)
    }

    @Test func aFailedAttemptIsKeptOnlyWithItsPark() async throws {
        let (engine, app) = Self.engine()
        let script = FakeSDKApp.Function([.run("a", failures: 2, output: 1)])
        try await engine.sync([("flaky", "shop/flaky", 2, [], script)])
        app.serve("shop-flaky", script)
        let t0 = engine.clock.now
        let eventID = try await engine.send("shop/flaky")
        #expect(try await engine.route() == 1)
        // The park after the first failure fails (the process dies): neither its retry nor its
        // failed attempt is kept, and the start item stays live.
        engine.store.inject(.failBefore, on: .park)
        #expect(try await engine.drive(queuedAt: t0) == 1)
        let parked = try await engine.run(of: eventID)
        #expect(parked.failedAttempts.isEmpty)
        #expect(parked.waitingFor.isEmpty)
        #expect(engine.store.liveItems.map(\.reason) == [.start])
        // Redelivered at t0 + 5 (the stream entry keeps its publication time), the attempt
        // fails again, and this time its park keeps it.
        engine.clock.set(t0.addingTimeInterval(5))
        engine.work.redeliverPending()
        #expect(try await engine.drive(queuedAt: t0) == 1)
        let retried = try await engine.run(of: eventID)
        #expect(retried.failedAttempts == [
            RunRecord.FailedAttempt(
                stepID: StepID.hashed("a"), attempt: 1, queuedAt: t0, startedAt: t0.addingTimeInterval(5), endedAt: t0.addingTimeInterval(6),
                error: ["name": "Error", "message": "a failed"])
        ])
        #expect(retried.waitingFor.map(\.kind) == ["retry"])
        try await engine.advance(60)
        let run = try await engine.run(of: eventID)
        #expect(run.status == "Completed")
        #expect(run.failedAttempts.map(\.attempt) == [1])
        #expect(run.steps.map(\.attempts) == [2])
    }

    @Test func aParallelMemberThatFailsOnceIsOneFailedAttemptAndItsRetryTheStep() async throws {
        // Calls take no time here: the members of a group go concurrently.
        let (engine, app) = Self.engine(callSeconds: 0)
        let script = FakeSDKApp.Function([.parallel(["p1", "p2"], failures: ["p2": 1], outputs: ["p1": 1, "p2": 2])])
        try await engine.sync([("group", "shop/group", 2, [], script)])
        app.serve("shop-group", script)
        let t0 = engine.clock.now
        let eventID = try await engine.send("shop/group")
        #expect(try await engine.route() == 1)
        engine.clock.set(t0.addingTimeInterval(1))
        #expect(try await engine.drive(queuedAt: t0) == 1)
        engine.clock.set(t0.addingTimeInterval(10))
        #expect(try await engine.timers.fireDue() == 1)
        engine.clock.set(t0.addingTimeInterval(12))
        #expect(try await engine.drive(queuedAt: t0.addingTimeInterval(10)) == 1)

        let run = try await engine.run(of: eventID)
        #expect(run.status == "Completed")
        let joined = t0.addingTimeInterval(1)
        #expect(run.failedAttempts == [
            RunRecord.FailedAttempt(
                stepID: StepID.hashed("p2"), attempt: 1, queuedAt: joined, startedAt: joined, endedAt: joined,
                error: ["name": "Error", "message": "p2 failed"])
        ])
        let steps = Dictionary(uniqueKeysWithValues: run.steps.map { ($0.name, $0) })
        #expect(steps["p1"]?.attempts == 1)
        #expect(steps["p1"]?.queuedAt == joined)
        #expect(steps["p1"]?.startedAt == joined)
        #expect(steps["p2"]?.attempts == 2)
        #expect(steps["p2"]?.queuedAt == t0.addingTimeInterval(10))
        #expect(steps["p2"]?.startedAt == t0.addingTimeInterval(12))
    }
}
