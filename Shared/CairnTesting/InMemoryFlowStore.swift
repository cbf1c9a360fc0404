public import CairnCore
public import CairnEngine
public import Foundation

/// Flow-control state of the in-memory store.
struct FlowState {
    /// GCRA arrival times (µs) by "function:key".
    var rateLimits: [String: Int64] = [:]
    var debounces: [String: DebounceRow] = [:]
    var batches: [String: BatchRow] = [:]
    /// Which batch each (function, event) joined.
    var batchEvents: [String: String] = [:]
    var crons: [String: CronRow] = [:]
    var timeouts: [String: TimeoutRow] = [:]
    /// Concurrency slots: how each holder holds its slot (the fencing token of a request
    /// slot, or for the whole run), by key and run.
    var slots: [String: [ULID: SlotHold]] = [:]
    /// Items waiting for a slot, by entry id.
    var backlog: [String: BacklogRow] = [:]
}

struct BacklogRow {
    var key: String
    var limit: Int
    var score: Int64
    var runID: ULID
    var functionID: UUID
    var createdAt: Date
}

struct DebounceRow {
    var functionID: UUID
    var key: String
    var runID: ULID
    var eventID: ULID
    var eventKey: String
    var eventTS: Int64
    var openedAt: Date
    var due: Date
}

struct BatchRow {
    var id: String
    var functionID: UUID
    var key: String
    var runID: ULID
    var events: [ULID] = []
    var bytes = 0
    var due: Date
    var closed = false
}

struct CronRow {
    var functionID: UUID
    var expression: String
    var tick: Date
    var due: Date
}

struct TimeoutRow {
    var runID: ULID
    var which: String
    var due: Date
}

/// `FlowStore` in memory, with the Postgres store's rules; each call is atomic.
extension InMemoryRunStore {
    public func admit(_ arrivals: [Arrival], now: Date, cancelling: @escaping @Sendable (CancelledRun) -> [AcceptedEvent]) async throws
        -> AdmissionResult
    {
        try await perform(.admit) { state in
            var copy = state
            var result = AdmissionResult()
            for arrival in arrivals { result.outcomes.append(try admit(arrival, now: now, cancelling: cancelling, into: &result, &copy)) }
            state = copy
            return result
        }
    }

    func admit(
        _ arrival: Arrival, now: Date, cancelling: @Sendable (CancelledRun) -> [AcceptedEvent], into result: inout AdmissionResult,
        _ state: inout State
    ) throws -> Admission {
        var run = arrival.run
        if arrival.paused {
            guard Self.claim(run, now: now, &state) else { return .duplicate }
            eventLog.storeCommitted(arrival.events)
            result.events += arrival.events
            return Self.skip(run, .paused, pointingAt: nil, now: now, &state)
        }
        switch arrival.route {
        case .start:
            guard Self.claim(run, now: now, &state) else { return .duplicate }
            eventLog.storeCommitted(arrival.events)
            result.events += arrival.events
            if let refusal = Self.rateLimited(arrival, now: now, &state) { return Self.skip(run, refusal, pointingAt: nil, now: now, &state) }
            // The throttle's state moves on only if the run is created.
            var throttled: (key: String, tat: Int64)?
            if let check = arrival.throttle {
                let key = "\(run.functionID):\(check.stateKey)"
                throttled = (key, check.place(&run, tat: state.flow.rateLimits[key], now: now))
            }
            for _ in 0..<3 {
                if try insertRun(run, now: now, into: &state) {
                    if let (key, tat) = throttled { state.flow.rateLimits[key] = tat }
                    result.started.append(run)
                    result.queue(run, now: now)
                    if let due = run.startTimeout { result.dues.append(("\(run.id):timeout:start", due)) }
                    return .started(run.id)
                }
                guard let singleton = arrival.singleton, let holder = Self.singletonHolder(run.functionID, singleton.key, state) else { continue }
                switch singleton.mode {
                case .skip: return Self.skip(run, .singleton, pointingAt: holder, now: now, &state)
                case .cancel: result.events += cancel(holder, now: now, emitting: cancelling, &state) ?? []
                }
            }
            throw InMemoryStoreError(detail: "run \(run.id): its singleton key stayed held")
        case .debounce(let entry):
            let claimKey = "\(run.functionID):\(run.idempotencyKey)"
            if let claim = state.idempotency[claimKey], claim.expires > now { return .duplicate }
            if state.flow.debounces.values.contains(where: { $0.functionID == run.functionID && $0.eventID == run.eventIDs[0] }) { return .duplicate }
            if let refusal = Self.rateLimited(arrival, now: now, &state) {
                guard Self.claim(run, now: now, &state) else { return .duplicate }
                return Self.skip(run, refusal, pointingAt: nil, now: now, &state)
            }
            let id = "\(run.functionID):\(entry.key)"
            guard var held = state.flow.debounces[id] else {
                let due = DebounceWindow.due(openedAt: now, lastAt: now, period: entry.period, timeout: entry.timeout)
                state.flow.debounces[id] = DebounceRow(
                    functionID: run.functionID, key: entry.key, runID: run.id, eventID: run.eventIDs[0], eventKey: run.idempotencyKey,
                    eventTS: entry.eventTS, openedAt: now, due: due)
                result.dues.append(("debounce:\(id)", due))
                return .debounced(into: run.id)
            }
            if entry.eventTS < held.eventTS {
                guard Self.claim(run, now: now, &state) else { return .duplicate }
                return Self.skip(run, .debounced, pointingAt: held.runID, now: now, &state)
            }
            var replaced = run
            replaced.id = entry.replacedRunID
            replaced.eventIDs = [held.eventID]
            replaced.idempotencyKey = held.eventKey
            if Self.claim(replaced, now: now, &state) { _ = Self.skip(replaced, .debounced, pointingAt: held.runID, now: now, &state) }
            held.eventID = run.eventIDs[0]
            held.eventKey = run.idempotencyKey
            held.eventTS = entry.eventTS
            held.due = DebounceWindow.due(openedAt: held.openedAt, lastAt: now, period: entry.period, timeout: entry.timeout)
            state.flow.debounces[id] = held
            result.dues.append(("debounce:\(id)", held.due))
            return .debounced(into: held.runID)
        case .batch(let entry):
            let eventKey = "\(run.functionID):\(run.eventIDs[0])"
            if state.flow.batchEvents[eventKey] != nil { return .duplicate }
            let open = state.flow.batches.values.first { $0.functionID == run.functionID && $0.key == entry.key && !$0.closed }
            var batch = open ?? BatchRow(
                id: entry.batchID, functionID: run.functionID, key: entry.key, runID: run.id,
                due: now.addingTimeInterval(Double(entry.timeout.milliseconds) / 1_000))
            if open == nil { result.dues.append(("batch:" + batch.id, batch.due)) }
            batch.events.append(run.eventIDs[0])
            batch.bytes += entry.bytes
            state.flow.batches[batch.id] = batch
            state.flow.batchEvents[eventKey] = batch.id
            guard BatchWindow.isFull(size: batch.events.count, bytes: batch.bytes, maxSize: entry.maxSize) else {
                return .batched(batch: batch.id, started: nil)
            }
            try closeBatch(batch.id, now: now, into: &result, &state)
            return .batched(batch: batch.id, started: batch.runID)
        }
    }

