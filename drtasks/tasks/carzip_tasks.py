"""inv car-zip: the physical car's archive, from the training container or any checkpoint in S3."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from invoke import Collection

from drtasks.tasks.common import checkpoint_flags, drtask, settings_for

if TYPE_CHECKING:
    from drtasks.chain import ChainRequest


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
    json: bool = False
    overrides: dict[str, tuple[str, str]] | None = None  # DR_* -> (value, origin), above every layer
    best_by: str | None = None  # progress | reward | laptime
    verify: bool = False
    drfc_names: bool = False  # DRfC's dr-create/upload-car-zip: <model prefix>.tar.gz (see CarZipOptions)


def car_zip_chain(request: CarZipRequest) -> "ChainRequest":
    from drtasks.chain import ChainRequest, StepSpec
    from drtasks.steps.carzip import CarZipOptions

    options = CarZipOptions(request.source, request.container, request.local, request.output, request.upload, request.name, request.verify, request.drfc_names)
    flags = {**checkpoint_flags(request.best, request.checkpoint, request.best_by), **(request.overrides or {})}
    return ChainRequest(request.profile, [StepSpec("car-zip", options)], flags)


def run_car_zip(request: CarZipRequest) -> None:
    from drtasks.tasks.runner import RunOptions, run_chains

    run_chains([car_zip_chain(request)], RunOptions(force=request.force, dry_run=request.dry_run, json=request.json, question="Write the car archive?"))


def run_drfc_car_zip(*, upload: bool, best: bool = False, prefix: str | None = None, output: str | None = None, local: bool = False, force: bool = False) -> None:
    """DRfC's dr-create-car-zip (``upload`` False) and dr-upload-car-zip, from S3 like DRfC's own.

    The archive is ``<model prefix>.tar.gz``. dr-create-car-zip writes it to
    ``$DR_DIR/data/output/`` (or ``output``) and, like DRfC's, asks only before replacing a
    different file. dr-upload-car-zip writes it to ``$DR_DIR/`` and uploads it below the upload
    prefix, or with ``local`` below the model prefix in the training bucket.
    """
    from pathlib import Path

    from drtasks.carzip.archive import archive_file_name
    from drtasks.carzip.flow import output_path
    from drtasks.config import targets

    overrides = {"DR_LOCAL_S3_MODEL_PREFIX": (prefix, "-p")} if prefix else {}
    settings = settings_for(None, {**checkpoint_flags(best, None), **overrides})
    model_prefix = targets.source_location(settings).prefix
    if upload:
        path = Path(settings.dr_dir) / archive_file_name(model_prefix)
    else:
        path = output_path(output, model_prefix) if output else Path(settings.dr_dir) / "data" / "output" / archive_file_name(model_prefix)
        force = force or not path.exists()  # a new file replaces nothing: DRfC's command does not ask
    request = CarZipRequest(source="s3", best=best, local=local, output=str(path), upload=upload, force=force, overrides=overrides, drfc_names=True)
    run_car_zip(request)


@drtask(
    short={"profile": "p", "best": "b", "checkpoint": "c", "best_by": "", "local": "L", "output": "o", "force": "f", "dry_run": "d", "from_": "s", "no_upload": "N", "json": "j", "verify": "V"},
    help={
        "json": "print the plan as JSON instead of tables",
        "profile": "named profile from profiles/",
        "from": "where the model comes from: container (the running training container, DRfC's way), s3, or auto (container when one runs, else s3)",
        "container": "the training container's name, when several run",
        "best": "from S3: the best checkpoint instead of the last",
        "checkpoint": "from S3: checkpoint number N",
        "best-by": "from S3: the kept checkpoint whose evaluation was best by progress, reward or laptime",
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
    json: bool = False,
    best_by: str | None = None,
    verify: bool = False,
) -> None:
    """Make the physical car's .tar.gz (one .pb + model_metadata.json) and upload it as carfile.tar.gz."""
    run_car_zip(CarZipRequest(profile, from_, container, best, checkpoint, local, output, False if no_upload else None, name, force, dry_run, json, best_by=best_by, verify=verify))


namespace = Collection(car_zip)
