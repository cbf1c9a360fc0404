public import CairnCore
public import Foundation

/// Rerunning a run (docs/operations.md): a new run of the same function, at its live version,
/// with the same events, recording the run it reruns. The same code serves the API, the CLI
/// and the dashboard.
///
/// - From a step: the steps recorded before that step are copied into the new run, memoized,
///   so the SDK skips them and runs that step and every one after it again.
/// - With edited data: the trigger event is replaced by a new event with the same name and
///   the given `data`, stored as a record only (it starts no other run).
///
/// The new run and its start item commit together; the item is then published (the work relay
/// publishes it if this process dies first). A rerun skips the function's debounce, batch,
/// rate limit and singleton: it was asked for by an operator, for one run. Concurrency limits
/// and `cancelOn` apply as to any run.
public struct RunRerun: Sendable {
    let store: any RunStore & RunQueries
    let catalog: FunctionCatalog
    let eventLog: any EventLog
    let work: any WorkQueue
    let clock: any WallClock
    let planner = RunPlanner()
    let stamper = EventStamper()

    public init(store: any RunStore & RunQueries, catalog: FunctionCatalog, eventLog: any EventLog, work: any WorkQueue, clock: any WallClock) {
        self.store = store
        self.catalog = catalog
        self.eventLog = eventLog
        self.work = work
        self.clock = clock
    }

    /// What to rerun, and how.
    public struct Request: Sendable {
        public var runID: ULID
        /// The step to start from, by its id or its name (the first step of that name); nil
        /// reruns every step.
        public var fromStep: String?
        /// The trigger event's new `data`; nil keeps the events as they were.
        public var data: JSONObject?

        public init(runID: ULID, fromStep: String? = nil, data: JSONObject? = nil) {
            self.runID = runID
            self.fromStep = fromStep
            self.data = data
        }
    }

    /// Starts the rerun; returns the new run's id.
    public func rerun(_ request: Request) async throws -> ULID {
        guard let original = try await store.run(request.runID) else {
            throw OperationRefusal(kind: .notFound, field: "id", rule: "must name an existing run, got \(request.runID)")
        }
        guard let function = try await catalog.function(id: original.functionID) else {
            throw OperationRefusal(
                kind: .conflict, field: "id",
                rule: "must name a run of a function that is still synced; \(original.functionSlug) is no longer in any app")
        }
        let now = clock.now
        var events = try await triggerEvents(original)
        var records: [AcceptedEvent] = []
        if let data = request.data {
            guard original.eventIDs.count == 1, let trigger = events.first else {
                throw OperationRefusal(kind: .invalid, field: "data", rule: "can only replace the event of a run started by one event; \(original.id) has \(original.eventIDs.count)")
            }
            let name = trigger.event["name"]?.stringValue ?? ""
            let edited = stamper.accept([Event(name: name, data: data, ts: now.unixMilliseconds)], now: now)[0]
            var payload = edited.payload
            payload.setValue(.string(edited.id.description), forKey: "id")
            let stored = AcceptedEvent(id: edited.id, name: name, dedupeKey: nil, ts: edited.ts, payload: payload, receivedAt: edited.receivedAt)
            records = [stored]
            events = [(payload, stored.id)]
        }
        var memoized: [StepRecord] = []
        if let fromStep = request.fromStep {
            guard let index = original.steps.firstIndex(where: { $0.id == fromStep }) ?? original.steps.firstIndex(where: { $0.name == fromStep }) else {
                let known = original.steps.map(\.name).joined(separator: ", ")
                throw OperationRefusal(kind: .invalid, field: "from_step", rule: "must be the id or name of a step of run \(original.id) (\(known.isEmpty ? "it recorded none" : known)), got \"\(fromStep)\"")
            }
            memoized = original.steps[..<index].enumerated().map { position, step in
                StepRecord(stepID: step.id, position: position, name: step.name, op: step.op, result: step.result.jsonString, attempts: step.attempts)
            }
        }
        let runID = planner.nextRunID(now: now)
        let created = try await start(function, events: events, key: "rerun:\(runID)", runID: runID, now: now) { run in
            run.originalRunID = original.id
            run.records = records
            run.memoized = memoized
        }
        guard created else { throw OperationRefusal(kind: .conflict, field: "id", rule: "the rerun of \(original.id) could not be created") }
        return runID
    }

    /// Replays `original` from its start for the bulk job `bulkID`, once per (job, run): false
    /// when this job has replayed it already, or when its function or events are gone.
    public func replay(_ original: RunRecord, bulkID: ULID) async throws -> Bool {
        guard let function = try await catalog.function(id: original.functionID) else { return false }
        let events: [(event: JSONValue, id: ULID)]
        do { events = try await triggerEvents(original) } catch is OperationRefusal { return false }
        let now = clock.now
        return try await start(function, events: events, key: "bulk:\(bulkID):\(original.id)", runID: planner.nextRunID(now: now), now: now) { run in
            run.originalRunID = original.id
            run.bulkID = bulkID.description
        }
    }

    /// Creates the run, claimed under `key`, with its start item, then publishes the item;
    /// false when the key was taken.
    func start(
        _ function: FunctionRecord, events: [(event: JSONValue, id: ULID)], key: String, runID: ULID, now: Date, _ configure: (inout NewRun) -> Void
    ) async throws -> Bool {
        var run = planner.newRun(function, events: events, key: key, now: now, runID: runID)
        configure(&run)
        guard try await store.createRuns([run], now: now) == [runID] else { return false }
        try? await store.publish([WorkItem(runID: runID, reason: .start, call: .discovery)], on: work, now: now)
        return true
    }

    /// The run's events with their payloads, the trigger first.
    func triggerEvents(_ run: RunRecord) async throws -> [(event: JSONValue, id: ULID)] {
        var events: [(event: JSONValue, id: ULID)] = []
        for id in run.eventIDs {
            guard let stored = try await eventLog.event(id: id) else {
                throw OperationRefusal(kind: .conflict, field: "id", rule: "must name a run whose events are still stored; event \(id) of \(run.id) is gone (retention)")
            }
            events.append((stored.payload, id))
        }
        return events
    }
}
