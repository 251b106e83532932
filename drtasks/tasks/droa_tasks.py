"""inv model-info, download-asset, delete-model, submit and leaderboard: a racer's DRoA models and leagues.

Every model and leaderboard is named by id or name (drtasks.importing.droa_names). The writing
tasks (download-asset, delete-model, submit) plan, show, ask and act through the chain's steps
(drtasks.steps.droa_models); the others only read and render.
"""

from __future__ import annotations

import json as jsonlib
from typing import Any

from invoke import Collection

from drtasks.errors import DrtasksError
from drtasks.tasks.common import drtask, settings_for

PROFILE_HELP = "named profile from profiles/ (its import.droa_url and import.droa_username say where you race)"


def droa_flags(url: str | None = None, username: str | None = None, leaderboard: str | None = None) -> dict[str, tuple[str, str]]:
    """DRoA's site, user and leaderboard from flags, above every other layer."""
    flags: dict[str, tuple[str, str]] = {}
    if url:
        flags["DR_DROA_URL"] = (url, "--url")
    if username:
        flags["DR_DROA_USERNAME"] = (username, "--username")
    if leaderboard:
        flags["DR_DROA_LEADERBOARD"] = (leaderboard, "--leaderboard")
    return flags


def _session(profile: str | None, flags: dict[str, tuple[str, str]] | None) -> tuple[Any, Any]:
    from drtasks.importing import droa_flow

    settings = settings_for(profile, flags)
    return settings, droa_flow.sign_in(settings)


# ---------------------------------------------------------------------------- model-info


def run_model_info(profile: str | None, reference: str, verbose: bool = False, summary: bool = False, json: bool = False,
                   flags: dict[str, tuple[str, str]] | None = None) -> None:
    """Show one model: identity, car, track, agent (and action space, reward function with ``verbose``)."""
    from drtasks import droa_render, render
    from drtasks.importing.droa_assets import without_signatures
    from drtasks.importing.droa_names import resolve_model

    _settings, session = _session(profile, flags)
    api = session.api()
    model = api.get_model(str(resolve_model(api, reference).get("modelId")))
    iterations = _training_summary(model) if summary else None
    if json:
        document = without_signatures(model)
        if iterations is not None:
            document["trainingSummary"] = [
                {"iteration": it.number, "training": it.training.as_dict(), "evaluation": it.evaluation.as_dict()} for it in iterations
            ]
        print(jsonlib.dumps(document, indent=2, default=str))
        return
    out = render.console()
    out.print(droa_render.model_table(model, verbose))
    reward = (model.get("metadata") or {}).get("rewardFunction")
    if verbose and reward:
        out.print("[bold]reward function[/bold]")
        out.print(reward, markup=False, highlight=False)
    if iterations is not None:
        out.print(droa_render.training_summary_table(iterations, f"training of '{model.get('name')}' per iteration (DRoA's training metrics)"))


def _training_summary(model: dict[str, Any]) -> list[Any]:
    from drtasks.importing.droa_assets import fetch
    from drtasks.importing.droa_logs import training_summary

    url = model.get("trainingMetricsUrl")
    what = f"the training metrics of model '{model.get('name')}'"
    if not url:
        raise DrtasksError(f"DRoA gives no training metrics for model '{model.get('name')}' ({model.get('modelId')})")
    try:
        body = fetch(str(url), what)
    except DrtasksError as error:
        if "NoSuchKey" in error.message or "HTTP 404" in error.message:
            raise DrtasksError(f"DRoA holds no training metrics for model '{model.get('name')}' ({model.get('modelId')}): "
                               "it was imported without metrics/training/") from None
        raise
    return training_summary(body, what)


@drtask(
    positional=["model"],
    short={"profile": "p", "verbose": "v", "summary": "s", "json": "j"},
    help={
        "model": "the model's id or name",
        "profile": PROFILE_HELP,
        "verbose": "also the whole action space and the reward function",
        "summary": "also the training per iteration, from the metrics DRoA imported (reward, progress, evaluation laps)",
        "json": "print DRoA's model record as JSON (with --summary: plus trainingSummary)",
    },
)
def model_info(c: Any, model: str, profile: str | None = None, verbose: bool = False, summary: bool = False, json: bool = False) -> None:
    """Show a DRoA model named by id or name: identity, car, track, agent, training."""
    run_model_info(profile, model, verbose, summary, json)


