public import CairnCore
public import CairnEngine
public import Foundation
public import Logging
public import PostgresNIO

/// `RunStore` on Postgres: tables `runs`, `run_idempotency`, `steps`, `timers`, `outbox`
/// (migration 0001).
///
/// Every write under a lease is one statement conditioned on `runs.fencing_token`, so a stale
/// executor changes nothing; a step is one autocommitted `INSERT … ON CONFLICT DO NOTHING`
/// (the hot path: one commit per step).
public struct PostgresRunStore: RunStore {
    let client: PostgresClient
    let logger: Logger
    /// The outbox stream name work items are filed under.
    static let workStream = "work"

    public init(client: PostgresClient, logger: Logger) {
        self.client = client
        self.logger = logger
    }

    public func createRuns(_ runs: [NewRun], now: Date) async throws -> [ULID] {
        if runs.isEmpty { return [] }
        return try await client.withTransaction(logger: logger) { connection in
            var created: [ULID] = []
            for run in runs {
                let claimed = try await connection.query("""
                    INSERT INTO run_idempotency (function_id, key, run_id, expires_at)
                    VALUES (\(run.functionID), \(run.idempotencyKey), \(run.id.description), \(run.idempotentUntil))
                    ON CONFLICT (function_id, key) DO UPDATE
                        SET run_id = EXCLUDED.run_id, expires_at = EXCLUDED.expires_at
                        WHERE run_idempotency.expires_at <= \(now)
                    RETURNING run_id
                    """, logger: logger)
                guard try await claimed.hasRows() else { continue }
                // The idempotency row points at the run; the foreign key is checked at commit.
                let eventIDs = run.eventIDs.map(\.description)
                try await connection.query("""
                    INSERT INTO runs (id, function_id, function_version, event_id, event_ids, status, created_at, updated_at)
                    VALUES (\(run.id.description), \(run.functionID), \(run.functionVersion), \(eventIDs.first),
                            \(eventIDs), 'Queued', \(now), \(now))
                    """, logger: logger)
                for pause in run.pauses { try await insertPause(pause, timeoutTimer: nil, now: now, connection: connection) }
                let item = WorkItem(runID: run.id, reason: .start, call: .discovery)
                try await insertOutbox(item, connection: connection)
                created.append(run.id)
            }
            return created
        }
    }

    public func lease(_ runID: ULID, owner: String, until: Date, now: Date) async throws -> LeaseOutcome {
        let rows = try await client.query("""
            UPDATE runs SET fencing_token = fencing_token + 1, lease_owner = \(owner), lease_expires_at = \(until),
                status = 'Running', started_at = coalesce(started_at, \(now)), updated_at = \(now)
            WHERE id = \(runID.description) AND status IN ('Queued', 'Running')
              AND (lease_expires_at IS NULL OR lease_expires_at <= \(now) OR lease_owner = \(owner))
            RETURNING fencing_token
            """, logger: logger)
        for try await token in rows.decode(Int64.self) { return .granted(RunLease(runID: runID, token: token, owner: owner)) }
        let status = try await client.query("SELECT status FROM runs WHERE id = \(runID.description)", logger: logger)
        for try await text in status.decode(String.self) where text == "Queued" || text == "Running" { return .busy }
        return .ended
    }

