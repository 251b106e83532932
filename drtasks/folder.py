"""Plans and their executor for a folder of this machine: S3 objects (or files) copied into it.

The same decisions as an S3 plan (``drtasks.plan``): per key add, replace (and why), unchanged or
delete, completion markers removed first when data changes and written last. Proof of bytes:
- an S3 object is read once in order, proven against its ETag (``transfer.download_proven``),
  written to ``<file>.part`` and only then renamed: a file under its final name is whole and proven;
- a local file is copied the same way, its MD5 compared with the one taken when it was planned;
- generated content (a manifest) is written to ``.part``, flushed to disk, then renamed.
Files are never followed outside the folder: every key is checked before it becomes a path.
"""

from __future__ import annotations

import hashlib
import os
import threading
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from drtasks.errors import DrtasksError
from drtasks.manifest import ManifestItem, plain_key
from drtasks.plan import Action, PlanItem, location_url, mark_markers
from drtasks.s3 import S3Location
from drtasks.transfer import Check, FileProof, NoProgress, Progress, TransferFailed, download_proven

PART_SUFFIX = ".part"


@dataclass(frozen=True)
class FileState:
    size: int
    mtime_ns: int


def safe_path(folder: Path, key: str) -> Path:
    """``folder/key``, refused unless it stays inside ``folder``."""
    if not plain_key(key):
        raise DrtasksError(f"{key!r} cannot be a file inside {folder} (empty, absolute or '..' parts); nothing was written")
    return folder.joinpath(*key.split("/"))


def refuse_file_in_the_way(folder: Path) -> None:
    """``folder`` and the folders above it are folders, or do not exist yet."""
    for place in (folder, *folder.parents):
        if place.exists():
            if not place.is_dir():
                raise DrtasksError(f"{folder}: {place} is a file, not a folder; nothing was written")
            return


def scan(folder: Path) -> dict[str, FileState]:
    """Every regular file below ``folder`` by key ('/'-separated); links are not followed."""
    found: dict[str, FileState] = {}
    if not folder.is_dir():
        return found
    for root, dirs, files in os.walk(folder, followlinks=False):
        for name in files:
            path = Path(root) / name
            if path.is_symlink() or not path.is_file():
                continue
            stat = path.stat()
            found[path.relative_to(folder).as_posix()] = FileState(stat.st_size, stat.st_mtime_ns)
    return found


def file_digests(path: Path) -> FileProof:
    """Size, MD5 and SHA-256 of a local file, in one read."""
    md5 = hashlib.md5(usedforsecurity=False)
    sha = hashlib.sha256()
    size = 0
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(4 * 1024 * 1024):
                md5.update(chunk)
                sha.update(chunk)
                size += len(chunk)
    except OSError as error:
        raise DrtasksError(f"{path}: cannot read it ({error.strerror or error.__class__.__name__})") from None
    return FileProof(size, md5.hexdigest(), sha.hexdigest())


# Says why the file already holds the item (unchanged), or None when it must be written again.
Comparer = Callable[[ManifestItem, Path, FileState], "str | None"]


def same_md5(item: ManifestItem, path: Path, state: FileState) -> str | None:
    """The default comparison: the file's MD5 is the item's (plain MD5 ETags, content, local files)."""
    return "same size and MD5" if file_digests(path).md5 == item.etag else None


@dataclass
class FolderPlan:
    source: "S3Location | Path | None"  # where the items' bytes come from
    target: Path
    items: list[PlanItem]  # keys relative to ``target``
    states: dict[str, FileState]  # what the folder held when planned
    title: str = "download"
    kept: int = 0
    notes: list[str] = field(default_factory=list)
    stale_lease: str = ""  # a folder of this machine takes no lease, so none is ever left behind

    def count(self, action: Action) -> int:
        return sum(1 for item in self.items if item.action is action)

    @property
    def changes(self) -> bool:
        return any(item.action is not Action.UNCHANGED for item in self.items)

    def summary(self) -> dict[str, int]:
        written = [item for item in self.items if item.writes]
        return {
            "objects": sum(1 for item in self.items if item.item is not None),
            "add": self.count(Action.ADD),
            "replace": self.count(Action.REPLACE),
            "unchanged": self.count(Action.UNCHANGED),
            "delete": self.count(Action.DELETE),
            "abort": 0,
            "markers_removed_first": sum(1 for item in self.items if item.unmark),
            "bytes_to_move": sum(item.source_size or 0 for item in written),
            "bytes_copied_server_side": 0,
            "kept": self.kept,
        }

    def as_dict(self) -> dict[str, Any]:
        items = []
        for entry in self.items:
            source = entry.item.source if entry.item else None
            local = entry.item.local if entry.item else None
            origin = f"s3://{source.bucket}/{source.key}" if source else str(local.path) if local else ("generated" if entry.item else None)
            data = {"key": str(self.target / entry.key), "action": entry.action.value, "reason": entry.reason, "source": origin,
                    "source_size": entry.source_size, "target_size": entry.target_size}
            if entry.unmark:
                data["removed_first"] = True
            items.append(data)
        return {
            "plan": self.title,
            "source": location_url(self.source) if self.source is not None else None,
            "source_endpoint": self.source.endpoint_url if isinstance(self.source, S3Location) else None,
            "target": str(self.target),
            "transfer": "download" if isinstance(self.source, S3Location) else "file copy",
            "summary": self.summary(),
            "items": items,
            "notes": self.notes,
        }


