public import AsyncHTTPClient
public import CairnCore
import Foundation
import NIOCore
import NIOHTTP1

/// A client for Cairn's own control-plane API, for the `cairn` CLI and tests.
///
/// Outside dev mode it authenticates as SDKs do, with the hashed signing key.
public struct CairnAPIClient: Sendable {
    /// The API's origin, e.g. `http://127.0.0.1:8288`.
    public let origin: String
    let key: SigningKey?
    let client: HTTPClient

    public init(origin: String, key: SigningKey?, client: HTTPClient = .shared) {
        self.origin = origin.hasSuffix("/") ? String(origin.dropLast()) : origin
        self.key = key
        self.client = client
    }

    /// The status and JSON body of a reply.
    public struct Reply: Sendable {
        public var status: Int
        public var body: JSONValue
    }

    /// `POST /v1/apps/sync {"url": url}`: asks Cairn to sync the app served at `url`.
    public func requestSync(url: String) async throws -> Reply {
        try await send("POST", "/v1/apps/sync", body: JSONValue.object(["url": .string(url)]).serialized())
    }

    /// `GET path`.
    public func get(_ path: String) async throws -> Reply {
        try await send("GET", path, body: nil)
    }

    /// `method path` with an optional body, JSON unless `contentType` says otherwise.
    public func send(_ method: String, _ path: String, body: [UInt8]? = nil, contentType: String = "application/json") async throws -> Reply {
        var request = HTTPClientRequest(url: origin + path)
        request.method = HTTPMethod(rawValue: method)
        if let key { request.headers.add(name: "authorization", value: "Bearer \(key.hashed)") }
        if let body {
            request.headers.add(name: "content-type", value: contentType)
            request.body = .bytes(ByteBuffer(bytes: body))
        }
        let response = try await client.execute(request, timeout: .seconds(60))
        let bytes = try await response.body.collect(upTo: 64 * 1024 * 1024)
        let text = Array(buffer: bytes)
        let value = (try? JSONValue(parsing: text)) ?? .string(String(decoding: text, as: UTF8.self))
        return Reply(status: Int(response.status.code), body: value)
    }
}
