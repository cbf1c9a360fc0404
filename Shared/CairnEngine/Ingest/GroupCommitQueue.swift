import Synchronization

/// Coalesces concurrent submissions into batches that commit together.
///
/// Callers `submit` a list of items and wait; `workers` loops (run by the owning service) take
/// everything pending — up to `maximumBatchItems` — and commit it in one go, so under load one
/// transaction carries many requests and an idle system commits a lone request at once.
///
/// Concurrency: state is one `Mutex`; no work happens under the lock. A submission is never
/// split across batches, so it commits or fails as a whole. After `close()` new submissions
/// fail with `GroupCommitClosedError`; pending ones are still committed by the workers, which
/// return once the queue is empty. At most `maximumPendingItems` items wait: a submission that
/// would go over fails at once with `GroupCommitFullError` (one larger than the bound alone is
/// taken when nothing waits), so memory stays bounded when commits fall behind.
final class GroupCommitQueue<Item: Sendable, Outcome: Sendable>: Sendable {
    struct Submission {
        var items: [Item]
        var continuation: CheckedContinuation<[Outcome], any Error>
    }

    private struct State {
        var pending: [Submission] = []
        var pendingItems = 0
        var idleWorkers: [CheckedContinuation<Void, Never>] = []
        var closed = false
    }

    private enum BatchStep { case batch([Submission]), finished, wait }

    private let state = Mutex(State())
    let maximumBatchItems: Int
    let maximumPendingItems: Int

    init(maximumBatchItems: Int, maximumPendingItems: Int = .max) {
        precondition(maximumBatchItems > 0 && maximumPendingItems > 0)
        self.maximumBatchItems = maximumBatchItems
        self.maximumPendingItems = maximumPendingItems
    }

    private enum Admission { case closed, full, admitted(CheckedContinuation<Void, Never>?) }

    /// Waits until the items were committed in some batch; returns their outcomes in order.
    func submit(_ items: [Item]) async throws -> [Outcome] {
        try await withCheckedThrowingContinuation { continuation in
            let admission: Admission = state.withLock { state in
                guard !state.closed else { return .closed }
                if state.pendingItems > 0 && state.pendingItems + items.count > maximumPendingItems { return .full }
                state.pending.append(Submission(items: items, continuation: continuation))
                state.pendingItems += items.count
                return .admitted(state.idleWorkers.popLast())
            }
            switch admission {
            case .closed: continuation.resume(throwing: GroupCommitClosedError())
            case .full: continuation.resume(throwing: GroupCommitFullError(limit: maximumPendingItems))
            case .admitted(let idle): idle?.resume()
            }
        }
    }

    /// The next batch: whole submissions, in arrival order, at most `maximumBatchItems` items
    /// (a single larger submission travels alone). Waits while nothing is pending; nil once
    /// the queue is closed and drained.
    func nextBatch() async -> [Submission]? {
        while true {
            let step: BatchStep = state.withLock { state in
                if !state.pending.isEmpty {
                    var taken = 0
                    var count = 0
                    for submission in state.pending {
                        if count > 0 && taken + submission.items.count > maximumBatchItems { break }
                        taken += submission.items.count
                        count += 1
                    }
                    let batch = Array(state.pending.prefix(count))
                    state.pending.removeFirst(count)
                    state.pendingItems -= taken
                    return .batch(batch)
                }
                return state.closed ? .finished : .wait
            }
            switch step {
            case .batch(let batch): return batch
            case .finished: return nil
            case .wait:
                await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                    let resumeNow = state.withLock { state in
                        if !state.pending.isEmpty || state.closed { return true }
                        state.idleWorkers.append(continuation)
                        return false
                    }
                    if resumeNow { continuation.resume() }
                }
            }
        }
    }

    /// Items waiting for a batch.
    var pendingItems: Int {
        state.withLock { $0.pendingItems }
    }

    /// True once `close()` was called and no submission waits.
    var isClosedAndDrained: Bool {
        state.withLock { $0.closed && $0.pending.isEmpty }
    }

    /// Stops taking submissions and wakes idle workers so they drain and return.
    func close() {
        let idle = state.withLock { state in
            state.closed = true
            defer { state.idleWorkers.removeAll() }
            return state.idleWorkers
        }
        for worker in idle { worker.resume() }
    }
}

/// The ingest queue holds as many events as it may: commits are behind. Retry shortly.
public struct GroupCommitFullError: Error, CustomStringConvertible {
    public var limit: Int
    public var description: String { "too many events are waiting to be stored (at most \(limit)); retry shortly" }
}

/// The ingest queue is shutting down and takes no new work.
public struct GroupCommitClosedError: Error, CustomStringConvertible {
    public var description: String { "the server is shutting down and accepts no new events" }
}
