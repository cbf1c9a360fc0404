public import CairnCore
public import CairnEngine
public import Foundation
public import Logging
public import PostgresNIO

/// `RunStore` on Postgres: tables `runs`, `run_idempotency`, `steps`, `timers`, `pauses`,
/// `outbox`, `function_versions`, `transport_epoch` and `run_history` (failed attempts).
///
/// Every write under a lease is conditioned on `runs.fencing_token` with the run's row locked
/// (an `UPDATE` of the row, or `FOR SHARE` when only a step is inserted), so a takeover and a
/// stale holder's write serialize and the stale write changes nothing. Lease expiry is judged
/// by the database's clock. A step is one autocommitted statement (the hot path: one commit per
/// step); a run's end is one statement too.
public struct PostgresRunStore: RunStore {
    let client: BoundedPostgresClient
    let logger: Logger
    /// The outbox stream name work items are filed under.
    static let workStream = "work"

    /// Queries `database`'s pool; every call fails after its deadline (`BoundedPostgresClient`).
    public init(database: CairnPostgresDatabase, logger: Logger) {
        self.client = database.bounded
        self.logger = logger
    }

    // MARK: RunLog

    public func createRuns(_ runs: [NewRun], now: Date) async throws -> [ULID] {
        if runs.isEmpty { return [] }
        return try await client.withTransaction(logger: logger) { connection in
            var created: [ULID] = []
            for run in runs where try await claim(run, now: now, connection: connection) {
                guard try await insertRun(run, now: now, connection: connection) else {
                    throw PostgresRunStoreError(detail: "run \(run.id) holds a singleton key another run holds; admit it instead")
                }
                created.append(run.id)
            }
            return created
        }
    }

    /// Claims `run`'s (function, idempotency key) for it, unless a live claim holds it.
    func claim(_ run: NewRun, now: Date, connection: PostgresConnection) async throws -> Bool {
        let claimed = try await connection.query("""
            INSERT INTO run_idempotency (function_id, key, run_id, expires_at)
            VALUES (\(run.functionID), \(run.idempotencyKey), \(run.id.description), \(run.idempotentUntil))
            ON CONFLICT (function_id, key) DO UPDATE
                SET run_id = EXCLUDED.run_id, expires_at = EXCLUDED.expires_at
                WHERE run_idempotency.expires_at <= \(now)
            RETURNING run_id
            """, logger: logger)
        return try await claimed.hasRows()
    }

    /// Inserts `run` queued, with its pauses, its start timeout and its start item in the
    /// outbox (in a timer, when it may not start yet). False, with nothing written, when
    /// another unfinished run holds its singleton key. (Its claim points at it; the foreign key
    /// is checked at commit.)
    func insertRun(_ run: NewRun, now: Date, connection: PostgresConnection) async throws -> Bool {
        let eventIDs = run.eventIDs.map(\.description)
        if !run.records.isEmpty {
            // A record only: published and routed as it is written (before the run, which refers to it), so that neither the relay
            // nor a rebuilt stream ever delivers it.
            try await insertEvents(run.records, connection: connection)
            try await connection.query("""
                UPDATE events SET published_at = \(now), routed_at = \(now) WHERE id = ANY(\(run.records.map(\.id.description)))
                """, logger: logger)
        }
        let inserted = try await connection.query("""
            INSERT INTO runs (id, function_id, function_version, event_id, event_ids, status, singleton_key, batch_id, original_run_id,
                              bulk_id, created_at, updated_at)
            VALUES (\(run.id.description), \(run.functionID), \(run.functionVersion), \(eventIDs.first),
                    \(eventIDs), 'Queued', \(run.singletonKey), \(run.batchID), \(run.originalRunID?.description), \(run.bulkID),
                    \(now), \(now))
            ON CONFLICT (function_id, singleton_key) WHERE singleton_key IS NOT NULL AND status IN ('Queued', 'Running') DO NOTHING
            RETURNING 1
            """, logger: logger)
        guard try await inserted.hasRows() else { return false }
        for step in run.memoized {
            try await connection.query("""
                INSERT INTO steps (run_id, step_id, position, name, op, result, attempts, recorded_at, queued_at, started_at)
                VALUES (\(run.id.description), \(step.stepID), \(Int32(step.position)), \(step.name), \(step.op), \(step.result)::json,
                        \(Int32(step.attempts)), \(now), \(step.queuedAt), \(step.startedAt))
                """, logger: logger)
        }
        for pause in run.pauses { try await insertPause(pause, timeoutTimer: nil, now: now, connection: connection) }
        if let due = run.startTimeout { try await insertTimeout(run.id, which: "start", due: due, now: now, connection: connection) }
        let item = WorkItem(runID: run.id, reason: .start, call: .discovery)
        if let notBefore = run.notBefore, notBefore > now {
            try await insertTimer(item, due: notBefore, now: now, connection: connection)
        } else {
            try await insertOutbox([item], connection: connection)
        }
        return true
    }

    public func lease(_ item: WorkItem, owner: String, duration: Duration) async throws -> LeaseOutcome {
        let seconds = duration.timeInterval
        let run = item.runID.description
        while true {
            let rows = try await client.query("""
                UPDATE runs SET fencing_token = fencing_token + 1, lease_owner = \(owner),
                    lease_expires_at = clock_timestamp() + make_interval(secs => \(seconds)),
                    status = 'Running', started_at = coalesce(started_at, clock_timestamp()), updated_at = clock_timestamp()
                WHERE id = \(run) AND status IN ('Queued', 'Running')
                  AND (lease_expires_at IS NULL OR lease_expires_at <= clock_timestamp() OR lease_owner = \(owner))
                  AND EXISTS (SELECT 1 FROM outbox WHERE stream = \(Self.workStream) AND entry_id = \(item.entryID))
                RETURNING fencing_token
                """, logger: logger)
            for try await token in rows.decode(Int64.self) {
                return .granted(RunLease(runID: item.runID, token: token, owner: owner, item: item.entryID))
            }
            // Not granted: say why.
            let state = try await client.query("""
                SELECT status IN ('Queued', 'Running'),
                       EXISTS (SELECT 1 FROM outbox WHERE stream = \(Self.workStream) AND entry_id = \(item.entryID)),
                       coalesce(lease_expires_at > clock_timestamp() AND lease_owner <> \(owner), false)
                FROM runs WHERE id = \(run)
                """, logger: logger)
            var found: (Bool, Bool, Bool)?
            for try await row in state.decode((Bool, Bool, Bool).self) { found = row }
            guard let (unfinished, live, busy) = found, unfinished else { return .ended }
            if !live { return .stale }
            if busy { return .busy }
            // The lease lapsed between the two statements: ask again.
        }
    }

    public func isLive(_ item: WorkItem) async throws -> Bool {
        let rows = try await client.query("""
            SELECT 1 FROM runs WHERE id = \(item.runID.description) AND status IN ('Queued', 'Running')
              AND EXISTS (SELECT 1 FROM outbox WHERE stream = \(Self.workStream) AND entry_id = \(item.entryID))
            """, logger: logger)
        return try await rows.hasRows()
    }

