import AsyncHTTPClient
import CairnCore
import CairnEngine
import CairnTesting
import Foundation
import Testing

/// Run traces exported over OTLP/HTTP to a real receiver (otlp_receiver.py, which parses each
/// export with the OpenTelemetry project's message classes), checked span by span against a run
/// of the official Python SDK whose two steps each fail once.
@Suite(.serialized) struct TracesEndToEndTests {
    /// A span as the receiver flattened it.
    struct Span {
        let json: JSONValue
        var name: String { json["name"]?.stringValue ?? "" }
        var traceID: String { json["trace_id"]?.stringValue ?? "" }
        var spanID: String { json["span_id"]?.stringValue ?? "" }
        var parentID: String { json["parent_span_id"]?.stringValue ?? "" }
        var start: Int64 { json["start"]?.int64Value ?? 0 }
        var end: Int64 { json["end"]?.int64Value ?? 0 }
        var failed: Bool { json["status_code"]?.int64Value == 2 }
        func attribute(_ key: String) -> JSONValue? { json["attributes"]?[key] }
    }

    static func spans(receiver: Int) async throws -> [Span] {
        let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: "http://127.0.0.1:\(receiver)/spans"), timeout: .seconds(10))
        let value = try JSONValue(parsing: Array(buffer: try await response.body.collect(upTo: 1 << 24)))
        return (value.arrayValue ?? []).map(Span.init)
    }

    /// The spans of `trace` once its root span has arrived.
    static func trace(_ trace: String, receiver: Int) async throws -> [Span] {
        let deadline = ContinuousClock.now + .seconds(30)
        while true {
            let spans = try await spans(receiver: receiver).filter { $0.traceID == trace }
            if spans.contains(where: { $0.name == "cairn.run" }) { return spans }
            guard ContinuousClock.now < deadline else {
                throw LocalProcessError(description: "the receiver never got the root span of trace \(trace); it has \(spans.map(\.name))")
            }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    static func hex(_ value: UInt64) -> String { RunTracing.hex(value, digits: 16) }

    @Test func aRunsTraceHasItsStepsAttemptsAndWaitsAndTheSDKSpansJoinIt() async throws {
        try await withPythonScript(PythonApp.script("otlp_receiver.py")) { receiver in
            let environment = ["OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:\(receiver)", "OTEL_BSP_SCHEDULE_DELAY": "50"]
            try await ExecutionEndToEndTests().withHarness(environment: environment) { harness in
                let ids = try await harness.send([["name": "test/fails-twice", "data": ["key": "trace1"]]])
                let run = try await harness.endedRun(of: try #require(ids.first))
                #expect(run["status"] == "Completed")
                let runText = try #require(run["run_id"]?.stringValue)
                let runID = try #require(ULID(runText))
                let traceID = RunTracing.hex(RunTracing.traceID(of: runID), digits: 32)
                let spans = try await Self.trace(traceID, receiver: receiver)

                // The root: the run, from its creation to its end.
                let roots = spans.filter { $0.name == "cairn.run" }
                let root = try #require(roots.first)
                #expect(roots.count == 1)
                #expect(root.spanID == Self.hex(RunTracing.runSpanID(of: runID)))
                #expect(root.parentID == "")
                #expect(root.attribute("cairn.function.slug") == "cairn-e2e-fails-twice")
                #expect(root.attribute("cairn.run.status") == "completed")
                #expect(root.json["service"] == "cairn-dev")
                #expect(root.start == Int64(runID.milliseconds) * 1_000_000)

                // A step span per step, under the root, with its id derived from the step's.
                let steps = spans.filter { $0.name == "cairn.step" }.sorted { $0.start < $1.start }
                #expect(steps.map { $0.attribute("cairn.step.name") } == ["a", "b"])
                let stepA = Self.hex(RunTracing.stepSpanID(of: runID, step: StepID.hashed("a")))
                let stepB = Self.hex(RunTracing.stepSpanID(of: runID, step: StepID.hashed("b")))
                #expect(steps.map(\.spanID) == [stepA, stepB])
                #expect(steps.allSatisfy { $0.parentID == root.spanID })

                // Every call to the app: each step failed once and was retried, then the function
                // returned. A call hangs under the step its reply recorded, else under the run.
                let requests = spans.filter { $0.name == "cairn.sdk.request" }.sorted { $0.start < $1.start }
                #expect(requests.map(\.parentID) == [root.spanID, stepA, root.spanID, stepB, root.spanID])
                #expect(requests.map { $0.attribute("cairn.step.id")?.stringValue } == [StepID.hashed("a"), StepID.hashed("a"), StepID.hashed("b"), StepID.hashed("b"), nil])
                // No span names a parent that was never emitted.
                let emitted = Set(spans.map(\.spanID))
                #expect(spans.filter { !$0.parentID.isEmpty && !emitted.contains($0.parentID) }.map(\.name) == [])
                #expect(requests.map(\.failed) == [true, false, true, false, false])
                #expect(requests.allSatisfy { $0.json["kind"] == 3 && $0.attribute("http.response.status_code") != nil })

                // The app was sent each call's span as its parent, in W3C traceparent.
                let seen = try #require(try await harness.appGet("/traceparents")[runID.description]?.arrayValue)
                #expect(seen.compactMap(\.stringValue) == requests.map { "00-\(traceID)-\($0.spanID)-01" })

                // Waits: the event's route to the run, and the start and each retry in the queue.
                // (A retry calls the function from the top, so its wait belongs to the run.)
                let schedule = spans.filter { $0.name == "cairn.schedule" }
                #expect(schedule.count == 1)
                #expect(schedule.first?.parentID == root.spanID)
                #expect(schedule.first?.attribute("cairn.event.id")?.stringValue == ids.first)
                let waits = spans.filter { $0.name == "cairn.queue.wait" }.sorted { $0.start < $1.start }
                #expect(waits.map { $0.attribute("cairn.queue.reason") } == ["start", "retry", "retry"])
                #expect(waits.allSatisfy { $0.parentID == root.spanID })
                // Each retry waited for its backoff before it was published, not in the queue.
                #expect(zip(waits.dropFirst(), [requests[1], requests[3]]).allSatisfy { $0.end <= $1.start })
                #expect(spans.allSatisfy { $0.start <= $0.end })

                // The SDK's own spans, posted to /v1/traces/userland, reach the receiver unchanged.
                let userland: JSONValue = [
                    "resourceSpans": [[
                        "resource": ["attributes": [["key": "service.name", "value": ["stringValue": "userland-test"]]]],
                        "scopeSpans": [[
                            "scope": ["name": "sdk"],
                            "spans": [[
                                "traceId": .string(traceID), "spanId": "00000000000000aa", "parentSpanId": .string(requests[1].spanID),
                                "name": "charge card", "kind": 1, "startTimeUnixNano": "1000", "endTimeUnixNano": "2000",
                            ]],
                        ]],
                    ]]
                ]
                let posted = try await harness.api.send("POST", "/v1/traces/userland", body: userland.serialized())
                #expect(posted.status == 200, "\(posted.body)")
                let forwarded = try await Self.spans(receiver: receiver).filter { $0.spanID == "00000000000000aa" }
                #expect(forwarded.map(\.parentID) == [requests[1].spanID])
                #expect(forwarded.first?.json["service"] == "userland-test")
                #expect(forwarded.first?.traceID == traceID)

                // Not an export request: refused, naming what is wrong, and nothing forwarded.
                let wrongType = try await harness.api.send("POST", "/v1/traces/userland", body: JSONValue.object(["hello": "world"]).serialized(), contentType: "text/plain")
                #expect(wrongType.status == 415)
                #expect(wrongType.body["error"]?.stringValue?.hasPrefix("content-type:") == true, "\(wrongType.body)")
                let notOTLP = try await harness.api.send("POST", "/v1/traces/userland", body: JSONValue.object(["hello": "world"]).serialized())
                #expect(notOTLP.status == 400)
                #expect(notOTLP.body["error"]?.stringValue?.hasPrefix("body:") == true, "\(notOTLP.body)")
            }
        }
    }

    @Test func overConnectTheGatewaysForwardOfEachCallJoinsTheTrace() async throws {
        try await withPythonScript(PythonApp.script("otlp_receiver.py")) { receiver in
            let environment = ["OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:\(receiver)", "OTEL_BSP_SCHEDULE_DELAY": "50"]
            try await ExecutionEndToEndTests().withHarness(transport: .connect, environment: environment) { harness in
                let ids = try await harness.send([["name": "test/three", "data": ["key": "trace-connect"]]])
                let run = try await harness.endedRun(of: try #require(ids.first))
                #expect(run["status"] == "Completed")
                let runText = try #require(run["run_id"]?.stringValue)
                let runID = try #require(ULID(runText))
                let spans = try await Self.trace(RunTracing.hex(RunTracing.traceID(of: runID), digits: 32), receiver: receiver)
                let requests = spans.filter { $0.name == "cairn.sdk.request" }
                #expect(requests.count == 4)
                #expect(requests.allSatisfy { $0.attribute("url.full")?.stringValue?.hasPrefix("wss://connect") == true })
                // Each call crossed the gateway once, under its own span.
                let forwards = spans.filter { $0.name == "cairn.gateway.forward" }
                #expect(forwards.map(\.parentID).sorted() == requests.map(\.spanID).sorted())
                #expect(forwards.allSatisfy { $0.json["kind"] == 2 && $0.attribute("cairn.gateway.id") != nil })
            }
        }
    }
}
