public import CairnCore
public import CairnEngine
public import Foundation

/// `ConcurrencyStore` in memory, held to the same contract as the Postgres one.
extension InMemoryRunStore {
    /// Whether `runID`'s slot taken under `token` counts: the run holds that lease, live.
    static func slotLive(_ runID: ULID, token: Int64, _ state: State, now: Date) -> Bool {
        guard let run = state.runs[runID] else { return false }
        return run.token == token && run.leaseOwner != nil && (run.leaseExpires ?? .distantPast) > now
    }

    /// Line order: lowest score first, then entry id.
    static func first(_ a: (key: String, value: BacklogRow), _ b: (key: String, value: BacklogRow)) -> Bool {
        (a.value.score, a.key) < (b.value.score, b.key)
    }

    static func inUse(_ key: String, excluding runID: ULID?, _ state: State, now: Date) -> Int {
        (state.flow.slots[key] ?? [:]).filter { $0.key != runID && slotLive($0.key, token: $0.value, state, now: now) }.count
    }

    public func acquireSlots(
        _ lease: RunLease, _ slots: [ConcurrencySlot], score: Int64, functionID: UUID, start: Bool, now: Date
    ) async throws -> SlotOutcome {
        // Leases are judged by the store's clock, as `lease` judges them.
        let current = clock.now
        return state.withLock { state in
            guard let run = state.runs[lease.runID], run.token == lease.token, run.leaseOwner == lease.owner,
                (run.leaseExpires ?? .distantPast) > current, run.status == "Running"
            else { return .leaseLost }
            if let full = slots.first(where: { Self.inUse($0.key, excluding: lease.runID, state, now: current) >= $0.limit }) {
                state.flow.backlog[lease.item] = BacklogRow(
                    key: full.key, limit: full.limit, score: score, runID: lease.runID, functionID: functionID, createdAt: now)
                state.runs[lease.runID]?.leaseOwner = nil
                state.runs[lease.runID]?.leaseExpires = nil
                if start, state.steps[lease.runID, default: []].isEmpty {
                    state.runs[lease.runID]?.status = "Queued"
                    state.runs[lease.runID]?.startedAt = nil
                }
                return .backlogged(key: full.key)
            }
            for slot in slots { state.flow.slots[slot.key, default: [:]][lease.runID] = lease.token }
            return .held
        }
    }

    public func releaseSlots(_ runID: ULID) async throws -> [WorkItem] {
        state.withLock { state in
            var entries: [String] = []
            for key in state.flow.slots.keys.sorted() where state.flow.slots[key]?[runID] != nil {
                state.flow.slots[key]?[runID] = nil
                if let next = state.flow.backlog.filter({ $0.value.key == key }).min(by: Self.first) {
                    state.flow.backlog[next.key] = nil
                    entries.append(next.key)
                }
            }
            return Self.unpublish(entries, &state)
        }
    }

    public func promoteBacklog(limit: Int) async throws -> [WorkItem] {
        let now = clock.now
        return state.withLock { state in
            var entries: [String] = []
            let byKey = Dictionary(grouping: state.flow.backlog, by: { $0.value.key })
            for (key, rows) in byKey.sorted(by: { $0.key < $1.key }) {
                let room = (rows.first?.value.limit ?? 0) - Self.inUse(key, excluding: nil, state, now: now)
                for row in rows.sorted(by: Self.first).prefix(max(0, room)) where entries.count < limit {
                    state.flow.backlog[row.key] = nil
                    entries.append(row.key)
                }
            }
            return Self.unpublish(entries, &state)
        }
    }

    public func queueStates() async throws -> [QueueState] {
        let now = clock.now
        return state.withLock { state in
            var states: [UUID: QueueState] = [:]
            for row in state.flow.backlog.values {
                var entry = states[row.functionID] ?? QueueState(functionID: row.functionID, backlog: 0, running: 0, oldest: nil)
                entry.backlog += 1
                entry.oldest = min(entry.oldest ?? row.createdAt, row.createdAt)
                states[row.functionID] = entry
            }
            var holders: Set<ULID> = []
            for holdersByRun in state.flow.slots.values {
                for (runID, token) in holdersByRun where Self.slotLive(runID, token: token, state, now: now) { holders.insert(runID) }
            }
            for runID in holders {
                guard let functionID = state.runs[runID]?.functionID else { continue }
                states[functionID, default: QueueState(functionID: functionID, backlog: 0, running: 0, oldest: nil)].running += 1
            }
            return Array(states.values)
        }
    }

    static func unpublish(_ entries: [String], _ state: inout State) -> [WorkItem] {
        entries.compactMap { entry in
            guard state.outbox[entry] != nil else { return nil }
            state.outbox[entry]?.published = false
            return state.outbox[entry]?.item
        }
    }
}
