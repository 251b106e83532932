"""A chain of steps: planned together, checked against each other, applied in order.

``plan_chain`` resolves the settings of one profile, runs each step's planner (a later planner sees
the earlier plans, and the settings an increment changes), then checks across steps that nothing
deletes what a step reads. ``apply_chain`` runs the plans in order and stops at the first failure;
its outcome says what was done, what failed and what was left.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable

from drtasks.config.settings import Settings, resolve
from drtasks.errors import DrtasksError
from drtasks.steps.base import Runtime, StepContext, StepPlan, StepResult
from drtasks.steps.source import SourceReads

# Step name -> "module:planner" (imported when a chain uses the step).
PLANNERS: dict[str, str] = {
    "increment": "drtasks.steps.increment:plan_increment_step",
    "wipe": "drtasks.steps.wipe:plan_wipe_step",
    "upload": "drtasks.steps.upload:plan_upload_step",
    "import": "drtasks.steps.importing:plan_import_step",
    "car-zip": "drtasks.steps.carzip:plan_car_zip_step",
    "car-push": "drtasks.steps.carpush:plan_car_push_step",
    "backup": "drtasks.steps.backup:plan_backup_step",
    "restore": "drtasks.steps.restore:plan_restore_step",
}
# The order a profile's steps run in, whatever order the profile lists them in.
# A backup comes after the shipping steps (restore is a task of its own, never a profile's step).
STEP_ORDER = ("increment", "wipe", "upload", "import", "submit", "car-zip", "car-push", "backup")


@dataclass(frozen=True)
class StepSpec:
    name: str
    options: Any = None


@dataclass
class ChainRequest:
    profile: str | None
    steps: list[StepSpec]
    flags: dict[str, tuple[str, str]] = field(default_factory=dict)  # DR_* -> (value, origin)


@dataclass
class ChainPlan:
    profile: str | None
    plans: list[StepPlan]
    settings: Settings

    @property
    def changes(self) -> bool:
        return any(plan.changes for plan in self.plans)

    @property
    def name(self) -> str:
        return " -> ".join(plan.step for plan in self.plans)

    def as_dict(self) -> dict[str, Any]:
        return {"profile": self.profile, "chain": [plan.step for plan in self.plans], "steps": [plan.as_dict() for plan in self.plans]}

    def close(self) -> None:
        for plan in self.plans:
            plan.close()


def _planner(name: str) -> Callable[[StepContext], StepPlan]:
    if name not in PLANNERS:
        known = ", ".join(n for n in STEP_ORDER if n in PLANNERS)
        raise DrtasksError(f"the step '{name}' is not available in this version of drtasks; available steps: {known}")
    module, function = PLANNERS[name].split(":")
    return getattr(importlib.import_module(module), function)


def plan_chain(request: ChainRequest, reads: SourceReads) -> ChainPlan:
    """Plan every step; nothing is written."""
    settings = resolve(request.profile, request.flags)
    flags = dict(request.flags)
    plans: list[StepPlan] = []
    try:
        for spec in request.steps:
            plan = _planner(spec.name)(StepContext(settings, spec.options, list(plans), reads))
            plans.append(plan)
            overrides = plan.overrides_after()
            if overrides:
                flags.update(overrides)
                settings = resolve(request.profile, flags, warn=lambda _message: None)
        check_across(plans)
    except BaseException:
        ChainPlan(request.profile, plans, settings).close()
        raise
    return ChainPlan(request.profile, plans, settings)


def check_across(plans: list[StepPlan]) -> None:
    """No step may delete what another step of the chain reads."""
    for deleting in plans:
        for location, key in deleting.deletions():
            for reading in plans:
                for needed in reading.inputs():
                    if needed.covers(location, key):
                        raise DrtasksError(
                            f"the {deleting.step} step would delete s3://{location.bucket}/{key}, which the {reading.step} "
                            f"step reads ({needed.describe()}); nothing was written"
                        )


def apply_chain(chain: ChainPlan, runtime: Runtime) -> list[StepResult]:
    """Apply each plan in order; after a failure the remaining steps are left, not run."""
    results: list[StepResult] = []
    failed = False
    for plan in chain.plans:
        if failed:
            results.append(StepResult(plan.step, "not run", "an earlier step failed"))
            continue
        if not plan.changes:
            results.append(StepResult(plan.step, "skipped", "nothing to do"))
            continue
        try:
            result = plan.apply(runtime)
            results.append(result)
            failed = result.status == "failed"
        except DrtasksError as error:
            results.append(StepResult(plan.step, "failed", error.message, getattr(error, "checks", []), error.code))
            failed = True
        except KeyboardInterrupt:
            results.append(StepResult(plan.step, "failed", "interrupted", code=130))
            failed = True
    return results
