import CairnCore
import CairnEngine
import CairnTesting
import Foundation
import Testing

/// The in-memory run store keeps the run store contract, so engine tests on it mean what they
/// would on Postgres.
@Suite struct InMemoryRunStoreTests {
    @Test(arguments: RunStoreContract.checks.map(\.name))
    func contract(_ name: String) async throws {
        let check = try #require(RunStoreContract.checks.first { $0.name == name })
        let clock = ManualClock()
        let registry = InMemoryAppRegistry()
        let log = InMemoryEventLog()
        let store = InMemoryRunStore(registry: registry, eventLog: log, clock: clock)
        try await check.run(try await RunStoreFixture.make(store: store, registry: registry, eventLog: log, t0: clock.now))
    }
}
