public import AsyncHTTPClient
public import CairnEngine
import NIOCore
import NIOHTTP1

/// `SDKTransport` for apps served over HTTP: kept-alive connections per app host, shared by every
/// call the process makes to apps. Plain `http://` URLs go through `PlainHTTPClient`, the lean path
/// a step call takes; anything else (TLS, credentials in the URL) through async-http-client.
public struct HTTPSDKTransport: SDKTransport {
    let client: HTTPClient
    let plain: PlainHTTPClient

    /// Sends over `client` (its lifetime is the caller's; `HTTPClient.shared` by default).
    public init(client: HTTPClient = .shared) {
        self.client = client
        self.plain = .shared
    }

    public func send(_ request: SDKRequest) async throws -> SDKReply {
        let method = HTTPMethod(rawValue: request.method)
        let timeout = TimeAmount.milliseconds(Int64(request.timeout / .milliseconds(1)))
        var headers = HTTPHeaders()
        for (name, value) in request.headers { headers.add(name: name, value: value) }
        let body = ByteBuffer(bytes: request.body)
        if let target = PlainHTTPClient.Target(url: request.url) {
            let response = try await plain.execute(method: method, target: target, headers: headers, body: body, timeout: timeout)
            return SDKReply(status: response.status, headers: Self.lowercased(response.headers), body: Array(buffer: response.body))
        }
        var outgoing = HTTPClientRequest(url: request.url)
        outgoing.method = method
        outgoing.headers = headers
        outgoing.body = .bytes(body)
        let response = try await client.execute(outgoing, timeout: timeout)
        let collected = try await response.body.collect(upTo: plain.maxBodyBytes)
        return SDKReply(status: Int(response.status.code), headers: Self.lowercased(response.headers), body: Array(buffer: collected))
    }

    private static func lowercased(_ headers: HTTPHeaders) -> [String: String] {
        var result: [String: String] = [:]
        for header in headers { result[header.name.lowercased()] = header.value }
        return result
    }
}
