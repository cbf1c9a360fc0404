public import CairnCore
public import Foundation
public import Logging
public import ServiceLifecycle
import Synchronization

/// The scheduler's event consumer. For each event on the `events` stream it
/// - starts one run per matching event trigger (name pattern, then expression), or, for
///   `inngest/function.invoked`, a run of the function it names;
/// - resumes runs whose `waitForEvent` or invoke pause it matches (each pause once), and
///   cancels runs whose `cancelOn` pause it matches (only events newer than the run).
/// An event whose `ts` is more than `PauseMatcher.futureTolerance` ahead is held on a timer
/// and handled when its time comes.
///
/// Runs are idempotent per (function, event id) for `idempotencyWindow`: an event delivered
/// twice (stream redelivery, relay republish) starts nothing new. A run and its first work
/// item commit together (outbox), then the item is published; the work relay heals a crash in
/// between. Once a batch is handled its events are marked routed, so a rebuilt stream carries
/// only the events no router finished.
public final class EventRouter: Service {
    let source: any StreamSource
    let catalog: FunctionCatalog
    let store: any RunStore
    let eventLog: any EventLog
    let work: any WorkQueue
    let timers: any TimerIndex
    let events: any EventSink
    let matcher: PauseMatcher
    let clock: any WallClock
    let logger: Logger
    let planner: RunPlanner
    let effects: AdmissionEffects
    let stamper = EventStamper()
    let metrics: RunMetrics
    let batchSize = 256
    /// Open pauses read at once.
    let pausePageSize: Int

    public init(
        source: any StreamSource, catalog: FunctionCatalog, store: any RunStore, eventLog: any EventLog, work: any WorkQueue,
        timers: any TimerIndex, events: any EventSink, clock: any WallClock, idempotencyWindow: TimeInterval = 86_400,
        pausePageSize: Int = 1_000, metrics: RunMetrics = RunMetrics(), logger: Logger
    ) {
        self.metrics = metrics
        self.pausePageSize = pausePageSize
        self.timers = timers
        self.events = events
        self.eventLog = eventLog
        let matcher = PauseMatcher(store: store, events: events, eventLog: eventLog, work: work, clock: clock, metrics: metrics, logger: logger)
        self.matcher = matcher
        self.planner = RunPlanner(idempotencyWindow: idempotencyWindow)
        self.effects = AdmissionEffects(store: store, work: work, index: timers, events: events, matcher: matcher)
        self.source = source
        self.catalog = catalog
        self.store = store
        self.work = work
        self.clock = clock
        self.logger = logger
    }

    public func run() async throws {
        await repeatUntilShutdown(logger: logger, failure: "routing events failed; they will be delivered again") {
            let deliveries = try await cancelWhenGracefulShutdown { try await self.source.read(maximum: self.batchSize) }
            if deliveries.isEmpty { return }
            try await route(deliveries)
            try await source.acknowledge(deliveries.map(\.entryID))
        }
    }

    /// Starts the runs `deliveries` call for, resumes and cancels the runs they match,
    /// publishes the resulting work, and marks the events routed.
    public func route(_ deliveries: [StreamDelivery]) async throws {
        try await catalog.refresh()
        let now = clock.now
        var arrivals: [Arrival] = []
        // The invokes among them, by run id: a skipped one is answered at once.
        var invokes: [ULID: Invoke] = [:]
        var resumed: [WorkItem] = []
        var routed: [ULID] = []
        // The batch's events by name, in order, to match against open pauses once the loop
        // has read them all.
        var byName: [String: [(event: JSONValue, id: ULID)]] = [:]
        var names: [String] = []
        for delivery in deliveries {
            guard let idText = delivery.fields["id"].map({ String(decoding: $0, as: UTF8.self) }), let eventID = ULID(idText),
                let name = delivery.fields["name"].map({ String(decoding: $0, as: UTF8.self) }),
                let eventBytes = delivery.fields["event"], let payload = try? JSONValue(parsing: eventBytes)
            else {
                logger.error("skipping an events entry that is not an event", metadata: ["entry": "\(delivery.entryID)"])
                continue
            }
            routed.append(eventID)
            var event = payload
            if event["id"]?.stringValue?.isEmpty != false { event.setValue(.string(idText), forKey: "id") }
            if let ts = delivery.fields["ts"].flatMap({ Int64(String(decoding: $0, as: UTF8.self)) }),
                Double(ts) / 1_000 > now.timeIntervalSince1970 + PauseMatcher.futureTolerance
            {
                let due = Date(timeIntervalSince1970: Double(ts) / 1_000)
                try await store.delayEvent(eventID, until: due, now: now)
                try? await timers.schedule([(id: "event:" + eventID.description, due: due)])
                continue
            }
            if name == Invocation.invokedEventName {
                if let (arrival, invoke) = try await invokedRun(event, eventID: eventID, now: now) {
                    arrivals.append(arrival)
                    invokes[arrival.run.id] = invoke
                }
            } else {
                arrivals += try await triggeredRuns(event, name: name, eventID: eventID, now: now)
            }
            if byName[name] == nil { names.append(name) }
            byName[name, default: []].append((event, eventID))
        }
        for name in names { resumed += try await matchPauses(byName[name] ?? [], name: name, now: now) }
        let cancelling = metrics.counting(RunCancellation.emitter(now: now, stamper: stamper), now: now)
        let admitted = try await store.admit(arrivals, now: now, cancelling: cancelling.emit)
        metrics.admitted(arrivals, admitted, now: now)
        cancelling.report()
        try await effects.apply(admitted, now: now, more: resumed)
        try await answerSkippedInvokes(arrivals, admitted.outcomes, invokes, now: now)
        try await eventLog.markRouted(routed)
    }

