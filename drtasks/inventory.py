"""What is where: the models in the training bucket, the checkpoint each profile's upload target
holds, and the backups found.

A model is a prefix holding ``model/deepracer_checkpoints.json``. Models are found with delimiter
listings, one folder level at a time, and a model's own folders are never walked (its
training-simtrace folder alone can hold thousands of files); per model only ``model/`` is listed
in full, plus the direct files of its prefix and of ``metrics/``.
"""

from __future__ import annotations

import json
import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from drtasks.backup import BACKUP_MANIFEST
from drtasks.errors import DrtasksError
from drtasks.model import CHECKPOINT_INDEX, checkpoint_number, read_if_present
from drtasks.s3 import ObjectInfo, S3Location, head, list_objects, make_client, s3_errors

MAX_DEPTH = 3  # folder levels searched below the root (DRfC prefixes are usually one level)
PROBE_CONNECT_SECONDS = 5.0
_CHECKPOINT_FILE = re.compile(r"^(\d+)_Step-\d+\.ckpt\.")


@dataclass(frozen=True)
class Folder:
    """One delimiter listing: the objects directly in ``prefix`` and its subfolders."""

    prefix: str  # "" or ending with "/"
    objects: dict[str, ObjectInfo]  # name (no folder) -> object
    folders: list[str]  # full prefixes ending with "/"


def list_folder(client: Any, bucket: str, prefix: str) -> Folder:
    objects: dict[str, ObjectInfo] = {}
    folders: list[str] = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix, Delimiter="/"):
        folders += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
        for item in page.get("Contents", []):
            modified = item.get("LastModified")
            info = ObjectInfo(item["Key"], int(item["Size"]), item["ETag"].strip('"'), modified.timestamp() if modified else 0.0)
            objects[item["Key"][len(prefix) :]] = info
    return Folder(prefix, objects, folders)


def find_prefixes(client: Any, location: S3Location, marker: str, depth: int = MAX_DEPTH) -> list[Folder]:
    """The folders below ``location`` that hold ``marker`` (e.g. ``model/deepracer_checkpoints.json``).

    A marker inside a subfolder is confirmed by one request for that key, only where the subfolder
    exists; a folder that has the subfolder is not searched further either way (a model whose
    checkpoint index is missing still holds thousands of simtraces). A folder holding the marker is
    not searched further.
    """
    head, _, rest = marker.partition("/")
    found: list[Folder] = []
    root = f"{location.prefix}/" if location.prefix else ""
    level = [root]
    with s3_errors(location), ThreadPoolExecutor(8) as pool:
        for _ in range(depth + 1):
            listings = list(pool.map(lambda p: list_folder(client, location.bucket, p), level))
            candidates = [f for f in listings if (f.prefix + head + "/" in f.folders if rest else marker in f.objects)]
            if rest:
                answers = pool.map(lambda f: _exists(client, location.bucket, f.prefix + marker), candidates)
                confirmed = {f.prefix for f, ok in zip(candidates, answers) if ok}
            else:
                confirmed = {f.prefix for f in candidates}
            found += [f for f in listings if f.prefix in confirmed]
            settled = confirmed | {f.prefix for f in candidates}
            level = [sub for f in listings if f.prefix not in settled for sub in f.folders]
            if not level:
                break
    return sorted(found, key=lambda f: f.prefix)


def _exists(client: Any, bucket: str, key: str) -> bool:
    return head(client, bucket, key) is not None


def _read_json(client: Any, bucket: str, key: str) -> Any:
    body = read_if_present(client, bucket, key)
    if body is None:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None


@dataclass
class Shipment:
    """What one profile's upload target holds."""

    profile: str
    target: S3Location
    checkpoint: str | None  # the name its deepracer_checkpoints.json gives, None when empty
    source: S3Location | None  # the profile's training model

    @property
    def number(self) -> int | None:
        try:
            return checkpoint_number(self.checkpoint) if self.checkpoint else None
        except DrtasksError:
            return None

    def as_dict(self) -> dict[str, Any]:
        return {"profile": self.profile, "target": self.target.url, "endpoint": self.target.endpoint_url, "checkpoint": self.checkpoint, "number": self.number}


