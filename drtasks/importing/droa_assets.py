"""A DRoA model's assets: asked for, waited for, downloaded to a file and proven.

``GET /models/{id}/getasset?assetType=T`` answers a presigned S3 URL, or ``{"status": "QUEUED"}``
while DRoA packages a VIRTUAL_MODEL (DRfC's droa-download-logs polls up to 5 minutes for it). The
URL lives 300 s (physical model) to an hour (logs), so it is asked for right before downloading.
The bytes go to ``<file>.part`` and are renamed only once their size matches the answer's
Content-Length and their MD5 the object's ETag (a plain MD5 unless the object was written in parts)
or a Content-MD5 header.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from drtasks import timeouts
from drtasks.errors import DrtasksError

ASSET_TYPES = ("TRAINING_LOGS", "EVALUATION_LOGS", "PHYSICAL_CAR_MODEL", "VIRTUAL_MODEL", "VIDEOS")
DEFAULT_ASSET = "TRAINING_LOGS"
# DRfC's droa-download-logs gives packaging this long.
PACKAGING_TIMEOUT = 300.0
CHUNK = 1024 * 1024
_ETAG_MD5 = re.compile(r"^[0-9a-f]{32}$")
_FILENAME = re.compile(r'filename="?([^";]+)"?')


def asset_type(text: str) -> str:
    """DRoA's asset type for ``text`` (case and '-' forgiven: training-logs -> TRAINING_LOGS)."""
    wanted = text.strip().upper().replace("-", "_")
    if wanted not in ASSET_TYPES:
        raise DrtasksError(f"--asset {text!r}: choose one of {', '.join(ASSET_TYPES)}")
    return wanted


def check_request(asset: str, evaluation_id: str | None) -> None:
    """What DRoA would refuse about the request itself, said before any call."""
    if asset == "EVALUATION_LOGS" and not evaluation_id:
        raise DrtasksError("EVALUATION_LOGS needs --evaluation-id (the evaluation whose logs to download)")
    if evaluation_id and asset != "EVALUATION_LOGS":
        raise DrtasksError(f"--evaluation-id belongs to EVALUATION_LOGS, not {asset}")


def file_name_of(url: str) -> str | None:
    """The name DRoA gives the download: its Content-Disposition, else the object's key."""
    parsed = urllib.parse.urlparse(url)
    query = urllib.parse.parse_qs(parsed.query)
    candidates = []
    for disposition in query.get("response-content-disposition", []):
        if found := _FILENAME.search(disposition):
            candidates.append(found.group(1))
    candidates.append(urllib.parse.unquote(parsed.path.rsplit("/", 1)[-1]))
    for name in candidates:
        name = name.replace("\\", "/").rsplit("/", 1)[-1].strip()
        if name and name not in (".", ".."):
            return name
    return None


def default_file_name(model: dict[str, Any], asset: str, url: str | None) -> str:
    """What the file is called without --output: DRoA's own name for it, as DRfC saves it."""
    if url and (name := file_name_of(url)):
        return name
    if asset == "VIRTUAL_MODEL":  # the Content-Disposition DRoA will give once packaged
        return f"virtualmodel-{model.get('name')}.tar.gz"
    return f"{model.get('modelId')}_{asset.lower()}.bin"


def asset_url(
    api: Any,
    model: dict[str, Any],
    asset: str,
    evaluation_id: str | None = None,
    on_status: Callable[[str], None] | None = None,
    poll_seconds: float = 5.0,
    timeout: float = PACKAGING_TIMEOUT,
) -> str:
    """The presigned URL, waiting while DRoA packages the asset (QUEUED)."""
    model_id = str(model.get("modelId"))
    deadline = time.monotonic() + timeout
    reported = None
    while True:
        try:
            answer = api.get_asset_url(model_id, asset, evaluation_id)
        except DrtasksError as error:
            raise DrtasksError(f"DRoA has no {asset} for model '{model.get('name')}' ({model_id}): {_reason(error.message)}") from None
        url = answer.get("url")
        if url:
            if on_status and reported:
                on_status("ready")
            return str(url)
        status = str(answer.get("status") or "UNKNOWN")
        if status != "QUEUED":
            raise DrtasksError(f"DRoA answered no URL for {asset} of model {model_id} but the status {status}")
        if on_status and status != reported:
            on_status(f"{status} (DRoA is packaging it)")
        reported = status
        if time.monotonic() >= deadline:
            raise DrtasksError(f"DRoA was still packaging {asset} of model {model_id} after {int(timeout)} s; try again later")
        time.sleep(poll_seconds)


def _reason(message: str) -> str:
    # "DRoA found nothing at GET /models/x/getasset: Unable to find ..." -> "Unable to find ..."
    return message.split(": ", 1)[1] if message.startswith("DRoA ") and ": " in message else message


@dataclass(frozen=True)
class Downloaded:
    path: Path
    size: int
    md5: str
    sha256: str
    proof: str  # how the bytes were proven, for people


