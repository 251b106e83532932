"""`inv checkpoints` as a value: the model's training per iteration, its kept checkpoints, what
best-by would choose for each metric, and which checkpoint each profile's upload target holds.

The table is a pandas DataFrame: the iterations (drtasks.metrics' per-iteration Stats, the one
aggregation of the metrics) merged on the checkpoint number with the checkpoints the model's files
name (kept, best, last, best-by winners, held by a profile's upload target). The rich table, the
chart, `--json` and `--plot` all read that frame's records. pandas is imported only here and only
when a report is built: `inv upload --best-by` reads the metrics without it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from drtasks.checkpoint_choice import best_by, candidates, load_run
from drtasks.config.targets import BEST_BY_METRICS
from drtasks.errors import DrtasksError
from drtasks.inventory import Shipment, Survey, same_model
from drtasks.metrics import Alignment, Stats, TrainingRun
from drtasks.model import SourceModel, checkpoint_number
from drtasks.s3 import S3Location

if TYPE_CHECKING:
    import pandas as pd

PHASES = ("training", "evaluation")
STATS = tuple(Stats.of([]).as_dict())  # episodes, reward, progress, laps, lap_time, best_lap
COUNTS = ("episodes", "laps")  # zero, not unknown, for a checkpoint no iteration reaches
# The frame's columns in order; "<phase>.<stat>" nests in the JSON as {"<phase>": {"<stat>": ...}}.
STAT_COLUMNS = tuple(f"{phase}.{stat}" for phase in PHASES for stat in STATS)
COLUMNS = ("iteration", "checkpoint", "name", "kept", "marks", "shipped", *STAT_COLUMNS)


@dataclass(frozen=True)
class Verdict:
    """What best-by METRIC chooses, or why it cannot."""

    metric: str
    checkpoint: int | None
    reason: str


def records_of(table: "pd.DataFrame") -> list[dict[str, Any]]:
    """The frame's rows as plain dicts: None where a value is missing, ints as ints, lists as lists."""
    import pandas as pd

    def plain(value: Any) -> Any:
        if isinstance(value, list):
            return list(value)
        if pd.isna(value):  # NaN, NA, None
            return None
        return value.item() if hasattr(value, "item") else value  # numpy int64/float64/bool_ -> Python

    return [{column: plain(value) for column, value in zip(table.columns, row)} for row in table.itertuples(index=False, name=None)]


def nested(record: dict[str, Any]) -> dict[str, Any]:
    """A flat record with the phases' stats as the JSON nests them."""
    out: dict[str, Any] = {}
    for key, value in record.items():
        phase, _, stat = key.partition(".")
        if stat:
            out.setdefault(phase, {})[stat] = value
        else:
            out[key] = value
    return out


@dataclass
class CheckpointReport:
    model: S3Location
    metrics_files: list[str]
    best_model_metric: str | None
    alignment: Alignment
    table: "pd.DataFrame"  # one row per checkpoint (COLUMNS), sorted by checkpoint
    best: int | None
    last: int | None
    verdicts: list[Verdict]
    shipments: list[Shipment]
    notes: list[str] = field(default_factory=list)
    _records: list[dict[str, Any]] | None = field(default=None, init=False, repr=False, compare=False)

    def records(self) -> list[dict[str, Any]]:
        """The table's rows as flat dicts (keys COLUMNS), None where a value is missing."""
        if self._records is None:
            self._records = records_of(self.table)
        return self._records

    @property
    def kept(self) -> list[dict[str, Any]]:
        return [row for row in self.records() if row["kept"]]

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model.url,
            "endpoint": self.model.endpoint_url,
            "metrics": self.metrics_files,
            "best_model_metric": self.best_model_metric,
            "alignment": {"offset": self.alignment.offset, "how": self.alignment.how},
            "kept": [row["checkpoint"] for row in self.kept],
            "best": self.best,
            "last": self.last,
            "best_by": {v.metric: {"checkpoint": v.checkpoint, "reason": v.reason} for v in self.verdicts},
            "shipped": [s.as_dict() for s in self.shipments],
            "iterations": [nested(row) for row in self.records()],
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


def iterations_frame(run: TrainingRun) -> "pd.DataFrame":
    """One row per iteration: the checkpoint that drove it, its training and its evaluation."""
    import pandas as pd

    rows = [
        {
            "iteration": it.number,
            "checkpoint": it.checkpoint,
            **{f"{phase}.{stat}": value for phase in PHASES for stat, value in getattr(it, phase).as_dict().items()},
        }
        for it in run.iterations
    ]
    frame = pd.DataFrame(rows, columns=["iteration", "checkpoint", *STAT_COLUMNS])
    return frame.astype({"iteration": "int64", "checkpoint": "int64", **{f"{p}.{c}": "int64" for p in PHASES for c in COUNTS}})


def checkpoints_frame(names: dict[int, str], marks: dict[int, list[str]], shipped: dict[int, list[str]]) -> "pd.DataFrame":
    """One row per checkpoint the model's files name: kept (with its name), marked, or shipped."""
    import pandas as pd

    numbers = sorted(set(names) | set(marks) | set(shipped))
    return pd.DataFrame(
        {
            "checkpoint": pd.Series(numbers, dtype="int64"),
            "name": pd.Series([names.get(n) for n in numbers], dtype=object),
            "kept": pd.Series([n in names for n in numbers], dtype=bool),
            "marks": pd.Series([marks.get(n, []) for n in numbers], dtype=object),
            "shipped": pd.Series([shipped.get(n, []) for n in numbers], dtype=object),
        }
    )


def join(iterations: "pd.DataFrame", checkpoints: "pd.DataFrame") -> "pd.DataFrame":
    """The report's table: an outer merge on the checkpoint, so neither side loses a row."""
    table = iterations.merge(checkpoints, on="checkpoint", how="outer", sort=True)
    table["iteration"] = table["iteration"].astype("Int64")  # a checkpoint beyond the metrics has none
    table["kept"] = table["kept"].fillna(False).astype(bool)
    for column in ("marks", "shipped"):
        table[column] = [value if isinstance(value, list) else [] for value in table[column]]
    table["name"] = table["name"].astype(object).where(table["name"].notna(), None)
    for phase in PHASES:
        for count in COUNTS:
            table[f"{phase}.{count}"] = table[f"{phase}.{count}"].fillna(0).astype("int64")
    return table[list(COLUMNS)].sort_values("checkpoint", kind="stable").reset_index(drop=True)


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
    marks: dict[int, list[str]] = {}
    for mark, number in (("best", best), ("last", last)):
        if number is not None:
            marks.setdefault(number, []).append(mark)
    for verdict in found:
        if verdict.checkpoint is not None:
            marks.setdefault(verdict.checkpoint, []).append(f"best-by {verdict.metric}")
    shipped: dict[int, list[str]] = {}
    for shipment in shipments:
        if shipment.number is not None:
            shipped.setdefault(shipment.number, []).append(shipment.profile)
    table = join(iterations_frame(run), checkpoints_frame(names, marks, shipped))
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
        table=table,
        best=best,
        last=last,
        verdicts=found,
        shipments=shipments,
        notes=notes,
    )


def report_for(client: Any, model: SourceModel, metrics_folder: str, survey: Survey | None = None) -> CheckpointReport:
    return build_report(model, load_run(client, model, metrics_folder), survey)
