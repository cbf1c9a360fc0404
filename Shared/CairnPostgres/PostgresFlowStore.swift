public import CairnCore
public import CairnEngine
public import Foundation
import PostgresNIO

/// `FlowStore` on Postgres (migration 0007): `rate_limits`, `debounces`, `batches` with
/// `batch_events`, `crons`, timeout timers, and skipped runs in `runs`.
///
/// Each decision reads the state it depends on locked (`FOR UPDATE`, or a conflict on a
/// unique index), so concurrent routers and schedulers serialize on the (function, key) they
/// share and nothing else. Due debounces, batches and cron ticks are taken `FOR UPDATE SKIP
/// LOCKED`: each fires once across replicas.
extension PostgresRunStore {
    public func admit(_ arrivals: [Arrival], now: Date, cancelling: @escaping @Sendable (CancelledRun) -> [AcceptedEvent]) async throws
        -> AdmissionResult
    {
        if arrivals.isEmpty { return AdmissionResult() }
        return try await client.withTransaction(logger: logger) { connection in
            var result = AdmissionResult()
            for arrival in arrivals {
                result.outcomes.append(try await admit(arrival, now: now, cancelling: cancelling, into: &result, connection: connection))
            }
            return result
        }
    }

    func admit(
        _ arrival: Arrival, now: Date, cancelling: @Sendable (CancelledRun) -> [AcceptedEvent], into result: inout AdmissionResult,
        connection: PostgresConnection
    ) async throws -> Admission {
        if arrival.paused {
            guard try await claim(arrival.run, now: now, connection: connection) else { return .duplicate }
            try await insertEvents(arrival.events, connection: connection)
            result.events += arrival.events
            return try await skip(arrival.run, .paused, pointingAt: nil, now: now, connection: connection)
        }
        switch arrival.route {
        case .start where arrival.rateLimit == nil && arrival.throttle == nil && arrival.singleton == nil && arrival.run.singletonKey == nil
            && arrival.run.pauses.isEmpty && arrival.run.startTimeout == nil && arrival.run.notBefore == nil:
            // The common case, in one round trip.
            let item = WorkItem(runID: arrival.run.id, reason: .start, call: .discovery)
            var columns = EventColumns()
            for event in arrival.events { columns.append(event) }
            let statement = StartRun(run: arrival.run, stream: Self.workStream, item: item, events: columns, now: now)
            var started: Int64 = 0
            for try await count in try await connection.execute(statement, logger: logger) { started = count }
            guard started == 1 else { return .duplicate }
            result.events += arrival.events
            result.started.append(arrival.run)
            result.work.append(item)
            return .started(arrival.run.id)
        case .start:
            guard try await claim(arrival.run, now: now, connection: connection) else { return .duplicate }
            try await insertEvents(arrival.events, connection: connection)
            result.events += arrival.events
            if let refusal = try await rateLimited(arrival, now: now, connection: connection) {
                return try await skip(arrival.run, refusal, pointingAt: nil, now: now, connection: connection)
            }
            return try await start(arrival, now: now, cancelling: cancelling, into: &result, connection: connection)
        case .debounce(let entry):
            return try await debounce(arrival, entry, now: now, into: &result, connection: connection)
        case .batch(let entry):
            return try await batch(arrival, entry, now: now, into: &result, connection: connection)
        }
    }

    /// Starts a claimed arrival's run, unless its singleton key is held: in mode `skip` it is
    /// recorded skipped, in mode `cancel` the holder is cancelled first.
    func start(
        _ arrival: Arrival, now: Date, cancelling: @Sendable (CancelledRun) -> [AcceptedEvent], into result: inout AdmissionResult,
        connection: PostgresConnection
    ) async throws -> Admission {
        var run = arrival.run
        // The throttle's state is read locked, and moved on only if the run is created.
        var throttled: (check: ThrottleCheck, tat: Int64)?
        if let check = arrival.throttle {
            let stored = try await lockedTat(run.functionID, check.stateKey, now: now, connection: connection)
            throttled = (check, check.place(&run, tat: stored, now: now))
        }
        // A holder that ends between the look and the insert frees the key; one that appears
        // (another router's commit) is found by the next look.
        for _ in 0..<3 {
            if try await insertRun(run, now: now, connection: connection) {
                if let (check, tat) = throttled { try await storeTat(run.functionID, check.stateKey, tat, connection: connection) }
                result.started.append(run)
                result.queue(run, now: now)
                if let due = run.startTimeout { result.dues.append((timeoutID(run.id, "start"), due)) }
                return .started(run.id)
            }
            guard let singleton = arrival.singleton, let holder = try await singletonHolder(run, connection: connection) else { continue }
            switch singleton.mode {
            case .skip:
                return try await skip(run, .singleton, pointingAt: holder, now: now, connection: connection)
            case .cancel:
                result.events += try await cancel(holder, now: now, emitting: cancelling, connection: connection) ?? []
            }
        }
        throw PostgresRunStoreError(detail: "run \(run.id): its singleton key stayed held after cancelling its holders")
    }

