"""`inv checkpoints --plot FILE.png`: training and evaluation curves with the kept checkpoints marked.

matplotlib comes with the ``analysis`` extra; it is imported only here, only when a plot is asked for.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from drtasks.errors import DrtasksError

if TYPE_CHECKING:
    from drtasks.checkpoint_report import CheckpointReport

INSTALL_HINT = "pip install 'drtasks[analysis]'"


def check_plot_path(text: str) -> Path:
    """Refuse before any work a path the PNG could not be written to."""
    path = Path(text).expanduser()
    if path.suffix.lower() != ".png":
        raise DrtasksError(f"--plot {text}: the plot is a PNG; name the file <name>.png")
    if not path.parent.is_dir():
        raise DrtasksError(f"--plot {text}: folder {path.parent} does not exist")
    return path


def require_matplotlib() -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise DrtasksError(f"--plot needs matplotlib: {INSTALL_HINT}") from None


def _series(report: "CheckpointReport", phase: str, field: str) -> tuple[list[int], list[float]]:
    """The checkpoints where the report's frame has ``<phase>.<field>``, and those values."""
    present = [(row["checkpoint"], row[f"{phase}.{field}"]) for row in report.records() if row[f"{phase}.{field}"] is not None]
    return [x for x, _ in present], [y for _, y in present]


def _mark_kept(axis: Any, report: "CheckpointReport", label: bool) -> None:
    for row in report.kept:
        important = bool(row["marks"])
        axis.axvline(row["checkpoint"], color="tab:red" if important else "grey", linestyle=":", linewidth=1.2 if important else 0.8)
        if label:
            text = ", ".join([str(row["checkpoint"]), *row["marks"], *(f"shipped: {p}" for p in row["shipped"])])
            axis.annotate(
                text,
                (row["checkpoint"], 0.98),
                xycoords=("data", "axes fraction"),
                rotation=90,
                va="top",
                ha="right",
                fontsize=7,
                color="tab:red" if important else "grey",
                bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "none", "alpha": 0.8},
            )


def write_plot(report: "CheckpointReport", path: Path) -> int:
    """Write the PNG (atomically) and return its size in bytes."""
    require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    figure = Figure(figsize=(11, 8.5), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    progress, reward, laps = figure.subplots(3, 1, sharex=True)
    for axis, field, title, unit in (
        (progress, "progress", "mean progress", "%"),
        (reward, "reward", "mean reward", ""),
        (laps, "lap_time", "mean lap time of completed laps", "s"),
    ):
        for phase, colour, marker in (("training", "tab:blue", None), ("evaluation", "tab:orange", "o")):
            xs, ys = _series(report, phase, field)
            if xs:
                axis.plot(xs, ys, color=colour, marker=marker, markersize=3, linewidth=1.2, label=phase)
        axis.set_ylabel(f"{title} ({unit})" if unit else title, fontsize=8)
        axis.grid(alpha=0.3)
        _mark_kept(axis, report, label=axis is progress)
    progress.legend(loc="lower right", fontsize=8)
    laps.xaxis.set_major_locator(MaxNLocator(integer=True))  # checkpoints are whole numbers
    laps.set_xlabel("checkpoint (the iteration it drove and its evaluation)")
    figure.suptitle(f"{report.model.url}: kept checkpoints marked", fontsize=10)
    partial = path.with_name(path.name + ".part")
    try:
        figure.savefig(partial, format="png")
        os.replace(partial, path)  # never a half-written PNG under the final name
    except OSError as error:
        partial.unlink(missing_ok=True)
        raise DrtasksError(f"--plot {path}: cannot write ({error.strerror or error})") from None
    return path.stat().st_size
