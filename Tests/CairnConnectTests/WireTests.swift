import CairnConnect
import Foundation
import SwiftProtobuf
import Testing

/// The connect messages encode to the bytes the SDKs' own messages encode to: the field
/// numbers and kinds of proto/connect.proto are the wire contract (docs/connect.md).
@Suite struct WireTests {
    func bytes(_ message: some SwiftProtobuf.Message) throws -> [UInt8] {
        [UInt8](try message.serializedData())
    }

    @Test func framesWithoutPayloadAreTheirKindAlone() throws {
        var heartbeat = Connect_V1_ConnectMessage()
        heartbeat.kind = .workerHeartbeat
        #expect(try bytes(heartbeat) == [0x08, 0x09])
        heartbeat.kind = .gatewayHeartbeat
        #expect(try bytes(heartbeat) == [0x08, 0x0A])
        // The hello is kind 0 with no payload: nothing at all on the wire.
        #expect(try bytes(Connect_V1_ConnectMessage()) == [])
        #expect(try Connect_V1_ConnectMessage(serializedBytes: [UInt8]()).kind == .gatewayHello)
    }

    @Test func everyKindKeepsItsNumber() {
        let kinds: [(Connect_V1_GatewayMessageType, Int)] = [
            (.gatewayHello, 0), (.workerConnect, 1), (.gatewayConnectionReady, 2), (.gatewayExecutorRequest, 3), (.workerReady, 4),
            (.workerRequestAck, 5), (.workerReply, 6), (.workerReplyAck, 7), (.workerPause, 8), (.workerHeartbeat, 9),
            (.gatewayHeartbeat, 10), (.gatewayClosing, 11), (.workerRequestExtendLease, 12), (.workerRequestExtendLeaseAck, 13),
            (.syncFailed, 14), (.workerStatus, 15),
        ]
        for (kind, number) in kinds { #expect(kind.rawValue == number) }
    }

    @Test func anUnknownKindIsReadNotRefused() throws {
        let message = try Connect_V1_ConnectMessage(serializedBytes: [0x08, 0x63])
        #expect(message.kind == .UNRECOGNIZED(99))
    }

    @Test func startResponseFieldsAreNumberedAsTheSDKsReadThem() throws {
        var response = Connect_V1_StartResponse()
        response.connectionID = "C"
        response.gatewayEndpoint = "G"
        response.gatewayGroup = "R"
        response.sessionToken = "S"
        response.syncToken = "T"
        // Field n, length-delimited: tag (n << 3) | 2.
        #expect(try bytes(response) == [0x0A, 1, 0x43, 0x12, 1, 0x47, 0x1A, 1, 0x52, 0x22, 1, 0x53, 0x2A, 1, 0x54])
        // An empty StartRequest is an empty body, as a worker sends it.
        #expect(try bytes(Connect_V1_StartRequest()) == [])
    }

    @Test func optionalFieldsOfAWorkerConnectMayBeAbsent() throws {
        var connect = Connect_V1_WorkerConnectRequestData()
        connect.connectionID = "01JABCDEFGHJKMNPQRSTVWXYZ0"
        connect.instanceID = "host-1"
        connect.authData.sessionToken = "token"
        var app = Connect_V1_AppConfiguration()
        app.appName = "shop"
        app.functions = Data(#"[{"id":"shop-f"}]"#.utf8)
        connect.apps = [app]
        connect.sdkLanguage = "py"
        connect.sdkVersion = "0.5.19"
        let read = try Connect_V1_WorkerConnectRequestData(serializedBytes: try bytes(connect))
        #expect(read == connect)
        #expect(!read.hasMaxWorkerConcurrency)
        #expect(!read.hasStartedAt)
        #expect(!read.apps[0].hasAppVersion)
        connect.maxWorkerConcurrency = 4
        #expect(try Connect_V1_WorkerConnectRequestData(serializedBytes: try bytes(connect)).maxWorkerConcurrency == 4)
    }

    @Test func aLostLeaseIsAnAbsentNewLeaseID() throws {
        var ack = Connect_V1_WorkerRequestExtendLeaseAckData()
        ack.requestID = "r"
        #expect(try !Connect_V1_WorkerRequestExtendLeaseAckData(serializedBytes: try bytes(ack)).hasNewLeaseID)
        ack.newLeaseID = "l2"
        #expect(try bytes(ack) == [0x0A, 1, 0x72, 0x32, 2, 0x6C, 0x32])
    }
}
