"""Apply an S3 plan exactly, proving every byte it writes.

Order (so that a target never looks complete unless it is):
1. take the target's lease (``drtasks.lease``), abort the unfinished uploads the plan names;
2. remove the completion markers the plan marks ``unmark``;
3. write the data objects, each one proven (below), then delete the wipe's strays;
4. re-check the target: every planned object is there with the proven checksum, strays are gone,
   the lease is still ours; only then
5. write the completion markers, proven the same way (stage by stage, ``ManifestItem.final``).
An interrupt stops scheduling at once; nothing is written after it and the run says the target is
partial. Put-only plans (DRoA's upload bucket) skip 1, 2 and the re-check listing: their proof is the
answers of the writes themselves.

Proof of bytes:
- server-side copies name the source's ETag (``CopySourceIfMatch``): S3 copies exactly the object
  that was planned, or refuses;
- streamed copies read the source in one sequential GET (``IfMatch``), hash what they read and
  compare it with the source's ETag (its MD5, or the MD5 of its part MD5s when it was written in
  parts, whose size a HEAD of part 1 tells); a short read or a mismatch is read again, up to
  ``read_attempts`` times. Every PUT and part carries Content-MD5, so the target refuses bytes that
  differ from what was hashed, and its answers (ETags) must equal the hashes;
- the ``drtasks-source-etag`` metadata that lets a later plan call an object "unchanged" arrives
  with the object itself, which S3 makes visible only when its bytes are complete and proven.
Transfers run on bounded pools; progress reaches the UI through callbacks only.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import math
import threading
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Protocol

from drtasks import resume
from drtasks.errors import DrtasksError
from drtasks.manifest import ManifestItem, SourceObject
from drtasks.plan import SOURCE_ETAG_METADATA, Action, Plan, PlanItem, list_target, refuse_unsafe_prefix
from drtasks.s3 import S3Location, s3_errors

MiB = 1024 * 1024
GiB = 1024 * MiB
MIN_PART = 5 * MiB
MAX_PARTS = 10_000


@dataclass(frozen=True)
class TransferConfig:
    max_concurrency: int = 8
    part_size: int = 8 * MiB
    stream_memory: int = 48 * MiB  # streamed parts held at once, read or in flight, over all objects
    copy_threshold: int = 5 * GiB  # CopyObject's limit; above it, multipart copy
    copy_part_size: int = 512 * MiB
    read_attempts: int = 3  # reads of one source object before its checksum mismatch fails the run
    # Small objects and server-side copies through drtasks.s3lean where the endpoint allows it
    # (botocore's CPU per call, not the network, limits thousands of small objects).
    lean: bool = True

    def __post_init__(self) -> None:
        if min(self.part_size, self.copy_part_size) < MIN_PART:
            raise ValueError("S3 parts are at least 5 MiB")  # all but the last part of an upload
        if self.max_concurrency < 1 or self.read_attempts < 1:
            raise ValueError("max_concurrency and read_attempts must be at least 1")

    @property
    def stream_buffers(self) -> int:
        """Parts a streamed copy may hold at once: the memory budget, but at least two (one read, one sent)."""
        return max(2, min(self.max_concurrency + 2, self.stream_memory // self.part_size))


class Progress(Protocol):
    def started(self, total_bytes: int, total_objects: int) -> None: ...
    def advanced(self, key: str, nbytes: int) -> None: ...
    def finished_object(self, key: str) -> None: ...


class NoProgress:
    def started(self, total_bytes: int, total_objects: int) -> None:
        pass

    def advanced(self, key: str, nbytes: int) -> None:
        pass

    def finished_object(self, key: str) -> None:
        pass


@dataclass(frozen=True)
class Check:
    key: str
    ok: bool
    detail: str


class TransferFailed(DrtasksError):
    """The target could not be proven: completion markers were not written."""

    def __init__(self, message: str, checks: list[Check] | None = None, code: int = 1) -> None:
        super().__init__(message, code)
        self.checks = checks or []


class _Cancelled(Exception):
    """Raised inside workers once the run was interrupted or another job failed."""


# ---------------------------------------------------------------------------- hashing


def _md5(data: bytes) -> "hashlib._Hash":
    return hashlib.md5(data, usedforsecurity=False)


def _content_md5(digest: bytes) -> str:
    return base64.b64encode(digest).decode()


def composite_etag(part_digests: Iterable[bytes]) -> str:
    """The ETag S3 gives an object written in parts: MD5 of the parts' MD5s, then -<count>."""
    digests = list(part_digests)
    return f"{_md5(b''.join(digests)).hexdigest()}-{len(digests)}"


def _parts_in(etag: str) -> int | None:
    head, _, count = etag.partition("-")
    return int(count) if count.isdigit() and len(head) == 32 else None


