"""A session with one car's web console, over TLS pinned to its certificate's SHA-256 fingerprint.

The car's console (Flask behind nginx, self-signed certificate) works like a browser session:
``GET /login`` gives a page whose ``<meta name="csrf-token">`` carries Flask-WTF's token (and
sets Flask's session cookie that token is bound to); ``POST /login`` with the form field
``password`` answers ``{"redirect": "/home"}`` and sets the ``deepracer_token`` cookie, or the
text ``failure``; every later POST/PUT needs the token in ``X-CSRFToken``. Without the cookie
nginx answers 401 before Flask sees the request; a body over 200 MB gets nginx's 413.

The pin is checked by urllib3 during the handshake of every connection, before any byte of a
request is sent: a certificate with another fingerprint never receives the password.
"""

from __future__ import annotations

import html
import re
import secrets
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from drtasks.car.pins import changed_message, known_cars_file, show_fingerprint
from drtasks.errors import DrtasksError

if TYPE_CHECKING:
    import requests

CONNECT_TIMEOUT = 10.0
# The car answers an upload only once it has unpacked and installed the model; loading waits
# for the inference engine. Both take a while on the car's small CPU.
READ_TIMEOUT = 600.0
TOKEN_COOKIE = "deepracer_token"
SEND_BLOCK = 256 * 1024


def _pinned_adapter(fingerprint: str) -> Any:
    from requests.adapters import HTTPAdapter

    from drtasks.car.pins import unverified_context

    # One context for every connection: no CA store is loaded (it would be unused, and loading
    # it costs tens of milliseconds per connection).
    context = unverified_context()

    class PinnedAdapter(HTTPAdapter):
        """Every connection: no CA check (the car's certificate is self-signed), the pin instead."""

        def build_connection_pool_key_attributes(self, request: Any, verify: Any, cert: Any = None) -> tuple[dict[str, Any], dict[str, Any]]:
            host_params, pool_kwargs = super().build_connection_pool_key_attributes(request, False, cert)
            pool_kwargs["ssl_context"] = context
            pool_kwargs["blocksize"] = SEND_BLOCK  # fewer, larger writes for the archive
            pool_kwargs["assert_fingerprint"] = fingerprint  # urllib3 checks it in the handshake
            return host_params, pool_kwargs

        def cert_verify(self, conn: Any, url: str, verify: Any, cert: Any) -> None:
            # requests would switch the pool to CA verification here; the pin replaces it.
            conn.cert_reqs = "CERT_NONE"
            conn.assert_fingerprint = fingerprint

    return PinnedAdapter(max_retries=0)


