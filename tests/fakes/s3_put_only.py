"""DRoA's upload bucket policy, enforced in front of a real S3 server (moto's).

DeepRacer on AWS gives a racer's identity-pool credentials only PutObject, PutObjectAcl and the
multipart calls on ``<uploadBucket>/*`` (facts section 7): no ListBucket, GetObject or HeadObject.
moto's own IAM enforcement cannot express this for identity-pool credentials (its identity pool
hands out fixed keys that its IAM does not know), so this proxy does what S3 + IAM do:

- every request must carry a valid SigV4 signature (header or presigned query) of a known key,
  checked with ``tests.fakes.sigv4``; presigned URLs expire (``Request has expired``);
- requests signed with a *racer* key are classified into S3 operations; anything outside the
  put-only policy is refused exactly as S3 refuses it: 403 with an XML ``AccessDenied`` /
  ``Access Denied`` body, and for HEAD a bare 403 (S3 sends no body to a HEAD);
- every other known key (the deployment's own backend, the tests' admin) may do anything;
- allowed requests are forwarded unchanged to the S3 server behind (moto does not check
  signatures, so the signed request is relayed as is).

Every request is recorded in ``requests``; ``denied`` lists the refused ones, so a test (and the
fixture that owns the proxy) can prove that the DRoA path never listed, read or HEADed the bucket.
"""

from __future__ import annotations

import http.client
import threading
import urllib.parse
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.fakes.sigv4 import Secret, verify

# The racer's allowed actions on <uploadBucket>/* (DRoA's identity pool role policy).
RACER_ALLOWED = frozenset(
    {
        "PutObject",
        "PutObjectAcl",
        "CreateMultipartUpload",
        "UploadPart",
        "CompleteMultipartUpload",
        "AbortMultipartUpload",
        "ListParts",
        "ListMultipartUploads",
    }
)
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection"}


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    operation: str
    access_key_id: str | None
    allowed: bool

    def __str__(self) -> str:
        return f"{self.operation} ({self.method} {self.path})"


def operation_of(method: str, bucket: str, key: str, query: dict[str, str], headers: dict[str, str]) -> str:
    """The S3 API operation a path-style request is (the names of S3's API reference)."""
    copy = "x-amz-copy-source" in headers
    if not bucket:
        return "ListBuckets"
    if not key:
        if method == "GET":
            if "uploads" in query:
                return "ListMultipartUploads"
            if "list-type" in query:
                return "ListObjectsV2"
            if "versions" in query:
                return "ListObjectVersions"
            subresources = [q for q in query if q not in ("prefix", "delimiter", "marker", "max-keys", "encoding-type")]
            return f"GetBucket({','.join(sorted(subresources))})" if subresources else "ListObjects"
        if method == "HEAD":
            return "HeadBucket"
        if method == "POST" and "delete" in query:
            return "DeleteObjects"
        return {"PUT": "CreateBucket", "DELETE": "DeleteBucket"}.get(method, f"{method}Bucket")
    if method == "GET":
        if "uploadId" in query:
            return "ListParts"
        if "acl" in query:
            return "GetObjectAcl"
        if "tagging" in query:
            return "GetObjectTagging"
        return "GetObject"
    if method == "HEAD":
        return "HeadObject"
    if method == "PUT":
        if "partNumber" in query and "uploadId" in query:
            return "UploadPartCopy" if copy else "UploadPart"
        if "acl" in query:
            return "PutObjectAcl"
        if "tagging" in query:
            return "PutObjectTagging"
        return "CopyObject" if copy else "PutObject"
    if method == "POST":
        if "uploads" in query:
            return "CreateMultipartUpload"
        if "uploadId" in query:
            return "CompleteMultipartUpload"
        return "PostObject"
    if method == "DELETE":
        return "AbortMultipartUpload" if "uploadId" in query else "DeleteObject"
    return f"{method}Object"


def _error_xml(code: str, message: str, extra: str = "") -> bytes:
    request_id = uuid.uuid4().hex[:16].upper()
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message>{extra}"
        f"<RequestId>{request_id}</RequestId><HostId>{uuid.uuid4().hex}</HostId></Error>"
    ).encode()


