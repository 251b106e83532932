"""The backup step: the whole trained model and its custom files, copied to a backup folder on S3
or on this machine, with ``drtasks-backup.json`` (sizes and SHA-256 of every object) written last.

Incremental: an object whose source version the backup already holds is not copied again, and its
SHA-256 is carried over from the previous manifest. SHA-256 of everything else:
- S3 backups: S3 gives no SHA-256 of objects written without one (DRfC's are), so each new or
  changed source object is read once, in order, before it is copied: the read is proven against
  the object's ETag and pinned to that version (``IfMatch``), and the copy that follows names the
  same version, so the hash is the hash of the bytes copied;
- folder backups: the download itself hashes what it writes (``transfer.download_proven``); a file
  already in the folder counts as unchanged when the previous manifest recorded it with this source
  version, this size and this modification time, else it is hashed again and compared with the
  source's ETag.
"""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from drtasks.backup import (
    BACKUP_MANIFEST,
    MANIFEST_STAGE,
    MODEL_MARKERS,
    PENDING_MD5,
    PENDING_SHA256,
    BackupDocument,
    Entry,
    Piece,
    backup_pieces,
    checkpoint_index_of,
    entries_for,
    index_names,
    kept_checkpoints,
    left_out_folders,
    list_model,
    nested_backups,
    now_utc,
    read_document,
)
from drtasks.config import targets
from drtasks.errors import DrtasksError
from drtasks.folder import FileState, FolderPlan, apply_folder, plan_folder, refuse_file_in_the_way, safe_path, same_md5, scan
from drtasks.manifest import ManifestItem, SourceObject
from drtasks.plan import Action, Input, Plan, PlanItem, overlaps, plan_upload
from drtasks.s3 import S3Location
from drtasks.steps.base import Row, Runtime, StepContext, StepPlan, StepResult
from drtasks.steps.s3rows import plan_rows, plan_summary_line
from drtasks.transfer import FileProof, SourceDigest, apply, digest_proven, resumable_for, source_part_size
from drtasks.units import human, plural

HASH_WORKERS = 4


@dataclass(frozen=True)
class BackupOptions:
    wipe: bool = False  # also delete what the backup folder holds beyond this backup


