import CairnCore
import CairnTesting
import Foundation
import Testing

/// Operating on runs (docs/operations.md) with the official Python SDK, through every role.
@Suite(.serialized) struct RunOperationsEndToEndTests {
    /// The run's record once it has ended, within 60 s.
    static func ended(_ harness: ExecutionEndToEndTests.Harness, run id: String) async throws -> JSONValue {
        let deadline = ContinuousClock.now + .seconds(60)
        while true {
            let run = try #require(try await harness.api.get("/v1/runs/\(id)").body["data"])
            if ["Completed", "Failed", "Cancelled"].contains(run["status"]?.stringValue ?? "") { return run }
            guard ContinuousClock.now < deadline else { throw LocalProcessError(description: "run \(id) did not end: \(run)") }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    /// POST /v1/runs/{id}/rerun with `body`: the status and the reply.
    static func rerun(_ harness: ExecutionEndToEndTests.Harness, _ id: String, _ body: JSONValue) async throws -> (status: Int, body: JSONValue) {
        let reply = try await harness.api.send("POST", "/v1/runs/\(id)/rerun", body: body.serialized())
        return (reply.status, reply.body)
    }

    @Test func aRerunFromTheThirdStepRunsOnlyStepsThreeToFiveAgain() async throws {
        try await ExecutionEndToEndTests().withHarness { harness in
            let ids = try await harness.send([["name": "test/five", "data": ["key": "rr", "base": 0]]])
            let original = try await harness.endedRun(of: try #require(ids.first))
            #expect(original["output"] == ["total": 5])
            let originalID = try #require(original["run_id"]?.stringValue)

            let fromThird = try await Self.rerun(harness, originalID, ["from_step": "s3"])
            #expect(fromThird.status == 201, "\(fromThird.body)")
            #expect(fromThird.body["data"]?["original_run_id"]?.stringValue == originalID)
            let rerunID = try #require(fromThird.body["data"]?["run_id"]?.stringValue)
            #expect(rerunID != originalID)
            let rerun = try await Self.ended(harness, run: rerunID)
            #expect(rerun["status"] == "Completed")
            #expect(rerun["output"] == ["total": 5])
            #expect(rerun["original_run_id"]?.stringValue == originalID)
            #expect(rerun["event_id"] == original["event_id"])
            #expect(rerun["steps"]?.arrayValue?.compactMap(\.["name"]) == ["s1", "s2", "s3", "s4", "s5"])
            var counts = try await harness.counts()
            #expect(["s1", "s2", "s3", "s4", "s5"].map { counts["rr:\($0)"] } == [1, 1, 2, 2, 2], "\(counts)")

            // With the event's data edited: every step again, on the new data; the edited event
            // is a record of this run only, and starts no other.
            let edited = try await Self.rerun(harness, originalID, ["data": ["key": "rr", "base": 10]])
            #expect(edited.status == 201, "\(edited.body)")
            let editedRun = try await Self.ended(harness, run: try #require(edited.body["data"]?["run_id"]?.stringValue))
            #expect(editedRun["output"] == ["total": 15])
            let editedEvent = try #require(editedRun["event_id"]?.stringValue)
            #expect(editedEvent != original["event_id"]?.stringValue)
            let startedByEdited = try await harness.api.get("/v1/events/\(editedEvent)/runs").body["data"]?.arrayValue ?? []
            #expect(startedByEdited.compactMap(\.["run_id"]) == [editedRun["run_id"]])
            counts = try await harness.counts()
            #expect(["s1", "s2", "s3", "s4", "s5"].map { counts["rr:\($0)"] } == [2, 2, 3, 3, 3], "\(counts)")

            // Bad requests name the field and change nothing.
            let unknownStep = try await Self.rerun(harness, originalID, ["from_step": "s9"])
            #expect(unknownStep.status == 400)
            #expect(unknownStep.body["error"]?.stringValue?.hasPrefix("from_step: must be the id or name of a step") == true, "\(unknownStep.body)")
            let badData = try await Self.rerun(harness, originalID, ["data": 5])
            #expect(badData.status == 400)
            #expect(badData.body["error"]?.stringValue?.hasPrefix("data: must be a JSON object") == true, "\(badData.body)")
            let extra = try await Self.rerun(harness, originalID, ["form_step": "s3"])
            #expect(extra.body["error"]?.stringValue?.hasPrefix("form_step: is not a rerun field") == true, "\(extra.body)")
            let unknownRun = try await Self.rerun(harness, ULID(milliseconds: 1, entropy: [UInt8](repeating: 1, count: 10)).description, [:])
            #expect(unknownRun.status == 404)
            #expect(try await harness.counts() == counts)
            let runsOfTheEvent = try await harness.api.get("/v1/events/\(try #require(ids.first))/runs").body["data"]?.arrayValue ?? []
            #expect(runsOfTheEvent.count == 2, "the original and the rerun from s3: \(runsOfTheEvent)")
        }
    }
}
