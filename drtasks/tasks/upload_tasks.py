"""inv upload and inv increment: thin tasks over drtasks.upload and drtasks.increment."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from invoke import Collection

from drtasks.errors import DrtasksError
from drtasks.tasks.common import checkpoint_flags, confirm, drtask, settings_for


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
    overrides: dict[str, tuple[str, str]] | None = None  # DR_* -> (value, origin), above every layer
    best_by: str | None = None  # progress | reward | laptime


def upload_flags(request: UploadRequest) -> dict[str, tuple[str, str]]:
    flags = checkpoint_flags(request.best, request.checkpoint, request.best_by)
    if request.prefix is not None:
        prefix = request.prefix.strip("/")
        if not prefix:
            raise DrtasksError("--prefix: an empty prefix would upload to the bucket root")
        flags["DR_LOCAL_S3_MODEL_PREFIX"] = (prefix, "--prefix")
        flags["DR_UPLOAD_S3_PREFIX"] = (prefix, "--prefix")
    return flags


def run_upload(request: UploadRequest) -> None:
    """The whole of `inv upload` / `dr-upload-model`: plan, show, ask, apply, verify."""
    from concurrent.futures import ThreadPoolExecutor

    from drtasks.upload import execute_upload, prepare_upload

    if request.increment:
        from drtasks.increment import run_increment

        run_increment(request.profile, delimiter="-", wipe=False, force=request.force, dry_run=request.dry_run)
    settings = settings_for(request.profile, {**upload_flags(request), **(request.overrides or {})})
    if request.import_name is not None:
        # Fail before uploading when the import could not follow.
        from drtasks.tasks.import_tasks import check_import_possible

        check_import_possible(settings, request.import_name or None)

    with ThreadPoolExecutor(1) as pool:
        # The plan's S3 reads mostly wait on the network: let rich load meanwhile.
        preparing = pool.submit(prepare_upload, settings, local=request.local, wipe=request.wipe)
        from drtasks import render
        from drtasks.progress import progress_for

        job = preparing.result()
    out = render.console()
    if request.json:
        print(job.plan.to_json())
    else:
        render.print_plan(job.plan, out)
    if request.dry_run:
        render.console(stderr=True).print("Dry run: nothing was written.")
        return
    if not job.plan.changes:
        render.console(stderr=request.json).print("Nothing to do: the target already holds this model.")
    else:
        confirm("Proceed with this upload?", request.force)
        status = render.console(stderr=True) if request.json else out
        with progress_for(status) as progress:
            checks = execute_upload(job, progress)
        status.print(render.checks_table(checks, f"verified {job.plan.target.url}"))
        failed = [check for check in checks if not check.ok]
        if failed:
            raise DrtasksError(f"verification failed for {len(failed)} object(s): " + ", ".join(c.key for c in failed[:5]))
        status.print(f"Uploaded checkpoint {job.checkpoint.name} to {job.plan.target.url}.")
    if request.import_name is not None:
        from drtasks.tasks.import_tasks import import_after_upload

        import_after_upload(settings, request.import_name or None, force=request.force, local=request.local, to_stderr=request.json)


@drtask(
    short={"force": "f", "wipe": "w", "dry_run": "d", "best": "b", "checkpoint": "c", "best_by": "", "prefix": "p", "local": "L", "import_name": "I"},
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
        "json": "print the plan as JSON instead of a table",
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
    json: bool = False,
    best_by: str | None = None,
) -> None:
    """Upload the chosen checkpoint of the trained model, showing the plan before writing."""
    name = import_name if import_name else ("" if import_ else None)
    run_upload(UploadRequest(profile, force, wipe, dry_run, best, checkpoint, prefix, local, name, json, best_by=best_by))


@drtask(
    short={"delimiter": "d", "wipe": "w", "force": "f"},
    help={
        "profile": "named profile whose upload prefix to bump (when it sets one)",
        "delimiter": "the character before the trailing number (default '-')",
        "wipe": "delete whatever is already stored under the new prefix",
        "force": "do not ask before wiping",
    },
)
def increment(c: Any, profile: str | None = None, delimiter: str = "-", wipe: bool = False, force: bool = False) -> None:
    """Bump the trailing number of the upload prefix in the file it came from (a .bak is kept)."""
    from drtasks.increment import run_increment

    run_increment(profile, delimiter=delimiter, wipe=wipe, force=force)


namespace = Collection(upload, increment)
