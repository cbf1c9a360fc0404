public import Foundation

/// A call to the SDK for one run: discovery (`stepId=step`) or one planned step, at an attempt.
public struct SDKCall: Sendable, Hashable, CustomStringConvertible {
    /// `step` for discovery, else the hashed id of the planned step to run.
    public var stepID: String
    /// 0-based; sent as `ctx.attempt`.
    public var attempt: Int

    public static let discoveryStepID = "step"
    public static let discovery = SDKCall(stepID: discoveryStepID, attempt: 0)

    public init(stepID: String, attempt: Int) {
        self.stepID = stepID
        self.attempt = attempt
    }

    public var isDiscovery: Bool { stepID == Self.discoveryStepID }
    public var description: String { "\(stepID)#\(attempt)" }
}

/// What the executor does after an SDK reply, in order.
public enum RunAction: Sendable, Hashable {
    /// Record a step's memo value (`{"data":…}`, `{"error":…}`, an event, or null), once.
    case recordStep(id: String, name: String, op: String, result: JSONValue)
    /// Call the SDK again at once, on the same lease.
    case call(SDKCall)
    /// A parallel group: each member action (a result to record, a planned step's call, a
    /// request, a sleep, a wait, an invoke) goes on concurrently; discovery follows once every
    /// member is recorded, or, with `race`, after each member the drive finishes.
    case group([RunAction], race: Bool)
    /// Make the request a `step.ai.infer` or `step.fetch` asks for; its response decides the
    /// step (`RunDecision.decide(request:response:…)`).
    case request(OutboundStep)
    /// Call the SDK again at `at` (a retry after a failed attempt).
    case retry(SDKCall, at: Date, error: JSONValue)
    /// Wake at `until`: record null for the step, then call discovery.
    case sleep(stepID: String, name: String, until: Date)
    /// Wait until an event named `event` matching `expression` arrives (record it), or
    /// `until` passes (record null).
    case waitForEvent(stepID: String, name: String, event: String, expression: String?, until: Date)
    /// Start function `functionID` with `payload`, and wait until it ends (record its result or
    /// error) or `until` passes (record a timeout error).
    case invoke(stepID: String, name: String, functionID: String, payload: JSONValue, until: Date)
    /// The run finished with `output`.
    case complete(output: JSONValue)
    /// The run failed.
    case fail(RunFailure)
}

/// Decides what an SDK reply means for a run (docs/protocol.md §3, §8). Pure: the executor performs
/// the actions.
public enum RunDecision {
    /// The longest sleep accepted: 366 days.
    public static let maximumSleepSeconds: Double = 366 * 86_400

    /// - Parameters:
    ///   - outcome: the classified reply.
    ///   - call: the call it answered.
    ///   - maxAttempts: retries + 1.
    ///   - jitter: a random number in 0...1 for the retry backoff.
    ///   - backoffScale: multiplies retry delays (1 in production).
    public static func decide(outcome: SDKOutcome, call: SDKCall, maxAttempts: Int, now: Date, jitter: Double, backoffScale: Double = 1) -> [RunAction] {
        let backoff = BackoffInput(jitter: jitter, scale: backoffScale)
        switch outcome {
        case .completed(let output):
            return [.complete(output: output)]
        case .failed(let failure, let retry):
            return retryOrFail(call: call, error: failure.body, retry: retry, maxAttempts: maxAttempts, now: now, backoff: backoff, failing: [.fail(failure)])
        case .ops(let all, let retry):
            let ops = all.filter { !$0.kind.isLazy && $0.kind != .none }
            guard !ops.isEmpty else {
                let failure = RunFailure.cairn(name: "Error", message: "the SDK reported no operation to run")
                return retryOrFail(call: call, error: failure.body, retry: RetryDirective(), maxAttempts: maxAttempts, now: now, backoff: backoff, failing: [.fail(failure)])
            }
            guard ops.count == 1 else { return decide(parallel: ops, now: now) }
            return decide(op: ops[0], call: call, maxAttempts: maxAttempts, now: now, backoff: backoff, retry: retry)
        }
    }

