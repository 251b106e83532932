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
import re
import struct
import tarfile
import zlib
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
    """What writing an archive proved: its members as written, and the archive's own size and checksums."""

    members: list[ArchiveMember]
    size: int
    md5: str
    sha256: str


class _ArchiveOut:
    """The archive's bytes on their way out: hashed, counted, and held to the car's limit as they grow."""

    def __init__(self, out: BinaryIO, source: str) -> None:
        self.out, self.source = out, source
        self.md5 = hashlib.md5(usedforsecurity=False)
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> None:
        if not data:
            return
        self.size += len(data)
        if self.size >= CAR_UPLOAD_LIMIT_BYTES:
            raise DrtasksError(f"{self.source}: over {CAR_UPLOAD_LIMIT_BYTES:,} bytes, the car accepts uploads under {CAR_UPLOAD_LIMIT_BYTES:,}")
        self.md5.update(data)
        self.sha256.update(data)
        self.out.write(data)


class _Gzip:
    """Tar bytes in, gzip out: byte for byte what ``gzip.compress(tar, 6, mtime=0)`` gives, in a stream.

    The header carries no file name and no time, so the same members always give the same bytes.
    """

    def __init__(self, out: _ArchiveOut, level: int = GZIP_LEVEL) -> None:
        self.out = out
        self.compressor = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS)
        self.crc = 0
        self.size = 0
        xfl = 2 if level == 9 else 4 if level == 1 else 0
        out.write(b"\x1f\x8b\x08\x00" + struct.pack("<L", 0) + bytes((xfl, 3)))  # OS 3 (Unix), as Python 3.11 writes it

    def write(self, data: bytes) -> int:
        self.crc = zlib.crc32(data, self.crc)
        self.size += len(data)
        self.out.write(self.compressor.compress(data))
        return len(data)

    def tell(self) -> int:
        return self.size

    def close(self) -> None:
        self.out.write(self.compressor.flush())
        self.out.write(struct.pack("<LL", self.crc, self.size & 0xFFFFFFFF))


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


def write_car_archive(members: "list[tuple[str, bytes | BinaryIO, int]]", out: BinaryIO, source: str = "car archive") -> BuiltArchive:
    """Stream ``members`` (name, content, size) into a deterministic ``.tar.gz`` written to ``out``.

    Checked once, as it is written: the member names (exactly one ``.pb``, the metadata at the root,
    which must hold an action space), each member's length, the car's size limit. Each member is
    hashed as it passes, and so is the archive: the result is the table of contents and the
    archive's size, MD5 and SHA-256, without reading anything back.
    """
    check_member_names([name for name, _content, _size in members], source)
    for name, content, _size in members:
        if name == METADATA_MEMBER:
            if not isinstance(content, bytes):
                raise TypeError("the metadata member is read whole: pass its bytes")
            validate_metadata(content, f"{source}: {METADATA_MEMBER}")
    sink = _ArchiveOut(out, source)
    stream = _Gzip(sink)
    rows: list[ArchiveMember] = []
    with tarfile.open(fileobj=stream, mode="w", format=tarfile.USTAR_FORMAT, copybufsize=1 << 20) as tar:  # type: ignore[call-overload]
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
    return BuiltArchive(rows, sink.size, sink.md5.hexdigest(), sink.sha256.hexdigest())


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
