import CairnCore
import Foundation
import Testing

/// What each SDK reply means for a run, as a table over the pure decision.
@Suite struct RunDecisionTests {
    static let now = Date(timeIntervalSince1970: 1_800_000_000)

    static func ops(_ json: String) throws -> SDKOutcome {
        try SDKOutcome.classify(status: 206, headers: [:], body: Array(json.utf8), now: now)
    }

    static func decide(_ outcome: SDKOutcome, call: SDKCall = .discovery, maxAttempts: Int = 5) -> [RunAction] {
        RunDecision.decide(outcome: outcome, call: call, maxAttempts: maxAttempts, now: now, jitter: 0)
    }

    @Test func aReturnedValueCompletesTheRun() throws {
        let outcome = try SDKOutcome.classify(status: 200, headers: [:], body: Array(#"{"n":9007199254740993}"#.utf8), now: Self.now)
        #expect(Self.decide(outcome) == [.complete(output: ["n": .number(JSONNumber(literal: "9007199254740993")!)])])
        #expect(try SDKOutcome.classify(status: 200, headers: [:], body: [], now: Self.now) == .completed(output: .null))
        #expect(Self.decide(try Self.ops(#"[{"id":"c","op":"RunComplete","data":[1]}]"#)) == [.complete(output: [1])])
    }

    @Test func aStepRunIsRecordedAndDiscoveryFollows() throws {
        let actions = Self.decide(try Self.ops(#"[{"id":"abc","op":"StepRun","name":"one","displayName":"One","data":{"x":1},"opts":null}]"#))
        #expect(actions == [.recordStep(id: "abc", name: "One", op: "StepRun", result: ["data": ["x": 1]]), .call(.discovery)])
        // A single op object (older SDKs) and a lower-case op name are accepted.
        #expect(Self.decide(try Self.ops(#"{"id":"abc","op":"steprun","data":null}"#)).first == .recordStep(id: "abc", name: "abc", op: "StepRun", result: ["data": nil]))
    }

    @Test func aStepErrorRetriesTheSameCallUntilAttemptsRunOut() throws {
        let error = #"{"name":"RuntimeError","message":"not yet"}"#
        let outcome = try Self.ops(#"[{"id":"s1","op":"StepError","error":\#(error)}]"#)
        let retried = Self.decide(outcome, call: SDKCall(stepID: "step", attempt: 1), maxAttempts: 4)
        #expect(retried == [.retry(SDKCall(stepID: "step", attempt: 2), at: Self.now.addingTimeInterval(30), error: ["name": "RuntimeError", "message": "not yet"])])
        let exhausted = Self.decide(outcome, call: SDKCall(stepID: "step", attempt: 3), maxAttempts: 4)
        #expect(exhausted == [.recordStep(id: "s1", name: "s1", op: "StepFailed", result: ["error": ["name": "RuntimeError", "message": "not yet"]]), .call(.discovery)])
    }

    @Test func aCallThatReachedNoAppGoesAgainWithoutSpendingAnAttempt() throws {
        let error = RunFailure.cairn(name: "Error", message: "no connected worker serves it")
        let outcome = SDKOutcome.failed(error, retry: RetryDirective(notDelivered: true))
        // Even a function without retries, on its only attempt, waits for a worker.
        let call = SDKCall(stepID: "step", attempt: 0)
        #expect(Self.decide(outcome, call: call, maxAttempts: 1) == [.retry(call, at: Self.now.addingTimeInterval(15), error: error.body)])
        let later = SDKCall(stepID: "step", attempt: 2)
        #expect(Self.decide(outcome, call: later, maxAttempts: 3) == [.retry(later, at: Self.now.addingTimeInterval(60), error: error.body)])
        // Delivered and failed, the same call spends its last attempt.
        #expect(Self.decide(.failed(error, retry: RetryDirective()), call: call, maxAttempts: 1) == [.fail(error)])
    }

    @Test func aStepErrorMarkedNoRetryFailsTheStepAtOnce() throws {
        let outcome = try SDKOutcome.classify(
            status: 206, headers: ["x-inngest-no-retry": "true"],
            body: Array(#"[{"id":"s1","op":"StepError","error":{"name":"NonRetriableError","message":"no"}}]"#.utf8), now: Self.now)
        #expect(Self.decide(outcome).first == .recordStep(id: "s1", name: "s1", op: "StepFailed", result: ["error": ["name": "NonRetriableError", "message": "no"]]))
    }

    @Test func aStepFailedIsRecordedForTheSDKToRaise() throws {
        let actions = Self.decide(try Self.ops(#"[{"id":"s1","op":"StepFailed","error":{"name":"E","message":"m"}}]"#))
        #expect(actions == [.recordStep(id: "s1", name: "s1", op: "StepFailed", result: ["error": ["name": "E", "message": "m"]]), .call(.discovery)])
    }

    @Test func aPlannedStepIsCalledOnItsOwn() throws {
        #expect(Self.decide(try Self.ops(#"[{"id":"p1","op":"StepPlanned","displayName":"p"}]"#)) == [.call(SDKCall(stepID: "p1", attempt: 0))])
    }

    @Test func sleepsReadTheDurationFromOptsOrName() throws {
        #expect(Self.decide(try Self.ops(#"[{"id":"z","op":"Sleep","name":"1m"}]"#)) == [.sleep(stepID: "z", name: "1m", until: Self.now.addingTimeInterval(60))])
        #expect(Self.decide(try Self.ops(#"[{"id":"z","op":"Sleep","name":"nap","opts":{"duration":"2h"}}]"#)) == [.sleep(stepID: "z", name: "nap", until: Self.now.addingTimeInterval(7_200))])
        #expect(Self.decide(try Self.ops(#"[{"id":"z","op":"Sleep","name":"2027-01-15T09:00:00.000Z"}]"#)) == [.sleep(stepID: "z", name: "2027-01-15T09:00:00.000Z", until: Self.now.addingTimeInterval(3_600))])
        guard case .fail(let failure)? = Self.decide(try Self.ops(#"[{"id":"z","op":"Sleep","name":"400d"}]"#)).first else {
            Issue.record("a sleep beyond 366 days should fail the run")
            return
        }
        #expect(failure.body["name"] == "InvalidOperation")
    }

    static func retryTime(_ actions: [RunAction]) -> Date? {
        guard case .retry(_, let at, _)? = actions.first else { return nil }
        return at
    }

    @Test func functionErrorsRetryWithBackoffOrRetryAfterThenFail() throws {
        let body = Array(#"{"name":"Error","message":"boom","code":"unknown"}"#.utf8)
        let plain = try SDKOutcome.classify(status: 500, headers: [:], body: body, now: Self.now)
        guard case .retry(let call, let at, let error)? = Self.decide(plain, call: .discovery).first else {
            Issue.record("a 500 should be retried")
            return
        }
        #expect(call == SDKCall(stepID: "step", attempt: 1))
        #expect(at == Self.now.addingTimeInterval(15))
        // The SDK's error body is kept exactly as sent: nothing added, nothing dropped.
        #expect(error.jsonString == #"{"name":"Error","message":"boom","code":"unknown"}"#)
        guard case .fail(let failure)? = Self.decide(plain, call: SDKCall(stepID: "step", attempt: 4), maxAttempts: 5).first else {
            Issue.record("the last attempt should fail the run")
            return
        }
        #expect(failure.body.jsonString == #"{"name":"Error","message":"boom","code":"unknown"}"#)
        #expect(failure.summary == "invalid status code: 500")

        let noRetry = try SDKOutcome.classify(status: 500, headers: ["x-inngest-no-retry": "true"], body: body, now: Self.now)
        #expect(Self.decide(noRetry).count == 1)
        #expect(Self.decide(noRetry).first.map { if case .fail = $0 { true } else { false } } == true)

        let later = try SDKOutcome.classify(status: 500, headers: ["retry-after": "120"], body: body, now: Self.now)
        #expect(Self.retryTime(Self.decide(later)) == Self.now.addingTimeInterval(120))
        let dated = try SDKOutcome.classify(status: 500, headers: ["retry-after": "2027-01-15T08:00:05.000Z"], body: body, now: Self.now)
        #expect(Self.retryTime(Self.decide(dated)) == Self.now.addingTimeInterval(5))
        let tooFar = try SDKOutcome.classify(status: 500, headers: ["retry-after": "999999"], body: body, now: Self.now)
        #expect(Self.retryTime(Self.decide(tooFar)) == Self.now.addingTimeInterval(86_400))
    }

    @Test func backoffFollowsTheScheduleWithJitterAndScale() {
        #expect(Backoff.retryAt(afterAttempt: 0, now: Self.now, jitter: 0) == Self.now.addingTimeInterval(15))
        #expect(Backoff.retryAt(afterAttempt: 2, now: Self.now, jitter: 1) == Self.now.addingTimeInterval(90))
        #expect(Backoff.retryAt(afterAttempt: 50, now: Self.now, jitter: 0) == Self.now.addingTimeInterval(7_200))
        #expect(Backoff.retryAt(afterAttempt: 0, now: Self.now, jitter: 0, scale: 0.1) == Self.now.addingTimeInterval(1.5))
    }

    @Test func operationsCairnDoesNotRunYetFailTheRunByName() throws {
        guard case .fail(let failure)? = Self.decide(try Self.ops(#"[{"id":"w","op":"WaitForSignal","name":"signal","opts":{}}]"#)).first else {
            Issue.record("expected a failure")
            return
        }
        #expect(failure.body["message"]?.stringValue?.contains("waitForSignal") == true)
    }

    @Test func waitsReadTheEventTimeoutAndCondition() throws {
        let wait = Self.decide(try Self.ops(#"[{"id":"w","op":"WaitForEvent","name":"app/approved","opts":{"timeout":"1h","if":"event.data.id == async.data.id"}}]"#))
        #expect(wait == [.waitForEvent(stepID: "w", name: "app/approved", event: "app/approved", expression: "event.data.id == async.data.id", until: Self.now.addingTimeInterval(3_600))])
        let named = Self.decide(try Self.ops(#"[{"id":"w","op":"WaitForEvent","name":"step","opts":{"event":"app/x","timeout":""}}]"#))
        #expect(named == [.waitForEvent(stepID: "w", name: "step", event: "app/x", expression: nil, until: Self.now)])
        for bad in [#"{"timeout":"forever"}"#, #"{"timeout":"1h","if":"event.data.id =="}"#] {
            guard case .fail? = Self.decide(try Self.ops(#"[{"id":"w","op":"WaitForEvent","name":"app/x","opts":\#(bad)}]"#)).first else {
                Issue.record("\(bad) should fail the run")
                continue
            }
        }
    }

    @Test func invokesNameTheFunctionAndDefaultToAYear() throws {
        let invoke = Self.decide(try Self.ops(#"[{"id":"i","op":"InvokeFunction","name":"call","opts":{"function_id":"app-child","payload":{"data":{"n":1}}}}]"#))
        #expect(invoke == [.invoke(stepID: "i", name: "call", functionID: "app-child", payload: ["data": ["n": 1]], until: Self.now.addingTimeInterval(366 * 86_400))])
        guard case .fail? = Self.decide(try Self.ops(#"[{"id":"i","op":"InvokeFunction","opts":{}}]"#)).first else {
            Issue.record("an invoke without function_id should fail the run")
            return
        }
    }

    @Test func unreadableRepliesAreErrorsNamingTheProblem() {
        #expect(throws: SDKResponseError.self) { try SDKOutcome.classify(status: 206, headers: [:], body: Array("nope".utf8), now: Self.now) }
        #expect(throws: SDKResponseError.self) { try Self.ops(#"[{"op":"StepRun"}]"#) }
        #expect(throws: SDKResponseError.self) { try SDKOutcome.classify(status: 204, headers: [:], body: [], now: Self.now) }
    }

    @Test func stepIDsHashLikeTheSDKs() {
        #expect(StepID.hashed("a") == "86f7e437faa5a7fce15d1ddcb9eaeaea377667b8")
        #expect(StepID.hashed("a", index: 1) == "de89bfaf06245091a7873290a793604612302247")
    }

    @Test(arguments: [
        ("2026-11-22T18:37:50.309Z", Int64(1_795_372_670_309)),
        ("2026-11-22T18:37:50Z", Int64(1_795_372_670_000)),
        ("2026-11-22T19:37:50.3+01:00", Int64(1_795_372_670_300)),
        ("1970-01-01T00:00:00Z", Int64(0)),
    ])
    func parsesRFC3339(text: String, milliseconds: Int64) {
        #expect(RFC3339.parseMilliseconds(text) == milliseconds)
        #expect(RFC3339.parseMilliseconds(RFC3339.format(milliseconds: milliseconds)) == milliseconds)
    }

    @Test(arguments: ["2026-02-30T00:00:00Z", "2026-11-22", "2026-11-22T18:37:50", "2026-11-22T25:00:00Z", "x"])
    func refusesMalformedRFC3339(text: String) {
        #expect(RFC3339.parseMilliseconds(text) == nil)
    }

    /// `function.failed` carries the server's standard error: `error` is the body's own
    /// `error` text, else the reply's status; `name`, `message` and `stack` from the body; no
    /// `code`. The run itself keeps the body.
    @Test(arguments: [
        (RunFailure.app(["name": "MyError", "message": "intentional failure", "stack": "Traceback…", "code": "unknown"], status: 500),
         #"{"error":"invalid status code: 500","name":"MyError","message":"intentional failure","stack":"Traceback…"}"#),
        (RunFailure.app(["name": "E", "message": "m", "error": "E: m", "stack": ""], status: 500),
         #"{"error":"E: m","name":"E","message":"m"}"#),
        (RunFailure.app(["error": ["name": "Inner", "message": "wrapped", "cause": ["name": "Root"]]], status: 400),
         #"{"error":"invalid status code: 400","name":"Inner","message":"wrapped","cause":{"name":"Root"}}"#),
        (RunFailure.app(["message": "no name"], status: 502), #"{"error":"invalid status code: 502","name":"Error","message":"no name"}"#),
        (RunFailure.cairn(name: "RunLimitExceeded", message: "too many steps"),
         #"{"error":"too many steps","name":"RunLimitExceeded","message":"too many steps"}"#),
    ])
    func failedRunsCarryTheStandardErrorInSystemEvents(_ failure: RunFailure, _ expected: String) {
        #expect(failure.standardError.jsonString == expected)
    }

    @Test func aNonJSONErrorReplyBecomesTheMessage() throws {
        let outcome = try SDKOutcome.classify(status: 500, headers: [:], body: Array("upstream exploded".utf8), now: Self.now)
        guard case .failed(let failure, _) = outcome else {
            Issue.record("expected a failure")
            return
        }
        #expect(failure.body == ["name": "Error", "message": "upstream exploded"])
        #expect(failure.standardError["error"] == "invalid status code: 500")
    }
}
