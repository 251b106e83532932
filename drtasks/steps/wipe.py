"""The wipe step: empty an upload prefix (``increment -w``), planned and shown like any write."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from drtasks.config import targets
from drtasks.plan import Action, Input, Plan, PlanItem, refuse_deleting_inputs, refuse_unsafe_prefix
from drtasks.s3 import S3Location
from drtasks.steps.base import Row, Runtime, StepContext, StepPlan, StepResult
from drtasks.steps.s3rows import plan_rows
from drtasks.transfer import apply
from drtasks.units import plural


@dataclass(frozen=True)
class WipeOptions:
    local: bool = False


@dataclass
class WipePlan(StepPlan):
    step = "wipe"
    plan: Plan
    client: Any
    notes: list[str] = field(default_factory=list)

    @property
    def target(self) -> S3Location:
        return self.plan.target

    def heading(self) -> str:
        return self.target.url

    def rows(self) -> list[Row]:
        return plan_rows(self.plan)

    def summary(self) -> dict[str, Any]:
        return self.plan.summary()

    def summary_line(self) -> str:
        deleting = self.plan.count(Action.DELETE)
        if not self.plan.items:
            return f"{self.target.url} is already empty{'; the lease of a run that is gone is removed' if self.plan.stale_lease else ''}."
        aborts = self.plan.count(Action.ABORT)
        extra = f", {plural(aborts, 'unfinished upload')} to abort" if aborts else ""
        return f"{plural(deleting, 'object')} to delete{extra}."

    def as_dict(self) -> dict[str, Any]:
        return {"step": self.step, **self.plan.as_dict()}

    @property
    def changes(self) -> bool:
        return bool(self.plan.items) or bool(self.plan.stale_lease)

    def deletions(self) -> list[tuple[S3Location, str]]:
        return [(self.target, self.target.key(i.key)) for i in self.plan.items if i.action is Action.DELETE]

    def apply(self, runtime: Runtime) -> StepResult:
        with runtime.progress(runtime.out) as progress:
            checks = apply(self.plan, self.client, self.client, progress=progress)
        return StepResult(self.step, "done", f"{plural(self.plan.count(Action.DELETE), 'object')} deleted under {self.target.url}", checks, where=self.target.url)


def plan_wipe_step(context: StepContext) -> WipePlan:
    from drtasks.lease import refuse_if_held
    from drtasks.steps.source import upload_inputs

    options: WipeOptions = context.options or WipeOptions()
    settings = context.settings
    target = targets.upload_location(settings, local=options.local)
    refuse_unsafe_prefix(target)
    client = context.reads.client(target)
    listing = context.reads.target(target)
    pending = context.reads.pending(target)
    stale_lease = refuse_if_held(client, target)
    existing = listing.result()
    inputs: list[Input] = upload_inputs(settings, targets.source_location(settings))
    refuse_deleting_inputs(target, existing, inputs)
    items = [PlanItem(u.key[len(target.prefix) + 1 :], Action.ABORT, "unfinished upload left by an interrupted run", upload_id=u.upload_id) for u in pending.result()]
    items += [PlanItem(key, Action.DELETE, "wipe", None, info.size, target_etag=info.etag) for key, info in sorted(existing.items())]
    return WipePlan(Plan(target, target, items, title="wipe", stale_lease=stale_lease), client)
