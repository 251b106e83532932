"""The restore step: a backup (S3 or a folder) back into the training bucket, ready for DRfC.

Before anything is written, every object of the backup is checked against ``drtasks-backup.json``:
its size, and its content by the strongest evidence at hand (S3 backups: the object's ETag is the
MD5 the manifest recorded, or the ETag of the source version it recorded, or drtasks' proven-copy
metadata names that version; failing all three the object is read and its SHA-256 compared; folder
backups: every file's SHA-256 and MD5 are taken again). One object that does not match refuses the
whole backup. The copy that follows names exactly the versions checked (``IfMatch``; local files:
the MD5 taken now), and the model's pointers to its checkpoints are written last.

A model already at the target prefix is refused unless ``wipe``: then the plan replaces it and
deletes what the backup does not hold, only below that prefix, never the backup itself.
``config`` also writes the model's reward function, model_metadata.json and hyperparameters.json
into ``$DR_DIR/custom_files/``, as DRfC's ``dr-download-model -c`` does.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from drtasks.backup import BACKUP_MANIFEST, LEASE_NAME, MODEL_MARKERS, BackupDocument, Entry, read_document
from drtasks.config import targets
from drtasks.errors import DrtasksError
from drtasks.folder import FolderPlan, apply_folder, file_digests, plan_folder, safe_path, scan
from drtasks.manifest import LocalFile, ManifestItem, SourceObject
from drtasks.plan import SOURCE_ETAG_METADATA, Action, Input, Plan, list_target, overlaps, plan_upload
from drtasks.s3 import ObjectInfo, S3Location, s3_errors
from drtasks.steps.base import Row, Runtime, StepContext, StepPlan, StepResult
from drtasks.steps.s3rows import plan_heading, plan_rows, plan_summary_line
from drtasks.transfer import apply, digest_proven, resumable_for
from drtasks.units import plural

VERIFY_WORKERS = 8
# What DRfC's dr-download-model requires of a model it downloads (and -c copies into custom_files).
DRFC_CONFIG = {"reward_function.py": "reward_function.py", "model_metadata.json": "model/model_metadata.json", "hyperparameters.json": "ip/hyperparameters.json"}
_CONFIG_ROLES = {"reward_function.py": "reward_function", "model_metadata.json": "model_metadata", "hyperparameters.json": "hyperparameters"}


@dataclass(frozen=True)
class RestoreOptions:
    source: str  # s3://bucket/prefix of a backup folder, or a folder of this machine
    prefix: str | None = None  # the model prefix to restore to (default: the backup's own)
    wipe: bool = False
    config: bool = False  # also the model's config into $DR_DIR/custom_files (DRfC's -c)
    drfc: bool = False  # dr-download-model: s3:// on the upload service; a model without manifest is copied whole
    where: str = "--from"  # the flag named in messages


@dataclass
class Checked:
    """The backup's objects, each proven to be what its manifest says (or, without one, as listed)."""

    items: list[ManifestItem]  # what the restore writes below the model prefix
    by_key: dict[str, ManifestItem]  # every checked object of the backup, by its key there
    evidence: dict[str, str]  # key -> how its content was proven
    notes: list[str] = field(default_factory=list)


