public import CairnCore
import Foundation
public import Logging
import Metrics
public import ServiceLifecycle
import Synchronization

/// Tunables of the ingest path; every field has a production default.
public struct IngestSettings: Sendable {
    /// How long an event `id` blocks a repeat: 24 hours.
    public var dedupeWindow: Duration = .seconds(24 * 3600)
    /// Most events one commit carries: 2,000. Requests are never split, so a 5,000-event
    /// request commits alone.
    public var maximumBatchEvents = 2_000
    /// Commits in flight at once, each on its own Postgres connection: 4.
    public var concurrentCommits = 4
    /// Most events waiting for a commit: 100,000. Beyond it requests are refused at once
    /// (`GroupCommitFullError`; the HTTP layer answers 503 with `Retry-After`), so a database
    /// that falls behind cannot make the process hold unbounded memory.
    public var maximumPendingEvents = 100_000
    /// How often accepted-and-published events are marked published (one UPDATE for all): 100 ms.
    public var markInterval: Duration = .milliseconds(100)

    /// The defaults.
    public init() {}
}

/// Test hooks on the ingest path. Production uses `none`.
public struct IngestFaults: Sendable {
    /// When true, events are committed and acknowledged but never published by the ingestor,
    /// as if the process died between the commit and the `XADD`; only the relay delivers them.
    public var skipPublishAfterCommit: Bool

    /// No faults.
    public static let none = IngestFaults(skipPublishAfterCommit: false)

    /// Creates a set of faults.
    public init(skipPublishAfterCommit: Bool) {
        self.skipPublishAfterCommit = skipPublishAfterCommit
    }
}

/// What `EventIngestor.ingest` answers for one request.
public struct IngestResult: Sendable, Hashable {
    /// One id per submitted event, in order: the event's own ULID, or for a duplicate the ULID
    /// of the event accepted earlier with the same `id`.
    public var ids: [ULID]
    /// Indices (into `ids`) of the events that were duplicates and were not stored.
    public var duplicates: [Int]
}

/// The event API's use case: assign ids, record in the event log with 24-hour dedupe, then
/// announce on the event stream.
///
/// Group commit: concurrent `ingest` calls wait in a `GroupCommitQueue`; `run()` drives
/// `settings.concurrentCommits` workers that each take every waiting request (up to
/// `maximumBatchEvents` events) and record them in one `EventLog.append` transaction. A request
/// is acknowledged only after that transaction committed. Publishing follows the commit; the
/// events are then marked published in bulk. An event whose publish is lost (crash, Redis down)
/// stays unmarked and `EventRelay` publishes it.
///
/// Lifecycle: a `Service`. `ingest` waits until `run()` is running; on graceful shutdown new
/// requests fail with `GroupCommitClosedError` and the ones already waiting are committed.
public final class EventIngestor: Service, Sendable {
    let log: any EventLog
    let stream: any EventStream
    let clock: any WallClock
    let settings: IngestSettings
    public let metrics: IngestMetrics
    let faults: IngestFaults
    let logger: Logger
    private let queue: GroupCommitQueue<AcceptedEvent, AppendOutcome>
    private let ids = Mutex(ULIDGenerator())
    private let publishedIDs = Mutex<[ULID]>([])

    /// Creates the ingestor; nothing runs until `run()`.
    public init(
        log: any EventLog, stream: any EventStream, clock: any WallClock, settings: IngestSettings = IngestSettings(),
        metrics: IngestMetrics, faults: IngestFaults = .none, logger: Logger
    ) {
        self.log = log
        self.stream = stream
        self.clock = clock
        self.settings = settings
        self.metrics = metrics
        self.faults = faults
        self.logger = logger
        self.queue = GroupCommitQueue(maximumBatchItems: settings.maximumBatchEvents, maximumPendingItems: settings.maximumPendingEvents)
    }

    /// Events accepted and waiting for their commit.
    public var pendingEvents: Int { queue.pendingItems }

    /// Accepts validated events: returns once they are committed (or recognised as duplicates).
    ///
    /// - Parameter seed: the SDK's `x-inngest-event-id-seed`; with one, event `i` (from 0) gets
    ///   the seed's ULID for index `i + 1`, so a retried request gets the same ids.
    /// - Throws: the log's error when the commit failed (nothing of the request was stored), or
    ///   `GroupCommitClosedError` during shutdown, or `GroupCommitFullError` when too many
    ///   events wait already.
    public func ingest(_ events: [Event], seed: ULIDSeed?) async throws -> IngestResult {
        if events.isEmpty { return IngestResult(ids: [], duplicates: []) }
        let now = clock.now
        let receivedAt = now.unixMilliseconds
        let accepted: [AcceptedEvent] = ids.withLock { generator in
            events.enumerated().map { index, event in
                let id = seed?.ulid(forIndex: index + 1) ?? generator.next(now: now)
                return AcceptedEvent(event, id: id, receivedAt: receivedAt)
            }
        }
        let outcomes = try await queue.submit(accepted)
        var result = IngestResult(ids: [], duplicates: [])
        result.ids.reserveCapacity(accepted.count)
        for (index, outcome) in outcomes.enumerated() {
            switch outcome {
            case .stored:
                result.ids.append(accepted[index].id)
            case .duplicate(let original):
                result.ids.append(original)
                result.duplicates.append(index)
            }
        }
        metrics.accepted.increment(by: Int64(accepted.count - result.duplicates.count))
        if !result.duplicates.isEmpty { metrics.duplicates.increment(by: Int64(result.duplicates.count)) }
        return result
    }

