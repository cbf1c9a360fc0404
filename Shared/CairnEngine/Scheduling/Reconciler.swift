public import CairnCore
public import Foundation
public import Logging
public import Metrics
public import ServiceLifecycle

/// The scheduler's safety net: it finds work that nothing will advance and re-derives what
/// Redis lost from Postgres. Safe with several replicas: everything it does is idempotent.
///
/// Each pass:
/// 1. **Transport.** When Redis no longer holds the epoch token recorded in Postgres, or is
///    another server than the one recorded (a `FLUSHALL`, a restart without persistence, a
///    failover), stream entries may be gone: it writes a new token, republishes every live
///    work item and every event not yet routed, re-indexes every unfired timer, and records the
///    new token once it finds it still in place (a second loss during the rebuild is rebuilt
///    again). The first pass on a new deployment records the transport without counting heals.
/// 2. **Stranded runs.** Runs that have not ended and have nothing that will advance them
///    (no live lease, unfired timer, open wait or invoke pause, or live work item) get a
///    `recover` work item.
/// 3. **Pauses.** Pauses stored more than `lookBackGrace` ago that never looked back for
///    events stored while they were written (their writer died) do so now.
///
/// Every heal is logged at warning level and counted in `cairn_reconciler_healed_total{kind}`.
/// Outside a fault (a killed process, a lost Redis) a heal means a bug elsewhere: in normal
/// operation every pass heals nothing.
public final class Reconciler: Service {
    /// What a heal repaired.
    public enum HealKind: String, Sendable, CaseIterable {
        /// Work items republished after the transport lost them.
        case work
        /// Events republished after the transport lost them.
        case events
        /// Runs with nothing pending, given a `recover` item.
        case stranded
        /// Pauses that looked back on the reconciler's behalf.
        case pause
    }

    let store: any RunStore
    let eventLog: any EventLog
    let eventStream: any EventStream
    let work: any WorkQueue
    let index: any TimerIndex
    let epoch: any TransportEpoch
    let matcher: PauseMatcher
    let clock: any WallClock
    let logger: Logger
    let interval: Duration
    /// How long a new pause is left to look back by itself.
    let lookBackGrace: TimeInterval
    let pageSize = 500
    private let healed: [HealKind: Counter]

    public init(
        store: any RunStore, eventLog: any EventLog, eventStream: any EventStream, work: any WorkQueue, index: any TimerIndex,
        epoch: any TransportEpoch, events: any EventSink, clock: any WallClock, interval: Duration = .seconds(5),
        lookBackGrace: TimeInterval = 15, logger: Logger, metrics: any MetricsFactory = MetricsSystem.factory
    ) {
        self.store = store
        self.eventLog = eventLog
        self.eventStream = eventStream
        self.work = work
        self.index = index
        self.epoch = epoch
        self.matcher = PauseMatcher(store: store, events: events, eventLog: eventLog, work: work, clock: clock, logger: logger)
        self.clock = clock
        self.interval = interval
        self.lookBackGrace = lookBackGrace
        self.logger = logger
        var healed: [HealKind: Counter] = [:]
        for kind in HealKind.allCases {
            healed[kind] = Counter(label: "cairn_reconciler_healed_total", dimensions: [("kind", kind.rawValue)], factory: metrics)
        }
        self.healed = healed
    }

    public func run() async throws {
        await repeatUntilShutdown(logger: logger, failure: "a reconciler pass failed; retrying") {
            _ = try await pass()
            try await pauseUntilShutdown(for: interval, on: clock)
        }
    }

    /// One pass; returns what it healed, by kind (kinds with nothing healed are left out).
    @discardableResult
    public func pass() async throws -> [HealKind: Int] {
        var heals: [HealKind: Int] = [:]
        try await checkTransport(&heals)
        try await recoverStranded(&heals)
        try await lookBackForPauses(&heals)
        try await promoteBacklog()
        for (kind, count) in heals.sorted(by: { $0.key.rawValue < $1.key.rawValue }) where count > 0 {
            logger.warning("reconciler healed", metadata: ["kind": "\(kind.rawValue)", "count": "\(count)"])
            healed[kind]?.increment(by: Int64(count))
        }
        return heals.filter { $0.value > 0 }
    }

    /// Step 1: rebuilds the transport's streams and index when they may have been lost.
    func checkTransport(_ heals: inout [HealKind: Int]) async throws {
        let current = try await epoch.current()
        let recorded = try await store.recordedTransport()
        if let recorded, recorded == current { return }
        var tokens = ULIDGenerator()
        let token = tokens.next(now: clock.now).description
        try await epoch.mark(token)
        let lost = recorded != nil
        if lost {
            logger.warning("the transport lost its state; rebuilding streams and timers from Postgres", metadata: [
                "recorded": "\(recorded?.token ?? "-")@\(recorded?.serverID ?? "-")", "found": "\(current.token ?? "-")@\(current.serverID)",
            ])
        }
        var republished = (work: 0, events: 0)
        var cursor: Int64?
        repeat {
            let page = try await store.liveWork(after: cursor, limit: pageSize)
            try await store.publish(page.items, on: work, now: clock.now)
            republished.work += page.items.count
            cursor = page.cursor
        } while cursor != nil
        var after: ULID?
        while true {
            let page = try await eventLog.unrouted(after: after, limit: pageSize)
            if page.isEmpty { break }
            try await eventStream.publish(page)
            republished.events += page.count
            after = page.last?.id
            if page.count < pageSize { break }
        }
        var timerCursor: String?
        while true {
            let page = try await store.unfiredTimers(after: timerCursor, limit: pageSize)
            if page.isEmpty { break }
            try await index.schedule(page)
            timerCursor = page.last?.id
            if page.count < pageSize { break }
        }
        // Record the rebuild only if nothing was lost again meanwhile.
        let afterRebuild = try await epoch.current()
        guard afterRebuild.token == token, afterRebuild.serverID == current.serverID else { return }
        try await store.recordTransport(TransportIdentity(token: token, serverID: current.serverID))
        if lost {
            heals[.work, default: 0] += republished.work
            heals[.events, default: 0] += republished.events
        }
    }

    /// Step 2: gives every stranded run a `recover` item.
    func recoverStranded(_ heals: inout [HealKind: Int]) async throws {
        while true {
            let items = try await store.recoverStranded(limit: pageSize)
            if items.isEmpty { return }
            for item in items { logger.warning("recovering a run that had nothing pending", metadata: ["run": "\(item.runID)"]) }
            try await store.publish(items, on: work, now: clock.now)
            heals[.stranded, default: 0] += items.count
            if items.count < pageSize { return }
        }
    }

    /// Step 4: publishes work waiting for a concurrency slot that is free (its holder's drive
    /// ended without freeing it, or freed it as the work was being put in line). Not a heal:
    /// such races are part of normal operation, and the work was never at risk.
    func promoteBacklog() async throws {
        let items = try await store.promoteBacklog(limit: pageSize)
        if items.isEmpty { return }
        logger.info("published work that waited for a free concurrency slot", metadata: ["items": "\(items.count)"])
        try await store.publish(items, on: work, now: clock.now)
    }

    /// Step 3: looks back for pauses whose writer did not.
    func lookBackForPauses(_ heals: inout [HealKind: Int]) async throws {
        let pauses = try await store.pausesToLookBack(createdBefore: clock.now.addingTimeInterval(-lookBackGrace), limit: pageSize)
        try await matcher.lookBack(pauses)
        heals[.pause, default: 0] += pauses.count
    }
}
