"""A backup of a whole trained model, and its manifest ``drtasks-backup.json``.

What a backup holds (the folder ``<backup root>/<model prefix>/``):
- every object under the model prefix, at the same relative key: all kept checkpoints with
  ``model/checkpoint``, ``.coach_checkpoint``, ``deepracer_checkpoints.json``, the metadata, every
  ``model_N.pb``, ``ip/``, ``metrics/`` (every worker's file, ``metrics/evaluation/``),
  ``training_params*.yaml``, the root reward function, markers; except the simulation traces
  (``training-simtrace/``, ``evaluation-simtrace/``) and videos (``camera-*/``) unless asked for;
- the training bucket's custom files (``DR_LOCAL_S3_CUSTOM_FILES_PREFIX``, and the reward function
  ``DR_LOCAL_S3_REWARD_KEY`` when it lies elsewhere) under ``custom_files/``;
- ``drtasks-backup.json``, written last: for every object its key, size, SHA-256, MD5 and the
  ETag of the source version it copies. A folder without it is an unfinished backup.

This module decides and describes; it reads S3 (listings, the manifest) but never writes.
"""

from __future__ import annotations

import json
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, Iterable

from drtasks.errors import DrtasksError
from drtasks.manifest import plain_key
from drtasks.model import CHECKPOINT_INDEX
from drtasks.s3 import ObjectInfo, S3Location, list_objects, s3_errors

BACKUP_MANIFEST = "drtasks-backup.json"
FORMAT = "drtasks-backup/1"
CUSTOM_FOLDER = "custom_files"
SIMTRACE_FOLDERS = ("training-simtrace", "evaluation-simtrace")
VIDEO_FOLDERS = ("camera-pip", "camera-45degree", "camera-topview")
# The model's pointers to its checkpoints: a copy of the model (backup or restore) writes them
# after every checkpoint file, so a partial copy never looks like a model DRfC could resume.
MODEL_MARKERS = ("model/deepracer_checkpoints.json", "model/.coach_checkpoint", "model/checkpoint")
# The manifest is the very last write: after the data, and after the model's markers (stage 1).
MANIFEST_STAGE = 2
# Written in place of the hashes still to be taken, so that the manifest planned has the size of
# the one written (hex digests have a fixed length).
PENDING_SHA256 = "0" * 64
PENDING_MD5 = "0" * 32
LEASE_NAME = ".drtasks-lease.json"  # drtasks.plan's lease object: never part of a model
_HEX = re.compile(r"^[0-9a-f]+$")
_CHECKPOINT_FILE = re.compile(r"^model/(\d+)_Step-\d+\.ckpt\.")


def now_utc() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def safe_key(key: str, where: str) -> str:
    """A relative key that stays inside its folder on any file system, or a one-line refusal."""
    if not plain_key(key):
        raise DrtasksError(f"{where}: the key {key!r} cannot be a file inside the backup folder (empty, absolute or '..' parts)")
    return key


@dataclass(frozen=True)
class Entry:
    """One object of a backup, as the manifest records it."""

    key: str  # relative to the backup folder
    size: int
    etag: str  # the ETag of the source version copied (S3's checksum of those bytes)
    sha256: str
    md5: str
    origin: str = ""  # the source's full key
    mtime_ns: int | None = None  # folder backups: the file's modification time once written

    @property
    def hashed(self) -> bool:
        return self.sha256 != PENDING_SHA256

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"key": self.key, "size": self.size, "sha256": self.sha256, "md5": self.md5, "etag": self.etag, "origin": self.origin}
        if self.mtime_ns is not None:
            data["mtime_ns"] = self.mtime_ns
        return data


