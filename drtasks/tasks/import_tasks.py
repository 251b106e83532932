"""inv import-model and inv models: thin tasks over drtasks.importing (console or DRoA).

``inv upload --import`` / ``--import-name`` call ``check_import_possible`` before uploading and
``import_after_upload`` after it.
"""

from __future__ import annotations

import json as jsonlib
from contextlib import contextmanager
from typing import Any, Callable, Iterator

from invoke import Collection

from drtasks.errors import DrtasksError
from drtasks.tasks.common import checkpoint_flags, confirm, drtask, settings_for


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


# ---------------------------------------------------------------------------- upload chaining


def check_import_possible(settings: Any, name: str | None) -> None:
    """Before `inv upload --import`: refuse what the import would refuse, while nothing is written."""
    from drtasks.importing import droa_flow, flow

    request = flow.resolve_request(settings, name)
    if request.target == flow.CONSOLE:
        flow.check_console_request(settings, request)
        # A name clash (or a console that no longer answers) would waste the upload.
        flow.refuse_existing_name(flow.console_client(settings), request.name)
    else:
        droa_flow.check_droa_request(settings, request)


def import_after_upload(settings: Any, name: str | None, force: bool, local: bool, to_stderr: bool = False) -> None:
    """After a successful `inv upload --import`: import what was just uploaded (no waiting).

    ``to_stderr`` keeps standard output for the upload's JSON plan.
    """
    run_import(settings, name, wait=False, force=force, dry_run=False, local=local, to_stderr=to_stderr)


# ---------------------------------------------------------------------------- the import


def run_import(
    settings: Any,
    name: str | None = None,
    *,
    wait: bool = False,
    force: bool = False,
    dry_run: bool = False,
    local: bool = False,
    to_stderr: bool = False,
) -> None:
    from drtasks import render
    from drtasks.importing import flow

    request = flow.resolve_request(settings, name)
    out = render.console(stderr=to_stderr)
    if request.target == flow.CONSOLE:
        _import_into_console(settings, request, out, wait=wait, force=force, dry_run=dry_run, local=local)
    else:
        _import_into_droa(settings, request, out, wait=wait, force=force, dry_run=dry_run)


@contextmanager
def status_reporter(out: Any, what: str) -> Iterator[Callable[[str], None]]:
    """A rich spinner on a terminal; otherwise one line per status change."""
    if out.is_terminal:
        with out.status(f"{what}: waiting") as spinner:
            yield lambda status: spinner.update(f"{what}: {status}")
        return
    last: list[str] = []

    def line(status: str) -> None:
        if not last or last[-1] != status:
            last.append(status)
            out.print(f"{what}: {status}")

    yield line


def _import_into_console(settings: Any, request: Any, out: Any, *, wait: bool, force: bool, dry_run: bool, local: bool) -> None:
    from drtasks import render
    from drtasks.config import targets
    from drtasks.importing import console, flow
    from drtasks.s3 import make_client

    location = targets.upload_location(settings, local=local)
    flow.check_console_request(settings, request)
    client = flow.console_client(settings)
    out.print(
        f"Import {location.url} into the AWS DeepRacer console as '{request.name}' "
        f"(role {flow.console_role(settings)})."
    )
    flow.check_uploaded_model(make_client(location), location)
    flow.refuse_existing_name(client, request.name)
    if dry_run:
        render.console(stderr=True).print("Dry run: the model is importable; nothing was imported.")
        return
    confirm(f"Import it as '{request.name}'?", force)
    arn = flow.import_into_console(settings, request, location, client)
    out.print(f"Import of '{request.name}' started: {arn}")
    if not wait:
        out.print("Follow it with `inv models` (or pass --wait).")
        return
    with status_reporter(out, f"console model '{request.name}'") as report:
        status = console.wait_for_model(client, arn, on_status=report, poll_seconds=flow.poll_seconds(settings))
    out.print(f"Model '{request.name}' is {status}.")


def _import_into_droa(settings: Any, request: Any, out: Any, *, wait: bool, force: bool, dry_run: bool) -> None:
    from drtasks import render
    from drtasks.importing import droa, droa_flow, flow
    from drtasks.progress import progress_for

    droa_flow.check_droa_request(settings, request)
    session = droa_flow.sign_in(settings)
    out.print(f"Signed in to {session.deployment.url} as {session.username}.")
    job = droa_flow.prepare_droa_upload(settings, session, request)
    render.print_plan(job.plan, out)
    if dry_run:
        render.console(stderr=True).print("Dry run: nothing was written or imported.")
        return
    confirm("Upload this model to DRoA and import it?", force)
    with progress_for(out) as progress:
        checks = droa_flow.execute_droa_upload(job, progress)
    out.print(render.checks_table(checks, f"verified {job.plan.target.url}"))
    failed = [check for check in checks if not check.ok]
    if failed:
        raise DrtasksError(f"verification failed for {len(failed)} object(s), nothing was imported: " + ", ".join(c.key for c in failed[:5]))
    api = session.api()
    model_id = api.import_model(job.bucket, job.prefix, request.name, request.description)
    out.print(f"DRoA import of '{request.name}' started: model id {model_id}")
    if not wait:
        out.print("Follow it with `inv models --target droa` (or pass --wait).")
        return
    with status_reporter(out, f"DRoA model '{request.name}'") as report:
        droa.wait_for_model(api, model_id, on_status=lambda status, _model: report(status), poll_seconds=flow.poll_seconds(settings))
    out.print(f"Model '{request.name}' is READY in DRoA.")


@drtask(
    short={"force": "f", "dry_run": "d", "best": "b", "checkpoint": "c", "wait": "w", "name": "n", "target": "t", "description": "D", "profile": "p"},
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
) -> None:
    """Import a model into the AWS DeepRacer console or DeepRacer on AWS (DRoA).

    Console: DR_UPLOAD_S3_ROLE (role ARN), DR_IMPORT_ENDPOINT_URL (else AWS_ENDPOINT_URL_DEEPRACER).
    DRoA: DR_DROA_URL, DR_DROA_USERNAME; the password comes from DR_DROA_PASSWORD or a prompt and is
    never stored; DR_DROA_S3_ENDPOINT_URL (else AWS_ENDPOINT_URL_S3) redirects the transit bucket.
    --wait polls every DR_IMPORT_POLL_SECONDS (default 10).
    """
    from drtasks.importing import flow

    settings = settings_for(profile, import_flags(name, description, target, best, checkpoint))
    if (best or checkpoint) and flow.import_target(settings) == flow.CONSOLE:
        raise DrtasksError(
            "--best/--checkpoint choose what to upload to DRoA; the console imports the model already "
            "uploaded (choose the checkpoint with `inv upload`)"
        )
    run_import(settings, wait=wait, force=force, dry_run=dry_run)


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
    """List your models in the console or DRoA: name, status, created, ARN or id."""
    from drtasks import render
    from drtasks.importing import flow

    settings = settings_for(profile, import_flags(target=target))
    try:
        frame, title = models_frame(settings)
    except ImportError as error:  # pandas is part of the console extra
        raise DrtasksError(f"`inv models` needs {error.name}: pip install 'drtasks[console]'") from None
    if json:
        print(jsonlib.dumps(flow.models_as_records(frame), indent=2))
        return
    render.console().print(models_table(frame, title))
    render.console().print(f"{len(frame)} model(s).")


namespace = Collection(import_model, models)