    func singletonHolder(_ run: NewRun, connection: PostgresConnection) async throws -> ULID? {
        let rows = try await connection.query("""
            SELECT id FROM runs WHERE function_id = \(run.functionID) AND singleton_key = \(run.singletonKey)
              AND status IN ('Queued', 'Running') FOR UPDATE
            """, logger: logger)
        for try await id in rows.decode(String.self) { return ULID(id) }
        return nil
    }

    /// Records `run` as skipped for `reason` (its claim already points at it).
    func skip(_ run: NewRun, _ reason: SkipReason, pointingAt other: ULID?, now: Date, connection: PostgresConnection) async throws -> Admission {
        let eventIDs = run.eventIDs.map(\.description)
        try await connection.query("""
            INSERT INTO runs (id, function_id, function_version, event_id, event_ids, status, skip_reason, skip_run_id,
                              created_at, updated_at, ended_at)
            VALUES (\(run.id.description), \(run.functionID), \(run.functionVersion), \(eventIDs.first), \(eventIDs), 'Skipped',
                    \(reason.rawValue), \(other?.description), \(now), \(now), \(now))
            """, logger: logger)
        return .skipped(reason, run: other)
    }

    /// The reason the arrival's rate limit refuses it, or nil when it lets it through (and
    /// counts it).
    func rateLimited(_ arrival: Arrival, now: Date, connection: PostgresConnection) async throws -> SkipReason? {
        guard let check = arrival.rateLimit else { return nil }
        let function = arrival.run.functionID
        let stored = try await lockedTat(function, check.key, now: now, connection: connection)
        let decision = check.gcra.admit(tat: stored, now: now.unixMicroseconds)
        guard decision.admitted else { return check.reason }
        try await storeTat(function, check.key, decision.tat, connection: connection)
        return nil
    }

    /// The GCRA state (`tat`, in microseconds) of `function`'s `key`, locked until the
    /// transaction ends; a key never seen is created idle.
    func lockedTat(_ function: UUID, _ key: String, now: Date, connection: PostgresConnection) async throws -> Int64? {
        try await connection.query("""
            INSERT INTO rate_limits (function_id, key, tat) VALUES (\(function), \(key), \(now)) ON CONFLICT DO NOTHING
            """, logger: logger)
        let rows = try await connection.query(
            "SELECT tat FROM rate_limits WHERE function_id = \(function) AND key = \(key) FOR UPDATE", logger: logger)
        var stored: Date?
        for try await tat in rows.decode(Date.self) { stored = tat }
        return stored?.unixMicroseconds
    }

    /// Stores `key`'s new `tat`; written as an upsert, so a row that retention deleted as
    /// drained between the look and this write is put back.
    func storeTat(_ function: UUID, _ key: String, _ tat: Int64, connection: PostgresConnection) async throws {
        try await connection.query("""
            INSERT INTO rate_limits (function_id, key, tat) VALUES (\(function), \(key), \(Date(unixMicroseconds: tat)))
            ON CONFLICT (function_id, key) DO UPDATE SET tat = EXCLUDED.tat
            """, logger: logger)
    }


    // MARK: Debounce

