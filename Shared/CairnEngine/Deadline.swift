import Synchronization

/// An operation did not finish within its deadline. It may still be under way (a request
/// written to a connection that closed at that moment, whose reply never comes); the caller
/// goes on as after any failure of that operation.
public struct DeadlineExceeded: Error, CustomStringConvertible {
    /// What was being done, e.g. "a Postgres query".
    public var operation: String
    public var limit: Duration
    public var description: String { "\(operation) did not finish within \(limit)" }
}

/// Runs `body` and returns its result, or throws `DeadlineExceeded` once `limit` has passed,
/// whichever comes first.
///
/// Unlike a task group, this returns at the deadline even when `body` ignores cancellation and
/// never finishes: a client library can lose a request on a connection that dies at the wrong
/// moment, and nothing must wait on it forever (a drive waiting so would keep renewing its
/// lease and hold its run hostage). `body` is then cancelled and left behind. Cancelling the
/// caller cancels `body`.
public func withDeadline<T: Sendable>(
    _ limit: Duration, _ operation: @autoclosure () -> String, _ body: @escaping @Sendable () async throws -> T
) async throws -> T {
    let race = DeadlineRace<T>()
    let exceeded = DeadlineExceeded(operation: operation(), limit: limit)
    return try await withTaskCancellationHandler {
        try await withCheckedThrowingContinuation { continuation in
            race.start(continuation, work: Task {
                do { race.finish(.success(try await body())) } catch { race.finish(.failure(error)) }
            }, timer: Task {
                do { try await Task.sleep(for: limit) } catch { return }
                race.finish(.failure(exceeded))
            })
        }
    } onCancel: {
        race.cancel()
    }
}

/// The first of `body` and the timer to finish resumes the caller; the other is cancelled.
/// Either may finish before `start` has the continuation: the result waits for it.
final class DeadlineRace<T: Sendable>: Sendable {
    private struct State {
        var continuation: CheckedContinuation<T, any Error>?
        var tasks: [Task<Void, Never>] = []
        var result: Result<T, any Error>?
        var resumed = false
        var cancelled = false
    }

    private let state = Mutex(State())

    func start(_ continuation: CheckedContinuation<T, any Error>, work: Task<Void, Never>, timer: Task<Void, Never>) {
        let (early, cancel) = state.withLock { state -> (Result<T, any Error>?, Bool) in
            if let result = state.result {
                state.resumed = true
                return (result, false)
            }
            state.continuation = continuation
            state.tasks = [work, timer]
            return (nil, state.cancelled)
        }
        if let early {
            work.cancel()
            timer.cancel()
            continuation.resume(with: early)
        } else if cancel {
            work.cancel()
        }
    }

    func finish(_ result: Result<T, any Error>) {
        let (continuation, tasks) = state.withLock { state -> (CheckedContinuation<T, any Error>?, [Task<Void, Never>]) in
            if state.result != nil || state.resumed { return (nil, []) }
            state.result = result
            guard let continuation = state.continuation else { return (nil, []) }
            state.resumed = true
            defer { state.continuation = nil; state.tasks = [] }
            return (continuation, state.tasks)
        }
        guard let continuation else { return }
        for task in tasks { task.cancel() }
        continuation.resume(with: result)
    }

    func cancel() {
        let work = state.withLock { state -> Task<Void, Never>? in
            state.cancelled = true
            return state.tasks.first
        }
        // Only the work: its cancellation error (or its result) finishes the race.
        work?.cancel()
    }
}