# ---------------------------------------------------------------------------- download-asset


def run_download(profile: str | None, reference: str, asset: str = "TRAINING_LOGS", evaluation_id: str | None = None,
                 output: str | None = None, summary: bool = False, force: bool = False, dry_run: bool = False,
                 json: bool = False, flags: dict[str, tuple[str, str]] | None = None, ask_only_to_replace: bool = False) -> None:
    """`inv download-asset`; ``ask_only_to_replace`` (DRfC's droa-download-logs) writes a new file without asking."""
    from drtasks.chain import ChainRequest, StepSpec
    from drtasks.importing.droa_assets import asset_type
    from drtasks.steps.droa_models import DownloadOptions
    from drtasks.tasks.runner import RunOptions, run_chains

    kind = asset_type(asset)
    options = DownloadOptions(reference, kind, evaluation_id, output)
    outcomes = run_chains([ChainRequest(profile, [StepSpec("download-asset", options)], flags or {})],
                          RunOptions(force=force, dry_run=dry_run, json=json, question="Download this asset?", ask_only_to_replace=ask_only_to_replace))
    if summary and outcomes:
        written = next((r.where for r in outcomes[0] if r.step == "download-asset" and r.status == "done"), None)
        if written:
            _print_logs_summary(kind, written)


def _print_logs_summary(kind: str, written: str) -> None:
    from pathlib import Path

    from drtasks import droa_render, render
    from drtasks.importing.droa_logs import metrics_in_archive, stability, training_summary

    out = render.console()
    if kind != "TRAINING_LOGS":
        render.console(stderr=True).print(f"warning: --summary reads training logs; {kind} has none, so it was skipped")
        return
    archive = Path(written)
    timing = stability(archive)
    if timing.rows:
        out.print(droa_render.stability_table(timing, f"simulation step timing of {archive.name} (per simtrace iteration)"))
    else:
        out.print(f"{archive.name} holds no simtrace, so there is no step timing to show.")
    found = metrics_in_archive(archive)
    if found:
        name, body = found
        out.print(droa_render.training_summary_table(training_summary(body, f"{archive.name}: {name}"), f"training per iteration ({name})"))


@drtask(
    positional=["model"],
    short={"profile": "p", "asset": "a", "evaluation_id": "e", "output": "o", "summary": "s", "force": "f", "dry_run": "d", "json": "j"},
    help={
        "model": "the model's id or name",
        "profile": PROFILE_HELP,
        "asset": "TRAINING_LOGS (default), EVALUATION_LOGS, PHYSICAL_CAR_MODEL, VIRTUAL_MODEL or VIDEOS",
        "evaluation-id": "the evaluation whose logs EVALUATION_LOGS downloads",
        "output": "the file to write (a folder gets DRoA's own file name; default: that name in the current folder)",
        "summary": "after downloading TRAINING_LOGS: the simulation's step timing per iteration and the training per iteration",
        "force": "do not ask before writing",
        "dry-run": "show what would be downloaded where, write nothing",
        "json": "print the plan as JSON instead of a table",
    },
)
def download_asset(c: Any, model: str, profile: str | None = None, asset: str = "TRAINING_LOGS", evaluation_id: str | None = None,
                   output: str | None = None, summary: bool = False, force: bool = False, dry_run: bool = False, json: bool = False) -> None:
    """Download an asset of a DRoA model (waits while DRoA packages a VIRTUAL_MODEL), proven by size and checksum."""
    run_download(profile, model, asset, evaluation_id, output, summary, force, dry_run, json)


# ---------------------------------------------------------------------------- delete-model


def run_delete(profile: str | None, reference: str, force: bool = False, dry_run: bool = False, json: bool = False,
               wait: bool = False, flags: dict[str, tuple[str, str]] | None = None) -> None:
    from drtasks.chain import ChainRequest, StepSpec
    from drtasks.steps.droa_models import DeleteOptions
    from drtasks.tasks.runner import RunOptions, run_chains

    run_chains([ChainRequest(profile, [StepSpec("delete-model", DeleteOptions(reference))], flags or {})],
               RunOptions(force=force, dry_run=dry_run, json=json, wait=wait, question="Delete this model?"))


