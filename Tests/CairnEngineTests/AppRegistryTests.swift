import CairnTesting
import Testing

/// The registry contract on the in-memory registry the route tests use.
@Suite struct InMemoryAppRegistryTests {
    @Test func syncAddsChangesAndArchives() async throws {
        try await AppRegistryContract.syncAddsChangesAndArchives(InMemoryAppRegistry())
    }

    @Test func slugsBelongToOneApp() async throws {
        try await AppRegistryContract.slugsBelongToOneApp(InMemoryAppRegistry())
    }
}
