public import CairnCore
public import CairnEngine
public import Foundation
import Synchronization

/// An app that speaks the SDK side of the call protocol from a script, for engine tests: each
/// function is a list of steps replayed against the memoized results a call carries, the way
/// an SDK replays a function. The first step without a result runs (a `step.run` runs inline
/// and reports `StepRun`, or `StepError` while it is set to fail) or is reported (sleep, wait,
/// invoke, a parallel group's planned steps). Once every step has a result the function
/// returns its output. Like the SDKs, it fails a call that targets a step other than the one
/// it reaches.
///
/// It counts how often each step body ran, per run, and can hold a call until the test lets
/// it go.
public final class FakeSDKApp: SDKTransport {
    /// One step of a scripted function.
    public enum Step: Sendable {
        /// `step.run(name)`: fails its first `failures` executions, then returns `output`.
        case run(String, failures: Int = 0, output: JSONValue = .null)
        /// `step.sleep(name, duration)` with a time string such as `30s`.
        case sleep(String, duration: String)
        /// `step.wait_for_event(name, event, if, timeout)`.
        case wait(String, event: String, condition: String? = nil, timeout: String)
        /// `step.invoke(name, function, data)`.
        case invoke(String, function: String, data: JSONValue = [:], timeout: String? = nil)
        /// The function raises outside any step here, the first `failures` times it gets here.
        case raise(String, failures: Int)
        /// A parallel group of `step.run`s (each fails its first `failures[name]` executions and
        /// returns its `outputs[name]`): planned together, then each run by a call targeting it.
        case parallel([String], failures: [String: Int] = [:], outputs: [String: JSONValue] = [:])

        var name: String {
            switch self {
            case .run(let name, _, _), .sleep(let name, _), .wait(let name, _, _, _), .invoke(let name, _, _, _), .raise(let name, _): name
            case .parallel(let names, _, _): names.joined(separator: "+")
            }
        }
    }

    /// A scripted function: its steps, and its output made from the steps' results by name.
    public struct Function: Sendable {
        public var steps: [Step]
        public var output: @Sendable ([String: JSONValue]) -> JSONValue

        public init(_ steps: [Step], output: @escaping @Sendable ([String: JSONValue]) -> JSONValue = { _ in "done" }) {
            self.steps = steps
            self.output = output
        }
    }

    private struct State {
        var functions: [String: Function] = [:]
        var executions: [String: Int] = [:]
        var holds: [String: (arrived: CheckedContinuation<Void, Never>?, release: CheckedContinuation<Void, Never>?, arrivedFlag: Bool, released: Bool)] = [:]
        var cancelledCalls = 0
    }

    private let state = Mutex(State())

    public init() {}

    /// Serves `function` under the slug `slug`.
    public func serve(_ slug: String, _ function: Function) {
        state.withLock { $0.functions[slug] = function }
    }

    /// How often the body of step `name` ran in run `runID` (or the function got to a `raise`).
    public func executions(_ runID: ULID, _ name: String) -> Int {
        state.withLock { $0.executions["\(runID):\(name)"] ?? 0 }
    }

    /// Calls that were cancelled while held.
    public var cancelledCalls: Int { state.withLock { $0.cancelledCalls } }

    /// Holds the next execution of step `name` (any run) until `release(_:)`.
    public func hold(_ name: String) {
        state.withLock { $0.holds[name] = (nil, nil, false, false) }
    }

    /// Returns once a held execution of `name` has arrived.
    public func waitUntilHeld(_ name: String) async {
        await withCheckedContinuation { continuation in
            let ready = state.withLock { state -> Bool in
                if state.holds[name]?.arrivedFlag == true { return true }
                state.holds[name]?.arrived = continuation
                return false
            }
            if ready { continuation.resume() }
        }
    }

    /// Lets the held execution of `name` go on.
    public func release(_ name: String) {
        let waiting = state.withLock { state -> CheckedContinuation<Void, Never>? in
            state.holds[name]?.released = true
            defer { state.holds[name]?.release = nil }
            return state.holds[name]?.release
        }
        waiting?.resume()
    }

