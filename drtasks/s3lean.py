"""GET, PUT and CopyObject of one object over a pooled HTTP connection, signed with SigV4 here.

Why: moving thousands of small objects (a model's metrics), botocore's work per call (parsing
parameters, building the request, events, parsing the answer) costs more CPU than the transfer
itself, and under the GIL that caps the rate whatever the number of threads. These three calls
are simple enough to make directly: a request signed with AWS Signature Version 4 (the derived
signing key is cached per day), sent on a kept-alive connection of the calling thread. Everything else stays botocore.

The executor keeps every proof it has with botocore (``drtasks.transfer``): the source GET names
the planned ETag (``If-Match``), the PUT carries ``Content-MD5`` and its answer's ETag is checked,
the copy names the source ETag (``x-amz-copy-source-if-match``). Failures read like
``drtasks.s3.s3_errors``'s, naming the side: "S3 refused GetObject on s3://b/p at URL: Code: text".
Server errors (5xx) and broken connections are tried again with backoff, like botocore's standard
retry mode (3 attempts).

Used only for endpoints given explicitly (MinIO, SeaweedFS, ...: path-style addressing) and when
no proxy is configured for them; AWS itself and proxied endpoints stay with botocore.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import os
import random
import re
import socket
import ssl
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Iterator

from drtasks.errors import DrtasksError
from drtasks.s3 import ObjectInfo, S3Location

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
ATTEMPTS = 3  # botocore's standard retry mode: 3 attempts in all
# Set to 0 to send every request through botocore (a way out should an S3 server disagree).
ENV_SWITCH = "DRTASKS_LEAN_S3"
_RETRY_STATUS = frozenset({500, 502, 503, 504})
_UNRESERVED = "-_.~"


class S3Refused(DrtasksError):
    """S3 answered an error; ``s3_code`` is its code (e.g. NoSuchKey), or the HTTP status without one."""

    def __init__(self, message: str, s3_code: str) -> None:
        super().__init__(message)
        self.s3_code = s3_code


class PreconditionFailed(S3Refused):
    """The object is not the version named by If-Match (S3 answered 412)."""


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


def _quote(text: str, safe: str = "") -> str:
    return urllib.parse.quote(text, safe=_UNRESERVED + safe)


def _error_fields(body: bytes) -> tuple[str, str]:
    text = body[:4096].decode("utf-8", "replace")
    code = re.search(r"<Code>(.*?)</Code>", text, re.S)
    message = re.search(r"<Message>(.*?)</Message>", text, re.S)
    return (code.group(1).strip() if code else ""), (message.group(1).strip() if message else "")


class LeanS3:
    """One S3 endpoint reached with one set of credentials; thread-safe."""

    def __init__(
        self,
        location: S3Location,
        credentials: Callable[[], tuple[str, str, str | None]],
        region: str,
        *,
        verify: Any = True,
        timeout: float | None = None,
        attempts: int = ATTEMPTS,
        backoff: float = 0.2,
    ) -> None:
        from drtasks import timeouts

        timeout = timeout if timeout is not None else timeouts.seconds()
        assert location.endpoint_url
        parsed = urllib.parse.urlsplit(location.endpoint_url)
        self.location = location
        self.where = f"{location.url} at {location.endpoint_url}"
        self.host = parsed.netloc
        self.base_path = parsed.path.rstrip("/")
        self.region = region or "us-east-1"
        self.attempts = max(1, attempts)
        self.backoff = backoff
        self._credentials = credentials
        self._keys: dict[tuple[str, str], bytes] = {}
        self._keys_lock = threading.Lock()
        self._hostname = parsed.hostname or ""
        self._port = parsed.port or (443 if parsed.scheme == "https" else 80)
        self.timeout = timeout
        self._context: Any = _tls_context(verify) if parsed.scheme == "https" else None
        # One kept-alive connection per thread and endpoint: the executor's pools bound the threads.
        self._local = threading.local()
        self._opened: list[http.client.HTTPConnection] = []
        self._opened_lock = threading.Lock()

    @classmethod
    def for_client(cls, client: Any, location: S3Location) -> "LeanS3 | None":
        """A lean path to ``location``'s endpoint with ``client``'s credentials, or None where botocore must stay."""
        endpoint = location.endpoint_url or ""
        if os.environ.get(ENV_SWITCH, "1").strip().lower() in ("0", "false", "no", "off"):
            return None
        parsed = urllib.parse.urlsplit(endpoint)
        if parsed.scheme not in ("http", "https") or not parsed.hostname or "amazonaws.com" in endpoint:
            return None
        if urllib.request.getproxies().get(parsed.scheme) and not urllib.request.proxy_bypass(parsed.hostname):
            return None
        signer = getattr(client, "_request_signer", None)
        source = getattr(signer, "_credentials", None)
        if source is None or not hasattr(source, "get_frozen_credentials"):
            return None  # botocore then says which credentials are missing

        def credentials() -> tuple[str, str, str | None]:
            frozen = source.get_frozen_credentials()  # refreshable credentials stay fresh
            return frozen.access_key, frozen.secret_key, frozen.token

        session = getattr(getattr(client, "_endpoint", None), "http_session", None)
        verify = getattr(session, "_verify", True)
        config = client.meta.config  # the same waits and tries as the client's (drtasks.timeouts)
        timeout = max(filter(None, (getattr(config, "connect_timeout", None), getattr(config, "read_timeout", None))), default=None)
        attempts = (getattr(config, "retries", None) or {}).get("total_max_attempts") or ATTEMPTS
        return cls(location, credentials, client.meta.region_name or location.region, verify=verify, timeout=timeout, attempts=attempts)

    def close(self) -> None:
        with self._opened_lock:
            opened, self._opened = self._opened, []
        for connection in opened:
            connection.close()

    def _connection(self) -> http.client.HTTPConnection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            if self._context is not None:
                connection = http.client.HTTPSConnection(self._hostname, self._port, timeout=self.timeout, context=self._context)
            else:
                connection = http.client.HTTPConnection(self._hostname, self._port, timeout=self.timeout)
            self._local.connection = connection
            with self._opened_lock:
                self._opened.append(connection)
        if connection.sock is None:
            connection.connect()
            connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # type: ignore[union-attr]
        return connection

    def _drop(self) -> None:
        """Close this thread's connection (broken, or its answer left unread): the next request opens another."""
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()

    # -- signing -----------------------------------------------------------------------
    def _signing_key(self, secret: str, day: str) -> bytes:
        with self._keys_lock:
            key = self._keys.get((secret, day))
            if key is None:
                key = ("AWS4" + secret).encode()
                for part in (day, self.region, "s3", "aws4_request"):
                    key = hmac.new(key, part.encode(), hashlib.sha256).digest()
                self._keys = {(secret, day): key}  # one day's key is all that is ever needed
            return key

    def _signed(self, method: str, path: str, query: str, headers: dict[str, str], payload_hash: str) -> dict[str, str]:
        access, secret, token = self._credentials()
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        day = stamp[:8]
        headers = {**headers, "host": self.host, "x-amz-date": stamp, "x-amz-content-sha256": payload_hash}
        if token:
            headers["x-amz-security-token"] = token
        names = sorted(name.lower() for name in headers)
        lowered = {name.lower(): " ".join(str(value).split()) for name, value in headers.items()}
        canonical = "\n".join([method, path, query, "".join(f"{n}:{lowered[n]}\n" for n in names), ";".join(names), payload_hash])
        scope = f"{day}/{self.region}/s3/aws4_request"
        to_sign = f"AWS4-HMAC-SHA256\n{stamp}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
        signature = hmac.new(self._signing_key(secret, day), to_sign.encode(), hashlib.sha256).hexdigest()
        headers["Authorization"] = f"AWS4-HMAC-SHA256 Credential={access}/{scope}, SignedHeaders={';'.join(names)}, Signature={signature}"
        return headers

    def _path(self, bucket: str, key: str) -> str:
        return f"{self.base_path}/{_quote(bucket)}/{_quote(key, '/')}"

    # -- one request, tried again on server errors and broken connections ------------------
    def _request(
        self, operation: str, method: str, path: str, headers: dict[str, str], body: bytes = b"", stream: bool = False, query: str = "", where: str = ""
    ) -> Any:
        """The response (body unread when ``stream``), or DrtasksError naming the side."""
        where = where or self.where
        payload_hash = hashlib.sha256(body).hexdigest() if body else EMPTY_SHA256
        target = f"{path}?{query}" if query else path
        problem = ""
        for attempt in range(self.attempts):
            if attempt:
                time.sleep(random.random() * min(20.0, self.backoff * 2**attempt))
            try:
                connection = self._connection()
            except TimeoutError:
                self._drop()
                problem = "did not accept a connection"
                continue
            except OSError:
                self._drop()
                problem = "unreachable"
                continue
            try:
                connection.request(method, target, body=body or None, headers=self._signed(method, path, query, headers, payload_hash))
                response = connection.getresponse()
            except TimeoutError:
                self._drop()
                problem = "did not answer"
                continue
            except (http.client.HTTPException, OSError) as error:  # reset, closed before an answer
                self._drop()
                problem = f"the connection broke before S3 answered {operation} ({error.__class__.__name__})"
                continue
            if stream and response.status < 300:
                return response
            data = self._drain(response)
            if response.status in _RETRY_STATUS:
                code, message = _error_fields(data)
                problem = f"S3 refused {operation} on {where}: {code or response.status}: {message or code or response.reason}"
                continue
            if response.status >= 300:
                code, message = _error_fields(data)
                code = code or str(response.status)
                text = f"S3 refused {operation} on {where}: {code}: {message or response.reason or code}"
                raise (PreconditionFailed if response.status == 412 else S3Refused)(text, code)
            return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, data)
        if problem == "unreachable":
            raise DrtasksError(f"cannot reach the S3 endpoint for {where}: is the server running?")
        if problem.startswith("did not"):
            from drtasks import timeouts

            raise DrtasksError(
                f"the S3 endpoint for {where} {problem} within {self.timeout:g} s ({self.attempts} tries; {timeouts.TIMEOUT_ENV} sets the wait)"
            )
        if problem.startswith("S3 refused"):
            raise DrtasksError(problem)
        raise DrtasksError(f"S3 failure on {where}: {problem}")

    def _drain(self, response: http.client.HTTPResponse) -> bytes:
        """The whole (small) body of an answer; a body that breaks closes the connection."""
        try:
            return response.read()
        except (http.client.HTTPException, OSError):
            self._drop()
            return b""

    def _read_up_to(self, response: http.client.HTTPResponse, limit: int) -> bytes:
        """At most ``limit`` bytes; a body that breaks gives what arrived (the caller reads again)."""
        chunks: list[bytes] = []
        remaining = limit
        whole = False
        try:
            while remaining > 0:
                chunk = response.read(min(remaining, 4 << 20))
                if not chunk:
                    whole = True
                    break
                chunks.append(chunk)
                remaining -= len(chunk)
        except (http.client.HTTPException, OSError):
            pass
        if not whole:
            self._drop()  # unread or broken: this connection cannot carry another request
        return b"".join(chunks)

    # -- the calls -----------------------------------------------------------------------
    def list_objects(self, bucket: str, prefix: str, delimiter: str = "") -> Iterator[ObjectInfo]:
        """ListObjectsV2 of ``prefix`` (its direct files only with a delimiter), page by page.

        A page that is not a well-formed answer (broken XML, an entry without its key, size or
        ETag) is asked for again: a plan is never made from a listing that could not be read whole.
        """
        token = ""
        while True:
            fields = {"list-type": "2", "prefix": prefix, **({"delimiter": delimiter} if delimiter else {}), **({"continuation-token": token} if token else {})}
            query = "&".join(f"{_quote(name)}={_quote(value)}" for name, value in sorted(fields.items()))
            where = f"s3://{bucket}/{prefix.rstrip('/')}".rstrip("/") + f" at {self.location.endpoint_url}"
            page = None
            for _attempt in range(self.attempts):
                page = listing_page(self._request("ListObjectsV2", "GET", f"{self.base_path}/{_quote(bucket)}", {}, query=query, where=where).body)
                if page is not None:
                    break
            if page is None:
                raise DrtasksError(f"S3 failure on {where}: the listing is not a well-formed ListObjectsV2 answer ({self.attempts} tries)")
            objects, token = page
            yield from objects
            if not token:
                return

    def get_object(self, bucket: str, key: str, if_match: str, limit: int) -> bytes:
        """Up to ``limit`` bytes of the object named by ``if_match``; fewer when the body breaks or ends."""
        response = self._request("GetObject", "GET", self._path(bucket, key), {"if-match": f'"{if_match}"'}, stream=True)
        return self._read_up_to(response, limit)

    def put_object(self, bucket: str, key: str, body: bytes, content_md5: str, metadata: dict[str, str]) -> str:
        """PutObject with Content-MD5 and metadata; the ETag S3 answered."""
        headers = {"content-md5": content_md5, "content-length": str(len(body))}
        headers.update({f"x-amz-meta-{name}": value for name, value in metadata.items()})
        answer = self._request("PutObject", "PUT", self._path(bucket, key), headers, body)
        return answer.headers.get("etag", "").strip('"')

    def copy_object(self, bucket: str, key: str, source_bucket: str, source_key: str, if_match: str, metadata: dict[str, str]) -> str:
        """Server-side CopyObject of the source version ``if_match``, metadata replaced; the new ETag."""
        headers = {
            "x-amz-copy-source": f"/{_quote(source_bucket)}/{_quote(source_key, '/')}",
            "x-amz-copy-source-if-match": f'"{if_match}"',
            "x-amz-metadata-directive": "REPLACE",
            "content-length": "0",
        }
        headers.update({f"x-amz-meta-{name}": value for name, value in metadata.items()})
        for attempt in range(self.attempts):
            answer = self._request("CopyObject", "PUT", self._path(bucket, key), headers)
            text = answer.body.decode("utf-8", "replace")
            etag = re.search(r"<ETag>(.*?)</ETag>", text, re.S)
            if etag and "<CopyObjectResult" in text:
                return etag.group(1).replace("&quot;", "").strip().strip('"')
            # S3 may answer 200 and put an error in the body while it copies; botocore tries those again.
            code, message = _error_fields(answer.body)
            if attempt + 1 == self.attempts or code not in ("InternalError", "SlowDown", "ServiceUnavailable", ""):
                raise S3Refused(f"S3 refused CopyObject on {self.where}: {code or 'no result'}: {message or 'the answer holds no ETag'}", code)
            time.sleep(random.random() * min(20.0, self.backoff * 2 ** (attempt + 1)))
        raise AssertionError("unreachable")  # pragma: no cover


