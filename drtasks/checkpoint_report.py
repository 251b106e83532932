"""`inv checkpoints` as a value: the model's training per iteration, its kept checkpoints, what
best-by would choose for each metric, and which checkpoint each profile's upload target holds."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from drtasks.checkpoint_choice import best_by, candidates, load_run
from drtasks.config.targets import BEST_BY_METRICS
from drtasks.errors import DrtasksError
from drtasks.inventory import Shipment, Survey, same_model
from drtasks.metrics import Alignment, Iteration, Stats, TrainingRun
from drtasks.model import SourceModel, checkpoint_number
from drtasks.s3 import S3Location


@dataclass(frozen=True)
class Row:
    """One iteration (or a kept checkpoint the metrics do not reach)."""

    checkpoint: int
    iteration: Iteration | None
    name: str | None  # the checkpoint's name when it is kept
    marks: tuple[str, ...]  # best, last, best-by <metric>
    shipped: tuple[str, ...]  # profiles whose upload target holds this checkpoint

    @property
    def kept(self) -> bool:
        return self.name is not None

    def as_dict(self) -> dict[str, Any]:
        empty = Stats.of([]).as_dict()
        return {
            "iteration": self.iteration.number if self.iteration else None,
            "checkpoint": self.checkpoint,
            "name": self.name,
            "kept": self.kept,
            "marks": list(self.marks),
            "shipped": list(self.shipped),
            "training": self.iteration.training.as_dict() if self.iteration else empty,
            "evaluation": self.iteration.evaluation.as_dict() if self.iteration else empty,
        }


@dataclass(frozen=True)
class Verdict:
    """What best-by METRIC chooses, or why it cannot."""

    metric: str
    checkpoint: int | None
    reason: str


@dataclass
class CheckpointReport:
    model: S3Location
    metrics_files: list[str]
    best_model_metric: str | None
    alignment: Alignment
    rows: list[Row]
    best: int | None
    last: int | None
    verdicts: list[Verdict]
    shipments: list[Shipment]
    notes: list[str] = field(default_factory=list)

    @property
    def kept(self) -> list[Row]:
        return [row for row in self.rows if row.kept]

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model.url,
            "endpoint": self.model.endpoint_url,
            "metrics": self.metrics_files,
            "best_model_metric": self.best_model_metric,
            "alignment": {"offset": self.alignment.offset, "how": self.alignment.how},
            "kept": [row.checkpoint for row in self.kept],
            "best": self.best,
            "last": self.last,
            "best_by": {v.metric: {"checkpoint": v.checkpoint, "reason": v.reason} for v in self.verdicts},
            "shipped": [s.as_dict() for s in self.shipments],
            "iterations": [row.as_dict() for row in self.rows],
            "notes": self.notes,
        }


def _named(model: SourceModel, which: str) -> int | None:
    entry = (model.index or {}).get(f"{which}_checkpoint")
    try:
        return checkpoint_number(entry["name"]) if isinstance(entry, dict) and isinstance(entry.get("name"), str) else None
    except DrtasksError:
        return None


def verdicts(model: SourceModel, run: TrainingRun) -> list[Verdict]:
    found = []
    kept = candidates(model, run)
    for metric in BEST_BY_METRICS:
        try:
            number, reason = best_by(kept, metric)
        except DrtasksError as error:
            number, reason = None, error.message
        found.append(Verdict(metric, number, reason))
    return found


def build_report(model: SourceModel, run: TrainingRun, survey: Survey | None = None) -> CheckpointReport:
    """Join the metrics' iterations with the kept checkpoints, the best-by verdicts and the survey."""
    names = {number: model.select(number).name for number in model.available_numbers()}
    best, last = _named(model, "best"), _named(model, "last")
    found = verdicts(model, run)
    shipments = [
        s
        for s in (survey.shipments if survey else [])
        if s.checkpoint is not None and (s.checkpoint in names.values() or (s.source is not None and same_model(s.source, model.location)))
    ]
    by_iteration = {iteration.checkpoint: iteration for iteration in run.iterations}
    rows = []
    for number in sorted(set(by_iteration) | set(names)):
        marks = [mark for mark, n in (("best", best), ("last", last)) if n == number]
        marks += [f"best-by {v.metric}" for v in found if v.checkpoint == number]
        shipped = tuple(s.profile for s in shipments if s.number == number)
        rows.append(Row(number, by_iteration.get(number), names.get(number), tuple(marks), shipped))
    notes = [f"iterations and checkpoints: {run.alignment.how}"]
    unevaluated = [str(n) for n in names if run.evaluation_of(n) is None]
    if unevaluated:
        notes.append(f"kept without evaluation episodes in the metrics: {', '.join(unevaluated)}")
    notes += survey.notes if survey else []
    return CheckpointReport(
        model=model.location,
        metrics_files=[f.url for f in run.files],
        best_model_metric=run.best_model_metric,
        alignment=run.alignment,
        rows=rows,
        best=best,
        last=last,
        verdicts=found,
        shipments=shipments,
        notes=notes,
    )


def report_for(client: Any, model: SourceModel, metrics_folder: str, survey: Survey | None = None) -> CheckpointReport:
    return build_report(model, load_run(client, model, metrics_folder), survey)