class SourceDigest:
    """Hashes bytes read in order and says whether they are the object the source's ETag names.

    ``matches()`` is True or False when the ETag can decide, None when it cannot (an ETag of an
    object written in parts whose part size is unknown): the caller then reads the object again.
    """

    def __init__(self, etag: str, size: int, source_part_size: int | None) -> None:
        self.etag = etag
        self.size = size
        self.parts = _parts_in(etag)
        self.part_size = source_part_size if self.parts else None
        self.whole = hashlib.md5(usedforsecurity=False)
        self._part = hashlib.md5(usedforsecurity=False)
        self._in_part = 0
        self._part_digests: list[bytes] = []

    def update(self, data: bytes) -> None:
        self.whole.update(data)
        if not self.part_size:
            return
        view = memoryview(data)
        while view:
            room = self.part_size - self._in_part
            self._part.update(view[:room])
            taken = min(room, len(view))
            self._in_part += taken
            view = view[taken:]
            if self._in_part == self.part_size:
                self._close_part()

    def _close_part(self) -> None:
        self._part_digests.append(self._part.digest())
        self._part = hashlib.md5(usedforsecurity=False)
        self._in_part = 0

    def matches(self) -> bool | None:
        if self.parts is None:
            return self.whole.hexdigest() == self.etag
        if not self.part_size:
            return None
        if self._in_part:
            self._close_part()
        return composite_etag(self._part_digests) == self.etag


def _stream_errors() -> tuple[type[BaseException], ...]:
    """What a body being read can raise when the connection breaks or the server sends less."""
    from botocore.exceptions import IncompleteReadError, ReadTimeoutError, ResponseStreamingError
    from urllib3.exceptions import HTTPError

    return (ResponseStreamingError, IncompleteReadError, ReadTimeoutError, HTTPError, ConnectionError, TimeoutError)


def read_exactly(body: Any, size: int) -> bytes:
    """Up to ``size`` bytes; fewer when the body ends or breaks (the caller reads again)."""
    chunks: list[bytes] = []
    remaining = size
    try:
        while remaining > 0:
            chunk = body.read(min(remaining, 4 * MiB))
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
    except _stream_errors():
        pass
    return b"".join(chunks)


_read_exactly = read_exactly


def _error_code(error: BaseException) -> str:
    return str(getattr(error, "response", {}).get("Error", {}).get("Code", ""))


def source_part_size(client: Any, source: SourceObject) -> int | None:
    """The source's own part size when its ETag says it was written in parts (HEAD of part 1).

    None when the ETag is a plain MD5, or the server cannot tell (the object is then read twice).
    """
    count = _parts_in(source.etag)
    if count is None:
        return None
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        answer = client.head_object(Bucket=source.bucket, Key=source.key, PartNumber=1)
    except (ClientError, BotoCoreError):
        return None
    size = int(answer.get("ContentLength", 0))
    if size <= 0 or not (size * (count - 1) < source.size <= size * count):
        return None
    return size


@dataclass(frozen=True)
class FileProof:
    size: int
    md5: str
    sha256: str


def download_proven(
    client: Any,
    location: S3Location,
    source: SourceObject,
    path: "Path",
    attempts: int = 3,
    on_bytes: Callable[[int], None] | None = None,
) -> FileProof:
    """Write ``source`` to ``path``, read once in order and proven against its ETag before it is renamed.

    The bytes go to ``<path>.part`` first: a file under its final name is always whole and proven.
    A short read or a mismatch is read again, up to ``attempts`` times.
    """
    return _read_proven(client, location, source, path, attempts, on_bytes)


def digest_proven(
    client: Any, location: S3Location, source: SourceObject, attempts: int = 3, on_bytes: Callable[[int], None] | None = None
) -> FileProof:
    """The size, MD5 and SHA-256 of ``source``'s bytes, read once in order (the planned version,
    ``IfMatch``) and proven against its ETag like a download; nothing is written."""
    return _read_proven(client, location, source, None, attempts, on_bytes)