    public func renew(_ lease: RunLease, duration: Duration) async throws -> Bool {
        let rows = try await client.query("""
            UPDATE runs SET lease_expires_at = clock_timestamp() + make_interval(secs => \(duration.timeInterval))
            WHERE id = \(lease.runID.description) AND fencing_token = \(lease.token) AND lease_owner = \(lease.owner)
              AND status IN ('Queued', 'Running')
            RETURNING 1
            """, logger: logger)
        return try await rows.hasRows()
    }

    /// The run, its events and its recorded steps in one round trip: the events and steps come
    /// back as JSON arrays built by Postgres (`json` columns are embedded verbatim, so each
    /// step's size is its stored text's).
    public func snapshot(_ runID: ULID) async throws -> RunSnapshot {
        let rows = try await client.query("""
            SELECT r.function_id, v.config::text, r.event_ids, r.pending_steps, r.force_step_plan,
                   (SELECT coalesce(json_agg(json_build_array(e.id, e.ts, e.payload)), '[]')::text
                    FROM events e WHERE e.id = ANY(r.event_ids)),
                   (SELECT coalesce(json_agg(json_build_array(s.step_id, s.result, s.attempts, coalesce(octet_length(s.result::text), 4))
                                              ORDER BY s.position), '[]')::text
                    FROM steps s WHERE s.run_id = r.id)
            FROM runs r JOIN function_versions v ON v.function_id = r.function_id AND v.version = r.function_version
            WHERE r.id = \(runID.description)
            """, logger: logger)
        var found: (UUID, String, [String], [String], Bool, String, String)?
        for try await row in rows.decode((UUID, String, [String], [String], Bool, String, String).self) { found = row }
        guard let (functionID, configText, eventIDs, pendingSteps, forceStepPlan, eventsText, stepsText) = found else {
            throw PostgresRunStoreError(detail: "run \(runID) does not exist")
        }
        let function = try FunctionConfig(parsing: try JSONValue(parsing: configText))

        var eventsByID: [String: JSONValue] = [:]
        for row in try JSONValue(parsing: eventsText).arrayValue ?? [] {
            guard let id = row[0]?.stringValue, let ts = row[1]?.int64Value, let payload = row[2] else { continue }
            eventsByID[id] = Self.sdkEvent(id: id, ts: ts, payload: payload)
        }
        let events = eventIDs.compactMap { eventsByID[$0] }

        var steps: [String: JSONValue] = [:]
        var stack: [String] = []
        var attempts: [String: Int] = [:]
        var stateBytes = 0
        for row in try JSONValue(parsing: stepsText).arrayValue ?? [] {
            guard let stepID = row[0]?.stringValue, let count = row[2]?.int64Value, let bytes = row[3]?.int64Value else { continue }
            stateBytes += Int(bytes)
            steps[stepID] = row[1] ?? .null
            stack.append(stepID)
            attempts[stepID] = Int(count)
        }
        var snapshot = RunSnapshot(runID: runID, function: function, functionID: functionID, events: events, steps: steps, stack: stack, attempts: attempts)
        snapshot.pendingSteps = pendingSteps
        snapshot.forceStepPlan = forceStepPlan
        snapshot.stateBytes = stateBytes
        return snapshot
    }

    /// The events with internal ids `ids`, in that order, as SDKs receive them.
    func loadEvents(_ ids: [String], connection: PostgresConnection? = nil) async throws -> [JSONValue] {
        var eventsByID: [String: JSONValue] = [:]
        let query: PostgresQuery = "SELECT id, ts, payload::text FROM events WHERE id = ANY(\(ids))"
        let rows: PostgresRowSequence
        if let connection { rows = try await connection.query(query, logger: logger) } else { rows = try await client.query(query, logger: logger) }
        for try await (id, ts, payload) in rows.decode((String, Int64, String).self) {
            eventsByID[id] = Self.sdkEvent(id: id, ts: ts, payload: try JSONValue(parsing: payload))
        }
        return ids.compactMap { eventsByID[$0] }
    }

    /// An event as SDKs receive it: `id` is the sender's id or the internal one, `ts` is set and
    /// `user` is `{}` when missing.
    static func sdkEvent(id: String, ts: Int64, payload: JSONValue) -> JSONValue {
        var event = payload
        if event["id"]?.stringValue?.isEmpty != false { event.setValue(.string(id), forKey: "id") }
        event.setValue(.number(JSONNumber(ts)), forKey: "ts")
        if event["data"] == nil || event["data"] == .null { event.setValue(.object([:]), forKey: "data") }
        if event["user"] == nil || event["user"] == .null { event.setValue(.object([:]), forKey: "user") }
        return event
    }

    public func recordStep(_ lease: RunLease, _ step: StepRecord, now: Date) async throws -> RecordOutcome {
        // The hot path: one prepared statement (parsed and planned once per connection),
        // committed on its own.
        let inserted = try await client.execute(
            RecordStep(
                runID: lease.runID.description, token: lease.token, stepID: step.stepID, position: Int32(step.position), name: step.name,
                op: step.op, result: step.result, attempts: Int32(max(1, step.attempts)), recordedAt: now, queuedAt: step.queuedAt,
                startedAt: step.startedAt),
            logger: logger)
        if !inserted.isEmpty { return .recorded }
        // Nothing written: the lease is gone, the step was already recorded, or the log does
        // not hold the steps this writer counted on.
        let state = try await client.query("""
            SELECT EXISTS (SELECT 1 FROM steps WHERE run_id = \(lease.runID.description) AND step_id = \(step.stepID))
            FROM runs WHERE id = \(lease.runID.description) AND fencing_token = \(lease.token) AND status = 'Running'
            """, logger: logger)
        for try await recorded in state.decode(Bool.self) { return recorded ? .alreadyRecorded : .stepsChanged }
        return .leaseLost
    }

    public func clearPending(_ lease: RunLease) async throws -> Bool {
        let rows = try await client.query("""
            UPDATE runs SET pending_steps = '{}', force_step_plan = false
            WHERE id = \(lease.runID.description) AND fencing_token = \(lease.token) AND status = 'Running' RETURNING 1
            """, logger: logger)
        return try await rows.hasRows()
    }

    public func release(_ lease: RunLease, now: Date) async throws -> Bool {
        try await client.withTransaction(logger: logger) { connection in
            try await release(lease, now: now, connection: connection)
        }
    }

    public func releaseGroup(_ lease: RunLease, steps: Int, now: Date) async throws -> ReleaseOutcome {
        let released = try await client.withTransaction(logger: logger) { connection in
            try await release(lease, steps: steps, now: now, connection: connection)
        }
        if released { return .released }
        let state = try await client.query("""
            SELECT 1 FROM runs WHERE id = \(lease.runID.description) AND fencing_token = \(lease.token) AND status = 'Running'
            """, logger: logger)
        return try await state.hasRows() ? .stepsChanged : .leaseLost
    }

