"""A local journal of drtasks' own unfinished streamed uploads, so a re-run can resume them.

S3 lists unfinished multipart uploads but not what they were meant to hold. When drtasks starts
streaming a large object it notes, per upload id, which source object (its ETag) and which part
size the parts belong to. A later plan resumes such an upload only when the journal says it
carries parts of the very object it is about to write; every other unfinished upload is aborted.
Parts are still checked one by one against the bytes read again from the source.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from drtasks.s3 import S3Location, cache_dir


@dataclass(frozen=True)
class JournalEntry:
    source_etag: str
    part_size: int


def _path(target: S3Location, upload_id: str) -> Path:
    name = f"{target.endpoint_url or 'aws'}\n{target.bucket}\n{upload_id}"
    return cache_dir() / "uploads" / (hashlib.sha256(name.encode()).hexdigest()[:32] + ".json")


def remember(target: S3Location, key: str, upload_id: str, source_etag: str, part_size: int) -> None:
    path = _path(target, upload_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps({"key": key, "source_etag": source_etag, "part_size": part_size}), encoding="utf-8")
    os.replace(temporary, path)


def recall(target: S3Location, key: str, upload_id: str) -> JournalEntry | None:
    try:
        data = json.loads(_path(target, upload_id).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("key") != key:
        return None
    try:
        return JournalEntry(str(data["source_etag"]), int(data["part_size"]))
    except (KeyError, TypeError, ValueError):
        return None


def forget(target: S3Location, upload_id: str) -> None:
    _path(target, upload_id).unlink(missing_ok=True)
