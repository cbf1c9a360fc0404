/// The connect gateway's timings, shared by the API, the gateways and the executors
/// (docs/connect.md lists each with its variable).
public struct ConnectSettings: Sendable, Hashable {
    /// How long a forwarded request's lease lasts before the worker must extend it
    /// (`CAIRN_CONNECT_LEASE_SECONDS`, default 120). A worker that stops extending — it died,
    /// or lost every connection for this long — fails the attempt, which is retried.
    public var leaseDuration: Duration = .seconds(120)
    /// How often workers heartbeat: the SDKs send every 10 s whatever they are told.
    public var heartbeatInterval: Duration = .seconds(10)
    /// A connection with no heartbeat for this long is closed by its gateway, and one whose
    /// registry record is this old is not routed to.
    public var heartbeatTimeout: Duration = .seconds(50)
    /// How long a call for a function with no connected worker (or none with a free slot)
    /// waits for one before it fails as not delivered, and the run tries the same attempt again
    /// after its backoff (`CAIRN_CONNECT_ROUTE_WAIT_SECONDS`, default 10).
    public var routeWait: Duration = .seconds(10)
    /// How long the executor waits for a worker to acknowledge a request before routing it
    /// again.
    public var ackTimeout: Duration = .seconds(10)
    /// How often a gateway records that it is alive; a gateway whose record is three times
    /// this old is taken for dead: no request is routed to it and no worker sent to it.
    public var gatewayHeartbeatInterval: Duration = .seconds(2)
    /// How long a draining gateway waits for its workers to move to another gateway before it
    /// closes their connections (`CAIRN_CONNECT_DRAIN_SECONDS`, default 20).
    public var drainTimeout: Duration = .seconds(20)
    /// The largest WebSocket message a gateway reads: 8 MiB, a 4 MiB output plus its request.
    public var maximumMessageBytes = 8 * 1024 * 1024
    /// How long a buffered reply waits for its executor.
    public var replyLifetime: Duration = .seconds(300)

    public init() {}

    /// The lease extension interval workers are told, in whole seconds (the Python SDK reads
    /// nothing else): a quarter of the lease, at least 1 s.
    public var extendInterval: String {
        "\(max(1, leaseDuration.components.seconds / 4))s"
    }

    /// How long a connection record lives without a heartbeat.
    var workerRecordLifetime: Duration { heartbeatInterval * 3 }
}
