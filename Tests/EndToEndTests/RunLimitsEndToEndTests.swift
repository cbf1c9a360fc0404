import CairnCore
import CairnTesting
import Testing

/// Run limits on the official Python SDK through every role: a step output over 4 MiB, one over
/// the limit in a parallel group, and a run of more than 1,000 steps each fail the run naming
/// the limit. A suite of its own, beside `ExecutionEndToEndTests`: the 1,000-step run is the
/// longest of them.
@Suite(.serialized) struct RunLimitsEndToEndTests {
    @Test func exceedingALimitFailsTheRunNamingIt() async throws {
        try await ExecutionEndToEndTests().withHarness { harness in
            let ids = try await harness.send([
                ["name": "test/too-big", "data": [:]], ["name": "test/many-steps", "data": [:]],
                ["name": "test/too-big-parallel", "data": [:]],
            ])
            try #require(ids.count == 3)
            // A planned step of a parallel group is held to the same limit.
            let parallel = try await harness.endedRun(of: ids[2])
            #expect(parallel["status"] == "Failed")
            #expect(parallel["error"]?["message"]?.stringValue?.contains("step \"huge\" returned") == true, "\(parallel)")
            let big = try await harness.endedRun(of: ids[0])
            #expect(big["status"] == "Failed")
            #expect(big["error"]?["name"] == "RunLimitExceeded")
            #expect(big["error"]?["message"]?.stringValue?.contains("at most 4194304 are allowed") == true, "\(big)")
            let many = try await harness.endedRuns(of: ids[1], timeout: .seconds(120)).first
            #expect(many?["status"] == "Failed")
            let detail = try await harness.api.get("/v1/runs/\(many?["run_id"]?.stringValue ?? "")").body["data"]
            #expect(detail?["error"]?["message"]?.stringValue?.contains("at most 1000 are allowed") == true)
            #expect(detail?["steps"]?.arrayValue?.count == 1_000)
        }
    }
}
