import CairnEngine
import Testing

struct StubProbe: ReadinessProbe {
    struct Down: Error, CustomStringConvertible { var description: String { "connection refused" } }
    enum Behaviour: Sendable { case up, down, hang }
    var name: String
    var behaviour: Behaviour

    func check() async throws {
        switch behaviour {
        case .up: return
        case .down: throw Down()
        case .hang: try await Task.sleep(for: .seconds(3600))
        }
    }
}

@Suite struct ReadinessTests {
    @Test func allUpIsReadyInProbeOrder() async {
        let readiness = Readiness(probes: [StubProbe(name: "postgres", behaviour: .up), StubProbe(name: "redis", behaviour: .up)])
        let results = await readiness.check()
        #expect(results == [ProbeResult(name: "postgres", failure: nil), ProbeResult(name: "redis", failure: nil)])
    }

    @Test func aFailingProbeSaysWhy() async {
        let readiness = Readiness(probes: [StubProbe(name: "postgres", behaviour: .up), StubProbe(name: "redis", behaviour: .down)])
        let results = await readiness.check()
        #expect(results[0].isReady)
        #expect(results[1] == ProbeResult(name: "redis", failure: "connection refused"))
    }

    @Test func aHangingProbeTimesOut() async {
        let readiness = Readiness(probes: [StubProbe(name: "redis", behaviour: .hang)], timeout: .milliseconds(50))
        let results = await readiness.check()
        #expect(results.count == 1)
        #expect(results[0].failure?.contains("did not answer within") == true)
    }
}