class _CsrfMeta(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.token: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "meta" and values.get("name") == "csrf-token" and values.get("content"):
            self.token = self.token or values["content"]


def csrf_token_of(page: str) -> str | None:
    parser = _CsrfMeta()
    parser.feed(page)
    return parser.token


def error_text(body: str) -> str:
    """The message of an HTML error page (Flask's ``<p>``, nginx's ``<title>``), else the text."""
    for pattern in (r"<p>(.*?)</p>", r"<title>(.*?)</title>"):
        found = re.search(pattern, body, re.IGNORECASE | re.DOTALL)
        if found:
            return html.unescape(re.sub(r"<[^>]+>", "", found.group(1))).strip()
    return body.strip()[:200]


class MultipartBody:
    """``multipart/form-data`` with one file field, read block by block without copying the file.

    Reports each block as it is read for sending, so progress follows the bytes on the wire.
    """

    def __init__(self, field_name: str, file_name: str, content: bytes, content_type: str, advanced: Callable[[int], None]) -> None:
        if any(ch in file_name for ch in '"\\\r\n') or any(ch in field_name for ch in '"\\\r\n'):
            raise DrtasksError(f"cannot send a file named {file_name!r}: quotes, backslashes and line breaks are not allowed")
        self.boundary = secrets.token_hex(16)
        head = (
            f"--{self.boundary}\r\nContent-Disposition: form-data; name=\"{field_name}\"; filename=\"{file_name}\"\r\n"
            f"Content-Type: {content_type}\r\n\r\n"
        ).encode()
        tail = f"\r\n--{self.boundary}--\r\n".encode()
        self._parts = [memoryview(head), memoryview(content), memoryview(tail)]
        self._length = sum(len(part) for part in self._parts)
        self._advanced = advanced

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"

    def __len__(self) -> int:
        return self._length

    def read(self, size: int | None = -1) -> bytes:
        wanted = self._length if size is None or size < 0 else size
        out = bytearray()
        while self._parts and len(out) < wanted:
            part = self._parts[0]
            take = part[: wanted - len(out)]
            out += take
            if len(take) == len(part):
                self._parts.pop(0)
            else:
                self._parts[0] = part[len(take) :]
        if out:
            self._advanced(len(out))
        return bytes(out)


@dataclass(frozen=True)
class UploadAnswer:
    success: bool
    message: str


class CarClient:
    """One logged-in console session. The password is used for login and never kept."""

    def __init__(self, url: str, fingerprint: str, pins_file: Path | None = None) -> None:
        import requests

        self.url = url
        self.fingerprint = fingerprint
        self._pins_file = pins_file or known_cars_file()  # named when the certificate changed
        self._session: requests.Session = requests.Session()
        # The car is on the local network; a proxy from the environment has no business here.
        self._session.trust_env = False
        self._session.mount("https://", _pinned_adapter(fingerprint))
        self._session.headers["Referer"] = url + "/"  # what a browser sends; Flask-WTF checks it over HTTPS
        self._csrf: str | None = None

    # ------------------------------------------------------------------ plumbing

    def _request(self, method: str, path: str, what: str, **kwargs: Any) -> "requests.Response":
        import requests

        headers = dict(kwargs.pop("headers", {}) or {})
        if method not in ("GET", "HEAD") and self._csrf:
            headers["X-CSRFToken"] = self._csrf
        try:
            response = self._session.request(method, self.url + path, headers=headers, timeout=(CONNECT_TIMEOUT, READ_TIMEOUT), allow_redirects=False, **kwargs)
        except requests.exceptions.SSLError as error:
            presented = re.search(r'got "?([0-9a-fA-F]{64})', str(error))
            if presented or "Fingerprints did not match" in str(error):
                raise DrtasksError(changed_message(self.url, self.fingerprint, presented.group(1).lower() if presented else "?" * 64, self._pins_file)) from None
            raise DrtasksError(f"{self.url}: TLS failed while {what}") from None
        except requests.exceptions.Timeout:
            raise DrtasksError(f"{self.url}: no answer while {what} (timed out)") from None
        except requests.exceptions.ConnectionError as error:
            reason = "connection refused" if "refused" in str(error).lower() else "connection failed"
            raise DrtasksError(f"cannot reach {self.url} while {what}: {reason}") from None
        if response.status_code == 401:
            raise DrtasksError(f"{self.url}: not logged in while {what} (the car answered 401)")
        if response.status_code == 413:
            raise DrtasksError(f"{self.url}: the car refused the upload as too large (its limit is 200 MB)")
        if response.status_code == 400 and "CSRF" in response.text:
            raise DrtasksError(f"{self.url}: the car refused {what}: {error_text(response.text)}")
        if response.status_code >= 400:
            raise DrtasksError(f"{self.url}: {what} failed: HTTP {response.status_code} {error_text(response.text)}")
        return response

    def _json(self, response: "requests.Response", what: str) -> Any:
        try:
            return response.json()
        except ValueError:
            raise DrtasksError(f"{self.url}: {what}: the car's answer is not JSON (HTTP {response.status_code})") from None

    # ------------------------------------------------------------------ console API

    def login(self, password: str) -> None:
        page = self._request("GET", "/login", "opening the login page")
        self._csrf = csrf_token_of(page.text)
        if not self._csrf:
            raise DrtasksError(f"{self.url}/login has no CSRF token: is this a DeepRacer car's console?")
        answer = self._request("POST", "/login", "logging in", data={"password": password})
        if answer.text.strip() == "failure" or not self._session.cookies.get(TOKEN_COOKIE):
            raise DrtasksError(f"{self.url}: wrong password (the car answered 'failure')")

    def models(self) -> list[dict[str, Any]]:
        """``GET /api/models``: the models the car can load (model_name, model_folder_name, ...)."""
        data = self._json(self._request("GET", "/api/models", "listing models"), "listing models")
        if not isinstance(data, dict) or not isinstance(data.get("models"), list):
            raise DrtasksError(f"{self.url}: unexpected model list from the car")
        return data["models"]

    def uploaded_models(self) -> list[dict[str, Any]]:
        """``GET /api/uploaded_model_list``: every model folder (name, size, creation_time, ...)."""
        data = self._json(self._request("GET", "/api/uploaded_model_list", "listing uploaded models"), "listing uploaded models")
        if not isinstance(data, list):
            raise DrtasksError(f"{self.url}: unexpected uploaded model list from the car")
        return data

    def upload(self, file_name: str, archive: bytes, advanced: Callable[[int], None] = lambda n: None) -> UploadAnswer:
        """``POST /api/uploadModels``; the car replaces the folder named after the file and installs it."""
        body = MultipartBody("file", file_name, archive, "application/gzip", advanced)
        response = self._request("POST", "/api/uploadModels", f"uploading {file_name}", data=body, headers={"Content-Type": body.content_type})
        data = self._json(response, f"uploading {file_name}")
        if not isinstance(data, dict) or "success" not in data:
            raise DrtasksError(f"{self.url}: unexpected answer to the upload: {str(data)[:200]}")
        return UploadAnswer(data["success"] is True, str(data.get("message") or data.get("reason") or ""))

    def load(self, folder: str, name: str) -> UploadAnswer:
        """``PUT /api/models/<folder>/<name>``: load the model for inference."""
        from urllib.parse import quote

        what = f"loading {folder}/{name}"
        data = self._json(self._request("PUT", f"/api/models/{quote(folder, safe='')}/{quote(name, safe='')}", what), what)
        if not isinstance(data, dict) or "success" not in data:
            raise DrtasksError(f"{self.url}: unexpected answer to {what}: {str(data)[:200]}")
        return UploadAnswer(data["success"] is True, str(data.get("reason") or data.get("message") or ""))

    def close(self) -> None:
        self._session.close()

    def __repr__(self) -> str:  # never shows cookies or tokens
        return f"CarClient({self.url}, pinned {show_fingerprint(self.fingerprint)[:23]}...)"