@dataclass
class RestorePlan(StepPlan):
    step = "restore"
    backup: "S3Location | Path"
    target: S3Location
    document: BackupDocument | None
    plan: Plan
    config: FolderPlan | None
    backup_client: Any
    target_client: Any
    read: list[Input]
    notes: list[str] = field(default_factory=list)

    @property
    def origin(self) -> str:
        return self.backup.url if isinstance(self.backup, S3Location) else str(self.backup)

    def heading(self) -> str:
        return plan_heading(self.plan)

    def rows(self) -> list[Row]:
        rows = plan_rows(self.plan)
        if self.config is not None:
            rows += [Row(i.action.value, str(self.config.target / i.key), i.source_size, i.target_size, i.reason) for i in self.config.items]
        return rows

    def summary(self) -> dict[str, Any]:
        return {**self.plan.summary(), "config": self.config.summary() if self.config else None}

    def summary_line(self) -> str:
        line = plan_summary_line(self.plan)
        if self.config is not None:
            s = self.config.summary()
            line += f" {self.config.target}: {s['add']} to add, {s['replace']} to replace, {s['unchanged']} unchanged."
        return line

    def as_dict(self) -> dict[str, Any]:
        data = {"step": self.step, **self.plan.as_dict(), "backup": self.origin, "verified_against": BACKUP_MANIFEST if self.document else None}
        data["notes"] = self.plan.notes + self.notes
        if self.config is not None:
            data["config"] = self.config.as_dict()
        return data

    @property
    def changes(self) -> bool:
        return self.plan.changes or bool(self.config and self.config.changes)

    def inputs(self) -> list[Input]:
        return self.read

    def deletions(self) -> list[tuple[S3Location, str]]:
        return [(self.target, self.target.key(i.key)) for i in self.plan.items if i.action is Action.DELETE]

    def apply(self, runtime: Runtime) -> StepResult:
        checks = []
        if self.plan.changes:
            with runtime.progress(runtime.out) as progress:
                checks = apply(self.plan, self.backup_client, self.target_client, progress=progress)
        against = f"each proven against {BACKUP_MANIFEST}" if self.document else "each proven against its source's ETag"
        detail = (
            f"restored {self.origin} to {self.target.url} ({plural(len([i for i in self.plan.items if i.item]), 'object')}, {against}); "
            f"to train on from it, in run.env: DR_LOCAL_S3_PRETRAINED=True and DR_LOCAL_S3_PRETRAINED_PREFIX={self.target.prefix}"
        )
        if self.config is not None:
            if self.config.changes:
                with runtime.progress(runtime.out) as progress:
                    written = apply_folder(self.config, self.backup_client, progress).proofs
                detail += f"; {plural(len(written), 'config file')} written to {self.config.target}, each proven"
            detail += f"; dr-upload-custom-files puts the config in {self.config.target} where training reads it"
        return StepResult(self.step, "done", detail, checks, where=self.target.url)


def _backup_location(settings: Any, options: RestoreOptions) -> "S3Location | Path":
    text = options.source.strip()
    if targets.is_s3_url(text):
        bucket, prefix = targets.parse_s3_url(text, options.where)
        if not prefix:
            raise DrtasksError(f"{options.where}: {text} names a bucket; name the backup's folder, s3://{bucket}/<prefix>")
        return (targets.upload_service if options.drfc else targets.backup_service)(settings, bucket, prefix)
    if options.drfc:
        raise DrtasksError(f"{options.where}: {text!r} is not an s3:// URL (dr-download-model reads S3; inv restore --from also takes a folder)")
    folder = Path(text).expanduser()
    if not folder.is_dir():
        raise DrtasksError(f"{options.where}: {folder} is not a folder")
    return folder


def _s3_evidence(client: Any, backup: S3Location, entry: Entry, found: ObjectInfo) -> str | None:
    """How ``found`` is proven to be the manifest's ``entry`` (a reason), or None when it is not."""
    if found.etag == entry.md5:
        return "its MD5 as recorded"
    if found.etag == entry.etag:
        return "the recorded source version's ETag"
    with s3_errors(backup):
        metadata = client.head_object(Bucket=backup.bucket, Key=found.key, IfMatch=f'"{found.etag}"').get("Metadata", {})
    if metadata.get(SOURCE_ETAG_METADATA) == entry.etag:
        return "drtasks' proven copy of the recorded version"
    proof = digest_proven(client, backup, SourceObject(backup.bucket, found.key, found.size, found.etag))
    return "its SHA-256, read now" if proof.sha256 == entry.sha256 else None


