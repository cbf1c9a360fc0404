"""A trace receiver for bench/tracing.sh: accepts OTLP/HTTP JSON exports (`POST /v1/traces`) on
127.0.0.1, reads each body, counts its spans (occurrences of `"spanId"`) and discards it,
answering 200 `{}` at once. `GET /` answers the totals so far as JSON: spans, requests, bytes.

Usage: otlp_sink.py PORT OWNER_PID MAX_SECONDS — serves until OWNER_PID is gone or MAX_SECONDS
have passed, whichever comes first, so it never outlives the harness."""

import gzip
import http.server
import json
import os
import sys
import threading
import time

totals = {"spans": 0, "requests": 0, "bytes": 0}
lock = threading.Lock()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # kept-alive, as an exporter expects
    # The reply's head and body are two writes: without TCP_NODELAY the body would wait for the
    # exporter's delayed ACK (40 ms), and every export would take that long.
    disable_nagle_algorithm = True

    def reply(self, status, body):
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def read_body(self):
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("content-length") or 0))

    def do_POST(self):
        body = self.read_body()
        if self.path.split("?")[0] != "/v1/traces":
            self.reply(404, b"{}")
            return
        if self.headers.get("content-encoding", "").lower() == "gzip":
            body = gzip.decompress(body)
        spans = body.count(b'"spanId"')
        with lock:
            totals["spans"] += spans
            totals["requests"] += 1
            totals["bytes"] += len(body)
        self.reply(200, b"{}")

    def do_GET(self):
        with lock:
            body = json.dumps(totals).encode()
        self.reply(200, body)

    def log_message(self, *args):
        pass


def main():
    port, owner, limit = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True

    def watch():
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            try:
                os.kill(owner, 0)
            except ProcessLookupError:
                break
            time.sleep(1)
        server.shutdown()

    threading.Thread(target=watch, daemon=True).start()
    server.serve_forever(poll_interval=0.2)


main()