@dataclass
class Backup:
    """A backup found by its manifest (``drtasks.backup`` defines it; this reads what it needs)."""

    location: S3Location | Path  # the backup's folder
    source: str | None  # s3://bucket/prefix of the model it copies
    checkpoints: list[str]
    created: Any
    manifest: dict[str, Any]

    @property
    def url(self) -> str:
        return self.location.url if isinstance(self.location, S3Location) else str(self.location)

    def as_dict(self) -> dict[str, Any]:
        endpoint = self.location.endpoint_url if isinstance(self.location, S3Location) else None
        return {
            "location": self.url,
            "endpoint": endpoint,
            "source": self.source,
            "checkpoints": self.checkpoints,
            "created": self.created,
            "updated": self.manifest.get("updated"),
        }


@dataclass
class ModelEntry:
    location: S3Location
    kept: dict[int, str]  # number -> checkpoint name
    best: str | None
    best_metric: float | None
    metric_name: str | None
    last: str | None
    model_bytes: int  # everything under model/ (the checkpoints and frozen graphs)
    last_written: float  # newest object among model/, metrics/ and the prefix's own files
    shipped: list[Shipment] = field(default_factory=list)
    backups: list[Backup] = field(default_factory=list)

    def holds(self, shipment: Shipment) -> bool:
        """The shipped checkpoint came from this model: a kept checkpoint, or the profile's source."""
        if shipment.checkpoint is None:
            return False
        if shipment.checkpoint in self.kept.values():
            return True
        return shipment.source is not None and same_model(shipment.source, self.location)

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.location.url,
            "prefix": self.location.prefix,
            "checkpoints": [{"number": n, "name": name} for n, name in sorted(self.kept.items())],
            "best": self.best,
            "best_metric": self.best_metric,
            "metric": self.metric_name,
            "last": self.last,
            "model_bytes": self.model_bytes,
            "last_written": self.last_written,
            "shipped": [s.as_dict() | {"kept": s.checkpoint in self.kept.values()} for s in self.shipped],
            "backups": [b.as_dict() for b in self.backups],
        }


def same_model(a: S3Location, b: S3Location) -> bool:
    return (a.bucket, a.prefix.strip("/")) == (b.bucket, b.prefix.strip("/")) and a.same_service(b)


def _entry_name(index: Any, which: str) -> tuple[str | None, float | None]:
    entry = index.get(f"{which}_checkpoint") if isinstance(index, dict) else None
    if not isinstance(entry, dict):
        return None, None
    metric = entry.get("avg_eval_metric", entry.get("avg_comp_pct"))
    name = entry.get("name") if isinstance(entry.get("name"), str) else None
    return name, metric if isinstance(metric, (int, float)) and not isinstance(metric, bool) else None


def _metric_name(client: Any, bucket: str, folder: Folder) -> str | None:
    """BEST_MODEL_METRIC of the run's training_params*.yaml (a small file), when there is one."""
    import yaml

    names = sorted(n for n in folder.objects if re.fullmatch(r"training_params(_\d+)?\.yaml", n))
    if not names:
        return None
    body = read_if_present(client, bucket, folder.prefix + names[0])
    try:
        params = yaml.safe_load(body or b"")
    except yaml.YAMLError:
        return None
    value = params.get("BEST_MODEL_METRIC") if isinstance(params, dict) else None
    return str(value).lower() if value else None


def describe(client: Any, location: S3Location, folder: Folder) -> ModelEntry | None:
    """One model from its folder listing; None when its checkpoint index is not JSON."""
    prefix = folder.prefix.rstrip("/")
    index = _read_json(client, location.bucket, folder.prefix + CHECKPOINT_INDEX)
    if not isinstance(index, dict):
        return None
    model_objects = list(list_objects(client, location.bucket, folder.prefix + "model"))
    metrics = list_folder(client, location.bucket, folder.prefix + "metrics/")
    kept: dict[int, str] = {}
    for info in model_objects:
        name = info.key[len(folder.prefix + "model/") :]
        if match := _CHECKPOINT_FILE.match(name):
            kept[int(match.group(1))] = name.split(".ckpt", 1)[0] + ".ckpt"
    best, best_metric = _entry_name(index, "best")
    last, _ = _entry_name(index, "last")
    written = [o.last_modified for o in (*model_objects, *metrics.objects.values(), *folder.objects.values())]
    return ModelEntry(
        location=location.with_prefix(prefix),
        kept=dict(sorted(kept.items())),
        best=best,
        best_metric=best_metric,
        metric_name=_metric_name(client, location.bucket, folder),
        last=last,
        model_bytes=sum(o.size for o in model_objects),
        last_written=max(written, default=0.0),
    )