    func debounce(_ arrival: Arrival, _ entry: DebounceEntry, now: Date, into result: inout AdmissionResult, connection: PostgresConnection)
        async throws -> Admission
    {
        let run = arrival.run
        let event = run.eventIDs[0].description
        // Handled before: its claim is held (it was replaced, or its run started), or the
        // debounce holds it now.
        let seen = try await connection.query("""
            SELECT 1 FROM run_idempotency WHERE function_id = \(run.functionID) AND key = \(run.idempotencyKey) AND expires_at > \(now)
            UNION ALL SELECT 1 FROM debounces WHERE function_id = \(run.functionID) AND event_id = \(event)
            """, logger: logger)
        if try await seen.hasRows() { return .duplicate }
        if let refusal = try await rateLimited(arrival, now: now, connection: connection) {
            guard try await claim(run, now: now, connection: connection) else { return .duplicate }
            return try await skip(run, refusal, pointingAt: nil, now: now, connection: connection)
        }
        for _ in 0..<2 {
            let rows = try await connection.query("""
                SELECT run_id, event_id, event_key, event_ts, opened_at FROM debounces
                WHERE function_id = \(run.functionID) AND key = \(entry.key) FOR UPDATE
                """, logger: logger)
            var held: (String, String, String, Int64, Date)?
            for try await row in rows.decode((String, String, String, Int64, Date).self) { held = row }
            guard let (heldRun, heldEvent, heldKey, heldTS, openedAt) = held, let into = ULID(heldRun) else {
                let due = DebounceWindow.due(openedAt: now, lastAt: now, period: entry.period, timeout: entry.timeout)
                let opened = try await connection.query("""
                    INSERT INTO debounces (function_id, key, run_id, event_id, event_key, event_ts, opened_at, due_at)
                    VALUES (\(run.functionID), \(entry.key), \(run.id.description), \(event), \(run.idempotencyKey), \(entry.eventTS), \(now), \(due))
                    ON CONFLICT DO NOTHING RETURNING 1
                    """, logger: logger)
                // Another router opened it a moment ago: join it.
                guard try await opened.hasRows() else { continue }
                result.dues.append((debounceID(run.functionID, entry.key), due))
                return .debounced(into: run.id)
            }
            if entry.eventTS < heldTS {
                // Older than the event held: it does not replace it.
                guard try await claim(run, now: now, connection: connection) else { return .duplicate }
                return try await skip(run, .debounced, pointingAt: into, now: now, connection: connection)
            }
            // The held event is replaced: it is recorded skipped, pointing at the run to come.
            var replaced = run
            replaced.id = entry.replacedRunID
            replaced.eventIDs = [ULID(heldEvent)].compactMap { $0 }
            replaced.idempotencyKey = heldKey
            replaced.pauses = []
            if try await claim(replaced, now: now, connection: connection) {
                _ = try await skip(replaced, .debounced, pointingAt: into, now: now, connection: connection)
            }
            let due = DebounceWindow.due(openedAt: openedAt, lastAt: now, period: entry.period, timeout: entry.timeout)
            try await connection.query("""
                UPDATE debounces SET event_id = \(event), event_key = \(run.idempotencyKey), event_ts = \(entry.eventTS), due_at = \(due)
                WHERE function_id = \(run.functionID) AND key = \(entry.key)
                """, logger: logger)
            result.dues.append((debounceID(run.functionID, entry.key), due))
            return .debounced(into: into)
        }
        throw PostgresRunStoreError(detail: "debounce of function \(run.functionID) could neither be opened nor found")
    }

    // MARK: Batches

    func batch(_ arrival: Arrival, _ entry: BatchEntry, now: Date, into result: inout AdmissionResult, connection: PostgresConnection)
        async throws -> Admission
    {
        let run = arrival.run
        let event = run.eventIDs[0].description
        let seen = try await connection.query(
            "SELECT 1 FROM batch_events WHERE function_id = \(run.functionID) AND event_id = \(event)", logger: logger)
        if try await seen.hasRows() { return .duplicate }
        for _ in 0..<2 {
            let rows = try await connection.query("""
                SELECT id, run_id, size, bytes FROM batches WHERE function_id = \(run.functionID) AND key = \(entry.key) AND closed_at IS NULL
                FOR UPDATE
                """, logger: logger)
            var open: (String, String, Int32, Int64)?
            for try await row in rows.decode((String, String, Int32, Int64).self) { open = row }
            guard let (batchID, batchRun, size, bytes) = open, let batchRunID = ULID(batchRun) else {
                let due = now.addingTimeInterval(Double(entry.timeout.milliseconds) / 1_000)
                let opened = try await connection.query("""
                    INSERT INTO batches (id, function_id, key, run_id, opened_at, due_at)
                    VALUES (\(entry.batchID), \(run.functionID), \(entry.key), \(run.id.description), \(now), \(due))
                    ON CONFLICT DO NOTHING RETURNING 1
                    """, logger: logger)
                if try await opened.hasRows() { result.dues.append(("batch:" + entry.batchID, due)) }
                continue
            }
            try await connection.query("""
                INSERT INTO batch_events (batch_id, function_id, event_id, position) VALUES (\(batchID), \(run.functionID), \(event), \(size))
                """, logger: logger)
            let newSize = Int(size) + 1
            let newBytes = Int(bytes) + entry.bytes
            try await connection.query(
                "UPDATE batches SET size = \(Int32(newSize)), bytes = \(Int64(newBytes)) WHERE id = \(batchID)", logger: logger)
            guard BatchWindow.isFull(size: newSize, bytes: newBytes, maxSize: entry.maxSize) else {
                return .batched(batch: batchID, started: nil)
            }
            try await closeBatch(batchID, runID: batchRunID, now: now, into: &result, connection: connection)
            return .batched(batch: batchID, started: batchRunID)
        }
        throw PostgresRunStoreError(detail: "batch of function \(run.functionID) could neither be opened nor found")
    }

