import CairnCore
@testable import CairnEngine
import CairnTesting
import Foundation
import Logging
import Testing

/// Reruns, bulk cancel and replay, and pausing (docs/operations.md) on in-memory ports and a
/// manual clock.
@Suite struct RunOperationsTests {
    struct Operations {
        let engine: EngineHarness
        let jobs = InMemoryBulkStore()
        let operations: FunctionOperations
        let rerun: RunRerun

        init(_ engine: EngineHarness) {
            self.engine = engine
            let catalog = FunctionCatalog(registry: engine.registry, clock: engine.clock)
            operations = FunctionOperations(registry: engine.registry, catalog: catalog, runs: engine.store, jobs: jobs, clock: engine.clock)
            rerun = RunRerun(
                store: engine.store, catalog: catalog, eventLog: engine.eventLog,
                work: engine.work, clock: engine.clock)
        }

        /// A bulk worker named `owner`, taking pages of `pageSize`.
        func worker(_ owner: String, pageSize: Int = 200) -> BulkOperator {
            var logger = Logger(label: "cairn.test.bulk")
            logger.logLevel = .critical
            return BulkOperator(
                store: engine.store, jobs: jobs, eventLog: engine.eventLog,
                cancellation: RunCancellation(store: engine.store, events: engine.sink, clock: engine.clock), rerun: rerun, clock: engine.clock,
                logger: logger, owner: owner, pageSize: pageSize)
        }

        func function(_ slug: String) async throws -> FunctionRecord {
            try await operations.function(slug: "shop-\(slug)")
        }
    }

    /// Runs that sleep for an hour after their first step: they stay unfinished.
    static let sleeper = FakeSDKApp.Function([.run("a", output: 1), .sleep("nap", duration: "1h"), .run("b", output: 2)])

