import CairnEngine
import Synchronization
import Testing

/// `withDeadline` returns at the deadline even when the work never does.
@Suite struct DeadlineTests {
    struct Failed: Error {}

    /// A continuation parked until the test lets it go: work that ignores cancellation.
    final class Parked: Sendable {
        private let state = Mutex<(released: Bool, waiting: CheckedContinuation<Void, Never>?)>((false, nil))

        func wait() async {
            await withCheckedContinuation { continuation in
                let resumeNow = state.withLock { state -> Bool in
                    if state.released { return true }
                    state.waiting = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        }

        func release() {
            state.withLock { state -> CheckedContinuation<Void, Never>? in
                state.released = true
                return state.waiting.take()
            }?.resume()
        }
    }

    @Test func theWorksResultWhenItFinishesFirst() async throws {
        #expect(try await withDeadline(.seconds(60), "work") { 42 } == 42)
        await #expect(throws: Failed.self) { try await withDeadline(.seconds(60), "work") { throw Failed() } }
    }

    @Test func workThatNeverFinishesFailsAtTheDeadline() async throws {
        let parked = Parked()
        defer { parked.release() }
        await #expect {
            try await withDeadline(.milliseconds(100), "the parked work") { await parked.wait() }
        } throws: { error in
            (error as? DeadlineExceeded)?.description == "the parked work did not finish within 0.1 seconds"
        }
    }

    @Test func cancellingTheCallerCancelsTheWork() async throws {
        let started = Parked()
        let caller = Task {
            try await withDeadline(.seconds(60), "work") {
                started.release()
                try await Task.sleep(for: .seconds(60))
            }
        }
        await started.wait()
        caller.cancel()
        await #expect(throws: CancellationError.self) { try await caller.value }
    }
}
