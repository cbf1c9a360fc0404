import CairnCore
import CairnEngine
import CairnTesting
import Foundation
import Logging
import Testing

/// Every engine service on in-memory ports and a manual clock: the router, timers, reconciler
/// and one or more executors, driven step by step by the test. Nothing runs unless the test
/// asks, so interleavings are exact and no test sleeps.
final class EngineHarness: Sendable {
    let clock = ManualClock()
    let registry = InMemoryAppRegistry()
    let eventLog = InMemoryEventLog()
    let store: InMemoryRunStore
    let events = InMemoryStream()
    let work = InMemoryStream()
    let index = InMemoryTimerIndex()
    let epoch = InMemoryTransportEpoch()
    let sink: InMemoryEventSink
    let app = FakeSDKApp()
    let provider: FakeProvider
    let router: EventRouter
    let flow: FlowScheduler
    let timers: TimerService
    let reconciler: Reconciler
    let executors: [RunExecutor]
    /// The spans of every run's trace, as the executors and the router emitted them.
    let spans = CollectedSpans()
    /// Run metrics and tracing into `spans`.
    let metrics: RunMetrics
    static let leaseDuration: Duration = .seconds(60)

    /// An engine with `count` executors; `step.ai.infer` and `step.fetch` requests go to
    /// `provider`; calls go to `sdk` when given instead of the scripted app.
    init(
        executors count: Int = 1, provider: FakeProvider = FakeProvider { _ in SDKReply(status: 200, headers: [:], body: Array(#"{"ok":true}"#.utf8)) },
        sdk: (any SDKTransport)? = nil, pausePageSize: Int = 1_000, concurrency: Int = 64
    ) {
        self.provider = provider
        var logger = Logger(label: "cairn.test.engine")
        logger.logLevel = .critical
        store = InMemoryRunStore(registry: registry, eventLog: eventLog, clock: clock)
        let metrics = RunMetrics(tracing: RunTracing(sink: spans))
        self.metrics = metrics
        sink = InMemoryEventSink(log: eventLog, stream: events, clock: clock)
        let catalog = FunctionCatalog(registry: registry, clock: clock)
        router = EventRouter(
            source: events, catalog: catalog, store: store, eventLog: eventLog,
            work: work, timers: index, events: sink, clock: clock, pausePageSize: pausePageSize, metrics: metrics, logger: logger)
        flow = FlowScheduler(
            store: store, catalog: catalog, eventLog: eventLog, work: work, events: sink, index: index, clock: clock, metrics: metrics,
            logger: logger)
        timers = TimerService(
            store: store, work: work, eventLog: eventLog, eventStream: events, index: index, flow: flow, clock: clock, logger: logger)
        reconciler = Reconciler(
            store: store, eventLog: eventLog, eventStream: events, work: work, index: index, epoch: epoch, events: sink, clock: clock,
            logger: logger)
        let (store, sink, eventLog, work, index, clock) = (store, sink, eventLog, work, index, clock)
        let calls: any SDKTransport = sdk ?? app
        executors = (0..<count).map { n in
            var settings = ExecutorSettings()
            settings.leaseDuration = Self.leaseDuration
            settings.backoffScale = 0.001
            settings.concurrency = concurrency
            settings.owner = "executor-\(n)"
            settings.metrics = metrics
            return RunExecutor(
                store: store, events: sink, eventLog: eventLog, work: work, sdk: calls, outbound: provider, source: work, timers: index,
                clock: clock, keys: nil, settings: settings, logger: logger)
        }
    }

    /// Syncs an app `shop` whose functions are `functions` (slug suffix → trigger event,
    /// retries, cancelOn events) and serves their scripts, at `appURL`.
    func sync(
        _ functions: [(slug: String, trigger: String, retries: Int, cancelOn: [String], script: FakeSDKApp.Function)],
        appURL: String = "http://app.test/api/inngest"
    ) async throws {
        let configs = functions.map { function -> String in
            let cancel = function.cancelOn.map { #"{"event":"\#($0)","if":"event.data.key == async.data.key"}"# }.joined(separator: ",")
            return """
                {"id":"shop-\(function.slug)","name":"\(function.slug)","triggers":[{"event":"\(function.trigger)"}],"cancel":[\(cancel)],
                 "steps":{"step":{"id":"step","name":"step","retries":{"attempts":\(function.retries)},
                 "runtime":{"type":"http","url":"\(appURL)\(appURL.contains("?") ? "&" : "?")fnId=shop-\(function.slug)&stepId=step"}}}}
                """
        }
        let body = #"{"appname":"shop","url":"\#(appURL)","sdk":"py:v0.5.19","framework":"flask","functions":[\#(configs.joined(separator: ","))]}"#
        _ = try await registry.sync(try AppRegistration(parsing: try JSONValue(parsing: body)), at: clock.now)
        for function in functions { app.serve("shop-\(function.slug)", function.script) }
    }

    /// Syncs an app `shop` whose functions have the given config members (triggers and
    /// options, as JSON text without braces) and serve `script`.
    func sync(configs functions: [(slug: String, config: String, script: FakeSDKApp.Function)], appURL: String = "http://app.test/api/inngest")
        async throws
    {
        let configs = functions.map { function -> String in
            """
            {"id":"shop-\(function.slug)","name":"\(function.slug)",\(function.config),
             "steps":{"step":{"id":"step","name":"step","retries":{"attempts":0},
             "runtime":{"type":"http","url":"\(appURL)?fnId=shop-\(function.slug)&stepId=step"}}}}
            """
        }
        let body = #"{"appname":"shop","url":"\#(appURL)","sdk":"py:v0.5.19","framework":"flask","functions":[\#(configs.joined(separator: ","))]}"#
        _ = try await registry.sync(try AppRegistration(parsing: try JSONValue(parsing: body)), at: clock.now)
        for function in functions { app.serve("shop-\(function.slug)", function.script) }
    }

    /// Sends one event through the ingest path, with its own `id` and `ts` when given; returns
    /// its internal id.
    @discardableResult
    func send(_ name: String, _ data: JSONObject = [:], id: String? = nil, ts: Int64? = nil) async throws -> ULID {
        try await sink.emit([Event(name: name, data: data, id: id, ts: ts)])
        return try #require(try await eventLog.events(name: name, before: nil, limit: 1).first?.id)
    }

    /// Every run of function `shop-<slug>`, oldest first, skipped ones included.
    func runs(ofFunction slug: String) -> [RunRecord] {
        store.allRuns.filter { $0.functionSlug == "shop-\(slug)" }
    }

    /// Routes every event on the stream; returns how many.
    @discardableResult
    func route() async throws -> Int {
        var total = 0
        while true {
            let deliveries = try await events.read(maximum: 256)
            if deliveries.isEmpty { return total }
            try await router.route(deliveries)
            try await events.acknowledge(deliveries.map(\.entryID))
            total += deliveries.count
        }
    }

    /// Drives every work item on the stream with executor `n`, acknowledging what it
    /// handled; returns how many deliveries it drove. A drive that throws (an injected fault)
    /// leaves its delivery pending, as a crash would. Items count as published at `queuedAt`
    /// (default: now).
    @discardableResult
    func drive(with n: Int = 0, queuedAt: Date? = nil) async throws -> Int {
        var total = 0
        while true {
            let deliveries = try await work.read(maximum: 64)
            if deliveries.isEmpty { return total }
            for delivery in deliveries {
                total += 1
                let item = try #require(delivery.fields["item"].flatMap { try? JSONValue(parsing: $0) }.flatMap(WorkItem.init(json:)))
                if (try? await executors[n].drive(item, queuedAt: queuedAt ?? clock.now)) == true { try await work.acknowledge([delivery.entryID]) }
            }
        }
    }

    /// Routes, drives and fires due timers until nothing moves.
    func settle() async throws {
        for _ in 0..<100 {
            let moved = try await route() + drive() + timers.fireDue() + timers.deliverDueEvents() + flow.fireDue()
            if moved == 0 { return }
        }
        Issue.record("the engine did not settle")
    }

    /// Moves the clock on by `seconds`, then settles.
    func advance(_ seconds: TimeInterval) async throws {
        clock.advance(by: seconds)
        try await settle()
    }

    /// The runs `eventID` started.
    func runs(of eventID: ULID) async throws -> [RunRecord] {
        try await store.runs(eventID: eventID)
    }

    /// The one run `eventID` started.
    func run(of eventID: ULID) async throws -> RunRecord {
        let runs = try await runs(of: eventID)
        try #require(runs.count == 1, "expected one run, got \(runs.count)")
        return try #require(try await store.run(runs[0].id))
    }

    /// Stored system events named `name` about run `runID`.
    func systemEvents(_ name: String, of runID: ULID) -> [AcceptedEvent] {
        eventLog.storedEvents.filter { $0.name == name && $0.payload["data"]?["run_id"]?.stringValue == runID.description }
    }
}