    /// Counts the arrival against its rate limit; the reason when it refuses it.
    static func rateLimited(_ arrival: Arrival, now: Date, _ state: inout State) -> SkipReason? {
        guard let check = arrival.rateLimit else { return nil }
        let key = "\(arrival.run.functionID):\(check.key)"
        let decision = check.gcra.admit(tat: state.flow.rateLimits[key], now: now.unixMicroseconds)
        guard decision.admitted else { return check.reason }
        state.flow.rateLimits[key] = decision.tat
        return nil
    }

    static func skip(_ run: NewRun, _ reason: SkipReason, pointingAt other: ULID?, now: Date, _ state: inout State) -> Admission {
        var row = RunRow(id: run.id, functionID: run.functionID, version: run.functionVersion, eventIDs: run.eventIDs, createdAt: now)
        row.status = "Skipped"
        row.endedAt = now
        row.skipReason = reason.rawValue
        row.skipRunID = other
        state.runs[run.id] = row
        return .skipped(reason, run: other)
    }

    /// Closes the batch and starts its run on the function's live version.
    func closeBatch(_ id: String, now: Date, into result: inout AdmissionResult, _ state: inout State) throws {
        guard var batch = state.flow.batches[id], !batch.closed else { return }
        batch.closed = true
        state.flow.batches[id] = batch
        guard let version = registry.liveVersion(id: batch.functionID) else { return }
        var run = NewRun(
            id: batch.runID, functionID: batch.functionID, functionVersion: version, eventIDs: batch.events, idempotencyKey: "batch:" + id,
            idempotentUntil: now.addingTimeInterval(86_400))
        run.batchID = id
        run.functionSlug = registry.storedVersion(id: batch.functionID, version: version)?.id ?? ""
        guard Self.claim(run, now: now, &state), try insertRun(run, now: now, into: &state) else { return }
        result.started.append(run)
        result.work.append(WorkItem(runID: run.id, reason: .start, call: .discovery))
    }

