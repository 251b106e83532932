"""The import step: into the AWS DeepRacer console, or into DeepRacer on AWS (DRoA).

The console imports what the upload step put at the upload prefix (checked at planning when no
upload step precedes it). DRoA gets its own put-only upload into its transit bucket, then the call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from drtasks.config import targets
from drtasks.importing import flow
from drtasks.importing.flow import ImportRequest
from drtasks.plan import Input
from drtasks.s3 import S3Location
from drtasks.steps.base import Row, Runtime, StepContext, StepPlan, StepResult
from drtasks.steps.s3rows import plan_rows, plan_summary_line
from drtasks.steps.upload import UploadPlan


@dataclass(frozen=True)
class ImportOptions:
    name: str | None = None  # None: DR_IMPORT_NAME, else the upload prefix
    local: bool = False  # the console imports from the training bucket (with -L)


@dataclass
class ConsoleImportPlan(StepPlan):
    step = "import"
    settings: Any
    request: ImportRequest
    location: S3Location
    client: Any
    notes: list[str] = field(default_factory=list)

    def heading(self) -> str:
        return f"into the AWS DeepRacer console as '{self.request.name}'"

    def rows(self) -> list[Row]:
        role = flow.console_role(self.settings)
        return [Row("call", f"ImportModel '{self.request.name}'", reason=f"from {self.location.url}, role {role}")]

    def summary(self) -> dict[str, Any]:
        return {"target": "console", "name": self.request.name, "from": self.location.url}

    def summary_line(self) -> str:
        return f"One console call: import {self.location.url} as '{self.request.name}'."

    def as_dict(self) -> dict[str, Any]:
        return {"step": self.step, **self.summary(), "description": self.request.description, "role": flow.console_role(self.settings)}

    @property
    def changes(self) -> bool:
        return True

    def apply(self, runtime: Runtime) -> StepResult:
        from drtasks.importing import console

        arn = flow.import_into_console(self.settings, self.request, self.location, self.client)
        detail = f"Import of '{self.request.name}' started: {arn}"
        if runtime.wait:
            from drtasks.progress import status_reporter

            with status_reporter(runtime.out, f"console model '{self.request.name}'") as report:
                status = console.wait_for_model(self.client, arn, on_status=report, poll_seconds=flow.poll_seconds(self.settings))
            detail = f"console model '{self.request.name}' is {status} ({arn})"
        return StepResult(self.step, "done", detail)


@dataclass
class DroaImportPlan(StepPlan):
    step = "import"
    settings: Any
    request: ImportRequest
    session: Any
    job: Any  # droa_flow.DroaUploadJob
    notes: list[str] = field(default_factory=list)

    def heading(self) -> str:
        return (
            f"into DeepRacer on AWS ({self.session.deployment.url}) as '{self.request.name}': "
            f"checkpoint {self.job.checkpoint.name} -> s3://{self.job.bucket}/{self.job.prefix} (put-only)"
        )

    def rows(self) -> list[Row]:
        return plan_rows(self.job.plan) + [Row("call", "POST /importmodel", reason=f"import as '{self.request.name}'")]

    def summary(self) -> dict[str, Any]:
        return self.job.plan.summary()

    def summary_line(self) -> str:
        return plan_summary_line(self.job.plan) + f" Then one DRoA call imports it as '{self.request.name}'."

    def as_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "target": "droa",
            "site": self.session.deployment.url,
            "name": self.request.name,
            "checkpoint": self.job.checkpoint.name,
            **self.job.plan.as_dict(),
        }

    @property
    def changes(self) -> bool:
        return True

    def inputs(self) -> list[Input]:
        from drtasks.steps.source import upload_inputs

        return upload_inputs(self.settings, targets.source_location(self.settings))

    def apply(self, runtime: Runtime) -> StepResult:
        from drtasks.importing import droa, droa_flow
        from drtasks.errors import DrtasksError

        with runtime.progress(runtime.out) as progress:
            checks = droa_flow.execute_droa_upload(self.job, progress)
        failed = [check for check in checks if not check.ok]
        if failed:
            raise DrtasksError(f"the DRoA upload could not be proven ({failed[0].key}: {failed[0].detail}); nothing was imported")
        api = self.session.api()
        model_id = api.import_model(self.job.bucket, self.job.prefix, self.request.name, self.request.description)
        detail = f"Import of '{self.request.name}' into DRoA started: model id {model_id}"
        if runtime.wait:
            from drtasks.progress import status_reporter

            with status_reporter(runtime.out, f"DRoA model '{self.request.name}'") as report:
                droa.wait_for_model(api, model_id, on_status=lambda status, _m: report(status), poll_seconds=flow.poll_seconds(self.settings))
            detail = f"DRoA model '{self.request.name}' is READY (id {model_id})"
        return StepResult(self.step, "done", detail, checks, where=f"s3://{self.job.bucket}/{self.job.prefix}")


def plan_import_step(context: StepContext) -> StepPlan:
    options: ImportOptions = context.options or ImportOptions()
    settings = context.settings
    request = flow.resolve_request(settings, options.name)
    if request.target == flow.CONSOLE:
        flow.check_console_request(settings, request)
        upload = context.last(UploadPlan)
        location = upload.target if upload else targets.upload_location(settings, local=options.local)
        client = flow.console_client(settings)
        if upload is None:
            # Nothing uploads before the import: what is already there must be importable.
            flow.check_uploaded_model(context.reads.client(location), location)
        flow.refuse_existing_name(client, request.name)
        return ConsoleImportPlan(settings, request, location, client)

    from drtasks.importing import droa_flow

    droa_flow.check_droa_request(settings, request)
    session = droa_flow.sign_in(settings)
    job = droa_flow.prepare_droa_upload(settings, session, request)
    return DroaImportPlan(settings, request, session, job, notes=list(job.plan.notes))
