"""Known cars, like ssh's known_hosts: each car's URL and the SHA-256 fingerprint of its certificate.

The car serves a self-signed certificate, so no authority can vouch for it. The first time drtasks
meets a car it shows the fingerprint and asks (or takes ``--trust-fingerprint``); from then on
the pinned fingerprint is the car's identity and a different certificate is refused.

The file (``DRTASKS_KNOWN_CARS``, else ``$XDG_CONFIG_HOME/drtasks/known_cars``, else
``~/.config/drtasks/known_cars``) is created 0600 in a 0700 folder; one line per car:
``https://HOST[:PORT] AB:CD:...`` (``#`` starts a comment).
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
import ssl
from pathlib import Path
from urllib.parse import urlsplit

from drtasks.errors import DrtasksError

KNOWN_CARS_ENV = "DRTASKS_KNOWN_CARS"
_HEX = re.compile(r"^[0-9a-f]{64}$")
PROBE_TIMEOUT = 10.0


def known_cars_file() -> Path:
    explicit = os.environ.get(KNOWN_CARS_ENV)
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "drtasks" / "known_cars"


def car_url(text: str, source: str = "--car") -> str:
    """``HOST``, ``https://HOST[:PORT][/]`` -> ``https://host[:port]``: one spelling per car."""
    raw = text.strip()
    if not raw:
        raise DrtasksError(f"{source}: empty car address")
    if "://" not in raw:
        raw = "https://" + raw
    parts = urlsplit(raw)
    if parts.scheme.lower() != "https":
        raise DrtasksError(f"{source} {text}: the car's console is served over HTTPS only; use https://HOST")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username or parts.password:
        raise DrtasksError(f"{source} {text}: give the car's address only, https://HOST[:PORT]")
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        raise DrtasksError(f"{source} {text}: invalid port") from None
    if not host:
        raise DrtasksError(f"{source} {text}: no host name")
    shown = f"[{host}]" if ":" in host else host
    return f"https://{shown}" if port in (None, 443) else f"https://{shown}:{port}"


def host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "", parts.port or 443


def normalize_fingerprint(text: str, source: str = "--trust-fingerprint") -> str:
    """Accept ``AB:CD:..``, ``abcd..`` or ``SHA256:AB:..``; return 64 lower-case hex digits."""
    value = text.strip()
    if value.lower().startswith(("sha256:", "sha256=")):
        value = value[7:]
    value = re.sub(r"[\s:]", "", value).lower()
    if not _HEX.match(value):
        raise DrtasksError(f"{source} {text!r}: expected a SHA-256 fingerprint, 64 hex digits (colons allowed)")
    return value


def show_fingerprint(fingerprint: str) -> str:
    """The way browsers and ``openssl x509 -fingerprint -sha256`` show it, so people can compare."""
    return ":".join(fingerprint[i : i + 2] for i in range(0, len(fingerprint), 2)).upper()


def certificate_fingerprint(der: bytes) -> str:
    return hashlib.sha256(der).hexdigest()


def unverified_context() -> ssl.SSLContext:
    """TLS without a CA check or host name check: the caller compares the certificate's fingerprint."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def presented_fingerprint(url: str, timeout: float = PROBE_TIMEOUT) -> str:
    """The fingerprint of the certificate the car presents now.

    Only a TLS handshake: no request is sent, so nothing (no password) reaches an unknown server.
    """
    host, port = host_port(url)
    context = unverified_context()  # nothing is sent on this connection; the fingerprint decides
    try:
        with socket.create_connection((host, port), timeout=timeout) as raw:
            with context.wrap_socket(raw, server_hostname=host) as tls:
                der = tls.getpeercert(binary_form=True)
    except (OSError, ssl.SSLError) as error:
        raise DrtasksError(f"cannot reach {url}: {_reason(error)}") from None
    if not der:
        raise DrtasksError(f"{url} presented no certificate")
    return certificate_fingerprint(der)


def _reason(error: BaseException) -> str:
    if isinstance(error, socket.timeout):
        return "no answer (timed out)"
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(error, socket.gaierror):
        return "unknown host"
    if isinstance(error, ssl.SSLError):
        return f"TLS handshake failed ({error.reason or error})"
    if isinstance(error, OSError):
        return error.strerror or error.__class__.__name__
    return str(error)


class KnownCars:
    """The known-cars file, read once; ``add`` writes it back at once (0600)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or known_cars_file()
        self._pins: dict[str, str] = {}
        self._lines: list[str] = []
        self._load()

    def _load(self) -> None:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return
        except (OSError, UnicodeDecodeError) as error:
            raise DrtasksError(f"{self.path}: cannot read the known cars ({error.__class__.__name__})") from None
        self._lines = text.splitlines()
        for number, line in enumerate(self._lines, start=1):
            content = line.split("#", 1)[0].strip()
            if not content:
                continue
            fields = content.split()
            if len(fields) != 2:
                raise DrtasksError(f"{self.path}:{number}: expected 'https://HOST[:PORT] FINGERPRINT'")
            url = car_url(fields[0], f"{self.path}:{number}")
            self._pins[url] = normalize_fingerprint(fields[1], f"{self.path}:{number}")

    def get(self, url: str) -> str | None:
        return self._pins.get(url)

    def add(self, url: str, fingerprint: str) -> None:
        """Pin ``url`` (replacing no existing pin: a changed certificate is the user's call)."""
        if url in self._pins:
            raise DrtasksError(f"{url} is already pinned in {self.path}")  # pragma: no cover - callers check
        self._pins[url] = fingerprint
        if not self._lines:
            self._lines = ["# drtasks known cars: URL and SHA-256 fingerprint of its certificate"]
        self._lines.append(f"{url} {show_fingerprint(fingerprint)}")
        self._write()

    def _write(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        temp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write("\n".join(self._lines) + "\n")
        os.chmod(temp, 0o600)  # umask can only narrow; this keeps it exact
        os.replace(temp, self.path)


def changed_message(url: str, pinned: str, presented: str, path: Path) -> str:
    return (
        f"{url}: certificate changed, refusing: pinned {show_fingerprint(pinned)}, presented {show_fingerprint(presented)}"
        f" (if the car was re-imaged, delete its line in {path})"
    )
