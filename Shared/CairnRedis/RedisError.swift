/// An error from Redis or from talking to it.
///
/// Contract:
/// - `code` says what kind of failure it is; `isRetryable` says whether the same command may
///   succeed if sent again (connection-level failures). Whether to retry is the caller's decision:
///   a command that failed with a retryable error may or may not have run on the server.
/// - For `.server` errors, `message` is Redis's own text, unchanged (`ERR unknown command ...`,
///   `NOSCRIPT No matching script. Please use EVAL.`, `BUSYGROUP Consumer Group name already
///   exists`), and `description` is that text too. `serverErrorPrefix` is its first word.
/// - Other codes have a `message` that says what was attempted and why it failed.
/// - `command` names the command (its first argument, upper-cased) when one was involved.
public struct RedisError: Error, Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible {
    /// The kind of failure.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Base: String, Sendable, Hashable {
            case server, connectionClosed, connectFailed, connectionUnavailable, protocolError,
                unexpectedReply, clientShutdown
        }

        private let base: Base

        private init(_ base: Base) {
            self.base = base
        }

        /// Redis answered with an error reply; `message` is its text. Not retryable as such.
        public static let server = Code(.server)
        /// The connection closed (or was killed) while the command was queued or in flight.
        /// Retryable: the command may or may not have run.
        public static let connectionClosed = Code(.connectionClosed)
        /// Opening a connection failed: TCP/unix connect, timeout, or `AUTH`/`SELECT` refused.
        /// Retryable.
        public static let connectFailed = Code(.connectFailed)
        /// No pooled connection became ready within the connect timeout while the pool was
        /// reconnecting. Retryable.
        public static let connectionUnavailable = Code(.connectionUnavailable)
        /// The bytes from the server were not valid RESP; the connection is closed. Retryable
        /// (a fresh connection starts a fresh parse).
        public static let protocolError = Code(.protocolError)
        /// A reply did not have the shape the typed call expects (a programming or version
        /// mismatch). Not retryable.
        public static let unexpectedReply = Code(.unexpectedReply)
        /// The client was shut down; no further commands are accepted. Not retryable.
        public static let clientShutdown = Code(.clientShutdown)

        /// The code's name, e.g. `connectionClosed`.
        public var description: String { base.rawValue }
    }

    /// The kind of failure.
    public var code: Code
    /// Redis's text for `.server`; otherwise what was attempted and why it failed.
    public var message: String
    /// The command involved, upper-cased (`XADD`), if any.
    public var command: String?

    /// Creates an error.
    public init(code: Code, message: String, command: String? = nil) {
        self.code = code
        self.message = message
        self.command = command
    }

    /// Whether sending the same command again may succeed (connection-level failures).
    public var isRetryable: Bool {
        code == .connectionClosed || code == .connectFailed || code == .connectionUnavailable
            || code == .protocolError
    }

    /// For `.server` errors, the first word of Redis's text (`ERR`, `NOSCRIPT`, `BUSYGROUP`,
    /// `WRONGTYPE`, ...); `nil` otherwise.
    public var serverErrorPrefix: String? {
        guard code == .server else { return nil }
        return message.split(separator: " ", maxSplits: 1).first.map(String.init)
    }

    /// Redis's text for server errors; otherwise the message prefixed with the command.
    public var description: String {
        if code == .server { return message }
        if let command { return "redis \(command): \(message)" }
        return "redis: \(message)"
    }

    /// The code, command and message.
    public var debugDescription: String {
        "RedisError(code: \(code), command: \(command ?? "-"), message: \(message))"
    }

    static func server(_ text: String, command: String?) -> RedisError {
        RedisError(code: .server, message: text, command: command)
    }

    static func unexpected(_ reply: RESPValue, expected: String, command: String) -> RedisError {
        RedisError(
            code: .unexpectedReply, message: "expected \(expected), got \(reply.summary)", command: command)
    }
}