def _check_s3(client: Any, backup: S3Location, document: BackupDocument, listing: dict[str, ObjectInfo]) -> Checked:
    problems: list[str] = []
    evidence: dict[str, str] = {}

    def one(entry: Entry) -> None:
        found = listing.get(entry.key)
        if found is None:
            problems.append(f"{entry.key}: missing")
        elif found.size != entry.size:
            problems.append(f"{entry.key}: {found.size} bytes, the manifest says {entry.size}")
        elif (how := _s3_evidence(client, backup, entry, found)) is None:
            problems.append(f"{entry.key}: its content is not the one the manifest recorded (SHA-256 differs)")
        else:
            evidence[entry.key] = how

    with ThreadPoolExecutor(VERIFY_WORKERS, thread_name_prefix="drtasks-verify") as pool:
        list(pool.map(one, document.entries))
    _refuse(problems, backup.url)
    by_key = {e.key: ManifestItem(e.key, SourceObject(backup.bucket, listing[e.key].key, e.size, listing[e.key].etag), final=e.key in MODEL_MARKERS) for e in document.entries}
    strays = [key for key in listing if key not in by_key and key != BACKUP_MANIFEST]
    notes = [f"{plural(len(strays), 'object')} of the backup folder {'is' if len(strays) == 1 else 'are'} not in its manifest and not restored"] if strays else []
    return Checked([by_key[e.key] for e in document.model_entries()], by_key, evidence, notes)


def _check_folder(folder: Path, document: BackupDocument) -> Checked:
    problems: list[str] = []
    by_key: dict[str, ManifestItem] = {}

    def one(entry: Entry) -> None:
        path = safe_path(folder, entry.key)
        if not path.is_file():
            problems.append(f"{entry.key}: missing")
            return
        proof = file_digests(path)
        if proof.size != entry.size:
            problems.append(f"{entry.key}: {proof.size} bytes, the manifest says {entry.size}")
        elif (proof.sha256, proof.md5) != (entry.sha256, entry.md5):
            problems.append(f"{entry.key}: its content is not the one the manifest recorded (SHA-256 differs)")
        else:
            by_key[entry.key] = ManifestItem(entry.key, local=LocalFile(path, proof.size, proof.md5), final=entry.key in MODEL_MARKERS)

    with ThreadPoolExecutor(4, thread_name_prefix="drtasks-verify") as pool:
        list(pool.map(one, document.entries))
    _refuse(problems, str(folder))
    evidence = {key: "its SHA-256, taken now" for key in by_key}
    return Checked([by_key[e.key] for e in document.model_entries()], by_key, evidence)


def _refuse(problems: list[str], where: str) -> None:
    if problems:
        problems.sort()
        more = f" and {len(problems) - 1} more" if len(problems) > 1 else ""
        raise DrtasksError(f"the backup {where} does not match its {BACKUP_MANIFEST}: {problems[0]}{more}; nothing was written")


def _plain_model(backup: S3Location, listing: dict[str, ObjectInfo]) -> Checked:
    """dr-download-model of a model that is no drtasks backup: every object, as DRfC's sync copies it."""
    missing = [key for key in DRFC_CONFIG.values() if key not in listing]
    if missing:
        raise DrtasksError(f"{backup.url} is not a model DRfC can download: missing {', '.join(missing)}; nothing was written")
    by_key = {
        key: ManifestItem(key, SourceObject(backup.bucket, info.key, info.size, info.etag), final=key in MODEL_MARKERS)
        for key, info in sorted(listing.items())
        if key != LEASE_NAME
    }
    note = f"no {BACKUP_MANIFEST} at {backup.url}: the model is copied as it is, every object proven against its ETag, with no manifest to check it against"
    return Checked(list(by_key.values()), by_key, {}, [note])


