public import Hummingbird
import NIOCore
public import Prometheus

/// `GET /metrics`: the process's Prometheus registry in the text exposition format.
public struct MetricsRoute: Sendable {
    let registry: PrometheusCollectorRegistry

    /// Creates the route over `registry`.
    public init(registry: PrometheusCollectorRegistry) {
        self.registry = registry
    }

    /// Registers `GET /metrics` on `router`.
    public func register<Context: RequestContext>(on router: Router<Context>) {
        router.get("/metrics") { _, _ in
            var bytes: [UInt8] = []
            bytes.reserveCapacity(4096)
            self.registry.emit(into: &bytes)
            return Response(
                status: .ok,
                headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes))
            )
        }
    }
}
