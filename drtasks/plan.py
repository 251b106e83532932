"""The S3 plan: a manifest compared with what the target already holds, decided per key.

A plan is a value. It is shown, saved as JSON, and then applied exactly as shown
(``drtasks.transfer.apply``). Deciding is pure: the listings it compares come from the caller.

Safety rules decided here, so that every writer shares them:
- completion markers (``ManifestItem.final``) are written last; when any data object changes, the
  markers the target already holds are removed first (``PlanItem.unmark``), so an interrupted run
  never leaves old markers over new or missing data;
- a wipe deletes only keys under the target prefix that are not part of the upload, and never an
  object the upload reads (``inputs``);
- unfinished multipart uploads a killed run left under the target prefix are planned: resumed when
  drtasks' own journal says they hold parts of this very source object, else aborted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Callable, Iterable

from drtasks.errors import DrtasksError
from drtasks.manifest import ManifestItem
from drtasks.s3 import ObjectInfo, S3Location, list_objects, s3_errors

# Stored on every object drtasks writes, once its bytes are proven: lets a later plan recognise a
# copy whose ETag differs only because it was written in parts (multipart ETags depend on part size).
SOURCE_ETAG_METADATA = "drtasks-source-etag"
# The lease object of a run writing the target (drtasks.lease); never planned, never wiped.
LEASE_NAME = ".drtasks-lease.json"


class Action(str, Enum):
    ADD = "add"
    REPLACE = "replace"
    UNCHANGED = "unchanged"
    DELETE = "delete"
    ABORT = "abort"  # an unfinished multipart upload left by an interrupted run


@dataclass(frozen=True)
class PendingUpload:
    """An unfinished multipart upload found under the target prefix."""

    key: str  # full key
    upload_id: str
    initiated: float = 0.0


@dataclass(frozen=True)
class PlanItem:
    key: str  # relative to the target prefix
    action: Action
    reason: str
    source_size: int | None = None
    target_size: int | None = None
    item: ManifestItem | None = None
    target_etag: str | None = None  # what the target holds now (UNCHANGED: what must still be there)
    unmark: bool = False  # a completion marker removed before any data changes, written again last
    upload_id: str | None = None  # ABORT: the upload to abort; ADD/REPLACE: an upload to resume

    @property
    def writes(self) -> bool:
        return self.action in (Action.ADD, Action.REPLACE)

    @property
    def final(self) -> bool:
        return bool(self.item and self.item.final)

    @property
    def stage(self) -> int:
        """0 for data; a completion marker's stage (markers of stage 2 are written after those of stage 1)."""
        return int(self.item.final) if self.item else 0

    def as_dict(self, target: S3Location) -> dict[str, Any]:
        source = self.item.source if self.item else None
        local = self.item.local if self.item else None
        origin = f"s3://{source.bucket}/{source.key}" if source else str(local.path) if local else ("generated" if self.item else None)
        data: dict[str, Any] = {
            "key": target.key(self.key),
            "action": self.action.value,
            "reason": self.reason,
            "source": origin,
            "source_size": self.source_size,
            "target_size": self.target_size,
        }
        if self.unmark:
            data["removed_first"] = True
        if self.upload_id:
            data["upload_id"] = self.upload_id
        return data


def location_url(location: "S3Location | Path") -> str:
    """An S3 location's URL, or a local folder's path."""
    return location.url if isinstance(location, S3Location) else str(location)