def _local_name(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]  # S3 answers in its 2006-03-01 namespace


def listing_page(body: bytes) -> tuple[list[ObjectInfo], str] | None:
    """The objects of one ListObjectsV2 answer and the token of the next page ("" on the last);
    None when the answer is not a well-formed page."""
    from xml.etree import ElementTree

    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError:
        return None
    if _local_name(root.tag) != "ListBucketResult":
        return None
    objects: list[ObjectInfo] = []
    truncated, token = False, ""
    for child in root:
        name = _local_name(child.tag)
        if name == "Contents":
            found = {_local_name(field.tag): field.text or "" for field in child}
            if not found.get("Key") or not found.get("Size", "").isdigit() or "ETag" not in found:
                return None
            modified = found.get("LastModified")
            objects.append(ObjectInfo(found["Key"], int(found["Size"]), found["ETag"].strip('"'), _timestamp(modified) if modified else 0.0))
        elif name == "IsTruncated":
            truncated = (child.text or "").strip() == "true"
        elif name == "NextContinuationToken":
            token = child.text or ""
    if truncated and not token:
        return None
    return objects, token if truncated else ""


def _timestamp(text: str) -> float:
    try:
        return datetime.fromisoformat(text.strip().replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def for_listing(client: Any) -> "LeanS3 | None":
    """The lean path to ``client``'s endpoint for listings (made once per client), or None."""
    cached = getattr(client, "_drtasks_lean", False)
    if cached is not False:
        return cached
    endpoint = getattr(getattr(client, "meta", None), "endpoint_url", None)
    lean = None
    if endpoint and getattr(getattr(getattr(client, "meta", None), "config", None), "s3", None) and client.meta.config.s3.get("addressing_style") == "path":
        lean = LeanS3.for_client(client, S3Location("", "", endpoint))
    try:
        client._drtasks_lean = lean
    except AttributeError:  # pragma: no cover - a client that takes no attributes
        pass
    return lean


def _tls_context(verify: Any) -> ssl.SSLContext:
    """TLS as botocore verifies it: its CA bundle (a path, AWS_CA_BUNDLE, or its default), or none when verify is off."""
    if verify is False:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    from botocore.httpsession import get_cert_path

    bundle = verify if isinstance(verify, str) else os.environ.get("AWS_CA_BUNDLE") or get_cert_path(True)
    return ssl.create_default_context(cafile=bundle) if bundle else ssl.create_default_context()
