"""inv car-zip: the physical car's archive, from the training container or any checkpoint in S3."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from invoke import Collection

from drtasks.tasks.common import checkpoint_flags, confirm, drtask, settings_for


@dataclass
class CarZipRequest:
    profile: str | None = None
    source: str | None = None  # auto | container | s3; None: the profile's car_zip.source
    container: str | None = None
    best: bool = False
    checkpoint: str | None = None
    local: bool = False
    output: str | None = None
    upload: bool | None = None  # None: the profile's car_zip.upload (default yes)
    name: str | None = None
    force: bool = False
    dry_run: bool = False
    overrides: dict[str, tuple[str, str]] | None = None  # DR_* -> (value, origin), above every layer


def run_car_zip(request: CarZipRequest) -> None:
    from rich.table import Table

    from drtasks import render
    from drtasks.carzip import flow
    from drtasks.config import targets
    from drtasks.errors import DrtasksError
    from drtasks.transfer import apply, verify

    settings = settings_for(request.profile, {**checkpoint_flags(request.best, request.checkpoint), **(request.overrides or {})})
    source = request.source or settings.get("DR_CAR_ZIP_SOURCE") or "auto"
    container = request.container or settings.get("DR_CAR_ZIP_CONTAINER")
    output = request.output or settings.get("DR_CAR_ZIP_OUTPUT")
    upload = request.upload if request.upload is not None else (settings.get("DR_CAR_ZIP_UPLOAD", "True").lower() in ("true", "1", "yes"))
    if not upload and not output:
        raise DrtasksError("--no-upload needs --output FILE: otherwise the archive would go nowhere")

    out = render.console()
    archive = flow.build(flow.gather(settings, source, container))
    table = Table(title=f"car archive from {archive.model.origin}", title_justify="left")
    for column in ("member", "size", "sha256"):
        table.add_column(column, justify="right" if column == "size" else "left")
    for member in archive.members:
        table.add_row(member.name, render.human(member.size), member.sha256)
    out.print(table)
    out.print(f"Archive: {render.human(len(archive.data))}, checked: one .pb, metadata at the root, under the car's 200 MB limit.")

    plan = client = None
    if upload:
        target = targets.upload_location(settings, local=request.local)
        plan, client = flow.plan_upload(archive, target)
        render.print_plan(plan, out)
    file_write = None
    if output:
        model_name = request.name or settings.get("DR_UPLOAD_S3_PREFIX") or "model"
        file_write = flow.plan_file(archive, flow.output_path(output, model_name))
        out.print(f"File: {file_write.action.value} {file_write.path} ({file_write.reason}); the car will name the model '{file_write.car_name}'.")

    if request.dry_run:
        out.print("Dry run: nothing was written.")
        return
    changes = (plan is not None and plan.changes) or (file_write is not None and file_write.action.value != "unchanged")
    if not changes:
        out.print("Nothing to do: the archive is already there.")
        return
    confirm("Write the car archive?", request.force)
    # The local file first: a folder that cannot be written stops the task before any upload.
    if file_write is not None and file_write.action.value != "unchanged":
        flow.write_file(file_write, archive)
        out.print(f"Wrote {file_write.path}.")
    if plan is not None and plan.changes:
        apply(plan, client, client)
        checks = verify(plan, client)
        if not all(check.ok for check in checks):
            raise DrtasksError(f"verification of {plan.target.url}/{flow.CAR_FILE} failed")
        out.print(f"Uploaded {plan.target.url}/{flow.CAR_FILE}.")


@drtask(
    short={"best": "b", "checkpoint": "c", "local": "L", "output": "o", "force": "f", "dry_run": "d", "from_": "s", "no_upload": "N"},
    help={
        "profile": "named profile from profiles/",
        "from": "where the model comes from: container (the running training container, DRfC's way), s3, or auto (container when one runs, else s3)",
        "container": "the training container's name, when several run",
        "best": "from S3: the best checkpoint instead of the last",
        "checkpoint": "from S3: checkpoint number N",
        "local": "upload to the local training bucket instead of the upload bucket",
        "output": "also write the archive to FILE (a folder gets <name>.tar.gz, the name the car will show)",
        "no-upload": "only write --output, upload nothing",
        "name": "the model name the car shows, for --output folders (default: the upload prefix)",
        "force": "do not ask before writing",
        "dry-run": "show what would be written and write nothing",
    },
)
def car_zip(
    c: Any,
    profile: str | None = None,
    from_: str | None = None,
    container: str | None = None,
    best: bool = False,
    checkpoint: str | None = None,
    local: bool = False,
    output: str | None = None,
    no_upload: bool = False,
    name: str | None = None,
    force: bool = False,
    dry_run: bool = False,
) -> None:
    """Make the physical car's .tar.gz (one .pb + model_metadata.json) and upload it as carfile.tar.gz."""
    run_car_zip(CarZipRequest(profile, from_, container, best, checkpoint, local, output, False if no_upload else None, name, force, dry_run))


namespace = Collection(car_zip)
