import CairnEngine
import Synchronization

/// Hand-offs between a connect gateway and an executor in the same process (`cairn dev`, or
/// both roles in one process): a request for a connection this process's gateway holds goes to
/// it directly instead of through the gateway's Redis inbox, and the worker's ack and reply come
/// back directly instead of through the executor's. The slot and the lease are still taken in
/// Redis, so capacity, lease extension and a second gateway's view are as for any call; what
/// is skipped is only the two inboxes, which a crash of this process would lose anyway along
/// with both ends of the call (docs/connect.md, "Routing").
public final class ConnectLocalExchange: Sendable {
    private let gateways = Mutex<[String: ConnectGatewayHub]>([:])
    /// The local calls waiting for their worker, by request id.
    private let calls = Mutex<[String: ConnectTransport]>([:])

    public init() {}

    /// Makes `hub`'s connections reachable from this process's executors.
    func register(_ hub: ConnectGatewayHub) {
        gateways.withLock { $0[hub.gatewayID] = hub }
    }

    /// The gateway `id`, if it runs in this process.
    func gateway(_ id: String) -> ConnectGatewayHub? {
        gateways.withLock { $0[id] }
    }

    /// Notes that `transport` waits for request `requestID`, forwarded to a local gateway.
    func expect(_ requestID: String, by transport: ConnectTransport) {
        calls.withLock { $0[requestID] = transport }
    }

    /// The call no longer waits.
    func forget(_ requestID: String) {
        _ = calls.withLock { $0.removeValue(forKey: requestID) }
    }

    /// Hands `notice` to the local call waiting for its request; false when none is (the call
    /// came from another process, or has ended).
    func deliver(_ notice: ConnectInboxNotice) -> Bool {
        guard let transport = calls.withLock({ $0[notice.requestID] }) else { return false }
        transport.receive(notice)
        return true
    }
}
