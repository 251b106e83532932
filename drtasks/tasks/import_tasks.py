"""inv import-model and inv models: thin tasks over the import step and drtasks.importing."""

from __future__ import annotations

import json as jsonlib
from typing import Any

from invoke import Collection

from drtasks.errors import DrtasksError
from drtasks.tasks.common import checkpoint_flags, drtask, settings_for


def import_flags(
    name: str | None = None,
    description: str | None = None,
    target: str | None = None,
    best: bool = False,
    checkpoint: str | None = None,
) -> dict[str, tuple[str, str]]:
    """Task flags as DR_* settings, so `inv config`-style provenance names the flag."""
    flags = checkpoint_flags(best, checkpoint)
    if name is not None:
        flags["DR_IMPORT_NAME"] = (name, "--name")
    if description is not None:
        flags["DR_IMPORT_DESCRIPTION"] = (description, "--description")
    if target is not None:
        flags["DR_IMPORT_TARGET"] = (target, "--target")
    return flags


def run_import(
    profile: str | None,
    flags: dict[str, tuple[str, str]],
    *,
    model_dir: str | None = None,
    submit: bool = False,
    force: bool = False,
    dry_run: bool = False,
    json: bool = False,
    wait: bool = False,
) -> None:
    """The import step (then the submit step with ``submit``), planned, shown, asked and applied."""
    from drtasks.chain import ChainRequest, StepSpec
    from drtasks.importing import flow
    from drtasks.steps.importing import ImportOptions
    from drtasks.tasks.runner import RunOptions, run_chains

    settings = settings_for(profile, flags)
    if "DR_UPLOAD_CHECKPOINT" in flags and model_dir is None and flow.import_target(settings) == flow.CONSOLE:
        raise DrtasksError(
            "--best/--checkpoint choose what to upload to DRoA; the console imports the model already "
            "uploaded (choose the checkpoint with `inv upload`)"
        )
    steps = [StepSpec("import", ImportOptions(model_dir=model_dir))]
    if submit:
        steps.append(StepSpec("submit"))
    question = "Import this model and submit it?" if submit else "Import this model?"
    run_chains([ChainRequest(profile, steps, flags)], RunOptions(force=force, dry_run=dry_run, json=json, wait=wait, question=question))


@drtask(
    short={"force": "f", "dry_run": "d", "best": "b", "checkpoint": "c", "wait": "w", "name": "n", "target": "t", "description": "D",
           "profile": "p", "json": "j", "model_dir": "m", "submit": "s"},
    help={
        "profile": "named profile from profiles/ (layered over system.env and run.env)",
        "name": "model name (1-64 letters, digits or '-'); default DR_IMPORT_NAME, else the upload prefix",
        "description": "model description (DR_IMPORT_DESCRIPTION); DRoA accepts letters, digits, spaces and '-'",
        "target": "console (import the model already uploaded at the upload prefix) or droa (upload the "
        "chosen checkpoint to DeepRacer on AWS and import it); default DR_IMPORT_TARGET, else droa when "
        "DR_DROA_URL is set, else console",
        "wait": "wait until the model is READY (or failed) and report it",
        "force": "do not ask before uploading or importing",
        "dry-run": "check everything (DRoA: show the upload plan) and import nothing",
        "best": "droa: upload the best checkpoint instead of the last",
        "checkpoint": "droa: upload checkpoint number N",
        "json": "print the plan as JSON instead of a table",
        "model-dir": "droa: import this DRfC model folder of this machine (model/, ip/, metrics/, reward_function.py, "
        "training_params*.yaml) instead of the training bucket's model; named after the folder unless --name",
        "submit": "droa: then submit the model to the profile's leaderboard (import.leaderboard) once it is READY",
    },
)
def import_model(
    c: Any,
    profile: str | None = None,
    name: str | None = None,
    description: str | None = None,
    target: str | None = None,
    wait: bool = False,
    force: bool = False,
    dry_run: bool = False,
    best: bool = False,
    checkpoint: str | None = None,
    json: bool = False,
    model_dir: str | None = None,
    submit: bool = False,
) -> None:
    """Import a model into the AWS DeepRacer console or DeepRacer on AWS (DRoA).

    Console: DR_UPLOAD_S3_ROLE (role ARN), DR_IMPORT_ENDPOINT_URL (else AWS_ENDPOINT_URL_DEEPRACER).
    DRoA: DR_DROA_URL, DR_DROA_USERNAME; the password comes from DR_DROA_PASSWORD or a prompt and is
    never stored; DR_DROA_S3_ENDPOINT_URL (else AWS_ENDPOINT_URL_S3) redirects the transit bucket.
    --wait polls every DR_IMPORT_POLL_SECONDS (default 10).
    """
    run_import(profile, import_flags(name, description, target, best, checkpoint), model_dir=model_dir, submit=submit,
               force=force, dry_run=dry_run, json=json, wait=wait)


# ---------------------------------------------------------------------------- listing


def models_frame(settings: Any) -> tuple[Any, str]:
    """(DataFrame of the target's models, title)."""
    from drtasks.importing import flow

    if flow.import_target(settings) == flow.CONSOLE:
        from drtasks.importing import console

        return console.list_models(flow.console_client(settings)), "AWS DeepRacer console models"
    from drtasks.importing import droa_flow

    session = droa_flow.sign_in(settings)
    return droa_flow.droa_models(session), f"DRoA models ({session.deployment.url}, {session.username})"


def models_table(frame: Any, title: str) -> Any:
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for column in frame.columns:
        table.add_column(str(column), overflow="fold")
    for row in frame.itertuples(index=False):
        table.add_row(*(_cell(value) for value in row))
    return table


def _cell(value: Any) -> str:
    if value is None or value != value:  # None or NaN/NaT
        return ""
    if hasattr(value, "strftime"):
        return value.strftime("%Y-%m-%d %H:%M UTC")
    return str(value)


@drtask(
    short={"profile": "p", "target": "t"},
    help={
        "profile": "named profile from profiles/ (layered over system.env and run.env)",
        "target": "console or droa (default DR_IMPORT_TARGET, else droa when DR_DROA_URL is set, else console)",
        "json": "print the models as JSON instead of a table",
    },
)
def models(c: Any, profile: str | None = None, target: str | None = None, json: bool = False) -> None:
    """List your models in the console or DRoA: name, status, (DRoA: training status,) created, ARN or id; newest first in DRoA."""
    run_models(profile, import_flags(target=target), json)


def run_models(profile: str | None, flags: dict[str, tuple[str, str]], json: bool = False, raw: bool = False) -> None:
    """`inv models`; ``raw`` (DRfC's droa-list-models --json) prints DRoA's own records, newest first."""
    from drtasks import render
    from drtasks.importing import flow

    settings = settings_for(profile, flags)
    if raw:
        from drtasks.importing import droa_flow
        from drtasks.importing.droa_assets import without_signatures

        session = droa_flow.sign_in(settings)
        print(jsonlib.dumps(without_signatures(droa_flow.newest_first(session.api().list_models())), indent=2, default=str))
        return
    try:
        frame, title = models_frame(settings)
    except ImportError as error:  # pandas is a base dependency: only a broken install gets here
        raise DrtasksError(f"`inv models` needs {error.name}: pip install 'pandas>=2'") from None
    if json:
        print(jsonlib.dumps(flow.models_as_records(frame), indent=2))
        return
    render.console().print(models_table(frame, title))
    render.console().print(f"{len(frame)} model(s).")


namespace = Collection(import_model, models)
