public import AsyncHTTPClient
public import CairnEngine
import NIOCore
import NIOHTTP1

/// `SDKTransport` on async-http-client: kept-alive connections per app host, shared by every
/// call the process makes to apps.
public struct HTTPSDKTransport: SDKTransport {
    let client: HTTPClient

    /// Sends over `client` (its lifetime is the caller's; `HTTPClient.shared` by default).
    public init(client: HTTPClient = .shared) {
        self.client = client
    }

    public func send(_ request: SDKRequest) async throws -> SDKReply {
        var outgoing = HTTPClientRequest(url: request.url)
        outgoing.method = HTTPMethod(rawValue: request.method)
        for (name, value) in request.headers { outgoing.headers.add(name: name, value: value) }
        outgoing.body = .bytes(ByteBuffer(bytes: request.body))
        let timeout = TimeAmount.milliseconds(Int64(request.timeout / .milliseconds(1)))
        let response = try await client.execute(outgoing, timeout: timeout)
        var headers: [String: String] = [:]
        for header in response.headers { headers[header.name.lowercased()] = header.value }
        let body = try await response.body.collect(upTo: 8 * 1024 * 1024)
        return SDKReply(status: Int(response.status.code), headers: headers, body: Array(buffer: body))
    }
}