    /// Closes a batch and starts its run with its events in order, on the function's live
    /// version (a batch of a function no longer live starts nothing).
    func closeBatch(_ batchID: String, runID: ULID, now: Date, into result: inout AdmissionResult, connection: PostgresConnection) async throws {
        let rows = try await connection.query("""
            UPDATE batches b SET closed_at = \(now) FROM functions f
            WHERE b.id = \(batchID) AND b.closed_at IS NULL AND f.id = b.function_id
            RETURNING b.function_id, f.version, f.archived_at IS NULL,
                (SELECT array_agg(event_id ORDER BY position) FROM batch_events WHERE batch_id = b.id), f.slug
            """, logger: logger)
        var found: (UUID, Int32, Bool, [String]?, String)?
        for try await row in rows.decode((UUID, Int32, Bool, [String]?, String).self) { found = row }
        guard let (functionID, version, live, eventIDs, slug) = found, live, let eventIDs, !eventIDs.isEmpty else { return }
        var run = NewRun(
            id: runID, functionID: functionID, functionVersion: Int(version), eventIDs: eventIDs.compactMap(ULID.init),
            idempotencyKey: "batch:" + batchID, idempotentUntil: now.addingTimeInterval(86_400))
        run.batchID = batchID
        run.functionSlug = slug
        guard try await claim(run, now: now, connection: connection), try await insertRun(run, now: now, connection: connection) else { return }
        result.started.append(run)
        result.work.append(WorkItem(runID: run.id, reason: .start, call: .discovery))
    }

    // MARK: Firing

    public func fireDue(
        now: Date, cronLead: TimeInterval, limit: Int, plan: @escaping @Sendable (Firing) async throws -> FiringPlan,
        cancelling: @escaping @Sendable (CancelledRun) -> [AcceptedEvent]
    ) async throws -> AdmissionResult {
        try await client.withTransaction(logger: logger) { connection in
            var result = AdmissionResult()
            let batches = try await connection.query("""
                SELECT id, run_id FROM batches WHERE closed_at IS NULL AND due_at <= \(now)
                ORDER BY due_at LIMIT \(limit) FOR UPDATE SKIP LOCKED
                """, logger: logger)
            var due: [(String, ULID)] = []
            for try await (id, run) in batches.decode((String, String).self) { if let run = ULID(run) { due.append((id, run)) } }
            for (id, run) in due {
                try await closeBatch(id, runID: run, now: now, into: &result, connection: connection)
                result.outcomes.append(.batched(batch: id, started: run))
            }

            let debounces = try await connection.query("""
                DELETE FROM debounces WHERE (function_id, key) IN (
                    SELECT function_id, key FROM debounces WHERE due_at <= \(now) ORDER BY due_at LIMIT \(limit) FOR UPDATE SKIP LOCKED)
                RETURNING function_id, run_id, event_id, event_key
                """, logger: logger)
            var firings: [Firing] = []
            for try await (function, run, event, key) in debounces.decode((UUID, String, String, String).self) {
                guard let run = ULID(run), let event = ULID(event) else { continue }
                firings.append(.debounce(functionID: function, runID: run, eventID: event, eventKey: key))
            }
            for firing in firings {
                guard let arrival = try await plan(firing).arrival else { continue }
                result.outcomes.append(try await admit(arrival, now: now, cancelling: cancelling, into: &result, connection: connection))
            }

            let crons = try await connection.query("""
                SELECT function_id, expression, tick FROM crons WHERE due_at <= \(now.addingTimeInterval(cronLead))
                ORDER BY due_at LIMIT \(limit) FOR UPDATE SKIP LOCKED
                """, logger: logger)
            var ticks: [(UUID, String, Date)] = []
            for try await row in crons.decode((UUID, String, Date).self) { ticks.append(row) }
            for (function, expression, tick) in ticks {
                let firing = try await plan(.cron(functionID: function, expression: expression, tick: tick))
                if let arrival = firing.arrival {
                    result.outcomes.append(try await admit(arrival, now: now, cancelling: cancelling, into: &result, connection: connection))
                }
                guard let next = firing.next, firing.arrival != nil else {
                    try await connection.query(
                        "DELETE FROM crons WHERE function_id = \(function) AND expression = \(expression)", logger: logger)
                    continue
                }
                try await connection.query("""
                    UPDATE crons SET tick = \(next.tick), due_at = \(next.due) WHERE function_id = \(function) AND expression = \(expression)
                    """, logger: logger)
                result.dues.append(("cron:\(function):\(next.tick.unixMilliseconds)", next.due.addingTimeInterval(-cronLead)))
            }
            return result
        }
    }

