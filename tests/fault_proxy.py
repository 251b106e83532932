"""A fault-injecting HTTP proxy in front of a real S3 server, on loopback.

Requests are forwarded unchanged (the Host header too, so SigV4 signatures still verify upstream);
rules chosen by the test change what comes back: flip a byte of a response body, cut it short,
answer 500, reset the connection, or hold the request until released. Every request is recorded
(method, path, query), so a test can count what drtasks really sent.
"""

from __future__ import annotations

import http.client
import random
import re
import socket
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te", "trailer"}


@dataclass
class Request:
    method: str
    path: str  # unquoted, without the query
    query: dict[str, list[str]]

    @property
    def operation(self) -> str:
        """A rough S3 operation name, enough for counting."""
        q = self.query
        if self.method == "GET" and "uploads" in q:
            return "ListMultipartUploads"
        if self.method == "GET" and "uploadId" in q:
            return "ListParts"
        if self.method == "GET" and ("list-type" in q or self.path.count("/") <= 1):
            return "ListObjects"
        if self.method == "PUT" and "partNumber" in q:
            return "UploadPart"
        if self.method == "POST" and "uploads" in q:
            return "CreateMultipartUpload"
        if self.method == "POST" and "uploadId" in q:
            return "CompleteMultipartUpload"
        if self.method == "POST" and "delete" in q:
            return "DeleteObjects"
        if self.method == "DELETE" and "uploadId" in q:
            return "AbortMultipartUpload"
        return {"GET": "GetObject", "PUT": "PutObject", "HEAD": "HeadObject", "DELETE": "DeleteObject"}.get(self.method, self.method)


@dataclass
class Rule:
    """When ``matches`` a request (and ``times`` is not used up), apply ``fault``."""

    fault: str  # corrupt | truncate | error | reset | hold | delay
    matches: Callable[[Request], bool]
    probability: float = 1.0
    times: int | None = None  # None: every time
    seconds: float = 0.0  # for delay
    offset: int | None = None  # for corrupt: the byte to flip (None: a random one)
    hits: int = 0


def op(name: str, key_pattern: str = "") -> Callable[[Request], bool]:
    """Match an operation, optionally only for keys matching ``key_pattern`` (a regex on the path)."""
    pattern = re.compile(key_pattern) if key_pattern else None
    return lambda request: request.operation == name and (pattern is None or bool(pattern.search(request.path)))


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        """A client that went away (a killed run, a reset we injected) is no error of the proxy."""
        import sys

        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


@dataclass
class FaultProxy:
    upstream: str  # http://host:port of the real server
    seed: int = 0
    rules: list[Rule] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._random = random.Random(self.seed)
        self._released = threading.Event()
        parsed = urllib.parse.urlsplit(self.upstream)
        self._host, self._port = parsed.hostname or "127.0.0.1", parsed.port or 80
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _serve(self) -> None:
                proxy._forward(self)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _serve

        self._server = _QuietServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> "FaultProxy":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._released.set()
        self._server.shutdown()
        self._server.server_close()

    def add(self, rule: Rule) -> Rule:
        with self._lock:
            self.rules.append(rule)
        return rule

    def clear(self) -> None:
        with self._lock:
            self.rules.clear()
            self.requests.clear()
        self._released.set()
        self._released = threading.Event()

    def release(self) -> None:
        """Let held requests go on."""
        self._released.set()

    def count(self, operation: str, key_pattern: str = "") -> int:
        match = op(operation, key_pattern)
        with self._lock:
            return sum(1 for r in self.requests if match(r))

    def _choose(self, request: Request) -> Rule | None:
        with self._lock:
            self.requests.append(request)
            for rule in self.rules:
                if rule.times is not None and rule.hits >= rule.times:
                    continue
                if rule.matches(request) and self._random.random() < rule.probability:
                    rule.hits += 1
                    return rule
        return None

    def _forward(self, handler: BaseHTTPRequestHandler) -> None:
        split = urllib.parse.urlsplit(handler.path)
        request = Request(handler.command, urllib.parse.unquote(split.path), urllib.parse.parse_qs(split.query, keep_blank_values=True))
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        rule = self._choose(request)
        if rule and rule.fault == "hold":
            self._released.wait(timeout=120)
        if rule and rule.fault == "delay":
            time.sleep(rule.seconds)
        if rule and rule.fault == "reset":
            handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            handler.close_connection = True
            handler.connection.close()
            return
        if rule and rule.fault == "error":
            payload = b"<?xml version=\"1.0\"?><Error><Code>InternalError</Code><Message>injected fault</Message></Error>"
            handler.send_response(500)
            handler.send_header("Content-Type", "application/xml")
            handler.send_header("Content-Length", str(len(payload)))
            handler.end_headers()
            handler.wfile.write(payload)
            return
        upstream = http.client.HTTPConnection(self._host, self._port, timeout=120)
        try:
            headers = {k: v for k, v in handler.headers.items() if k.lower() not in HOP_BY_HOP}
            upstream.request(handler.command, handler.path, body=body if length else None, headers=headers)
            answer = upstream.getresponse()
            data = answer.read() if handler.command != "HEAD" else b""
            out_headers = [(k, v) for k, v in answer.getheaders() if k.lower() not in HOP_BY_HOP]
            status = answer.status
        finally:
            upstream.close()
        declared = len(data)
        if rule and rule.fault == "corrupt" and data:
            index = rule.offset if rule.offset is not None and rule.offset < len(data) else self._random.randrange(len(data))
            data = data[:index] + bytes([data[index] ^ 0x5A]) + data[index + 1 :]
        if rule and rule.fault == "truncate" and data:
            data = data[: max(0, len(data) // 2)]
        handler.send_response(status)
        for key, value in out_headers:
            if key.lower() == "content-length" and handler.command != "HEAD":
                value = str(declared)
            handler.send_header(key, value)
        handler.end_headers()
        try:
            handler.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
        if rule and rule.fault == "truncate":
            handler.close_connection = True
