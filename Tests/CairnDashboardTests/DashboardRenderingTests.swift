import CairnCore
@testable import CairnDashboard
import CairnEngine
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import Testing

/// The dashboard's pieces that need no server: the waterfall's geometry, the templates with a
/// viewer's and an operator's rights, forms, redirects and JSON as pages show it. The pages
/// against a running Cairn, in a browser, are Tests/EndToEndTests/DashboardEndToEndTests.swift.
@Suite struct DashboardRenderingTests {
    static let start = Date(timeIntervalSince1970: 1_800_000_000)
    static func at(_ seconds: Double) -> Date { start.addingTimeInterval(seconds) }

    /// A run of 10 s: step `a` failed once (queued 0–1 s, ran 1–2 s) then succeeded (queued
    /// 4–5 s, ran 5–6 s); then a sleep until 9 s.
    static func run() throws -> RunRecord {
        var run = RunRecord(
            id: try #require(ULID("01M8XT90BA92CKS8EPPJ9MZPJ1")), functionID: UUID(), functionSlug: "shop-charge", functionVersion: 1, eventID: nil,
            status: "Completed", output: ["ok": true], error: nil, createdAt: start, startedAt: start, endedAt: at(10),
            steps: [
                RunRecord.Step(id: "a", name: "charge", op: "StepRun", result: ["data": 1], attempts: 2, recordedAt: at(6), queuedAt: at(4), startedAt: at(5)),
                RunRecord.Step(id: "n", name: "nap", op: "Sleep", result: .null, attempts: 1, recordedAt: at(9)),
            ])
        run.failedAttempts = [
            RunRecord.FailedAttempt(stepID: "a", attempt: 1, queuedAt: start, startedAt: at(1), endedAt: at(2), error: ["name": "Error", "message": "declined"])
        ]
        return run
    }

