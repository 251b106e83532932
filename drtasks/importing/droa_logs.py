"""What a DRoA model's training tells, read from DRoA's own files without pandas.

- ``training_summary``: the training metrics DRoA holds for a model (``trainingMetricsUrl``, or the
  ``metrics/training/`` file of a training-logs archive) per iteration, the way DRfC's
  ``droa-get-model --summary`` prints deepracer-utils' mean summary: training episodes with their
  mean reward and progress, and each iteration's evaluation.
- ``stability``: the simulation's step timing per iteration from the simtraces of a training-logs
  archive, as DRfC's ``droa-download-logs --summary`` prints deepracer-utils' stability summary:
  step deltas (``tstamp``) within episodes, leaving out the reset gap that arrives at a ``prepare``
  row and clock resets; the real-time factor where the trace has a wall clock.
"""

from __future__ import annotations

import csv
import io
import math
import re
import tarfile
from dataclasses import dataclass
from pathlib import Path

from drtasks.errors import DrtasksError
from drtasks.metrics import Alignment, Iteration, parse_metrics, summarize

_ITERATION_CSV = re.compile(r"(?:^|/)(\d+)-iteration\.csv$")
_WALL_CLOCK = ("wall_clock", "wallclock", "wall_time")


def training_summary(body: bytes, where: str) -> list[Iteration]:
    """Per iteration, from one metrics file in the simapp's format (DRoA's training metrics)."""
    metrics = parse_metrics(body, where, 0)
    return summarize([metrics], Alignment(0, "DRoA's training metrics, iterations counted from 0"))


def _members(archive: Path) -> tarfile.TarFile:
    try:
        return tarfile.open(archive, mode="r:gz")
    except (tarfile.TarError, OSError, EOFError) as error:
        raise DrtasksError(f"{archive}: not a readable .tar.gz ({error})") from None


def metrics_in_archive(archive: Path) -> tuple[str, bytes] | None:
    """(member name, content) of the training metrics file in a training-logs archive, if any."""
    with _members(archive) as tar:
        for member in tar:
            name = member.name
            if member.isfile() and "metrics/training/" in name and name.rsplit("/", 1)[-1].startswith("training-") and name.endswith(".json"):
                extracted = tar.extractfile(member)
                return name, extracted.read() if extracted else b""
    return None


@dataclass(frozen=True)
class StepTiming:
    label: str  # "<trace>/<iteration>"
    steps: int
    avg_ms: float
    max_ms: float
    p95_ms: float
    std_ms: float
    rtf: float | None  # simulated seconds per wall-clock second


@dataclass(frozen=True)
class Stability:
    rows: list[StepTiming]
    overall: StepTiming | None


def _percentile(sorted_values: list[float], share: float) -> float:
    position = (len(sorted_values) - 1) * share
    low, high = math.floor(position), math.ceil(position)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


def _deltas(rows: list[dict[str, str]]) -> tuple[list[float], float | None]:
    """Step deltas (s) within each episode, and the real-time factor when a wall clock is there."""
    episodes: dict[str, list[tuple[float, str]]] = {}
    wall: list[tuple[float, float]] = []
    wall_key = next((key for key in _WALL_CLOCK if rows and key in {k.lower() for k in rows[0]}), None)
    for row in rows:
        low = {k.lower(): v for k, v in row.items() if k}
        stamp = float(low["tstamp"])
        episodes.setdefault(low["episode"], []).append((stamp, (low.get("episode_status") or "").strip().lower()))
        if wall_key and (low.get(wall_key) or "").strip():
            try:
                wall.append((stamp, float(low[wall_key])))
            except ValueError:
                pass
    deltas: list[float] = []
    for steps in episodes.values():
        for (before, _), (after, status) in zip(steps, steps[1:]):
            if status != "prepare" and after - before >= 0:
                deltas.append(after - before)
    simulated = clock = 0.0
    for (s0, w0), (s1, w1) in zip(wall, wall[1:]):
        if s1 - s0 >= 0 and w1 - w0 > 0:
            simulated, clock = simulated + s1 - s0, clock + w1 - w0
    return deltas, (simulated / clock if clock > 0 else None)


def _timing(label: str, deltas: list[float], rtf: float | None) -> StepTiming:
    values = sorted(d * 1000 for d in deltas)
    mean = sum(values) / len(values)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))
    return StepTiming(label, len(values), mean, values[-1], _percentile(values, 0.95), std, rtf)


def stability(archive: Path) -> Stability:
    """Step timing per simtrace iteration file of a training-logs archive."""
    rows: list[StepTiming] = []
    traces: dict[str, int] = {}
    with _members(archive) as tar:
        members = sorted((m for m in tar if m.isfile() and _ITERATION_CSV.search(m.name)),
                         key=lambda m: (m.name.rsplit("/", 1)[0], int(_ITERATION_CSV.search(m.name).group(1))))  # type: ignore[union-attr]
        for member in members:
            folder = member.name.rsplit("/", 1)[0]
            trace = traces.setdefault(folder, len(traces))
            extracted = tar.extractfile(member)
            text = (extracted.read() if extracted else b"").decode("utf-8", errors="replace")
            reader = csv.DictReader(io.StringIO(text))
            missing = {"episode", "tstamp", "episode_status"} - {name.lower() for name in reader.fieldnames or []}
            if missing:
                raise DrtasksError(f"{archive}: {member.name} lacks the column(s) {', '.join(sorted(missing))}: not a simtrace")
            try:
                deltas, rtf = _deltas(list(reader))
            except (ValueError, KeyError) as error:
                raise DrtasksError(f"{archive}: {member.name}: unreadable simtrace row ({error})") from None
            if deltas:
                rows.append(_timing(f"{trace}/{_ITERATION_CSV.search(member.name).group(1)}", deltas, rtf))  # type: ignore[union-attr]
    if not rows:
        return Stability([], None)
    steps = sum(r.steps for r in rows)
    mean = sum(r.avg_ms * r.steps for r in rows) / steps
    # The variance of all deltas from each iteration's mean and variance.
    variance = sum((r.std_ms ** 2 + r.avg_ms ** 2) * r.steps for r in rows) / steps - mean ** 2
    rtfs = [r.rtf for r in rows if r.rtf is not None]
    overall = StepTiming("OVERALL", steps, mean, max(r.max_ms for r in rows), sum(r.p95_ms for r in rows) / len(rows),
                         math.sqrt(max(variance, 0.0)), sum(rtfs) / len(rtfs) if rtfs else None)
    return Stability(rows, overall)
