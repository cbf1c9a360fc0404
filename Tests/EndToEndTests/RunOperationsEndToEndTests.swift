import CairnCore
import CairnHTTP
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

    @Test func aPausedFunctionStartsNothingUntilResumedAndResumingReplaysWhatItSkipped() async throws {
        try await ExecutionEndToEndTests().withHarness { harness in
            let pause = try await harness.api.send("POST", "/v1/functions/cairn-e2e-three-steps/pause")
            #expect(pause.status == 200 && pause.body["data"]?["paused"] == true, "\(pause.body)")
            let ids = try await harness.send([["name": "test/three", "data": ["key": "paused"]]])
            let skipped = try await harness.endedRuns(of: try #require(ids.first))
            #expect(skipped.count == 1)
            #expect(skipped.first?["status"] == "Skipped" && skipped.first?["skip"]?["reason"] == "paused", "\(skipped)")
            // Other functions go on.
            let echo = try await harness.send([["name": "test/echo", "data": ["value": "echo"]]])
            #expect(try await harness.endedRun(of: try #require(echo.first))["status"] == "Completed")
            #expect(try await harness.counts()["paused:one"] == nil)

            let unknown = try await harness.api.send("POST", "/v1/functions/cairn-e2e-nope/pause")
            #expect(unknown.status == 404 && unknown.body["error"]?.stringValue?.hasPrefix("function_id: must name a synced function") == true)
            let resume = try await harness.api.send("POST", "/v1/functions/cairn-e2e-three-steps/resume", body: Array(#"{"replay": true}"#.utf8))
            #expect(resume.status == 200, "\(resume.body)")
            let job = try #require(resume.body["data"]?["replay"]?["bulk_id"]?.stringValue)
            let replayed = try await Self.bulk(harness.api, job) { $0["status"] == "Completed" }
            #expect(replayed["done"] == 1, "\(replayed)")
            let runs = try await harness.endedRuns(of: try #require(ids.first), count: 2)
            #expect(runs.compactMap(\.["status"]?.stringValue).sorted() == ["Completed", "Skipped"], "\(runs)")
            #expect(try await harness.counts()["paused:three"] == 1)
            // Resumed: a new event starts its run again.
            let after = try await harness.send([["name": "test/three", "data": ["key": "resumed"]]])
            #expect(try await harness.endedRun(of: try #require(after.first))["status"] == "Completed")
            let again = try await harness.api.send("POST", "/v1/functions/cairn-e2e-three-steps/resume")
            #expect(again.status == 409, "\(again.body)")
        }
    }

    /// Runs the `cairn` CLI against `origin`; its exit status and everything it printed.
    static func cli(_ arguments: [String], origin: String) async throws -> (status: Int32, output: String) {
        let (process, pipe) = try ExecutableTests().launch("cairn", arguments: arguments + ["--api", origin], environment: [:])
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        #expect(await ExecutableTests().waitForExit(process, within: 60), "cairn \(arguments) did not exit")
        return (process.terminationStatus, String(decoding: output, as: UTF8.self))
    }

    @Test func theCLISendsListsShowsRerunsPausesAndRefusesBadInput() async throws {
        try await ExecutionEndToEndTests().withHarness { harness in
            let origin = harness.api.origin
            let sent = try await Self.cli(["send", "test/three", "--data", #"{"key": "cli"}"#], origin: origin)
            #expect(sent.status == 0, "\(sent.output)")
            let eventID = sent.output.trimmingCharacters(in: .whitespacesAndNewlines)
            let run = try await harness.endedRun(of: eventID)
            let runID = try #require(run["run_id"]?.stringValue)

            let listed = try await Self.cli(["runs", "--function", "cairn-e2e-three-steps", "--status", "Completed"], origin: origin)
            #expect(listed.status == 0 && listed.output.contains(runID) && listed.output.contains("RUN"), "\(listed.output)")
            let shown = try await Self.cli(["run", runID], origin: origin)
            #expect(shown.status == 0, "\(shown.output)")
            for line in ["status    Completed", "STEP", "one", "two", "three"] { #expect(shown.output.contains(line), "\(shown.output)") }

            let rerun = try await Self.cli(["rerun", runID, "--from-step", "three", "--json"], origin: origin)
            #expect(rerun.status == 0, "\(rerun.output)")
            let rerunID = try #require(try JSONValue(parsing: Array(rerun.output.utf8))["data"]?["run_id"]?.stringValue)
            #expect(try await Self.ended(harness, run: rerunID)["output"] == ["sum": 6])
            let counts = try await harness.counts()
            #expect(counts["cli:three"] == 2 && counts["cli:two"] == 1, "\(counts)")

            let paused = try await Self.cli(["pause", "cairn-e2e-three-steps"], origin: origin)
            #expect(paused.status == 0 && paused.output.hasPrefix("paused cairn-e2e-three-steps"), "\(paused.output)")
            let resumed = try await Self.cli(["resume", "cairn-e2e-three-steps", "--replay"], origin: origin)
            #expect(resumed.status == 0 && resumed.output.contains("Completed: 0 matched, 0 replayed"), "\(resumed.output)")

            // A bulk cancel followed to its end: no run of the function is unfinished.
            let bulk = try await Self.cli(["cancel", "--function", "cairn-e2e-three-steps", "--json"], origin: origin)
            #expect(bulk.status == 0, "\(bulk.output)")
            let job = try JSONValue(parsing: Array(bulk.output.utf8))
            #expect(job["status"] == "Completed" && job["kind"] == "cancel" && job["done"] == 0, "\(bulk.output)")

            // Bad input: a clear error naming the option or field, exit status 1 or 64.
            let noFunction = try await Self.cli(["replay"], origin: origin)
            #expect(noFunction.status != 0 && noFunction.output.contains("--function: is required"), "\(noFunction.output)")
            let badData = try await Self.cli(["rerun", runID, "--data", "[1]"], origin: origin)
            #expect(badData.status != 0 && badData.output.contains("--data: must be a JSON object"), "\(badData.output)")
            let badID = try await Self.cli(["run", "nope"], origin: origin)
            #expect(badID.status == 1 && badID.output.contains("id: must be a run id (ULID)"), "\(badID.output)")
            let badStep = try await Self.cli(["rerun", runID, "--from-step", "nine"], origin: origin)
            #expect(badStep.status == 1 && badStep.output.contains("from_step: must be the id or name of a step"), "\(badStep.output)")
            let both = try await Self.cli(["cancel", runID, "--function", "x"], origin: origin)
            #expect(both.status != 0 && both.output.contains("either a run id or --function"), "\(both.output)")
            let unreachable = try await Self.cli(["runs"], origin: "http://127.0.0.1:1")
            #expect(unreachable.status != 0 && unreachable.output.contains("could not reach Cairn at http://127.0.0.1:1"), "\(unreachable.output)")
        }
    }

    /// Every run `query` lists, following the cursor.
    static func list(_ api: CairnAPIClient, _ query: String) async throws -> [JSONValue] {
        var runs: [JSONValue] = []
        var cursor = ""
        while true {
            let page = try await api.get("/v1/runs?\(query)&limit=100\(cursor.isEmpty ? "" : "&cursor=\(cursor)")").body
            runs += try #require(page["data"]?.arrayValue, "\(page)")
            guard let next = page["metadata"]?["cursor"]?.stringValue else { return runs }
            cursor = next
        }
    }

    /// The bulk job once `done` holds, within 120 s.
    static func bulk(_ api: CairnAPIClient, _ id: String, until done: (JSONValue) -> Bool) async throws -> JSONValue {
        let deadline = ContinuousClock.now + .seconds(120)
        while true {
            let job = try #require(try await api.get("/v1/bulk/\(id)").body["data"])
            if done(job) { return job }
            guard ContinuousClock.now < deadline else { throw LocalProcessError(description: "bulk job \(id) never got there: \(job)") }
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    /// 1,000 sleeping runs, half of them tenant t1: a bulk cancel of `event.data.tenant == "t1"`
    /// cancels exactly those. Then a bulk replay of the cancelled runs, whose worker process is
    /// killed part-way: another worker takes the job over and every run is replayed once.
    @Test func aBulkCancelTakesExactlyTheMatchingRunsAndAKilledReplayResumesWithoutDuplicates() async throws {
        // This process serves the API but works no bulk job: cairn-api processes started below do.
        let environment = ExecutionEndToEndTests.environment.merging([
            "CAIRN_BULK_WORKERS": "0", "CAIRN_BULK_PAGE_SIZE": "5", "CAIRN_BULK_LEASE_SECONDS": "2",
        ]) { $1 }
        try await withRunningCairn(environment: environment) { cairn in
            let api = CairnAPIClient(origin: cairn.origin, key: nil)
            let binaries = ExecutableTests()
            let workers = Launched()
            @Sendable func launchWorker() async throws -> Process {
                let port = try TestEnvironment.freePort()
                let (process, _) = try binaries.launch(
                    "cairn-api",
                    environment: cairn.environment.merging([
                        "CAIRN_PORT": String(port), "CAIRN_LOG_LEVEL": "error", "CAIRN_BULK_WORKERS": "1",
                    ]) { $1 })
                workers.append(process)
                try await ConcurrencyEndToEndTests.waitUntilReady(port: port, process: process)
                return process
            }
            defer { for process in workers.all where process.isRunning { kill(process.processIdentifier, SIGKILL) } }
            try await withPythonApp(pointingAt: cairn, environment: [:]) { app in
                let sync = try await api.requestSync(url: app.serveURL)
                try #require(sync.status == 200, "\(sync.body)")
                let harness = ExecutionEndToEndTests.Harness(api: api, app: app)
                for batch in 0..<5 {
                    let events = (0..<200).map { n -> JSONValue in
                        let index = batch * 200 + n
                        return ["name": "test/nap", "data": ["key": .string("nap\(index)"), "tenant": .string(index % 2 == 0 ? "t1" : "t2")]]
                    }
                    #expect(try await harness.send(.array(events)).count == 200)
                }
                // Every run has taken its first step and sleeps.
                let deadline = ContinuousClock.now + .seconds(120)
                while try await harness.counts().objectValue?.count ?? 0 < 1_000 {
                    guard ContinuousClock.now < deadline else { throw LocalProcessError(description: "the 1,000 runs did not all start") }
                    try await Task.sleep(for: .milliseconds(100))
                }
                let function = "function_id=cairn-e2e-napper"
                try #require(try await Self.list(api, "\(function)&status=Running").count == 1_000)

                let worker = try await launchWorker()
                let cancel = try await api.send(
                    "POST", "/v1/cancellations", body: (["function_id": "cairn-e2e-napper", "if": #"event.data.tenant == "t1""#] as JSONValue).serialized())
                #expect(cancel.status == 202, "\(cancel.body)")
                let cancelID = try #require(cancel.body["data"]?["bulk_id"]?.stringValue)
                let cancelled = try await Self.bulk(api, cancelID) { $0["status"] == "Completed" }
                #expect(cancelled["matched"] == 500 && cancelled["done"] == 500, "\(cancelled)")
                let cancelledRuns = try await Self.list(api, "\(function)&status=Cancelled")
                let runningRuns = try await Self.list(api, "\(function)&status=Running")
                #expect(cancelledRuns.count == 500 && runningRuns.count == 500)
                for (runs, tenant) in [(cancelledRuns, "t1"), (runningRuns, "t2")] {
                    for run in runs {
                        let event = try await api.get("/v1/events/\(try #require(run["event_id"]?.stringValue))").body
                        #expect(event["data"]?["data"]?["tenant"]?.stringValue == tenant, "\(run)")
                    }
                }

                let replay = try await api.send(
                    "POST", "/v1/replays", body: (["function_id": "cairn-e2e-napper", "statuses": ["Cancelled"]] as JSONValue).serialized())
                #expect(replay.status == 202, "\(replay.body)")
                let replayID = try #require(replay.body["data"]?["bulk_id"]?.stringValue)
                _ = try await Self.bulk(api, replayID) { ($0["done"]?.int64Value ?? 0) >= 10 }
                kill(worker.processIdentifier, SIGKILL)
                let partWay = try #require(try await api.get("/v1/bulk/\(replayID)").body["data"])
                #expect(partWay["status"] == "Running", "the replay ended before its worker was killed: \(partWay)")
                _ = try await launchWorker()
                let replayed = try await Self.bulk(api, replayID) { $0["status"] == "Completed" }
                #expect(replayed["matched"] == 500, "\(replayed)")
                let replays = try await Self.list(api, "\(function)&bulk_id=\(replayID)")
                #expect(replays.count == 500)
                let originals = Set(replays.compactMap { $0["original_run_id"]?.stringValue })
                #expect(originals == Set(cancelledRuns.compactMap { $0["run_id"]?.stringValue }))
            }
            await ConcurrencyEndToEndTests.stop(workers.all.filter(\.isRunning), binaries, name: "cairn-api")
        }
    }
}
