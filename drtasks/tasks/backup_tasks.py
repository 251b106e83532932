"""inv backup and inv restore: flags -> a backup or restore step, planned, shown, asked, applied."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from invoke import Collection

from drtasks.errors import DrtasksError
from drtasks.tasks.common import drtask

if TYPE_CHECKING:
    from drtasks.chain import ChainRequest


@dataclass
class BackupRequest:
    profile: str | None = None
    to: str | None = None
    prefix: str | None = None
    simtraces: bool = False
    videos: bool = False
    wipe: bool = False


def backup_chain(request: BackupRequest) -> "ChainRequest":
    from drtasks.chain import ChainRequest, StepSpec
    from drtasks.config.targets import is_s3_url
    from drtasks.steps.backup import BackupOptions

    flags: dict[str, tuple[str, str]] = {}
    if request.to is not None:
        to = request.to.strip()
        if not to:
            raise DrtasksError("--to: empty; write s3://bucket/prefix or a folder")
        # A folder is taken from where the command runs, whatever DR_DIR says.
        flags["DR_BACKUP_TO"] = (to if is_s3_url(to) else str(Path(to).expanduser().resolve()), "--to")
    if request.prefix is not None:
        prefix = request.prefix.strip("/")
        if not prefix:
            raise DrtasksError("--prefix: empty; name the model prefix to back up")
        flags["DR_LOCAL_S3_MODEL_PREFIX"] = (prefix, "--prefix")
    if request.simtraces:
        flags["DR_BACKUP_SIMTRACES"] = ("True", "--with-simtraces")
    if request.videos:
        flags["DR_BACKUP_VIDEOS"] = ("True", "--with-videos")
    return ChainRequest(request.profile, [StepSpec("backup", BackupOptions(wipe=request.wipe))], flags)


@drtask(
    short={"profile": "p", "to": "t", "prefix": "P", "with_simtraces": "", "with_videos": "", "wipe": "w", "force": "f", "dry_run": "d", "json": "j", "all": "a"},
    help={
        "profile": "named profile whose model to back up, and where (its backup.to)",
        "to": "s3://bucket/prefix or a folder; the backup is <to>/<model prefix>/ (default: the profile's backup.to)",
        "prefix": "back up the model at this prefix of the training bucket (default DR_LOCAL_S3_MODEL_PREFIX)",
        "with-simtraces": "also back up training-simtrace/ and evaluation-simtrace/ (left out by default)",
        "with-videos": "also back up the camera-* video folders (left out by default)",
        "wipe": "also delete what the backup folder holds beyond this backup",
        "force": "do not ask before writing",
        "dry-run": "show the plan and write nothing",
        "json": "print the plan as JSON instead of a table",
        "all": "show every object of the plan (folders of many objects are one row otherwise)",
    },
)
def backup(
    c: Any,
    profile: str | None = None,
    to: str | None = None,
    prefix: str | None = None,
    with_simtraces: bool = False,
    with_videos: bool = False,
    wipe: bool = False,
    force: bool = False,
    dry_run: bool = False,
    json: bool = False,
    all: bool = False,
) -> None:
    """Back up the whole trained model (every kept checkpoint, metrics, config, custom files) with a manifest of sizes and SHA-256; incremental."""
    from drtasks.tasks.runner import RunOptions, run_chains

    request = BackupRequest(profile, to, prefix, with_simtraces, with_videos, wipe)
    run_chains([backup_chain(request)], RunOptions(force=force, dry_run=dry_run, json=json, show_all=all, question="Back up?"))


@dataclass
class RestoreRequest:
    source: str
    profile: str | None = None
    prefix: str | None = None
    wipe: bool = False
    config: bool = False
    force: bool = False
    dry_run: bool = False
    json: bool = False
    show_all: bool = False
    drfc: bool = False  # dr-download-model: DRfC's switches and its reading of a source


def run_restore(request: RestoreRequest) -> None:
    """The whole of `inv restore` / `dr-download-model`: check the backup, plan, show, ask, apply and prove."""
    from drtasks.chain import ChainRequest, StepSpec
    from drtasks.steps.restore import RestoreOptions
    from drtasks.tasks.runner import RunOptions, run_chains

    where = "-s" if request.drfc else "--from"
    if not request.source or not request.source.strip():
        raise DrtasksError(f"{where}: name the backup to restore, s3://bucket/prefix{'' if request.drfc else ' or a folder'}")
    if request.prefix is not None and not request.prefix.strip("/"):
        raise DrtasksError(f"{'-t' if request.drfc else '--prefix'}: empty; name the model prefix to restore to")
    options = RestoreOptions(request.source, request.prefix, request.wipe, request.config, request.drfc, where)
    run_chains(
        [ChainRequest(request.profile, [StepSpec("restore", options)])],
        RunOptions(force=request.force, dry_run=request.dry_run, json=request.json, show_all=request.show_all, question="Restore?"),
    )


@drtask(
    short={"from_": "s", "profile": "p", "prefix": "t", "wipe": "w", "config": "c", "force": "f", "dry_run": "d", "json": "j", "all": "a"},
    help={
        "from": "the backup: s3://bucket/prefix of its folder (the one holding drtasks-backup.json), or that folder here",
        "profile": "named profile: its training bucket receives the model, its backup settings reach the backup",
        "prefix": "restore as this model prefix (default: the prefix the model was backed up from)",
        "wipe": "replace a model already at that prefix (its objects the backup does not hold are deleted)",
        "config": "also put the model's reward function, model_metadata.json and hyperparameters.json in $DR_DIR/custom_files",
        "force": "do not ask before writing",
        "dry-run": "check the backup, show the plan and write nothing",
        "json": "print the plan as JSON instead of a table",
        "all": "show every object of the plan (folders of many objects are one row otherwise)",
    },
)
def restore(
    c: Any,
    from_: str | None = None,
    profile: str | None = None,
    prefix: str | None = None,
    wipe: bool = False,
    config: bool = False,
    force: bool = False,
    dry_run: bool = False,
    json: bool = False,
    all: bool = False,
) -> None:
    """Restore a backup into the training bucket, every object checked against its manifest first; ready for DRfC to train on."""
    run_restore(RestoreRequest(from_ or "", profile, prefix, wipe, config, force, dry_run, json, all))


namespace = Collection(backup, restore)
