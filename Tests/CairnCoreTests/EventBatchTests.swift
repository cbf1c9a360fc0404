import CairnCore
import Testing

@Suite struct EventBatchTests {
    @Test func singleObjectAndArrayBodies() throws {
        let one = try EventBatch.decode(Array(#"{"name":"app/a","data":{"x":1}}"#.utf8))
        #expect(one.map(\.name) == ["app/a"])
        let many = try EventBatch.decode(Array(#"[{"name":"app/a"},{"name":"app/b","id":"k"}]"#.utf8))
        #expect(many.map(\.name) == ["app/a", "app/b"])
        #expect(many[1].id == "k")
        #expect(try EventBatch.decode(Array("[]".utf8)).isEmpty)
    }

    @Test(arguments: [
        ("{", "body: must be JSON"),
        ("42", "body: must be an event object or an array of events, got 42"),
        (#"[{"name":"a"},7]"#, "events[1]: must be an object"),
        (#"[{"name":"a"},{"data":{}}]"#, "events[1].name: required"),
        (#"{"name":"inngest/function.failed"}"#, "event.name: must not start with \"inngest/\""),
        (#"[{"name":"a","ts":"tomorrow"}]"#, "events[0].ts: must be integer milliseconds, got \"tomorrow\""),
        (#"[{"name":"a","data":[1]}]"#, "events[0].data: must be an object"),
    ])
    func rejectsWithTheFieldAndRule(body: String, message: String) {
        #expect {
            _ = try EventBatch.decode(Array(body.utf8))
        } throws: { error in
            String(describing: error).hasPrefix(message)
        }
    }

    @Test func atMostFiveThousandEvents() throws {
        let element = #"{"name":"a"}"#
        let ok = "[" + Array(repeating: element, count: 5_000).joined(separator: ",") + "]"
        #expect(try EventBatch.decode(Array(ok.utf8)).count == 5_000)
        let tooMany = "[" + Array(repeating: element, count: 5_001).joined(separator: ",") + "]"
        #expect(throws: EventBatchError.tooManyEvents(count: 5_001)) { try EventBatch.decode(Array(tooMany.utf8)) }
    }

    @Test func acceptedEventFillsServerDefaults() throws {
        let id = try ULID(parsing: "01HF7YAT000000000000000001")
        let bare = AcceptedEvent(Event(name: "app/a"), id: id, receivedAt: 1_700_000_000_123)
        #expect(bare.payload.jsonString == #"{"name":"app/a","data":{},"id":"01HF7YAT000000000000000001","ts":1700000000123,"user":{}}"#)
        #expect(bare.dedupeKey == nil)
        #expect(bare.ts == 1_700_000_000_123)

        let given = AcceptedEvent(Event(name: "app/a", id: "mine", ts: 1_600_000_000_000), id: id, receivedAt: 1_700_000_000_123)
        #expect(given.payload["id"] == "mine")
        #expect(given.dedupeKey == "mine")
        #expect(given.ts == 1_600_000_000_000)
    }

    @Test func earlierDuplicatesPointAtTheFirstHolder() throws {
        let keys: [String?] = ["a", nil, "b", "a", nil, "b", "a"]
        let events = keys.enumerated().map { index, key in
            AcceptedEvent(Event(name: "n", id: key), id: ULID(milliseconds: 1, entropy: [UInt8](repeating: UInt8(index), count: 10)), receivedAt: 0)
        }
        #expect(EventDedupe.earlierDuplicates(in: events) == [nil, nil, nil, 0, nil, 2, 0])
    }

    /// Two requests resent with one `x-inngest-event-id-seed` carry the same internal ids.
    @Test func anEventWithAnInternalIDSeenEarlierIsADuplicate() throws {
        let seed = try #require(ULIDSeed(header: "1700000000000,AAAAAAAAAAAAAA=="))
        let first = [Event(name: "n"), Event(name: "n", id: "k")].enumerated().map { AcceptedEvent($1, id: seed.ulid(forIndex: $0 + 1), receivedAt: 0) }
        #expect(EventDedupe.earlierDuplicates(in: first + first) == [nil, nil, 0, 1])
    }

    @Test(arguments: [
        (Int64(0), "1970-01-01T00:00:00.000Z"),
        (1_700_000_000_123, "2023-11-14T22:13:20.123Z"),
        (951_782_400_000, "2000-02-29T00:00:00.000Z"),
        (4_102_444_799_999, "2099-12-31T23:59:59.999Z"),
        (-1, "1969-12-31T23:59:59.999Z"),
    ])
    func rfc3339(milliseconds: Int64, text: String) {
        #expect(RFC3339.format(milliseconds: milliseconds) == text)
    }
}
