import Logging
import NIOCore

/// Turns the bytes a Redis connection reads into `RESPValue`s with hiredis's reader.
///
/// Contract:
/// - Emits one `RESPValue` per complete reply, in arrival order; a reply split over many reads
///   is emitted once its last byte arrives.
/// - Bytes that are not RESP: fires `RedisError(code: .protocolError)` down the pipeline,
///   closes the channel and ignores anything read afterwards.
/// - Frees the hiredis reader when the channel goes inactive or the handler is removed.
/// - Event-loop bound, like every channel handler.
final class RESPReplyDecoder: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = RESPValue

    private var reader: RESPReader? = RESPReader()

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        guard let reader else { return }
        do {
            try buffer.withUnsafeReadableBytes { bytes in try reader.feed(bytes) }
            while let value = try reader.next() {
                context.fireChannelRead(wrapInboundOut(value))
            }
        } catch {
            self.reader = nil
            reader.close()
            context.fireErrorCaught(error)
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        releaseReader()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        releaseReader()
    }

    private func releaseReader() {
        reader?.close()
        reader = nil
    }
}

/// What `RedisConnection` writes into its channel: encoded commands and where their replies go.
///
/// Invariant: the buffer holds exactly as many commands as replies are expected (one for
/// `.single`, `count` for `.batch`).
enum RedisRequest: Sendable {
    /// One command; the promise receives its reply (an error reply arrives as `.error`).
    case single(ByteBuffer, EventLoopPromise<RESPValue>)
    /// `count` commands written with one flush; the promise receives one result per command, in
    /// order: the reply (error replies as `.success(.error)`), or `.failure` for commands whose
    /// reply never came because the connection closed first.
    case batch(ByteBuffer, count: Int, EventLoopPromise<[Result<RESPValue, RedisError>]>)
}

/// Matches replies to requests, first in first out, so any number of commands may be in flight
/// on one connection (pipelining).
///
/// Contract:
/// - Requests are written in the order the channel receives them and replies complete them in
///   that same order; Redis answers commands in order, so the head of the queue owns the next reply.
/// - When the channel goes inactive or an error is caught, every queued request fails with a
///   retryable error (`.connectionClosed`, or the protocol error that closed it), and requests
///   written later fail at once.
/// - A reply with no request waiting is a protocol violation: the channel is closed.
/// - Event-loop bound, like every channel handler.
final class RedisCommandHandler: ChannelDuplexHandler {
    typealias InboundIn = RESPValue
    typealias OutboundIn = RedisRequest
    typealias OutboundOut = ByteBuffer

    private final class BatchReplies {
        var results: [Result<RESPValue, RedisError>]
        let expected: Int
        let promise: EventLoopPromise<[Result<RESPValue, RedisError>]>

        init(expected: Int, promise: EventLoopPromise<[Result<RESPValue, RedisError>]>) {
            self.results = []
            self.results.reserveCapacity(expected)
            self.expected = expected
            self.promise = promise
        }
    }

    private enum Waiting {
        case single(EventLoopPromise<RESPValue>)
        case batch(BatchReplies)
    }

    private var waiting = CircularBuffer<Waiting>(initialCapacity: 16)
    /// Set once the connection can no longer answer; later requests fail with it at once.
    private var terminalError: RedisError?
    private let logger: Logger

    init(logger: Logger) {
        self.logger = logger
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let value = unwrapInboundIn(data)
        guard let head = waiting.first else {
            let error = RedisError(
                code: .protocolError, message: "server sent a reply no command was waiting for: \(value.summary)")
            fail(with: error)
            context.close(promise: nil)
            return
        }
        switch head {
        case .single(let promise):
            waiting.removeFirst()
            promise.succeed(value)
        case .batch(let replies):
            replies.results.append(.success(value))
            if replies.results.count == replies.expected {
                waiting.removeFirst()
                replies.promise.succeed(replies.results)
            }
        }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let request = unwrapOutboundIn(data)
        let buffer: ByteBuffer
        if let terminalError {
            switch request {
            case .single(_, let reply): reply.fail(terminalError)
            case .batch(_, let count, let reply):
                reply.succeed(Array(repeating: .failure(terminalError), count: count))
            }
            promise?.fail(terminalError)
            return
        }
        switch request {
        case .single(let bytes, let reply):
            buffer = bytes
            waiting.append(.single(reply))
        case .batch(let bytes, let count, let reply):
            buffer = bytes
            waiting.append(.batch(BatchReplies(expected: count, promise: reply)))
        }
        context.write(wrapOutboundOut(buffer), promise: promise)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        let redisError =
            (error as? RedisError)
            ?? RedisError(code: .connectionClosed, message: "connection failed: \(error)")
        logger.debug(
            "redis connection error", metadata: ["error": "\(redisError)", "waiting": "\(waiting.count)"])
        fail(with: redisError)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        fail(with: RedisError(code: .connectionClosed, message: "connection closed with the reply not yet received"))
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        fail(with: RedisError(code: .connectionClosed, message: "connection closed with the reply not yet received"))
    }

    /// Fails every waiting request; the first terminal error sticks.
    private func fail(with error: RedisError) {
        let error = terminalError ?? error
        terminalError = error
        while let head = waiting.popFirst() {
            switch head {
            case .single(let promise):
                promise.fail(error)
            case .batch(let replies):
                while replies.results.count < replies.expected {
                    replies.results.append(.failure(error))
                }
                replies.promise.succeed(replies.results)
            }
        }
    }
}
