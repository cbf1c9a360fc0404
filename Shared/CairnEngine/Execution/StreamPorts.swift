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