    /// Gives the lease up and retires its item (with `steps`, only while the run's log holds
    /// that many); false when the lease was lost (or the log holds another count).
    private func release(
        _ lease: RunLease, pendingSteps: [String]? = nil, steps: Int? = nil, now: Date, connection: PostgresConnection
    ) async throws -> Bool {
        let released = try await connection.query("""
            UPDATE runs SET lease_owner = NULL, lease_expires_at = NULL, updated_at = \(now),
                pending_steps = coalesce(\(pendingSteps), pending_steps),
                force_step_plan = force_step_plan OR \(pendingSteps != nil)
            WHERE id = \(lease.runID.description) AND fencing_token = \(lease.token) AND status = 'Running'
              AND (\(steps.map(Int64.init))::int8 IS NULL OR (SELECT count(*) FROM steps WHERE run_id = \(lease.runID.description)) = \(steps.map(Int64.init)))
            RETURNING 1
            """, logger: logger)
        guard try await released.hasRows() else { return false }
        try await connection.query(
            "DELETE FROM outbox WHERE stream = \(Self.workStream) AND entry_id = \(lease.item)", logger: logger)
        return true
    }

    public func finish(
        _ lease: RunLease, _ end: RunEnd, steps: Int, failedAttempts: [RunRecord.FailedAttempt], emitting events: [AcceptedEvent], now: Date
    ) async throws -> FinishOutcome {
        var columns = EventColumns()
        for event in events { columns.append(event) }
        let statement = FinishRun(
            runID: lease.runID.description, token: lease.token, steps: Int32(steps), end: end, events: columns,
            failed: FailedAttemptColumns(failedAttempts), now: now)
        // In a transaction: its COMMIT answers only once committed, and the executor
        // acknowledges the work item right after.
        let outcome: FinishOutcome? = try await client.withTransaction(logger: logger) { connection in
            for try await count in try await connection.execute(statement, logger: logger) where count > 0 { return .finished }
            return nil
        }
        if let outcome { return outcome }
        let state = try await client.query("""
            SELECT 1 FROM runs WHERE id = \(lease.runID.description) AND fencing_token = \(lease.token) AND status = 'Running'
            """, logger: logger)
        return try await state.hasRows() ? .stepsChanged : .leaseLost
    }

    public func cancel(_ runID: ULID, now: Date, emitting: @escaping @Sendable (CancelledRun) -> [AcceptedEvent]) async throws -> [AcceptedEvent]? {
        try await client.withTransaction(logger: logger) { connection in
            try await cancel(runID, now: now, emitting: emitting, connection: connection)
        }
    }

    /// `cancel` within the caller's transaction.
    func cancel(
        _ runID: ULID, now: Date, emitting: @Sendable (CancelledRun) -> [AcceptedEvent], connection: PostgresConnection
    ) async throws -> [AcceptedEvent]? {
        let rows = try await connection.query("""
            UPDATE runs SET status = 'Cancelled', ended_at = \(now), updated_at = \(now), fencing_token = fencing_token + 1,
                lease_owner = NULL, lease_expires_at = NULL
            WHERE id = \(runID.description) AND status IN ('Queued', 'Running')
            RETURNING (SELECT slug FROM functions WHERE functions.id = runs.function_id), event_ids
            """, logger: logger)
        var found: (String, [String])?
        for try await row in rows.decode((String, [String]).self) { found = row }
        guard let (slug, eventIDs) = found else { return nil }
        try await retireEverything(of: runID, reason: "cancelled", now: now, connection: connection)
        let run = CancelledRun(runID: runID, functionSlug: slug, events: try await loadEvents(eventIDs, connection: connection))
        let events = emitting(run)
        try await insertEvents(events, connection: connection)
        return events
    }

    public func park(_ lease: RunLease, _ parking: Parking, now: Date) async throws -> Bool {
        try await client.withTransaction(logger: logger) { connection in
            guard try await release(lease, pendingSteps: parking.pendingSteps, now: now, connection: connection) else { return false }
            for (item, due) in parking.timers { try await insertTimer(item, due: due, now: now, connection: connection) }
            for (pause, timeout) in parking.pauses {
                try await insertPause(pause, timeoutTimer: timeout.entryID, now: now, connection: connection)
                try await insertTimer(timeout, due: pause.expiresAt, now: now, connection: connection)
            }
            try await insertEvents(parking.events, connection: connection)
            if !parking.failedAttempts.isEmpty {
                let statement = InsertFailedAttempts(runID: lease.runID.description, failed: FailedAttemptColumns(parking.failedAttempts))
                for try await _ in try await connection.execute(statement, logger: logger) {}
            }
            return true
        }
    }

    /// Consumes the run's open pauses, disarms its timers and deletes its work items: it has
    /// ended.
    /// Consumes the run's open pauses, disarms its timers and deletes its work items, waiting
    /// in line or not.
    func retireEverything(of runID: ULID, reason: String, now: Date, connection: PostgresConnection) async throws {
        let run = runID.description
        try await connection.query(
            "UPDATE pauses SET consumed_at = \(now), consumed_by = \(reason) WHERE run_id = \(run) AND consumed_at IS NULL",
            logger: logger)
        try await connection.query("UPDATE timers SET fired_at = \(now) WHERE run_id = \(run) AND fired_at IS NULL", logger: logger)
        try await connection.query("DELETE FROM outbox WHERE run_id = \(run)", logger: logger)
        try await connection.query("DELETE FROM concurrency_backlog WHERE run_id = \(run)", logger: logger)
    }

    // MARK: TimerStore

    public func fireDueTimers(now: Date, limit: Int) async throws -> [WorkItem] {
        try await client.withTransaction(logger: logger) { connection in
            let rows = try await connection.query("""
                UPDATE timers SET fired_at = \(now)
                WHERE id IN (
                    SELECT id FROM timers WHERE fired_at IS NULL AND due_at <= \(now) AND kind NOT IN ('event', 'timeout')
                    ORDER BY due_at LIMIT \(limit) FOR UPDATE SKIP LOCKED
                )
                RETURNING payload::text
                """, logger: logger)
            var items: [WorkItem] = []
            for try await payload in rows.decode(String.self) {
                guard let item = WorkItem(json: try JSONValue(parsing: payload)) else {
                    throw PostgresRunStoreError(detail: "a timer holds a payload that is not a work item: \(payload)")
                }
                items.append(item)
            }
            try await insertOutbox(items, connection: connection)
            return items
        }
    }

    public func unfiredTimers(after: String?, limit: Int) async throws -> [(id: String, due: Date)] {
        let rows = try await client.query("""
            SELECT id, due_at FROM timers WHERE fired_at IS NULL AND id > \(after ?? "") ORDER BY id LIMIT \(limit)
            """, logger: logger)
        var timers: [(id: String, due: Date)] = []
        for try await (id, due) in rows.decode((String, Date).self) { timers.append((id, due)) }
        return timers
    }

