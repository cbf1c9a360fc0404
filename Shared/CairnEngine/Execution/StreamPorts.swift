public import Foundation
/// One entry delivered from a stream consumer group.
public struct StreamDelivery: Sendable {
    /// The stream's entry id, for acknowledging.
    public var entryID: String
    /// The entry's fields.
    public var fields: [String: [UInt8]]

    public init(entryID: String, fields: [String: [UInt8]]) {
        self.entryID = entryID
        self.fields = fields
    }

    /// When the entry was added, read from a Redis stream id (`<milliseconds>-<sequence>`);
    /// nil for ids of another form.
    public var published: Date? {
        guard let dash = entryID.firstIndex(of: "-"), let milliseconds = UInt64(entryID[..<dash]) else { return nil }
        return Date(timeIntervalSince1970: Double(milliseconds) / 1_000)
    }
}

/// A stream read through a consumer group (Redis `XREADGROUP`): at-least-once delivery, so
/// consumers are idempotent; entries not acknowledged are delivered again to some consumer
/// after they have been idle a while.
public protocol StreamSource: Sendable {
    /// Up to `maximum` entries: first any left idle too long by a consumer that died, then new
    /// ones, waiting a short while for them. Empty when none arrived.
    func read(maximum: Int) async throws -> [StreamDelivery]

    /// Marks entries handled.
    func acknowledge(_ entryIDs: [String]) async throws
}
