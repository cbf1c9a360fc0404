import CairnCore
import CairnTesting
import Foundation
import Testing

/// Flow control on the official Python SDK, through every role (docs/flow-control.md). Each
/// test checks what the app ran and what the REST API shows for every event, the skipped ones
/// included.
extension ExecutionEndToEndTests {
    /// The one run each event has, once ended (skipped ones are ended when recorded).
    func outcomes(_ harness: Harness, _ ids: [String]) async throws -> [JSONValue] {
        var runs: [JSONValue] = []
        for id in ids { runs.append(try #require(try await harness.endedRuns(of: id).first)) }
        return runs
    }

    @Test func debounceRunsOnceWithTheLastEventPerKey() async throws {
        try await withHarness { harness in
            let ids = try await harness.send([
                ["name": "test/debounce", "data": ["key": "da", "n": 1]], ["name": "test/debounce", "data": ["key": "da", "n": 2]],
                ["name": "test/debounce", "data": ["key": "da", "n": 3]], ["name": "test/debounce", "data": ["key": "db", "n": 9]],
            ])
            let runs = try await outcomes(harness, ids)
            #expect(runs.map { $0["status"] } == ["Skipped", "Skipped", "Completed", "Completed"])
            #expect(runs[2]["output"] == 3)
            #expect(runs[3]["output"] == 9)
            // The replaced events point at the run that took their debounce.
            #expect(runs[0]["skip"] == ["reason": "debounced", "run_id": runs[2]["run_id"] ?? .null])
            #expect(runs[1]["skip"]?["run_id"] == runs[2]["run_id"])
            let counts = try await harness.counts()
            #expect(counts["da:debounced"] == 1)
            #expect(counts["db:debounced"] == 1)
        }
    }

    @Test func singletonSkipRunsOneOfTwoEventsSentTogether() async throws {
        try await withHarness { harness in
            let ids = try await harness.send([
                ["name": "test/singleton-skip", "data": ["key": "sk", "n": "1"]], ["name": "test/singleton-skip", "data": ["key": "sk", "n": "2"]],
            ])
            let runs = try await outcomes(harness, ids)
            #expect(runs.map { $0["status"] } == ["Completed", "Skipped"])
            #expect(runs[1]["skip"] == ["reason": "singleton", "run_id": runs[0]["run_id"] ?? .null])
            let counts = try await harness.counts()
            #expect(counts["sk:1:start"] == 1)
            #expect(counts["sk:2:start"] == nil)
        }
    }

    @Test func singletonCancelReplacesTheRunningHolder() async throws {
        try await withHarness { harness in
            let first = try #require(try await harness.send([["name": "test/singleton-cancel", "data": ["key": "sc", "n": "1"]]]).first)
            // Once the first run holds the key (it is sleeping), the second replaces it.
            try await harness.waitUntilCounted("sc:1:start")
            let second = try #require(try await harness.send([["name": "test/singleton-cancel", "data": ["key": "sc", "n": "2"]]]).first)
            let runs = try await outcomes(harness, [first, second])
            #expect(runs.map { $0["status"] } == ["Cancelled", "Completed"])
            #expect(runs[1]["output"] == "2")
            #expect(runs[0]["run_id"] != runs[1]["run_id"])
        }
    }

    @Test func idempotencyAndRateLimitSkipTheEventsTheyRefuse() async throws {
        try await withHarness { harness in
            let idempotent = try await harness.send([
                ["name": "test/idempotent", "data": ["order": "o1"]], ["name": "test/idempotent", "data": ["order": "o1"]],
                ["name": "test/idempotent", "data": ["order": "o2"]],
            ])
            let limited = try await harness.send([
                ["name": "test/rate-limited", "data": ["key": "r", "n": 1]], ["name": "test/rate-limited", "data": ["key": "r", "n": 2]],
                ["name": "test/rate-limited", "data": ["key": "other", "n": 3]],
            ])
            let once = try await outcomes(harness, idempotent)
            #expect(once.map { $0["status"] } == ["Completed", "Skipped", "Completed"])
            #expect(once[1]["skip"]?["reason"] == "idempotent")
            let limits = try await outcomes(harness, limited)
            #expect(limits.map { $0["status"] } == ["Completed", "Skipped", "Completed"])
            #expect(limits[1]["skip"]?["reason"] == "rate_limited")
        }
    }

    @Test func aThrottleDelaysTheRunsBeyondItsRateAndDropsNone() async throws {
        try await withHarness { harness in
            // 1 per 2 s with a burst of 1, on one key (and one event on another).
            let events: [JSONValue] = (1...4).map { n in ["name": "test/throttled", "data": ["key": "tk", "n": .number(JSONNumber(n))]] }
            let ids = try await harness.send(.array(events + [["name": "test/throttled", "data": ["key": "other", "n": 5]]]))
            let runs = try await outcomes(harness, ids)
            #expect(runs.map { $0["status"] } == Array(repeating: "Completed", count: 5))
            #expect(runs.map { $0["output"] } == [1, 2, 3, 4, 5])
            // Two start at once; the third waits at least one period after the first was
            // admitted, the fourth two. (Only lower bounds: how much later each starts depends
            // on the machine.)
            func milliseconds(_ run: JSONValue, _ field: String) throws -> Int64 {
                try #require(run[field]?.stringValue.flatMap(RFC3339.parseMilliseconds))
            }
            let first = try runs.prefix(4).map { try milliseconds($0, "created_at") }.min() ?? 0
            let starts = try runs.prefix(4).map { Double(try milliseconds($0, "run_started_at") - first) / 1_000 }.sorted()
            // Times are shown to the millisecond: allow one for the rounding.
            #expect(starts[2] >= 1.999)
            #expect(starts[3] >= 3.999)
        }
    }

    @Test func aConcurrencyLimitIsNeverExceededAndDropsNothing() async throws {
        try await withHarness { harness in
            // 2 at a time per key; the app records the most step bodies it ran at once.
            let events: [JSONValue] = (1...6).map { n in ["name": "test/limited", "data": ["key": "L", "n": .number(JSONNumber(n))]] }
                + [["name": "test/limited", "data": ["key": "M", "n": 7]]]
            let runs = try await outcomes(harness, try await harness.send(.array(events)))
            #expect(runs.map { $0["status"] } == Array(repeating: "Completed", count: 7))
            #expect(runs.map { $0["output"] } == [1, 2, 3, 4, 5, 6, 7])
            let counts = try await harness.counts()
            let most = try #require(counts["L:max"]?.int64Value)
            #expect(most <= 2)
            #expect(counts["M:max"] == 1)
            // Operators see the line: over REST, and as gauges once the scheduler has read it.
            let queues = try await harness.api.get("/v1/queues").body["data"]?.arrayValue ?? []
            let line = try #require(queues.first { $0["function_id"]?.stringValue?.hasSuffix("-limited") == true })
            #expect(line["limits"] == [["limit": 2, "key": "event.data.key", "scope": "fn", "run_level": false]])
            #expect(line["ready"] == 0)
            #expect(line["backlog"] == 0)
            #expect(line["running"] == 0)
            let slug = try #require(line["function_id"]?.stringValue)
            try await harness.waitForMetrics([
                "cairn_concurrency_in_use{function=\"\(slug)\"} 0.0", "cairn_queue_depth{function=\"\(slug)\",state=\"backlog\"} 0.0",
                "cairn_queue_depth{function=\"\(slug)\",state=\"ready\"} 0.0",
            ])
        }
    }

    @Test func aHighPriorityRunGoesAheadOfTheLine() async throws {
        try await withHarness { harness in
            // One at a time. The first event's run takes the slot and holds it 2 s, long enough
            // for the rest to be put in line, where the last one sent has a priority of 60 s.
            let first = try await harness.send([["name": "test/prioritized", "data": ["n": 0, "p": 0, "hold": 2]]])
            try await harness.waitUntilCounted("P:max")
            let line: [JSONValue] = (1...3).map { n in ["name": "test/prioritized", "data": ["n": .number(JSONNumber(n)), "p": 0]] }
                + [["name": "test/prioritized", "data": ["n": 4, "p": 60]]]
            let runs = try await outcomes(harness, first + (try await harness.send(.array(line))))
            #expect(runs.map { $0["status"] } == Array(repeating: "Completed", count: 5))
            func started(_ run: JSONValue) throws -> Int64 {
                try #require(run["run_started_at"]?.stringValue.flatMap(RFC3339.parseMilliseconds))
            }
            // In the order they started: the first, then the urgent one, then the others.
            let order = try runs.sorted { try started($0) < started($1) }.map { $0["output"] }
            #expect(order == [0, 4, 1, 2, 3])
            #expect(try await harness.counts()["P:max"] == 1)
        }
    }

    @Test func batchesStartOneRunPerFullBatchAndFlushTheRestOnTimeout() async throws {
        try await withHarness { harness in
            let events: [JSONValue] = (1...4).map { n in ["name": "test/batch", "data": ["key": "bk", "n": .number(JSONNumber(n))]] }
            let ids = try await harness.send(.array(events))
            let runs = try await outcomes(harness, ids)
            #expect(runs.map { $0["output"] } == [[1, 2, 3], [1, 2, 3], [1, 2, 3], [4]])
            #expect(Set(runs.prefix(3).map { $0["run_id"] }).count == 1)
            #expect(runs[0]["batch_id"]?.stringValue != nil)
            #expect(runs[0]["batch_id"] != runs[3]["batch_id"])
        }
    }

    @Test func aFinishTimeoutCancelsARunThatTakesTooLong() async throws {
        try await withHarness { harness in
            let id = try #require(try await harness.send([["name": "test/finish-timeout", "data": ["key": "ft"]]]).first)
            let run = try await harness.endedRun(of: id)
            #expect(run["status"] == "Cancelled")
            let counts = try await harness.counts()
            #expect(counts["ft:begin"] == 1)
            #expect(counts["ft:never"] == nil)
        }
    }
}