    private func pauseIfHeld(_ name: String) async throws {
        let (arrived, mustWait) = state.withLock { state -> (CheckedContinuation<Void, Never>?, Bool) in
            guard var hold = state.holds[name], !hold.arrivedFlag else { return (nil, false) }
            hold.arrivedFlag = true
            let arrived = hold.arrived
            hold.arrived = nil
            state.holds[name] = hold
            return (arrived, true)
        }
        arrived?.resume()
        guard mustWait else { return }
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let go = state.withLock { state -> Bool in
                    if state.holds[name]?.released == true { return true }
                    state.holds[name]?.release = continuation
                    return false
                }
                if go { continuation.resume() }
            }
        } onCancel: {
            let waiting = state.withLock { state -> CheckedContinuation<Void, Never>? in
                state.cancelledCalls += 1
                state.holds[name]?.released = true
                defer { state.holds[name]?.release = nil }
                return state.holds[name]?.release
            }
            waiting?.resume()
        }
        try Task.checkCancellation()
    }

    public func send(_ request: SDKRequest) async throws -> SDKReply {
        let body = try JSONValue(parsing: request.body)
        guard let slug = Self.parameter("fnId", in: request.url), let function = state.withLock({ $0.functions[slug] }) else {
            return Self.reply(500, ["name": "Error", "message": "no such function"])
        }
        guard let runID = body["ctx"]?["run_id"]?.stringValue.flatMap(ULID.init) else {
            return Self.reply(500, ["name": "Error", "message": "no run id"])
        }
        let target = Self.parameter("stepId", in: request.url) ?? SDKCall.discoveryStepID
        let memo = body["steps"]?.objectValue ?? [:]
        var results: [String: JSONValue] = [:]
        for step in function.steps {
            let id = StepID.hashed(step.name)
            if case .parallel(let names, let failures, let outputs) = step {
                let open = names.filter { memo[StepID.hashed($0)] == nil }
                for name in names where !open.contains(name) { results[name] = memo[StepID.hashed(name)]?["data"] ?? .null }
                if open.isEmpty { continue }
                if target == SDKCall.discoveryStepID {
                    return Self.ops(open.map { ["op": "StepPlanned", "id": .string(StepID.hashed($0)), "name": .string($0), "displayName": .string($0)] })
                }
                guard let name = open.first(where: { StepID.hashed($0) == target }) else { return Self.unexpected(target) }
                return try await run(name, in: runID, failures: failures[name] ?? 0, output: outputs[name] ?? .null)
            }
            if case .raise(let name, let failures) = step {
                if count(runID, name) <= failures {
                    return Self.reply(500, ["name": "Error", "message": .string("raised at \(name)")])
                }
                continue
            }
            if let value = memo[id] {
                if let error = value["error"], !error.isNull {
                    return Self.reply(500, error, noRetry: true)
                }
                // A wait's result is the matched event itself (or null); the others' is `data`.
                if case .wait = step { results[step.name] = value } else { results[step.name] = value["data"] ?? .null }
                continue
            }
            // As the SDKs do: a call that targets one step must not find another one new.
            guard target == SDKCall.discoveryStepID || target == id else { return Self.unexpected(target) }
            switch step {
            case .run(let name, let failures, let output):
                return try await run(name, in: runID, failures: failures, output: output)
            case .sleep(let name, let duration):
                return Self.ops([["op": "Sleep", "id": .string(id), "name": .string(duration), "displayName": .string(name)]])
            case .wait(let name, let event, let condition, let timeout):
                var opts: JSONObject = ["event": .string(event), "timeout": .string(timeout)]
                if let condition { opts.setValue(.string(condition), forKey: "if") }
                return Self.ops([["op": "WaitForEvent", "id": .string(id), "name": .string(event), "displayName": .string(name), "opts": .object(opts)]])
            case .invoke(let name, let callee, let data, let timeout):
                var opts: JSONObject = ["function_id": .string(callee), "payload": ["data": data]]
                if let timeout { opts.setValue(.string(timeout), forKey: "timeout") }
                return Self.ops([["op": "InvokeFunction", "id": .string(id), "displayName": .string(name), "opts": .object(opts)]])
            case .raise, .parallel:
                continue
            }
        }
        return SDKReply(status: 200, headers: ["x-inngest-sdk": "fake:v1"], body: function.output(results).serialized())
    }

    /// Runs the body of step `name`: `StepError` for its first `failures` executions, then
    /// `StepRun` with `output`.
    private func run(_ name: String, in runID: ULID, failures: Int, output: JSONValue) async throws -> SDKReply {
        let id = StepID.hashed(name)
        try await pauseIfHeld(name)
        if count(runID, name) <= failures {
            return Self.ops([["op": "StepError", "id": .string(id), "name": .string(name), "displayName": .string(name),
                              "error": ["name": "Error", "message": .string("\(name) failed")]]])
        }
        return Self.ops([["op": "StepRun", "id": .string(id), "name": .string(name), "displayName": .string(name), "data": output]])
    }

    /// The SDK's answer to a call targeting a step it does not reach next: a failure of the
    /// function, not retried.
    static func unexpected(_ target: String) -> SDKReply {
        reply(500, ["name": "StepUnexpectedError", "message": .string("found a step when targeting \(target)")], noRetry: true)
    }

    /// Counts one more execution of `name` in `runID`; returns the count.
    private func count(_ runID: ULID, _ name: String) -> Int {
        state.withLock { state in
            state.executions["\(runID):\(name)", default: 0] += 1
            return state.executions["\(runID):\(name)"]!
        }
    }

    static func ops(_ ops: [JSONValue]) -> SDKReply {
        SDKReply(status: 206, headers: ["x-inngest-sdk": "fake:v1"], body: JSONValue.array(ops).serialized())
    }

    static func reply(_ status: Int, _ error: JSONValue, noRetry: Bool = false) -> SDKReply {
        var headers = ["x-inngest-sdk": "fake:v1"]
        if noRetry { headers["x-inngest-no-retry"] = "true" }
        return SDKReply(status: status, headers: headers, body: error.serialized())
    }

    static func parameter(_ name: String, in url: String) -> String? {
        guard let query = url.split(separator: "?", maxSplits: 1).dropFirst().first else { return nil }
        for pair in query.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1)
            if parts.first.map(String.init) == name { return parts.count > 1 ? String(parts[1]).removingPercentEncoding : "" }
        }
        return nil
    }
}
