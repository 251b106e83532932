"""inv upload and inv increment: flags -> a chain of steps (increment, wipe, upload, import)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from invoke import Collection

from drtasks.errors import DrtasksError
from drtasks.tasks.common import checkpoint_flags, drtask

if TYPE_CHECKING:
    from drtasks.chain import ChainRequest


@dataclass
class UploadRequest:
    profile: str | None = None
    force: bool = False
    wipe: bool = False
    dry_run: bool = False
    best: bool = False
    checkpoint: str | None = None
    prefix: str | None = None
    local: bool = False
    import_name: str | None = None  # set (even to "") to chain an import; "" means the upload prefix
    json: bool = False
    increment: bool = False
    target: str | None = None  # import target: console or droa
    show_all: bool = False
    overrides: dict[str, tuple[str, str]] | None = None  # DR_* -> (value, origin), above every layer
    best_by: str | None = None  # progress | reward | laptime
    submit: bool = False  # after the import, submit to the leaderboard (DRoA)


def upload_flags(request: UploadRequest) -> dict[str, tuple[str, str]]:
    flags = checkpoint_flags(request.best, request.checkpoint, request.best_by)
    if request.prefix is not None:
        prefix = request.prefix.strip("/")
        if not prefix:
            raise DrtasksError("--prefix: an empty prefix would upload to the bucket root")
        flags["DR_LOCAL_S3_MODEL_PREFIX"] = (prefix, "--prefix")
        flags["DR_UPLOAD_S3_PREFIX"] = (prefix, "--prefix")
    if request.target is not None:
        if request.import_name is None:
            raise DrtasksError("--target chooses where --import imports; add --import (or --import-name NAME)")
        flags["DR_IMPORT_TARGET"] = (request.target, "--target")
    return flags


def upload_chain(request: UploadRequest) -> "ChainRequest":
    from drtasks.chain import ChainRequest, StepSpec
    from drtasks.steps.upload import UploadOptions

    if request.local and request.import_name is not None:
        raise DrtasksError("--local/-L cannot be combined with --import/-i/-I: an import reads the upload bucket, -L writes the training bucket")
    steps = []
    if request.increment:
        from drtasks.steps.increment import IncrementOptions

        steps.append(StepSpec("increment", IncrementOptions()))
    steps.append(StepSpec("upload", UploadOptions(wipe=request.wipe, local=request.local)))
    if request.import_name is not None:
        from drtasks.steps.importing import ImportOptions  # the import machinery only when importing

        steps.append(StepSpec("import", ImportOptions(name=request.import_name or None, local=request.local)))
    if request.submit:
        if request.import_name is None:
            raise DrtasksError("--submit submits the imported model: add --import (or --import-name NAME)")
        steps.append(StepSpec("submit"))
    return ChainRequest(request.profile, steps, {**upload_flags(request), **(request.overrides or {})})


def run_upload(request: UploadRequest) -> None:
    """The whole of `inv upload` / `dr-upload-model`: plan, show, ask, apply and prove."""
    from drtasks.tasks.runner import RunOptions, run_chains

    question = "Proceed with this upload?" if request.import_name is None else "Proceed with this upload and import?"
    if request.submit:
        question = "Proceed with this upload, import and submission?"
    run_chains(
        [upload_chain(request)],
        RunOptions(force=request.force, dry_run=request.dry_run, json=request.json, show_all=request.show_all, question=question),
    )


@drtask(
    short={
        "profile": "p",
        "force": "f",
        "wipe": "w",
        "dry_run": "d",
        "best": "b",
        "checkpoint": "c",
        "best_by": "",
        "prefix": "P",
        "local": "L",
        "import_": "i",
        "import_name": "I",
        "json": "j",
        "target": "t",
        "all": "a",
        "submit": "s",
    },
    help={
        "profile": "named profile from profiles/ (layered over system.env and run.env)",
        "force": "do not ask before writing",
        "wipe": "also delete target objects under the upload prefix that are not part of the upload",
        "dry-run": "show the plan and write nothing",
        "best": "upload the best checkpoint instead of the last",
        "checkpoint": "upload checkpoint number N",
        "best-by": "upload the kept checkpoint whose evaluation was best by progress, reward or laptime",
        "prefix": "use P as both the source model prefix and the upload prefix",
        "local": "upload into the local training bucket (refuses when target == source)",
        "import": "after uploading, import the model, named after the upload prefix",
        "import-name": "after uploading, import the model as NAME",
        "target": "with --import: console or droa (default DR_IMPORT_TARGET)",
        "json": "print the plan as JSON instead of a table",
        "all": "show every object of the plan (folders of many objects are one row otherwise)",
        "submit": "with --import into DRoA: then submit the model to the profile's leaderboard (import.leaderboard) once READY",
    },
)
def upload(
    c: Any,
    profile: str | None = None,
    force: bool = False,
    wipe: bool = False,
    dry_run: bool = False,
    best: bool = False,
    checkpoint: str | None = None,
    prefix: str | None = None,
    local: bool = False,
    import_: bool = False,
    import_name: str | None = None,
    target: str | None = None,
    json: bool = False,
    all: bool = False,
    best_by: str | None = None,
    submit: bool = False,
) -> None:
    """Upload the chosen checkpoint of the trained model, showing the plan before writing."""
    name = import_name if import_name else ("" if import_ else None)
    run_upload(UploadRequest(profile, force, wipe, dry_run, best, checkpoint, prefix, local, name, json, target=target, show_all=all, best_by=best_by, submit=submit))


def increment_chain(profile: str | None, delimiter: str, wipe: bool) -> "ChainRequest":
    from drtasks.chain import ChainRequest, StepSpec
    from drtasks.steps.increment import IncrementOptions

    steps = [StepSpec("increment", IncrementOptions(delimiter))]
    if wipe:
        steps.append(StepSpec("wipe"))
    return ChainRequest(profile, steps)


def run_increment(profile: str | None, delimiter: str = "-", wipe: bool = False, force: bool = False, dry_run: bool = False) -> None:
    from drtasks.tasks.runner import RunOptions, run_chains

    # Editing the run file alone is what the command is for; with --wipe it also deletes: ask.
    run_chains([increment_chain(profile, delimiter, wipe)], RunOptions(force=force or not wipe, dry_run=dry_run, question="Bump the prefix and wipe it?"))


@drtask(
    short={"profile": "p", "delimiter": "D", "wipe": "w", "force": "f", "dry_run": "d"},
    help={
        "profile": "named profile whose upload prefix to bump (when it sets one)",
        "delimiter": "the character before the trailing number (default '-')",
        "wipe": "delete whatever is already stored under the new prefix",
        "force": "do not ask before wiping",
        "dry-run": "show the change (and the wipe) and change nothing",
    },
)
def increment(c: Any, profile: str | None = None, delimiter: str = "-", wipe: bool = False, force: bool = False, dry_run: bool = False) -> None:
    """Bump the trailing number of the upload prefix in the file it came from (a .bak is kept)."""
    run_increment(profile, delimiter=delimiter, wipe=wipe, force=force, dry_run=dry_run)


namespace = Collection(upload, increment)
