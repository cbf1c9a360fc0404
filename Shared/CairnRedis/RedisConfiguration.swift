/// How a `RedisClient` connects and pools.
///
/// Contract: a plain value; `RedisClient.init` checks `poolSize >= 1` and
/// `maxIdleBlockingConnections >= 0` (violations are programmer errors and trap). Executables
/// validate their environment before building one, naming the variable at fault.
public struct RedisConfiguration: Sendable, Hashable {
    /// The server and credentials.
    public var url: RedisURL
    /// Connections in the shared pool that carry ordinary (non-blocking) commands, each
    /// pipelining. Default 8.
    public var poolSize: Int
    /// How long opening one connection may take, including `AUTH`/`SELECT`; also how long a
    /// command waits for a reconnecting pool before failing with `.connectionUnavailable`.
    /// Default 5 seconds.
    public var connectTimeout: Duration
    /// Delays between reconnect attempts after a connection dies. Default 50 ms doubling to 2 s,
    /// with jitter.
    public var reconnectBackoff: RedisReconnectBackoff
    /// Dedicated connections for blocking commands (`XREADGROUP ... BLOCK`) kept open between
    /// calls; more are opened on demand when several block at once and closed when returned
    /// beyond this number. Default 4.
    public var maxIdleBlockingConnections: Int
    /// Longest a command may wait for its reply; past it the connection is closed, which fails
    /// the command (and any other in flight on it) with the retryable `.connectionClosed`, and
    /// the pool opens a new one. A blocking command gets this beyond its block time. A reply
    /// lost to a connection that died silently can then never hold a caller forever.
    /// Default 10 seconds.
    public var commandTimeout: Duration = .seconds(10)
    /// Sent as `CLIENT SETNAME` on every connection so `CLIENT LIST` shows who is connected
    /// (e.g. `cairn-executor`); `nil` sends nothing. Must not contain spaces. Default `nil`.
    public var clientName: String?

    /// Creates a configuration; every parameter but `url` has the documented default.
    public init(
        url: RedisURL,
        poolSize: Int = 8,
        connectTimeout: Duration = .seconds(5),
        reconnectBackoff: RedisReconnectBackoff = RedisReconnectBackoff(),
        maxIdleBlockingConnections: Int = 4,
        clientName: String? = nil
    ) {
        self.url = url
        self.poolSize = poolSize
        self.connectTimeout = connectTimeout
        self.reconnectBackoff = reconnectBackoff
        self.maxIdleBlockingConnections = maxIdleBlockingConnections
        self.clientName = clientName
    }

    /// Creates a configuration from URL text (see `RedisURL` for the forms).
    ///
    /// - Throws: `RedisURLError` when the URL does not parse.
    public init(
        url: String,
        poolSize: Int = 8,
        connectTimeout: Duration = .seconds(5),
        reconnectBackoff: RedisReconnectBackoff = RedisReconnectBackoff(),
        maxIdleBlockingConnections: Int = 4,
        clientName: String? = nil
    ) throws(RedisURLError) {
        self.init(
            url: try RedisURL(url), poolSize: poolSize, connectTimeout: connectTimeout,
            reconnectBackoff: reconnectBackoff, maxIdleBlockingConnections: maxIdleBlockingConnections,
            clientName: clientName)
    }
}

/// Exponential backoff with jitter for reconnect attempts: a pure decision, no clock.
///
/// Contract:
/// - The first reconnect after a working connection dies is immediate (`failures == 0` → zero);
///   after `n >= 1` failed attempts the nominal delay is `initial * 2^(n-1)` capped at `maximum`.
/// - Jitter: the delay returned is uniformly drawn from `[nominal / 2, nominal]`, so a fleet of
///   clients that lost Redis together does not reconnect in lockstep.
/// - Defaults: `initial` 50 ms, `maximum` 2 s.
public struct RedisReconnectBackoff: Sendable, Hashable {
    /// The nominal delay after the first failed attempt. Default 50 ms.
    public var initial: Duration
    /// The cap on the nominal delay. Default 2 s.
    public var maximum: Duration

    /// Creates a backoff policy.
    ///
    /// - Precondition: `initial > .zero` and `maximum >= initial`.
    public init(initial: Duration = .milliseconds(50), maximum: Duration = .seconds(2)) {
        precondition(initial > .zero && maximum >= initial, "backoff needs 0 < initial <= maximum")
        self.initial = initial
        self.maximum = maximum
    }

    /// The delay before the next attempt after `failures` consecutive failed attempts.
    public func delay(afterFailures failures: Int, using generator: inout some RandomNumberGenerator) -> Duration {
        guard failures > 0 else { return .zero }
        let maximumNanoseconds = Self.nanoseconds(maximum)
        var nominal = Self.nanoseconds(initial)
        var doublings = failures - 1
        while doublings > 0, nominal < maximumNanoseconds {
            nominal *= 2
            doublings -= 1
        }
        nominal = min(nominal, maximumNanoseconds)
        let jittered = Int64.random(in: (nominal / 2)...nominal, using: &generator)
        return .nanoseconds(jittered)
    }

    /// The delay before the next attempt, with the system random generator.
    public func delay(afterFailures failures: Int) -> Duration {
        var generator = SystemRandomNumberGenerator()
        return delay(afterFailures: failures, using: &generator)
    }

    static func nanoseconds(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}

extension Duration {
    /// Whole milliseconds, rounded up so a positive duration never becomes 0 ms (for `PX`,
    /// `PEXPIRE`, `BLOCK` and `IDLE` arguments, where 0 means something else).
    var roundedUpMilliseconds: Int64 {
        let nanoseconds = RedisReconnectBackoff.nanoseconds(self)
        guard nanoseconds > 0 else { return 0 }
        return (nanoseconds + 999_999) / 1_000_000
    }
}