@dataclass
class BackupPlan(StepPlan):
    step = "backup"
    source: S3Location
    folder: "S3Location | Path"
    document: BackupDocument
    plan: "Plan | FolderPlan"
    source_client: Any
    target_client: Any
    read: list[Input]
    notes: list[str] = field(default_factory=list)

    @property
    def where(self) -> str:
        return self.folder.url if isinstance(self.folder, S3Location) else str(self.folder)

    @property
    def to_hash(self) -> list[Entry]:
        """S3 backups: the objects whose SHA-256 is read from the source before copying."""
        if not isinstance(self.folder, S3Location):
            return []
        return [entry for entry in self.document.entries if not entry.hashed]

    def heading(self) -> str:
        if isinstance(self.folder, Path):
            mode = "downloaded to this machine"
        else:
            mode = "server-side copy" if self.source.same_service(self.folder) else "streamed between endpoints"
        return f"{self.source.url} -> {self.where} ({mode})"

    def rows(self) -> list[Row]:
        return plan_rows(self.plan)  # type: ignore[arg-type]

    def summary(self) -> dict[str, Any]:
        return {**self.plan.summary(), "to_hash": len(self.to_hash), "bytes_to_hash": sum(e.size for e in self.to_hash)}

    def summary_line(self) -> str:
        line = plan_summary_line(self.plan)  # type: ignore[arg-type]
        if self.to_hash and self.plan.changes:
            size = sum(entry.size for entry in self.to_hash)
            line += f" SHA-256 to take: {plural(len(self.to_hash), 'object')} ({human(size)}), read once from the source."
        return line

    def as_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            **self.plan.as_dict(),
            "backup": self.where,
            "to_hash": [entry.key for entry in self.to_hash],
            "left_out": self.document.left_out,
            "checkpoints": [c["name"] for c in self.document.checkpoints],
            "notes": self.plan.notes + self.notes,
        }

    @property
    def changes(self) -> bool:
        return self.plan.changes

    def inputs(self) -> list[Input]:
        return self.read

    def deletions(self) -> list[tuple[S3Location, str]]:
        if not isinstance(self.folder, S3Location):
            return []
        return [(self.folder, self.folder.key(i.key)) for i in self.plan.items if i.action is Action.DELETE]

    def apply(self, runtime: Runtime) -> StepResult:
        if isinstance(self.plan, FolderPlan):
            with runtime.progress(runtime.out) as progress:
                outcome = apply_folder(self.plan, self.source_client, progress, finish=self._finish_folder)
            checks = outcome.checks
        else:
            document = self._hashed(runtime)
            content = document.to_bytes()
            items = [
                replace(entry, item=ManifestItem(BACKUP_MANIFEST, content=content, final=MANIFEST_STAGE), source_size=len(content))
                if entry.key == BACKUP_MANIFEST and entry.writes
                else entry
                for entry in self.plan.items
            ]
            with runtime.progress(runtime.out) as progress:
                checks = apply(replace(self.plan, items=items), self.source_client, self.target_client, progress=progress)
        total = plural(len(self.document.entries), "object")
        return StepResult(
            self.step, "done", f"backed up {self.source.url} to {self.where}: {total}, {human(self.document.total_bytes)}, {BACKUP_MANIFEST} written last", checks, where=self.where
        )

    def _hashed(self, runtime: Runtime) -> BackupDocument:
        """The manifest with the SHA-256 of every object read from the source, the planned version only."""
        pending = self.to_hash
        if not pending:
            return self.document
        proofs: dict[str, FileProof] = {}
        with runtime.progress(runtime.out) as progress, ThreadPoolExecutor(HASH_WORKERS, thread_name_prefix="drtasks-hash") as pool:
            progress.started(sum(e.size for e in pending), len(pending))

            def one(entry: Entry) -> None:
                source = SourceObject(self.source.bucket, entry.origin, entry.size, entry.etag)
                try:
                    proofs[entry.key] = digest_proven(self.source_client, self.source, source, on_bytes=lambda n: progress.advanced(entry.key, n))
                except DrtasksError as error:
                    if "PreconditionFailed" in error.message:
                        raise DrtasksError(f"s3://{source.bucket}/{source.key} changed since the plan was made; run the command again") from None
                    raise
                progress.finished_object(entry.key)

            list(pool.map(one, pending))
        entries = [replace(e, sha256=proofs[e.key].sha256, md5=proofs[e.key].md5) if e.key in proofs else e for e in self.document.entries]
        return replace(self.document, entries=entries)

    def _finish_folder(self, proofs: dict[str, FileProof]) -> dict[str, bytes]:
        """The folder's manifest, once every file is in place: hashes from the downloads, times from the files."""
        assert isinstance(self.folder, Path)
        entries = []
        for entry in self.document.entries:
            proof = proofs.get(entry.key)
            if proof is not None:
                if proof.size != entry.size:
                    raise DrtasksError(f"{self.folder / entry.key}: {proof.size} bytes written, the source has {entry.size}")
                mtime = safe_path(self.folder, entry.key).stat().st_mtime_ns
                entry = replace(entry, sha256=proof.sha256, md5=proof.md5, mtime_ns=mtime)
            if not entry.hashed:
                raise DrtasksError(f"{self.folder / entry.key}: no SHA-256 was taken; {BACKUP_MANIFEST} was not written")
            entries.append(entry)
        return {BACKUP_MANIFEST: replace(self.document, entries=entries).to_bytes()}


def _folder_of(root: "S3Location | Path", model: S3Location) -> "S3Location | Path":
    """Each model's backup is ``<root>/<model prefix>/``."""
    if isinstance(root, S3Location):
        return root.with_prefix(f"{root.prefix}/{model.prefix}" if root.prefix else model.prefix)
    return safe_path(root, model.prefix)


def _refuse_overlap(folder: S3Location, source: S3Location, custom_prefix: str) -> None:
    for what, location in (("the model", source), ("the custom files", source.with_prefix(custom_prefix))):
        if overlaps(folder, location):
            raise DrtasksError(f"the backup folder {folder.url} and {what} {location.url} contain one another; choose another --to")