def _config_plan(settings: Any, backup: "S3Location | Path", document: BackupDocument | None, checked: Checked) -> FolderPlan:
    """The model's reward function, metadata and hyper-parameters into $DR_DIR/custom_files/ (DRfC's -c)."""
    folder = Path(settings.dr_dir) / "custom_files"
    items = []
    for name, default in DRFC_CONFIG.items():
        key = document.config.get(_CONFIG_ROLES[name], default) if document else default
        found = checked.by_key.get(key)
        if found is None:
            raise DrtasksError(f"-c/--config: the backup holds no {key}, so it cannot give DRfC the model's {name}; nothing was written")
        items.append(replace(found, key=name, final=False))
    existing = {key: state for key, state in scan(folder).items() if key in DRFC_CONFIG}
    return plan_folder(items, backup, folder, existing, title="config")


def plan_restore_step(context: StepContext) -> RestorePlan:
    """Read and check the backup, compare with the target; nothing is written."""
    from drtasks.lease import refuse_if_held

    settings = context.settings
    options: RestoreOptions = context.options
    backup = _backup_location(settings, options)
    notes: list[str] = []
    document: BackupDocument | None
    if isinstance(backup, S3Location):
        backup_client = context.reads.client(backup)
        listing = list_target(backup_client, backup)
        document = read_document(backup_client, backup)[0] if BACKUP_MANIFEST in listing else None
        if document is None and not options.drfc:
            raise DrtasksError(f"{backup.url} holds no {BACKUP_MANIFEST}: it is not a complete drtasks backup (an interrupted backup has none); nothing was written")
        if document is None and not listing:
            raise DrtasksError(f"{backup.url} holds no objects; nothing was written")
        checked = _check_s3(backup_client, backup, document, listing) if document else _plain_model(backup, listing)
    else:
        backup_client = None
        manifest = backup / BACKUP_MANIFEST
        if not manifest.is_file():
            raise DrtasksError(f"{backup} holds no {BACKUP_MANIFEST}: it is not a complete drtasks backup (an interrupted backup has none); nothing was written")
        document = BackupDocument.parse(manifest.read_bytes(), str(manifest))
        checked = _check_folder(backup, document)
    notes += checked.notes

    prefix = (options.prefix or (document.source["prefix"] if document else "")).strip("/")
    if not prefix:
        raise DrtasksError(f"{'-t' if options.drfc else '--prefix'}: name the model prefix to restore to")
    target = targets.source_location(settings).with_prefix(prefix)
    if isinstance(backup, S3Location) and overlaps(backup, target):
        raise DrtasksError(f"the restore target {target.url} and the backup {backup.url} contain one another; choose another prefix")
    custom = target.with_prefix(targets.custom_files_prefix(settings))
    if overlaps(target, custom):
        raise DrtasksError(f"the restore target {target.url} and the custom files {custom.url} contain one another; choose another prefix")
    target_client = context.reads.client(target)
    existing = context.reads.target(target).result()
    if existing and not options.wipe:
        raise DrtasksError(
            f"{target.url} already holds {plural(len(existing), 'object')}: restore into another prefix, or pass -w/--wipe to replace "
            "that model (the plan shows every object it deletes); nothing was written"
        )
    stale_lease = refuse_if_held(target_client, target)
    read = [Input(backup, folder=True, what="the backup")] if isinstance(backup, S3Location) else []
    server_side = isinstance(backup, S3Location) and backup.same_service(target)
    plan = plan_upload(
        checked.items, backup, target, target_client, wipe=options.wipe, title="restore", existing=existing,
        inputs=[*read, Input(custom, folder=True, what="the custom files")],
        pending=context.reads.pending(target).result(), resumable=resumable_for(target, server_side),
    )
    plan.items = [replace(i, reason=f"{i.reason} (backup: {checked.evidence[i.key]})") if i.key in checked.evidence and i.writes else i for i in plan.items]
    plan.stale_lease = stale_lease
    config = _config_plan(settings, backup, document, checked) if options.config else None
    if document is not None and document.left_out:
        notes.append(f"the backup left out {', '.join(document.left_out)}: the restored model has none")
    return RestorePlan(backup, target, document, plan, config, backup_client, target_client, read, notes)
