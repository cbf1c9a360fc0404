"""An OTLP/HTTP trace receiver for Cairn's end-to-end tests.

POST /v1/traces takes an ExportTraceServiceRequest, as protobuf (application/x-protobuf) or
JSON (application/json), and parses it with the OpenTelemetry project's own message classes
(the opentelemetry-proto package), strictly: a request that does not parse is answered 400,
as a collector would. OTLP/JSON writes trace and span ids in hex where protobuf's JSON mapping
has base64, so JSON ids are checked to be hex of the right length and converted first. GET /spans returns every span received so far, flattened to JSON with
ids in hex. Any other GET answers 200, so a test can tell the receiver is up. Port: APP_PORT.
"""

import base64
import http.server
import json
import os
import threading

from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

spans: list = []
lock = threading.Lock()


def hex_ids_to_base64(document: dict) -> None:
    def convert(holder: dict, key: str, size: int) -> None:
        if key not in holder:
            return
        raw = bytes.fromhex(holder[key])
        if len(raw) != size:
            raise ValueError(f"{key} {holder[key]!r} is not {size} bytes of hex")
        holder[key] = base64.b64encode(raw).decode()

    for resource_spans in document.get("resourceSpans", []):
        for scope_spans in resource_spans.get("scopeSpans", []):
            for span in scope_spans.get("spans", []):
                convert(span, "traceId", 16)
                convert(span, "spanId", 8)
                if span.get("parentSpanId"):
                    convert(span, "parentSpanId", 8)
                for link in span.get("links", []):
                    convert(link, "traceId", 16)
                    convert(link, "spanId", 8)


def value_of(any_value):
    kind = any_value.WhichOneof("value")
    return getattr(any_value, kind) if kind else None


def flatten(request: ExportTraceServiceRequest, content_type: str) -> list:
    result = []
    for resource_spans in request.resource_spans:
        resource = {a.key: value_of(a.value) for a in resource_spans.resource.attributes}
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                result.append({
                    "trace_id": span.trace_id.hex(),
                    "span_id": span.span_id.hex(),
                    "parent_span_id": span.parent_span_id.hex(),
                    "name": span.name,
                    "kind": span.kind,
                    "start": span.start_time_unix_nano,
                    "end": span.end_time_unix_nano,
                    "attributes": {a.key: value_of(a.value) for a in span.attributes},
                    "status_code": span.status.code,
                    "status_message": span.status.message,
                    "service": resource.get("service.name"),
                    "scope": scope_spans.scope.name,
                    "content_type": content_type,
                })
    return result


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        content_type = (self.headers.get("content-type") or "").split(";")[0].strip()
        request = ExportTraceServiceRequest()
        try:
            if self.path != "/v1/traces":
                raise ValueError(f"unexpected path {self.path}")
            if content_type == "application/json":
                document = json.loads(body)
                hex_ids_to_base64(document)
                json_format.ParseDict(document, request)
            elif content_type == "application/x-protobuf":
                request.ParseFromString(body)
            else:
                raise ValueError(f"unexpected content-type {content_type!r}")
        except Exception as error:  # noqa: BLE001 - any parse failure is the client's
            self.answer(400, "text/plain", str(error).encode())
            return
        with lock:
            spans.extend(flatten(request, content_type))
        if content_type == "application/json":
            self.answer(200, "application/json", b"{}")
        else:
            self.answer(200, "application/x-protobuf", ExportTraceServiceResponse().SerializeToString())

    def do_GET(self) -> None:  # noqa: N802
        if self.path == "/spans":
            with lock:
                self.answer(200, "application/json", json.dumps(spans).encode())
        else:
            self.answer(200, "text/plain", b"ok")

    def answer(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the stdlib's name
        pass


http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["APP_PORT"])), Handler).serve_forever()