    /// Matches events named `name`, in order, against the open pauses for that name, read in
    /// pages of `pausePageSize` so that no number of waiting runs is loaded at once. Each pause
    /// takes the first of these events that matches it. A pause consumed meanwhile is refused
    /// by the store (each is consumed once), so a page read a moment ago is safe to use; a pause
    /// stored after its page was read looks back for these events itself. Returns the resumes.
    func matchPauses(_ events: [(event: JSONValue, id: ULID)], name: String, now: Date) async throws -> [WorkItem] {
        var resumed: [WorkItem] = []
        var after: String?
        while true {
            let page = try await store.openPauses(eventName: name, now: now, after: after, limit: pausePageSize)
            for (event, id) in events {
                resumed += try await matcher.route(event, eventID: id, against: page, now: now)
            }
            guard page.count == pausePageSize, let last = page.last else { return resumed }
            after = last.id
        }
    }

    func triggeredRuns(_ event: JSONValue, name: String, eventID: ULID, now: Date) async throws -> [Arrival] {
        let dedupeKey = event["id"]?.stringValue ?? eventID.description
        let activation = ExpressionActivation(event: event, nowMilliseconds: now.unixMilliseconds)
        var arrivals: [Arrival] = []
        var started: Set<UUID> = []
        for candidate in try await catalog.candidates(for: name) where !started.contains(candidate.function.id) {
            if let expression = candidate.expression {
                do {
                    guard try expression.evaluateBool(activation) else { continue }
                } catch {
                    logger.notice(
                        "trigger expression failed; the event does not start the function",
                        metadata: ["function": "\(candidate.function.slug)", "event": "\(eventID)", "error": "\(error)"])
                    continue
                }
            }
            started.insert(candidate.function.id)
            arrivals.append(planner.arrival(candidate.function, event: event, eventID: eventID, key: "event:" + dedupeKey, now: now))
        }
        return arrivals
    }

    /// An `inngest/function.invoked` event: the caller's trigger, the function it names and
    /// the correlation id its pause waits on.
    struct Invoke {
        var event: JSONValue
        var slug: String
        var correlation: String
    }

    /// An invoke whose run was skipped (rate limited, idempotent, singleton) would leave its
    /// caller waiting until its timeout: it is told at once, through a `function.finished` with
    /// an error, as when the function does not exist.
    func answerSkippedInvokes(_ arrivals: [Arrival], _ outcomes: [Admission], _ invokes: [ULID: Invoke], now: Date) async throws {
        for (arrival, outcome) in zip(arrivals, outcomes) {
            guard case .skipped(let reason, _) = outcome, let invoke = invokes[arrival.run.id] else { continue }
            let why = reason == .rateLimited ? "rate limited" : "skipped (\(reason.rawValue))"
            try await failInvoke(invoke, message: "invoked function is \(why)", id: invoke.correlation + ".skipped", now: now)
        }
    }

    /// Ends an invoke's wait with `message` as its error, in an event with its own `id` (so
    /// that a redelivery sends it once).
    func failInvoke(_ invoke: Invoke, message: String, id: String, now: Date) async throws {
        try await events.emit([Event(
            name: SystemEvents.finished,
            data: ["function_id": .string(invoke.slug), "correlation_id": .string(invoke.correlation), "event": invoke.event,
                   "error": ["name": "Error", "message": .string(message), "error": .string("Error: \(message)")]],
            id: id, ts: now.unixMilliseconds)])
    }

    /// The run an `inngest/function.invoked` event asks for, with the invoke; when the
    /// function does not exist, the caller is told through a `function.finished` with an error.
    func invokedRun(_ event: JSONValue, eventID: ULID, now: Date) async throws -> (Arrival, Invoke)? {
        let routing = event["data"]?["_inngest"]
        guard let slug = routing?["fn_id"]?.stringValue else { return nil }
        let invoke = Invoke(event: event, slug: slug, correlation: routing?["correlation_id"]?.stringValue ?? eventID.description)
        guard let function = try await catalog.function(slug: slug) else {
            try await failInvoke(invoke, message: "could not find function with ID: \(slug)", id: invoke.correlation + ".missing", now: now)
            return nil
        }
        return (planner.arrival(function, event: event, eventID: eventID, key: "invoke:" + invoke.correlation, now: now), invoke)
    }
}
