"""Where an import reads the trained model from: the training bucket, or a folder of this machine.

Both hold DRfC's layout (``model/`` with the checkpoints, their index and frozen graphs, ``ip/``,
``metrics/``, ``reward_function.py``, ``training_params*.yaml``), so both give the same manifest
(``drtasks.manifest.upload_manifest``): they differ only in how bytes are read. A bucket's items
are copied from their objects; a folder's items are its files (``LocalFile``: hashed when the
manifest is made, uploaded from this machine by the same executor).

A folder may also be one DRfC's ``droa-import-model --model-dir`` takes, already in the upload's
layout: ``model_metadata.json`` at the root (used when ``model/`` has none) and DRfC's
``hyperparameters.json`` at the root (used when ``ip/`` has none; DRoA reads ``ip/``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from drtasks.checkpoint_choice import Choice, choose, choose_for
from drtasks.config import targets
from drtasks.config.settings import Settings
from drtasks.config.targets import BestBy
from drtasks.errors import DrtasksError
from drtasks.manifest import LocalFile, ManifestItem, ModelPieces, find_pieces
from drtasks.model import Checkpoint, SourceModel
from drtasks.model_check import check_checkpoint_model, check_model, empty_checkpoint_files
from drtasks.s3 import S3Location, make_client, read_proven, s3_errors

# DRfC's pre-assembled upload folders keep these at the root; the race layout wants them inside.
FOLDER_FALLBACKS = {"model/model_metadata.json": "model_metadata.json", "ip/hyperparameters.json": "hyperparameters.json"}


@dataclass
class ModelSource(ABC):
    """The model, the chosen checkpoint and the pieces an upload of it needs."""

    model: SourceModel
    choice: Choice
    pieces: ModelPieces
    notes: list[str] = field(default_factory=list)

    @property
    def checkpoint(self) -> Checkpoint:
        return self.choice.checkpoint

    @property
    def where(self) -> str:
        return self.model.where

    @property
    @abstractmethod
    def plan_source(self) -> "S3Location | Path": ...

    @property
    def client(self) -> Any:
        """The source bucket's client (None for a folder: the executor reads its files)."""
        return None

    @abstractmethod
    def read(self, item: ManifestItem) -> bytes:
        """The bytes an item of this source's manifest will upload."""

    @abstractmethod
    def read_file(self, relative: str) -> bytes:
        """A file of the model by its key below the model's root."""

    def items(self, manifest: list[ManifestItem]) -> list[ManifestItem]:
        """The manifest as the executor takes it from this source."""
        return manifest

    @abstractmethod
    def check_model(self) -> None:
        """The chosen checkpoint's frozen graph agrees with the metadata (drtasks.model_check)."""


@dataclass
class BucketSource(ModelSource):
    location: S3Location = field(default_factory=lambda: S3Location("", ""))
    s3: Any = None

    @property
    def plan_source(self) -> S3Location:
        return self.location

    @property
    def client(self) -> Any:
        return self.s3

    def read(self, item: ManifestItem) -> bytes:
        if item.content is not None or item.source is None:
            return item.content or b""
        with s3_errors(self.location):
            return read_proven(self.s3, item.source.bucket, item.source.key, item.source.etag)

    def read_file(self, relative: str) -> bytes:
        info = self.model.objects[relative]
        with s3_errors(self.location):
            return read_proven(self.s3, self.location.bucket, info.key, info.etag)

    def check_model(self) -> None:
        check_checkpoint_model(self.s3, self.model, self.checkpoint)  # cached by both objects' ETags


@dataclass
class FolderSource(ModelSource):
    @property
    def folder(self) -> Path:
        assert self.model.folder is not None
        return self.model.folder

    @property
    def plan_source(self) -> Path:
        return self.folder

    def _path(self, key: str) -> Path:
        return self.folder / key

    def read(self, item: ManifestItem) -> bytes:
        if item.local is not None:
            return _read(item.local.path)
        if item.source is not None:
            return _read(self._path(item.source.key))
        return item.content or b""

    def read_file(self, relative: str) -> bytes:
        return _read(self._path(self.model.objects[relative].key))

    def items(self, manifest: list[ManifestItem]) -> list[ManifestItem]:
        # Hashed here, once: the plan and every PUT's Content-MD5 come from this MD5.
        return [ManifestItem(item.key, local=LocalFile.of(self._path(item.source.key))) if item.source else item for item in manifest]

    def check_model(self) -> None:
        empty = empty_checkpoint_files(self.model, self.checkpoint)
        if empty:
            raise DrtasksError("the model is broken, nothing was written: zero-byte " + ", ".join(f"{self.where}/{key}" for key in empty))
        graph = self.checkpoint.frozen_graph
        check_model(self.read_file("model/model_metadata.json"), self.read_file(graph), graph_name=graph.rsplit("/", 1)[-1])


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise DrtasksError(f"{path}: cannot read it ({error.strerror or error.__class__.__name__})") from None


def from_bucket(settings: Settings, max_pool_connections: int = 16) -> BucketSource:
    """The model of the settings' training bucket and prefix, with the checkpoint they choose."""
    location = targets.source_location(settings)
    client = make_client(location, max_pool_connections=max_pool_connections)
    model = SourceModel.load(client, location)
    choice = choose_for(settings, client, model)
    pieces = find_pieces(client, model, choice.checkpoint, targets.reward_key(settings), targets.metrics_prefix(settings))
    return BucketSource(model, choice, pieces, location=location, s3=client)


def _folder_choice(settings: Settings, model: SourceModel) -> Choice:
    policy = targets.checkpoint_policy(settings)
    if isinstance(policy, BestBy):
        raise DrtasksError(
            f"checkpoint best-by:{policy.metric} reads the training metrics from S3; for a model folder choose "
            "last, best or a checkpoint number"
        )
    choice = choose(None, model, policy, "")
    origin = settings.origin("DR_UPLOAD_CHECKPOINT")
    if origin is None or origin.layer == "default":
        return choice
    return Choice(choice.checkpoint, f"{choice.reason}; policy from {origin}")


def from_folder(settings: Settings, folder: Path) -> FolderSource:
    """A DRfC model folder of this machine, with the checkpoint the settings choose."""
    model = SourceModel.from_folder(folder.expanduser())
    notes = []
    for wanted, fallback in FOLDER_FALLBACKS.items():
        if wanted not in model.objects and fallback in model.objects:
            model.objects[wanted] = replace(model.objects[fallback])
            notes.append(f"{wanted}: the folder's root {fallback} (DRoA reads {wanted})")
    choice = _folder_choice(settings, model)
    checkpoint = choice.checkpoint
    required = [*checkpoint.data_files, checkpoint.frozen_graph, "model/model_metadata.json", "ip/hyperparameters.json"]
    missing = [f"{model.where}/{key}" for key in model.missing(required)]
    reward = None
    if "reward_function.py" in model.objects:
        reward = ("", model.objects["reward_function.py"])
    else:
        missing.append(f"{model.where}/reward_function.py")
    metrics_root = model.folder / "metrics" if model.folder else None
    metrics = []
    if metrics_root is not None and metrics_root.is_dir():
        from drtasks.s3 import ObjectInfo

        for path in sorted(p for p in metrics_root.rglob("*") if p.is_file()):
            metrics.append(ObjectInfo(path.relative_to(model.folder).as_posix(), path.stat().st_size, "", path.stat().st_mtime))  # type: ignore[arg-type]
    if not metrics:
        notes.append("warning: no metrics/ folder, so DRoA will show no training graph")
    return FolderSource(model, choice, ModelPieces(reward, "metrics/", metrics, missing), notes)