@dataclass
class Plan:
    source: "S3Location | Path"  # a local folder when the manifest's items are files
    target: S3Location
    items: list[PlanItem]
    title: str = "upload"
    kept: int = 0  # target objects outside the upload that stay (no wipe)
    notes: list[str] = field(default_factory=list)
    put_only: bool = False  # the target may only be written (DRoA): no listing, reading or lease
    lease: bool = True  # hold drtasks' lease on the target prefix while applying

    @property
    def server_side(self) -> bool:
        return isinstance(self.source, S3Location) and self.source.same_service(self.target)

    def count(self, action: Action) -> int:
        return sum(1 for item in self.items if item.action is action)

    @property
    def changes(self) -> bool:
        return any(item.action is not Action.UNCHANGED for item in self.items)

    @property
    def unmarked(self) -> list[PlanItem]:
        return [item for item in self.items if item.unmark]

    def summary(self) -> dict[str, int]:
        written = [item for item in self.items if item.writes]
        copied = [i for i in written if i.item and i.item.source]
        server = sum(i.source_size or 0 for i in copied) if self.server_side else 0
        moved = sum(i.source_size or 0 for i in written) - server
        return {
            "objects": sum(1 for item in self.items if item.item is not None),
            "add": self.count(Action.ADD),
            "replace": self.count(Action.REPLACE),
            "unchanged": self.count(Action.UNCHANGED),
            "delete": self.count(Action.DELETE),
            "abort": self.count(Action.ABORT),
            "markers_removed_first": len(self.unmarked),
            "bytes_to_move": moved,
            "bytes_copied_server_side": server,
            "kept": self.kept,
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "plan": self.title,
            "source": location_url(self.source),
            "source_endpoint": self.source.endpoint_url if isinstance(self.source, S3Location) else None,
            "target": self.target.url,
            "target_endpoint": self.target.endpoint_url,
            "transfer": "server-side copy" if self.server_side else "stream",
            "summary": self.summary(),
            "items": [item.as_dict(self.target) for item in self.items],
            "notes": self.notes,
        }

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), indent=2)


def compare(item: ManifestItem, existing: ObjectInfo | None, source_etag_of: Callable[[ObjectInfo], str | None]) -> PlanItem:
    """Decide one key: add, replace (and why) or unchanged."""
    if existing is None:
        return PlanItem(item.key, Action.ADD, "new", item.size, None, item)
    if existing.size != item.size:
        return PlanItem(item.key, Action.REPLACE, f"size differs ({existing.size} -> {item.size} B)", item.size, existing.size, item, existing.etag)
    if existing.etag == item.etag:
        return PlanItem(item.key, Action.UNCHANGED, "same size and checksum", item.size, existing.size, item, existing.etag)
    if source_etag_of(existing) == item.etag:
        return PlanItem(item.key, Action.UNCHANGED, "same size, proven copy of this source", item.size, existing.size, item, existing.etag)
    return PlanItem(item.key, Action.REPLACE, "checksum differs", item.size, existing.size, item, existing.etag)


def overlaps(a: S3Location, b: S3Location) -> bool:
    """True when one location's folder contains the other's on the same service and bucket."""
    if not (a.same_service(b) and a.bucket == b.bucket):
        return False
    first, second = a.prefix + "/", b.prefix + "/"
    return first.startswith(second) or second.startswith(first) or not a.prefix or not b.prefix


@dataclass(frozen=True)
class Input:
    """Something the upload reads: one object (``folder`` False) or everything below a folder."""

    location: S3Location  # the service and bucket; ``prefix`` is the key or the folder
    folder: bool = False
    what: str = ""

    def covers(self, bucket_location: S3Location, key: str) -> bool:
        if not (self.location.same_service(bucket_location) and self.location.bucket == bucket_location.bucket):
            return False
        if self.folder:
            return key.startswith(self.location.prefix.strip("/") + "/") or not self.location.prefix.strip("/")
        return key == self.location.prefix

    def describe(self) -> str:
        kind = "folder" if self.folder else "object"
        name = f"s3://{self.location.bucket}/{self.location.prefix}{'/' if self.folder else ''}"
        return f"{self.what + ' ' if self.what else ''}{kind} {name}".strip()


def list_target(target_client: Any, target: S3Location) -> dict[str, ObjectInfo]:
    """What the target prefix holds now, by key relative to the prefix (drtasks' lease left out)."""
    with s3_errors(target):
        found = {target.relative(o.key): o for o in list_objects(target_client, target.bucket, target.prefix)}
    found.pop(LEASE_NAME, None)
    return found


def list_pending_uploads(target_client: Any, target: S3Location) -> list[PendingUpload]:
    """Unfinished multipart uploads under the target folder."""
    folder = f"{target.prefix}/" if target.prefix else ""
    pending: list[PendingUpload] = []
    with s3_errors(target):
        paginator = target_client.get_paginator("list_multipart_uploads")
        for page in paginator.paginate(Bucket=target.bucket, Prefix=folder):
            for upload in page.get("Uploads", []):
                started = upload.get("Initiated")
                pending.append(PendingUpload(upload["Key"], upload["UploadId"], started.timestamp() if started else 0.0))
    return pending


