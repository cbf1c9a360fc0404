public import CairnCore
public import Foundation
public import Logging
public import ServiceLifecycle
import Synchronization

/// The scheduler's event consumer: matches each event on the `events` stream against every
/// function's event triggers (name pattern, then expression) and starts one run per match.
///
/// Runs are idempotent per (function, event id) for `idempotencyWindow`: an event delivered
/// twice (stream redelivery, relay republish) starts nothing new. A run and its first work
/// item commit together (outbox), then the item is published; the work relay heals a crash in
/// between.
public final class EventRouter: Service {
    let source: any StreamSource
    let catalog: FunctionCatalog
    let store: any RunStore
    let work: any WorkQueue
    let clock: any WallClock
    let logger: Logger
    /// How long an event blocks a second run of the same function: 24 h.
    let idempotencyWindow: TimeInterval
    let batchSize = 256
    private let runIDs = Mutex(ULIDGenerator())

    public init(
        source: any StreamSource, catalog: FunctionCatalog, store: any RunStore, work: any WorkQueue, clock: any WallClock,
        idempotencyWindow: TimeInterval = 86_400, logger: Logger
    ) {
        self.idempotencyWindow = idempotencyWindow
        self.source = source
        self.catalog = catalog
        self.store = store
        self.work = work
        self.clock = clock
        self.logger = logger
    }

    public func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            do {
                let deliveries = try await cancelWhenGracefulShutdown { try await self.source.read(maximum: self.batchSize) }
                if deliveries.isEmpty { continue }
                try await route(deliveries)
                try await source.acknowledge(deliveries.map(\.entryID))
            } catch is CancellationError {
                break
            } catch {
                logger.warning("routing events failed; they will be delivered again", metadata: ["error": "\(error)"])
                try? await Task.sleep(for: .milliseconds(200))
            }
        }
    }

    /// Starts the runs `deliveries` call for and publishes their work.
    public func route(_ deliveries: [StreamDelivery]) async throws {
        let now = clock.now
        var runs: [NewRun] = []
        for delivery in deliveries {
            guard let idText = delivery.fields["id"].map({ String(decoding: $0, as: UTF8.self) }), let eventID = ULID(idText),
                let name = delivery.fields["name"].map({ String(decoding: $0, as: UTF8.self) }),
                let eventBytes = delivery.fields["event"], let payload = try? JSONValue(parsing: eventBytes)
            else {
                logger.error("skipping an events entry that is not an event", metadata: ["entry": "\(delivery.entryID)"])
                continue
            }
            var event = payload
            if event["id"]?.stringValue?.isEmpty != false { event.setValue(.string(idText), forKey: "id") }
            let dedupeKey = event["id"]?.stringValue ?? idText
            let activation = ExpressionActivation(event: event, nowMilliseconds: Int64(now.timeIntervalSince1970 * 1_000))
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
                runs.append(NewRun(
                    id: runIDs.withLock { $0.next(now: now) }, functionID: candidate.function.id, functionVersion: candidate.function.version,
                    eventIDs: [eventID], idempotencyKey: "event:" + dedupeKey,
                    idempotentUntil: now.addingTimeInterval(idempotencyWindow)))
            }
        }
        let created = Set(try await store.createRuns(runs, now: now))
        let items = runs.filter { created.contains($0.id) }.map { WorkItem(runID: $0.id, reason: .start, call: .discovery) }
        if items.isEmpty { return }
        try await work.publish(items)
        try await store.markWorkPublished(items)
    }
}
