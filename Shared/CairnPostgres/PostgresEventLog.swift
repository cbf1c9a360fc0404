public import CairnCore
public import CairnEngine
public import Foundation
public import Logging
public import PostgresNIO

/// `EventLog` on Postgres: tables `events` and `event_dedupe` (migration 0001).
///
/// `append` is one transaction: claim the dedupe keys (`INSERT … ON CONFLICT` that replaces
/// only an expired claim), look up the holders of the keys not claimed, then insert the events
/// whose keys were claimed or that have none, with one multi-row insert. Two replicas claiming
/// the same key serialise on its row; the second sees the first's claim once it commits.
/// Payloads are stored as `json` text exactly as written.
public struct PostgresEventLog: EventLog {
    let client: BoundedPostgresClient
    let logger: Logger

    /// Creates the log on `client` (its pool must be running).
    /// Queries `database`'s pool; every call fails after its deadline (`BoundedPostgresClient`).
    public init(database: CairnPostgresDatabase, logger: Logger) {
        self.client = database.bounded
        self.logger = logger
    }

    public func append(_ events: [AcceptedEvent], dedupeUntil: Date, now: Date) async throws -> [AppendOutcome] {
        if events.isEmpty { return [] }
        if events.allSatisfy({ $0.dedupeKey == nil }) {
            // No keys to claim: one prepared multi-row insert. Still in a transaction: a lone
            // statement is reported done before its commit, and these events are acknowledged
            // once this returns; a COMMIT answers only once committed.
            var columns = EventColumns()
            for event in events { columns.append(event) }
            let inserted = try await client.withTransaction(logger: logger) { [columns] connection in
                try await Self.inserted(try await connection.execute(InsertEvents(columns: columns), logger: logger))
            }
            return events.map { inserted.contains($0.id.description) ? .stored : .duplicate(of: $0.id) }
        }
        return try await client.withTransaction(logger: logger) { connection in
            var holders: [String: String] = [:]
            let keyed = events.compactMap(\.dedupeKey)
            if !keyed.isEmpty {
                let expiries = [Date](repeating: dedupeUntil, count: keyed.count)
                let ids = events.filter { $0.dedupeKey != nil }.map(\.id.description)
                let claimed = try await connection.query("""
                    INSERT INTO event_dedupe (external_id, event_id, expires_at)
                    SELECT * FROM unnest(\(keyed)::text[], \(ids)::text[], \(expiries)::timestamptz[])
                    ON CONFLICT (external_id) DO UPDATE
                        SET event_id = EXCLUDED.event_id, expires_at = EXCLUDED.expires_at
                        WHERE event_dedupe.expires_at <= \(now)
                    RETURNING external_id
                    """, logger: logger)
                var won = Set<String>()
                for try await key in claimed.decode(String.self) { won.insert(key) }
                let lost = keyed.filter { !won.contains($0) }
                if !lost.isEmpty {
                    let rows = try await connection.query(
                        "SELECT external_id, event_id FROM event_dedupe WHERE external_id = ANY(\(lost))", logger: logger)
                    for try await (key, holder) in rows.decode((String, String).self) { holders[key] = holder }
                }
            }

            var outcomes: [AppendOutcome] = []
            outcomes.reserveCapacity(events.count)
            var columns = EventColumns()
            for event in events {
                if let key = event.dedupeKey, let holderText = holders[key] {
                    guard let holder = ULID(holderText) else {
                        throw PostgresEventLogError(detail: "event_dedupe holds a malformed event id \(holderText) for \(key)")
                    }
                    outcomes.append(.duplicate(of: holder))
                } else {
                    columns.append(event)
                    outcomes.append(.stored)
                }
            }
            if !columns.ids.isEmpty {
                let inserted = try await Self.inserted(try await connection.execute(InsertEvents(columns: columns), logger: logger))
                for index in events.indices where outcomes[index] == .stored && !inserted.contains(events[index].id.description) {
                    outcomes[index] = .duplicate(of: events[index].id)
                }
            }
            return outcomes
        }
    }

    /// The ids an `InsertEvents` wrote (an id already stored is skipped).
    private static func inserted<Rows: AsyncSequence>(_ rows: Rows) async throws -> Set<String> where Rows.Element == String {
        var ids = Set<String>()
        for try await id in rows { ids.insert(id) }
        return ids
    }

    public func markPublished(_ ids: [ULID], at: Date) async throws {
        if ids.isEmpty { return }
        let texts = ids.map(\.description)
        try await client.query(
            "UPDATE events SET published_at = \(at) WHERE id = ANY(\(texts)) AND published_at IS NULL", logger: logger)
    }

    public func unpublished(receivedBefore: Date, limit: Int) async throws -> [AcceptedEvent] {
        try await select("""
            SELECT id, name, external_id, ts, payload::text, (extract(epoch FROM received_at) * 1000)::int8
            FROM events WHERE published_at IS NULL AND received_at < \(receivedBefore)
            ORDER BY id LIMIT \(limit)
            """)
    }

    public func event(id: ULID) async throws -> AcceptedEvent? {
        try await select("""
            SELECT id, name, external_id, ts, payload::text, (extract(epoch FROM received_at) * 1000)::int8
            FROM events WHERE id = \(id.description)
            """).first
    }

