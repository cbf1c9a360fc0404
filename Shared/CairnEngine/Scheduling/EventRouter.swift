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
    /// How long an event blocks a second run of the same function: 24 h.
    let idempotencyWindow: TimeInterval
    let batchSize = 256
    /// Open pauses read at once.
    let pausePageSize: Int
    private let runIDs = Mutex(ULIDGenerator())

    public init(
        source: any StreamSource, catalog: FunctionCatalog, store: any RunStore, eventLog: any EventLog, work: any WorkQueue,
        timers: any TimerIndex, events: any EventSink, clock: any WallClock, idempotencyWindow: TimeInterval = 86_400,
        pausePageSize: Int = 1_000, logger: Logger
    ) {
        self.pausePageSize = pausePageSize
        self.timers = timers
        self.events = events
        self.eventLog = eventLog
        self.matcher = PauseMatcher(store: store, events: events, eventLog: eventLog, work: work, clock: clock, logger: logger)
        self.idempotencyWindow = idempotencyWindow
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
        var runs: [NewRun] = []
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
                runs += try await invokedRuns(event, eventID: eventID, now: now)
            } else {
                runs += try await triggeredRuns(event, name: name, eventID: eventID, now: now)
            }
            if byName[name] == nil { names.append(name) }
            byName[name, default: []].append((event, eventID))
        }
        for name in names { resumed += try await matchPauses(byName[name] ?? [], name: name, now: now) }
        let created = Set(try await store.createRuns(runs, now: now))
        let items = runs.filter { created.contains($0.id) }.map { WorkItem(runID: $0.id, reason: .start, call: .discovery) } + resumed
        try await store.publish(items, on: work, now: now)
        // A cancelOn event routed while these runs were being created was matched against no
        // pause of theirs.
        try await matcher.lookBack(runs.filter { created.contains($0.id) }.flatMap(\.pauses))
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

    func triggeredRuns(_ event: JSONValue, name: String, eventID: ULID, now: Date) async throws -> [NewRun] {
        let dedupeKey = event["id"]?.stringValue ?? eventID.description
        let activation = ExpressionActivation(event: event, nowMilliseconds: now.unixMilliseconds)
        var runs: [NewRun] = []
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
            runs.append(newRun(candidate.function, event: event, eventID: eventID, key: "event:" + dedupeKey, now: now))
        }
        return runs
    }

    /// The run an `inngest/function.invoked` event asks for; when the function does not
    /// exist, the caller is told through a `function.finished` with an error.
    func invokedRuns(_ event: JSONValue, eventID: ULID, now: Date) async throws -> [NewRun] {
        let routing = event["data"]?["_inngest"]
        guard let slug = routing?["fn_id"]?.stringValue else { return [] }
        let correlation = routing?["correlation_id"]?.stringValue ?? eventID.description
        guard let function = try await catalog.function(slug: slug) else {
            let message = "could not find function with ID: \(slug)"
            try await events.emit([Event(
                name: SystemEvents.finished,
                data: ["function_id": .string(slug), "correlation_id": .string(correlation), "event": event,
                       "error": ["name": "Error", "message": .string(message), "error": .string("Error: \(message)")]],
                id: correlation + ".missing", ts: now.unixMilliseconds)])
            return []
        }
        return [newRun(function, event: event, eventID: eventID, key: "invoke:" + correlation, now: now)]
    }

    func newRun(_ function: FunctionRecord, event: JSONValue, eventID: ULID, key: String, now: Date) -> NewRun {
        let runID = runIDs.withLock { $0.next(now: now) }
        var run = NewRun(
            id: runID, functionID: function.id, functionVersion: function.version, eventIDs: [eventID], idempotencyKey: key,
            idempotentUntil: now.addingTimeInterval(idempotencyWindow))
        // cancelOn: only events newer than the run cancel it (docs/protocol.md §8).
        run.pauses = function.config.cancel.enumerated().map { index, cancel in
            Pause(
                runID: runID, stepID: "cancel-\(index)", kind: .cancel, eventName: cancel.event, expression: cancel.condition,
                triggerEvent: event, eventsAfter: runID,
                expiresAt: now.addingTimeInterval(Double(cancel.timeout?.milliseconds ?? 366 * 86_400_000) / 1_000))
        }
        return run
    }
}
