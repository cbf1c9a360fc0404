import AsyncHTTPClient
import CairnCore
import CairnHTTP
import CairnTesting
import Foundation
import Synchronization
import Testing

/// The dashboard (docs/dashboard.md) in a real headless Chromium (Debian's `chromium`, driven by
/// Tests/EndToEndTests/Dashboard/browser_check.py), against runs of the official Python SDK app:
/// every page in both themes with no console error and no 5xx, a screenshot of each saved under
/// `.build/test-artifacts/dashboard/`, the DOM of known runs, and actions taken in the browser
/// checked through the REST API.
@Suite(.serialized) struct DashboardEndToEndTests {
    /// Where screenshots go: `CAIRN_TEST_ARTIFACTS`/dashboard, else .build/test-artifacts/dashboard.
    static func shotsFolder(_ name: String) throws -> String {
        let root = ProcessInfo.processInfo.environment["CAIRN_TEST_ARTIFACTS"].map { URL(fileURLWithPath: $0) }
            ?? URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent(".build/test-artifacts")
        let folder = root.appendingPathComponent("dashboard/\(name)")
        try? FileManager.default.removeItem(at: folder)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        return folder.path
    }

    /// Runs the browser checker with `steps` against `origin`; fails with its output unless every
    /// step passed.
    static func browse(_ origin: String, shots: String, _ steps: [JSONValue]) async throws {
        let spec = FileManager.default.temporaryDirectory.appendingPathComponent("cairn-dashboard-spec-\(UUID().uuidString).json")
        try Data(JSONValue.object(["steps": .array(steps)]).serialized()).write(to: spec)
        defer { try? FileManager.default.removeItem(at: spec) }
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Dashboard/browser_check.py")
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("cairn-dashboard-\(UUID().uuidString).log")
        FileManager.default.createFile(atPath: log.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: log) }
        let output = try FileHandle(forWritingTo: log)
        let process = Process()
        guard let python = ProcessInfo.processInfo.environment["CAIRN_TEST_PYTHON"] else {
            throw LocalProcessError(description: "CAIRN_TEST_PYTHON is not set: run the tests with `make test`")
        }
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [script.path, "--base", origin, "--spec", spec.path, "--shots", shots]
        process.standardOutput = output
        process.standardError = output
        try process.run()
        // Bounded: a wedged browser must not hang the suite.
        let deadline = ContinuousClock.now + .seconds(300)
        while process.isRunning && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(100)) }
        if process.isRunning { process.terminate() }
        try? output.close()
        let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
        #expect(process.terminationStatus == 0, "browser_check failed (screenshots in \(shots)):\n\(text.suffix(6_000))")
    }

    /// Every page, loaded, checked and photographed in `scheme`.
    static func tour(_ scheme: String, pages: [(name: String, path: String)]) -> [JSONValue] {
        var steps = [Step.op("theme", ["scheme": .string(scheme)])]
        for page in pages {
            steps.append(Step.visit(page.path, wait: "main[data-testid^=page-]"))
            steps.append(Step.shot("\(page.name)-\(scheme)"))
        }
        return steps
    }

    /// The steps of browser_check.py's spec (its module docstring describes each).
    enum Step {
        static func op(_ name: String, _ fields: [String: JSONValue]) -> JSONValue {
            var object = JSONObject(members: [("op", .string(name))])
            for (key, value) in fields.sorted(by: { $0.key < $1.key }) { object.setValue(value, forKey: key) }
            return .object(object)
        }
        static func visit(_ path: String, wait: String) -> JSONValue { op("visit", ["path": .string(path), "wait": .string(wait)]) }
        static func shot(_ name: String) -> JSONValue { op("shot", ["name": .string(name)]) }
        static func expect(_ selector: String, _ condition: [String: JSONValue]) -> JSONValue {
            op("expect", condition.merging(["selector": .string(selector)]) { $1 })
        }
        static func count(_ selector: String, _ count: Int) -> JSONValue { expect(selector, ["count": .number(JSONNumber(count))]) }
        static func absent(_ selector: String) -> JSONValue { expect(selector, ["absent": true]) }
        static func text(_ selector: String, _ text: String) -> JSONValue { expect(selector, ["text": .string(text)]) }
        static func fill(_ selector: String, _ value: String) -> JSONValue { op("fill", ["selector": .string(selector), "value": .string(value)]) }
        static func submit(_ selector: String, wait: String? = nil, extra: [String: JSONValue] = [:]) -> JSONValue {
            var fields = extra
            fields["selector"] = .string(selector)
            if let wait { fields["wait"] = .string(wait) }
            return op("submit", fields)
        }
        /// A click that loads a page; `confirming` accepts the `confirm()` dialog it opens.
        static func click(_ selector: String, wait: String, confirming: Bool = false) -> JSONValue {
            var fields: [String: JSONValue] = ["selector": .string(selector), "navigates": true, "wait": .string(wait)]
            if confirming { fields["confirm"] = true }
            return op("click", fields)
        }
        static func waitURL(_ part: String) -> JSONValue { op("wait_url", ["contains": .string(part)]) }
        static func capture(_ selector: String, as name: String, regex: String? = nil) -> JSONValue {
            var fields: [String: JSONValue] = ["selector": .string(selector), "attr": "text", "as": .string(name)]
            if let regex { fields["regex"] = .string(regex) }
            return op("capture", fields)
        }
        /// A request with the browser's cookies: its status, or the value at `path` (retried
        /// for `retry` seconds until it equals `equals`).
        static func fetch(
            _ url: String, method: String = "GET", status: Int? = nil, path: String? = nil, equals: JSONValue? = nil, retry: Int = 0,
            headers: [String: JSONValue] = [:], body: JSONValue? = nil
        ) -> JSONValue {
            var fields: [String: JSONValue] = ["method": .string(method), "path": .string(url), "retry_seconds": .number(JSONNumber(retry))]
            if let status { fields["expect_status"] = .number(JSONNumber(status)) }
            if let path { fields["json_path"] = .string(path) }
            if let equals { fields["equals"] = equals }
            if !headers.isEmpty { fields["headers"] = .object(JSONObject(members: headers.sorted { $0.key < $1.key }.map { ($0.key, $0.value) })) }
            if let body { fields["body"] = body }
            return op("fetch", fields)
        }
    }

    @Test func everyPageLoadsInBothThemesAndActionsTakenInTheBrowserChangeRuns() async throws {
        try await ExecutionEndToEndTests().withHarness { harness in
            // A run that completes, one whose steps each fail once (two failed attempts), one that
            // fails, and one that sleeps for an hour.
            let events = try await harness.send([
                ["name": "test/five", "data": ["key": "d5"]], ["name": "test/fails-twice", "data": ["key": "d2"]],
                ["name": "test/fail", "data": ["key": "df"]], ["name": "test/nap", "data": ["key": "dn"]],
                ["name": "test/invoke", "data": [:]],
            ])
            try #require(events.count == 5)
            let five = try await harness.endedRun(of: events[0])
            let twice = try await harness.endedRun(of: events[1])
            #expect(twice["status"] == "Completed")
            let failed = try await harness.endedRun(of: events[2])
            #expect(failed["status"] == "Failed")
            let fiveID = try #require(five["run_id"]?.stringValue), twiceID = try #require(twice["run_id"]?.stringValue)
            let failedID = try #require(failed["run_id"]?.stringValue)
            try await harness.waitUntilCounted("dn:first")
            let napper = try #require(try await harness.api.get("/v1/events/\(events[3])/runs").body["data"]?.arrayValue?.first?["run_id"]?.stringValue)
            let parentID = try #require(try await harness.endedRun(of: events[4])["run_id"]?.stringValue)

            let pages: [(name: String, path: String)] = [
                ("overview", "/"), ("apps", "/apps"), ("functions", "/functions"), ("function", "/functions/cairn-e2e-five-steps"),
                ("runs", "/runs"), ("runs-filtered", "/runs?function=cairn-e2e-fails-twice&status=Completed"), ("run", "/runs/\(twiceID)"),
                ("events", "/events"), ("event", "/events/\(events[1])"), ("queues", "/queues"), ("schedules", "/schedules"), ("workers", "/workers"),
                ("settings", "/settings"),
            ]
            var steps = Self.tour("light", pages: pages) + Self.tour("dark", pages: pages)
            // The runs list: one row per run of the filter, with its status, and the exact count.
            steps += [
                Step.visit("/runs?function=cairn-e2e-fails-twice", wait: "[data-testid=page-runs]"),
                Step.expect("[data-testid=run-row]", ["count": 1, "attr": ["name": "data-status", "value": "Completed"]]),
                Step.text("[data-testid=runs-count]", "1 matching"),
            ]
            // The run whose two steps each failed once: a row per step in the waterfall, each
            // with its failed attempt drawn before the one that succeeded.
            steps += [
                Step.visit("/runs/\(twiceID)", wait: "[data-testid=waterfall]"),
                Step.text("[data-testid=run-status]", "Completed"),
                Step.count("[data-testid=wf-row]", 2),
                Step.count("[data-testid=waterfall] rect.wf-failed", 2),
                Step.count("[data-testid=waterfall] rect.wf-ok", 2),
                Step.count("[data-testid=failed-attempt]", 2),
                Step.expect("[data-testid=failed-attempt]", ["contains": "fails once"]),
                // Only the steps that failed: both did, once each.
                Step.click("[data-testid=steps-failed]", wait: "[data-testid=steps-all]"),
                Step.count("[data-testid=wf-row]", 2),
                Step.expect("[data-testid=step-range]", ["contains": "1–2 of 2 failed steps"]),
            ]
            // An invoke step links to the run it started: the parent's first invoke, child-ok.
            steps += [
                Step.visit("/runs/\(parentID)", wait: "[data-testid=child-run]"),
                Step.count("[data-testid=child-run]", 2),
                Step.click("[data-testid=child-run]", wait: "[data-testid=run-facts]"),
                Step.expect("[data-testid=run-facts]", ["contains": "cairn-e2e-child-ok"]),
                Step.text("[data-testid=run-status]", "Completed"),
            ]
            // Keyboard: j selects the first row of a list.
            steps += [
                Step.visit("/runs", wait: "[data-testid=page-runs]"), Step.op("press", ["keys": "j"]), Step.count("tr[data-row].selected", 1),
            ]
            // Cancel the sleeping run from its page; the API shows it cancelled.
            steps += [
                Step.visit("/runs/\(napper)", wait: "[data-testid=cancel-run]"),
                Step.click("[data-testid=cancel-run]", wait: "[data-testid=notice]", confirming: true),
                Step.text("[data-testid=run-status]", "Cancelled"),
                Step.fetch("/v1/runs/\(napper)", path: "data.status", equals: "Cancelled", retry: 10),
            ]
            // Rerun the five-step run from its third step; the new run records its original.
            steps += [
                Step.visit("/runs/\(fiveID)", wait: "[data-testid=rerun-form]"),
                Step.fill("[data-testid=rerun-from-step]", "s3"),
                Step.submit("[data-testid=rerun-form]", wait: "[data-testid=original-run]"),
                Step.text("[data-testid=original-run]", fiveID),
                Step.capture("[data-testid=run-facts] .mono", as: "rerun", regex: "([0-9A-Z]{26})"),
                Step.fetch("/v1/runs/${rerun}", path: "data.original_run_id", equals: .string(fiveID), retry: 10),
                Step.fetch("/v1/runs/${rerun}", path: "data.status", equals: "Completed", retry: 30),
            ]
            // Tick a failed run in the list and rerun it.
            steps += [
                Step.visit("/runs?function=cairn-e2e-fails-with-handler", wait: "[data-testid=run-row]"),
                Step.op("click", ["selector": "[data-testid=run-row] input[name=run]"]),
                Step.click("[data-testid=rerun-selected]", wait: "[data-testid=notice]", confirming: true),
                Step.text("[data-testid=notice]", "Started 1 reruns of 1 runs."),
                Step.fetch("/v1/runs?function_id=cairn-e2e-fails-with-handler", path: "data.0.original_run_id", equals: .string(failedID), retry: 10),
            ]
            // Replay everything a filter matches: a bulk job, whose page shows its progress, and
            // whose runs the API lists by its id.
            steps += [
                Step.visit("/runs?function=cairn-e2e-fails-twice&status=Completed", wait: "[data-testid=bulk-replay]"),
                Step.click("[data-testid=bulk-replay]", wait: "[data-testid=bulk-id]", confirming: true),
                Step.capture("[data-testid=bulk-id]", as: "bulk"),
                Step.text("[data-testid=bulk-total]", "1"),
                Step.shot("bulk-light"),
                Step.fetch("/v1/bulk/${bulk}", path: "data.status", equals: "Completed", retry: 30),
                Step.fetch("/v1/bulk/${bulk}", path: "data.done", equals: 1),
                Step.fetch("/v1/runs?bulk_id=${bulk}", path: "data.0.original_run_id", equals: .string(twiceID)),
            ]
            try await Self.browse(harness.api.origin, shots: try Self.shotsFolder("dev"), steps)
            // The rerun ran steps 3 to 5 again, not 1 and 2.
            let counts = try await harness.counts()
            #expect(["s1", "s2", "s3", "s4", "s5"].map { counts["d5:\($0)"] } == [1, 1, 2, 2, 2], "\(counts)")
        }
    }

    /// A form posted without its CSRF token, or from another site, changes nothing.
    @Test func formsWithoutTheirTokenOrFromAnotherSiteAreRefused() async throws {
        try await ExecutionEndToEndTests().withHarness { harness in
            let ids = try await harness.send([["name": "test/nap", "data": ["key": "csrf"]]])
            try await harness.waitUntilCounted("csrf:first")
            let run = try #require(try await harness.api.get("/v1/events/\(ids[0])/runs").body["data"]?.arrayValue?.first?["run_id"]?.stringValue)
            // A client that reports the redirect a form answers with, rather than following it.
            let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(redirectConfiguration: .disallow))
            func post(_ body: String, headers: [(String, String)] = []) async throws -> Int {
                var request = HTTPClientRequest(url: "\(harness.api.origin)/runs/\(run)/cancel")
                request.method = .POST
                request.headers.add(name: "content-type", value: "application/x-www-form-urlencoded")
                for (name, value) in headers { request.headers.add(name: name, value: value) }
                request.body = .bytes(Array(body.utf8))
                let response = try await client.execute(request, timeout: .seconds(10))
                _ = try await response.body.collect(upTo: 1 << 20)
                return Int(response.status.code)
            }
            #expect(try await post("") == 403)
            #expect(try await post("csrf=forged") == 403)
            // The real token, read from the page, but posted from another site.
            let page = try await HTTPClient.shared.execute(HTTPClientRequest(url: "\(harness.api.origin)/runs/\(run)"), timeout: .seconds(10))
            let html = String(buffer: try await page.body.collect(upTo: 1 << 22))
            let token = String(try #require(html.firstMatch(of: /name="csrf" value="([^"]+)"/)?.1))
            #expect(try await post("csrf=\(token)", headers: [("origin", "http://evil.example")]) == 403)
            #expect(try await post("csrf=\(token)", headers: [("sec-fetch-site", "cross-site")]) == 403)
            #expect(try await harness.api.get("/v1/runs/\(run)").body["data"]?["status"] == "Running")
            // With the token, from the page's own origin, it is cancelled.
            #expect(try await post("csrf=\(token)", headers: [("origin", harness.api.origin)]) == 303)
            #expect(try await harness.api.get("/v1/runs/\(run)").body["data"]?["status"] == "Cancelled")
            try await client.shutdown()
        }
    }

    /// Outside dev mode: the first start prints a one-time password; nothing is shown without
    /// signing in; a viewer's pages carry no mutation control and the server refuses a
    /// viewer's changes; API tokens carry their role; the audit log records who did what.
    @Test func signingInRolesTokensAndTheAuditLog() async throws {
        try await withTestDatabase { database in
            let schema = database.settings.schema ?? "public"
            let base = try TestEnvironment.postgresURL()
            let port = try TestEnvironment.freePort()
            let key = "signkey-test-" + String(repeating: "ab", count: 16)
            let process = Process()
            process.executableURL = try ExecutableTests.binary("cairn-api")
            process.environment = [
                "CAIRN_POSTGRES_URL": base + (base.contains("?") ? "&" : "?") + "search_path=\(schema)",
                "CAIRN_REDIS_URL": try TestEnvironment.redisURL(), "CAIRN_HOST": "127.0.0.1", "CAIRN_PORT": String(port),
                "CAIRN_STREAM_PREFIX": TestEnvironment.uniqueName("cairn-test-") + ":", "INNGEST_SIGNING_KEY": key,
                "CAIRN_ADMIN_EMAIL": "ops@example.com", "CAIRN_LOG_LEVEL": "warning",
            ]
            let output = Pipe()
            let collected = Mutex("")
            output.fileHandleForReading.readabilityHandler = { handle in
                let chunk = String(decoding: handle.availableData, as: UTF8.self)
                collected.withLock { $0 += chunk }
            }
            process.standardOutput = output
            process.standardError = output
            try process.run()
            defer {
                if process.isRunning { process.terminate() }
                output.fileHandleForReading.readabilityHandler = nil
            }
            // The one-time password is printed once, on standard output.
            let deadline = ContinuousClock.now + .seconds(60)
            while !collected.withLock({ $0.contains(" — sign in") }), process.isRunning, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(50))
            }
            let printed = collected.withLock { $0 }
            let password = String(try #require(printed.firstMatch(of: /one-time password (\S+) —/)?.1, "cairn-api printed: \(printed)"))
            let origin = "http://127.0.0.1:\(port)"

            // Without credentials the API refuses; with the signing key it answers.
            #expect(try await CairnAPIClient(origin: origin, key: nil).get("/v1/runs").status == 401)
            #expect(try await CairnAPIClient(origin: origin, key: try SigningKey(key)).get("/v1/runs").status == 200)

            func signIn(_ email: String, _ password: String) -> [JSONValue] {
                [
                    Step.visit("/login", wait: "[data-testid=login-form]"), Step.fill("[data-testid=login-email]", email),
                    Step.fill("[data-testid=login-password]", password), Step.submit("[data-testid=login-form]"),
                ]
            }
            func changePassword(_ current: String, _ new: String) -> [JSONValue] {
                [
                    Step.waitURL("/settings"), Step.fill("[data-testid=password] input[name=current_password]", current),
                    Step.fill("[data-testid=new-password]", new), Step.fill("[data-testid=password] input[name=confirm_password]", new),
                    Step.submit("[data-testid=password] form", wait: "[data-testid=notice]"), Step.text("[data-testid=notice]", "Password changed."),
                ]
            }
            // Any page without a session leads to the login form, and only to it.
            var steps = [
                Step.visit("/runs?status=Failed", wait: "[data-testid=login-form]"), Step.waitURL("/login?next="), Step.absent("nav.sidebar"),
                Step.shot("login-light"), Step.op("theme", ["scheme": "dark"]), Step.visit("/login", wait: "[data-testid=login-form]"),
                Step.shot("login-dark"), Step.op("theme", ["scheme": "light"]),
            ]
            // A wrong password is refused.
            steps += [
                Step.visit("/login", wait: "[data-testid=login-form]"), Step.fill("[data-testid=login-email]", "ops@example.com"),
                Step.fill("[data-testid=login-password]", "not-the-password"),
                Step.submit("[data-testid=login-form]", wait: "[data-testid=login-failure]", extra: ["allow_console": ["status of 401"]]),
            ]
            // The admin signs in with the one-time password and must choose a new one first.
            steps += signIn("ops@example.com", password) + changePassword(password, "correct horse battery")
            steps += [Step.visit("/runs", wait: "[data-testid=page-runs]"), Step.text("[data-testid=who]", "ops@example.com · admin")]
            // A viewer account, and a viewer token for a script, which reads but changes nothing.
            steps += [
                Step.visit("/settings", wait: "[data-testid=accounts]"), Step.fill("[data-testid=account-email]", "viewer@example.com"),
                Step.fill("[data-testid=account-role]", "viewer"), Step.fill("[data-testid=account-password]", "first password 1"),
                Step.submit("[data-testid=accounts] form", wait: "[data-testid=notice]"),
                Step.fill("[data-testid=token-name]", "ci-reader"), Step.fill("[data-testid=token-role]", "viewer"),
                Step.submit("[data-testid=tokens] form", wait: "[data-testid=new-token-text]"),
                Step.capture("[data-testid=new-token-text]", as: "token"),
                Step.fetch("/v1/runs", status: 200, headers: ["authorization": "Bearer ${token}"]),
                Step.fetch("/v1/cancellations", method: "POST", status: 403, headers: ["authorization": "Bearer ${token}"], body: ["function_id": "nothing"]),
                Step.click("[data-testid=sign-out]", wait: "[data-testid=login-form]"),
            ]
            // The viewer sees the pages, with no control that changes anything, and is refused.
            steps += signIn("viewer@example.com", "first password 1") + changePassword("first password 1", "viewer password 2")
            steps += [
                Step.visit("/runs", wait: "[data-testid=page-runs]"), Step.text("[data-testid=who]", "viewer@example.com · viewer"),
                Step.absent("[data-testid=cancel-selected]"), Step.absent("[data-testid=bulk]"), Step.absent("[data-testid=select-all]"),
                Step.shot("runs-viewer-light"),
                Step.visit("/events", wait: "[data-testid=page-events]"), Step.absent("[data-testid=send-form]"),
                Step.fetch("/events/send", method: "POST", status: 403),
                // A browser session reads the API but changes nothing through it.
                Step.fetch("/v1/runs", status: 200),
                Step.fetch("/v1/cancellations", method: "POST", status: 403, body: ["function_id": "nothing"]),
                // A viewer manages no account, but makes its own token.
                Step.visit("/settings", wait: "[data-testid=tokens]"), Step.absent("[data-testid=accounts]"), Step.absent("[data-testid=account-set-role]"),
                Step.fill("[data-testid=token-name]", "viewer-script"), Step.fill("[data-testid=token-role]", "viewer"),
                Step.submit("[data-testid=tokens] form", wait: "[data-testid=new-token-text]"),
                Step.capture("[data-testid=new-token-text]", as: "viewerToken"),
                Step.fetch("/v1/runs", status: 200, headers: ["authorization": "Bearer ${viewerToken}"]),
                Step.click("[data-testid=sign-out]", wait: "[data-testid=login-form]"),
            ]
            // The admin manages the viewer's account: a new role, disabled (its token refused at
            // once), a password reset, enabled again (its token back). The admin's own row has
            // no controls.
            let viewerRow = "[data-testid=account-row][data-email=\"viewer@example.com\"]"
            let viewerBearer: [String: JSONValue] = ["authorization": "Bearer ${viewerToken}"]
            steps += signIn("ops@example.com", "correct horse battery")
            steps += [
                Step.visit("/settings", wait: "[data-testid=accounts]"),
                Step.absent("[data-testid=account-row][data-email=\"ops@example.com\"] form"),
                Step.fill(viewerRow + " [data-testid=account-set-role]", "operator"),
                Step.submit(viewerRow + " [data-testid=account-save-role]", wait: "[data-testid=notice]"),
                Step.text("[data-testid=notice]", "Account viewer@example.com is operator now."),
                Step.click(viewerRow + " [data-testid=account-disable]", wait: "[data-testid=notice]", confirming: true),
                Step.expect(viewerRow + " [data-testid=account-status]", ["contains": "disabled"]),
                Step.fetch("/v1/runs", status: 401, headers: viewerBearer),
                Step.click(viewerRow + " [data-testid=account-reset]", wait: "[data-testid=reset-password-text]", confirming: true),
                Step.capture("[data-testid=reset-password-text]", as: "viewerPassword"),
                Step.submit(viewerRow + " [data-testid=account-enable]", wait: "[data-testid=notice]"),
                Step.text("[data-testid=notice]", "Account viewer@example.com enabled."),
                Step.fetch("/v1/runs", status: 200, headers: viewerBearer),
                Step.click("[data-testid=sign-out]", wait: "[data-testid=login-form]"),
            ]
            // The viewer, now an operator, signs in with the reset password and must change it.
            steps += signIn("viewer@example.com", "${viewerPassword}") + changePassword("${viewerPassword}", "viewer password 3")
            steps += [
                Step.visit("/runs", wait: "[data-testid=page-runs]"), Step.text("[data-testid=who]", "viewer@example.com · operator"),
                Step.click("[data-testid=sign-out]", wait: "[data-testid=login-form]"),
            ]
            // The admin's audit log shows who did what.
            steps += signIn("ops@example.com", "correct horse battery")
            steps += [
                Step.visit("/settings", wait: "[data-testid=audit]"),
                Step.expect("[data-testid=audit-row]", ["min": 5]),
                Step.expect("[data-testid=audit-row]", ["contains": "token.create", "any": true]),
                Step.expect("[data-testid=audit-row]", ["contains": "account.create", "any": true]),
                Step.expect("[data-testid=audit-row]", ["contains": "viewer@example.com", "any": true]),
                Step.expect("[data-testid=audit-row]", ["contains": "account.role", "any": true]),
                Step.expect("[data-testid=audit-row]", ["contains": "account.disable", "any": true]),
                Step.expect("[data-testid=audit-row]", ["contains": "account.reset", "any": true]),
                Step.expect("[data-testid=audit-row]", ["contains": "account.enable", "any": true]),
                Step.shot("settings-admin-light"),
            ]
            try await Self.browse(origin, shots: try Self.shotsFolder("accounts"), steps)
            process.terminate()
        }
    }
}
