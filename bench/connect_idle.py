"""Holds many idle connect workers on Cairn's gateway: each one asks cairn-api where to connect,
opens the WebSocket, says WORKER_CONNECT for one app, sends WORKER_READY, then heartbeats every
10 s as the SDKs do, answering nothing else. Messages are built with the Python SDK's protobuf
module, so they are what a real worker sends.

Usage: connect_idle.py API_ORIGIN WORKERS HOLD_SECONDS

Prints `{"connected": N, "seconds": S}` once every worker is ready, holds them HOLD_SECONDS,
then prints `{"held": N, "heartbeats_sent": H, "heartbeats_answered": A}` and closes them.
"""

import asyncio
import json
import sys
import time

import httpx
import websockets
from inngest.connect._internal import connect_pb2 as pb

PROTOCOL = "v0.connect.inngest.com"
HEARTBEAT_SECONDS = 10
APP = "bench-idle"
FUNCTIONS = json.dumps([{
    "id": f"{APP}-noop", "name": "noop",
    "triggers": [{"event": "bench/idle-never"}],
    "steps": {"step": {"id": "step", "name": "step", "runtime": {"type": "ws", "url": f"wss://connect?fnId={APP}-noop&stepId=step"}}},
}]).encode()


def message(kind: int, payload: bytes = b"") -> bytes:
    return pb.ConnectMessage(kind=kind, payload=payload).SerializeToString()


class Worker:
    def __init__(self, index: int) -> None:
        self.index = index
        self.sent = 0
        self.answered = 0

    async def connect(self, http: httpx.AsyncClient, api: str) -> None:
        response = await http.post(api + "/v0/connect/start", content=b"", headers={"content-type": "application/protobuf"})
        response.raise_for_status()
        started = pb.StartResponse()
        started.ParseFromString(response.content)
        self.ws = await websockets.connect(started.gateway_endpoint, subprotocols=[PROTOCOL], max_size=None, ping_interval=None)
        await self.expect(pb.GatewayMessageType.GATEWAY_HELLO)
        data = pb.WorkerConnectRequestData(
            connection_id=started.connection_id, instance_id=f"idle-{self.index}",
            auth_data=pb.AuthData(session_token=started.session_token, sync_token=started.sync_token),
            capabilities=b'{"connect":"v1"}', apps=[pb.AppConfiguration(app_name=APP, functions=FUNCTIONS)],
            framework="connect", sdk_language="py", sdk_version="bench", worker_manual_readiness_ack=False,
        )
        await self.ws.send(message(pb.GatewayMessageType.WORKER_CONNECT, data.SerializeToString()))
        await self.expect(pb.GatewayMessageType.GATEWAY_CONNECTION_READY)
        await self.ws.send(message(pb.GatewayMessageType.WORKER_READY))

    async def expect(self, kind: int) -> None:
        received = pb.ConnectMessage()
        received.ParseFromString(await asyncio.wait_for(self.ws.recv(), timeout=30))
        if received.kind != kind:
            raise SystemExit(f"worker {self.index}: expected message kind {kind}, got {received.kind}")

    async def idle(self, until: float) -> None:
        reader = asyncio.create_task(self.read())
        # Spread the heartbeats over the interval, as independently started workers would be.
        await asyncio.sleep((self.index % 100) / 100 * HEARTBEAT_SECONDS)
        while time.monotonic() < until:
            await self.ws.send(message(pb.GatewayMessageType.WORKER_HEARTBEAT))
            self.sent += 1
            await asyncio.sleep(min(HEARTBEAT_SECONDS, max(0, until - time.monotonic())))
        reader.cancel()
        await self.ws.close()

    async def read(self) -> None:
        async for frame in self.ws:
            received = pb.ConnectMessage()
            received.ParseFromString(frame)
            if received.kind == pb.GatewayMessageType.GATEWAY_HEARTBEAT:
                self.answered += 1


async def main() -> None:
    api, count, hold = sys.argv[1].rstrip("/"), int(sys.argv[2]), float(sys.argv[3])
    workers = [Worker(i) for i in range(count)]
    began = time.monotonic()
    limit = asyncio.Semaphore(50)
    async with httpx.AsyncClient(timeout=30) as http:

        async def connect(worker: Worker) -> None:
            async with limit:
                await worker.connect(http, api)

        await asyncio.gather(*(connect(w) for w in workers))
    print(json.dumps({"connected": count, "seconds": round(time.monotonic() - began, 2)}), flush=True)
    until = time.monotonic() + hold
    await asyncio.gather(*(w.idle(until) for w in workers))
    print(json.dumps({
        "held": count, "heartbeats_sent": sum(w.sent for w in workers), "heartbeats_answered": sum(w.answered for w in workers),
    }), flush=True)


asyncio.run(main())