    /// Runs the commit workers and the publish marker until graceful shutdown.
    ///
    /// Graceful shutdown and cancellation both close the queue: waiting requests are still
    /// committed, new ones are refused, and the workers return once it is empty.
    public func run() async throws {
        await withTaskCancellationHandler {
            await withGracefulShutdownHandler {
                await withDiscardingTaskGroup { group in
                    for _ in 0..<settings.concurrentCommits {
                        group.addTask { await self.commitLoop() }
                    }
                    group.addTask { await self.markLoop() }
                }
            } onGracefulShutdown: {
                self.queue.close()
            }
        } onCancel: {
            self.queue.close()
        }
    }

    private func commitLoop() async {
        while let batch = await queue.nextBatch() {
            await commit(batch)
        }
    }

    private func commit(_ batch: [GroupCommitQueue<AcceptedEvent, AppendOutcome>.Submission]) async {
        let events = batch.flatMap(\.items)
        let earlier = EventDedupe.earlierDuplicates(in: events)
        let firsts = events.indices.filter { earlier[$0] == nil }
        let now = clock.now
        let started = ContinuousClock.now
        let logged: [AppendOutcome]
        do {
            logged = try await log.append(firsts.map { events[$0] }, dedupeUntil: now + settings.dedupeWindow, now: now)
        } catch {
            // One request's events can fail the whole batch (a value the database refuses that
            // validation let through): commit each request alone, so only its own sender sees
            // the error.
            if batch.count > 1 {
                for submission in batch { await commit([submission]) }
                return
            }
            logger.warning("event commit failed", metadata: ["events": "\(events.count)", "error": "\(error)"])
            for submission in batch { submission.continuation.resume(throwing: error) }
            return
        }
        let elapsed = (ContinuousClock.now - started).components
        metrics.commitDuration.recordNanoseconds(elapsed.seconds * 1_000_000_000 + elapsed.attoseconds / 1_000_000_000)
        metrics.batchSize.record(events.count)

        var outcomes = [AppendOutcome](repeating: .stored, count: events.count)
        for (position, index) in firsts.enumerated() { outcomes[index] = logged[position] }
        for index in events.indices {
            guard let first = earlier[index] else { continue }
            if case .duplicate(let original) = outcomes[first] {
                outcomes[index] = .duplicate(of: original)
            } else {
                outcomes[index] = .duplicate(of: events[first].id)
            }
        }
        var offset = 0
        for submission in batch {
            let count = submission.items.count
            submission.continuation.resume(returning: Array(outcomes[offset..<offset + count]))
            offset += count
        }

        let stored = events.indices.filter { outcomes[$0] == .stored }.map { events[$0] }
        guard !stored.isEmpty, !faults.skipPublishAfterCommit else { return }
        do {
            try await stream.publish(stored)
            publishedIDs.withLock { $0 += stored.map(\.id) }
        } catch {
            // Committed but not announced: the relay publishes these.
            logger.warning("event publish failed; the relay will retry", metadata: ["events": "\(stored.count)", "error": "\(error)"])
        }
    }

    /// Publishes events another transaction stored unpublished (`EventSink.announce`); they
    /// are marked published with the ingestor's own.
    public func announce(_ events: [AcceptedEvent]) async {
        if events.isEmpty { return }
        do {
            try await stream.publish(events)
            publishedIDs.withLock { $0 += events.map(\.id) }
        } catch {
            logger.warning("event publish failed; the relay will retry", metadata: ["events": "\(events.count)", "error": "\(error)"])
        }
    }

    private func markLoop() async {
        while true {
            let finishing = queue.isClosedAndDrained
            let ids = publishedIDs.withLock { ids in
                defer { ids.removeAll(keepingCapacity: true) }
                return ids
            }
            if !ids.isEmpty {
                do {
                    try await log.markPublished(ids, at: clock.now)
                } catch {
                    logger.debug("marking events published failed; the relay may publish them again", metadata: ["error": "\(error)"])
                }
            }
            if finishing { return }
            try? await Task.sleep(for: settings.markInterval)
        }
    }
}