    /// Inserts a timer for `item`; throws when its id is taken, so that a timer that was not
    /// inserted never counts as scheduled (the transaction rolls back).
    func insertTimer(_ item: WorkItem, due: Date, now: Date, connection: PostgresConnection) async throws {
        let inserted = try await connection.query("""
            INSERT INTO timers (id, kind, run_id, due_at, payload, created_at)
            VALUES (\(item.entryID), \(item.reason.rawValue), \(item.runID.description), \(due), \(item.json.jsonString)::json, \(now))
            ON CONFLICT (id) DO NOTHING
            RETURNING 1
            """, logger: logger)
        guard try await inserted.hasRows() else { throw PostgresRunStoreError(detail: "timer \(item.entryID) already exists") }
    }

    // MARK: PauseStore

    public func openPauses(eventName: String, now: Date, after: String?, limit: Int) async throws -> [Pause] {
        try await selectPauses("""
            SELECT run_id, step_id, kind, event_name, expression, trigger_event::text, events_after, expires_at FROM pauses
            WHERE event_name = \(eventName) AND consumed_at IS NULL AND id > \(after ?? "") AND expires_at > \(now)
            ORDER BY id LIMIT \(limit)
            """)
    }

    public func pausesToLookBack(createdBefore: Date, limit: Int) async throws -> [Pause] {
        try await selectPauses("""
            SELECT run_id, step_id, kind, event_name, expression, trigger_event::text, events_after, expires_at FROM pauses
            WHERE looked_back_at IS NULL AND consumed_at IS NULL AND created_at < \(createdBefore)
            ORDER BY created_at LIMIT \(limit)
            """)
    }

    public func markLookedBack(_ pauses: [Pause]) async throws {
        if pauses.isEmpty { return }
        let ids = pauses.map(\.id)
        try await client.query(
            "UPDATE pauses SET looked_back_at = clock_timestamp() WHERE id = ANY(\(ids)) AND looked_back_at IS NULL", logger: logger)
    }

    private func selectPauses(_ query: PostgresQuery) async throws -> [Pause] {
        let rows = try await client.query(query, logger: logger)
        var pauses: [Pause] = []
        for try await (runID, stepID, kind, eventName, expression, trigger, after, expires)
            in rows.decode((String, String, String, String, String?, String, String, Date).self)
        {
            guard let run = ULID(runID), let kind = Pause.Kind(rawValue: kind), after.isEmpty || ULID(after) != nil else {
                throw PostgresRunStoreError(detail: "pauses holds an unreadable row for run \(runID)")
            }
            pauses.append(Pause(
                runID: run, stepID: stepID, kind: kind, eventName: eventName, expression: expression,
                triggerEvent: try JSONValue(parsing: trigger), eventsAfter: ULID(after), expiresAt: expires))
        }
        return pauses
    }

    public func resume(_ pause: Pause, eventID: ULID, result: JSONValue, resume: WorkItem, now: Date) async throws -> Bool {
        try await client.withTransaction(logger: logger) { connection in
            let consumed = try await connection.query("""
                UPDATE pauses SET consumed_at = \(now), consumed_by = \(eventID.description)
                WHERE id = \(pause.id) AND consumed_at IS NULL RETURNING coalesce(timeout_timer, '')
                """, logger: logger)
            var timer: String?
            for try await id in consumed.decode(String.self) { timer = id }
            guard let timer else { return false }
            let op = pause.kind == .invoke ? "InvokeFunction" : "WaitForEvent"
            try await connection.query("""
                INSERT INTO steps (run_id, step_id, position, name, op, result, attempts, recorded_at)
                SELECT \(pause.runID.description), \(pause.stepID),
                       (SELECT coalesce(max(position), -1) + 1 FROM steps WHERE run_id = \(pause.runID.description)),
                       \(pause.eventName), \(op), \(result.jsonString)::json, 1, \(now)
                ON CONFLICT ON CONSTRAINT steps_once DO NOTHING
                """, logger: logger)
            // Disarm the timeout; if it has fired already, retire its item too, so that only
            // the resume drives the run.
            try await connection.query(
                "UPDATE timers SET fired_at = \(now) WHERE id = \(timer) AND fired_at IS NULL", logger: logger)
            try await connection.query(
                "DELETE FROM outbox WHERE stream = \(Self.workStream) AND entry_id = \(timer)", logger: logger)
            try await insertOutbox([resume], connection: connection)
            return true
        }
    }

    public func timeOutPause(
        _ lease: RunLease, stepID: String, position: Int, now: Date, timeoutStep: @escaping @Sendable (Pause.Kind) -> (op: String, result: JSONValue)
    ) async throws -> PauseTimeoutOutcome {
        try await client.withTransaction(logger: logger) { connection in
            let held = try await connection.query("""
                SELECT 1 FROM runs WHERE id = \(lease.runID.description) AND fencing_token = \(lease.token) AND status = 'Running'
                FOR UPDATE
                """, logger: logger)
            guard try await held.hasRows() else { return .leaseLost }
            let consumed = try await connection.query("""
                UPDATE pauses SET consumed_at = \(now), consumed_by = 'timeout'
                WHERE run_id = \(lease.runID.description) AND step_id = \(stepID) AND kind IN ('wait', 'invoke') AND consumed_at IS NULL
                RETURNING kind, event_name
                """, logger: logger)
            var found: (String, String)?
            for try await row in consumed.decode((String, String).self) { found = row }
            guard let (kindText, eventName) = found, let kind = Pause.Kind(rawValue: kindText) else {
                // Timed out already (this item's earlier drive died after its commit): go on
                // from the recorded step. Anything else consumed it first.
                let earlier = try await connection.query("""
                    SELECT s.position, s.name, s.op, s.result::text FROM pauses p
                    JOIN steps s ON s.run_id = p.run_id AND s.step_id = p.step_id
                    WHERE p.run_id = \(lease.runID.description) AND p.step_id = \(stepID) AND p.consumed_by = 'timeout'
                    """, logger: logger)
                for try await (position, name, op, result) in earlier.decode((Int32, String, String, String?).self) {
                    return .timedOut(StepRecord(stepID: stepID, position: Int(position), name: name, op: op, result: result ?? "null", attempts: 1))
                }
                return .alreadyMatched
            }
            let (op, result) = timeoutStep(kind)
            let step = StepRecord(stepID: stepID, position: position, name: eventName, op: op, result: result.jsonString, attempts: 1)
            try await connection.query("""
                INSERT INTO steps (run_id, step_id, position, name, op, result, attempts, recorded_at)
                VALUES (\(lease.runID.description), \(step.stepID), \(Int32(step.position)), \(step.name), \(step.op),
                        \(step.result)::json, 1, \(now))
                """, logger: logger)
            return .timedOut(step)
        }
    }

    func insertPause(_ pause: Pause, timeoutTimer: String?, now: Date, connection: PostgresConnection) async throws {
        let inserted = try await connection.query("""
            INSERT INTO pauses (id, run_id, step_id, kind, event_name, expression, expires_at, created_at, trigger_event,
                                events_after, timeout_timer, looked_back_at)
            VALUES (\(pause.id), \(pause.runID.description), \(pause.stepID), \(pause.kind.rawValue), \(pause.eventName),
                    \(pause.expression), \(pause.expiresAt), \(now), \(pause.triggerEvent.jsonString)::json,
                    \(pause.eventsAfter?.description ?? ""), \(timeoutTimer), \(pause.needsLookBack ? nil : now))
            ON CONFLICT ON CONSTRAINT pauses_once DO NOTHING
            RETURNING 1
            """, logger: logger)
        guard try await inserted.hasRows() else { throw PostgresRunStoreError(detail: "pause \(pause.id) already exists") }
    }

