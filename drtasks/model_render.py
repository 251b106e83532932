"""Tables and the compact terminal chart of `inv checkpoints` and `inv inventory`."""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any, Sequence

from rich import box
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


# (heading, right-aligned, the cell of a record); the training columns are the first to go when narrow
_IDENTITY = (
    ("iter", True, lambda r, reached: str(r["iteration"]) if reached else ""),
    ("ckpt", True, lambda r, reached: str(r["checkpoint"])),
    ("kept", False, lambda r, reached: "yes" if r["kept"] else ""),  # the names are in --json
)
_TRAINING = (
    ("train ep", True, lambda r, reached: str(r["training.episodes"]) if reached else ""),
    ("train reward", True, lambda r, reached: _num(r["training.reward"])),
    ("train progress", True, lambda r, reached: _num(r["training.progress"], 1, " %")),
)
_EVALUATION = (
    ("eval ep", True, lambda r, reached: str(r["evaluation.episodes"]) if reached else ""),
    ("eval progress", True, lambda r, reached: _num(r["evaluation.progress"], 1, " %")),
    ("eval reward", True, lambda r, reached: _num(r["evaluation.reward"])),
    ("laps", True, lambda r, reached: f"{r['evaluation.laps']}/{r['evaluation.episodes']}" if r["evaluation.episodes"] else ""),
    ("mean lap", True, lambda r, reached: _num(r["evaluation.lap_time"], 2, " s")),
    ("marks", False, lambda r, reached: ", ".join(list(r["marks"]) + ([f"shipped: {', '.join(r['shipped'])}"] if r["shipped"] else []))),
)


def checkpoints_table(report: "CheckpointReport", width: int | None = None) -> Table:
    """The report's frame as a table, one row per checkpoint (its records: None where nothing is known).

    Narrower than the whole table needs, the training columns are left out (and the caption says
    so) rather than every number cut short; ``--json`` has them all.
    """
    table = _table(report, (*_IDENTITY, *_TRAINING, *_EVALUATION))
    if width is None or _least_width(table) <= width:
        return table
    narrow = _table(report, (*_IDENTITY, *_EVALUATION))
    narrow.box = box.SIMPLE_HEAD  # no rules between the columns: their width goes to the values
    narrow.pad_edge = False
    narrow.caption = f"training columns left out at {width} columns: widen the terminal, or see --json"
    narrow.caption_justify = "left"
    return narrow


def _table(report: "CheckpointReport", columns: Sequence[tuple[str, bool, Any]]) -> Table:
    records = report.records()
    # A record reaches the metrics when it has an iteration; a kept checkpoint beyond them shows no counts.
    cells = [[cell(row, row["iteration"] is not None) for _heading, _right, cell in columns] for row in records]
    table = Table(title=f"checkpoints of {report.model.url}", title_justify="left")
    for index, (heading, right, _cell) in enumerate(columns):
        # Headings wrap, numbers never: a column is at least as wide as its widest value (marks: word).
        values = [row[index] for row in cells]
        pieces = [word for value in values for word in value.split()] if heading == "marks" else values
        table.add_column(heading, justify="right" if right else "left", min_width=max(map(len, pieces), default=0))
    for row, record in zip(cells, records):
        table.add_row(*row, style="bold" if record["kept"] else None)
    return table


def _least_width(table: Table) -> int:
    """The narrowest the table gets with every value whole (headings and marks wrap)."""
    import io

    from rich.console import Console

    return Console(file=io.StringIO(), width=1_000).measure(table).minimum


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


INVENTORY_COLUMNS = ("model", "kept", "best", "last", "model/ size", "last written", "shipped to", "backups")


def inventory_table(inventory: "Inventory", width: int | None = None) -> Table:
    """One row per model; in a window too narrow for that, one block of labelled lines per model, so
    that no prefix, number or URL is ever cut short."""
    rows = [_inventory_cells(model) for model in inventory.models]
    title = f"models in {inventory.bucket.url}"
    table = Table(title=title, title_justify="left")
    for column in INVENTORY_COLUMNS:
        folds = column in ("shipped to", "backups")  # long S3 urls; the rest stays on one line
        table.add_column(column, justify="right" if column == "model/ size" else "left", overflow="fold", no_wrap=not folds)
    for cells in rows:
        table.add_row(*cells)
    if width is None or _least_width(table) <= width:
        return table
    blocks = Table(title=title, title_justify="left", show_header=False, box=box.SIMPLE, pad_edge=False)
    blocks.add_column("field", style="dim", no_wrap=True)
    blocks.add_column("value", overflow="fold")
    for cells in rows:
        for index, (column, value) in enumerate(zip(INVENTORY_COLUMNS, cells)):
            if value or index == 0:
                blocks.add_row(column, value, style="bold" if index == 0 else None, end_section=index == len(cells) - 1)
    return blocks


def _inventory_cells(model: Any) -> tuple[str, ...]:
    metric = f" ({model.best_metric:g}{' ' + model.metric_name if model.metric_name else ''})" if model.best_metric is not None else ""
    shipped = [
        f"{s.profile}: {s.number if s.number is not None else s.checkpoint}"
        + ("" if s.checkpoint in model.kept.values() else " (no longer kept)")
        + f" at {s.target.url}"
        for s in model.shipped
    ]
    return (
        model.location.prefix or "(bucket root)",
        ", ".join(map(str, model.kept)) or "none",
        f"{_number_of(model.best)}{metric}",
        _number_of(model.last),
        human(model.model_bytes),
        _when(model.last_written),
        "\n".join(shipped),
        "\n".join(f"{b.url} ({len(b.checkpoints)} checkpoint{'' if len(b.checkpoints) == 1 else 's'})" for b in model.backups),
    )