@dataclass
class PutOnlyS3:
    """The proxy. ``racers``: keys bound by the put-only policy; ``others``: keys with full access."""

    backend_url: str
    upload_bucket: str
    region: str
    racers: dict[str, Secret] = field(default_factory=dict)
    others: dict[str, Secret] = field(default_factory=dict)
    clock_offset: timedelta = timedelta(0)  # tests move the proxy's clock to make presigned URLs expire
    requests: list[Seen] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        backend = urllib.parse.urlsplit(self.backend_url)
        self._backend = (backend.hostname or "127.0.0.1", backend.port or 80)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "PutOnlyS3":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def now(self) -> datetime:
        return datetime.now(timezone.utc) + self.clock_offset

    @property
    def denied(self) -> list[Seen]:
        with self._lock:
            return [seen for seen in self.requests if not seen.allowed]

    def racer_requests(self) -> list[Seen]:
        with self._lock:
            return [seen for seen in self.requests if seen.access_key_id in self.racers]

    def assert_put_only(self) -> None:
        """Fail (AssertionError) when a racer's request tried anything beyond the put-only policy."""
        refused = [seen for seen in self.denied if seen.access_key_id in self.racers]
        assert not refused, "the DRoA upload bucket refused: " + ", ".join(str(s) for s in refused)

    def _record(self, seen: Seen) -> None:
        with self._lock:
            self.requests.append(seen)

    def decide(self, method: str, raw_path: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes, str, str | None]:
        """(status, body, operation, access key); status 0 means: forward."""
        path, _, query_text = raw_path.partition("?")
        query = dict(urllib.parse.parse_qsl(query_text, keep_blank_values=True))
        parts = urllib.parse.unquote(path).lstrip("/").split("/", 1)
        bucket, key = parts[0], parts[1] if len(parts) > 1 else ""
        operation = operation_of(method, bucket, key, query, {k.lower(): v for k, v in headers.items()})
        secrets = {**self.others, **self.racers}
        verdict = verify(method, raw_path, headers, body, service="s3", region=self.region, secrets=secrets, now=self.now())
        if not verdict.ok:
            extra = ""
            if verdict.message == "Request has expired":
                extra = f"<X-Amz-Expires>{query.get('X-Amz-Expires', '')}</X-Amz-Expires><ServerTime>{self.now():%Y-%m-%dT%H:%M:%SZ}</ServerTime>"
            return 403, _error_xml(verdict.code, verdict.message, extra), operation, verdict.access_key_id
        if verdict.access_key_id in self.racers:
            allowed = operation in RACER_ALLOWED and bucket == self.upload_bucket and (key or operation == "ListMultipartUploads")
            if not allowed:
                return 403, _error_xml("AccessDenied", "Access Denied"), operation, verdict.access_key_id
        return 0, b"", operation, verdict.access_key_id

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    chunks = []
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass
                            return b"".join(chunks)
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _send(self, status: int, body: bytes, headers: list[tuple[str, str]]) -> None:
                self.send_response(status)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def _handle(self) -> None:
                body = self._body()
                headers = {name: value for name, value in self.headers.items()}
                status, answer, operation, access_key = proxy.decide(self.command, self.path, headers, body)
                proxy._record(Seen(self.command, self.path.split("?")[0], operation, access_key, status == 0))
                if status:
                    # S3 answers a refused HEAD with the status alone.
                    self._send(status, b"" if self.command == "HEAD" else answer, [("Content-Type", "application/xml")])
                    return
                connection = http.client.HTTPConnection(*proxy._backend, timeout=60)
                try:
                    forwarded = {k: v for k, v in headers.items() if k.lower() not in _HOP_BY_HOP}
                    forwarded["Content-Length"] = str(len(body))
                    connection.request(self.command, self.path, body=body if body or self.command in ("PUT", "POST") else None, headers=forwarded)
                    response = connection.getresponse()
                    payload = response.read()
                    relayed = [(k, v) for k, v in response.getheaders() if k.lower() not in _HOP_BY_HOP | {"content-length"}]
                    if self.command == "HEAD":
                        length = response.getheader("Content-Length", "0")
                        self.send_response(response.status)
                        for name, value in relayed:
                            self.send_header(name, value)
                        self.send_header("Content-Length", length)
                        self.end_headers()
                    else:
                        self._send(response.status, payload, relayed)
                finally:
                    connection.close()

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

        return Handler
