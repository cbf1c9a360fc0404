/// One operation an SDK reports in a 206 reply (docs/protocol.md §3).
///
/// Parsing accepts nulls and ignores unknown keys; op names match exactly or in lowercase.
public struct SDKOpcode: Sendable, Hashable {
    /// The kinds the server acts on. `unknown` keeps the name of one it does not know.
    public enum Kind: Sendable, Hashable {
        case none, step, stepRun, stepError, stepPlanned, sleep, waitForEvent, invokeFunction, aiGateway, gateway
        case waitForSignal, runComplete, stepFailed, syncRunComplete, discoveryRequest, deferAdd, deferAbort
        case unknown(String)

        static let names: [String: Kind] = [
            "none": .none, "step": .step, "steprun": .stepRun, "steperror": .stepError, "stepplanned": .stepPlanned,
            "sleep": .sleep, "waitforevent": .waitForEvent, "invokefunction": .invokeFunction, "aigateway": .aiGateway,
            "gateway": .gateway, "waitforsignal": .waitForSignal, "runcomplete": .runComplete, "stepfailed": .stepFailed,
            "syncruncomplete": .syncRunComplete, "discoveryrequest": .discoveryRequest, "deferadd": .deferAdd,
            "deferabort": .deferAbort,
        ]

        init(name: String) {
            self = Self.names[name.lowercased()] ?? .unknown(name)
        }

        /// Ops that ride along with others and never need their own call.
        public var isLazy: Bool { self == .deferAdd || self == .deferAbort }
    }

    /// The hashed step id.
    public var id: String
    public var kind: Kind
    /// `displayName`, else `name`, else the id.
    public var displayName: String
    /// `name` as sent (Sleep and WaitForEvent carry their argument here).
    public var name: String?
    public var opts: JSONValue?
    public var data: JSONValue?
    public var error: JSONValue?

    /// Parses one op object; `index` names it in errors.
    public init(parsing value: JSONValue, index: Int) throws(SDKResponseError) {
        guard case .object(let object) = value else {
            throw SDKResponseError(reason: "ops[\(index)]: must be an object, got \(value.shortRendering)")
        }
        guard case .string(let id)? = object["id"], !id.isEmpty else {
            throw SDKResponseError(reason: "ops[\(index)].id: is required and must be a non-empty string")
        }
        guard case .string(let op)? = object["op"] else {
            throw SDKResponseError(reason: "ops[\(index)].op: is required and must be a string")
        }
        self.id = id
        self.kind = Kind(name: op)
        self.name = object["name"]?.stringValue
        self.displayName = object["displayName"]?.stringValue ?? name ?? id
        self.opts = object["opts"].flatMap { $0.isNull ? nil : $0 }
        self.data = object["data"]
        self.error = object["error"].flatMap { $0.isNull ? nil : $0 }
    }
}

/// An SDK reply the server cannot act on.
public struct SDKResponseError: Error, Sendable, Hashable, CustomStringConvertible {
    public var reason: String

    public init(reason: String) {
        self.reason = reason
    }
    public var description: String { reason }
}
