"""The upload step: the race layout of one checkpoint, planned against what the target holds."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from drtasks.checkpoint_choice import choose_for
from drtasks.config import targets
from drtasks.config.settings import Settings
from drtasks.lease import refuse_if_held
from drtasks.manifest import find_pieces, upload_manifest
from drtasks.model import Checkpoint
from drtasks.model_check import check_checkpoint_model
from drtasks.plan import Action, Input, Plan, plan_upload, refuse_unsafe_prefix
from drtasks.s3 import S3Location
from drtasks.steps.base import Row, Runtime, StepContext, StepPlan, StepResult
from drtasks.steps.s3rows import plan_heading, plan_rows, plan_summary_line
from drtasks.training_params import to_yaml, training_params
from drtasks.transfer import apply, resumable_for


@dataclass(frozen=True)
class UploadOptions:
    wipe: bool = False
    local: bool = False  # into the training bucket (DRfC's -L)


@dataclass
class UploadPlan(StepPlan):
    step = "upload"
    plan: Plan
    checkpoint: Checkpoint
    source_client: Any
    target_client: Any
    read: list[Input]
    notes: list[str] = field(default_factory=list)

    @property
    def target(self) -> S3Location:
        return self.plan.target

    def heading(self) -> str:
        return f"checkpoint {self.checkpoint.name}: {plan_heading(self.plan)}"

    def rows(self) -> list[Row]:
        return plan_rows(self.plan)

    def summary(self) -> dict[str, Any]:
        return self.plan.summary()

    def summary_line(self) -> str:
        return plan_summary_line(self.plan)

    def as_dict(self) -> dict[str, Any]:
        return {"step": self.step, "checkpoint": self.checkpoint.name, **self.plan.as_dict(), "notes": self.plan.notes + self.notes}

    @property
    def changes(self) -> bool:
        return self.plan.changes

    def inputs(self) -> list[Input]:
        return self.read

    def deletions(self) -> list[tuple[S3Location, str]]:
        return [(self.target, self.target.key(i.key)) for i in self.plan.items if i.action is Action.DELETE]

    def apply(self, runtime: Runtime) -> StepResult:
        with runtime.progress(runtime.out) as progress:
            checks = apply(self.plan, self.source_client, self.target_client, progress=progress)
        return StepResult(
            self.step, "done", f"uploaded checkpoint {self.checkpoint.name} to {self.target.url} ({_objects(len(checks))} verified)", checks, where=self.target.url
        )


def _objects(count: int) -> str:
    return f"{count} object{'s' if count != 1 else ''}"


def plan_upload_step(context: StepContext) -> UploadPlan:
    """Everything up to the plan; nothing is written. Missing pieces stop it, naming each one."""
    from drtasks.steps.source import upload_inputs

    settings: Settings = context.settings
    options: UploadOptions = context.options or UploadOptions()
    reads = context.reads
    source = targets.source_location(settings)
    target = targets.upload_location(settings, local=options.local)
    refuse_unsafe_prefix(target)  # before the first read of the target
    reward_key = targets.reward_key(settings)
    metrics_prefix = targets.metrics_prefix(settings)

    # Independent reads overlap: the target, its unfinished uploads, the reward function and the
    # metrics are read while the model's folders are listed.
    model_read = reads.model(source)
    listing = reads.target(target)
    pending = reads.pending(target)
    reward = reads.head(source, reward_key)
    metrics = reads.listing(source, metrics_prefix)
    model = model_read.result()
    choice = choose_for(settings, reads.client(source), model, metrics.result)
    checkpoint = choice.checkpoint
    pieces = find_pieces(reads.client(source), model, checkpoint, reward_key, metrics_prefix, reward.result, metrics.result)
    params = to_yaml(training_params(settings, target, pieces.metrics_file_key))
    manifest = upload_manifest(model, checkpoint, pieces, params)
    check_checkpoint_model(reads.client(source), model, checkpoint)  # metadata and frozen graph agree
    target_client = reads.client(target)
    stale_lease = refuse_if_held(target_client, target)
    plan = plan_upload(
        manifest,
        source,
        target,
        target_client,
        wipe=options.wipe,
        existing=listing.result(),
        inputs=upload_inputs(settings, source),
        pending=pending.result(),
        resumable=resumable_for(target, source.same_service(target)),
    )
    plan.stale_lease = stale_lease
    plan.notes.append(choice.reason)
    return UploadPlan(plan, checkpoint, reads.client(source), target_client, upload_inputs(settings, source))
