"""inv car-zip: the physical car's archive, from the training container or any checkpoint in S3."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
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
    verify: bool = False


@dataclass
class CarZipJob:
    """Where the archive comes from and where it goes, every default resolved."""

    settings: Any
    source: str
    container: str | None
    target: Any  # S3Location, or None for no upload
    key: str  # the object's name below the target prefix
    path: Path | None  # the local file, or None
    verify: bool
    force: bool
    dry_run: bool
    ask_for_new_file: bool = True  # DRfC's dr-create-car-zip writes a new file without asking


def run_car_zip(request: CarZipRequest) -> None:
    from drtasks.carzip import flow
    from drtasks.config import targets
    from drtasks.errors import DrtasksError

    settings = settings_for(request.profile, {**checkpoint_flags(request.best, request.checkpoint), **(request.overrides or {})})
    source = request.source or settings.get("DR_CAR_ZIP_SOURCE") or "auto"
    container = request.container or settings.get("DR_CAR_ZIP_CONTAINER")
    output = request.output or settings.get("DR_CAR_ZIP_OUTPUT")
    upload = request.upload if request.upload is not None else (settings.get("DR_CAR_ZIP_UPLOAD", "True").lower() in ("true", "1", "yes"))
    if not upload and not output:
        raise DrtasksError("--no-upload needs --output FILE: otherwise the archive would go nowhere")
    target = targets.upload_location(settings, local=request.local) if upload else None
    path = flow.output_path(output, request.name or settings.get("DR_UPLOAD_S3_PREFIX") or "model") if output else None
    make_car_zip(CarZipJob(settings, source, container, target, flow.CAR_FILE, path, request.verify, request.force, request.dry_run))


def run_drfc_car_zip(*, upload: bool, best: bool = False, prefix: str | None = None, output: str | None = None, local: bool = False, force: bool = False) -> None:
    """DRfC's dr-create-car-zip (``upload`` False) and dr-upload-car-zip, from S3 like DRfC's.

    The archive is ``<model prefix>.tar.gz``: created in ``$DR_DIR/data/output/`` (or ``output``);
    for the upload in ``$DR_DIR/`` and sent to ``<upload prefix>/<model prefix>.tar.gz`` in the
    upload bucket, or with ``local`` to ``<model prefix>/<model prefix>.tar.gz`` in the training bucket.
    """
    from drtasks.carzip import flow
    from drtasks.carzip.archive import archive_file_name
    from drtasks.config import targets

    overrides = checkpoint_flags(best, None)
    if prefix:
        overrides["DR_LOCAL_S3_MODEL_PREFIX"] = (prefix, "-p")
    settings = settings_for(None, overrides)
    model = targets.source_location(settings)
    file_name = archive_file_name(model.prefix)
    if upload:
        target = model if local else targets.upload_location(settings)
        job = CarZipJob(settings, "s3", None, target, file_name, Path(settings.dr_dir) / file_name, False, force, False)
    else:
        path = flow.output_path(output, model.prefix) if output else Path(settings.dr_dir) / "data" / "output" / file_name
        job = CarZipJob(settings, "s3", None, None, file_name, path, False, force, False, ask_for_new_file=False)
    make_car_zip(job)


def make_car_zip(job: CarZipJob) -> None:
    """Build and check the archive, show it and the plan, ask, then write exactly that."""
    from rich.table import Table

    from drtasks import render
    from drtasks.carzip import flow
    from drtasks.errors import DrtasksError
    from drtasks.transfer import apply, verify

    out = render.console()
    archive = flow.build(flow.gather(job.settings, job.source, job.container))
    table = Table(title=f"car archive from {archive.model.origin}", title_justify="left")
    for column in ("member", "size", "sha256"):
        table.add_column(column, justify="right" if column == "size" else "left")
    for member in archive.members:
        table.add_row(member.name, render.human(member.size), member.sha256)
    out.print(table)
    sensors = ", ".join(archive.spec.sensors)
    out.print(
        f"Archive: {render.human(len(archive.data))}, checked: one .pb, metadata at the root, under the car's 200 MB limit;"
        f" the graph has the {sensors} input{'s' if len(archive.spec.sensors) > 1 else ''} and a {archive.spec.algorithm} policy of {archive.spec.outputs}"
        f" output{'s' if archive.spec.outputs != 1 else ''}, as the metadata says."
    )
    if job.verify:
        show_car_run(archive.data, out)

    plan = client = None
    if job.target is not None:
        plan, client = flow.plan_upload(archive, job.target, job.key)
        render.print_plan(plan, out)
    file_write = None
    if job.path is not None:
        file_write = flow.plan_file(archive, job.path)
        out.print(f"File: {file_write.action.value} {file_write.path} ({file_write.reason}); the car will name the model '{file_write.car_name}'.")

    if job.dry_run:
        out.print("Dry run: nothing was written.")
        return
    uploads = plan is not None and bool(plan.changes)
    writes = file_write is not None and file_write.action.value != "unchanged"
    if not uploads and not writes:
        out.print("Nothing to do: the archive is already there.")
        return
    if uploads or job.ask_for_new_file or (file_write is not None and file_write.action.value == "replace"):
        confirm("Write the car archive?", job.force)
    if uploads:
        assert plan is not None
        apply(plan, client, client)
        checks = verify(plan, client)
        if not all(check.ok for check in checks):
            raise DrtasksError(f"verification of {plan.target.url}/{job.key} failed")
        out.print(f"Uploaded {plan.target.url}/{job.key}.")
    if writes:
        assert file_write is not None
        flow.write_file(file_write, archive)
        out.print(f"Wrote {file_write.path}.")


def show_car_run(archive: bytes, out: Any) -> None:
    """Convert and run the archive's model as the car does; its answer beside the action space."""
    from rich.table import Table

    from drtasks.carzip.verify import action_rows, run_like_the_car

    run = run_like_the_car(archive)
    columns, rows = action_rows(run)
    table = Table(title="the car's model on a blank frame (OpenVINO, as the car converts it)", title_justify="left")
    for column in columns:
        table.add_column(column, justify="left" if column in ("output", "action") else "right")
    for row in rows:
        table.add_row(*row)
    out.print(table)
    fed = ", ".join(f"{name} {shape}" for name, shape in run.inputs)
    summary = "steering and speed" if run.spec.continuous else f"{len(run.outputs)} probabilities summing to {sum(run.outputs):.4f}"
    out.print(f"Verified: OpenVINO {run.openvino} converted agent/model.pb (input {fed}, output {run.output}) and one inference gave {summary}, in {run.seconds:.1f} s.")


@drtask(
    short={"best": "b", "checkpoint": "c", "local": "L", "output": "o", "force": "f", "dry_run": "d", "from_": "s", "no_upload": "N", "verify": "V"},
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
        "verify": "load agent/model.pb as the car does (OpenVINO) and run it once on a blank frame; fail if the car could not (pip install 'drtasks[verify]')",
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
    verify: bool = False,
) -> None:
    """Make the physical car's .tar.gz (one .pb + model_metadata.json) and upload it as carfile.tar.gz."""
    run_car_zip(CarZipRequest(profile, from_, container, best, checkpoint, local, output, False if no_upload else None, name, force, dry_run, verify=verify))


namespace = Collection(car_zip)
