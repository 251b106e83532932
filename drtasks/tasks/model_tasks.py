"""inv checkpoints and inv inventory: choose a checkpoint by evidence, see what is where."""

from __future__ import annotations

import json as jsonlib
import sys
from typing import Any

from invoke import Collection

from drtasks.tasks.common import drtask, settings_for


def _survey(settings: Any) -> Any:
    from drtasks.inventory import survey_profiles

    return survey_profiles(settings.dr_dir)


@drtask(
    help={
        "profile": "named profile whose training model to read (layered over system.env and run.env)",
        "json": "print the report as JSON",
        "plot": "also write training and evaluation curves, kept checkpoints marked, to FILE.png (needs the analysis extra)",
    },
)
def checkpoints(c: Any, profile: str | None = None, json: bool = False, plot: str | None = None) -> None:
    """The model's kept checkpoints and its training per iteration, with what each best-by policy would choose."""
    from concurrent.futures import ThreadPoolExecutor

    from drtasks import render
    from drtasks.checkpoint_choice import load_run
    from drtasks.checkpoint_report import build_report
    from drtasks.config import targets
    from drtasks.model import SourceModel
    from drtasks.s3 import make_client

    path = None
    if plot:
        from drtasks.plot import check_plot_path, require_matplotlib

        path = check_plot_path(plot)
        require_matplotlib()
    settings = settings_for(profile)
    source = targets.source_location(settings)
    client = make_client(source)
    with ThreadPoolExecutor(1) as pool:
        # The profiles' upload targets are read while the model and its metrics are.
        survey = pool.submit(_survey, settings)
        model = SourceModel.load(client, source)
        run = load_run(client, model, targets.metrics_prefix(settings))
        report = build_report(model, run, survey.result())
    status = render.console(stderr=json)
    if path is not None:
        from drtasks.plot import write_plot

        size = write_plot(report, path)
        status.print(f"Wrote {path} ({render.human(size)}).")
    if json:
        print(jsonlib.dumps(report.as_dict(), indent=2))
        return
    from drtasks import model_render

    out = render.console()
    if sys.stdout.isatty():
        out.print(model_render.chart(report, out.width))
    out.print(model_render.checkpoints_table(report, out.width))
    for line in model_render.verdict_lines(report):
        out.print(line, markup=False)
    for note in report.notes:
        out.print(f"note: {note}", markup=False)


@drtask(
    help={
        "profile": "named profile whose training bucket to survey",
        "json": "print the inventory as JSON",
    },
)
def inventory(c: Any, profile: str | None = None, json: bool = False) -> None:
    """The models in the training bucket: checkpoints kept, best, size, last written, and where each was shipped or backed up."""
    from concurrent.futures import ThreadPoolExecutor

    from drtasks import render
    from drtasks.config import targets
    from drtasks.inventory import find_models, inventory_of
    from drtasks.s3 import make_client

    settings = settings_for(profile)
    bucket = targets.source_location(settings).with_prefix("")
    client = make_client(bucket)
    with ThreadPoolExecutor(1) as pool:
        survey = pool.submit(_survey, settings)
        models = find_models(client, bucket)
        result = inventory_of(bucket, models, survey.result())
    if json:
        print(jsonlib.dumps(result.as_dict(), indent=2))
        return
    from drtasks import model_render

    out = render.console()
    out.print(model_render.inventory_table(result, out.width))
    for shipment in result.elsewhere:
        out.print(f"note: profile {shipment.profile}: {shipment.target.url} holds {shipment.checkpoint}, a checkpoint of no model in {bucket.url}", markup=False)
    for note in result.notes:
        out.print(f"note: {note}", markup=False)


namespace = Collection(checkpoints, inventory)