    // MARK: WorkOutbox

    public func unpublishedWork(createdBefore: Date, limit: Int) async throws -> [WorkItem] {
        let rows = try await client.query("""
            SELECT fields::text FROM outbox
            WHERE stream = \(Self.workStream) AND published_at IS NULL AND created_at < \(createdBefore)
            ORDER BY seq LIMIT \(limit)
            """, logger: logger)
        return try await Self.workItems(rows)
    }

    public func markWorkPublished(_ items: [WorkItem], now: Date) async throws {
        if items.isEmpty { return }
        let ids = items.map(\.entryID)
        try await client.query(
            "UPDATE outbox SET published_at = \(now) WHERE stream = \(Self.workStream) AND entry_id = ANY(\(ids))", logger: logger)
    }

    public func liveWork(after: Int64?, limit: Int) async throws -> (items: [WorkItem], cursor: Int64?) {
        let rows = try await client.query("""
            SELECT seq, fields::text FROM outbox WHERE stream = \(Self.workStream) AND seq > \(after ?? 0) ORDER BY seq LIMIT \(limit)
            """, logger: logger)
        var items: [WorkItem] = []
        var last: Int64?
        var count = 0
        for try await (seq, fields) in rows.decode((Int64, String).self) {
            count += 1
            last = seq
            if let item = WorkItem(json: try JSONValue(parsing: fields)) { items.append(item) }
        }
        return (items, count < limit ? nil : last)
    }

    public func recoverStranded(limit: Int) async throws -> [WorkItem] {
        let rows = try await client.query("""
            INSERT INTO outbox (stream, entry_id, run_id, fields)
            SELECT \(Self.workStream), r.id || ':recover:step:0:' || r.fencing_token, r.id,
                   json_build_object('run', r.id, 'reason', 'recover', 'step', 'step', 'attempt', 0, 'gen', r.fencing_token)
            FROM runs r
            WHERE r.status IN ('Queued', 'Running')
              AND (r.lease_expires_at IS NULL OR r.lease_expires_at <= clock_timestamp())
              AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.run_id = r.id)
              AND NOT EXISTS (SELECT 1 FROM timers t WHERE t.run_id = r.id AND t.fired_at IS NULL AND t.kind <> 'timeout')
              AND NOT EXISTS (SELECT 1 FROM pauses p WHERE p.run_id = r.id AND p.consumed_at IS NULL AND p.kind <> 'cancel')
            ORDER BY r.id
            LIMIT \(limit)
            ON CONFLICT ON CONSTRAINT outbox_entry_once DO NOTHING
            RETURNING fields::text
            """, logger: logger)
        return try await Self.workItems(rows)
    }

    /// The work items of rows holding an outbox row's `fields` as text.
    static func workItems(_ rows: PostgresRowSequence) async throws -> [WorkItem] {
        var items: [WorkItem] = []
        for try await fields in rows.decode(String.self) {
            if let item = WorkItem(json: try JSONValue(parsing: fields)) { items.append(item) }
        }
        return items
    }

    public func delayEvent(_ eventID: ULID, until: Date, now: Date) async throws {
        let payload = JSONValue.object(["event": .string(eventID.description)]).jsonString
        // In a transaction, committed before the router acknowledges the event.
        try await client.withTransaction(logger: logger) { connection in
            try await connection.query("""
                INSERT INTO timers (id, kind, due_at, payload, created_at)
                VALUES (\("event:" + eventID.description), 'event', \(until), \(payload)::json, \(now))
                ON CONFLICT (id) DO NOTHING
                """, logger: logger)
        }
    }

    public func deliverDueEvents(now: Date, limit: Int, _ deliver: @escaping @Sendable ([ULID]) async throws -> Void) async throws -> Int {
        try await client.withTransaction(logger: logger) { connection in
            let rows = try await connection.query("""
                SELECT id, payload->>'event' FROM timers WHERE fired_at IS NULL AND due_at <= \(now) AND kind = 'event'
                ORDER BY due_at LIMIT \(limit) FOR UPDATE SKIP LOCKED
                """, logger: logger)
            var timers: [String] = []
            var events: [ULID] = []
            for try await (id, event) in rows.decode((String, String).self) {
                timers.append(id)
                if let ulid = ULID(event) { events.append(ulid) }
            }
            if timers.isEmpty { return 0 }
            try await deliver(events)
            try await connection.query("UPDATE timers SET fired_at = \(now) WHERE id = ANY(\(timers))", logger: logger)
            // Routed again when they come back: until then a rebuilt stream must carry them.
            let ids = events.map(\.description)
            try await connection.query("UPDATE events SET routed_at = NULL WHERE id = ANY(\(ids))", logger: logger)
            return timers.count
        }
    }

    public func recordedTransport() async throws -> TransportIdentity? {
        let rows = try await client.query("SELECT token, server_id FROM transport_epoch", logger: logger)
        for try await (token, server) in rows.decode((String, String).self) { return TransportIdentity(token: token, serverID: server) }
        return nil
    }

    public func recordTransport(_ identity: TransportIdentity) async throws {
        try await client.query("""
            INSERT INTO transport_epoch (singleton, token, server_id, recorded_at) VALUES (true, \(identity.token ?? ""), \(identity.serverID), now())
            ON CONFLICT (singleton) DO UPDATE SET token = EXCLUDED.token, server_id = EXCLUDED.server_id, recorded_at = EXCLUDED.recorded_at
            """, logger: logger)
    }

    // MARK: Shared writes

    /// Inserts `items` into the outbox in one statement (each once).
    func insertOutbox(_ items: [WorkItem], connection: PostgresConnection) async throws {
        if items.isEmpty { return }
        try await connection.query("""
            INSERT INTO outbox (stream, entry_id, run_id, fields)
            SELECT \(Self.workStream), entry, run, fields::json
            FROM unnest(\(items.map(\.entryID))::text[], \(items.map(\.runID.description))::text[], \(items.map(\.json.jsonString))::text[])
                AS t(entry, run, fields)
            ON CONFLICT ON CONSTRAINT outbox_entry_once DO NOTHING
            """, logger: logger)
    }

    /// Stores events unpublished (the relay publishes them if the caller does not), once per
    /// internal id.
    func insertEvents(_ events: [AcceptedEvent], connection: PostgresConnection) async throws {
        if events.isEmpty { return }
        var columns = EventColumns()
        for event in events { columns.append(event) }
        for try await _ in try await connection.execute(InsertEvents(columns: columns), logger: logger) {}
    }
}