def find_models(client: Any, location: S3Location) -> list[ModelEntry]:
    """Every model below ``location`` (a bucket, or a bucket and prefix)."""
    folders = find_prefixes(client, location, CHECKPOINT_INDEX)
    with s3_errors(location), ThreadPoolExecutor(8) as pool:
        entries = list(pool.map(lambda f: describe(client, location, f), folders))
    return [entry for entry in entries if entry is not None]


# --- profiles: their upload targets and backup locations ------------------------------------------

def backup_location(settings: Any) -> S3Location | Path | None:
    """Where the settings keep backups (the profile's backup.to, DR_BACKUP_TO), or None."""
    from drtasks.config import targets

    return targets.backup_root(settings)


def _backup_of(location: S3Location | Path, manifest: Any) -> Backup | None:
    """What inventory shows of a manifest: ``source`` (``{"bucket", "prefix"}`` or ``"s3://..."``),
    ``checkpoints`` (objects with a ``name``, or names), ``created``; None when it is not a JSON object."""
    if not isinstance(manifest, dict):
        return None
    source = manifest.get("source")
    if isinstance(source, dict) and source.get("bucket"):
        source = f"s3://{source['bucket']}/{str(source.get('prefix') or '').strip('/')}".rstrip("/")
    checkpoints = [c.get("name") if isinstance(c, dict) else c for c in manifest.get("checkpoints") or []]
    return Backup(location, source if isinstance(source, str) else None, [str(c) for c in checkpoints if c], manifest.get("created"), manifest)


def find_backups(client: Any, location: S3Location) -> list[Backup]:
    """Every backup below ``location``: a folder whose own files include ``drtasks-backup.json``."""
    found = find_prefixes(client, location, BACKUP_MANIFEST)
    backups = []
    for folder in found:
        backup = _backup_of(location.with_prefix(folder.prefix.rstrip("/")), _read_json(client, location.bucket, folder.prefix + BACKUP_MANIFEST))
        if backup is not None:
            backups.append(backup)
    return backups


def find_folder_backups(root: Path, depth: int = MAX_DEPTH) -> list[Backup]:
    """Every backup in a folder of this machine, up to ``depth`` levels below ``root``; a backup's own
    folders are not searched."""
    backups: list[Backup] = []
    level = [root] if root.is_dir() else []
    for _ in range(depth + 1):
        following = []
        for folder in level:
            manifest = folder / BACKUP_MANIFEST
            if manifest.is_file():
                try:
                    data = json.loads(manifest.read_bytes())
                except (OSError, ValueError):
                    continue
                backup = _backup_of(folder, data)
                if backup is not None:
                    backups.append(backup)
                continue
            try:
                following += sorted(p for p in folder.iterdir() if p.is_dir() and not p.is_symlink())
            except OSError:
                continue
        level = following
    return backups


ENV_FILES = "(env files)"


@dataclass
class Survey:
    """Every profile's upload target and backups; ``notes`` say what could not be read and why."""

    shipments: list[Shipment] = field(default_factory=list)
    backups: list[Backup] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _target_key(location: S3Location) -> tuple[Any, ...]:
    return (location.endpoint_url, location.aws_profile, location.bucket, location.prefix)


