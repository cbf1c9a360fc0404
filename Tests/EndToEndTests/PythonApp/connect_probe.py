"""Speaks the connect protocol to Cairn by hand, the way a misbehaving worker would, and prints
what Cairn answered as one JSON object. Used by the end-to-end tests (ConnectEndToEndTests).

Usage: connect_probe.py <api origin> [<signing key>]

Each case starts a connection and sends one kind of bad input; the result is the close code
and reason the gateway answered with. Messages are built with the Python SDK's own protobuf
module, so the probe and a real worker agree on the wire format.
"""

import asyncio
import hashlib
import json
import sys

import httpx
import websockets
from inngest.connect._internal import connect_pb2 as pb

PROTOCOL = "v0.connect.inngest.com"
api = sys.argv[1].rstrip("/")
key = sys.argv[2] if len(sys.argv) > 2 else None


def bearer(signing_key: str) -> str:
    raw = signing_key.split("-", 2)[2] if signing_key.startswith("signkey-") else signing_key
    return "Bearer " + hashlib.sha256(bytes.fromhex(raw)).hexdigest()


def start(authorization: str | None) -> httpx.Response:
    headers = {"content-type": "application/protobuf"}
    if authorization:
        headers["authorization"] = authorization
    return httpx.post(api + "/v0/connect/start", headers=headers, content=b"", timeout=10)


def message(kind: int, payload: bytes = b"") -> bytes:
    return pb.ConnectMessage(kind=kind, payload=payload).SerializeToString()


def worker_connect(started: pb.StartResponse, session_token: str | None = None) -> bytes:
    functions = [{
        "id": "connect-probe-fn", "name": "probe",
        "triggers": [{"event": "probe/never"}],
        "steps": {"step": {"id": "step", "name": "step", "runtime": {"type": "ws", "url": "wss://connect?fnId=connect-probe-fn&stepId=step"}}},
    }]
    data = pb.WorkerConnectRequestData(
        connection_id=started.connection_id,
        instance_id="probe",
        auth_data=pb.AuthData(session_token=session_token if session_token is not None else started.session_token,
                              sync_token=started.sync_token),
        capabilities=b'{"connect":"v1"}',
        apps=[pb.AppConfiguration(app_name="connect-probe", functions=json.dumps(functions).encode())],
        framework="connect", sdk_language="py", sdk_version="probe",
    )
    return message(pb.GatewayMessageType.WORKER_CONNECT, data.SerializeToString())


async def close_of(ws, data: bytes | str) -> dict:
    """Sends `data`, then reads until the gateway closes; the close it sent."""
    try:
        await ws.send(data)
        while True:
            await asyncio.wait_for(ws.recv(), timeout=15)
    except websockets.ConnectionClosed as closed:
        frame = closed.rcvd
        return {"code": frame.code if frame else None, "reason": frame.reason if frame else None}


async def case(first: bytes | str | None = None, after_ready: bytes | str | None = None, token: str | None = None) -> dict:
    response = start(bearer(key) if key else None)
    started = pb.StartResponse()
    started.ParseFromString(response.content)
    async with websockets.connect(started.gateway_endpoint, subprotocols=[PROTOCOL], max_size=None) as ws:
        hello = pb.ConnectMessage()
        hello.ParseFromString(await ws.recv())
        result = {"subprotocol": ws.subprotocol, "hello": hello.kind == pb.GatewayMessageType.GATEWAY_HELLO}
        if first is not None:
            return result | await close_of(ws, first)
        if after_ready is None:
            return result | await close_of(ws, worker_connect(started, token))
        await ws.send(worker_connect(started, token))
        ready = pb.ConnectMessage()
        ready.ParseFromString(await ws.recv())
        result["ready"] = ready.kind == pb.GatewayMessageType.GATEWAY_CONNECTION_READY
        return result | await close_of(ws, after_ready)


async def main() -> None:
    results = {
        "start_without_key": start(None).status_code,
        "start_with_wrong_key": start(bearer("signkey-prod-" + "ab" * 32)).status_code,
        "forged_session_token": await case(token="forged.token.value"),
        "first_message_not_protobuf": await case(first=b"\xff\xff\xff"),
        "first_message_not_connect": await case(first=message(pb.GatewayMessageType.WORKER_HEARTBEAT)),
        "message_not_protobuf": await case(after_ready=b"\xff\xff\xff"),
        "text_message": await case(after_ready="hello"),
        "message_over_8_mib": await case(after_ready=b"\x00" * (9 * 1024 * 1024)),
    }
    print(json.dumps(results))


asyncio.run(main())