@dataclass
class BackupDocument:
    """drtasks-backup.json."""

    source: dict[str, Any]  # bucket, prefix, endpoint_url of the model it copies
    created: str  # the first backup into this folder
    updated: str  # the run that last changed it
    checkpoints: list[dict[str, Any]]  # {"number", "name"} of every kept checkpoint
    best: str | None
    last: str | None
    config: dict[str, str]  # reward_function / model_metadata / hyperparameters -> key in the backup
    custom_files: str | None  # the training bucket's custom files prefix they came from
    left_out: list[str]
    entries: list[Entry] = field(default_factory=list)

    @property
    def source_url(self) -> str:
        return f"s3://{self.source.get('bucket')}/{self.source.get('prefix')}".rstrip("/")

    @property
    def total_bytes(self) -> int:
        return sum(entry.size for entry in self.entries)

    def by_key(self) -> dict[str, Entry]:
        return {entry.key: entry for entry in self.entries}

    def model_entries(self) -> list[Entry]:
        """The objects of the model itself (what a restore writes below the model prefix)."""
        return [entry for entry in self.entries if not entry.key.startswith(CUSTOM_FOLDER + "/")]

    def as_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "source": self.source,
            "created": self.created,
            "updated": self.updated,
            "checkpoints": self.checkpoints,
            "best": self.best,
            "last": self.last,
            "config": self.config,
            "custom_files": self.custom_files,
            "left_out": self.left_out,
            "totals": {"objects": len(self.entries), "bytes": self.total_bytes},
            "objects": [entry.as_dict() for entry in self.entries],
        }

    def to_bytes(self) -> bytes:
        return (json.dumps(self.as_dict(), indent=1) + "\n").encode()

    def same_content(self, other: "BackupDocument | None") -> bool:
        """Everything but the time of the run that wrote it is the same."""
        return other is not None and replace(self, updated=other.updated).as_dict() == other.as_dict()

    @classmethod
    def parse(cls, raw: bytes, where: str) -> "BackupDocument":
        """The manifest read back; anything malformed is refused in one line naming ``where``."""

        def bad(why: str) -> DrtasksError:
            return DrtasksError(f"{where} is not a drtasks backup manifest: {why}")

        try:
            data = json.loads(raw)
        except ValueError as error:
            raise bad(f"not JSON ({error.args[0] if error.args else error})") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise bad(f"format is not {FORMAT!r}")
        source = data.get("source")
        if not isinstance(source, dict) or not isinstance(source.get("bucket"), str) or not isinstance(source.get("prefix"), str):
            raise bad("no source bucket and prefix")
        objects = data.get("objects")
        if not isinstance(objects, list):
            raise bad("no list of objects")
        entries = []
        for number, item in enumerate(objects, start=1):
            if not isinstance(item, dict):
                raise bad(f"object {number} is not a mapping")
            key, size, sha, md5, etag = (item.get(name) for name in ("key", "size", "sha256", "md5", "etag"))
            if not isinstance(key, str):
                raise bad(f"object {number} has no key")
            if not isinstance(size, int) or isinstance(size, bool) or size < 0:
                raise bad(f"{key}: size is not a byte count")
            for name, value, length in (("sha256", sha, 64), ("md5", md5, 32)):
                if not isinstance(value, str) or len(value) != length or not _HEX.match(value):
                    raise bad(f"{key}: {name} is not a hex digest")
            if not isinstance(etag, str) or not etag:
                raise bad(f"{key}: no etag")
            mtime = item.get("mtime_ns")
            entries.append(Entry(safe_key(key, where), size, etag, sha, md5, str(item.get("origin") or ""), mtime if isinstance(mtime, int) else None))
        if len({entry.key for entry in entries}) != len(entries):
            raise bad("a key is listed twice")

        def text(name: str) -> str | None:
            value = data.get(name)
            return value if isinstance(value, str) else None

        config = data.get("config") if isinstance(data.get("config"), dict) else {}
        checkpoints = [c for c in data.get("checkpoints") or [] if isinstance(c, dict)]
        left_out = [str(folder) for folder in data.get("left_out") or []]
        return cls(
            dict(source), text("created") or "", text("updated") or "", checkpoints, text("best"), text("last"),
            {str(k): str(v) for k, v in config.items()}, text("custom_files"), left_out, entries,
        )