def survey_profiles(dr_dir: Path, environ: Mapping[str, str] | None = None, profiles: Iterable[str] | None = None) -> Survey:
    """Read each profile's upload target index and backup manifests; unreachable ones become notes.

    Besides the profiles, the env files' own settings count as one more, named ``(env files)``.
    """
    from drtasks.config import profile as profile_files
    from drtasks.config import targets
    from drtasks.config.settings import resolve

    survey = Survey()
    targets_of: dict[str, tuple[S3Location, S3Location | None]] = {}
    backup_places: dict[tuple[Any, ...], tuple[S3Location | Path, list[str]]] = {}
    environ = dict(os.environ if environ is None else environ)
    names = list(profiles if profiles is not None else profile_files.available(dr_dir))
    for name in [ENV_FILES, *names]:
        try:
            if name == ENV_FILES:
                # The upload target of the env files alone, as `inv upload` without a profile sees it.
                settings = resolve(None, environ={k: v for k, v in environ.items() if k != "DRTASKS_PROFILE"}, warn=lambda _message: None)
            else:
                settings = resolve(name, environ=environ, warn=lambda _message: None)
            target = targets.upload_location(settings)
        except DrtasksError as error:
            survey.notes.append(f"profile {name}: skipped, {error.message}")
            continue
        try:
            source: S3Location | None = targets.source_location(settings)
        except DrtasksError:
            source = None
        targets_of[name] = (target, source)
        try:
            place = backup_location(settings)
        except DrtasksError as error:
            survey.notes.append(f"profile {name}: backup location skipped, {error.message}")
            place = None
        if place is not None:
            key = _target_key(place) if isinstance(place, S3Location) else ("folder", str(place.resolve()))
            backup_places.setdefault(key, (place, []))[1].append(name)

    def read_target(target: S3Location) -> Any:
        client = make_client(target, connect_timeout=PROBE_CONNECT_SECONDS)
        with s3_errors(target):
            return _read_json(client, target.bucket, target.key(CHECKPOINT_INDEX))

    def guarded(call: Callable[[], Any]) -> tuple[Any, str | None]:
        try:
            return call(), None
        except DrtasksError as error:
            return None, error.message

    distinct = {_target_key(t): t for t, _ in targets_of.values()}
    with ThreadPoolExecutor(8) as pool:
        answers = dict(zip(distinct, pool.map(lambda t: guarded(lambda: read_target(t)), distinct.values())))

        def backups_at(place: S3Location | Path) -> list[Backup]:
            if isinstance(place, Path):
                return find_folder_backups(place)
            return find_backups(make_client(place, connect_timeout=PROBE_CONNECT_SECONDS), place)

        found = list(pool.map(lambda item: guarded(lambda: backups_at(item[0])), backup_places.values()))
    for name, (target, source) in targets_of.items():
        index, problem = answers[_target_key(target)]
        if problem:
            survey.notes.append(f"profile {name}: upload target {target.url} not read ({problem}); skipped")
            continue
        checkpoint, _ = _entry_name(index, "last")
        survey.shipments.append(Shipment(name, target, checkpoint, source))
    for (place, names), (backups, problem) in zip(backup_places.values(), found):
        if problem:
            where = place.url if isinstance(place, S3Location) else str(place)
            survey.notes.append(f"backups at {where} (profile {', '.join(names)}) not read ({problem}); skipped")
        else:
            survey.backups += backups
    return survey


@dataclass
class Inventory:
    bucket: S3Location
    models: list[ModelEntry]
    elsewhere: list[Shipment]  # targets holding a checkpoint of no listed model
    notes: list[str]

    def as_dict(self) -> dict[str, Any]:
        return {
            "bucket": self.bucket.url,
            "endpoint": self.bucket.endpoint_url,
            "models": [m.as_dict() for m in self.models],
            "other_targets": [s.as_dict() for s in self.elsewhere],
            "notes": self.notes,
        }


def inventory_of(bucket: S3Location, models: list[ModelEntry], survey: Survey) -> Inventory:
    """The models of ``bucket`` with what the survey found shipped and backed up for each."""
    elsewhere = []
    for shipment in survey.shipments:
        owners = [m for m in models if m.holds(shipment)]
        # A checkpoint name kept by several models: the profile's own source model wins.
        preferred = [m for m in owners if shipment.source is not None and same_model(shipment.source, m.location)]
        for model in preferred or owners[:1]:
            model.shipped.append(shipment)
        if not owners and shipment.checkpoint is not None:
            elsewhere.append(shipment)
    for backup in survey.backups:
        for model in models:
            if backup.source == model.location.url:
                model.backups.append(backup)
    return Inventory(bucket, models, elsewhere, survey.notes)
