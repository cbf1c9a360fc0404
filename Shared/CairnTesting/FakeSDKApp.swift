public import CairnCore
public import CairnEngine
public import Foundation
import Synchronization

/// An app that speaks the SDK side of the call protocol from a script, for engine tests: each
/// function is a list of steps replayed against the memoized results a call carries, the way
/// an SDK replays a function. The first step without a result runs (a `step.run` runs inline
/// and reports `StepRun`, or `StepError` while it is set to fail) or is reported (sleep, wait,
/// invoke, an AI inference or a fetch). A parallel group reports the next step of each of its
/// members together (a `step.run` as planned), and a call targeting one of them runs it. Once
/// every step has a result the function returns its output. Like the SDKs, it fails a call that
/// targets a step other than the one it reaches.
///
/// It counts calls and how often each step body ran, records the order bodies ran in, and can
/// hold a body until the test (or another body) lets it go.
public final class FakeSDKApp: SDKTransport {
    /// One step of a scripted function.
    public indirect enum Step: Sendable {
        /// `step.run(name)`: fails its first `failures` executions, then returns `output`.
        case run(String, failures: Int = 0, output: JSONValue = .null)
        /// `step.sleep(name, duration)` with a time string such as `30s`.
        case sleep(String, duration: String)
        /// `step.wait_for_event(name, event, if, timeout)`.
        case wait(String, event: String, condition: String? = nil, timeout: String)
        /// `step.invoke(name, function, data)`.
        case invoke(String, function: String, data: JSONValue = [:], timeout: String? = nil)
        /// `step.ai.infer(name, …)`: the server calls the provider at `url`.
        case infer(String, url: String, format: String, key: String, body: JSONValue, headers: [String: String] = [:])
        /// `step.fetch(name, …)`: the server makes the request.
        case fetch(String, url: String, method: String = "GET", body: String? = nil)
        /// The function raises outside any step here, the first `failures` times it gets here.
        case raise(String, failures: Int)
        /// A parallel group: each member a sequence of steps, run side by side.
        case group([[Step]], race: Bool = false)

        /// A parallel group of `step.run`s (each fails its first `failures[name]` executions and
        /// returns its `outputs[name]`).
        public static func parallel(_ names: [String], failures: [String: Int] = [:], outputs: [String: JSONValue] = [:]) -> Step {
            .group(names.map { [.run($0, failures: failures[$0] ?? 0, output: outputs[$0] ?? .null)] })
        }

        var name: String {
            switch self {
            case .run(let name, _, _), .sleep(let name, _), .wait(let name, _, _, _), .invoke(let name, _, _, _), .raise(let name, _),
                .infer(let name, _, _, _, _, _), .fetch(let name, _, _, _):
                name
            case .group(let members, _): members.flatMap { $0 }.map(\.name).joined(separator: "+")
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

    private struct Hold {
        var arrived: CheckedContinuation<Void, Never>?
        var release: CheckedContinuation<Void, Never>?
        var arrivedFlag = false
        var released = false
        /// Released by itself once this step's body has run.
        var untilExecuted: String?
    }

    private struct State {
        var functions: [String: Function] = [:]
        var executions: [String: Int] = [:]
        var calls: [ULID: Int] = [:]
        var order: [ULID: [String]] = [:]
        var holds: [String: Hold] = [:]
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

    /// How many calls run `runID` received.
    public func calls(_ runID: ULID) -> Int {
        state.withLock { $0.calls[runID] ?? 0 }
    }

    /// The step bodies of run `runID`, in the order they ran.
    public func order(_ runID: ULID) -> [String] {
        state.withLock { $0.order[runID] ?? [] }
    }

    /// Calls that were cancelled while held.
    public var cancelledCalls: Int { state.withLock { $0.cancelledCalls } }

    /// Holds the next execution of step `name` (any run) until `release(_:)`, or, with
    /// `untilExecuted`, until the body of that other step has run (in any run).
    public func hold(_ name: String, untilExecuted other: String? = nil) {
        state.withLock { $0.holds[name] = Hold(untilExecuted: other) }
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

    /// One call: how far the replay got.
    private enum Replay {
        case reply(SDKReply)
        case done
    }

    public func send(_ request: SDKRequest) async throws -> SDKReply {
        let body = try JSONValue(parsing: request.body)
        guard let slug = Self.parameter("fnId", in: request.url), let function = state.withLock({ $0.functions[slug] }) else {
            return Self.reply(500, ["name": "Error", "message": "no such function"])
        }
        guard let runID = body["ctx"]?["run_id"]?.stringValue.flatMap(ULID.init) else {
            return Self.reply(500, ["name": "Error", "message": "no run id"])
        }
        state.withLock { $0.calls[runID, default: 0] += 1 }
        let target = Self.parameter("stepId", in: request.url) ?? SDKCall.discoveryStepID
        let memo = body["steps"]?.objectValue ?? [:]
        var results: [String: JSONValue] = [:]
        for step in function.steps {
            switch try await replay(step, runID: runID, target: target, memo: memo, results: &results) {
            case .reply(let reply): return reply
            case .done: continue
            }
        }
        return SDKReply(status: 200, headers: ["x-inngest-sdk": "fake:v1"], body: function.output(results).serialized())
    }

    /// Replays one step of the function: `.done` when it has a result (kept in `results`).
    private func replay(_ step: Step, runID: ULID, target: String, memo: JSONObject, results: inout [String: JSONValue]) async throws -> Replay {
        switch step {
        case .raise(let name, let failures):
            if count(runID, name) <= failures { return .reply(Self.reply(500, ["name": "Error", "message": .string("raised at \(name)")])) }
            return .done
        case .group(let members, let race):
            var ops: [JSONValue] = []
            var open = false
            for member in members {
                for inner in member {
                    if let value = memo[StepID.hashed(inner.name)] {
                        if let error = value["error"], !error.isNull { return .reply(Self.reply(500, error, noRetry: true)) }
                        results[inner.name] = Self.result(of: inner, value)
                        continue
                    }
                    open = true
                    if target == StepID.hashed(inner.name), case .run(let name, let failures, let output) = inner {
                        return .reply(try await run(name, in: runID, failures: failures, output: output))
                    }
                    // A member's next step: reported on discovery, skipped on a call for another.
                    if target == SDKCall.discoveryStepID, var op = Self.op(for: inner, planned: true) {
                        if race { op.setValue(["parallelMode": "race"], forKey: "opts") }
                        ops.append(op)
                    }
                    break
                }
            }
            if !ops.isEmpty { return .reply(Self.ops(ops)) }
            return open ? .reply(Self.unexpected(target)) : .done
        default:
            let id = StepID.hashed(step.name)
            if let value = memo[id] {
                if let error = value["error"], !error.isNull { return .reply(Self.reply(500, error, noRetry: true)) }
                results[step.name] = Self.result(of: step, value)
                return .done
            }
            // As the SDKs do: a call that targets one step must not find another one new.
            guard target == SDKCall.discoveryStepID || target == id else { return .reply(Self.unexpected(target)) }
            if case .run(let name, let failures, let output) = step {
                return .reply(try await run(name, in: runID, failures: failures, output: output))
            }
            return .reply(Self.ops([Self.op(for: step, planned: false) ?? .null]))
        }
    }

    /// A step's memoized result as the function sees it: a wait's is the matched event itself
    /// (or null); the others' is `data`.
    static func result(of step: Step, _ value: JSONValue) -> JSONValue {
        if case .wait = step { return value }
        return value["data"] ?? .null
    }

    /// The op a step is reported with; a `step.run` in a group is planned.
    static func op(for step: Step, planned: Bool) -> JSONValue? {
        let id = JSONValue.string(StepID.hashed(step.name))
        let name = JSONValue.string(step.name)
        switch step {
        case .run:
            return planned ? ["op": "StepPlanned", "id": id, "name": name, "displayName": name] : nil
        case .sleep(_, let duration):
            return ["op": "Sleep", "id": id, "name": .string(duration), "displayName": name]
        case .wait(_, let event, let condition, let timeout):
            var opts: JSONObject = ["event": .string(event), "timeout": .string(timeout)]
            if let condition { opts.setValue(.string(condition), forKey: "if") }
            return ["op": "WaitForEvent", "id": id, "name": .string(event), "displayName": name, "opts": .object(opts)]
        case .invoke(_, let callee, let data, let timeout):
            var opts: JSONObject = ["function_id": .string(callee), "payload": ["data": data]]
            if let timeout { opts.setValue(.string(timeout), forKey: "timeout") }
            return ["op": "InvokeFunction", "id": id, "displayName": name, "opts": .object(opts)]
        case .infer(_, let url, let format, let key, let body, let headers):
            let headerValues = JSONObject(members: headers.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) })
            return ["op": "AIGateway", "id": id, "name": name, "displayName": name, "opts": [
                "url": .string(url), "format": .string(format), "auth_key": .string(key), "body": body, "headers": .object(headerValues),
                "type": "step.ai.infer",
            ]]
        case .fetch(_, let url, let method, let body):
            var opts: JSONObject = ["url": .string(url), "method": .string(method)]
            if let body { opts.setValue(.string(body), forKey: "body") }
            return ["op": "Gateway", "id": id, "name": name, "displayName": name, "opts": .object(opts)]
        case .raise, .group:
            return nil
        }
    }

    /// Runs the body of step `name`: `StepError` for its first `failures` executions, then
    /// `StepRun` with `output`.
    private func run(_ name: String, in runID: ULID, failures: Int, output: JSONValue) async throws -> SDKReply {
        let id = StepID.hashed(name)
        try await pauseIfHeld(name)
        let attempt = count(runID, name)
        state.withLock { $0.order[runID, default: []].append(name) }
        if attempt <= failures {
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

    /// Counts one more execution of `name` in `runID`, releasing the holds waiting for it;
    /// returns the count.
    private func count(_ runID: ULID, _ name: String) -> Int {
        let (count, dependents) = state.withLock { state in
            state.executions["\(runID):\(name)", default: 0] += 1
            return (state.executions["\(runID):\(name)"]!, state.holds.filter { $0.value.untilExecuted == name }.map(\.key))
        }
        dependents.forEach(release)
        return count
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

/// A server the executor's requests for `step.ai.infer` and `step.fetch` go to, in tests: it
/// answers with `answer` and records every request; it can fail the first few.
public final class FakeProvider: SDKTransport {
    private let answer: @Sendable (SDKRequest) -> SDKReply
    private let state = Mutex((requests: [SDKRequest](), failures: 0))

    /// A provider that answers with `answer`, after failing its first `failures` requests with
    /// a 500.
    public init(failures: Int = 0, _ answer: @escaping @Sendable (SDKRequest) -> SDKReply) {
        self.answer = answer
        state.withLock { $0.failures = failures }
    }

    /// Every request received.
    public var requests: [SDKRequest] { state.withLock { $0.requests } }

    public func send(_ request: SDKRequest) async throws -> SDKReply {
        let fail = state.withLock { state -> Bool in
            state.requests.append(request)
            guard state.failures > 0 else { return false }
            state.failures -= 1
            return true
        }
        if fail { return SDKReply(status: 500, headers: [:], body: Array(#"{"type":"error","message":"overloaded"}"#.utf8)) }
        return answer(request)
    }
}
