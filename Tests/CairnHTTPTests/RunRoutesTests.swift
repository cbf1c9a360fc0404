import CairnCore
import CairnEngine
import CairnHTTP
import CairnTesting
import Foundation
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing

/// `GET /v1/runs/{id}` over the in-memory store: what the run-detail waterfall reads.
@Suite struct RunRoutesTests {
    @Test func aRunShowsItsStepsTimingAndItsFailedAttempts() async throws {
        let clock = ManualClock(start: Date(timeIntervalSince1970: 1_800_000_000))
        let registry = InMemoryAppRegistry()
        let log = InMemoryEventLog()
        let store = InMemoryRunStore(registry: registry, eventLog: log, clock: clock)
        let f = try await RunStoreFixture.make(store: store, registry: registry, eventLog: log, t0: clock.now)
        let t0 = f.t0
        let first = try await f.startedRun()
        // Attempt 1 of step "a" fails; its retry runs it, then "b" runs, which has no attempt
        // times (a step no SDK call produced).
        let retry = WorkItem(runID: first.runID, reason: .retry, call: SDKCall(stepID: "step", attempt: 1), generation: first.token)
        var parking = Parking(timers: [(retry, t0.addingTimeInterval(10))])
        let error = try JSONValue(parsing: #"{"name":"Error","message":"a failed","code":12345678901234567890123}"#)
        parking.failedAttempts = [
            RunRecord.FailedAttempt(
                stepID: "a", attempt: 1, queuedAt: t0, startedAt: t0.addingTimeInterval(2), endedAt: t0.addingTimeInterval(3), error: error)
        ]
        #expect(try await store.park(first, parking, now: t0.addingTimeInterval(3)))
        #expect(try await store.fireDueTimers(now: t0.addingTimeInterval(10), limit: 10) == [retry])
        let second = try await f.lease(retry, owner: "one")
        var a = f.step("a", position: 0)
        a.attempts = 2
        a.queuedAt = t0.addingTimeInterval(10)
        a.startedAt = t0.addingTimeInterval(12)
        #expect(try await store.recordStep(second, a, now: t0.addingTimeInterval(13)) == .recorded)
        #expect(try await store.recordStep(second, f.step("b", position: 1), now: t0.addingTimeInterval(14)) == .recorded)

        let routes = RunRoutes(
            runs: store, cancellation: RunCancellation(store: store, events: InMemoryEventSink(log: log, stream: InMemoryStream(), clock: clock), clock: clock),
            rerun: RunRerun(store: store, catalog: FunctionCatalog(registry: registry, clock: clock), eventLog: log, work: InMemoryStream(), clock: clock),
            clock: clock, authorization: APIAuthorization(keys: nil))
        let router = Router()
        routes.register(on: router)
        try await Application(router: router).test(.router) { client in
            let run = try await client.execute(uri: "/v1/runs/\(first.runID)", method: .get) { response in
                #expect(response.status == .ok)
                return try JSONValue(parsing: String(buffer: response.body))["data"]
            }
            let steps = try #require(run?["steps"]?.arrayValue)
            #expect(steps.count == 2)
            #expect(steps[0]["queued_at"] == "2027-01-15T08:00:10.000Z")
            #expect(steps[0]["started_at"] == "2027-01-15T08:00:12.000Z")
            #expect(steps[0]["recorded_at"] == "2027-01-15T08:00:13.000Z")
            #expect(steps[1]["queued_at"] == .null)
            #expect(steps[1]["started_at"] == .null)
            // The SDK's error comes back as it was sent.
            #expect(run?["failed_attempts"]?.jsonString == """
                [{"step_id":"a","attempt":1,"queued_at":"2027-01-15T08:00:00.000Z","started_at":"2027-01-15T08:00:02.000Z",\
                "ended_at":"2027-01-15T08:00:03.000Z","error":{"name":"Error","message":"a failed","code":12345678901234567890123}}]
                """)
        }
    }
}
