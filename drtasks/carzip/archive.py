"""The physical car's model archive: build it, check it, describe it, name it.

Pure functions over bytes or streams (an archive of a large graph is written to a file as its
members pass, never held in memory). The car unpacks a ``.tar.gz``, installs the
single ``*.pb`` it finds as its model and reads ``model_metadata.json`` from the archive
root; an archive with no ``.pb`` or with two is silently ignored by the car, so every
rule the car applies quietly is checked here loudly, before anything is uploaded.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import struct
import tarfile
import zlib
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, BinaryIO

from drtasks.errors import DrtasksError
from drtasks.model_check import read_metadata

PB_MEMBER = "agent/model.pb"
METADATA_MEMBER = "model_metadata.json"

# The car's upload web server refuses request bodies over 200 MB. Counting in decimal
# megabytes keeps us under it whichever way "MB" is meant, and leaves room for the few
# bytes of form data that travel with the file.
CAR_UPLOAD_LIMIT_BYTES = 200 * 1000 * 1000

# A fixed member time makes the same model always give the same bytes (and checksum);
# not 0, because some tools show the epoch as "no date".
FIXED_MTIME = 946_684_800  # 2000-01-01T00:00:00Z

ARCHIVE_SUFFIX = ".tar.gz"
GZIP_LEVEL = 6
UPLOAD_PART = 8 * 1024 * 1024  # the transfer executor's part size: the archive is hashed in its parts


@dataclass(frozen=True)
class ArchiveMember:
    """One row of the archive's table of contents."""

    name: str
    size: int
    sha256: str


# ---------------------------------------------------------------- metadata


def validate_metadata(metadata_bytes: bytes, source: str = METADATA_MEMBER) -> dict[str, Any]:
    """Parse ``model_metadata.json`` and check it has an action space the car can use.

    A discrete action space is a non-empty list of actions; a continuous one is a dict
    with ``speed`` and ``steering_angle`` ranges. ``source`` names the file in messages.
    """
    return read_metadata(metadata_bytes, source)


# ---------------------------------------------------------------- build


def _regular_member(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = 0o644
    info.mtime = FIXED_MTIME
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


@dataclass(frozen=True)
class BuiltArchive:
    """What writing an archive proved: its members as written, the archive's size, SHA-256 and the
    MD5 of each ``part_size`` part (its ETag uploaded in those parts), all taken as it was written."""

    members: list[ArchiveMember]
    size: int
    sha256: str
    part_size: int
    part_md5s: tuple[str, ...]

    @property
    def etag(self) -> str:
        """The ETag S3 gives the archive uploaded in ``part_size`` parts (a plain MD5 for one part)."""
        if len(self.part_md5s) == 1:
            return self.part_md5s[0]
        digest = hashlib.md5(b"".join(bytes.fromhex(h) for h in self.part_md5s), usedforsecurity=False)
        return f"{digest.hexdigest()}-{len(self.part_md5s)}"


class _ArchiveOut:
    """The archive's bytes on their way out: hashed (SHA-256, and MD5 per upload part), counted, and
    held to the car's limit as they grow."""

    def __init__(self, out: BinaryIO, source: str, part_size: int) -> None:
        self.out, self.source, self.part_size = out, source, part_size
        self.sha256 = hashlib.sha256()
        self.parts: list[str] = []
        self._part = hashlib.md5(usedforsecurity=False)
        self._in_part = 0
        self.size = 0

    def write(self, data: bytes) -> None:
        if not data:
            return
        self.size += len(data)
        if self.size >= CAR_UPLOAD_LIMIT_BYTES:
            raise DrtasksError(f"{self.source}: over {CAR_UPLOAD_LIMIT_BYTES:,} bytes, the car accepts uploads under {CAR_UPLOAD_LIMIT_BYTES:,}")
        self.sha256.update(data)
        view = memoryview(data)
        while view:
            taken = view[: self.part_size - self._in_part]
            self._part.update(taken)
            self._in_part += len(taken)
            view = view[len(taken) :]
            if self._in_part == self.part_size:
                self.parts.append(self._part.hexdigest())
                self._part, self._in_part = hashlib.md5(usedforsecurity=False), 0
        self.out.write(data)

    def part_md5s(self) -> tuple[str, ...]:
        return tuple(self.parts + ([self._part.hexdigest()] if self._in_part or not self.parts else []))


GZIP_BLOCK = 4 * 1024 * 1024
_WINDOW = 32 * 1024  # deflate's whole window: a block primed with it compresses as one stream would


def _deflate(block: Any, dictionary: bytes, level: int, final: bool) -> bytes:
    if dictionary:
        compressor = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS, 8, zlib.Z_DEFAULT_STRATEGY, dictionary)
    else:
        compressor = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS)
    return compressor.compress(block) + compressor.flush(zlib.Z_FINISH if final else zlib.Z_SYNC_FLUSH)


