public import CairnCore
public import Foundation

/// `step.invoke` and pauses: the event that starts the callee, the correlation that finds its
/// end, and the values a timed-out pause records (docs/protocol.md §3).
public enum Invocation {
    public static let invokedEventName = "inngest/function.invoked"

    /// `<run id>.<step id>`: carried in the invoked event and copied into the callee's
    /// `function.finished`.
    public static func correlationID(runID: ULID, stepID: String) -> String {
        "\(runID).\(stepID)"
    }

    /// `inngest/function.invoked` for `functionID`: the payload's data plus `_inngest`
    /// routing. Its id is the correlation id unless the payload names one, so emitting twice
    /// starts one run.
    public static func invokedEvent(
        functionID: String, payload: JSONValue, correlationID: String, callerSlug: String, expires: Date, now: Date
    ) -> Event {
        var data = payload["data"]?.objectValue ?? [:]
        data.setValue(
            .object([
                "fn_id": .string(functionID), "correlation_id": .string(correlationID),
                "expire": .number(JSONNumber(expires.unixMilliseconds)), "source_fn_id": .string(callerSlug),
                "name": .string(invokedEventName),
            ]), forKey: "_inngest")
        let id = payload["id"]?.stringValue.flatMap { $0.isEmpty ? nil : $0 } ?? correlationID
        return Event(
            name: invokedEventName, data: data, id: id, ts: now.unixMilliseconds,
            v: payload["v"]?.stringValue, user: payload["user"]?.objectValue)
    }

    /// What an invoke records when the callee does not end in time.
    public static let timeoutError: JSONValue = [
        "name": "InngestInvokeTimeoutError", "message": "Timed out waiting for invoked function to complete",
    ]

    /// The memo value of a finished callee: `{"error": …}` or `{"data": result}`.
    public static func result(ofFinished event: JSONValue) -> JSONValue {
        if let error = event["data"]?["error"], !error.isNull { return ["error": error] }
        return ["data": event["data"]?["result"] ?? .null]
    }

    /// The timer item that ends a pause at `stepID`, set under the lease with token
    /// `generation`.
    public static func timeoutItem(_ runID: ULID, _ stepID: String, generation: Int64) -> WorkItem {
        WorkItem(runID: runID, reason: .pauseTimeout, call: SDKCall(stepID: stepID, attempt: 0), generation: generation)
    }

    /// The step a timed-out pause records, by its kind: an invoke's timeout error, or null for
    /// a wait.
    public static func timeoutStep(_ kind: Pause.Kind) -> (op: String, result: JSONValue) {
        kind == .invoke ? ("InvokeFunction", ["error": timeoutError]) : ("WaitForEvent", .null)
    }

    /// The lower bound for events a pause created at `now` may match: anything received from
    /// this millisecond on.
    public static func eventsAfter(_ now: Date) -> ULID {
        let milliseconds = UInt64(max(0, now.unixMilliseconds - 1))
        return ULID(milliseconds: milliseconds, entropy: [UInt8](repeating: 0xFF, count: 10))
    }
}