    @Test func theWaterfallDrawsEachAttemptsQueueAndExecutionOnOneAxis() throws {
        let waterfall = Waterfall(run: try Self.run(), now: Self.at(100))
        let rects = waterfall.rows.map { row in (row["rects"] as? [[String: Any]] ?? []).map { "\($0["kind"]!) \($0["x"]!) \($0["width"]!)" } }
        #expect(rects == [
            // 1000 units = 10 s: the failed attempt's queue and run, then the successful one's.
            ["wf-queue 0.00 100.00", "wf-failed 100.00 100.00", "wf-queue 400.00 100.00", "wf-ok 500.00 100.00"],
            // The sleep: a gap from the step before it to its wake-up.
            ["wf-sleep 600.00 300.00"],
        ])
        #expect(waterfall.rows.map { $0["name"] as? String } == ["charge", "nap"])
        #expect(waterfall.scale.map { $0["label"] as? String } == ["+0 µs", "+2.50 s", "+5.00 s", "+7.50 s", "+10.00 s"])
    }

    @Test func aRunStillWaitingGetsAnOpenLastRowUpToNow() throws {
        var run = try Self.run()
        run.status = "Running"
        run.endedAt = nil
        run.waitingFor = [RunRecord.Waiting(kind: "wait", stepID: "approval", event: "shop/approved", until: Self.at(3600))]
        let waterfall = Waterfall(run: run, now: Self.at(20))
        let last = try #require(waterfall.rows.last)
        #expect(last["name"] as? String == "approval")
        let rects = try #require(last["rects"] as? [[String: Any]])
        // The axis ends now (20 s): the wait runs from the sleep's end (9 s) to its edge.
        #expect(rects.map { "\($0["kind"]!) \($0["x"]!) \($0["width"]!)" } == ["wf-wait 450.00 550.00"])
    }

    /// A run of 450 one-second steps; step 300 failed for good, steps 10 and 420 each failed an
    /// attempt first.
    static func longRun() throws -> RunRecord {
        var run = try Self.run()
        run.endedAt = Self.at(451)
        run.steps = (0..<450).map { index in
            RunRecord.Step(id: "s\(index)", name: "step \(index)", op: index == 300 ? "StepFailed" : "StepRun", result: .null, attempts: 1, recordedAt: Self.at(Double(index + 1)))
        }
        run.failedAttempts = [10, 420].map { index in
            RunRecord.FailedAttempt(stepID: "s\(index)", attempt: 1, queuedAt: nil, startedAt: nil, endedAt: Self.at(Double(index) + 0.5), error: ["message": "no"])
        }
        return run
    }

    @Test func aLongRunShowsItsStepsAPageAtATimeOrOnlyTheFailedOnes() throws {
        let run = try Self.longRun()
        let first = try StepWindow(run: run, page: nil, steps: nil)
        #expect(first.indices == Array(0..<200))
        let bar = try #require(first.pager(path: "/runs/r"))
        #expect(bar["stepFirst"] as? Int == 1 && bar["stepLast"] as? Int == 200 && bar["stepMatching"] as? Int == 450)
        #expect(bar["earlier"] == nil && bar["later"] as? String == "/runs/r?page=2")
        #expect(bar["failedLink"] as? String == "/runs/r?steps=failed" && bar["failedCount"] as? Int == 3)

        let last = try StepWindow(run: run, page: "3", steps: "all")
        #expect(last.indices == Array(400..<450))
        let lastBar = try #require(last.pager(path: "/runs/r"))
        #expect(lastBar["earlier"] as? String == "/runs/r?page=2" && lastBar["later"] == nil && lastBar["stepFirst"] as? Int == 401)

        let failed = try StepWindow(run: run, page: nil, steps: "failed")
        #expect(failed.indices == [10, 300, 420])
        let failedBar = try #require(failed.pager(path: "/runs/r"))
        #expect(failedBar["allLink"] as? String == "/runs/r" && failedBar["failedLink"] == nil && failedBar["later"] == nil)

        // Past the end: an empty page that says so, and a way back.
        let beyond = try StepWindow(run: run, page: "9", steps: nil)
        #expect(beyond.indices.isEmpty && beyond.pager(path: "/runs/r")?["stepAny"] as? Bool == true)
        #expect(beyond.pager(path: "/runs/r")?["earlier"] as? String == "/runs/r?page=3")

        for (page, steps, field) in [("0", nil, "page:"), ("x", nil, "page:"), (nil, "some", "steps:")] as [(String?, String?, String)] {
            let refusal = #expect(throws: DashboardPageError.self) { try StepWindow(run: run, page: page, steps: steps) }
            #expect(refusal?.message.hasPrefix(field) == true, "\(refusal?.message ?? "")")
        }
        // A short run without failures gets no bar at all.
        #expect(try StepWindow(run: try Self.run(), page: nil, steps: nil).pager(path: "/runs/r")?["failedCount"] as? Int == 1)
        var clean = try Self.run()
        clean.failedAttempts = []
        #expect(try StepWindow(run: clean, page: nil, steps: nil).pager(path: "/runs/r") == nil)
    }

    @Test func aPageOfTheWaterfallKeepsTheWholeRunsScale() throws {
        let run = try Self.longRun()
        let whole = Waterfall(run: run, now: Self.at(1_000))
        let window = try StepWindow(run: run, page: "3", steps: nil)
        let page = Waterfall(run: run, now: Self.at(1_000), showing: window.indices)
        func geometry(_ rows: ArraySlice<[String: Any]>) -> [String] {
            rows.map { row in (row["rects"] as? [[String: Any]] ?? []).map { "\($0["kind"]!) \($0["x"]!) \($0["width"]!)" }.joined(separator: ",") }
        }
        #expect(page.rows.count == 50)
        #expect(geometry(page.rows[...]) == geometry(whole.rows[400..<450]))
        #expect(page.scale.map { $0["label"] as? String } == whole.scale.map { $0["label"] as? String })
    }

    @Test func aStreamedPageSendsWhatComesBeforeTheSlowFigureFirst() async throws {
        let templates = try DashboardTemplates.load()
        let request = DashboardRequest(viewer: Self.viewer(.viewer), query: Parameters(), parameters: Parameters(), form: [:], path: "/runs")
        let (gate, open) = AsyncStream.makeStream(of: Int.self)
        let values: [String: Any] = ["runs": [DashboardPages.runRow(try Self.run())], "countText": DashboardTemplates.later]
        let response = templates.streamedPage("runs", title: "Runs", request: request, nav: "/runs", values) {
            var figures = gate.makeAsyncIterator()
            return "\(await figures.next() ?? 0) <matching>"
        }
        let collector = ChunkCollector()
        let writing = Task { try await response.body.write(collector) }
        // The rows are sent while the figure is still being computed.
        while collector.chunks.isEmpty { await Task.yield() }
        #expect(collector.chunks[0].contains("data-testid=\"run-row\""))
        #expect(!collector.chunks[0].contains("matching"))
        open.yield(11_416)
        try await writing.value
        #expect(collector.chunks.count == 3)
        #expect(collector.chunks[1] == "11416 &lt;matching&gt;")
        #expect(collector.chunks[2].contains("</html>"))
    }

    static func viewer(_ role: AccountRole) -> DashboardViewer {
        DashboardViewer(principal: Principal(accountID: UUID(), actor: "\(role.rawValue)@example.com", role: role, csrfToken: "t0ken"), csrf: "t0ken")
    }

    static func render(_ run: RunRecord, as role: AccountRole) async throws -> String {
        let templates = try DashboardTemplates.load()
        var values = DashboardPages.runRow(run)
        values["ended"] = run.endedAt != nil
        values["steps"] = run.steps.enumerated().map { DashboardPages.stepPanel($1, index: $0, run: run) }
        values["waterfall"] = Waterfall(run: run, now: Self.at(100)).rows
        let response = templates.page("run", title: "Run", viewer: Self.viewer(role), nav: "/runs", values)
        #expect(response.headers[.contentType] == "text/html; charset=utf-8")
        #expect(response.headers[HTTPField.Name("Content-Security-Policy")!]?.contains("script-src 'self'") == true)
        return try await Self.body(response)
    }

    static func body(_ response: Response) async throws -> String {
        let collector = Collector()
        try await response.body.write(collector)
        return collector.text
    }

    @Test func aViewersRunPageHasNoControlThatChangesAnything() async throws {
        var run = try Self.run()
        let viewer = try await Self.render(run, as: .viewer)
        let operatorPage = try await Self.render(run, as: .operator)
        // (The viewer's one form is signing out.)
        for control in ["data-testid=\"rerun\"", "data-testid=\"rerun-form\"", "action=\"/runs/"] {
            #expect(!viewer.contains(control), "a viewer sees \(control)")
            #expect(operatorPage.contains(control), "an operator misses \(control)")
        }
        run.status = "Running"
        run.endedAt = nil
        #expect(!(try await Self.render(run, as: .viewer)).contains("data-testid=\"cancel-run\""))
        #expect(try await Self.render(run, as: .operator).contains("data-testid=\"cancel-run\""))
    }

    @Test func aMissingValueIsAbsentNotPrintedAsNil() async throws {
        let page = try await Self.render(try Self.run(), as: .admin)
        #expect(!page.contains(">nil<") && !page.contains(" nil "), "a nil reached the page")
        // A step's own output, not the run's: the sleep has none and shows none.
        #expect(page.components(separatedBy: "<h3 class=\"small\">Output").count == 2)
        #expect(page.contains("Attempt 1 failed") && page.contains("declined"))
        let cleaned = DashboardTemplates.withoutNils(["a": Optional<Int>.none as Any, "b": [Optional<String>.none as Any, "x"], "c": 1]) as? [String: Any]
        #expect(cleaned?.keys.sorted() == ["b", "c"])
        #expect((cleaned?["b"] as? [Any])?.count == 1)
    }

    @Test func atMostFourSignInsHashAtOnce() {
        let gate = SignInGate()
        #expect((0..<DashboardAccess.maximumConcurrentSignIns).allSatisfy { _ in gate.enter(limit: DashboardAccess.maximumConcurrentSignIns) })
        #expect(!gate.enter(limit: DashboardAccess.maximumConcurrentSignIns))
        gate.leave()
        #expect(gate.enter(limit: DashboardAccess.maximumConcurrentSignIns))
    }

    @Test func formsDecodeLikeBrowsersEncodeThem() {
        let form = FormBody.parse(ByteBuffer(string: "csrf=a%2Bb&run=1&run=2&q=event.data.x+%3D%3D+%22y%22&empty="))
        #expect(form["csrf"] == ["a+b"])
        #expect(form["run"] == ["1", "2"])
        #expect(form["q"] == [#"event.data.x == "y""#])
        #expect(form["empty"] == [""])
    }

    @Test func afterSigningInOnlyAPathOnThisSiteIsFollowed() {
        #expect(Dashboard.safeNext("/runs?status=Failed") == "/runs?status=Failed")
        for hostile in ["//evil.example/x", "https://evil.example", "/\\evil.example", "runs"] {
            #expect(Dashboard.safeNext(hostile) == "/", "\(hostile)")
        }
    }

    @Test func jsonIsIndentedInItsOrderAndCutWhenLarge() {
        #expect(DashboardFormat.pretty(["b": 1, "a": [true, .null], "e": [:]]) == "{\n  \"b\": 1,\n  \"a\": [\n    true,\n    null\n  ],\n  \"e\": {}\n}")
        let small = DashboardFormat.json(["k": "v"])
        #expect(small["cut"] as? Bool == false && small["bytes"] as? Int == 9)
        let large = DashboardFormat.json(.string(String(repeating: "x", count: 100_000)))
        #expect(large["cut"] as? Bool == true)
        #expect((large["text"] as? String)?.utf8.count ?? 0 < 70_000)
        #expect(large["size"] as? String == "97.7 KiB")
    }

    @Test func dateFieldsTakeTheBrowsersFormOrRFC3339AndNameTheFieldOtherwise() throws {
        let parsed = try #require(try DashboardFormat.formDate("2026-12-03T11:40", field: "from"))
        #expect(RFC3339.format(milliseconds: parsed.unixMilliseconds) == "2026-12-03T11:40:00.000Z")
        #expect(try DashboardFormat.formDate("", field: "from") == nil)
        let error = try #require(throws: DashboardPageError.self) { try DashboardFormat.formDate("yesterday", field: "until") }
        #expect(error.message.hasPrefix("until: must be a date-time"))
    }
}

/// Collects a response body.
/// Each chunk a response body writes, in order.
final class ChunkCollector: ResponseBodyWriter, @unchecked Sendable {
    private let lock = NSLock()
    private var written: [String] = []
    var chunks: [String] { lock.withLock { written } }
    func write(_ buffer: ByteBuffer) async throws { lock.withLock { written.append(String(buffer: buffer)) } }
    func finish(_ trailingHeaders: HTTPFields?) async throws {}
}

final class Collector: ResponseBodyWriter, @unchecked Sendable {
    var text = ""
    func write(_ buffer: ByteBuffer) async throws { text += String(buffer: buffer) }
    func finish(_ trailingHeaders: HTTPFields?) async throws {}
}