    /// Several ops in one reply (docs/protocol.md §3, Parallelism): one group of members, each
    /// what its op asks for. Any op with `opts.parallelMode: "race"` makes it a race.
    static func decide(parallel ops: [SDKOpcode], now: Date) -> [RunAction] {
        var members: [RunAction] = []
        var seen: Set<String> = []
        for op in ops where seen.insert(op.id).inserted {
            let name = op.displayName
            switch op.kind {
            case .stepRun:
                members.append(.recordStep(id: op.id, name: name, op: "StepRun", result: .object(["data": op.data ?? .null])))
            case .step:
                members.append(.recordStep(id: op.id, name: name, op: "Step", result: op.data ?? .null))
            case .stepFailed:
                members.append(.recordStep(id: op.id, name: name, op: "StepFailed", result: .object(["error": op.error ?? .null])))
            case .stepPlanned:
                members.append(.call(SDKCall(stepID: op.id, attempt: 0)))
            case .sleep, .waitForEvent, .invokeFunction, .aiGateway, .gateway:
                // The same decision as for the op alone, from a first attempt.
                let actions = decide(op: op, call: SDKCall(stepID: op.id, attempt: 0), maxAttempts: 1, now: now, backoff: BackoffInput(jitter: 0, scale: 1), retry: RetryDirective())
                if case .fail = actions.first { return actions }
                members += actions
            default:
                return [.fail(unsupported("\(op.kind) (step \"\(name)\") inside a parallel group"))]
            }
        }
        let race = ops.contains { $0.opts?["parallelMode"]?.stringValue == "race" }
        return [.group(members, race: race)]
    }

    /// What the response to a `step.ai.infer` or `step.fetch` request means: its result is
    /// recorded and discovery follows; a failed request is tried again while attempts remain,
    /// then recorded as the step's error, which the SDK raises in the function.
    public static func decide(
        request step: OutboundStep, response: OutboundStep.Response, call: SDKCall, maxAttempts: Int, now: Date, jitter: Double,
        backoffScale: Double = 1
    ) -> [RunAction] {
        let op = step.kind == .aiInference ? "AIGateway" : "Gateway"
        switch step.result(of: response) {
        case .recorded(let memo):
            return [.recordStep(id: step.stepID, name: step.name, op: op, result: memo), .call(.discovery)]
        case .failed(let error, let memo):
            let failing: [RunAction] = [.recordStep(id: step.stepID, name: step.name, op: op, result: memo), .call(.discovery)]
            return retryOrFail(
                call: call, error: error, retry: RetryDirective(), maxAttempts: maxAttempts, now: now,
                backoff: BackoffInput(jitter: jitter, scale: backoffScale), failing: failing)
        }
    }

    struct BackoffInput {
        var jitter: Double
        var scale: Double
    }