@drtask(
    positional=["model"],
    short={"profile": "p", "force": "f", "dry_run": "d", "json": "j", "wait": "w"},
    help={
        "model": "the model's id or name",
        "profile": PROFILE_HELP,
        "force": "do not ask (without it you type the model's name to confirm)",
        "dry-run": "show what would be deleted, delete nothing",
        "json": "print the plan as JSON instead of a table",
        "wait": "wait until DRoA has removed the model",
    },
)
def delete_model(c: Any, model: str, profile: str | None = None, force: bool = False, dry_run: bool = False, json: bool = False, wait: bool = False) -> None:
    """Delete a DRoA model (READY or ERROR only); you confirm by typing its name."""
    run_delete(profile, model, force, dry_run, json, wait)


# ---------------------------------------------------------------------------- leagues


@drtask(
    short={"profile": "p", "model": "m", "leaderboard": "l", "force": "f", "dry_run": "d", "json": "j", "wait": "w"},
    help={
        "profile": "the league's profile: import.leaderboard names the leaderboard, import.name the model",
        "model": "the model's id or name (default: the profile's import name, else its upload prefix)",
        "leaderboard": "the leaderboard's id or name (default: the profile's import.leaderboard, DR_DROA_LEADERBOARD)",
        "force": "do not ask before submitting",
        "dry-run": "show the submission, submit nothing",
        "json": "print the plan as JSON instead of a table",
        "wait": "wait for the race and show its result and your rank",
    },
)
def submit(c: Any, profile: str | None = None, model: str | None = None, leaderboard: str | None = None, force: bool = False,
           dry_run: bool = False, json: bool = False, wait: bool = False) -> None:
    """Submit a DRoA model to the profile's leaderboard, once the model is READY."""
    from drtasks.chain import ChainRequest, StepSpec
    from drtasks.steps.droa_models import SubmitOptions
    from drtasks.tasks.runner import RunOptions, run_chains

    chain = ChainRequest(profile, [StepSpec("submit", SubmitOptions(model, leaderboard))])
    run_chains([chain], RunOptions(force=force, dry_run=dry_run, json=json, wait=wait, question="Submit this model?"))


@drtask(
    short={"profile": "p", "leaderboard": "l", "json": "j"},
    help={
        "profile": "the league's profile (import.leaderboard names the leaderboard)",
        "leaderboard": "the leaderboard's id or name (default: the profile's import.leaderboard); without any, every leaderboard is listed",
        "json": "print the leaderboard, its ranking and your submissions as JSON",
    },
)
def leaderboard(c: Any, profile: str | None = None, leaderboard: str | None = None, json: bool = False) -> None:
    """Show a DRoA leaderboard's ranking and your submissions (or list the leaderboards)."""
    from datetime import datetime, timezone

    from drtasks import droa_render, render
    from drtasks.importing.droa_assets import without_signatures
    from drtasks.importing.droa_names import resolve_leaderboard

    settings, session = _session(profile, droa_flags(leaderboard=leaderboard))
    api = session.api()
    reference = settings.get("DR_DROA_LEADERBOARD")
    if not reference:
        boards = api.list_leaderboards()
        if json:
            print(jsonlib.dumps(without_signatures(boards), indent=2))
            return
        now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
        render.console().print(droa_render.leaderboards_table(boards, now))
        render.console().print("Name one with --leaderboard, or in the profile's import.leaderboard.")
        return
    board = resolve_leaderboard(api, reference)
    board_id = str(board.get("leaderboardId"))
    rankings, mine, submissions = api.list_rankings(board_id), api.get_ranking(board_id), api.list_submissions(board_id)
    if json:
        print(jsonlib.dumps(without_signatures({"leaderboard": board, "rankings": rankings, "ranking": mine, "submissions": submissions}), indent=2))
        return
    out = render.console()
    out.print(droa_render.ranking_table(board, rankings, mine))
    if not rankings:
        out.print("Nobody is ranked yet.")
    if submissions:
        out.print(droa_render.submissions_table(submissions))
    left = int(board.get("maxSubmissionsPerUser") or 0) - max((int(s.get("submissionNumber") or 0) for s in submissions), default=0)
    out.print(f"You have {max(left, 0)} of {board.get('maxSubmissionsPerUser')} submission(s) left.")


namespace = Collection(model_info, download_asset, delete_model, submit, leaderboard)