def mark_markers(items: list[PlanItem]) -> list[PlanItem]:
    """When data changes, markers the target holds go first and come back last.

    Stages generalise it: a change at stage s (data is stage 0) removes first every marker of a
    later stage that the target holds.
    """
    changed = [i.stage for i in items if i.writes]
    if not changed:
        return items
    lowest = min(changed)
    marked: list[PlanItem] = []
    for entry in items:
        if entry.final and entry.stage > lowest and entry.target_size is not None:
            reason = "completion marker: removed before the data changes, written last"
            if entry.action is Action.UNCHANGED:
                reason = "completion marker (same content): removed before the data changes, written again last"
            entry = PlanItem(
                entry.key, Action.REPLACE, reason, entry.source_size, entry.target_size, entry.item, entry.target_etag, unmark=True
            )
        marked.append(entry)
    return marked


def refuse_deleting_inputs(target: S3Location, keys: Iterable[str], inputs: Iterable[Input]) -> None:
    inputs = list(inputs)
    for key in keys:
        full = target.key(key)
        for needed in inputs:
            if needed.covers(target, full):
                raise DrtasksError(
                    f"refusing to wipe {target.url}: s3://{target.bucket}/{full} is read by this upload "
                    f"({needed.describe()}); move the upload prefix or the input, or run without --wipe"
                )


def plan_upload(
    manifest: list[ManifestItem],
    source: "S3Location | Path",
    target: S3Location,
    target_client: Any,
    wipe: bool = False,
    title: str = "upload",
    existing: dict[str, ObjectInfo] | None = None,
    inputs: Iterable[Input] = (),
    pending: Iterable[PendingUpload] = (),
    resumable: Callable[[PendingUpload, ManifestItem], bool] | None = None,
    put_only: bool = False,
) -> Plan:
    """Compare ``manifest`` with the target (``existing``: its listing, when already made).

    ``put_only`` targets (DRoA's upload bucket) are never read: ``existing`` must be given (a
    fresh prefix holds nothing) and no metadata is asked for.
    """
    if not target.prefix.strip("/"):
        raise DrtasksError(f"refusing to write to the bucket root of s3://{target.bucket}: set an upload prefix")
    if isinstance(source, S3Location) and source.same_service(target) and source.bucket == target.bucket and source.prefix == target.prefix:
        raise DrtasksError(f"the target {target.url} is the source itself; choose another upload prefix")
    if wipe and isinstance(source, S3Location) and overlaps(source, target):
        raise DrtasksError(f"refusing to wipe {target.url}: it overlaps the source {source.url}")
    if put_only and existing is None:
        raise ValueError("a put-only target cannot be listed: pass what it holds")

    if existing is None:
        existing = list_target(target_client, target)

    def source_etag_of(info: ObjectInfo) -> str | None:
        with s3_errors(target):
            answer = target_client.head_object(Bucket=target.bucket, Key=info.key)
        return answer.get("Metadata", {}).get(SOURCE_ETAG_METADATA)

    items = mark_markers([compare(item, existing.get(item.key), source_etag_of) for item in manifest])
    by_key = {item.key: item for item in manifest}

    # Unfinished uploads: resume the ones that continue a planned write of the same source object.
    aborts: list[PlanItem] = []
    resumed: dict[str, str] = {}
    for upload in pending:
        relative = target.relative(upload.key)
        wanted = by_key.get(relative)
        planned = next((i for i in items if i.key == relative and i.writes), None)
        if planned and wanted and relative not in resumed and resumable and resumable(upload, wanted):
            resumed[relative] = upload.upload_id
            continue
        aborts.append(PlanItem(relative, Action.ABORT, "unfinished upload left by an interrupted run", upload_id=upload.upload_id))
    if resumed:
        items = [
            PlanItem(i.key, i.action, f"{i.reason}; resumes an interrupted upload", i.source_size, i.target_size, i.item, i.target_etag, i.unmark, resumed[i.key])
            if i.key in resumed
            else i
            for i in items
        ]

    strays = sorted(key for key in existing if key not in by_key)
    plan = Plan(source, target, aborts + items, title, put_only=put_only, lease=not put_only)
    if wipe:
        refuse_deleting_inputs(target, strays, inputs)
        plan.items += [PlanItem(key, Action.DELETE, "not part of the upload (wipe)", None, existing[key].size, target_etag=existing[key].etag) for key in strays]
    else:
        plan.kept = len(strays)
    return plan