    static func decide(op: SDKOpcode, call: SDKCall, maxAttempts: Int, now: Date, backoff: BackoffInput, retry: RetryDirective) -> [RunAction] {
        let name = op.displayName
        switch op.kind {
        case .stepRun:
            return [.recordStep(id: op.id, name: name, op: "StepRun", result: .object(["data": op.data ?? .null])), .call(.discovery)]
        case .step:
            return [.recordStep(id: op.id, name: name, op: "Step", result: op.data ?? .null), .call(.discovery)]
        case .stepFailed:
            return [.recordStep(id: op.id, name: name, op: "StepFailed", result: .object(["error": op.error ?? .null])), .call(.discovery)]
        case .stepError:
            let error = op.error ?? .null
            let failing: [RunAction] = [.recordStep(id: op.id, name: name, op: "StepFailed", result: .object(["error": error])), .call(.discovery)]
            return retryOrFail(call: call, error: error, retry: retry, maxAttempts: maxAttempts, now: now, backoff: backoff, failing: failing)
        case .stepPlanned:
            return [.call(SDKCall(stepID: op.id, attempt: 0))]
        case .sleep:
            guard let until = sleepUntil(op, now: now) else {
                return [.fail(invalid("sleep \"\(name)\": the duration must be a time string such as 30s or an RFC 3339 time, at most 366 days away"))]
            }
            return [.sleep(stepID: op.id, name: name, until: until)]
        case .discoveryRequest:
            return [.call(.discovery)]
        case .none, .deferAdd, .deferAbort, .runComplete:
            return [.call(.discovery)]
        case .waitForEvent:
            let event = op.opts?["event"]?.stringValue ?? op.name ?? ""
            guard !event.isEmpty else { return [.fail(invalid("waitForEvent \"\(name)\": the event name is missing"))] }
            guard let until = timeout(op.opts?["timeout"], now: now, default: nil) else {
                return [.fail(invalid("waitForEvent \"\(name)\": timeout must be a time string such as 1h, at most 366 days"))]
            }
            let condition = op.opts?["if"]?.stringValue.flatMap { $0.isEmpty ? nil : $0 }
            if let condition {
                do { _ = try Expression(compiling: condition) } catch {
                    return [.fail(invalid("waitForEvent \"\(name)\": the if expression does not compile: \(error)"))]
                }
            }
            return [.waitForEvent(stepID: op.id, name: name, event: event, expression: condition, until: until)]
        case .invokeFunction:
            guard let functionID = op.opts?["function_id"]?.stringValue, !functionID.isEmpty else {
                return [.fail(invalid("invoke \"\(name)\": opts.function_id is missing"))]
            }
            guard let until = timeout(op.opts?["timeout"], now: now, default: 366 * 86_400) else {
                return [.fail(invalid("invoke \"\(name)\": timeout must be a time string such as 1h, at most 366 days"))]
            }
            let payload = op.opts?["payload"].flatMap { $0.isNull ? nil : $0 } ?? .object([:])
            return [.invoke(stepID: op.id, name: name, functionID: functionID, payload: payload, until: until)]
        case .aiGateway, .gateway:
            switch OutboundStep.make(op) {
            case .success(let step): return [.request(step)]
            case .failure(let problem): return [.fail(invalid(problem.message))]
            }
        case .waitForSignal, .syncRunComplete:
            return [.fail(unsupported("\(op.kind) (step \"\(name)\")"))]
        case .unknown(let opName):
            return [.fail(unsupported("the operation \"\(opName)\" (step \"\(name)\")"))]
        }
    }

    static func retryOrFail(
        call: SDKCall, error: JSONValue, retry: RetryDirective, maxAttempts: Int, now: Date, backoff: BackoffInput, failing: [RunAction]
    ) -> [RunAction] {
        let at = retry.retryAt ?? Backoff.retryAt(afterAttempt: call.attempt, now: now, jitter: backoff.jitter, scale: backoff.scale)
        // A call that reached no app spent no attempt: the same attempt goes again after its
        // backoff, for as long as the run lives (docs/connect.md), whatever the retries left.
        if retry.notDelivered { return [.retry(call, at: at, error: error)] }
        if retry.noRetry || call.attempt + 1 >= maxAttempts { return failing }
        return [.retry(SDKCall(stepID: call.stepID, attempt: call.attempt + 1), at: at, error: error)]
    }

    /// `opts.duration`, else `name`: an RFC 3339 time ("until") or a time string ("for").
    static func sleepUntil(_ op: SDKOpcode, now: Date) -> Date? {
        guard let text = op.opts?["duration"]?.stringValue ?? op.name else { return nil }
        var until: Date?
        if text.count >= 10, let milliseconds = RFC3339.parseMilliseconds(text) {
            until = Date(timeIntervalSince1970: Double(milliseconds) / 1_000)
        } else if let duration = try? ConfigDuration(parsing: text) {
            until = now.addingTimeInterval(Double(duration.milliseconds) / 1_000)
        }
        guard let until, until.timeIntervalSince(now) <= maximumSleepSeconds else { return nil }
        return until
    }

    /// A `timeout` option: a time string (`""` means now), or `fallback` seconds when absent.
    static func timeout(_ value: JSONValue?, now: Date, default fallback: Double?) -> Date? {
        switch value {
        case nil, .null?:
            return fallback.map { now.addingTimeInterval($0) }
        case .string(let text)?:
            if text.isEmpty { return now }
            guard let duration = try? ConfigDuration(parsing: text), Double(duration.milliseconds) / 1_000 <= maximumSleepSeconds else {
                return nil
            }
            return now.addingTimeInterval(Double(duration.milliseconds) / 1_000)
        default:
            return nil
        }
    }

    /// The failure of a run that uses something Cairn does not run yet.
    public static func unsupported(_ what: String) -> RunFailure {
        .cairn(name: "UnsupportedOperation", message: "Cairn does not run \(what) yet")
    }

    static func invalid(_ message: String) -> RunFailure {
        .cairn(name: "InvalidOperation", message: message)
    }
}
