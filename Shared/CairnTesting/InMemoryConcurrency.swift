public import CairnCore
public import CairnEngine
public import Foundation

/// How a run holds a concurrency slot.
enum SlotHold: Sendable {
    /// A request slot, taken under this fencing token.
    case lease(Int64)
    /// A run-level slot, held until the run ends.
    case run
}

/// `ConcurrencyStore` in memory, held to the same contract as the Postgres one.
extension InMemoryRunStore {
    /// Whether `runID`'s slot counts: a request slot while the run holds the lease it was
    /// taken under, live; a run-level one until the run ends.
    static func slotLive(_ runID: ULID, _ hold: SlotHold, _ state: State, now: Date) -> Bool {
        guard let run = state.runs[runID] else { return false }
        switch hold {
        case .lease(let token): return run.token == token && run.leaseOwner != nil && (run.leaseExpires ?? .distantPast) > now
        case .run: return run.status == "Queued" || run.status == "Running"
        }
    }

    /// Line order: lowest score first, then entry id.
    static func first(_ a: (key: String, value: BacklogRow), _ b: (key: String, value: BacklogRow)) -> Bool {
        (a.value.score, a.key) < (b.value.score, b.key)
    }

    static func inUse(_ key: String, excluding runID: ULID?, _ state: State, now: Date) -> Int {
        (state.flow.slots[key] ?? [:]).filter { $0.key != runID && slotLive($0.key, $0.value, state, now: now) }.count
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
            for slot in slots { state.flow.slots[slot.key, default: [:]][lease.runID] = slot.wholeRun ? .run : .lease(lease.token) }
            return .held
        }
    }

    public func releaseSlots(_ runID: ULID) async throws -> [WorkItem] {
        let now = clock.now
        return state.withLock { state in
            var entries: [String] = []
            for key in state.flow.slots.keys.sorted() {
                switch state.flow.slots[key]?[runID] {
                case nil: continue
                case .run? where Self.slotLive(runID, .run, state, now: now): continue
                default: break
                }
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
            func update(_ functionID: UUID, _ change: (inout QueueState) -> Void) {
                change(&states[functionID, default: QueueState(functionID: functionID, ready: 0, backlog: 0, running: 0, oldest: nil)])
            }
            for (entry, row) in state.outbox where state.flow.backlog[entry] == nil {
                guard let run = state.runs[row.item.runID], run.leaseOwner == nil || (run.leaseExpires ?? .distantPast) <= now else { continue }
                update(run.functionID) { $0.ready += 1 }
            }
            for row in state.flow.backlog.values {
                update(row.functionID) {
                    $0.backlog += 1
                    $0.oldest = min($0.oldest ?? row.createdAt, row.createdAt)
                }
            }
            var holders: Set<ULID> = []
            for holdersByRun in state.flow.slots.values {
                for (runID, hold) in holdersByRun where Self.slotLive(runID, hold, state, now: now) { holders.insert(runID) }
            }
            for runID in holders {
                guard let functionID = state.runs[runID]?.functionID else { continue }
                update(functionID) { $0.running += 1 }
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