    public func snapshot(_ runID: ULID) async throws -> RunSnapshot {
        let runRows = try await client.query("""
            SELECT r.function_id, f.config::text, r.event_ids, r.pending_steps, r.force_step_plan
            FROM runs r JOIN functions f ON f.id = r.function_id WHERE r.id = \(runID.description)
            """, logger: logger)
        var found: (UUID, String, [String], [String], Bool)?
        for try await row in runRows.decode((UUID, String, [String], [String], Bool).self) { found = row }
        guard let (functionID, configText, eventIDs, pendingSteps, forceStepPlan) = found else {
            throw PostgresRunStoreError(detail: "run \(runID) does not exist")
        }
        let function = try FunctionConfig(parsing: try JSONValue(parsing: configText))

        let events = try await loadEvents(eventIDs)

        var steps: [String: JSONValue] = [:]
        var stack: [String] = []
        var attempts: [String: Int] = [:]
        let stepRows = try await client.query(
            "SELECT step_id, result::text, attempts FROM steps WHERE run_id = \(runID.description) ORDER BY position",
            logger: logger)
        var stateBytes = 0
        for try await (stepID, result, count) in stepRows.decode((String, String?, Int32).self) {
            stateBytes += result?.utf8.count ?? 4
            steps[stepID] = try result.map { try JSONValue(parsing: $0) } ?? .null
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
    func loadEvents(_ ids: [String]) async throws -> [JSONValue] {
        var eventsByID: [String: JSONValue] = [:]
        let rows = try await client.query("SELECT id, ts, payload::text FROM events WHERE id = ANY(\(ids))", logger: logger)
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

    public func renew(_ lease: RunLease, until: Date) async throws -> Bool {
        let rows = try await client.query("""
            UPDATE runs SET lease_expires_at = \(until)
            WHERE id = \(lease.runID.description) AND fencing_token = \(lease.token) RETURNING 1
            """, logger: logger)
        return try await rows.hasRows()
    }

    public func recordStep(
        _ lease: RunLease, stepID: String, position: Int, name: String, op: String, result: String, attempts: Int, now: Date
    ) async throws -> Bool {
        // The hot path: one prepared statement (parsed and planned once per connection),
        // committed on its own.
        let inserted = try await client.execute(
            RecordStep(
                runID: lease.runID.description, token: lease.token, stepID: stepID, position: Int32(position), name: name, op: op,
                result: result, attempts: Int32(max(1, attempts)), recordedAt: now),
            logger: logger)
        for try await _ in inserted { return true }
        // Nothing written: either the lease is gone, or the step was already recorded.
        let held = try await client.query(
            "SELECT 1 FROM runs WHERE id = \(lease.runID.description) AND fencing_token = \(lease.token)", logger: logger)
        guard try await held.hasRows() else { return false }
        logger.debug("step already recorded; keeping the first result", metadata: ["run": "\(lease.runID)", "step": "\(stepID)"])
        return true
    }

    public func park(_ lease: RunLease, until: Date, item: WorkItem, now: Date) async throws -> Bool {
        try await client.withTransaction(logger: logger) { connection in
            guard try await release(lease, now: now, connection: connection) else { return false }
            try await insertTimer(item, due: until, now: now, connection: connection)
            return true
        }
    }

    public func park(_ lease: RunLease, retries: [(WorkItem, Date)], pendingSteps: [String], now: Date) async throws -> Bool {
        try await client.withTransaction(logger: logger) { connection in
            let updated = try await connection.query("""
                UPDATE runs SET pending_steps = \(pendingSteps), force_step_plan = true
                WHERE id = \(lease.runID.description) AND fencing_token = \(lease.token) RETURNING 1
                """, logger: logger)
            guard try await updated.hasRows(), try await release(lease, now: now, connection: connection) else { return false }
            for (item, due) in retries { try await insertTimer(item, due: due, now: now, connection: connection) }
            return true
        }
    }

    public func clearPending(_ lease: RunLease) async throws -> Bool {
        let rows = try await client.query("""
            UPDATE runs SET pending_steps = '{}', force_step_plan = false
            WHERE id = \(lease.runID.description) AND fencing_token = \(lease.token) RETURNING 1
            """, logger: logger)
        return try await rows.hasRows()
    }

    public func park(_ lease: RunLease, pause: Pause, timeout: WorkItem, now: Date) async throws -> Bool {
        try await client.withTransaction(logger: logger) { connection in
            guard try await release(lease, now: now, connection: connection) else { return false }
            try await insertPause(pause, timeoutTimer: timeout.entryID, now: now, connection: connection)
            try await insertTimer(timeout, due: pause.expiresAt, now: now, connection: connection)
            return true
        }
    }

    public func openPauses(eventName: String, now: Date) async throws -> [Pause] {
        let rows = try await client.query("""
            SELECT run_id, step_id, kind, expression, trigger_event::text, events_after, expires_at FROM pauses
            WHERE event_name = \(eventName) AND consumed_at IS NULL AND expires_at > \(now)
            """, logger: logger)
        var pauses: [Pause] = []
        for try await (runID, stepID, kind, expression, trigger, after, expires) in rows.decode((String, String, String, String?, String, String, Date).self) {
            guard let run = ULID(runID), let kind = Pause.Kind(rawValue: kind), let after = ULID(after) else {
                throw PostgresRunStoreError(detail: "pauses holds an unreadable row for run \(runID)")
            }
            pauses.append(Pause(
                runID: run, stepID: stepID, kind: kind, eventName: eventName, expression: expression,
                triggerEvent: try JSONValue(parsing: trigger), eventsAfter: after, expiresAt: expires))
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
            try await connection.query(
                "UPDATE timers SET fired_at = \(now) WHERE id = \(timer) AND fired_at IS NULL", logger: logger)
            try await insertOutbox(resume, connection: connection)
            return true
        }
    }

    public func expirePause(runID: ULID, stepID: String, now: Date) async throws -> Pause.Kind? {
        let rows = try await client.query("""
            UPDATE pauses SET consumed_at = \(now), consumed_by = 'timeout'
            WHERE run_id = \(runID.description) AND step_id = \(stepID) AND kind IN ('wait', 'invoke') AND consumed_at IS NULL
            RETURNING kind
            """, logger: logger)
        for try await kind in rows.decode(String.self) { return Pause.Kind(rawValue: kind) }
        return nil
    }

    public func cancel(_ runID: ULID, now: Date) async throws -> CancelledRun? {
        let ended: (String, [String])? = try await client.withTransaction(logger: logger) { connection in
            let rows = try await connection.query("""
                UPDATE runs SET status = 'Cancelled', ended_at = \(now), updated_at = \(now), fencing_token = fencing_token + 1,
                    lease_owner = NULL, lease_expires_at = NULL
                WHERE id = \(runID.description) AND status IN ('Queued', 'Running')
                RETURNING (SELECT slug FROM functions WHERE functions.id = runs.function_id), event_ids
                """, logger: logger)
            var found: (String, [String])?
            for try await row in rows.decode((String, [String]).self) { found = row }
            guard found != nil else { return nil }
            try await connection.query(
                "UPDATE pauses SET consumed_at = \(now), consumed_by = 'cancelled' WHERE run_id = \(runID.description) AND consumed_at IS NULL",
                logger: logger)
            try await connection.query(
                "UPDATE timers SET fired_at = \(now) WHERE run_id = \(runID.description) AND fired_at IS NULL", logger: logger)
            return found
        }
        guard let (slug, eventIDs) = ended else { return nil }
        return CancelledRun(runID: runID, functionSlug: slug, events: try await loadEvents(eventIDs))
    }

    public func release(_ lease: RunLease, now: Date) async throws -> Bool {
        try await client.withConnection { connection in try await release(lease, now: now, connection: connection) }
    }

    private func release(_ lease: RunLease, now: Date, connection: PostgresConnection) async throws -> Bool {
        let released = try await connection.query("""
            UPDATE runs SET lease_owner = NULL, lease_expires_at = NULL, updated_at = \(now)
            WHERE id = \(lease.runID.description) AND fencing_token = \(lease.token) RETURNING 1
            """, logger: logger)
        return try await released.hasRows()
    }

    private func insertTimer(_ item: WorkItem, due: Date, now: Date, connection: PostgresConnection) async throws {
        try await connection.query("""
            INSERT INTO timers (id, kind, run_id, due_at, payload, created_at)
            VALUES (\(item.entryID), \(item.reason.rawValue), \(item.runID.description), \(due), \(item.json.jsonString)::json, \(now))
            ON CONFLICT (id) DO NOTHING
            """, logger: logger)
    }

    private func insertPause(_ pause: Pause, timeoutTimer: String?, now: Date, connection: PostgresConnection) async throws {
        try await connection.query("""
            INSERT INTO pauses (id, run_id, step_id, kind, event_name, expression, expires_at, created_at, trigger_event,
                                events_after, timeout_timer)
            VALUES (\(pause.id), \(pause.runID.description), \(pause.stepID), \(pause.kind.rawValue), \(pause.eventName),
                    \(pause.expression), \(pause.expiresAt), \(now), \(pause.triggerEvent.jsonString)::json,
                    \(pause.eventsAfter.description), \(timeoutTimer))
            ON CONFLICT ON CONSTRAINT pauses_once DO NOTHING
            """, logger: logger)
    }

    public func finish(_ lease: RunLease, _ end: RunEnd, now: Date) async throws -> Bool {
        let status: String
        var output: String?
        var error: String?
        switch end {
        case .completed(let value):
            status = "Completed"
            output = value.jsonString
        case .failed(let value):
            status = "Failed"
            error = value.jsonString
        case .cancelled:
            status = "Cancelled"
        }
        let rows = try await client.query("""
            UPDATE runs SET status = \(status), output = \(output)::json, error = \(error)::json, ended_at = \(now),
                updated_at = \(now), lease_owner = NULL, lease_expires_at = NULL
            WHERE id = \(lease.runID.description) AND fencing_token = \(lease.token) AND status IN ('Queued', 'Running')
            RETURNING 1
            """, logger: logger)
        return try await rows.hasRows()
    }

    public func fireDueTimers(now: Date, limit: Int) async throws -> [WorkItem] {
        try await client.withTransaction(logger: logger) { connection in
            let rows = try await connection.query("""
                UPDATE timers SET fired_at = \(now)
                WHERE id IN (
                    SELECT id FROM timers WHERE fired_at IS NULL AND due_at <= \(now) AND kind <> 'event'
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
            for item in items { try await insertOutbox(item, connection: connection) }
            return items
        }
    }

    public func delayEvent(_ eventID: ULID, until: Date, now: Date) async throws {
        let payload = JSONValue.object(["event": .string(eventID.description)]).jsonString
        try await client.query("""
            INSERT INTO timers (id, kind, due_at, payload, created_at)
            VALUES (\("event:" + eventID.description), 'event', \(until), \(payload)::json, \(now))
            ON CONFLICT (id) DO NOTHING
            """, logger: logger)
    }

    public func deliverDueEvents(now: Date, limit: Int, _ deliver: @Sendable ([ULID]) async throws -> Void) async throws -> Int {
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
            return timers.count
        }
    }

    public func pendingWork(createdBefore: Date, limit: Int) async throws -> [WorkItem] {
        let rows = try await client.query("""
            SELECT fields::text FROM outbox WHERE stream = \(Self.workStream) AND created_at < \(createdBefore)
            ORDER BY seq LIMIT \(limit)
            """, logger: logger)
        var items: [WorkItem] = []
        for try await fields in rows.decode(String.self) {
            if let item = WorkItem(json: try JSONValue(parsing: fields)) { items.append(item) }
        }
        return items
    }

    public func markWorkPublished(_ items: [WorkItem]) async throws {
        if items.isEmpty { return }
        let ids = items.map(\.entryID)
        try await client.query(
            "DELETE FROM outbox WHERE stream = \(Self.workStream) AND entry_id = ANY(\(ids))", logger: logger)
    }

    private func insertOutbox(_ item: WorkItem, connection: PostgresConnection) async throws {
        try await connection.query("""
            INSERT INTO outbox (stream, entry_id, fields) VALUES (\(Self.workStream), \(item.entryID), \(item.json.jsonString)::json)
            ON CONFLICT ON CONSTRAINT outbox_entry_once DO NOTHING
            """, logger: logger)
    }
}

/// Records one step if the lease token still holds; returns a row when it wrote one.
struct RecordStep: PostgresPreparedStatement {
    static let sql = """
        INSERT INTO steps (run_id, step_id, position, name, op, result, attempts, recorded_at)
        SELECT $1, $3, $4, $5, $6, $7::json, $8, $9
        WHERE EXISTS (SELECT 1 FROM runs WHERE id = $1 AND fencing_token = $2)
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

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 9)
        bindings.append(runID)
        bindings.append(token)
        bindings.append(stepID)
        bindings.append(position)
        bindings.append(name)
        bindings.append(op)
        bindings.append(result)
        bindings.append(attempts)
        bindings.append(recordedAt)
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
            SELECT r.id, r.function_id, f.slug, r.function_version, r.event_id, r.status, r.output::text, r.error::text,
                   r.created_at, r.started_at, r.ended_at
            FROM runs r JOIN functions f ON f.id = r.function_id WHERE r.id = \(id.description)
            """, logger: logger)
        guard var run = try await Self.decodeRuns(rows).first else { return nil }
        let steps = try await client.query("""
            SELECT step_id, name, op, result::text, attempts, recorded_at FROM steps
            WHERE run_id = \(id.description) ORDER BY position
            """, logger: logger)
        for try await (stepID, name, op, result, attempts, recordedAt) in steps.decode((String, String, String, String?, Int32, Date).self) {
            run.steps.append(RunRecord.Step(
                id: stepID, name: name, op: op, result: try result.map { try JSONValue(parsing: $0) } ?? .null,
                attempts: Int(attempts), recordedAt: recordedAt))
        }
        return run
    }

    public func runs(eventID: ULID) async throws -> [RunRecord] {
        let rows = try await client.query("""
            SELECT r.id, r.function_id, f.slug, r.function_version, r.event_id, r.status, r.output::text, r.error::text,
                   r.created_at, r.started_at, r.ended_at
            FROM runs r JOIN functions f ON f.id = r.function_id WHERE r.event_id = \(eventID.description) ORDER BY r.id
            """, logger: logger)
        return try await Self.decodeRuns(rows)
    }

    private static func decodeRuns(_ rows: PostgresRowSequence) async throws -> [RunRecord] {
        var runs: [RunRecord] = []
        for try await (id, functionID, slug, version, eventID, status, output, error, createdAt, startedAt, endedAt)
            in rows.decode((String, UUID, String, Int32, String?, String, String?, String?, Date, Date?, Date?).self)
        {
            guard let runID = ULID(id) else { throw PostgresRunStoreError(detail: "runs holds a malformed id \(id)") }
            runs.append(RunRecord(
                id: runID, functionID: functionID, functionSlug: slug, functionVersion: Int(version),
                eventID: eventID.flatMap(ULID.init), status: status, output: try output.map { try JSONValue(parsing: $0) },
                error: try error.map { try JSONValue(parsing: $0) }, createdAt: createdAt, startedAt: startedAt,
                endedAt: endedAt, steps: []))
        }
        return runs
    }
}
