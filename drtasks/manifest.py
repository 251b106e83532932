"""What a race or an import needs from a trained model: the upload manifest.

Each item names a target key (relative to the target prefix) and either a source object to copy
or generated content. Nothing here writes; the plan compares the manifest with the target.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

from drtasks.errors import DrtasksError
from drtasks.model import Checkpoint, SourceModel
from drtasks.s3 import ObjectInfo, head, list_objects, s3_errors

# The upload's completion markers: written after everything else, so an interrupted upload never
# looks complete. Other writers (backup, restore) mark their own items ``final``.
FINAL_KEYS = ("model/deepracer_checkpoints.json", "model/.coach_checkpoint", "model_metadata.json")


def plain_key(key: str) -> bool:
    """True when a relative key can only name a file inside its folder (no absolute, empty, '.' or '..' parts)."""
    parts = key.split("/")
    return bool(key) and not key.startswith("/") and "\\" not in key and "\x00" not in key and not any(part in ("", ".", "..") for part in parts)


@dataclass(frozen=True)
class SourceObject:
    bucket: str
    key: str
    size: int
    etag: str


@dataclass(frozen=True)
class LocalFile:
    """A file on this machine to upload; its MD5 is taken when the manifest is made.

    A file whose writer hashed it in parts (``part_md5s``: the MD5 of each ``part_size`` bytes) has
    as ``md5`` the ETag S3 gives it uploaded in those parts (the MD5 of the part MD5s, "-count"; a
    plain MD5 for one part). Its upload hashes nothing again: every part carries its planned MD5 as
    Content-MD5, so S3 refuses bytes that differ from what was planned.
    """

    path: Path
    size: int
    md5: str
    part_size: int = 0
    part_md5s: tuple[str, ...] = ()

    @classmethod
    def of(cls, path: Path) -> "LocalFile":
        digest = hashlib.md5(usedforsecurity=False)
        try:
            with path.open("rb") as handle:
                while chunk := handle.read(4 * 1024 * 1024):
                    digest.update(chunk)
            size = path.stat().st_size
        except OSError as error:
            raise DrtasksError(f"{path}: cannot read it ({error.strerror or error.__class__.__name__})") from None
        return cls(path, size, digest.hexdigest())


@dataclass(frozen=True)
class ManifestItem:
    key: str
    source: SourceObject | None = None
    content: bytes | None = None
    local: LocalFile | None = None
    # A completion marker: removed first when data changes, written only once every data object
    # is proven (drtasks.plan, drtasks.transfer). True is stage 1; a marker of stage 2 is written
    # only after every marker of stage 1 (a backup's manifest after the model's own markers).
    final: int = False

    @property
    def size(self) -> int:
        if self.source:
            return self.source.size
        if self.local:
            return self.local.size
        return len(self.content or b"")

    @property
    def etag(self) -> str:
        """The ETag the object has (source) or will have when written in one part (content, file)."""
        if self.source:
            return self.source.etag
        if self.local:
            return self.local.md5
        return hashlib.md5(self.content or b"", usedforsecurity=False).hexdigest()


def _copy(model: SourceModel, relative: str, target: str | None = None) -> ManifestItem:
    info = model.objects[relative]
    return ManifestItem(target or relative, SourceObject(model.location.bucket, info.key, info.size, info.etag))


def _from(info: ObjectInfo, bucket: str, target: str) -> ManifestItem:
    return ManifestItem(target, SourceObject(bucket, info.key, info.size, info.etag))


def checkpoint_index_for(checkpoint: Checkpoint) -> bytes:
    """deepracer_checkpoints.json naming the chosen checkpoint as both last and best."""
    entry = checkpoint.entry
    return (json.dumps({"best_checkpoint": entry, "last_checkpoint": entry}, indent=1) + "\n").encode()


ItemSource = tuple[str, ObjectInfo]  # (bucket, object)


@dataclass(frozen=True)
class ModelPieces:
    """The source objects a race needs besides the checkpoint itself, found or reported missing."""

    reward: ItemSource | None
    metrics_folder: str  # "<prefix>/metrics/": the metrics keep their path below it
    metrics: list[ObjectInfo]
    missing: list[str]

    @property
    def metrics_file_key(self) -> str:
        """Where TrainingMetrics.json lands below the target prefix (for training_params.yaml)."""
        return next(
            (f"metrics/{o.key[len(self.metrics_folder):]}" for o in self.metrics if o.key.endswith("TrainingMetrics.json")),
            "metrics/TrainingMetrics.json",
        )


def find_pieces(
    client: Any,
    model: SourceModel,
    checkpoint: Checkpoint,
    reward_key: str,
    metrics_prefix: str,
    reward_lookup: Callable[[], ObjectInfo | None] | None = None,
    metrics_lookup: Callable[[], list[ObjectInfo]] | None = None,
) -> ModelPieces:
    """``reward_lookup`` answers what is at ``reward_key`` (a HEAD), ``metrics_lookup`` what the
    metrics folder holds (a listing); either may have been started ahead of time."""
    location = model.location
    missing = [location.key(key) for key in model.missing([*checkpoint.data_files, checkpoint.frozen_graph, "model/model_metadata.json", "ip/hyperparameters.json"])]

    reward: ItemSource | None = None
    if "reward_function.py" in model.objects:
        reward = (location.bucket, model.objects["reward_function.py"])
    else:
        with s3_errors(location):
            found = reward_lookup() if reward_lookup else head(client, location.bucket, reward_key)
        if found is None:
            missing.append(f"{location.key('reward_function.py')} or {reward_key}")
        else:
            reward = (location.bucket, found)

    folder = metrics_prefix.strip("/") + "/"
    with s3_errors(location):
        metrics = metrics_lookup() if metrics_lookup else list(list_objects(client, location.bucket, metrics_prefix))
    if not metrics:
        missing.append(f"{folder} (no metrics)")
    return ModelPieces(reward, folder, metrics, missing)


def upload_manifest(
    model: SourceModel, checkpoint: Checkpoint, pieces: ModelPieces, training_params: bytes
) -> list[ManifestItem]:
    """Exactly the target layout of dr-upload-model for ``checkpoint``, data first."""
    if pieces.missing:
        raise DrtasksError("the model is incomplete, nothing was written; missing: " + ", ".join(pieces.missing))
    assert pieces.reward is not None
    bucket = model.location.bucket
    items = [_copy(model, key) for key in checkpoint.data_files]
    items += [
        _copy(model, checkpoint.frozen_graph),
        _copy(model, "model/model_metadata.json"),
        _copy(model, "ip/hyperparameters.json"),
        _from(pieces.reward[1], pieces.reward[0], "reward_function.py"),
        ManifestItem("training_params.yaml", content=training_params),
    ]
    start = len(pieces.metrics_folder)
    items += [_from(info, bucket, "metrics/" + info.key[start:]) for info in pieces.metrics]
    markers = [
        ManifestItem("model/deepracer_checkpoints.json", content=checkpoint_index_for(checkpoint)),
        ManifestItem("model/.coach_checkpoint", content=f"{checkpoint.name}\n".encode()),
        _copy(model, "model/model_metadata.json", target="model_metadata.json"),
    ]
    assert tuple(item.key for item in markers) == FINAL_KEYS
    return items + [replace(item, final=True) for item in markers]