/// Ends a run under its lease in one statement, if its log holds the steps the writer counted
/// on: status and result, lease, work items, timers and pauses retired, system events stored.
/// Returns the number of runs ended (0 or 1).
struct FinishRun: PostgresPreparedStatement {
    static let sql = """
        WITH ended AS (
            UPDATE runs SET status = $3, output = $4::json, error = $5::json, ended_at = $6, updated_at = $6,
                lease_owner = NULL, lease_expires_at = NULL
            WHERE id = $1 AND fencing_token = $2 AND status = 'Running'
              AND (SELECT count(*) FROM steps WHERE run_id = $1) = $13
            RETURNING id
        ), work AS (
            DELETE FROM outbox WHERE run_id IN (SELECT id FROM ended) RETURNING 1
        ), disarmed AS (
            UPDATE timers SET fired_at = $6 WHERE run_id IN (SELECT id FROM ended) AND fired_at IS NULL RETURNING 1
        ), consumed AS (
            UPDATE pauses SET consumed_at = $6, consumed_by = 'ended' WHERE run_id IN (SELECT id FROM ended) AND consumed_at IS NULL
            RETURNING 1
        ), emitted AS (
            \(EventColumns.insert(from: 7, when: "EXISTS (SELECT 1 FROM ended)"))
        ), failed AS (
            \(FailedAttemptColumns.insert(runID: 1, from: 14, when: "EXISTS (SELECT 1 FROM ended)"))
        )
        SELECT count(*)::int8 FROM ended
        """
    typealias Row = Int64

    var runID: String
    var token: Int64
    var steps: Int32
    var end: RunEnd
    var events: EventColumns
    var failed: FailedAttemptColumns
    var now: Date

    func makeBindings() throws -> PostgresBindings {
        var status = "Completed"
        var output: String?
        var error: String?
        switch end {
        case .completed(let value): output = value.jsonString
        case .failed(let failure):
            status = "Failed"
            error = failure.body.jsonString
        case .cancelled: status = "Cancelled"
        }
        var bindings = PostgresBindings(capacity: 17)
        bindings.append(runID)
        bindings.append(token)
        bindings.append(status)
        bindings.append(output)
        bindings.append(error)
        bindings.append(now)
        events.bind(to: &bindings)
        bindings.append(steps)
        failed.bind(to: &bindings)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Int64 {
        try row.decode(Int64.self)
    }
}

/// Admits a run with no flow control beyond its idempotency claim in one statement: the
/// claim, the events that came with it (a cron tick's), the queued run and its start item in
/// the outbox, each written only if the claim was taken. Returns the number of runs started
/// (0: a live claim holds the key). Foreign keys are checked at the statement's end, after
/// every part is written.
struct StartRun: PostgresPreparedStatement {
    static let sql = """
        WITH claimed AS (
            INSERT INTO run_idempotency (function_id, key, run_id, expires_at) VALUES ($1, $2, $3, $4)
            ON CONFLICT (function_id, key) DO UPDATE
                SET run_id = EXCLUDED.run_id, expires_at = EXCLUDED.expires_at
                WHERE run_idempotency.expires_at <= $5
            RETURNING run_id
        ), stored AS (
            \(EventColumns.insert(from: 11, when: "EXISTS (SELECT 1 FROM claimed)"))
        ), started AS (
            INSERT INTO runs (id, function_id, function_version, event_id, event_ids, status, batch_id, created_at, updated_at)
            SELECT run_id, $1, $6, $7[1], $7, 'Queued', $8, $5, $5 FROM claimed
            RETURNING id
        ), queued AS (
            INSERT INTO outbox (stream, entry_id, run_id, fields)
            SELECT $9, $10, id, $17::json FROM started
            ON CONFLICT ON CONSTRAINT outbox_entry_once DO NOTHING
            RETURNING 1
        )
        SELECT count(*)::int8 FROM started
        """
    typealias Row = Int64

    var run: NewRun
    var stream: String
    var item: WorkItem
    var events: EventColumns
    var now: Date

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 17)
        bindings.append(run.functionID)
        bindings.append(run.idempotencyKey)
        bindings.append(run.id.description)
        bindings.append(run.idempotentUntil)
        bindings.append(now)
        bindings.append(run.functionVersion)
        bindings.append(run.eventIDs.map(\.description))
        bindings.append(run.batchID)
        bindings.append(stream)
        bindings.append(item.entryID)
        events.bind(to: &bindings)
        bindings.append(item.json.jsonString)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Int64 {
        try row.decode(Int64.self)
    }
}

/// Records one step if the lease token still holds and the log holds exactly the steps before
/// it; returns a row when it wrote one. `FOR SHARE` locks the run's row: a takeover that
/// changes the token waits for this insert to commit, or this insert waits for the takeover
/// and then finds the token changed.
struct RecordStep: PostgresPreparedStatement {
    static let sql = """
        INSERT INTO steps (run_id, step_id, position, name, op, result, attempts, recorded_at, queued_at, started_at)
        SELECT $1, $3, $4, $5, $6, $7::json, $8, $9, $10, $11
        WHERE EXISTS (SELECT 1 FROM runs WHERE id = $1 AND fencing_token = $2 AND status = 'Running' FOR SHARE)
          AND (SELECT count(*) FROM steps WHERE run_id = $1) = $4
        ON CONFLICT ON CONSTRAINT steps_once DO NOTHING
        RETURNING 1
        """
    typealias Row = Int32

    var runID: String
    var token: Int64
    var stepID: String
    var position: Int32
    var name: String
    var op: String
    var result: String
    var attempts: Int32
    var recordedAt: Date
    var queuedAt: Date?
    var startedAt: Date?

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 11)
        bindings.append(runID)
        bindings.append(token)
        bindings.append(stepID)
        bindings.append(position)
        bindings.append(name)
        bindings.append(op)
        bindings.append(result)
        bindings.append(attempts)
        bindings.append(recordedAt)
        bindings.append(queuedAt)
        bindings.append(startedAt)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Int32 {
        try row.decode(Int32.self)
    }
}

/// Failed attempts as the columns of `run_history` rows (kind `attempt_failed`), bound as four
/// arrays so that any number of them is one statement.
struct FailedAttemptColumns: Sendable {
    /// Step ids; '' for none (a step id is never empty).
    var stepIDs: [String] = []
    var attempts: [Int32] = []
    /// `{"error", "queued_at", "started_at"}`, the times RFC 3339 with milliseconds or null.
    var details: [String] = []
    var endedAt: [Date] = []

    init(_ failed: [RunRecord.FailedAttempt]) {
        for attempt in failed {
            stepIDs.append(attempt.stepID ?? "")
            attempts.append(Int32(attempt.attempt))
            details.append(Self.detail(attempt).jsonString)
            endedAt.append(attempt.endedAt)
        }
    }

    static func detail(_ attempt: RunRecord.FailedAttempt) -> JSONValue {
        func time(_ date: Date?) -> JSONValue { date.map { .string(RFC3339.format(milliseconds: $0.unixMilliseconds)) } ?? .null }
        return .object(JSONObject(members: [("error", attempt.error), ("queued_at", time(attempt.queuedAt)), ("started_at", time(attempt.startedAt))]))
    }

