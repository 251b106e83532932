"""inv ship: the steps a profile lists, for one profile or several, as one plan per profile."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from invoke import Collection

from drtasks.errors import DrtasksError
from drtasks.tasks.common import drtask

if TYPE_CHECKING:
    from drtasks.chain import ChainRequest

DEFAULT_STEPS = ("upload",)


def ship_chain(profile: str | None, wipe: bool = False, steps: list[str] | None = None) -> "ChainRequest":
    """The profile's steps (default: upload), in drtasks' fixed order, with their options."""
    import os

    from drtasks.chain import STEP_ORDER, ChainRequest, StepSpec
    from drtasks.config import profile as profiles
    from drtasks.config.settings import dr_dir_from

    listed = steps or (profiles.steps_of(profile, dr_dir_from(os.environ)) if profile else None) or list(DEFAULT_STEPS)
    specs = []
    for name in sorted(listed, key=STEP_ORDER.index):
        specs.append(StepSpec(name, _options(name, wipe)))
    return ChainRequest(profile, specs)


def _options(step: str, wipe: bool) -> Any:
    if step == "upload":
        from drtasks.steps.upload import UploadOptions

        return UploadOptions(wipe=wipe)
    return None


@drtask(
    iterable=["profile"],
    short={"profile": "p", "force": "f", "dry_run": "d", "wipe": "w", "json": "j", "all": "a", "wait": "W"},
    help={
        "profile": "a profile to ship (repeat for several: each ships in turn, the source is read once)",
        "force": "do not ask before writing",
        "dry-run": "show every step's plan and write nothing",
        "wipe": "the upload step also deletes target objects that are not part of the upload",
        "json": "print the plans as JSON instead of tables",
        "all": "show every object of the plans (folders of many objects are one row otherwise)",
        "wait": "an import step waits until the model is READY (or failed)",
    },
)
def ship(c: Any, profile: list[str] | None = None, force: bool = False, dry_run: bool = False, wipe: bool = False, json: bool = False, all: bool = False, wait: bool = False) -> None:
    """Run the steps each profile lists (`steps: [increment, upload, import, car-zip]`; default: upload).

    Every step of every profile is planned first and shown as one table per profile; one question,
    then the steps run in order and stop at the first failure, with a table of what was done,
    what failed and what was left.
    """
    from drtasks.tasks.runner import RunOptions, run_chains

    names = list(profile or [])
    if len(set(names)) != len(names):
        raise DrtasksError("--profile: each profile ships once; a name was given twice")
    requests = [ship_chain(name, wipe) for name in names] or [ship_chain(None, wipe)]
    run_chains(requests, RunOptions(force=force, dry_run=dry_run, json=json, show_all=all, wait=wait, question="Ship these plans?"))


namespace = Collection(ship)
