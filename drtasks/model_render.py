"""Tables and the compact terminal chart of `inv checkpoints` and `inv inventory`."""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any, Sequence

from rich.table import Table
from rich.text import Text

from drtasks.render import human

if TYPE_CHECKING:
    from drtasks.checkpoint_report import CheckpointReport
    from drtasks.inventory import Inventory

_BARS = "▁▂▃▄▅▆▇█"
_LABEL = 22


def _num(value: float | None, digits: int = 1, unit: str = "") -> str:
    return "" if value is None else f"{value:.{digits}f}{unit}"


def checkpoints_table(report: "CheckpointReport") -> Table:
    """The report's frame as a table, one row per checkpoint (its records: None where nothing is known)."""
    table = Table(title=f"checkpoints of {report.model.url}", title_justify="left")
    for column, right in (
        ("iter", True), ("ckpt", True), ("kept", False),
        ("train ep", True), ("train reward", True), ("train progress", True),
        ("eval ep", True), ("eval progress", True), ("eval reward", True), ("laps", True), ("mean lap", True),
        ("marks", False),
    ):  # fmt: skip
        table.add_column(column, justify="right" if right else "left")
    for row in report.records():
        reached = row["iteration"] is not None  # a kept checkpoint beyond the metrics shows no counts
        marks = list(row["marks"]) + ([f"shipped: {', '.join(row['shipped'])}"] if row["shipped"] else [])
        table.add_row(
            str(row["iteration"]) if reached else "",
            str(row["checkpoint"]),
            "yes" if row["kept"] else "",  # the names are in --json
            str(row["training.episodes"]) if reached else "",
            _num(row["training.reward"]),
            _num(row["training.progress"], 1, " %"),
            str(row["evaluation.episodes"]) if reached else "",
            _num(row["evaluation.progress"], 1, " %"),
            _num(row["evaluation.reward"]),
            f"{row['evaluation.laps']}/{row['evaluation.episodes']}" if row["evaluation.episodes"] else "",
            _num(row["evaluation.lap_time"], 2, " s"),
            ", ".join(marks),
            style="bold" if row["kept"] else None,
        )
    return table


def verdict_lines(report: "CheckpointReport") -> list[str]:
    """One line per best-by metric: its choice and why, or why it cannot choose."""
    return [v.reason for v in report.verdicts]


def _buckets(count: int, width: int) -> list[range]:
    """``count`` iterations spread over at most ``width`` columns."""
    columns = max(1, min(count, width))
    return [range(count * c // columns, count * (c + 1) // columns) for c in range(columns)]


def sparkline(values: Sequence[float | None], buckets: list[range], low: float, high: float) -> str:
    """One character per bucket: the bucket's mean on a fixed scale, blank without data."""
    line = []
    for bucket in buckets:
        present = [values[i] for i in bucket if values[i] is not None]
        if not present:
            line.append(" ")
            continue
        mean = sum(present) / len(present)  # type: ignore[arg-type]
        share = 0.0 if high <= low else min(1.0, max(0.0, (mean - low) / (high - low)))
        line.append(_BARS[round(share * (len(_BARS) - 1))])
    return "".join(line)


def chart(report: "CheckpointReport", width: int) -> Text:
    """A few lines: evaluation and training progress, evaluation laps, and where the kept checkpoints are."""
    rows = report.records()
    if not rows:
        return Text("")
    buckets = _buckets(len(rows), max(10, width - _LABEL - 1))

    def share_of_laps(row: dict[str, Any]) -> float | None:
        episodes = row["evaluation.episodes"]
        return row["evaluation.laps"] / episodes if episodes else None

    lines = [
        ("eval progress %", sparkline([r["evaluation.progress"] for r in rows], buckets, 0, 100)),
        ("train progress %", sparkline([r["training.progress"] for r in rows], buckets, 0, 100)),
        ("eval laps completed", sparkline([share_of_laps(r) for r in rows], buckets, 0, 1)),
    ]
    marker = []
    for bucket in buckets:
        inside = [rows[i] for i in bucket]
        marker.append(
            "B" if any("best" in r["marks"] for r in inside)
            else "L" if any("last" in r["marks"] for r in inside)
            else "▲" if any(r["kept"] for r in inside)
            else " "
        )  # fmt: skip
    lines.append(("kept checkpoints", "".join(marker)))
    text = Text()
    for label, line in lines:
        text.append(f"{label:<{_LABEL}}", style="dim")
        text.append(line + "\n", style="bold" if label == "kept checkpoints" else "cyan")
    first, last = rows[0]["checkpoint"], rows[-1]["checkpoint"]
    text.append(f"{'':<{_LABEL}}checkpoints {first}..{last}; ▲ kept, B best, L last\n", style="dim")
    return text


def _when(stamp: float) -> str:
    if not stamp:
        return ""
    return datetime.datetime.fromtimestamp(stamp, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _number_of(name: str | None) -> str:
    """The checkpoint number of a name such as 13_Step-5137.ckpt (the table is narrow; JSON has names)."""
    return (name or "").split("_", 1)[0]


def inventory_table(inventory: "Inventory") -> Table:
    table = Table(title=f"models in {inventory.bucket.url}", title_justify="left")
    for column in ("model", "kept", "best", "last", "model/ size", "last written", "shipped to", "backups"):
        folds = column in ("shipped to", "backups")  # long S3 urls; the rest stays on one line
        table.add_column(column, justify="right" if column == "model/ size" else "left", overflow="fold", no_wrap=not folds)
    for model in inventory.models:
        metric = f" ({model.best_metric:g}{' ' + model.metric_name if model.metric_name else ''})" if model.best_metric is not None else ""
        shipped = [
            f"{s.profile}: {s.number if s.number is not None else s.checkpoint}"
            + ("" if s.checkpoint in model.kept.values() else " (no longer kept)")
            + f" at {s.target.url}"
            for s in model.shipped
        ]
        table.add_row(
            model.location.prefix or "(bucket root)",
            ", ".join(map(str, model.kept)) or "none",
            f"{_number_of(model.best)}{metric}",
            _number_of(model.last),
            human(model.model_bytes),
            _when(model.last_written),
            "\n".join(shipped),
            "\n".join(f"{b.url} ({len(b.checkpoints)} checkpoint{'' if len(b.checkpoints) == 1 else 's'})" for b in model.backups),
        )
    return table