    /// Reads a row back; nil for a detail that is not of `detail`'s form.
    static func attempt(stepID: String?, attempt: Int32?, detail: String?, at: Date) -> RunRecord.FailedAttempt? {
        guard let detail, let value = try? JSONValue(parsing: detail) else { return nil }
        func time(_ name: String) -> Date? {
            value[name]?.stringValue.flatMap(RFC3339.parseMilliseconds).map(Date.init(unixMilliseconds:))
        }
        return RunRecord.FailedAttempt(
            stepID: stepID, attempt: Int(attempt ?? 0), queuedAt: time("queued_at"), startedAt: time("started_at"), endedAt: at,
            error: value["error"] ?? .null)
    }

    /// The insert of the attempts bound from parameter `$first` on (see `bind`) for the run
    /// `$runID`, in their order, only `when` that condition holds.
    static func insert(runID: Int, from first: Int, when condition: String? = nil) -> String {
        let arrays = zip(first..<(first + 4), ["text", "int4", "text", "timestamptz"]).map { "$\($0)::\($1)[]" }
        return """
            INSERT INTO run_history (run_id, kind, step_id, attempt, detail, at)
            SELECT $\(runID), 'attempt_failed', NULLIF(step_id, ''), attempt, detail::json, at
            FROM unnest(\(arrays.joined(separator: ", "))) WITH ORDINALITY AS t(step_id, attempt, detail, at, n)
            \(condition.map { "WHERE \($0)" } ?? "")
            ORDER BY n
            RETURNING 1
            """
    }

    /// Appends the four arrays, in the order `unnest` reads them.
    func bind(to bindings: inout PostgresBindings) {
        bindings.append(stepIDs)
        bindings.append(attempts)
        bindings.append(details)
        bindings.append(endedAt)
    }
}

/// Stores a park's failed attempts in the run's history, within the park's transaction.
struct InsertFailedAttempts: PostgresPreparedStatement {
    static let sql = FailedAttemptColumns.insert(runID: 1, from: 2)
    typealias Row = Int32

    var runID: String
    var failed: FailedAttemptColumns

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 5)
        bindings.append(runID)
        failed.bind(to: &bindings)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Int32 {
        try row.decode(Int32.self)
    }
}

/// Stored data the run store cannot read.
public struct PostgresRunStoreError: Error, CustomStringConvertible {
    public var detail: String
    public var description: String { "run store: \(detail)" }
}

extension PostgresRunStore: RunQueries {
    public func run(_ id: ULID) async throws -> RunRecord? {
        let rows = try await client.query("""
            SELECT \(unescaped: Self.runColumns)
            FROM runs r JOIN functions f ON f.id = r.function_id WHERE r.id = \(id.description)
            """, logger: logger)
        guard var run = try await Self.decodeRuns(rows).first else { return nil }
        let steps = try await client.query("""
            SELECT step_id, name, op, result::text, attempts, recorded_at, queued_at, started_at FROM steps
            WHERE run_id = \(id.description) ORDER BY position
            """, logger: logger)
        for try await (stepID, name, op, result, attempts, recordedAt, queuedAt, startedAt)
            in steps.decode((String, String, String, String?, Int32, Date, Date?, Date?).self)
        {
            run.steps.append(RunRecord.Step(
                id: stepID, name: name, op: op, result: try result.map { try JSONValue(parsing: $0) } ?? .null,
                attempts: Int(attempts), recordedAt: recordedAt, queuedAt: queuedAt, startedAt: startedAt))
        }
        let failed = try await client.query("""
            SELECT step_id, attempt, detail::text, at FROM run_history
            WHERE run_id = \(id.description) AND kind = 'attempt_failed' ORDER BY seq
            """, logger: logger)
        for try await (stepID, attempt, detail, at) in failed.decode((String?, Int32?, String?, Date).self) {
            guard let attempt = FailedAttemptColumns.attempt(stepID: stepID, attempt: attempt, detail: detail, at: at) else {
                throw PostgresRunStoreError(detail: "run_history holds an unreadable attempt of run \(id)")
            }
            run.failedAttempts.append(attempt)
        }
        let waits = try await client.query("""
            SELECT kind, step_id, event_name, expires_at FROM pauses
            WHERE run_id = \(id.description) AND consumed_at IS NULL AND kind <> 'cancel'
            UNION ALL
            SELECT CASE kind WHEN 'wake' THEN 'sleep' ELSE kind END, payload->>'step', NULL, due_at FROM timers
            WHERE run_id = \(id.description) AND fired_at IS NULL AND kind IN ('wake', 'retry')
            ORDER BY 4
            """, logger: logger)
        for try await (kind, stepID, event, until) in waits.decode((String, String, String?, Date).self) {
            run.waitingFor.append(RunRecord.Waiting(kind: kind, stepID: stepID, event: event, until: until))
        }
        return run
    }

    public func runs(eventID: ULID) async throws -> [RunRecord] {
        let rows = try await client.query("""
            SELECT \(unescaped: Self.runColumns)
            FROM runs r JOIN functions f ON f.id = r.function_id
            WHERE r.event_id = \(eventID.description)
               OR r.id IN (SELECT b.run_id FROM batch_events e JOIN batches b ON b.id = e.batch_id WHERE e.event_id = \(eventID.description))
            ORDER BY r.id
            """, logger: logger)
        return try await Self.decodeRuns(rows)
    }

    public func runs(triggeredBy eventIDs: [ULID]) async throws -> [RunRecord] {
        guard !eventIDs.isEmpty else { return [] }
        let rows = try await client.query("""
            SELECT \(unescaped: Self.runColumns)
            FROM runs r JOIN functions f ON f.id = r.function_id
            WHERE r.event_id = ANY(\(eventIDs.map(\.description)))
            ORDER BY r.id
            """, logger: logger)
        return try await Self.decodeRuns(rows)
    }

    public func runs(_ filter: RunFilter, after: ULID?, ascending: Bool, limit: Int) async throws -> [RunRecord] {
        try await containing(filter) { payloads in
            let rows = try await client.query(
                Self.filtered(Self.runColumns, filter, after: after, order: ascending ? "ORDER BY r.id ASC" : "ORDER BY r.id DESC", limit: limit, payloads: payloads),
                logger: logger)
            return try await Self.decodeRuns(rows)
        }
    }

    public func count(_ filter: RunFilter) async throws -> Int {
        try await containing(filter) { payloads in
            // Without the functions join, which only names the rows.
            let rows = try await client.query(
                Self.filtered("count(*)", filter, after: nil, order: "", limit: nil, named: false, payloads: payloads), logger: logger)
            for try await count in rows.decode(Int64.self) { return Int(count) }
            return 0
        }
    }

    /// How a query compares payloads with a filter's `eventContains` and `outputContains`.
    struct PayloadMatch {
        /// Compare only payloads that jsonb can hold; let the others through.
        var guarded = false
        /// The ids of every event whose payload contains `eventContains`, when there are at most
        /// `containedEventLimit`; nil to test the events in the query itself.
        var eventIDs: [String]?
    }

