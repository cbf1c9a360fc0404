// libFuzzer entry for CairnCore's expression language: `Expression(compiling:)` on the input
// (decoded as UTF-8, invalid sequences repaired, as any Swift `String` source would be), then,
// when it compiles, `evaluate(_:)` against one fixed activation.
//
// Properties checked besides "does not crash" (the type documents that evaluation never traps):
// - compiling throws only compile codes (`code.isCompileError`) or `.invalidRegex`;
// - evaluating throws only evaluation codes (`!code.isCompileError`);
// - every error position lies inside the source (0...utf8.count).
// A broken property stops the run through `fatalError`, which libFuzzer records as a crash.
import CairnCore
import LibFuzzerDriver

/// A small activation of our own: an order event, an incoming payment event, two variables and a
/// fixed clock (2023-11-14T22:13:20Z).
private let activation: ExpressionActivation = {
    let event = try! JSONValue(parsing: #"""
        {"name":"shop/order.placed","id":"01HF0000000000000000000000","ts":1700000000000,
         "data":{"orderId":"o_42","total":99.5,"qty":3,"currency":"EUR","paid":false,
                 "items":[{"sku":"a-1","n":1},{"sku":"b-2","n":2}],
                 "customer":{"email":"X@Example.org","tier":"gold","tags":["new","eu"]},
                 "note":null,"big":12345678901234567890,"neg":-7,"when":"2023-11-14T22:13:20Z",
                 "pattern":"^o_","encoded":"aGVsbG8=","json":"{\"k\":[1,2]}","empty":""}}
        """#)
    let async = try! JSONValue(parsing: #"{"name":"shop/order.paid","data":{"orderId":"o_42","amount":99.5}}"#)
    let vars = try! JSONValue(parsing: #"{"limit":10,"region":"eu"}"#)
    return ExpressionActivation(event: event, async: async, vars: vars, nowMilliseconds: 1_700_000_000_000)
}()

/// The program's entry: SwiftPM aliases `main` to `FuzzExpression_main` (see Package.swift).
@_cdecl("FuzzExpression_main")
public func fuzzExpressionMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var argc = argc
    var argv = argv
    return LLVMFuzzerRunDriver(&argc, &argv, { data, size in fuzzExpression(data, size) })
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzExpression(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let source = String(decoding: UnsafeBufferPointer(start: size > 0 ? data : nil, count: size), as: UTF8.self)
    let length = source.utf8.count

    let expression: Expression
    do throws(ExpressionError) {
        expression = try Expression(compiling: source)
    } catch {
        if !error.code.isCompileError && error.code != .invalidRegex {
            fatalError("compiling threw the evaluation code \(error.code): \(error)")
        }
        check(error, length)
        return 0
    }

    do throws(ExpressionError) {
        let value = try expression.evaluate(activation)
        _ = value.typeName
        _ = value.canonicalKey
    } catch {
        if error.code.isCompileError {
            fatalError("evaluating threw the compile code \(error.code): \(error)")
        }
        check(error, length)
    }
    return 0
}

private func check(_ error: ExpressionError, _ length: Int) {
    if error.position < 0 || error.position > length {
        fatalError("error position \(error.position) outside a source of \(length) bytes: \(error)")
    }
    _ = error.description
}