def _read_proven(
    client: Any, location: S3Location, source: SourceObject, path: "Path | None", attempts: int, on_bytes: Callable[[int], None] | None
) -> FileProof:
    part_size = source_part_size(client, source)
    partial = path.with_name(path.name + ".part") if path is not None else None
    problem = ""
    for _attempt in range(attempts):
        digest = SourceDigest(source.etag, source.size, part_size)
        sha = hashlib.sha256()
        written = 0
        with s3_errors(location):
            body = client.get_object(Bucket=source.bucket, Key=source.key, IfMatch=f'"{source.etag}"')["Body"]
        try:
            handle = None
            if partial is not None:
                partial.parent.mkdir(parents=True, exist_ok=True)
                handle = partial.open("wb")
            try:
                while written < source.size and (chunk := _read_exactly(body, min(4 * MiB, source.size - written))):
                    digest.update(chunk)
                    sha.update(chunk)
                    if handle is not None:
                        handle.write(chunk)
                    written += len(chunk)
                    if on_bytes:
                        on_bytes(len(chunk))
            finally:
                if handle is not None:
                    handle.close()
            longer = bool(_read_exactly(body, 1))
        except OSError as error:
            if partial is not None:
                with contextlib.suppress(OSError):  # a folder that cannot be made holds no partial file
                    partial.unlink(missing_ok=True)
            raise DrtasksError(f"{path}: cannot write it ({error.strerror or error.__class__.__name__})") from None
        finally:
            body.close()
        if written != source.size or longer:
            problem = f"read {written} of {source.size} bytes" if not longer else f"the object holds more than {source.size} bytes"
            continue
        verdict = digest.matches()
        if verdict is None:
            again = hashlib.md5(usedforsecurity=False)
            with s3_errors(location):
                second = client.get_object(Bucket=source.bucket, Key=source.key, IfMatch=f'"{source.etag}"')["Body"]
            try:
                while chunk := _read_exactly(second, 4 * MiB):
                    again.update(chunk)
            finally:
                second.close()
            verdict = again.digest() == digest.whole.digest()
        if verdict:
            if partial is not None and path is not None:
                partial.replace(path)
            return FileProof(written, digest.whole.hexdigest(), sha.hexdigest())
        problem = "the bytes read do not match the object's checksum"
    if partial is not None:
        partial.unlink(missing_ok=True)
    outcome = f"{path} was not written" if path is not None else "its checksum could not be proven"
    raise DrtasksError(f"s3://{source.bucket}/{source.key} at {location.endpoint_url or 'AWS'}: {problem} on {attempts} reads; {outcome}")


# ---------------------------------------------------------------------------- the executor


@dataclass
class _OpenUpload:
    key: str  # relative
    upload_id: str
    resumable: bool = False
    parts_done: int = 0


@dataclass
class _Evidence:
    size: int
    etag: str
    how: str


