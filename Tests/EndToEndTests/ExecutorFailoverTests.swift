import CairnCore
import CairnHTTP
import CairnRoles
import CairnTesting
import Foundation
import Testing

/// An executor stops dead in the middle of a step; another takes the run over once the lease
/// lapses. Nothing is lost, recorded steps are not run again, and only the interrupted step's
/// body runs twice (the SDK contract allows that).
@Suite struct ExecutorFailoverTests {
    @Test func aRunSurvivesItsExecutorDyingMidStep() async throws {
        let environment = ["CAIRN_EXECUTOR_LEASE_SECONDS": "2"]
        try await withRunningCairn(roles: [.eventAPI, .api, .scheduler], environment: environment) { cairn in
            let api = CairnAPIClient(origin: cairn.origin, key: nil)
            try await withPythonApp(pointingAt: cairn) { app in
                try #require(try await api.requestSync(url: app.serveURL).status == 200)
                let harness = ExecutionEndToEndTests.Harness(api: api, app: app)
                let workers = cairn.sharing(roles: [.executor], environment: environment)

                // The first executor takes the run and dies during the slow step.
                let ids = try await harness.send([["name": "test/slow", "data": ["key": "kfo"]]])
                let eventID = try #require(ids.first)
                try await workers.runUntil {
                    let deadline = ContinuousClock.now + .seconds(20)
                    while try await harness.counts()["kfo:slow"] != 1 {
                        guard ContinuousClock.now < deadline else { throw LocalProcessError(description: "the slow step never started") }
                        try await Task.sleep(for: .milliseconds(20))
                    }
                }
                // A second executor takes over after the lease lapses.
                let run = try await workers.running { try await harness.endedRun(of: eventID) }
                #expect(run["status"] == "Completed")
                #expect(run["output"] == "survived")
                let counts = try await harness.counts()
                #expect(counts["kfo:first"] == 1)
                #expect(counts["kfo:slow"] == 2)
                #expect(counts["kfo:last"] == 1)
            }
        }
    }
}
