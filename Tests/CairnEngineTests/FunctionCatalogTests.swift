import CairnCore
import CairnEngine
import CairnTesting
import Foundation
import Testing

/// The scheduler's view of the live functions: reloaded from the registry when a function's
/// version changes, each trigger expression compiled once per version.
@Suite struct FunctionCatalogTests {
    static func registration(expression: String) throws -> AppRegistration {
        let function = #"{"id":"shop-a","name":"a","triggers":[{"event":"shop/a","expression":\#(JSONValue.string(expression).jsonString)}],"steps":{"step":{"id":"step","name":"step","runtime":{"type":"http","url":"http://127.0.0.1:9/api/inngest"}}}}"#
        let body = #"{"appname":"shop","url":"http://127.0.0.1:9/api/inngest","sdk":"py:v0.5.19","framework":"flask","v":"0.1","functions":[\#(function)]}"#
        return try AppRegistration(parsing: try JSONValue(parsing: body))
    }

    /// Whether the live trigger for `shop/a` accepts an event with `data.n == n`.
    static func matches(_ catalog: FunctionCatalog, n: Int) async throws -> Bool {
        let candidates = try await catalog.candidates(for: "shop/a")
        let event: JSONValue = ["name": "shop/a", "data": ["n": .number(JSONNumber(n))]]
        return try candidates.contains { try $0.expression?.evaluateBool(ExpressionActivation(event: event, nowMilliseconds: 0)) ?? true }
    }

    @Test func aResyncedExpressionReplacesTheCompiledOne() async throws {
        let registry = InMemoryAppRegistry()
        let clock = ManualClock()
        let catalog = FunctionCatalog(registry: registry, clock: clock, maximumAge: 1)
        _ = try await registry.sync(try Self.registration(expression: "event.data.n > 1"), at: clock.now)
        #expect(try await Self.matches(catalog, n: 2))
        #expect(try await !Self.matches(catalog, n: 0))

        // Reloads of the same version keep matching the same way.
        clock.advance(by: 2)
        #expect(try await Self.matches(catalog, n: 2))

        // A new version with another expression is compiled anew.
        _ = try await registry.sync(try Self.registration(expression: "event.data.n < 1"), at: clock.now)
        clock.advance(by: 2)
        #expect(try await Self.matches(catalog, n: 0))
        #expect(try await !Self.matches(catalog, n: 2))

        // Another sync at once is seen within maximumAge, not before.
        _ = try await registry.sync(try Self.registration(expression: "event.data.n == 5"), at: clock.now)
        #expect(try await !Self.matches(catalog, n: 5))
        clock.advance(by: 2)
        #expect(try await Self.matches(catalog, n: 5))
        #expect(await catalog.problems.isEmpty)

        // Unless asked to refresh: then a sync is seen at once.
        _ = try await registry.sync(try Self.registration(expression: "event.data.n == 6"), at: clock.now)
        try await catalog.refresh()
        #expect(try await Self.matches(catalog, n: 6))
    }
}