class Transfer:
    def __init__(self, plan: Plan, source_client: Any, target_client: Any, config: TransferConfig, progress: Progress) -> None:
        self.plan = plan
        self.source_client = source_client
        self.target_client = target_client
        self.config = config
        self.progress = progress
        self.target = plan.target
        self.source = plan.source
        self._cancel = threading.Event()
        self._open: dict[str, _OpenUpload] = {}
        self._open_lock = threading.Lock()
        self._evidence: dict[str, _Evidence] = {}
        self._buffers = threading.BoundedSemaphore(config.stream_buffers)
        self._objects = ThreadPoolExecutor(config.max_concurrency, thread_name_prefix="drtasks-object")
        self._parts = ThreadPoolExecutor(config.max_concurrency, thread_name_prefix="drtasks-part")
        self._lean_lock = threading.Lock()
        self._lean: dict[str, Any] = {}

    def _lean_side(self, side: str) -> Any:
        """drtasks.s3lean for the source or target endpoint, or None (botocore then makes the call)."""
        with self._lean_lock:
            if side not in self._lean:
                location, client = (self.source, self.source_client) if side == "source" else (self.target, self.target_client)
                lean = None
                if self.config.lean and isinstance(location, S3Location) and client is not None:
                    from drtasks.s3lean import LeanS3

                    lean = LeanS3.for_client(client, location)
                self._lean[side] = lean
            return self._lean[side]

    # -- helpers -----------------------------------------------------------------------
    def _check_cancel(self) -> None:
        if self._cancel.is_set():
            raise _Cancelled()

    def _metadata(self, item: ManifestItem) -> dict[str, str]:
        return {SOURCE_ETAG_METADATA: item.etag}

    def _target_key(self, relative: str) -> str:
        return self.target.key(relative)

    def _finish(self, item: ManifestItem, etag: str, how: str) -> None:
        self._evidence[item.key] = _Evidence(item.size, etag, how)
        self.progress.finished_object(item.key)

    def _put(self, item: ManifestItem, body: bytes, digest: bytes) -> str:
        """PutObject with Content-MD5; S3's answer must name the same MD5."""
        self._check_cancel()
        lean = self._lean_side("target")
        if lean is not None:
            etag = lean.put_object(self.target.bucket, self._target_key(item.key), body, _content_md5(digest), self._metadata(item))
        else:
            with s3_errors(self.target):
                answer = self.target_client.put_object(
                    Bucket=self.target.bucket,
                    Key=self._target_key(item.key),
                    Body=body,
                    ContentMD5=_content_md5(digest),
                    Metadata=self._metadata(item),
                )
            etag = answer["ETag"].strip('"')
        if etag != digest.hex():
            raise DrtasksError(f"{self.target.url}/{item.key}: the target answered ETag {etag} for bytes whose MD5 is {digest.hex()}")
        return etag

    def _open_body(self, item: ManifestItem) -> Any:
        """A readable of the item's bytes: the source object (one GET), or the local file."""
        if item.local is not None:
            try:
                return item.local.path.open("rb")
            except OSError as error:
                raise DrtasksError(f"{item.local.path}: cannot read it ({error.strerror or error.__class__.__name__})") from None
        return self._get(item)["Body"]

    def _read_small(self, item: ManifestItem) -> bytes:
        """The whole item (up to one byte more than planned, so a longer object shows); short when a read breaks."""
        if item.local is None:
            lean = self._lean_side("source")
            if lean is not None:
                from drtasks.s3lean import PreconditionFailed

                assert item.source
                try:
                    return lean.get_object(item.source.bucket, item.source.key, item.source.etag, item.size + 1)
                except PreconditionFailed:
                    raise DrtasksError(f"s3://{item.source.bucket}/{item.source.key} changed since the plan was made; run the command again") from None
        body = self._open_body(item)
        try:
            return _read_exactly(body, item.size + 1)
        finally:
            body.close()

    def _get(self, item: ManifestItem, **extra: Any) -> Any:
        assert item.source
        from botocore.exceptions import ClientError

        try:
            with s3_errors(self.source):
                return self.source_client.get_object(
                    Bucket=item.source.bucket, Key=item.source.key, IfMatch=f'"{item.source.etag}"', **extra
                )
        except DrtasksError as error:
            if "PreconditionFailed" in error.message:
                raise DrtasksError(
                    f"s3://{item.source.bucket}/{item.source.key} changed since the plan was made; run the command again"
                ) from None
            raise
        except ClientError:  # pragma: no cover - s3_errors converts every ClientError
            raise

    # -- generated content -----------------------------------------------------------
    def _write_content(self, item: ManifestItem) -> None:
        body = item.content or b""
        digest = _md5(body).digest()
        etag = self._put(item, body, digest)
        self.progress.advanced(item.key, len(body))
        self._finish(item, etag, "written, MD5 confirmed by the target")

    # -- server-side copies ----------------------------------------------------------
    @contextmanager
    def _copy_source_errors(self, item: ManifestItem) -> Iterator[None]:
        """A copy refused because of its source names the source, not the target it was writing."""
        from botocore.exceptions import ClientError

        assert item.source
        try:
            yield
        except ClientError as error:
            refusal = self._source_refusal(item, _error_code(error))
            if refusal is not None:
                raise refusal from None
            raise

    def _source_refusal(self, item: ManifestItem, code: str) -> DrtasksError | None:
        """The one line for a copy refused because of its source (changed or gone), else None."""
        assert item.source
        where = f"s3://{item.source.bucket}/{item.source.key} at {self.source.endpoint_url or 'AWS'}"
        if code in ("PreconditionFailed", "412"):
            return DrtasksError(f"{where} changed since the plan was made; run the command again")
        if code in ("NoSuchKey", "404", "NotFound"):
            return DrtasksError(f"{where} is gone since the plan was made; nothing was copied for it")
        return None

    def _copy_whole(self, item: ManifestItem) -> None:
        assert item.source
        self._check_cancel()
        lean = self._lean_side("target")
        if lean is not None:
            from drtasks.s3lean import S3Refused

            try:
                etag = lean.copy_object(self.target.bucket, self._target_key(item.key), item.source.bucket, item.source.key, item.source.etag, self._metadata(item))
            except S3Refused as error:
                raise self._source_refusal(item, error.s3_code) or error from None
        else:
            with s3_errors(self.target), self._copy_source_errors(item):
                answer = self.target_client.copy_object(
                    Bucket=self.target.bucket,
                    Key=self._target_key(item.key),
                    CopySource={"Bucket": item.source.bucket, "Key": item.source.key},
                    CopySourceIfMatch=f'"{item.source.etag}"',
                    MetadataDirective="REPLACE",
                    Metadata=self._metadata(item),
                )
            etag = answer["CopyObjectResult"]["ETag"].strip('"')
        self.progress.advanced(item.key, item.size)
        self._finish(item, etag, "copied server-side from the planned source version")

    def _copy_parts(self, entry: PlanItem) -> None:
        item = entry.item
        assert item and item.source
        source = item.source
        part_size = max(self.config.copy_part_size, -(-item.size // MAX_PARTS))
        ranges = [(start, min(start + part_size, item.size) - 1) for start in range(0, item.size, part_size)]
        upload_id = self._create_upload(item, resumable=False)
        etags: dict[int, str] = {}

        def part(number: int, first: int, last: int) -> None:
            self._check_cancel()
            with s3_errors(self.target), self._copy_source_errors(item):
                answer = self.target_client.upload_part_copy(
                    Bucket=self.target.bucket,
                    Key=self._target_key(item.key),
                    UploadId=upload_id,
                    PartNumber=number,
                    CopySource={"Bucket": source.bucket, "Key": source.key},
                    CopySourceIfMatch=f'"{source.etag}"',
                    CopySourceRange=f"bytes={first}-{last}",
                )
            etags[number] = answer["CopyPartResult"]["ETag"].strip('"')
            self.progress.advanced(item.key, last - first + 1)

        self._wait_all([self._parts.submit(part, n, a, b) for n, (a, b) in enumerate(ranges, start=1)])
        etag = self._complete(item, upload_id, [etags[n] for n in range(1, len(ranges) + 1)], expected=None)
        self._finish(item, etag, "copied server-side in parts from the planned source version")

    # -- multipart bookkeeping -----------------------------------------------------------
    def _create_upload(self, item: ManifestItem, resumable: bool, part_size: int = 0) -> str:
        self._check_cancel()
        with s3_errors(self.target):
            created = self.target_client.create_multipart_upload(
                Bucket=self.target.bucket, Key=self._target_key(item.key), Metadata=self._metadata(item)
            )
        upload_id = created["UploadId"]
        with self._open_lock:
            self._open[item.key] = _OpenUpload(item.key, upload_id, resumable)
        if resumable:
            resume.remember(self.target, self._target_key(item.key), upload_id, item.etag, part_size)
        return upload_id

    def _complete(self, item: ManifestItem, upload_id: str, part_etags: list[str], expected: str | None) -> str:
        self._check_cancel()
        parts = [{"PartNumber": n, "ETag": f'"{etag}"'} for n, etag in enumerate(part_etags, start=1)]
        with s3_errors(self.target):
            answer = self.target_client.complete_multipart_upload(
                Bucket=self.target.bucket, Key=self._target_key(item.key), UploadId=upload_id, MultipartUpload={"Parts": parts}
            )
        with self._open_lock:
            self._open.pop(item.key, None)
        resume.forget(self.target, upload_id)
        etag = answer["ETag"].strip('"')
        if expected is not None and etag != expected:
            raise DrtasksError(f"{self.target.url}/{item.key}: the target assembled ETag {etag}, the parts sent make {expected}")
        return etag

    def _resumed_parts(self, entry: PlanItem, part_size: int) -> dict[int, str]:
        """Part number -> MD5 hex of the parts an interrupted upload already holds (right sizes only)."""
        assert entry.item and entry.upload_id
        found: dict[int, str] = {}
        with s3_errors(self.target):
            paginator = self.target_client.get_paginator("list_parts")
            for page in paginator.paginate(Bucket=self.target.bucket, Key=self._target_key(entry.key), UploadId=entry.upload_id):
                for part in page.get("Parts", []):
                    number, size = int(part["PartNumber"]), int(part["Size"])
                    expected = min(part_size, entry.item.size - (number - 1) * part_size)
                    if size == expected:
                        found[number] = part["ETag"].strip('"')
        return found

    # -- streamed copies -------------------------------------------------------------
    def _source_part_size(self, item: ManifestItem) -> int | None:
        if item.source is None:
            return None  # a local file's MD5 is whole
        return source_part_size(self.source_client, item.source)

    def _stream_small(self, item: ManifestItem) -> None:
        """One GET, proven against the source's ETag (or a second read), then one PUT."""
        problem = ""
        planned = item.local.part_md5s if item.local is not None else ()
        for _attempt in range(self.config.read_attempts):
            self._check_cancel()
            body = self._read_small(item)
            if len(body) == item.size and len(planned) == 1:  # hashed when it was written: S3 checks it
                etag = self._put(item, body, bytes.fromhex(planned[0]))
                self.progress.advanced(item.key, item.size)
                self._finish(item, etag, "uploaded, the planned MD5 confirmed by the target")
                return
            if len(body) != item.size:
                problem = f"read {len(body)} of {item.size} bytes"
                continue
            digest = SourceDigest(item.etag, item.size, item.size if _parts_in(item.etag) == 1 else None)
            digest.update(body)
            verdict = digest.matches()
            if verdict is None:
                again = self._read_small(item)
                verdict = _md5(again).digest() == digest.whole.digest()
            if not verdict:
                problem = "the bytes read do not match the source's checksum"
                continue
            etag = self._put(item, body, digest.whole.digest())
            self.progress.advanced(item.key, item.size)
            self._finish(item, etag, "streamed, source checksum and target MD5 confirmed")
            return
        raise DrtasksError(f"{self._source_url(item)}: {problem} on {self.config.read_attempts} reads; nothing was written for it")

    def _source_url(self, item: ManifestItem) -> str:
        if item.local is not None:
            return str(item.local.path)
        assert item.source
        return f"s3://{item.source.bucket}/{item.source.key} at {self.source.endpoint_url or 'AWS'}"

    def _stream_parts(self, entry: PlanItem) -> None:
        """Read the source once, in order, hashing it; upload its parts on the parts pool meanwhile."""
        item = entry.item
        assert item and (item.source or item.local)
        source_part = self._source_part_size(item)
        planned = [bytes.fromhex(h) for h in item.local.part_md5s] if item.local is not None else []
        if planned and item.local is not None:
            source_part = item.local.part_size  # the parts the file was hashed in: S3 checks each one
        if source_part and source_part >= MIN_PART and math.ceil(item.size / source_part) <= MAX_PARTS:
            part_size = source_part  # same parts as the source: the target's ETag will equal the source's
        else:
            part_size = max(self.config.part_size, -(-item.size // MAX_PARTS))
        count = math.ceil(item.size / part_size)
        uploaded: dict[int, str] = {}
        upload_id = None
        if entry.upload_id:
            journal = resume.recall(self.target, self._target_key(entry.key), entry.upload_id)
            if journal and journal.part_size == part_size and journal.source_etag == item.etag:
                upload_id = entry.upload_id
                uploaded = self._resumed_parts(entry, part_size)
                with self._open_lock:
                    self._open[item.key] = _OpenUpload(item.key, upload_id, True, len(uploaded))
            else:
                self._abort(entry.key, entry.upload_id)
        if upload_id is None:
            upload_id = self._create_upload(item, resumable=True, part_size=part_size)

        def send(number: int, chunk: bytes, digest: bytes) -> None:
            try:
                self._check_cancel()
                with s3_errors(self.target):
                    answer = self.target_client.upload_part(
                        Bucket=self.target.bucket,
                        Key=self._target_key(item.key),
                        UploadId=upload_id,
                        PartNumber=number,
                        Body=chunk,
                        ContentMD5=_content_md5(digest),
                    )
                etag = answer["ETag"].strip('"')
                if etag != digest.hex():
                    raise DrtasksError(f"{self.target.url}/{item.key}: part {number} answered ETag {etag}, its MD5 is {digest.hex()}")
                uploaded[number] = etag
                with self._open_lock:
                    if item.key in self._open:
                        self._open[item.key].parts_done += 1
                self.progress.advanced(item.key, len(chunk))
            finally:
                self._buffers.release()

        problem = ""
        for _attempt in range(self.config.read_attempts):
            self._check_cancel()
            digest = SourceDigest(item.etag, item.size, source_part)
            body = self._open_body(item)
            futures: list[Future[None]] = []
            problem = ""
            try:
                for number in range(1, count + 1):
                    want = min(part_size, item.size - (number - 1) * part_size)
                    self._buffers.acquire()
                    try:
                        self._check_cancel()
                        chunk = _read_exactly(body, want)
                    except BaseException:
                        self._buffers.release()
                        raise
                    if len(chunk) < want:
                        self._buffers.release()
                        problem = f"read {(number - 1) * part_size + len(chunk)} of {item.size} bytes"
                        break
                    if planned:
                        part_digest = planned[number - 1]
                    else:
                        digest.update(chunk)
                        part_digest = _md5(chunk).digest()
                    if uploaded.get(number) == part_digest.hex():
                        self._buffers.release()  # the target already holds exactly this part
                        self.progress.advanced(item.key, want)
                        continue
                    futures.append(self._parts.submit(send, number, chunk, part_digest))
                if not problem and _read_exactly(body, 1):
                    problem = f"the source holds more than the {item.size} bytes listed"
            finally:
                body.close()
                self._wait_all(futures)
            if problem:
                continue
            if planned:
                break  # every part went up with its planned MD5, and S3 answered the same
            verdict = digest.matches()
            if verdict is None:
                verdict = self._whole_md5_again(item) == digest.whole.hexdigest()
            if verdict:
                break
            problem = "the bytes read do not match the source's checksum"
        else:
            self._abort(item.key, upload_id)
            raise DrtasksError(f"{self._source_url(item)}: {problem} on {self.config.read_attempts} reads; nothing was written for it")
        part_etags = [uploaded[n] for n in range(1, count + 1)]
        expected = composite_etag(bytes.fromhex(e) for e in part_etags)
        etag = self._complete(item, upload_id, part_etags, expected)
        self._finish(item, etag, "streamed in parts, source checksum and every part's MD5 confirmed")

    def _whole_md5_again(self, item: ManifestItem) -> str:
        """Read the whole object once more (its ETag cannot decide): both reads must agree."""
        body = self._open_body(item)
        digest = hashlib.md5(usedforsecurity=False)
        try:
            while chunk := _read_exactly(body, 4 * MiB):
                self._check_cancel()
                digest.update(chunk)
        finally:
            body.close()
        return digest.hexdigest()  # a broken read gives another digest: the copy is then not proven

    # -- aborts and deletes ----------------------------------------------------------
    def _abort(self, relative: str, upload_id: str) -> None:
        from botocore.exceptions import ClientError

        try:
            with s3_errors(self.target):
                self.target_client.abort_multipart_upload(Bucket=self.target.bucket, Key=self._target_key(relative), UploadId=upload_id)
        except DrtasksError as error:
            if "NoSuchUpload" not in error.message:
                raise
        except ClientError:  # pragma: no cover
            raise
        with self._open_lock:
            if relative in self._open and self._open[relative].upload_id == upload_id:
                del self._open[relative]
        resume.forget(self.target, upload_id)

    def _delete(self, keys: list[str]) -> None:
        """DeleteObjects in batches of 1000, the batches in parallel."""

        def batch(chunk: list[str]) -> None:
            self._check_cancel()
            with s3_errors(self.target):
                answer = self.target_client.delete_objects(
                    Bucket=self.target.bucket, Delete={"Objects": [{"Key": self._target_key(k)} for k in chunk], "Quiet": True}
                )
            if answer.get("Errors"):
                first = answer["Errors"][0]
                raise DrtasksError(f"S3 refused to delete s3://{self.target.bucket}/{first.get('Key')}: {first.get('Code')}")
            for key in chunk:
                self.progress.finished_object(key)

        self._wait_all([self._objects.submit(batch, keys[i : i + 1000]) for i in range(0, len(keys), 1000)])

    # -- phases ----------------------------------------------------------------------
    def _jobs_for(self, entry: PlanItem) -> Callable[[], None]:
        item = entry.item
        assert item is not None
        if item.local is not None:  # a file of this machine: read once, proven like a streamed copy
            if item.size > self.config.part_size or entry.upload_id or len(item.local.part_md5s) > 1:
                return lambda: self._stream_parts(entry)
            return lambda: self._stream_small(item)
        if item.source is None:
            return lambda: self._write_content(item)
        if self.plan.server_side:
            if item.size > self.config.copy_threshold:
                return lambda: self._copy_parts(entry)
            return lambda: self._copy_whole(item)
        if item.size > self.config.part_size or entry.upload_id:
            return lambda: self._stream_parts(entry)
        return lambda: self._stream_small(item)

    def _wait_all(self, futures: list[Future[None]]) -> None:
        """Wait for every future; the first failure cancels the rest and is raised."""
        if not futures:
            return
        done, pending = wait(futures, return_when=FIRST_EXCEPTION)
        if any(f.exception() is not None for f in done):
            # Queued jobs still run, see the cancel flag at once and stop: a part job must run to
            # give back its buffer, so none is dropped from its queue.
            self._cancel.set()
            wait(pending)
            errors = [f.exception() for f in futures if f.done() and f.exception() is not None]
            raise next((e for e in errors if not isinstance(e, _Cancelled)), errors[0])  # type: ignore[misc]

    def _write_phase(self, entries: list[PlanItem]) -> None:
        self._wait_all([self._objects.submit(self._jobs_for(entry)) for entry in entries])

    def _recheck(self, entries: list[PlanItem]) -> list[Check]:
        """List the target once: every planned object as proven, every deleted one gone."""
        present = list_target(self.target_client, self.target)
        checks: list[Check] = []
        for entry in entries:
            found = present.get(entry.key)
            if entry.action is Action.DELETE:
                checks.append(Check(entry.key, found is None, "deleted" if found is None else "still present"))
                continue
            if entry.action is Action.ABORT:
                continue
            evidence = self._evidence.get(entry.key)
            expected_etag = evidence.etag if evidence else entry.target_etag
            expected_size = evidence.size if evidence else entry.target_size
            if found is None:
                checks.append(Check(entry.key, False, "missing"))
            elif found.size != expected_size:
                checks.append(Check(entry.key, False, f"size {found.size} != {expected_size}"))
            elif found.etag != expected_etag:
                checks.append(Check(entry.key, False, "changed by someone else since it was written" if evidence else "changed since the plan"))
            else:
                checks.append(Check(entry.key, True, evidence.how if evidence else "unchanged, still in place"))
        return checks

    def _evidence_checks(self, entries: list[PlanItem]) -> list[Check]:
        checks = []
        for entry in entries:
            evidence = self._evidence.get(entry.key)
            if evidence is not None:
                checks.append(Check(entry.key, True, evidence.how))
            elif entry.action is Action.UNCHANGED:
                checks.append(Check(entry.key, True, "unchanged"))
        return checks

    def run(self) -> list[Check]:
        from drtasks.lease import Lease

        plan = self.plan
        refuse_unsafe_prefix(plan.target)  # whoever built the plan: never the root, never a prefix filed elsewhere
        writes = [e for e in plan.items if e.writes]
        deletes = [e.key for e in plan.items if e.action is Action.DELETE]
        aborts = [e for e in plan.items if e.action is Action.ABORT]
        data = [e for e in writes if not e.final]
        markers = [e for e in writes if e.final]
        self.progress.started(sum(e.source_size or 0 for e in writes), len(writes) + len(deletes))
        lease = None
        try:
            if plan.lease and not plan.put_only and (writes or deletes or aborts or plan.stale_lease):
                lease = Lease(self.target_client, self.target).acquire()
            for entry in aborts:
                self._abort(entry.key, entry.upload_id or "")
            unmark = [e.key for e in plan.items if e.unmark]
            if unmark:
                self._delete(unmark)
            self._write_phase(data)
            if deletes:
                self._delete(deletes)
            watched = [e for e in plan.items if not e.final and e.item is not None or e.action is Action.DELETE]
            checks = self._evidence_checks(watched) if plan.put_only else self._recheck(watched)
            failed = [c for c in checks if not c.ok]
            if failed:
                raise TransferFailed(
                    f"{self.target.url} could not be proven ({failed[0].key}: {failed[0].detail}"
                    f"{f' and {len(failed) - 1} more' if len(failed) > 1 else ''}); "
                    "its completion markers were not written; run the command again to repair it",
                    checks,
                )
            if lease is not None:
                lease.ensure_held()
            for stage in sorted({e.stage for e in markers}):  # a later stage only once the earlier ones are written
                self._write_phase([e for e in markers if e.stage == stage])
            return checks + self._evidence_checks(markers)
        except KeyboardInterrupt:
            self._cancel.set()
            self._settle()
            raise TransferFailed(
                f"interrupted: {self.target.url} is partial and does not look complete (its completion markers were not "
                "written); run the same command again to complete it",
                code=130,
            ) from None
        except _Cancelled:  # pragma: no cover - only raised after another failure that wins
            self._settle()
            raise DrtasksError(f"{self.target.url}: transfer cancelled") from None
        except BaseException:
            self._cancel.set()
            self._settle()
            raise
        finally:
            self._objects.shutdown(wait=True, cancel_futures=True)
            self._parts.shutdown(wait=True)
            if lease is not None:
                lease.release()
            for lean in self._lean.values():
                if lean is not None:
                    lean.close()

    def _settle(self) -> None:
        """After a failure: let running jobs stop, then abort uploads no re-run could resume."""
        self._objects.shutdown(wait=True, cancel_futures=True)  # queued object jobs hold no buffer
        self._parts.shutdown(wait=True)
        with self._open_lock:
            open_uploads = list(self._open.values())
        for upload in open_uploads:
            if upload.resumable and upload.parts_done:
                continue  # journaled: the next plan resumes it
            try:
                self._abort(upload.key, upload.upload_id)
            except Exception:  # noqa: BLE001 - best effort while another error propagates; the next plan lists it
                pass


def apply(
    plan: Plan, source_client: Any, target_client: Any, config: TransferConfig | None = None, progress: Progress | None = None
) -> list[Check]:
    """Execute exactly the plan's writes and deletes; returns the proof of every planned object.

    Raises TransferFailed (completion markers not written) when the target cannot be proven.
    """
    return Transfer(plan, source_client, target_client, config or TransferConfig(), progress or NoProgress()).run()


def verify(plan: Plan, target_client: Any) -> list[Check]:
    """Re-read the target's listing and compare it with the plan (for a target that may be listed)."""
    from drtasks.s3 import ObjectInfo

    if plan.put_only:
        raise ValueError("a put-only target cannot be read back; its proof comes from apply()")
    target = plan.target
    present: dict[str, ObjectInfo] = list_target(target_client, target)
    checks: list[Check] = []
    for entry in plan.items:
        found = present.get(entry.key)
        if entry.action is Action.DELETE:
            checks.append(Check(entry.key, found is None, "deleted" if found is None else "still present"))
            continue
        if entry.action is Action.ABORT or entry.item is None:
            continue
        item = entry.item
        if found is None:
            checks.append(Check(entry.key, False, "missing"))
        elif found.size != item.size:
            checks.append(Check(entry.key, False, f"size {found.size} != {item.size}"))
        elif found.etag == item.etag:
            checks.append(Check(entry.key, True, "size and checksum match"))
        else:
            with s3_errors(target):
                metadata = target_client.head_object(Bucket=target.bucket, Key=found.key).get("Metadata", {})
            same = metadata.get(SOURCE_ETAG_METADATA) == item.etag
            checks.append(Check(entry.key, same, "size and source checksum match" if same else "checksum differs"))
    return checks


def resumable_for(target: S3Location, server_side: bool) -> Callable[[Any, ManifestItem], bool]:
    """For plan_upload: an unfinished upload is resumed when the journal ties it to this source object."""

    def decide(pending: Any, item: ManifestItem) -> bool:
        if server_side or (item.source is None and item.local is None):
            return False
        entry = resume.recall(target, pending.key, pending.upload_id)
        return entry is not None and entry.source_etag == item.etag

    return decide