    public func fireDue(
        now: Date, cronLead: TimeInterval, limit: Int, plan: @escaping @Sendable (Firing) async throws -> FiringPlan,
        cancelling: @escaping @Sendable (CancelledRun) -> [AcceptedEvent]
    ) async throws -> AdmissionResult {
        // Take what is due (as `FOR UPDATE SKIP LOCKED` would: another caller does not see it),
        // plan outside the lock, then admit; a failure anywhere puts back what was taken, as a
        // rolled-back transaction would.
        let (debounces, crons) = state.withLock { state -> ([DebounceRow], [CronRow]) in
            let debounces = state.flow.debounces.filter { $0.value.due <= now }.sorted { $0.value.due < $1.value.due }.prefix(limit)
            for (id, _) in debounces { state.flow.debounces[id] = nil }
            let crons = state.flow.crons.filter { $0.value.due <= now.addingTimeInterval(cronLead) }.sorted { $0.value.due < $1.value.due }.prefix(limit)
            for (id, _) in crons { state.flow.crons[id]?.due = .distantFuture }
            return (debounces.map(\.value), crons.map(\.value))
        }
        var committed = false
        do {
            var plans: [(Firing, FiringPlan)] = []
            for row in debounces {
                let firing = Firing.debounce(functionID: row.functionID, runID: row.runID, eventID: row.eventID, eventKey: row.eventKey)
                plans.append((firing, try await plan(firing)))
            }
            for row in crons {
                let firing = Firing.cron(functionID: row.functionID, expression: row.expression, tick: row.tick)
                plans.append((firing, try await plan(firing)))
            }
            return try await perform(.fireDue) { state in
                var copy = state
                var result = AdmissionResult()
                for batch in copy.flow.batches.values where !batch.closed && batch.due <= now {
                    try closeBatch(batch.id, now: now, into: &result, &copy)
                    result.outcomes.append(.batched(batch: batch.id, started: batch.runID))
                }
                for (firing, firingPlan) in plans {
                    if let arrival = firingPlan.arrival {
                        result.outcomes.append(try admit(arrival, now: now, cancelling: cancelling, into: &result, &copy))
                    }
                    guard case .cron(let function, let expression, _) = firing else { continue }
                    let id = "\(function):\(expression)"
                    guard let next = firingPlan.next, firingPlan.arrival != nil else {
                        copy.flow.crons[id] = nil
                        continue
                    }
                    copy.flow.crons[id]?.tick = next.tick
                    copy.flow.crons[id]?.due = next.due
                    result.dues.append(("cron:\(id):\(next.tick.unixMilliseconds)", next.due.addingTimeInterval(-cronLead)))
                }
                state = copy
                committed = true
                return result
            }
        } catch {
            // Written and then failed (the process died after its commit): nothing to put back.
            if committed { throw error }
            state.withLock { state in
                for row in debounces { state.flow.debounces["\(row.functionID):\(row.key)"] = row }
                for row in crons where state.flow.crons["\(row.functionID):\(row.expression)"]?.due == .distantFuture {
                    state.flow.crons["\(row.functionID):\(row.expression)"] = row
                }
            }
            throw error
        }
    }

    public func fireTimeouts(now: Date, limit: Int, cancelling: @escaping @Sendable (CancelledRun) -> [AcceptedEvent]) async throws
        -> [AcceptedEvent]
    {
        try await perform(.fireTimeouts) { state in
            var events: [AcceptedEvent] = []
            for (id, row) in state.flow.timeouts.filter({ $0.value.due <= now }).sorted(by: { $0.value.due < $1.value.due }).prefix(limit) {
                state.flow.timeouts[id] = nil
                if row.which == "start", state.runs[row.runID]?.startedAt != nil { continue }
                events += cancel(row.runID, now: now, emitting: cancelling, &state) ?? []
            }
            return events
        }
    }

    public func armFinishTimeout(_ lease: RunLease, finish: ConfigDuration) async throws -> Date? {
        state.withLock { state in
            guard let run = state.runs[lease.runID], run.token == lease.token, let started = run.startedAt else { return nil }
            let id = "\(lease.runID):finish"
            guard state.flow.timeouts[id] == nil else { return nil }
            let due = started.addingTimeInterval(Double(finish.milliseconds) / 1_000)
            state.flow.timeouts[id] = TimeoutRow(runID: lease.runID, which: "finish", due: due)
            return due
        }
    }

    public func syncCrons(_ chains: [CronChain]) async throws {
        state.withLock { state in
            for chain in chains where state.flow.crons["\(chain.functionID):\(chain.expression)"] == nil {
                state.flow.crons["\(chain.functionID):\(chain.expression)"] = CronRow(
                    functionID: chain.functionID, expression: chain.expression, tick: chain.tick, due: chain.due)
            }
            state.flow.crons = state.flow.crons.filter { _, row in
                registry.liveConfig(id: row.functionID)?.triggers.contains { $0.cronText == row.expression } ?? false
            }
        }
    }

    public func nextFlowDue(cronLead: TimeInterval) async throws -> Date? {
        state.withLock { state in
            let flow = state.flow
            return (flow.debounces.values.map(\.due) + flow.batches.values.filter { !$0.closed }.map(\.due)
                + flow.crons.values.map { $0.due.addingTimeInterval(-cronLead) }
                + flow.timeouts.values.map(\.due)).min()
        }
    }
}
