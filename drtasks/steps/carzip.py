"""The car-zip step: the car's archive, checked, then uploaded as carfile.tar.gz and/or written to a file."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from drtasks.carzip import flow
from drtasks.carzip.archive import archive_file_name
from drtasks.config import targets
from drtasks.errors import DrtasksError
from drtasks.plan import Action, Plan
from drtasks.s3 import S3Location
from drtasks.steps.base import Row, Runtime, StepContext, StepPlan, StepResult
from drtasks.steps.s3rows import plan_rows
from drtasks.units import human


@dataclass(frozen=True)
class CarZipOptions:
    source: str | None = None  # auto | container | s3 | droa; None: the profile's car_zip.source
    container: str | None = None
    local: bool = False
    output: str | None = None
    upload: bool | None = None  # None: the profile's car_zip.upload (default yes)
    name: str | None = None
    verify: bool = False  # run the archive's model as the car does (OpenVINO) before anything is written
    # DRfC's current dr-create-car-zip / dr-upload-car-zip: the archive is <model prefix>.tar.gz,
    # uploaded by that name below the upload prefix (-L: below the model prefix, training bucket).
    drfc_names: bool = False
    model: str | None = None  # --from droa: the DRoA model (id or name) whose PHYSICAL_CAR_MODEL to use


@dataclass
class CarZipPlan(StepPlan):
    step = "car-zip"
    archive: flow.CarArchive
    upload: Plan | None
    client: Any
    file_write: flow.FileWrite | None
    notes: list[str] = field(default_factory=list)
    key: str = flow.CAR_FILE  # the object's name below the target prefix
    car_run: Any = None  # drtasks.carzip.verify.CarRun, with --verify

    def heading(self) -> str:
        return f"from {self.archive.model.origin}"

    def rows(self) -> list[Row]:
        rows = [Row("pack", member.name, member.size, reason=f"sha256 {member.sha256}") for member in self.archive.members]
        if self.car_run is not None:
            from drtasks.carzip.verify import verify_rows

            rows += [Row("check", what, reason=reason) for what, reason in verify_rows(self.car_run)]
        if self.upload is not None:
            rows += [Row(r.action, self.upload.target.key(r.what), r.source_size, r.target_size, r.reason) for r in plan_rows(self.upload)]
        if self.file_write is not None:
            write = self.file_write
            rows.append(Row(write.action.value, str(write.path), self.archive.size, reason=f"{write.reason}; the car will name the model '{write.car_name}'"))
        return rows

    def summary(self) -> dict[str, Any]:
        return {
            "archive_bytes": self.archive.size,
            "members": len(self.archive.members),
            "upload": self.upload.items[0].action.value if self.upload else None,
            "file": self.file_write.action.value if self.file_write else None,
        }

    def summary_line(self) -> str:
        spec = self.archive.spec
        line = (
            f"Archive: {human(self.archive.size)}, checked: one .pb, metadata at the root, "
            f"under the car's 200 MB limit; the graph has the {', '.join(spec.sensors)} input{'s' if len(spec.sensors) > 1 else ''} "
            f"and a {spec.algorithm} policy of {spec.outputs} output{'s' if spec.outputs != 1 else ''}, as the metadata says."
        )
        if self.car_run is not None:
            from drtasks.carzip.verify import verified_line

            line += "\n" + verified_line(self.car_run)
        return line

    def as_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "origin": self.archive.model.origin,
            "members": [{"name": m.name, "size": m.size, "sha256": m.sha256} for m in self.archive.members],
            "upload": self.upload.as_dict() if self.upload else None,
            "verify": self.car_run.as_dict() if self.car_run is not None else None,
            "file": {"path": str(self.file_write.path), "action": self.file_write.action.value, "car_name": self.file_write.car_name}
            if self.file_write
            else None,
            "summary": self.summary(),
        }

    @property
    def changes(self) -> bool:
        uploading = self.upload is not None and self.upload.changes
        writing = self.file_write is not None and self.file_write.action is not Action.UNCHANGED
        return uploading or writing

    def apply(self, runtime: Runtime) -> StepResult:
        done: list[str] = []
        checks = []
        # The local file first: a folder that cannot be written stops the step before any upload.
        if self.file_write is not None and self.file_write.action is not Action.UNCHANGED:
            flow.write_file(self.file_write, self.archive)
            done.append(f"wrote {self.file_write.path}")
        if self.upload is not None and self.upload.changes:
            from drtasks.transfer import TransferConfig, apply

            # One archive from a local file: 4 parts in flight keep memory low (the car's limit is 200 MB).
            checks = apply(self.upload, self.client, self.client, TransferConfig(max_concurrency=4))
            done.append(f"uploaded {self.upload.target.url}/{self.key}")
        where = f"{self.upload.target.url}/{self.key}" if self.upload is not None else ""
        return StepResult(self.step, "done", "; ".join(done) or "nothing to do", checks, where=where)

    def close(self) -> None:
        self.archive.close()  # the archive's temporary file


def plan_car_zip_step(context: StepContext) -> CarZipPlan:
    options: CarZipOptions = context.options or CarZipOptions()
    settings = context.settings
    source = options.source or settings.get("DR_CAR_ZIP_SOURCE") or "auto"
    container = options.container or settings.get("DR_CAR_ZIP_CONTAINER")
    output = options.output or settings.get("DR_CAR_ZIP_OUTPUT")
    upload = options.upload if options.upload is not None else (settings.get("DR_CAR_ZIP_UPLOAD", "True") or "").lower() in ("true", "1", "yes")
    if not upload and not output:
        raise DrtasksError("--no-upload needs --output FILE: otherwise the archive would go nowhere")
    archive = flow.build(flow.gather(settings, source, container, options.model))
    try:
        return _plan_with(archive, options, settings, upload, output)
    except BaseException:
        archive.close()
        raise


def _plan_with(archive: flow.CarArchive, options: CarZipOptions, settings: Any, upload: bool, output: str | None) -> CarZipPlan:
    car_run = None
    if options.verify:
        from drtasks.carzip.verify import run_like_the_car

        car_run = run_like_the_car(archive.read_bytes())
    key, model_name = flow.CAR_FILE, options.name or archive.model.name or settings.get("DR_UPLOAD_S3_PREFIX") or "model"
    if options.drfc_names:
        model_name = targets.source_location(settings).prefix
        key = archive_file_name(model_name)
    plan = client = None
    if upload:
        # DRfC's current -L goes below the model's own prefix in the training bucket.
        drfc_local = options.drfc_names and options.local
        target: S3Location = targets.source_location(settings) if drfc_local else targets.upload_location(settings, local=options.local)
        plan, client = flow.plan_upload(archive, target, key)
    file_write = None
    if output:
        file_write = flow.plan_file(archive, flow.output_path(output, model_name))
    return CarZipPlan(archive, plan, client, file_write, key=key, car_run=car_run)
