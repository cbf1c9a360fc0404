public import Foundation
public import Hummingbird
import NIOCore

/// `GET /openapi.json`: the OpenAPI 3.1 contract of every route Cairn serves, the document in
/// `Resources/openapi.json`. Every process serves it. A test checks that it names exactly the
/// routes the roles register.
public struct OpenAPIRoute: Sendable {
    /// The document's bytes, read once from the package's resources.
    public static let document: [UInt8] = {
        guard let url = Bundle.module.url(forResource: "openapi", withExtension: "json"), let data = try? Data(contentsOf: url) else {
            preconditionFailure("openapi.json is missing from CairnHTTP's resources")
        }
        return Array(data)
    }()

    public init() {}

    /// Registers `GET /openapi.json` on `router`.
    public func register<Context: RequestContext>(on router: Router<Context>) {
        router.get("/openapi.json") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "application/json"],
                body: ResponseBody(byteBuffer: ByteBuffer(bytes: Self.document)))
        }
    }
}