    public func events(ids: [ULID]) async throws -> [AcceptedEvent] {
        if ids.isEmpty { return [] }
        return try await select("""
            SELECT id, name, external_id, ts, payload::text, (extract(epoch FROM received_at) * 1000)::int8
            FROM events WHERE id = ANY(\(ids.map(\.description)))
            """)
    }

    public func events(name: String?, before: ULID?, limit: Int) async throws -> [AcceptedEvent] {
        let name = name ?? ""
        let before = before?.description ?? ""
        return try await select("""
            SELECT id, name, external_id, ts, payload::text, (extract(epoch FROM received_at) * 1000)::int8
            FROM events
            WHERE (\(name) = '' OR name = \(name)) AND (\(before) = '' OR id < \(before))
            ORDER BY id DESC LIMIT \(limit)
            """)
    }

    public func events(named name: String, after: ULID, limit: Int) async throws -> [AcceptedEvent] {
        try await select("""
            SELECT id, name, external_id, ts, payload::text, (extract(epoch FROM received_at) * 1000)::int8
            FROM events WHERE name = \(name) AND id > \(after.description)
            ORDER BY id LIMIT \(limit)
            """)
    }

    public func invokedEvents(correlationIDs: [String]) async throws -> [AcceptedEvent] {
        if correlationIDs.isEmpty { return [] }
        // Served by the partial index events_invoked (migration 0014).
        return try await select("""
            SELECT id, name, external_id, ts, payload::text, (extract(epoch FROM received_at) * 1000)::int8
            FROM events
            WHERE name = 'inngest/function.invoked' AND payload #>> '{data,_inngest,correlation_id}' = ANY(\(correlationIDs))
            """)
    }

    public func markRouted(_ ids: [ULID]) async throws {
        if ids.isEmpty { return }
        let texts = ids.map(\.description)
        try await client.query(
            "UPDATE events SET routed_at = clock_timestamp() WHERE id = ANY(\(texts)) AND routed_at IS NULL", logger: logger)
    }

    public func unrouted(after: ULID?, limit: Int) async throws -> [AcceptedEvent] {
        try await select("""
            SELECT id, name, external_id, ts, payload::text, (extract(epoch FROM received_at) * 1000)::int8
            FROM events WHERE routed_at IS NULL AND id > \(after?.description ?? "")
            ORDER BY id LIMIT \(limit)
            """)
    }

    private func select(_ query: PostgresQuery) async throws -> [AcceptedEvent] {
        let rows = try await client.query(query, logger: logger)
        var events: [AcceptedEvent] = []
        for try await (id, name, externalID, ts, payload, receivedAt) in rows.decode((String, String, String?, Int64, String, Int64).self) {
            guard let ulid = ULID(id) else { throw PostgresEventLogError(detail: "events holds a malformed id \(id)") }
            let value = try JSONValue(parsing: payload)
            events.append(AcceptedEvent(id: ulid, name: name, dedupeKey: externalID, ts: ts, payload: value, receivedAt: receivedAt))
        }
        return events
    }
}

/// Column arrays for one multi-row insert into `events`.
struct EventColumns: Sendable {
    var ids: [String] = []
    var names: [String] = []
    var externalIDs: [String] = []
    var timestamps: [Int64] = []
    var payloads: [String] = []
    var receivedAt: [Int64] = []

    mutating func append(_ event: AcceptedEvent) {
        ids.append(event.id.description)
        names.append(event.name)
        // Validation never lets an empty `id` through, so '' safely stands for "none".
        externalIDs.append(event.dedupeKey ?? "")
        timestamps.append(event.ts)
        payloads.append(event.payload.jsonString)
        receivedAt.append(event.receivedAt)
    }

    /// The insert of the events bound as six arrays from parameter `$first` on (see `bind`),
    /// each once, only `when` that condition holds; it returns each new event's id.
    static func insert(from first: Int, when condition: String? = nil) -> String {
        let arrays = zip(first..<(first + 6), ["text", "text", "text", "int8", "text", "int8"]).map { "$\($0)::\($1)[]" }
        return """
            INSERT INTO events (id, name, external_id, ts, payload, received_at)
            SELECT id, name, NULLIF(external_id, ''), ts, payload::json, to_timestamp(received_ms / 1000.0)
            FROM unnest(\(arrays.joined(separator: ", "))) AS t(id, name, external_id, ts, payload, received_ms)
            \(condition.map { "WHERE \($0)" } ?? "")
            ON CONFLICT (id) DO NOTHING
            RETURNING id
            """
    }

    /// Appends the six arrays, in the order `unnest` reads them (id, name, external id, ts,
    /// payload, received ms).
    func bind(to bindings: inout PostgresBindings) {
        bindings.append(ids)
        bindings.append(names)
        bindings.append(externalIDs)
        bindings.append(timestamps)
        bindings.append(payloads)
        bindings.append(receivedAt)
    }
}

/// The multi-row insert of a batch of events, prepared once per connection. An event whose
/// internal id is already stored is skipped; the ids written come back.
struct InsertEvents: PostgresPreparedStatement {
    static let sql = EventColumns.insert(from: 1)
    typealias Row = String

    var columns: EventColumns

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 6)
        columns.bind(to: &bindings)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> String {
        try row.decode(String.self)
    }
}

/// The events tables hold something Cairn never writes.
public struct PostgresEventLogError: Error, CustomStringConvertible {
    /// What was found.
    public var detail: String
    public var description: String { "event log: \(detail)" }
}