class _Gzip:
    """Tar bytes in, one gzip stream out, its deflate data compressed in blocks on every core.

    Each 4 MiB block is compressed on its own, primed with the 32 KiB before it, and all but the
    last end on a byte boundary (a sync flush), as pigz does: the output depends only on the input,
    never on timing or the number of threads, so the same members always give the same bytes; any
    gzip reader reads it as one stream. The header carries no file name and no time.
    """

    def __init__(self, out: _ArchiveOut, level: int = GZIP_LEVEL) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self.out = out
        self.level = level
        self.crc = 0
        self.size = 0
        self._pieces: list[Any] = []  # what arrived since the last full block
        self._held = 0
        self._tail = b""
        self._workers = max(1, min(4, os.cpu_count() or 1))
        self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix="drtasks-gzip")  # zlib lets go of the GIL
        self._pending: deque[Future[bytes]] = deque()
        xfl = 2 if level == 9 else 4 if level == 1 else 0
        out.write(b"\x1f\x8b\x08\x00" + struct.pack("<L", 0) + bytes((xfl, 3)))  # no time; OS 3 (Unix)

    def write(self, data: bytes) -> int:
        self.crc = zlib.crc32(data, self.crc)
        self.size += len(data)
        self._pieces.append(data)
        self._held += len(data)
        if self._held > GZIP_BLOCK:  # more follows the full blocks: none of them is the last
            joined = memoryview(b"".join(self._pieces))
            whole = (len(joined) - 1) // GZIP_BLOCK * GZIP_BLOCK
            for start in range(0, whole, GZIP_BLOCK):
                self._submit(joined[start : start + GZIP_BLOCK], final=False)
            rest = joined[whole:]
            self._pieces, self._held = [bytes(rest)], len(rest)  # a copy: a view would pin the whole join
        return len(data)

    def _submit(self, block: Any, final: bool) -> None:
        self._pending.append(self._pool.submit(_deflate, block, self._tail, self.level, final))
        self._tail = bytes(block[-_WINDOW:])
        while len(self._pending) > (0 if final else self._workers + 1):
            self.out.write(self._pending.popleft().result())  # in order: memory stays a few blocks

    def tell(self) -> int:
        return self.size

    def close(self) -> None:
        try:
            self._submit(b"".join(self._pieces), final=True)
            self.out.write(struct.pack("<LL", self.crc, self.size & 0xFFFFFFFF))
        finally:
            self.discard()

    def discard(self) -> None:
        for future in self._pending:
            future.cancel()
        self._pool.shutdown(wait=True)


class _Hashed:
    """A member's content on its way into the tar: its SHA-256 and length, taken as it passes."""

    def __init__(self, content: "bytes | BinaryIO") -> None:
        self.handle = io.BytesIO(content) if isinstance(content, bytes) else content
        self.sha256 = hashlib.sha256()
        self.size = 0

    def read(self, size: int = -1) -> bytes:
        data = self.handle.read(size)
        self.sha256.update(data)
        self.size += len(data)
        return data


def check_member_names(names: list[str], source: str) -> None:
    """What the car silently requires of the files in an archive: exactly one .pb, metadata at the root."""
    graphs = [name for name in names if name.endswith(".pb")]
    if len(graphs) != 1:
        found = ", ".join(graphs) if graphs else "none"
        raise DrtasksError(f"{source}: the car needs exactly one .pb file, found {len(graphs)} ({found})")
    if METADATA_MEMBER not in names:
        raise DrtasksError(f"{source}: no {METADATA_MEMBER} at the archive root")
    if len(set(names)) != len(names):
        raise DrtasksError(f"{source}: a member appears twice")


def write_car_archive(
    members: "list[tuple[str, bytes | BinaryIO, int]]", out: BinaryIO, source: str = "car archive", part_size: int = UPLOAD_PART
) -> BuiltArchive:
    """Stream ``members`` (name, content, size) into a deterministic ``.tar.gz`` written to ``out``.

    Checked once, as it is written: the member names (exactly one ``.pb``, the metadata at the root,
    which must hold an action space), each member's length, the car's size limit. Each member is
    hashed as it passes, and so is the archive: the result is the table of contents and the
    archive's size, SHA-256 and part MD5s (for its upload), without reading anything back.
    """
    check_member_names([name for name, _content, _size in members], source)
    for name, content, _size in members:
        if name == METADATA_MEMBER:
            if not isinstance(content, bytes):
                raise TypeError("the metadata member is read whole: pass its bytes")
            validate_metadata(content, f"{source}: {METADATA_MEMBER}")
    sink = _ArchiveOut(out, source, part_size)
    stream = _Gzip(sink)
    rows: list[ArchiveMember] = []
    try:
        with tarfile.open(fileobj=stream, mode="w", format=tarfile.USTAR_FORMAT, copybufsize=4 << 20) as tar:  # type: ignore[call-overload]
            for name, content, size in members:
                hashed = _Hashed(content)
                try:
                    tar.addfile(_regular_member(name, size), hashed)
                except OSError as error:  # tarfile: the content ended before its size
                    raise DrtasksError(f"{source}: {name} gave fewer than its {size:,} bytes ({error})") from None
                if hashed.read(1):
                    raise DrtasksError(f"{source}: {name} holds more than its {size:,} bytes")
                rows.append(ArchiveMember(name, size, hashed.sha256.hexdigest()))
        stream.close()
    finally:
        stream.discard()
    return BuiltArchive(rows, sink.size, sink.sha256.hexdigest(), part_size, sink.part_md5s())


