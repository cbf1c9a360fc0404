/// A step the server performs for the function: `step.ai.infer` (op `AIGateway`) calls an AI
/// provider, `step.fetch` (op `Gateway`) makes an HTTP request; the response becomes the step's
/// result (docs/protocol.md §3). Pure: this builds the request from the op and reads the
/// response; the executor sends it.
public struct OutboundStep: Sendable, Hashable {
    public enum Kind: String, Sendable, Hashable {
        /// `step.ai.infer`: the result is the provider's JSON body.
        case aiInference
        /// `step.fetch`: the result is `{url, headers, body, status_code}`.
        case fetch
    }

    /// An HTTP request, in plain values.
    public struct Request: Sendable, Hashable {
        public var method: String
        public var url: String
        public var headers: [String: String]
        public var body: [UInt8]

        public init(method: String, url: String, headers: [String: String], body: [UInt8]) {
            self.method = method
            self.url = url
            self.headers = headers
            self.body = body
        }
    }

    /// What came back: a response, or why none did.
    public enum Response: Sendable, Hashable {
        case reply(status: Int, headers: [String: String], body: [UInt8])
        case noReply(String)
    }

    /// What the response means for the step.
    public enum Result: Sendable, Hashable {
        /// Record `memo` as the step's result.
        case recorded(memo: JSONValue)
        /// The request failed: try again if attempts remain, else record `memo` (the SDK raises
        /// it in the function).
        case failed(error: JSONValue, memo: JSONValue)
    }

    public var stepID: String
    public var name: String
    public var kind: Kind
    public var request: Request

    public init(stepID: String, name: String, kind: Kind, request: Request) {
        self.stepID = stepID
        self.name = name
        self.kind = kind
        self.request = request
    }

    /// The step an `AIGateway` or `Gateway` op asks for, or a message naming what is wrong with
    /// its options.
    public static func make(_ op: SDKOpcode) -> Swift.Result<OutboundStep, OutboundStepError> {
        let opts = op.opts ?? .object([:])
        guard let url = opts["url"]?.stringValue, !url.isEmpty else {
            return .failure(OutboundStepError(message: "\(op.displayName): opts.url is required"))
        }
        var headers: [String: String] = [:]
        switch op.kind {
        case .aiGateway:
            var target = url
            headers["Content-Type"] = "application/json"
            let key = opts["auth_key"]?.stringValue ?? ""
            // The provider's own way of taking the key.
            switch opts["format"]?.stringValue ?? "" {
            case "gemini": target = url + (url.contains("?") ? "&" : "?") + "key=" + percentEncoded(key)
            case "bedrock": headers["Authorization"] = key
            case "anthropic": headers["X-Api-Key"] = key
            default: headers["Authorization"] = "Bearer \(key)"
            }
            headers.merge(customHeaders(opts)) { $1 }
            let body = opts["body"].map { $0.serialized() } ?? Array("{}".utf8)
            return .success(OutboundStep(
                stepID: op.id, name: op.displayName, kind: .aiInference, request: Request(method: "POST", url: target, headers: headers, body: body)))
        case .gateway:
            headers = customHeaders(opts)
            let method = opts["method"]?.stringValue.flatMap { $0.isEmpty ? nil : $0.uppercased() } ?? "POST"
            let body = opts["body"]?.stringValue.map { Array($0.utf8) } ?? []
            return .success(OutboundStep(
                stepID: op.id, name: op.displayName, kind: .fetch, request: Request(method: method, url: url, headers: headers, body: body)))
        default:
            return .failure(OutboundStepError(message: "\(op.displayName): \(op.kind) is not a request the server makes"))
        }
    }

    /// What `response` means for the step.
    public func result(of response: Response) -> Result {
        switch (kind, response) {
        case (.aiInference, .reply(let status, _, let body)) where (200..<300).contains(status):
            return .recorded(memo: ["data": (try? JSONValue(parsing: body)) ?? .string(String(decoding: body, as: UTF8.self))])
        case (.aiInference, .reply(let status, _, let body)):
            let text = body.isEmpty ? #"{"error":"Error making AI request"}"# : String(decoding: body, as: UTF8.self)
            return failure(name: "AIGatewayError", message: "Error making AI request: unsuccessful status code: \(status)", stack: text)
        case (.aiInference, .noReply(let reason)):
            return failure(name: "AIGatewayError", message: "Error making AI request: \(reason)", stack: nil)
        case (.fetch, .reply(let status, let headers, let body)):
            let headerValues = JSONObject(members: headers.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) })
            return .recorded(memo: ["data": .object(JSONObject(members: [
                ("url", .string(request.url)), ("headers", .object(headerValues)),
                ("body", .string(String(decoding: body, as: UTF8.self))), ("status_code", .number(JSONNumber(status))),
            ]))])
        case (.fetch, .noReply(let reason)):
            return failure(name: "GatewayError", message: "Error making gateway request: \(reason)", stack: nil)
        }
    }

    private func failure(name: String, message: String, stack: String?) -> Result {
        var members: [(String, JSONValue)] = [("name", .string(name)), ("message", .string(message))]
        if let stack { members.append(("stack", .string(stack))) }
        let error = JSONValue.object(JSONObject(members: members))
        return .failed(error: error, memo: ["error": error])
    }

    /// The headers the SDK asks for (`opts.headers`), by canonical name; they override the
    /// server's own.
    static func customHeaders(_ opts: JSONValue) -> [String: String] {
        var headers: [String: String] = [:]
        for (name, value) in opts["headers"]?.objectValue?.members ?? [] {
            if let text = value.stringValue { headers[canonicalHeaderName(name)] = text }
        }
        return headers
    }

    /// A header name as Inngest's server sends it: each word capitalized (`x-api-key` →
    /// `X-Api-Key`). Names are case-insensitive, but some servers and tests compare them as
    /// written.
    static func canonicalHeaderName(_ name: String) -> String {
        name.lowercased().split(separator: "-", omittingEmptySubsequences: false)
            .map { $0.prefix(1).uppercased() + $0.dropFirst() }.joined(separator: "-")
    }

    static func percentEncoded(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                out += "%" + String(byte, radix: 16, uppercase: true).leftPadded(to: 2)
            }
        }
        return out
    }
}

/// An `AIGateway` or `Gateway` op whose options cannot make a request.
public struct OutboundStepError: Error, Sendable, Hashable {
    public var message: String
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