def _refuse_wiping_backups(nested: list[str], where: str) -> None:
    if nested:
        raise DrtasksError(f"refusing to wipe {where}: its subfolder {nested[0]} holds another backup (of a model nested in this one); back up without -w")


def _refuse_other_model(previous: BackupDocument | None, document: BackupDocument, where: str) -> None:
    if previous is not None and (previous.source.get("bucket"), previous.source.get("prefix")) != (document.source["bucket"], document.source["prefix"]):
        raise DrtasksError(f"{where} holds the backup of {previous.source_url}, not of {document.source_url}; choose another --to")


def plan_backup_step(context: StepContext) -> BackupPlan:
    """Everything up to the plan: listings, the previous manifest, the decisions; nothing is written."""
    from drtasks.lease import refuse_if_held

    settings = context.settings
    options: BackupOptions = context.options or BackupOptions()
    source = targets.source_location(settings)
    root = targets.backup_root(settings)
    if root is None:
        raise DrtasksError("no backup location: pass --to s3://bucket/prefix or --to FOLDER, or set backup.to in the profile (DR_BACKUP_TO)")
    leave_out = left_out_folders(targets.flag_on(settings, "DR_BACKUP_SIMTRACES"), targets.flag_on(settings, "DR_BACKUP_VIDEOS"))
    custom_prefix = targets.custom_files_prefix(settings)
    reward_key = targets.reward_key(settings).strip("/")
    reads = context.reads
    client = reads.client(source)
    custom = reads.listing(source, custom_prefix)
    reward = reads.head(source, reward_key)
    folder = _folder_of(root, source)
    if isinstance(folder, S3Location):
        _refuse_overlap(folder, source, custom_prefix)
        existing = reads.target(folder)
        pending = reads.pending(folder)

    model = list_model(client, source, leave_out)
    if not model.objects:
        raise DrtasksError(f"no model at {source.url}: the prefix holds no objects")
    best, last = index_names(checkpoint_index_of(client, source, model.objects))
    pieces, config, notes = backup_pieces(model, custom_prefix, custom.result(), reward_key, reward.result())
    read = [Input(source, folder=True, what="the trained model"), Input(source.with_prefix(custom_prefix), folder=True, what="the custom files")]
    for name in model.left_out:
        flag = "--with-simtraces" if name.rstrip("/") in ("training-simtrace", "evaluation-simtrace") else "--with-videos"
        notes.append(f"left out: {name} ({flag} to include it)")

    def document(previous: BackupDocument | None, entries: list[Entry]) -> BackupDocument:
        made = BackupDocument(
            {"bucket": source.bucket, "prefix": source.prefix, "endpoint_url": source.endpoint_url},
            previous.created if previous else now_utc(), now_utc(), kept_checkpoints(model.objects), best, last,
            config, custom_prefix, model.left_out, entries,
        )
        _refuse_other_model(previous, made, str(folder) if isinstance(folder, Path) else folder.url)
        return made

    if isinstance(folder, Path):
        return _plan_to_folder(folder, source, client, pieces, document, options, read, notes)

    target_client = reads.client(folder)
    listing = existing.result()
    previous, previous_raw = (None, None)
    if BACKUP_MANIFEST in listing:
        try:
            previous, previous_raw = read_document(target_client, folder)
        except DrtasksError as error:
            notes.append(f"{error.message}: every object is hashed again and the manifest is rewritten")
    doc = document(previous, entries_for(pieces, previous))
    content = previous_raw if previous_raw is not None and doc.same_content(previous) else doc.to_bytes()
    items = [ManifestItem(p.key, SourceObject(source.bucket, p.info.key, p.info.size, p.info.etag), final=p.key in MODEL_MARKERS) for p in pieces]
    items.append(ManifestItem(BACKUP_MANIFEST, content=content, final=MANIFEST_STAGE))
    if options.wipe:
        _refuse_wiping_backups(nested_backups(listing), folder.url)
    stale_lease = refuse_if_held(target_client, folder)
    plan = plan_upload(
        items, source, folder, target_client, wipe=options.wipe, title="backup", existing=listing,
        pending=pending.result(), resumable=resumable_for(folder, source.same_service(folder)),
    )
    plan.items = _explained(plan.items, doc)
    plan.stale_lease = stale_lease
    return BackupPlan(source, folder, doc, plan, client, target_client, read, notes)


