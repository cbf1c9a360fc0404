import CairnCore
import CairnTesting
import Foundation
import Testing

/// `/metrics` after a known workload on the official Python SDK: every run lifecycle counter,
/// the SDK request counters, the HTTP route counters and the build info, by name and value.
@Suite(.serialized) struct MetricsEndToEndTests {
    @Test func aKnownWorkloadShowsInTheMetricsByNameAndValue() async throws {
        try await ExecutionEndToEndTests().withHarness { harness in
            let ids = try await harness.send(.array((1...3).map { ["name": "test/three", "data": ["key": .string("m\($0)")]] }))
            for id in ids { #expect(try await harness.endedRun(of: id)["status"] == "Completed") }
            let failed = try await harness.send([["name": "test/non-retriable", "data": ["key": "mf"]]])
            #expect(try await harness.endedRun(of: try #require(failed.first))["status"] == "Failed")
            let napping = try await harness.send([["name": "test/nap", "data": ["key": "mn"]]])
            try await harness.waitUntilCounted("mn:first")
            let napEvent = try #require(napping.first)
            let nap = try #require(try await harness.api.get("/v1/events/\(napEvent)/runs").body["data"]?[0])
            let cancel = try await harness.api.send("DELETE", "/v1/runs/\(try #require(nap["run_id"]?.stringValue))")
            #expect(cancel.status == 200, "\(cancel.body)")
            #expect(try await harness.api.send("POST", "/v1/functions/cairn-e2e-three-steps/pause").status == 200)
            let skipped = try await harness.send([["name": "test/three", "data": ["key": "ms"]]])
            #expect(try await harness.endedRun(of: try #require(skipped.first))["status"] == "Skipped")

            let three = #"function="cairn-e2e-three-steps""#
            try await harness.waitForMetrics([
                "cairn_function_runs_scheduled_total{\(three)} 3",
                "cairn_function_runs_started_total{\(three)} 3",
                #"cairn_function_runs_ended_total{\#(three),status="completed"} 3"#,
                #"cairn_function_runs_ended_total{\#(three),status="skipped"} 1"#,
                "cairn_run_schedule_to_start_seconds_count{\(three)} 3",
                // One work item per run: its steps ran on the drive that started it.
                "cairn_step_queue_delay_seconds_count{\(three)} 3",
                #"cairn_function_run_duration_seconds_count{\#(three),status="completed"} 3"#,
                // Three steps, each reported in a call of its own, then the call that returns.
                #"cairn_sdk_requests_total{\#(three),outcome="steps"} 9"#,
                #"cairn_sdk_requests_total{\#(three),outcome="done"} 3"#,
                "cairn_sdk_request_duration_seconds_count{\(three)} 12",
                #"cairn_function_runs_ended_total{function="cairn-e2e-non-retriable",status="failed"} 1"#,
                #"cairn_sdk_requests_total{function="cairn-e2e-non-retriable",outcome="non_retriable"} 1"#,
                #"cairn_function_runs_ended_total{function="cairn-e2e-napper",status="cancelled"} 1"#,
                #"cairn_http_requests_total{route="/v1/runs/{id}",method="DELETE",status="200"} 1"#,
                #"cairn_http_requests_total{route="/v1/functions/{function}/pause",method="POST",status="200"} 1"#,
                // Every work item and event handled and acknowledged.
                #"cairn_redis_stream_pending{stream="work",group="executor"} 0.0"#,
                #"cairn_redis_stream_lag{stream="work",group="executor"} 0.0"#,
                #"cairn_redis_stream_pending{stream="events",group="scheduler"} 0.0"#,
                #"cairn_build_info{version="0.1.0",role="api",commit="unknown"} 1.0"#,
                #"cairn_build_info{version="0.1.0",role="executor",commit="unknown"} 1.0"#,
            ])
            // No run id, event id or raw path becomes a label.
            let text = try await harness.metricsText()
            // Store calls, by the store method that made them; Redis commands, by name.
            func counts(_ name: String, _ label: String) -> [String: Double] {
                var result: [String: Double] = [:]
                for line in text.split(separator: "\n") where line.hasPrefix(name + "_count{" + label + "=\"") {
                    let key = line.dropFirst(name.count + label.count + 9).prefix { $0 != "\"" }
                    result[String(key)] = Double(line.split(separator: " ").last ?? "")
                }
                return result
            }
            let queries = counts("cairn_postgres_query_duration_seconds", "op")
            #expect((queries["PostgresRunStore.recordStep"] ?? 0) >= 9, "\(queries)")
            #expect(queries.keys.allSatisfy { $0.wholeMatch(of: /Postgres\w+\.\w+/) != nil }, "\(queries.keys.sorted())")
            let commands = counts("cairn_redis_command_duration_seconds", "command")
            // Work items are published in pipelines of XADDs.
            #expect((commands["PIPELINE XADD"] ?? 0) >= 3, "\(commands)")
            #expect(commands.keys.allSatisfy { $0.wholeMatch(of: /(PIPELINE )?[A-Z]+/) != nil }, "\(commands.keys.sorted())")
            for id in ids { #expect(!text.contains(id)) }
            #expect(!text.contains(#"route="/v1/runs/0"#))
        }
    }
}
