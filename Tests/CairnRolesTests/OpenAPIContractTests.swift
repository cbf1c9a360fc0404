import CairnCore
import CairnEngine
import CairnHTTP
import CairnRoles
import Logging
import Testing

/// The OpenAPI document served at `/openapi.json` names exactly the routes Cairn serves: a
/// route missing from it, or a route it names that does not exist, fails this test.
@Suite struct OpenAPIContractTests {
    /// `METHOD /path/{parameter}` for every operation in the document.
    static func documented() throws -> [String] {
        let document = try JSONValue(parsing: OpenAPIRoute.document)
        let methods: Set<String> = ["get", "put", "post", "delete", "patch", "head", "options"]
        var operations: [String] = []
        for (path, item) in document["paths"]?.objectValue?.members ?? [] {
            for (method, _) in item.objectValue?.members ?? [] where methods.contains(method) {
                operations.append("\(method.uppercased()) \(path)")
            }
        }
        return operations.sorted()
    }

    @Test func theDocumentNamesExactlyTheRoutesServed() throws {
        let configuration = try CairnConfiguration(environment: [
            "CAIRN_POSTGRES_URL": "postgres://cairn@127.0.0.1:1/cairn", "CAIRN_REDIS_URL": "redis://127.0.0.1:1/0", "CAIRN_DEV": "1",
        ])
        let served = CairnProcess(roles: Role.allCases, configuration: configuration, logger: Logger(label: "test")).routes()
        let documented = try Self.documented()
        #expect(served.count > 10)
        #expect(Set(served).subtracting(documented).sorted() == [], "served but not in openapi.json")
        #expect(Set(documented).subtracting(served).sorted() == [], "in openapi.json but not served")
    }

    @Test func theDocumentIsOpenAPI31() throws {
        let document = try JSONValue(parsing: OpenAPIRoute.document)
        #expect(document["openapi"] == "3.1.0")
        #expect(document["info"]?["title"] == "Cairn")
    }
}