    /// How many events matching `eventContains` are looked up before the runs: runs of that
    /// few events are read through `runs_event`; with more, the query walks the runs in id
    /// order and probes a hashed set of the matching events (as it does for a filter that
    /// matches most runs, where it stops after a page).
    static let containedEventLimit = 1_000

    /// Runs `body` with the way to compare payloads for `filter`.
    ///
    /// `json` → `jsonb` fails on a NUL character (`\u0000`) or a number beyond `numeric`'s
    /// range, which `json` columns accept. On such a failure (a data exception, class 22) the
    /// query is run again guarded: a payload whose text might hold one counts as matching.
    /// Payloads are then tested twice as slowly (a regular expression first).
    func containing<T>(_ filter: RunFilter, _ body: (PayloadMatch) async throws -> T) async throws -> T {
        if filter.eventContains == nil && filter.outputContains == nil { return try await body(PayloadMatch()) }
        do {
            return try await body(PayloadMatch(eventIDs: try await containedEvents(filter, guarded: false)))
        } catch let error as PSQLError where error.serverInfo?[.sqlState]?.hasPrefix("22") == true {
            logger.debug("comparing payloads failed; comparing those jsonb can hold", metadata: ["error": "\(String(reflecting: error))"])
            return try await body(PayloadMatch(guarded: true, eventIDs: try await containedEvents(filter, guarded: true)))
        }
    }

    /// The ids of the events whose payload contains `filter.eventContains`, when there are at
    /// most `containedEventLimit`; nil otherwise (or without that filter).
    func containedEvents(_ filter: RunFilter, guarded: Bool) async throws -> [String]? {
        guard let json = filter.eventContains?.jsonString else { return nil }
        let rows = try await client.query("""
            SELECT e.id FROM events e
            WHERE \(unescaped: Self.containment("e.payload", guarded: guarded)) \(json)::jsonb \(unescaped: guarded ? "END" : "")
            LIMIT \(Int64(Self.containedEventLimit + 1))
            """, logger: logger)
        var ids: [String] = []
        for try await id in rows.decode(String.self) { ids.append(id) }
        return ids.count > Self.containedEventLimit ? nil : ids
    }

    /// The start of a test that the `json` column `column` contains the jsonb that follows it
    /// (and then `END` when `guarded`).
    ///
    /// Guarded, a payload whose text holds `\u0000`, an exponent of five digits or more, or a
    /// run of 255 digits (in a text longer than the 6,385 digits a number beyond `numeric`'s
    /// range needs without such an exponent) is let through uncompared.
    static func containment(_ column: String, guarded: Bool) -> String {
        guard guarded else { return "\(column)::jsonb @>" }
        let text = "\(column)::text"
        return """
            CASE WHEN strpos(\(text), '\\u0000') > 0 OR \(text) ~ '[eE][-+]?[0-9]{5}'
                      OR (octet_length(\(text)) > 6000 AND \(text) ~ '[0-9]{255}') THEN true
                 ELSE \(column)::jsonb @>
            """
    }

    /// `SELECT select` over the runs `filter` matches (after the id `after`, in the direction
    /// `order` names); `named` joins each run's function as `f`. Both the function index and the
    /// id order serve it, and `runs_event` a filter on a few events (`payloads`).
    ///
    /// With `eventContains` but not the matching event ids, the events are tested in an `IN`
    /// under an `OR`, which keeps it a hashed subplan (one pass over `events`, then a probe per
    /// run) rather than a join the planner would order by its guess of how many events match.
    static func filtered(
        _ select: String, _ filter: RunFilter, after: ULID?, order: String, limit: Int?, named: Bool = true, payloads: PayloadMatch = PayloadMatch()
    ) -> PostgresQuery {
        let testedEvents = payloads.eventIDs == nil ? filter.eventContains?.jsonString : nil
        let end = payloads.guarded ? "END" : ""
        return """
            SELECT \(unescaped: select)
            FROM runs r \(unescaped: named ? "JOIN functions f ON f.id = r.function_id" : "")
            WHERE (\(filter.functionID)::uuid IS NULL OR r.function_id = \(filter.functionID))
              AND (cardinality(\(filter.statuses)::text[]) = 0 OR r.status = ANY(\(filter.statuses)))
              AND (\(filter.createdFrom)::timestamptz IS NULL OR r.created_at >= \(filter.createdFrom))
              AND (\(filter.createdUntil)::timestamptz IS NULL OR r.created_at < \(filter.createdUntil))
              AND (\(filter.skipReason)::text IS NULL OR r.skip_reason = \(filter.skipReason))
              AND (\(filter.bulkID)::text IS NULL OR r.bulk_id = \(filter.bulkID))
              AND (\(payloads.eventIDs)::text[] IS NULL OR r.event_id = ANY(\(payloads.eventIDs)))
              AND (\(testedEvents)::jsonb IS NULL OR r.event_id IN (
                    SELECT e.id FROM events e
                    WHERE \(unescaped: containment("e.payload", guarded: payloads.guarded)) \(testedEvents)::jsonb \(unescaped: end)))
              AND (\(filter.outputContains?.jsonString)::jsonb IS NULL
                   OR \(unescaped: containment("r.output", guarded: payloads.guarded)) \(filter.outputContains?.jsonString)::jsonb \(unescaped: end))
              AND (\(after?.description)::text IS NULL OR r.id \(unescaped: order.hasSuffix("ASC") ? ">" : "<") \(after?.description))
            \(unescaped: order)
            LIMIT \(limit.map(Int64.init))
            """
    }

    static let runColumns = """
        r.id, r.function_id, f.slug, r.function_version, r.event_ids, r.status, r.output::text, r.error::text,
        r.created_at, r.started_at, r.ended_at, r.skip_reason, r.skip_run_id, r.batch_id, r.original_run_id, r.bulk_id
        """

    private static func decodeRuns(_ rows: PostgresRowSequence) async throws -> [RunRecord] {
        var runs: [RunRecord] = []
        for try await (id, functionID, slug, version, eventIDs, status, output, error, createdAt, startedAt, endedAt, skipReason, skipRunID, batchID, original, bulk)
            in rows.decode((String, UUID, String, Int32, [String], String, String?, String?, Date, Date?, Date?, String?, String?, String?, String?, String?).self)
        {
            guard let runID = ULID(id) else { throw PostgresRunStoreError(detail: "runs holds a malformed id \(id)") }
            let events = eventIDs.compactMap(ULID.init)
            var run = RunRecord(
                id: runID, functionID: functionID, functionSlug: slug, functionVersion: Int(version),
                eventID: events.first, status: status, output: try output.map { try JSONValue(parsing: $0) },
                error: try error.map { try JSONValue(parsing: $0) }, createdAt: createdAt, startedAt: startedAt,
                endedAt: endedAt, steps: [], skipReason: skipReason, skipRunID: skipRunID.flatMap(ULID.init), batchID: batchID)
            run.eventIDs = events
            run.originalRunID = original.flatMap(ULID.init)
            run.bulkID = bulk
            runs.append(run)
        }
        return runs
    }
}