def _explained(items: list[PlanItem], doc: BackupDocument) -> list[PlanItem]:
    """The manifest's row says what it is."""
    what = f"sizes and SHA-256 of {plural(len(doc.entries), 'object')}, written last"
    return [replace(i, reason=f"{i.reason}; {what}") if i.key == BACKUP_MANIFEST and i.writes else i for i in items]


def _plan_to_folder(
    folder: Path,
    source: S3Location,
    client: Any,
    pieces: list[Piece],
    document: Callable[[BackupDocument | None, list[Entry]], BackupDocument],
    options: BackupOptions,
    read: list[Input],
    notes: list[str],
) -> BackupPlan:
    refuse_file_in_the_way(folder)
    existing = scan(folder)
    if options.wipe:
        _refuse_wiping_backups(nested_backups(existing), str(folder))
    previous = None
    manifest_file = folder / BACKUP_MANIFEST
    if BACKUP_MANIFEST in existing:
        try:
            previous = BackupDocument.parse(manifest_file.read_bytes(), str(manifest_file))
        except (DrtasksError, OSError) as error:
            notes.append(f"{getattr(error, 'message', error)}: every file is hashed again and the manifest is rewritten")
    recorded = previous.by_key() if previous else {}
    hashed_now: dict[str, Entry] = {}
    verdicts: dict[str, str | None] = {}

    def same(item: ManifestItem, path: Path, state: FileState) -> str | None:
        if item.source is None:
            return same_md5(item, path, state)
        if item.key in verdicts:
            return verdicts[item.key]
        entry = recorded.get(item.key)
        if entry is not None and entry.hashed and (entry.etag, entry.size, entry.mtime_ns) == (item.etag, state.size, state.mtime_ns):
            verdict: str | None = "same size and time as recorded for this source version"
        else:
            proof = _file_holds(client, source, item.source, path)
            verdict = None
            if proof is not None:
                hashed_now[item.key] = Entry(item.key, proof.size, item.etag, proof.sha256, proof.md5, item.source.key, state.mtime_ns)
                verdict = "same bytes as the source (hashed now)"
        verdicts[item.key] = verdict
        return verdict

    items = [ManifestItem(p.key, SourceObject(source.bucket, p.info.key, p.info.size, p.info.etag), final=p.key in MODEL_MARKERS) for p in pieces]
    first = plan_folder(items, source, folder, existing, same, title="backup")  # decides every data file once
    unchanged = {entry.key for entry in first.items if entry.action is Action.UNCHANGED}
    entries = []
    for entry in entries_for(pieces, previous):
        if entry.key in hashed_now:
            entry = hashed_now[entry.key]
        elif entry.key not in unchanged:
            entry = replace(entry, sha256=PENDING_SHA256, md5=PENDING_MD5, mtime_ns=None)  # hashed by its download
        entries.append(entry)
    doc = document(previous, entries)
    previous_raw = manifest_file.read_bytes() if previous is not None else None
    content = previous_raw if previous_raw is not None and doc.same_content(previous) else doc.to_bytes()
    items.append(ManifestItem(BACKUP_MANIFEST, content=content, final=MANIFEST_STAGE))
    plan = plan_folder(items, source, folder, existing, same, wipe=options.wipe, title="backup")
    plan.items = _explained(plan.items, doc)
    return BackupPlan(source, folder, doc, plan, client, None, read, notes)


def _file_holds(client: Any, location: S3Location, source: SourceObject, path: Path) -> FileProof | None:
    """The file's digests when its bytes are the source version's (its ETag decides), else None."""
    digest = SourceDigest(source.etag, source.size, source_part_size(client, source))
    sha = hashlib.sha256()
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(4 * 1024 * 1024):
                digest.update(chunk)
                sha.update(chunk)
    except OSError as error:
        raise DrtasksError(f"{path}: cannot read it ({error.strerror or error.__class__.__name__})") from None
    if not digest.matches():  # False, or None: an ETag of parts whose size is unknown cannot vouch for it
        return None
    return FileProof(source.size, digest.whole.hexdigest(), sha.hexdigest())
