"""The plan: the manifest compared with what the target already holds, decided per key.

A plan is a value. It is shown, saved as JSON, and then applied exactly as shown.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Callable

from drtasks.errors import DrtasksError
from drtasks.manifest import ManifestItem
from drtasks.s3 import ObjectInfo, S3Location, list_objects, s3_errors

# Stored on every object drtasks writes: lets a later plan recognise a copy whose ETag
# differs only because it was written in parts (multipart ETags depend on the part size).
SOURCE_ETAG_METADATA = "drtasks-source-etag"


class Action(str, Enum):
    ADD = "add"
    REPLACE = "replace"
    UNCHANGED = "unchanged"
    DELETE = "delete"


@dataclass(frozen=True)
class PlanItem:
    key: str  # relative to the target prefix
    action: Action
    reason: str
    source_size: int | None = None
    target_size: int | None = None
    item: ManifestItem | None = None

    @property
    def writes(self) -> bool:
        return self.action in (Action.ADD, Action.REPLACE)

    def as_dict(self, target: S3Location) -> dict[str, Any]:
        source = self.item.source if self.item else None
        return {
            "key": target.key(self.key),
            "action": self.action.value,
            "reason": self.reason,
            "source": f"s3://{source.bucket}/{source.key}" if source else ("generated" if self.item else None),
            "source_size": self.source_size,
            "target_size": self.target_size,
        }


@dataclass
class Plan:
    source: S3Location
    target: S3Location
    items: list[PlanItem]
    title: str = "upload"
    kept: int = 0  # target objects outside the upload that stay (no wipe)
    notes: list[str] = field(default_factory=list)

    @property
    def server_side(self) -> bool:
        return self.source.same_service(self.target)

    def count(self, action: Action) -> int:
        return sum(1 for item in self.items if item.action is action)

    @property
    def changes(self) -> bool:
        return any(item.action is not Action.UNCHANGED for item in self.items)

    def summary(self) -> dict[str, int]:
        written = [item for item in self.items if item.writes]
        copied = [i for i in written if i.item and i.item.source]
        server = sum(i.source_size or 0 for i in copied) if self.server_side else 0
        moved = sum(i.source_size or 0 for i in written) - server
        return {
            "objects": sum(1 for item in self.items if item.action is not Action.DELETE),
            "add": self.count(Action.ADD),
            "replace": self.count(Action.REPLACE),
            "unchanged": self.count(Action.UNCHANGED),
            "delete": self.count(Action.DELETE),
            "bytes_to_move": moved,
            "bytes_copied_server_side": server,
            "kept": self.kept,
        }

    def to_json(self) -> str:
        return json.dumps(
            {
                "plan": self.title,
                "source": self.source.url,
                "source_endpoint": self.source.endpoint_url,
                "target": self.target.url,
                "target_endpoint": self.target.endpoint_url,
                "transfer": "server-side copy" if self.server_side else "stream",
                "summary": self.summary(),
                "items": [item.as_dict(self.target) for item in self.items],
                "notes": self.notes,
            },
            indent=2,
        )


def compare(item: ManifestItem, existing: ObjectInfo | None, source_etag_of: Callable[[ObjectInfo], str | None]) -> PlanItem:
    """Decide one key: add, replace (and why) or unchanged."""
    if existing is None:
        return PlanItem(item.key, Action.ADD, "new", item.size, None, item)
    if existing.size != item.size:
        return PlanItem(item.key, Action.REPLACE, f"size differs ({existing.size} -> {item.size} B)", item.size, existing.size, item)
    if existing.etag == item.etag:
        return PlanItem(item.key, Action.UNCHANGED, "same size and checksum", item.size, existing.size, item)
    if source_etag_of(existing) == item.etag:
        return PlanItem(item.key, Action.UNCHANGED, "same size, copied from this source", item.size, existing.size, item)
    return PlanItem(item.key, Action.REPLACE, "checksum differs", item.size, existing.size, item)


def overlaps(a: S3Location, b: S3Location) -> bool:
    """True when one location's folder contains the other's on the same service and bucket."""
    if not (a.same_service(b) and a.bucket == b.bucket):
        return False
    first, second = a.prefix + "/", b.prefix + "/"
    return first.startswith(second) or second.startswith(first) or not a.prefix or not b.prefix


def list_target(target_client: Any, target: S3Location) -> dict[str, ObjectInfo]:
    """What the target prefix holds now, by key relative to the prefix."""
    with s3_errors(target):
        return {target.relative(o.key): o for o in list_objects(target_client, target.bucket, target.prefix)}


def plan_upload(
    manifest: list[ManifestItem],
    source: S3Location,
    target: S3Location,
    target_client: Any,
    wipe: bool = False,
    title: str = "upload",
    existing: dict[str, ObjectInfo] | None = None,
) -> Plan:
    """Compare ``manifest`` with the target (``existing``: its listing, when already made)."""
    if source.same_service(target) and source.bucket == target.bucket and source.prefix == target.prefix:
        raise DrtasksError(f"the target {target.url} is the source itself; choose another upload prefix")
    if wipe and overlaps(source, target):
        raise DrtasksError(f"refusing to wipe {target.url}: it overlaps the source {source.url}")

    if existing is None:
        existing = list_target(target_client, target)

    def source_etag_of(info: ObjectInfo) -> str | None:
        with s3_errors(target):
            answer = target_client.head_object(Bucket=target.bucket, Key=info.key)
        return answer.get("Metadata", {}).get(SOURCE_ETAG_METADATA)

    items = [compare(item, existing.get(item.key), source_etag_of) for item in manifest]
    wanted = {item.key for item in manifest}
    strays = sorted(key for key in existing if key not in wanted)
    plan = Plan(source, target, items, title)
    if wipe:
        plan.items += [PlanItem(key, Action.DELETE, "not part of the upload (wipe)", None, existing[key].size) for key in strays]
    else:
        plan.kept = len(strays)
    return plan
