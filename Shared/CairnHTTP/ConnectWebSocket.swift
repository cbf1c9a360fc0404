public import CairnConnect
public import Hummingbird
public import HummingbirdCore
import HummingbirdWebSocket
import HTTPTypes
import NIOCore
import NIOWebSocket
import Foundation

/// The gateway's listener: HTTP/1 for health and metrics, upgraded to a WebSocket at
/// `/v0/connect` for connect workers (docs/connect.md). The subprotocol the workers offer,
/// `v0.connect.inngest.com`, is selected; messages over `maximumMessageBytes` close the
/// connection with 1009. There are no WebSocket pings: the protocol's heartbeats, every 10 s,
/// already prove each side alive, and pings on top of them cost the gateway a third more CPU
/// per idle worker.
public enum ConnectWebSocket {
    static let subprotocol = "v0.connect.inngest.com"

    public static func server(hub: ConnectGatewayHub, maximumMessageBytes: Int) -> HTTPServerBuilder {
        let configuration = HTTP1WebSocketUpgradeChannel.Configuration(
            ws: WebSocketServerConfiguration(maxFrameSize: maximumMessageBytes, autoPing: .disabled))
        return .http1WebSocketUpgrade(configuration: configuration) { request, _, _ in
            guard request.path?.split(separator: "?").first == "/v0/connect" else { return .dontUpgrade }
            var headers = HTTPFields()
            let offered = request.headerFields[values: .secWebSocketProtocol].flatMap { $0.split(separator: ",") }
            if offered.contains(where: { $0.trimmingCharacters(in: .whitespaces) == subprotocol }) {
                headers[.secWebSocketProtocol] = subprotocol
            }
            return .upgrade(headers) { inbound, outbound, _ in
                let frames = inbound.messages(maxSize: maximumMessageBytes).map { message -> ConnectFrame in
                    switch message {
                    case .binary(let buffer): .binary(Array(buffer: buffer))
                    case .text: .text
                    }
                }
                try await hub.serve(frames, socket: Socket(outbound: outbound))
            }
        }
    }

    struct Socket: ConnectSocket {
        let outbound: WebSocketOutboundWriter

        func send(_ message: [UInt8]) async throws {
            try await outbound.write(.binary(ByteBuffer(bytes: message)))
        }

        func close(code: UInt16, reason: String) async {
            try? await outbound.close(WebSocketErrorCode(codeNumber: Int(code)), reason: reason)
        }
    }
}