def plan_folder(
    manifest: list[ManifestItem],
    source: "S3Location | Path | None",
    target: Path,
    existing: dict[str, FileState] | None = None,
    same: Comparer = same_md5,
    wipe: bool = False,
    title: str = "download",
) -> FolderPlan:
    """Compare ``manifest`` with what ``target`` holds (``existing``: its scan, when already made)."""
    refuse_file_in_the_way(target)
    if existing is None:
        existing = scan(target)
    items: list[PlanItem] = []
    for item in manifest:
        path = safe_path(target, item.key)
        state = existing.get(item.key)
        if state is None:
            items.append(PlanItem(item.key, Action.ADD, "new", item.size, None, item))
        elif state.size != item.size:
            items.append(PlanItem(item.key, Action.REPLACE, f"size differs ({state.size} -> {item.size} B)", item.size, state.size, item))
        elif (reason := same(item, path, state)) is not None:
            items.append(PlanItem(item.key, Action.UNCHANGED, reason, item.size, state.size, item))
        else:
            items.append(PlanItem(item.key, Action.REPLACE, "checksum differs", item.size, state.size, item))
    items = mark_markers(items)
    wanted = {item.key for item in manifest}
    strays = sorted(key for key in existing if key not in wanted)
    plan = FolderPlan(source, target, items, dict(existing), title)
    if wipe:
        plan.items += [PlanItem(key, Action.DELETE, "not part of the copy (wipe)", None, existing[key].size) for key in strays]
    else:
        plan.kept = len(strays)
    return plan


