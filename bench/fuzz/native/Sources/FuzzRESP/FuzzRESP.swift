// libFuzzer entry for CairnRedis's reply reader (`RESPReader`, hiredis's reader wrapped).
//
// `RESPReader` is internal to CairnRedis and no public API feeds it bytes without a network
// connection, so this package compiles RESPReader.swift into its own `CairnRedis` target with
// `-enable-testing` and reaches it with `@testable import`; the access level is unchanged.
//
// Each input is read twice, by fresh readers:
// - fed whole, then every complete reply taken;
// - fed in chunks of 1 to 13 bytes (the size follows from the input length), taking every
//   complete reply after each chunk.
// The reader promises never to lose bytes between calls, so both must yield the same replies
// and end in the same state (protocol error, or waiting for more bytes). A difference stops the
// run through `fatalError`, which libFuzzer records as a crash.
@testable import CairnRedis
import LibFuzzerDriver

/// The program's entry: SwiftPM aliases `main` to `FuzzRESP_main` (see Package.swift).
@_cdecl("FuzzRESP_main")
public func fuzzRESPMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var argc = argc
    var argv = argv
    return LLVMFuzzerRunDriver(&argc, &argv, { data, size in fuzzRESP(data, size) })
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRESP(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = UnsafeRawBufferPointer(start: size > 0 ? data : nil, count: size)

    let whole = read(input, chunk: max(size, 1))
    let chunked = read(input, chunk: 1 + size % 13)
    if whole.replies != chunked.replies || whole.failed != chunked.failed {
        fatalError("""
            whole and chunked feeding disagree: \(whole.replies.count) replies (failed: \(whole.failed)) \
            vs \(chunked.replies.count) (failed: \(chunked.failed))
            """)
    }
    for reply in whole.replies { touch(reply) }
    return 0
}

private func read(_ input: UnsafeRawBufferPointer, chunk: Int) -> (replies: [RESPValue], failed: Bool) {
    let reader = RESPReader()
    defer { reader.close() }
    var replies: [RESPValue] = []
    var offset = 0
    do throws(RedisError) {
        repeat {
            let end = min(offset + chunk, input.count)
            try reader.feed(UnsafeRawBufferPointer(rebasing: input[offset..<end]))
            offset = end
            while let reply = try reader.next() { replies.append(reply) }
        } while offset < input.count
    } catch {
        _ = error.description
        return (replies, true)
    }
    return (replies, false)
}

/// Reads every accessor, so the conversions run on fuzzed values too.
private func touch(_ reply: RESPValue) {
    _ = reply.string
    _ = reply.bytes
    _ = reply.int64
    _ = reply.isNull
    _ = reply.summary
    if let elements = reply.array {
        for element in elements { touch(element) }
    }
}