# -- what a backup copies ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelListing:
    """Every object of a model prefix except the folders left out (which are never listed)."""

    location: S3Location
    objects: dict[str, ObjectInfo]  # relative key -> object
    left_out: list[str]  # "training-simtrace/", ... present but not listed


def left_out_folders(simtraces: bool, videos: bool) -> set[str]:
    return (set() if simtraces else set(SIMTRACE_FOLDERS)) | (set() if videos else set(VIDEO_FOLDERS))


def _root_listing(client: Any, bucket: str, prefix: str) -> tuple[list[ObjectInfo], list[str]]:
    """The files directly in ``prefix/`` and its subfolder names (one delimiter listing)."""
    folder = f"{prefix}/" if prefix else ""
    files: list[ObjectInfo] = []
    folders: list[str] = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=folder, Delimiter="/"):
        folders += [p["Prefix"][len(folder) :].strip("/") for p in page.get("CommonPrefixes", [])]
        for item in page.get("Contents", []):
            modified = item.get("LastModified")
            files.append(ObjectInfo(item["Key"], int(item["Size"]), item["ETag"].strip('"'), modified.timestamp() if modified else 0.0))
    return files, folders


def list_model(client: Any, location: S3Location, leave_out: Iterable[str]) -> ModelListing:
    """The model's own files and every folder but the ones left out, each folder listed in parallel."""
    skipped = set(leave_out)
    with s3_errors(location):
        files, folders = _root_listing(client, location.bucket, location.prefix)
        wanted = [name for name in folders if name not in skipped]
        with ThreadPoolExecutor(max(1, min(8, len(wanted)))) as pool:
            listed = list(pool.map(lambda name: list(list_objects(client, location.bucket, location.key(name))), wanted))
    objects = {location.relative(info.key): info for info in [*files, *(info for group in listed for info in group)]}
    objects.pop(LEASE_NAME, None)
    return ModelListing(location, objects, sorted(f"{name}/" for name in folders if name in skipped))


def kept_checkpoints(keys: Iterable[str]) -> list[dict[str, Any]]:
    found: dict[int, str] = {}
    for key in keys:
        if match := _CHECKPOINT_FILE.match(key):
            found[int(match.group(1))] = key[len("model/") :].split(".ckpt", 1)[0] + ".ckpt"
    return [{"number": number, "name": name} for number, name in sorted(found.items())]


def index_names(raw: bytes | None) -> tuple[str | None, str | None]:
    """(best, last) checkpoint names of deepracer_checkpoints.json, None where it names none."""
    try:
        index = json.loads(raw) if raw else None
    except ValueError:
        return None, None

    def name(which: str) -> str | None:
        entry = index.get(f"{which}_checkpoint") if isinstance(index, dict) else None
        value = entry.get("name") if isinstance(entry, dict) else None
        return value if isinstance(value, str) else None

    return name("best"), name("last")


@dataclass(frozen=True)
class Piece:
    """One object a backup copies: its key in the backup and the source object."""

    key: str
    info: ObjectInfo


