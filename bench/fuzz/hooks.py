"""Schemathesis hooks for the Cairn fuzz run (loaded by run.sh through SCHEMATHESIS_HOOKS).

Three jobs, all applied just before each request is sent, so every phase goes through them:

1. Keep Cairn off the network. `POST /v1/apps/sync` makes Cairn send a PUT to the `url` in the
   body, and a function registered through `POST /fn/register` makes the executor call its app
   and step URLs later. Every such URL the fuzzer produces is replaced by one that points at a
   stub app on 127.0.0.1 (started here, answering 200 `{}` to anything), so Cairn only ever
   talks to loopback.
2. Use the real event key (CAIRN_EVENT_KEY) for most `POST /e/{eventKey}` requests, so the
   fuzzer gets past the key check; about one request in eight keeps the generated key.
3. Send `Authorization: Bearer $CAIRN_SIGNING_KEY` on most requests to signed routes when that
   variable is set; about one in eight keeps whatever was generated, to exercise the 401 path.

Choices are made from a CRC of the generated request, so a run with the same seed makes the
same choices.
"""

from __future__ import annotations

import json
import os
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import quote

import schemathesis


class _StubApp(BaseHTTPRequestHandler):
    """Answers every request 200 `{}`: a sync PUT succeeds, a call request completes."""

    def _answer(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        if length:
            self.rfile.read(length)
        body = b"{}"
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_PUT = do_POST = do_DELETE = do_PATCH = do_HEAD = _answer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass


_stub = ThreadingHTTPServer(("127.0.0.1", 0), _StubApp)
_stub.daemon_threads = True
threading.Thread(target=_stub.serve_forever, name="cairn-fuzz-stub-app", daemon=True).start()
STUB_ORIGIN = f"http://127.0.0.1:{_stub.server_address[1]}"

EVENT_KEY = os.environ.get("CAIRN_EVENT_KEY", "")
SIGNING_KEY = os.environ.get("CAIRN_SIGNING_KEY", "")


def _fingerprint(case: Any) -> int:
    text = repr((case.path_parameters, case.query, case.body))
    return zlib.crc32(text.encode("utf-8", "surrogatepass"))


def _loopback(url: str) -> str:
    """A stub-app URL standing in for `url`; the original survives only as an escaped path."""
    return f"{STUB_ORIGIN}/fuzz/{quote(url, safe='')[:200]}"


def _sync_body(body: Any) -> Any:
    # Cairn accepts any URL that Foundation parses with an http(s) scheme (any case) and a host.
    # A string without ':' has no scheme and is refused with 400 before any connection, so it
    # is left alone; anything else goes to the stub.
    if isinstance(body, dict) and isinstance(body.get("url"), str) and ":" in body["url"]:
        body = dict(body)
        body["url"] = _loopback(body["url"])
    return body


def _register_body(body: Any) -> Any:
    # The app URL (key matched case-insensitively, as Cairn does) and every step's runtime URL
    # are called only when they start with http:// or https:// (case-sensitively).
    if not isinstance(body, dict):
        return body
    body = dict(body)
    for key, value in body.items():
        if key.lower() == "url" and isinstance(value, str) and value.startswith(("http://", "https://")):
            body[key] = _loopback(value)
    functions = body.get("functions")
    if isinstance(functions, list):
        body["functions"] = [_register_function(function) for function in functions]
    return body


def _register_function(function: Any) -> Any:
    if not isinstance(function, dict) or not isinstance(function.get("steps"), dict):
        return function
    function = dict(function)
    steps = {}
    for name, step in function["steps"].items():
        if isinstance(step, dict) and isinstance(step.get("runtime"), dict):
            runtime = dict(step["runtime"])
            url = runtime.get("url")
            if isinstance(url, str) and url.startswith(("http://", "https://")):
                runtime["url"] = _loopback(url)
            step = dict(step, runtime=runtime)
        steps[name] = step
    function["steps"] = steps
    return function


def _rewrite(body: Any, rewrite) -> Any:
    """Applies `rewrite` to a parsed body, or to a raw JSON text body (re-serialized)."""
    if isinstance(body, (dict, list)):
        return rewrite(body)
    if isinstance(body, (str, bytes)):
        try:
            parsed = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return body
        changed = rewrite(parsed)
        if changed == parsed:
            return body
        text = json.dumps(changed)
        return text.encode() if isinstance(body, bytes) else text
    return body


def _is_signed(operation: Any) -> bool:
    security = operation.definition.raw.get("security")
    return bool(security) and any("signingKey" in requirement for requirement in security)


@schemathesis.hook
def before_call(context, case, kwargs):
    operation = case.operation
    method, path = operation.method.upper(), operation.path
    if method == "POST" and path == "/v1/apps/sync":
        case.body = _rewrite(case.body, _sync_body)
    elif method == "POST" and path == "/fn/register":
        case.body = _rewrite(case.body, _register_body)

    fingerprint = _fingerprint(case)
    keep_generated = fingerprint % 8 == 0
    if method == "POST" and path == "/e/{eventKey}" and EVENT_KEY and not keep_generated:
        case.path_parameters = dict(case.path_parameters or {}, eventKey=EVENT_KEY)
    if SIGNING_KEY and _is_signed(operation) and not keep_generated:
        headers = {k: v for k, v in (case.headers or {}).items() if k.lower() != "authorization"}
        headers["Authorization"] = f"Bearer {SIGNING_KEY}"
        case.headers = headers
