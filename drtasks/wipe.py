"""Emptying an upload prefix, planned and shown like any other write."""

from __future__ import annotations

from drtasks.config import targets
from drtasks.config.settings import Settings
from drtasks.plan import Action, Plan, PlanItem, list_target
from drtasks.s3 import make_client


def plan_wipe(settings: Settings, prefix: str | None = None, local: bool = False) -> tuple[Plan, object]:
    target = targets.upload_location(settings, local=local)
    if prefix is not None:
        target = target.with_prefix(targets.target_prefix(prefix, "the prefix to wipe"))
    client = make_client(target)
    items = [PlanItem(key, Action.DELETE, "wipe", None, info.size) for key, info in list_target(client, target).items()]
    return Plan(target, target, items, title="wipe"), client


def run_wipe(settings: Settings, force: bool, dry_run: bool, prefix: str | None = None, local: bool = False) -> None:
    from drtasks import render
    from drtasks.tasks.common import confirm
    from drtasks.transfer import apply

    plan, client = plan_wipe(settings, prefix, local)
    out = render.console()
    if not plan.items:
        out.print(f"{plan.target.url} is already empty.")
        return
    render.print_plan(plan, out)
    if dry_run:
        out.print("Dry run: nothing was deleted.")
        return
    confirm(f"Delete {len(plan.items)} objects under {plan.target.url}?", force)
    apply(plan, client, client)
    out.print(f"Deleted {len(plan.items)} objects under {plan.target.url}.")