def backup_pieces(
    model: ModelListing, custom_prefix: str, custom: list[ObjectInfo], reward_key: str, reward: ObjectInfo | None
) -> tuple[list[Piece], dict[str, str], list[str]]:
    """(pieces, config keys, notes): the model's objects, then the custom files under custom_files/."""
    location = model.location
    if BACKUP_MANIFEST in model.objects:
        raise DrtasksError(f"{location.url} holds {BACKUP_MANIFEST}: it is a backup itself, not a trained model; restore it first")
    clash = sorted(key for key in model.objects if key.startswith(CUSTOM_FOLDER + "/"))
    if clash:
        raise DrtasksError(f"{location.url}/{clash[0]}: the model has its own {CUSTOM_FOLDER}/ folder, where a backup keeps the custom files; nothing was written")
    pieces = [Piece(key, info) for key, info in sorted(model.objects.items())]
    folder = custom_prefix.strip("/") + "/"
    names = {info.key[len(folder) :]: info for info in custom if info.key.startswith(folder)}
    notes: list[str] = []
    if reward is not None and not reward.key.startswith(folder):
        name = reward.key.rsplit("/", 1)[-1]
        if name in names and names[name].etag != reward.etag:
            raise DrtasksError(f"the reward function {reward.key} and {folder}{name} differ and would share {CUSTOM_FOLDER}/{name} in the backup")
        names[name] = reward
    pieces += [Piece(f"{CUSTOM_FOLDER}/{name}", info) for name, info in sorted(names.items())]
    reward_key = reward_key.strip("/")
    reward_name = reward_key[len(folder) :] if reward_key.startswith(folder) else reward_key.rsplit("/", 1)[-1]
    config = {
        "reward_function": "reward_function.py" if "reward_function.py" in model.objects else f"{CUSTOM_FOLDER}/{reward_name}",
        "model_metadata": "model/model_metadata.json",
        "hyperparameters": "ip/hyperparameters.json",
    }
    present = {piece.key: piece.info for piece in pieces}
    for role, key in config.items():
        if key not in present:
            notes.append(f"the backup holds no {key} ({role.replace('_', ' ')}): a restore cannot give DRfC this model's {role.replace('_', ' ')}")
    for own, copy in (("model/model_metadata.json", "model_metadata.json"), ("ip/hyperparameters.json", "hyperparameters.json")):
        theirs = names.get(copy)
        if own in present and theirs is not None and (theirs.size, theirs.etag) != (present[own].size, present[own].etag):
            notes.append(f"{folder}{copy} differs from the model's {own}: the custom files changed after this model was trained (both are kept)")
    return pieces, config, notes


def nested_backups(keys: Iterable[str]) -> list[str]:
    """The subfolders (of a backup folder's listing) that hold a backup of their own."""
    return sorted(key[: -len(BACKUP_MANIFEST)] for key in keys if key.endswith("/" + BACKUP_MANIFEST))


def entries_for(pieces: list[Piece], previous: BackupDocument | None) -> list[Entry]:
    """An entry per piece; hashes carried over from the previous manifest where the source version is the same."""
    known = previous.by_key() if previous else {}
    entries = []
    for piece in pieces:
        old = known.get(piece.key)
        if old is not None and old.hashed and (old.size, old.etag) == (piece.info.size, piece.info.etag):
            entries.append(Entry(piece.key, old.size, old.etag, old.sha256, old.md5, piece.info.key, old.mtime_ns))
        else:
            entries.append(Entry(piece.key, piece.info.size, piece.info.etag, PENDING_SHA256, PENDING_MD5, piece.info.key))
    return entries


def read_document(client: Any, location: S3Location) -> tuple[BackupDocument | None, bytes | None]:
    """The manifest of the backup folder ``location`` (and its bytes), or (None, None) when it has none."""
    from botocore.exceptions import ClientError

    key = location.key(BACKUP_MANIFEST)
    with s3_errors(location):
        try:
            raw = client.get_object(Bucket=location.bucket, Key=key)["Body"].read()
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
                return None, None
            raise
    return BackupDocument.parse(raw, f"{location.url}/{BACKUP_MANIFEST}"), raw


def checkpoint_index_of(client: Any, location: S3Location, objects: dict[str, ObjectInfo]) -> bytes:
    """The model's deepracer_checkpoints.json, or a refusal: without it there is no model to back up."""
    info = objects.get(CHECKPOINT_INDEX)
    if info is None:
        raise DrtasksError(f"{location.url}/{CHECKPOINT_INDEX} is missing: not a trained model (yet); nothing was written")
    with s3_errors(location):
        return bytes(client.get_object(Bucket=location.bucket, Key=info.key, IfMatch=f'"{info.etag}"')["Body"].read())