    public func fireTimeouts(now: Date, limit: Int, cancelling: @escaping @Sendable (CancelledRun) -> [AcceptedEvent]) async throws
        -> [AcceptedEvent]
    {
        try await client.withTransaction(logger: logger) { connection in
            // A start timeout cancels a run that has not started; a finish timeout, one that
            // has not ended.
            let rows = try await connection.query("""
                UPDATE timers t SET fired_at = \(now)
                WHERE id IN (
                    SELECT id FROM timers WHERE fired_at IS NULL AND kind = 'timeout' AND due_at <= \(now)
                    ORDER BY due_at LIMIT \(limit) FOR UPDATE SKIP LOCKED)
                RETURNING t.run_id, t.payload->>'which'
                """, logger: logger)
            var due: [(String, String)] = []
            for try await row in rows.decode((String, String).self) { due.append(row) }
            var events: [AcceptedEvent] = []
            for (run, which) in due {
                guard let runID = ULID(run) else { continue }
                if which == "start" {
                    let started = try await connection.query(
                        "SELECT 1 FROM runs WHERE id = \(run) AND started_at IS NULL FOR UPDATE", logger: logger)
                    guard try await started.hasRows() else { continue }
                }
                events += try await cancel(runID, now: now, emitting: cancelling, connection: connection) ?? []
            }
            return events
        }
    }

    public func armFinishTimeout(_ lease: RunLease, finish: ConfigDuration) async throws -> Date? {
        let rows = try await client.query("""
            INSERT INTO timers (id, kind, run_id, due_at, payload, created_at)
            SELECT \(timeoutID(lease.runID, "finish")), 'timeout', id, started_at + make_interval(secs => \(Double(finish.milliseconds) / 1_000)),
                   json_build_object('which', 'finish'), now()
            FROM runs WHERE id = \(lease.runID.description) AND fencing_token = \(lease.token) AND started_at IS NOT NULL
            ON CONFLICT (id) DO NOTHING
            RETURNING due_at
            """, logger: logger)
        for try await due in rows.decode(Date.self) { return due }
        return nil
    }

    func insertTimeout(_ runID: ULID, which: String, due: Date, now: Date, connection: PostgresConnection) async throws {
        try await connection.query("""
            INSERT INTO timers (id, kind, run_id, due_at, payload, created_at)
            VALUES (\(timeoutID(runID, which)), 'timeout', \(runID.description), \(due), json_build_object('which', \(which)), \(now))
            ON CONFLICT (id) DO NOTHING
            """, logger: logger)
    }

    func timeoutID(_ runID: ULID, _ which: String) -> String { "\(runID):timeout:\(which)" }

    func debounceID(_ function: UUID, _ key: String) -> String { "debounce:\(function):\(key)" }

    // MARK: Crons

    public func syncCrons(_ chains: [CronChain]) async throws {
        try await client.withTransaction(logger: logger) { connection in
            for chain in chains {
                try await connection.query("""
                    INSERT INTO crons (function_id, expression, tick, due_at)
                    VALUES (\(chain.functionID), \(chain.expression), \(chain.tick), \(chain.due))
                    ON CONFLICT DO NOTHING
                    """, logger: logger)
            }
            // Chains of archived functions, or of cron triggers a sync removed, end.
            try await connection.query("""
                DELETE FROM crons c WHERE NOT EXISTS (
                    SELECT 1 FROM functions f, json_array_elements(f.config->'triggers') t
                    WHERE f.id = c.function_id AND f.archived_at IS NULL AND t->>'cron' = c.expression)
                """, logger: logger)
        }
    }

    public func nextFlowDue(cronLead: TimeInterval) async throws -> Date? {
        let rows = try await client.query("""
            SELECT min(due) FROM (
                SELECT min(due_at) AS due FROM debounces
                UNION ALL SELECT min(due_at) FROM batches WHERE closed_at IS NULL
                UNION ALL SELECT min(due_at) - make_interval(secs => \(cronLead)) FROM crons
                UNION ALL SELECT min(due_at) FROM timers WHERE fired_at IS NULL AND kind = 'timeout') d
            """, logger: logger)
        for try await due in rows.decode(Date?.self) { return due }
        return nil
    }
}