def build_car_archive(pb_bytes: bytes, metadata_bytes: bytes) -> bytes:
    """Return the ``.tar.gz`` bytes holding exactly ``agent/model.pb`` and ``model_metadata.json``.

    Deterministic: the same inputs always give the same bytes. Checked as it is written
    (``write_car_archive``); for archives too large to hold in memory, call that with a file.
    """
    if not pb_bytes:
        raise DrtasksError("the frozen graph (.pb) is empty")
    buffer = io.BytesIO()
    write_car_archive([(PB_MEMBER, pb_bytes, len(pb_bytes)), (METADATA_MEMBER, metadata_bytes, len(metadata_bytes))], buffer)
    return buffer.getvalue()


# ---------------------------------------------------------------- read + validate


def _open_archive(archive: bytes, source: str) -> tarfile.TarFile:
    try:
        return tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz")
    except (tarfile.TarError, OSError, EOFError) as err:
        raise DrtasksError(f"{source}: not a readable .tar.gz ({err})") from None


def _member_name(member: tarfile.TarInfo, source: str) -> str:
    name = member.name
    while name.startswith("./"):
        name = name[2:]
    parts = name.split("/")
    if name.startswith("/") or ".." in parts:
        raise DrtasksError(f"{source}: unsafe member path {member.name!r}")
    return name.rstrip("/")


def archive_members(archive: bytes, source: str = "archive") -> list[ArchiveMember]:
    """Rows for a table of the archive's files: name, size, sha256 (directories left out)."""
    rows: list[ArchiveMember] = []
    seen: set[str] = set()
    with _open_archive(archive, source) as tar:
        try:
            for member in tar:
                name = _member_name(member, source)
                if member.isdir():
                    continue
                if name in seen:
                    # Extractors keep the last copy silently; we'd check the wrong one.
                    raise DrtasksError(f"{source}: {name!r} appears twice")
                seen.add(name)
                if not member.isfile():
                    raise DrtasksError(f"{source}: {member.name!r} is not a regular file")
                extracted = tar.extractfile(member)
                content = extracted.read() if extracted else b""
                rows.append(ArchiveMember(name, len(content), hashlib.sha256(content).hexdigest()))
        except (tarfile.TarError, OSError, EOFError) as err:
            raise DrtasksError(f"{source}: damaged archive ({err})") from None
    return rows


def read_member(archive: bytes, name: str, source: str = "archive") -> bytes:
    """The content of member ``name`` (a regular file) of the archive."""
    with _open_archive(archive, source) as tar:
        for member in tar:
            if member.isfile() and _member_name(member, source) == name:
                extracted = tar.extractfile(member)
                return extracted.read() if extracted else b""
    raise DrtasksError(f"{source}: no {name}")  # pragma: no cover - callers check first


def validate_car_archive(archive: bytes, source: str = "archive") -> list[ArchiveMember]:
    """Check the archive the way the car reads it; return its member rows.

    Exactly one ``.pb`` anywhere, ``model_metadata.json`` at the root with a usable
    action space, only regular files at safe paths, and under the car's upload limit.
    """
    if len(archive) >= CAR_UPLOAD_LIMIT_BYTES:
        raise DrtasksError(
            f"{source}: {len(archive):,} bytes, the car accepts uploads under {CAR_UPLOAD_LIMIT_BYTES:,}"
        )
    rows = archive_members(archive, source)
    check_member_names([row.name for row in rows], source)
    validate_metadata(read_member(archive, METADATA_MEMBER, source), f"{source}: {METADATA_MEMBER}")
    return rows


# ---------------------------------------------------------------- naming

_UNSAFE_NAME_CHARS = re.compile(r"[^A-Za-z0-9_-]")


def archive_file_name(model_name: str) -> str:
    """The archive file name that makes the car show ``model_name`` (as near as it can).

    The car keeps the file name up to the first ``.``, so dots cannot survive; slashes
    would make a key prefix, spaces the car turns into ``_`` anyway. Every character
    other than letters, digits, ``-`` and ``_`` becomes ``_``.
    """
    safe = _UNSAFE_NAME_CHARS.sub("_", model_name.strip())
    if not safe.strip("_"):
        raise DrtasksError(f"model name {model_name!r} leaves nothing usable for the car's file name")
    return safe + ARCHIVE_SUFFIX


def car_model_name(file_name: str) -> str:
    """The name the car will show for an uploaded archive called ``file_name``."""
    base = file_name.replace("\\", "/").rsplit("/", 1)[-1]
    name = base.split(".", 1)[0].replace(" ", "_")
    if not name:
        raise DrtasksError(f"archive file name {file_name!r} gives an empty model name on the car")
    return name