def _write_bytes(path: Path, data: bytes) -> None:
    partial = path.with_name(path.name + PART_SUFFIX)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with partial.open("wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        partial.replace(path)
    except OSError as error:
        partial.unlink(missing_ok=True)
        raise DrtasksError(f"{path}: cannot write it ({error.strerror or error.__class__.__name__})") from None


def _copy_file(item: ManifestItem, path: Path, on_bytes: Callable[[int], None]) -> FileProof:
    """A local file into ``path`` through ``.part``, proven against the MD5 taken when it was planned."""
    assert item.local is not None
    partial = path.with_name(path.name + PART_SUFFIX)
    md5 = hashlib.md5(usedforsecurity=False)
    sha = hashlib.sha256()
    size = 0
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with item.local.path.open("rb") as reader, partial.open("wb") as writer:
            while chunk := reader.read(4 * 1024 * 1024):
                md5.update(chunk)
                sha.update(chunk)
                writer.write(chunk)
                size += len(chunk)
                on_bytes(len(chunk))
    except OSError as error:
        partial.unlink(missing_ok=True)
        raise DrtasksError(f"{path}: cannot copy {item.local.path} ({error.strerror or error.__class__.__name__})") from None
    if (size, md5.hexdigest()) != (item.local.size, item.local.md5):
        partial.unlink(missing_ok=True)
        raise DrtasksError(f"{item.local.path} changed since the plan was made; {path} was not written; run the command again")
    partial.replace(path)
    return FileProof(size, md5.hexdigest(), sha.hexdigest())


@dataclass
class FolderOutcome:
    checks: list[Check]
    proofs: dict[str, FileProof]  # key -> what was written this run


def apply_folder(
    plan: FolderPlan,
    client: Any = None,
    progress: Progress | None = None,
    workers: int = 4,
    finish: Callable[[dict[str, FileProof]], dict[str, bytes]] | None = None,
) -> FolderOutcome:
    """Execute exactly the plan; the completion markers only once every data file is proven.

    ``finish`` gives the content of generated markers once the data is in place (a manifest of what
    was written: it is given the proofs of the files written by this run, markers with a source
    included). Raises TransferFailed (markers not written) when the folder cannot be proven.
    """
    progress = progress or NoProgress()
    writes = [e for e in plan.items if e.writes]
    deletes = [e for e in plan.items if e.action is Action.DELETE]
    data = [e for e in writes if not e.final]
    markers = [e for e in writes if e.final]
    proofs: dict[str, FileProof] = {}
    lock = threading.Lock()
    cancel = threading.Event()
    progress.started(sum(e.source_size or 0 for e in writes), len(writes) + len(deletes))

    def write(entry: PlanItem, content: bytes | None = None) -> None:
        if cancel.is_set():
            raise DrtasksError("cancelled")
        item = entry.item
        assert item is not None
        path = safe_path(plan.target, entry.key)
        advance = lambda n: progress.advanced(entry.key, n)  # noqa: E731
        if item.source is not None:
            assert isinstance(plan.source, S3Location)
            proof = download_proven(client, plan.source, item.source, path, on_bytes=advance)
        elif item.local is not None:
            proof = _copy_file(item, path, advance)
        else:
            body = content if content is not None else (item.content or b"")
            _write_bytes(path, body)
            advance(len(body))
            proof = FileProof(len(body), hashlib.md5(body, usedforsecurity=False).hexdigest(), hashlib.sha256(body).hexdigest())
        with lock:
            proofs[entry.key] = proof
        progress.finished_object(entry.key)

    def run_all(entries: list[PlanItem], pool: ThreadPoolExecutor) -> None:
        futures: list[Future[None]] = [pool.submit(write, entry) for entry in entries]
        if not futures:
            return
        done, pending = wait(futures, return_when=FIRST_EXCEPTION)
        failed = [f for f in done if f.exception() is not None]
        if failed:
            cancel.set()
            wait(pending)
            raise failed[0].exception()  # type: ignore[misc]

    pool = ThreadPoolExecutor(workers, thread_name_prefix="drtasks-folder")
    try:
        for entry in plan.items:
            if entry.unmark:
                safe_path(plan.target, entry.key).unlink(missing_ok=True)
        run_all(data, pool)
        for entry in deletes:
            path = safe_path(plan.target, entry.key)
            path.unlink(missing_ok=True)
            _prune(path.parent, plan.target)
            progress.finished_object(entry.key)
        checks = _recheck(plan, proofs)
        failed = [check for check in checks if not check.ok]
        if failed:
            raise TransferFailed(
                f"{plan.target} could not be proven ({failed[0].key}: {failed[0].detail}); its completion markers were not written; run the command again",
                checks,
            )
        generated: dict[str, bytes] | None = None
        for stage in sorted({e.stage for e in markers}):  # a later stage only once the earlier ones are written
            staged = [e for e in markers if e.stage == stage]
            run_all([e for e in staged if e.item is not None and e.item.content is None], pool)
            checks += [Check(e.key, True, "written last, proven before it got its name") for e in staged if e.item is not None and e.item.content is None]
            for entry in staged:
                if entry.item is not None and entry.item.content is not None:
                    if generated is None:
                        generated = finish(dict(proofs)) if finish else {}
                    write(entry, generated.get(entry.key))
                    checks.append(Check(entry.key, True, "written last, flushed to disk"))
        return FolderOutcome(checks, proofs)
    except KeyboardInterrupt:
        cancel.set()
        raise TransferFailed(
            f"interrupted: {plan.target} is partial and does not look complete (its completion markers were not written); "
            "run the same command again to complete it",
            code=130,
        ) from None
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _prune(folder: Path, top: Path) -> None:
    """Remove folders a wipe emptied, up to (not including) ``top``."""
    while folder != top and top in folder.parents:
        try:
            folder.rmdir()
        except OSError:
            return
        folder = folder.parent


def _recheck(plan: FolderPlan, proofs: dict[str, FileProof]) -> list[Check]:
    """Every planned data file is there as proven (or as it was when planned); deleted ones are gone."""
    checks: list[Check] = []
    for entry in plan.items:
        path = safe_path(plan.target, entry.key)
        if entry.action is Action.DELETE:
            checks.append(Check(entry.key, not path.exists(), "deleted" if not path.exists() else "still present"))
            continue
        if entry.final or entry.item is None:
            continue
        try:
            stat = path.stat()
        except OSError:
            checks.append(Check(entry.key, False, "missing"))
            continue
        proof = proofs.get(entry.key)
        if proof is not None:
            ok = stat.st_size == proof.size
            checks.append(Check(entry.key, ok, "written and proven before it got its name" if ok else f"size {stat.st_size} != {proof.size}"))
        else:
            planned = plan.states.get(entry.key)
            ok = planned is not None and (stat.st_size, stat.st_mtime_ns) == (planned.size, planned.mtime_ns)
            checks.append(Check(entry.key, ok, "unchanged, still in place" if ok else "changed since the plan"))
    return checks
