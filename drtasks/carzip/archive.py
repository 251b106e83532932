"""The physical car's model archive: build it, check it, describe it, name it.

Pure functions, bytes in and bytes out. The car unpacks a ``.tar.gz``, installs the
single ``*.pb`` it finds as its model and reads ``model_metadata.json`` from the archive
root; an archive with no ``.pb`` or with two is silently ignored by the car, so every
rule the car applies quietly is checked here loudly, before anything is uploaded.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import re
import tarfile
from dataclasses import dataclass
from typing import Any

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


def build_car_archive(pb_bytes: bytes, metadata_bytes: bytes) -> bytes:
    """Return the ``.tar.gz`` bytes holding exactly ``agent/model.pb`` and ``model_metadata.json``.

    Deterministic: the same inputs always give the same bytes. The result is validated
    (metadata, size) before it is returned.
    """
    if not pb_bytes:
        raise DrtasksError("the frozen graph (.pb) is empty")
    validate_metadata(metadata_bytes)
    tar_buffer = io.BytesIO()
    with tarfile.open(fileobj=tar_buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, content in ((PB_MEMBER, pb_bytes), (METADATA_MEMBER, metadata_bytes)):
            tar.addfile(_regular_member(name, len(content)), io.BytesIO(content))
    # gzip.compress writes no file name, and mtime=0 keeps the header free of "now".
    archive = gzip.compress(tar_buffer.getvalue(), compresslevel=6, mtime=0)
    validate_car_archive(archive)
    return archive


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
    graphs = [row.name for row in rows if row.name.endswith(".pb")]
    if len(graphs) != 1:
        found = ", ".join(graphs) if graphs else "none"
        raise DrtasksError(f"{source}: the car needs exactly one .pb file, found {len(graphs)} ({found})")
    if not any(row.name == METADATA_MEMBER for row in rows):
        raise DrtasksError(f"{source}: no {METADATA_MEMBER} at the archive root")
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