def _http_error(error: urllib.error.HTTPError, what: str) -> DrtasksError:
    body = error.read(4096).decode("utf-8", errors="replace")
    code = re.search(r"<Code>([^<]+)</Code>", body)
    message = re.search(r"<Message>([^<]+)</Message>", body)
    if error.code == 403 and message and "expired" in message.group(1).lower():
        return DrtasksError(f"the download link DRoA gave for {what} has expired ({message.group(1)}); run the command again for a fresh one")
    detail = f"{code.group(1)}: {message.group(1)}" if code and message else (error.reason or "")
    return DrtasksError(f"downloading {what} failed with HTTP {error.code} {detail}".rstrip())


def _expected_md5(headers: Any) -> tuple[str | None, str]:
    """(hex MD5 the bytes must have, where it came from), or (None, why not)."""
    content_md5 = headers.get("Content-MD5")
    if content_md5:
        try:
            return base64.b64decode(content_md5).hex(), "Content-MD5"
        except ValueError:
            pass
    etag = (headers.get("ETag") or "").strip('"')
    if _ETAG_MD5.match(etag):
        return etag, "ETag"
    if etag:
        return None, "its ETag is of an object written in parts (size checked)"
    return None, "the answer carries no checksum (size checked)"


class _Retry(Exception):
    """A short or mismatching read: read the URL again."""


def _read_proven(url: str, what: str, sink: Callable[[bytes], None], on_bytes: Callable[[int, int | None], None] | None) -> tuple[int, str, str, str]:
    """Stream ``url`` into ``sink``; (size, md5, sha256, proof) once size and checksum hold, else _Retry."""
    wait = timeouts.seconds()  # for the connection and for each read, whatever the file's size
    try:
        response = urllib.request.urlopen(url, timeout=wait)
    except urllib.error.HTTPError as error:
        raise _http_error(error, what) from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        why = f"no answer within {wait:g} s ({timeouts.TIMEOUT_ENV} sets the wait)" if isinstance(reason, TimeoutError) else reason
        raise DrtasksError(f"cannot reach the download of {what}: {why}") from None
    with response:
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        expected, origin = _expected_md5(response.headers)
        md5, sha = hashlib.md5(usedforsecurity=False), hashlib.sha256()
        written = 0
        try:
            while chunk := response.read(CHUNK):
                md5.update(chunk)
                sha.update(chunk)
                sink(chunk)
                written += len(chunk)
                if on_bytes:
                    on_bytes(len(chunk), total)
        except (ConnectionError, TimeoutError, http.client.HTTPException) as error:
            raise _Retry(f"the connection broke after {written} bytes ({error.__class__.__name__})") from None
    if total is not None and written != total:
        raise _Retry(f"read {written} of {total} bytes")
    if expected is not None and md5.hexdigest() != expected:
        raise _Retry(f"the bytes read do not match the {origin}")
    proof = f"{written:,} bytes as announced" if total is not None else f"{written:,} bytes"
    proof += f", MD5 equal to the {origin}" if expected is not None else f"; {origin}"
    return written, md5.hexdigest(), sha.hexdigest(), proof


def download(url: str, path: Path, what: str, on_bytes: Callable[[int, int | None], None] | None = None,
             attempts: int = 3) -> Downloaded:
    """GET ``url`` into ``path`` through ``<path>.part``; renamed only when proven.

    ``on_bytes(n, total)`` reports progress (total: the Content-Length, when known).
    """
    partial = path.with_name(path.name + ".part")
    problem = ""
    for _attempt in range(attempts):
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with partial.open("wb") as handle:
                size, md5, sha, proof = _read_proven(url, what, handle.write, on_bytes)
        except _Retry as retry:
            problem = str(retry)
            continue
        except OSError as error:
            partial.unlink(missing_ok=True)
            raise DrtasksError(f"{path}: cannot write it ({error.strerror or error.__class__.__name__})") from None
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        os.replace(partial, path)
        return Downloaded(path, size, md5, sha, proof)
    partial.unlink(missing_ok=True)
    raise DrtasksError(f"downloading {what}: {problem} on {attempts} attempts; {path} was not written")


def fetch(url: str, what: str, attempts: int = 3) -> bytes:
    """A small download held in memory (a metrics file, a car archive), proven like ``download``."""
    problem = ""
    for _attempt in range(attempts):
        chunks: list[bytes] = []
        try:
            _read_proven(url, what, chunks.append, None)
        except _Retry as retry:
            problem = str(retry)
            continue
        return b"".join(chunks)
    raise DrtasksError(f"downloading {what}: {problem} on {attempts} attempts")


def without_signatures(value: Any) -> Any:
    """``value`` with every presigned URL cut before its query: the signature (and any session token
    in it) is a credential for whoever holds it, so drtasks never prints one."""
    if isinstance(value, dict):
        return {key: without_signatures(item) for key, item in value.items()}
    if isinstance(value, list):
        return [without_signatures(item) for item in value]
    if isinstance(value, str) and "X-Amz-Signature=" in value:
        return value.split("?", 1)[0] + "?(presigned; signature omitted)"
    return value