    @Test func aBulkCancelCancelsExactlyTheRunsItsExpressionMatches() async throws {
        let engine = EngineHarness()
        let ops = Operations(engine)
        try await engine.sync([("sleeper", "shop/sleep", 0, [], Self.sleeper)])
        var tenants: [ULID: String] = [:]
        for n in 0..<30 {
            let tenant = n % 3 == 0 ? "t1" : "t2"
            tenants[try await engine.send("shop/sleep", ["tenant": .string(tenant), "n": .number(JSONNumber(n))])] = tenant
        }
        try await engine.settle()
        #expect(engine.runs(ofFunction: "sleeper").allSatisfy { $0.status == "Running" })
        // A job takes the runs created before it was asked for.
        engine.clock.advance(by: 1)

        var selection = FunctionOperations.Selection(function: try await ops.function("sleeper"), expression: #"event.data.tenant == "t1""#)
        selection.idempotencyKey = "cancel-t1"
        let job = try await ops.operations.submit(.cancel, selection)
        // Asked again with the same key: the same job.
        #expect(try await ops.operations.submit(.cancel, selection).id == job.id)
        // Pages of 4, so the job takes several.
        #expect(try await ops.worker("w1", pageSize: 4).workOne())
        let ended = try #require(try await ops.jobs.bulk(id: job.id))
        #expect(ended.status == .completed)
        // The expression's equality narrows the runs walked (`BulkJob.filter`) to the 10 of t1.
        #expect(ended.total == 10 && ended.scanned == 10 && ended.matched == 10 && ended.done == 10)
        for run in engine.runs(ofFunction: "sleeper") {
            let tenant = try #require(run.eventID.flatMap { tenants[$0] })
            #expect(run.status == (tenant == "t1" ? "Cancelled" : "Running"), "\(run.id) of \(tenant)")
        }
        #expect(try await ops.worker("w1").workOne() == false)
    }

    @Test func aBulkReplayTakenOverMidPageStartsEachRunOnce() async throws {
        let engine = EngineHarness()
        let ops = Operations(engine)
        try await engine.sync([("flaky", "shop/flaky", 0, [], FakeSDKApp.Function([.run("a", failures: 1, output: 1)]))])
        for n in 0..<9 { _ = try await engine.send("shop/flaky", ["n": .number(JSONNumber(n))]) }
        try await engine.settle()
        let failed = engine.runs(ofFunction: "flaky")
        #expect(failed.count == 9 && failed.allSatisfy { $0.status == "Failed" })
        engine.clock.advance(by: 1)

        let job = try await ops.operations.submit(.replay, FunctionOperations.Selection(function: try await ops.function("flaky")))
        // A worker claims the job and handles one page of 4, then dies before recording it.
        let first = ops.worker("w1", pageSize: 4)
        var claimed = try #require(try await ops.jobs.claimBulk(owner: "w1", lease: first.lease, now: engine.clock.now))
        try await first.page(&claimed, expression: nil)
        #expect(claimed.done == 4)
        // Its lease still holds: nobody else takes the job.
        #expect(try await ops.worker("w2").workOne() == false)
        engine.clock.advance(by: 31)
        #expect(try await ops.worker("w2", pageSize: 4).workOne())
        let ended = try #require(try await ops.jobs.bulk(id: job.id))
        #expect(ended.status == .completed)
        // The page handled twice replays nothing twice: one replay per failed run.
        #expect(ended.matched == 9 && ended.done == 5)
        let replays = engine.runs(ofFunction: "flaky").filter { $0.bulkID == job.id.description }
        #expect(replays.count == 9)
        #expect(Set(replays.compactMap(\.originalRunID)) == Set(failed.map(\.id)))
        // The replays are driven like any run (the script fails each run's first attempt).
        try await engine.settle()
        for replay in replays {
            #expect(try await engine.store.run(replay.id)?.status == "Failed")
            #expect(engine.app.executions(replay.id, "a") == 1)
        }
    }

    @Test func aPausedFunctionStartsNothingAndResumingCanReplayWhatItSkipped() async throws {
        let engine = EngineHarness()
        let ops = Operations(engine)
        try await engine.sync([("one", "shop/one", 0, [], FakeSDKApp.Function([.run("a", output: 1)]))])
        let before = try await engine.send("shop/one", ["n": 0])
        try await engine.settle()
        let function = try await ops.function("one")
        let pausedAt = try await ops.operations.pause(function)
        engine.clock.advance(by: 1)
        // Pausing twice keeps the first date.
        #expect(try await ops.operations.pause(function) == pausedAt)
        var skipped: [ULID] = []
        for n in 1...3 { skipped.append(try await engine.send("shop/one", ["n": .number(JSONNumber(n))])) }
        try await engine.settle()
        for event in skipped {
            let run = try await engine.run(of: event)
            #expect(run.status == "Skipped" && run.skipReason == "paused")
        }
        #expect(try await engine.run(of: before).status == "Completed")
        engine.clock.advance(by: 1)

        let job = try #require(try await ops.operations.resume(try await ops.function("one"), replay: true))
        #expect(job.skipReason == "paused" && job.statuses == ["Skipped"])
        let after = try await engine.send("shop/one", ["n": 4])
        try await engine.settle()
        #expect(try await engine.run(of: after).status == "Completed")
        #expect(try await ops.worker("w1").workOne())
        try await engine.settle()
        #expect(try await ops.jobs.bulk(id: job.id)?.done == 3)
        for event in skipped {
            let runs = try await engine.runs(of: event)
            #expect(runs.map(\.status).sorted() == ["Completed", "Skipped"], "\(runs)")
        }
        // Resuming a running function is refused and changes nothing.
        await #expect(throws: OperationRefusal.self) { try await ops.operations.resume(try await ops.function("one"), replay: true) }
    }

    @Test func aRerunFromAStepMemoizesTheStepsBeforeIt() async throws {
        let engine = EngineHarness()
        let ops = Operations(engine)
        try await engine.sync([("three", "shop/three", 0, [], FakeSDKApp.Function(
            [.run("s1", output: 1), .run("s2", output: 2), .run("s3", output: 3)], output: { $0["s3"] ?? .null }))])
        let event = try await engine.send("shop/three")
        try await engine.settle()
        let original = try await engine.run(of: event)
        let runID = try await ops.rerun.rerun(RunRerun.Request(runID: original.id, fromStep: "s2"))
        try await engine.settle()
        let rerun = try #require(try await engine.store.run(runID))
        #expect(rerun.status == "Completed" && rerun.originalRunID == original.id)
        #expect(rerun.steps.map(\.name) == ["s1", "s2", "s3"])
        // s1 was copied from the original run, not run again; s2 and s3 ran again.
        #expect(engine.app.executions(runID, "s1") == 0)
        #expect(engine.app.executions(runID, "s2") == 1)
        #expect(engine.app.executions(runID, "s3") == 1)
        await #expect(throws: OperationRefusal.self) { try await ops.rerun.rerun(RunRerun.Request(runID: original.id, fromStep: "nope")) }
    }
}
