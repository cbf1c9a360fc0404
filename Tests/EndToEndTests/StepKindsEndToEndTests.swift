import AsyncHTTPClient
import CairnCore
import CairnHTTP
import CairnTesting
import Foundation
import Testing

/// Sleeps, waits, invokes, parallel steps, fan-out, events sent from steps and cancellation, on
/// the official Python SDK through every role, with `ExecutionEndToEndTests`' harness.
///
/// Serialized for the same reason as `ExecutionEndToEndTests`; a suite of its own so that the
/// two run side by side.
@Suite(.serialized) struct StepKindsEndToEndTests {
    typealias AppTransport = ExecutionEndToEndTests.AppTransport

    @Test(arguments: AppTransport.allCases) func aSleepThenContinues(_ transport: AppTransport) async throws {
        try await ExecutionEndToEndTests().withHarness(transport: transport) { harness in
            let ids = try await harness.send([["name": "test/sleep", "data": ["key": "ks"]]])
            let run = try await harness.endedRun(of: try #require(ids.first))
            #expect(run["status"] == "Completed")
            #expect(run["output"] == "rested")
            let steps = try #require(run["steps"]?.arrayValue)
            #expect(steps.map { $0["op"] } == ["StepRun", "Sleep", "StepRun"])
            let started = try #require(run["run_started_at"]?.stringValue.flatMap(RFC3339.parseMilliseconds))
            let ended = try #require(run["ended_at"]?.stringValue.flatMap(RFC3339.parseMilliseconds))
            #expect(ended - started >= 1_000)
            let counts = try await harness.counts()
            #expect(counts["ks:before"] == 1)
            #expect(counts["ks:after"] == 1)
        }
    }

    @Test(arguments: AppTransport.allCases) func onFailureRunsWithTheOriginalEvent(_ transport: AppTransport) async throws {
        try await ExecutionEndToEndTests().withHarness(transport: transport) { harness in
            let ids = try await harness.send([["name": "test/fail", "data": ["key": "kx"]]])
            let failed = try await harness.endedRun(of: try #require(ids.first))
            #expect(failed["status"] == "Failed")
            // The run's error is the SDK's error body, unchanged: nothing added to it.
            let error = try #require(failed["error"]?.objectValue)
            #expect(Set(error.keys) == ["name", "message", "stack", "code"])
            #expect(failed["error"]?["name"] == "RuntimeError")
            #expect(failed["error"]?["message"] == "it had to fail")
            #expect(failed["error"]?["code"] == "unknown")
            let runID = try #require(failed["run_id"]?.stringValue)

            // function.failed carries the run id as its id and the original event in its data,
            // and the server's standard error: the reply's status as `error`, and no `code`.
            let failedEvent = try await harness.systemEvent(named: "inngest/function.failed", runID: runID)
            #expect(failedEvent["data"]?["error"]?["error"] == "invalid status code: 500")
            #expect(failedEvent["data"]?["error"]?["name"] == "RuntimeError")
            #expect(failedEvent["data"]?["error"]?["message"] == "it had to fail")
            #expect(failedEvent["data"]?["error"]?["stack"]?.stringValue?.hasPrefix("Traceback") == true)
            #expect(failedEvent["data"]?["error"]?["code"] == nil)
            #expect(failedEvent["data"]?["function_id"] == "cairn-e2e-fails-with-handler")
            #expect(failedEvent["data"]?["event"]?["data"] == ["key": "kx"])
            #expect(failedEvent["id"]?.stringValue == runID)
            let handler = try await harness.endedRun(of: try #require(failedEvent["internal_id"]?.stringValue))
            #expect(handler["function_id"] == "cairn-e2e-fails-with-handler-failure")
            #expect(handler["status"] == "Completed")
            #expect(handler["output"] == "kx")
            let finished = try await harness.systemEvent(named: "inngest/function.finished", runID: runID)
            #expect(finished["data"]?["_inngest"]?["status"] == "Failed")
            let counts = try await harness.counts()
            #expect(counts["kx:doomed"] == 1)
            #expect(counts["kx:on-failure"] == 1)
        }
    }

    @Test func oneEventFansOutToThreeFunctions() async throws {
        try await ExecutionEndToEndTests().withHarness { harness in
            let ids = try await harness.send([["name": "test/fan", "data": ["key": "kfan"]]])
            let runs = try await harness.endedRuns(of: try #require(ids.first), count: 3)
            #expect(Set(runs.compactMap { $0["function_id"]?.stringValue }) == ["cairn-e2e-fan-a", "cairn-e2e-fan-b", "cairn-e2e-fan-c"])
            #expect(runs.allSatisfy { $0["status"] == "Completed" })
            // Redelivery of the same event is SchedulerReplicaTests' subject.
            let counts = try await harness.counts()
            #expect(counts["kfan:fan-a"] == 1 && counts["kfan:fan-b"] == 1 && counts["kfan:fan-c"] == 1)
        }
    }

    @Test func sendEventFromAStepStartsAnotherFunction() async throws {
        try await ExecutionEndToEndTests().withHarness { harness in
            let ids = try await harness.send([["name": "test/send", "data": ["key": "kse"]]])
            let sender = try await harness.endedRun(of: try #require(ids.first))
            #expect(sender["status"] == "Completed")
            let sentID = try #require(sender["output"]?[0]?.stringValue)
            let started = try await harness.endedRun(of: sentID)
            #expect(started["function_id"] == "cairn-e2e-three-steps")
            #expect(started["output"] == ["sum": 6])
            #expect(try await harness.counts()["kse-sent:one"] == 1)
        }
    }

    /// A parallel group holds an invoke, a sleep, a wait and steps, and the function goes on
    /// once all of them are done.
    @Test func aParallelGroupHoldsEveryKindOfStep() async throws {
        try await ExecutionEndToEndTests().withHarness { harness in
            let ids = try await harness.send([["name": "test/group", "data": ["key": "kg"]]])
            let eventID = try #require(ids.first)
            let runID = try await harness.runID(of: eventID)
            try await harness.waitForStatus(runID, until: { ($0["waiting_for"]?.arrayValue ?? []).contains { $0["kind"] == "wait" } })
            _ = try await harness.send([["name": "test/group-approved", "data": ["key": "kg", "by": "ada"]]])
            let run = try await harness.endedRun(of: eventID)
            #expect(run["status"] == "Completed", "\(run)")
            #expect(run["output"] == ["invoked": ["doubled": 10], "slept": .null, "by": "ada", "sum": 3, "after": "after"])
            let counts = try await harness.counts()
            #expect(counts["kg:one"] == 1 && counts["kg:two"] == 1 && counts["kg:after"] == 1)
        }
    }

    /// Race mode: the function is called again after each member that finishes, so the fast
    /// sequence's second step runs while the slow sequence's first is still running.
    @Test func aRaceGoesOnAfterEachMemberThatFinishes() async throws {
        try await ExecutionEndToEndTests().withHarness { harness in
            let ids = try await harness.send([["name": "test/race", "data": ["key": "kr"]]])
            let run = try await harness.endedRun(of: try #require(ids.first))
            #expect(run["status"] == "Completed", "\(run)")
            #expect(try await harness.appGet("/race-order")["kr"] == ["a1", "a2", "b1", "b2"])
        }
    }

    /// `step.ai.infer`: Cairn makes the provider request the SDK describes, with its key and
    /// headers, and the provider's answer is the step's output.
    @Test func anAIStepIsMadeByCairnAgainstTheProvider() async throws {
        try await ExecutionEndToEndTests().withHarness { harness in
            let ids = try await harness.send([["name": "test/ai", "data": [:]]])
            let run = try await harness.endedRun(of: try #require(ids.first))
            #expect(run["status"] == "Completed", "\(run)")
            #expect(run["output"]?["content"]?[0]?["text"] == "hello from the fake provider")
            #expect(run["steps"]?[0]?["op"] == "AIGateway")
            let request = try #require(try await harness.appGet("/provider-requests").arrayValue?.last)
            #expect(request["headers"]?["X-Api-Key"] == "sk-test-key")
            #expect(request["headers"]?["X-My-Header"] == "my-value")
            #expect(request["body"]?["model"] == "claude-test")
            #expect(request["body"]?["messages"] == [["role": "user", "content": "hi"]])
        }
    }

    @Test func aCompletedRunEmitsFunctionFinishedWithItsResult() async throws {
        try await ExecutionEndToEndTests().withHarness { harness in
            let ids = try await harness.send([["name": "test/three", "data": ["key": "kfin"]]])
            let run = try await harness.endedRun(of: try #require(ids.first))
            let finished = try await harness.systemEvent(named: "inngest/function.finished", runID: try #require(run["run_id"]?.stringValue))
            #expect(finished["data"]?["result"] == ["sum": 6])
            #expect(finished["data"]?["function_id"] == "cairn-e2e-three-steps")
            #expect(finished["data"]?["_inngest"]?["status"] == "Completed")
        }
    }

    @Test(arguments: AppTransport.allCases) func waitForEventIsResumedByTheMatchingEventOnly(_ transport: AppTransport) async throws {
        try await ExecutionEndToEndTests().withHarness(transport: transport) { harness in
            let ids = try await harness.send([["name": "test/wait", "data": ["key": "kw"]]])
            let eventID = try #require(ids.first)
            let runID = try await harness.runID(of: eventID)
            // Sent the moment the wait exists: an event routed while the wait was being stored
            // is found by the wait's look-back, so no grace time is needed.
            try await harness.waitForStatus(runID, until: { $0["waiting_for"]?[0]?["kind"] == "wait" })
            // Another key: no match. The right key: resumes the run with that event.
            _ = try await harness.send([["name": "test/approved", "data": ["key": "other", "by": "mallory"]]])
            let approval = try await harness.send([["name": "test/approved", "data": ["key": "kw", "by": "alice"]]])
            let run = try await harness.endedRun(of: eventID)
            #expect(run["status"] == "Completed")
            #expect(run["output"]?["approved_by"] == "alice")
            #expect(run["output"]?["event_id"]?.stringValue == approval.first)
            #expect(run["steps"]?[0]?["op"] == "WaitForEvent")
            #expect(try await harness.counts()["kw:after-wait"] == 1)
        }
    }

    @Test func aTimedOutWaitReturnsNone() async throws {
        try await ExecutionEndToEndTests().withHarness { harness in
            let ids = try await harness.send([["name": "test/wait", "data": ["key": "kwt", "timeout": 1]]])
            let run = try await harness.endedRun(of: try #require(ids.first))
            #expect(run["status"] == "Completed")
            #expect(run["output"] == .null)
            #expect(run["steps"]?[0]?["output"] == .null)
        }
    }

    @Test(arguments: AppTransport.allCases) func invokeReturnsTheCalleesValueOrRaisesItsError(_ transport: AppTransport) async throws {
        try await ExecutionEndToEndTests().withHarness(transport: transport) { harness in
            let ids = try await harness.send([["name": "test/invoke", "data": [:]]])
            let run = try await harness.endedRun(of: try #require(ids.first))
            #expect(run["status"] == "Completed")
            #expect(run["output"]?["ok"] == ["doubled": 42])
            #expect(run["output"]?["failed"]?.stringValue?.contains("the child gave up") == true, "\(run)")
        }
    }

    @Test func cancellingThroughTheAPIDuringASleepEndsTheRun() async throws {
        try await ExecutionEndToEndTests().withHarness { harness in
            let ids = try await harness.send([["name": "test/cancellable", "data": ["key": "kc"]]])
            let runID = try await harness.runID(of: try #require(ids.first))
            try await harness.waitForStatus(runID, until: { $0["waiting_for"]?[0]?["kind"] == "sleep" })
            let reply = try await harness.api.send("DELETE", "/v1/runs/\(runID)")
            #expect(reply.status == 200, "\(reply.body)")
            let run = try await harness.endedRun(of: try #require(ids.first))
            #expect(run["status"] == "Cancelled")
            let again = try await harness.api.send("DELETE", "/v1/runs/\(runID)")
            #expect(again.status == 409)
            let cancelled = try await harness.systemEvent(named: "inngest/function.cancelled", runID: runID)
            #expect(cancelled["data"]?["function_id"] == "cairn-e2e-cancellable")
            #expect(try await harness.counts()["kc:after"] == nil)
        }
    }

    @Test func aCancelEventCancelsTheMatchingRunOnly() async throws {
        try await ExecutionEndToEndTests().withHarness { harness in
            let ids = try await harness.send([
                ["name": "test/cancellable", "data": ["key": "kc1"]], ["name": "test/cancellable", "data": ["key": "kc2"]],
            ])
            try #require(ids.count == 2)
            let first = try await harness.runID(of: ids[0])
            let second = try await harness.runID(of: ids[1])
            try await harness.waitForStatus(first, until: { ($0["steps"]?.arrayValue?.count ?? 0) >= 1 })
            _ = try await harness.send([["name": "test/stop", "data": ["key": "kc1"]]])
            let run = try await harness.endedRun(of: ids[0])
            #expect(run["status"] == "Cancelled")
            try await Task.sleep(for: .milliseconds(300))
            #expect(try await harness.api.get("/v1/runs/\(second)").body["data"]?["status"] == "Running")
            #expect(try await harness.api.send("DELETE", "/v1/runs/\(second)").status == 200)
        }
    }

    @Test(arguments: AppTransport.allCases) func parallelStepsEachRunOnceThenTheFunctionContinues(_ transport: AppTransport) async throws {
        try await ExecutionEndToEndTests().withHarness(transport: transport) { harness in
            let ids = try await harness.send([["name": "test/parallel", "data": ["key": "kp"]]])
            let run = try await harness.endedRun(of: try #require(ids.first))
            #expect(run["status"] == "Completed", "\(run)")
            #expect(run["output"] == ["results": ["a", "b", "c"], "after": "done"])
            let steps = try #require(run["steps"]?.arrayValue)
            #expect(Set(steps.compactMap { $0["name"]?.stringValue }) == ["a", "b", "c", "after"])
            let counts = try await harness.counts()
            #expect(counts["kp:a"] == 1)
            #expect(counts["kp:b"] == 1)
            #expect(counts["kp:shaky"] == 2)
            #expect(counts["kp:after"] == 1)
        }
    }

    @Test func anEventFromTheFutureStartsItsRunWhenItsTimeComes() async throws {
        try await ExecutionEndToEndTests().withHarness { harness in
            let due = Int64(Date().timeIntervalSince1970 * 1_000) + 2_000
            let ids = try await harness.send([["name": "test/three", "data": ["key": "kts"], "ts": .number(JSONNumber(due))]])
            let eventID = try #require(ids.first)
            try await Task.sleep(for: .milliseconds(1_000))
            #expect(try await harness.api.get("/v1/events/\(eventID)/runs").body["data"] == [])
            let run = try await harness.endedRun(of: eventID)
            #expect(run["status"] == "Completed")
            let started = try #require(run["run_started_at"]?.stringValue.flatMap(RFC3339.parseMilliseconds))
            #expect(started >= due)
        }
    }
}
