"""Training metrics: TrainingMetrics*.json read, merged across workers, summarised per iteration.

What the simapp writes (markov/metrics/s3_metrics.py and rollout_worker.py):

- Worker 0 writes ``TrainingMetrics.json``, worker n > 0 ``TrainingMetrics_<n>.json``; each file is
  ``{"metrics": [entry, ...], "version": ..., "best_model_metric": "progress|reward|laptime"}`` and
  is rewritten after every episode. Only worker 0 evaluates.
- An iteration starts when the rollout enters its training phase: ``trial`` restarts at 1 and
  counts the worker's training episodes of the iteration while ``episode`` counts on over the run.
  Worker 0 then evaluates (at least MIN_EVAL_TRIALS episodes, more while the trainer works); an
  evaluation entry repeats the ``episode`` and ``trial`` of the last training entry. So a training
  entry whose trial does not continue the previous one opens the next iteration, and evaluation
  entries belong to the iteration they follow.
- Iteration i is driven by the checkpoint the rollout loaded before it, and its evaluation measures
  that checkpoint; the trainer makes the next checkpoint from its training episodes. A fresh run
  starts at checkpoint 0, a run continued from a pretrained model at the pretrained one's number + 1.
  When the next iteration starts, the simapp records the evaluation in deepracer_checkpoints.json,
  with the simulation time of that moment as ``time_stamp``: that time anchors which checkpoint
  iteration 0 was (``align``).

deepracer-utils' ``TrainingMetrics`` reads the same files, but through its own boto3 resource (not
drtasks' endpoints and credentials files), prints to stdout, sizes every worker's iterations by
worker 0's largest trial, and imports pandas and matplotlib at import time. This reader is plain
Python, so `inv upload --best-by` needs nothing beyond the base install; the tests check that both
readers agree on the same files.
"""

from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Iterable

from drtasks.errors import DrtasksError
from drtasks.s3 import ObjectInfo, S3Location, list_folder_files, read_proven, s3_errors

METRICS_FILE = re.compile(r"^TrainingMetrics(?:_(\d+))?\.json$")
LAP_COMPLETE = "Lap complete"
_REQUIRED = ("episode", "trial", "phase", "completion_percentage", "elapsed_time_in_milliseconds", "episode_status", "reward_score")
_STAMP_SLACK_MS = 5  # time_stamp is the float clock, metric_time its rounded milliseconds
# The physics pause while the rollout waits for the trainer, so the switch to the next iteration
# comes at most this long (simulation time) after the last evaluation: a time_stamp far beyond
# (a wall-clock time, say) anchors nothing.
_FINAL_SWITCH_MS = 120_000


@dataclass(frozen=True)
class Episode:
    worker: int
    iteration: int  # 0-based, in the order the worker ran them
    episode: int
    trial: int
    phase: str  # "training" or "evaluation"
    reward: float
    progress: float  # completion_percentage
    elapsed_ms: int
    status: str
    start_ms: int | None
    end_ms: int | None

    @property
    def completed(self) -> bool:
        return self.status == LAP_COMPLETE


@dataclass(frozen=True)
class MetricsFile:
    url: str
    worker: int
    best_model_metric: str | None
    episodes: list[Episode]

    @property
    def iterations(self) -> int:
        return self.episodes[-1].iteration + 1 if self.episodes else 0


def worker_of(name: str) -> int | None:
    """0 for TrainingMetrics.json, n for TrainingMetrics_<n>.json, None for any other file name."""
    match = METRICS_FILE.match(name)
    if not match:
        return None
    return int(match.group(1)) if match.group(1) else 0


def _number(entry: dict[str, Any], key: str, where: str) -> float:
    value = entry.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise DrtasksError(f"{where}: '{key}' is {value!r}, not a number")
    return value


def parse_metrics(body: bytes, url: str, worker: int) -> MetricsFile:
    """One metrics file; iterations numbered where training trials restart."""
    try:
        data = json.loads(body)
    except ValueError as error:
        raise DrtasksError(f"{url}: not valid JSON ({error})") from None
    entries = data.get("metrics") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise DrtasksError(f"{url}: no 'metrics' list: not a TrainingMetrics file")
    episodes: list[Episode] = []
    iteration, previous_trial = -1, None
    for position, entry in enumerate(entries):
        where = f"{url}: entry {position}"
        if not isinstance(entry, dict):
            raise DrtasksError(f"{where} is not an object")
        missing = [key for key in _REQUIRED if key not in entry]
        if missing:
            raise DrtasksError(f"{where} has no {', '.join(repr(k) for k in missing)}")
        phase = entry["phase"]
        if phase not in ("training", "evaluation"):
            raise DrtasksError(f"{where}: phase {phase!r} is neither 'training' nor 'evaluation'")
        trial = int(_number(entry, "trial", where))
        if phase == "training" and (previous_trial is None or trial != previous_trial + 1):
            iteration += 1
        if phase == "training":
            previous_trial = trial
        episodes.append(
            Episode(
                worker=worker,
                iteration=max(iteration, 0),
                episode=int(_number(entry, "episode", where)),
                trial=trial,
                phase=phase,
                reward=float(_number(entry, "reward_score", where)),
                progress=float(_number(entry, "completion_percentage", where)),
                elapsed_ms=int(_number(entry, "elapsed_time_in_milliseconds", where)),
                status=str(entry["episode_status"]),
                start_ms=int(entry["start_time"]) if isinstance(entry.get("start_time"), (int, float)) else None,
                end_ms=int(entry["metric_time"]) if isinstance(entry.get("metric_time"), (int, float)) else None,
            )
        )
    metric = data.get("best_model_metric")
    return MetricsFile(url, worker, metric if isinstance(metric, str) else None, episodes)


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


@dataclass(frozen=True)
class Stats:
    """Means over a set of episodes; the lap time only over completed laps."""

    episodes: int
    reward: float | None
    progress: float | None
    laps: int
    lap_time: float | None  # mean seconds of the completed laps
    best_lap: float | None

    @classmethod
    def of(cls, episodes: Iterable[Episode]) -> "Stats":
        chosen = list(episodes)
        laps = [e.elapsed_ms / 1000 for e in chosen if e.completed]
        return cls(
            episodes=len(chosen),
            reward=_mean([e.reward for e in chosen]),
            progress=_mean([e.progress for e in chosen]),
            laps=len(laps),
            lap_time=_mean(laps),
            best_lap=min(laps) if laps else None,
        )

    def as_dict(self) -> dict[str, Any]:
        def rounded(value: float | None, digits: int) -> float | None:
            return None if value is None else round(value, digits)

        return {
            "episodes": self.episodes,
            "reward": rounded(self.reward, 2),
            "progress": rounded(self.progress, 2),
            "laps": self.laps,
            "lap_time": rounded(self.lap_time, 3),
            "best_lap": rounded(self.best_lap, 3),
        }


@dataclass(frozen=True)
class Iteration:
    number: int  # 0-based
    checkpoint: int  # the checkpoint that drove it and that its evaluation measured
    training: Stats
    evaluation: Stats


@dataclass(frozen=True)
class Alignment:
    """Iteration i was driven by checkpoint ``i + offset``; ``how`` says how that was found."""

    offset: int
    how: str


@dataclass
class TrainingRun:
    files: list[MetricsFile]
    alignment: Alignment
    iterations: list[Iteration] = field(default_factory=list)

    @property
    def best_model_metric(self) -> str | None:
        return next((f.best_model_metric for f in self.files if f.best_model_metric), None)

    def evaluation_of(self, checkpoint: int) -> Stats | None:
        """The evaluation of ``checkpoint``, or None when the metrics hold none."""
        index = checkpoint - self.alignment.offset
        if 0 <= index < len(self.iterations) and self.iterations[index].evaluation.episodes:
            return self.iterations[index].evaluation
        return None


def _evaluator(files: list[MetricsFile]) -> MetricsFile | None:
    """The file of the evaluating worker (worker 0), recognised by its evaluation entries."""
    with_evaluations = [f for f in files if any(e.phase == "evaluation" for e in f.episodes)]
    return min(with_evaluations, key=lambda f: f.worker) if with_evaluations else None


def _iteration_at(evaluator: MetricsFile, stamp_ms: float) -> int | None:
    """The iteration whose evaluation the simapp recorded at ``stamp_ms`` (simulation clock).

    The record is written when the next iteration's training starts: after the iteration's last
    evaluation ended and before the next one's first episode started. Before any episode, it names
    the checkpoint about to drive iteration 0.
    """
    first: dict[int, int] = {}
    last_evaluation: dict[int, int] = {}
    for episode in evaluator.episodes:
        if episode.start_ms is None or episode.end_ms is None:
            return None
        first.setdefault(episode.iteration, episode.start_ms)
        if episode.phase == "evaluation":
            last_evaluation[episode.iteration] = episode.end_ms
    if not first:
        return None
    if first[0] - _FINAL_SWITCH_MS <= stamp_ms <= first[0] + _STAMP_SLACK_MS:
        return 0
    for iteration, ended in sorted(last_evaluation.items()):
        following = first.get(iteration + 1)
        until = following + _STAMP_SLACK_MS if following is not None else ended + _FINAL_SWITCH_MS
        if ended - _STAMP_SLACK_MS <= stamp_ms <= until:
            return iteration
    return None


def align(files: list[MetricsFile], index: dict[str, Any] | None) -> Alignment:
    """Which checkpoint drove iteration 0, from deepracer_checkpoints.json and the metrics' clock."""
    from drtasks.model import checkpoint_number

    evaluator = _evaluator(files)
    entries = [(which, index.get(f"{which}_checkpoint")) for which in ("last", "best")] if isinstance(index, dict) else []
    named = [(which, e) for which, e in entries if isinstance(e, dict) and isinstance(e.get("name"), str)]
    for which, entry in named:
        stamp = entry.get("time_stamp")
        if evaluator is None or isinstance(stamp, bool) or not isinstance(stamp, (int, float)):
            continue
        try:
            number = checkpoint_number(entry["name"])
        except DrtasksError:
            continue
        iteration = _iteration_at(evaluator, stamp * 1000)
        if iteration is not None:
            return Alignment(
                number - iteration,
                f"{which}_checkpoint {entry['name']} was recorded when iteration {iteration}'s evaluation ended",
            )
    if evaluator is not None:
        evaluated = sorted({e.iteration for e in evaluator.episodes if e.phase == "evaluation"})
        for which, entry in named:
            try:
                number = checkpoint_number(entry["name"])
            except DrtasksError:
                continue
            if which == "last" and evaluated:
                return Alignment(
                    number - evaluated[-1],
                    f"assumed: last_checkpoint {entry['name']} is the last evaluated iteration ({evaluated[-1]}); "
                    "its time_stamp does not match the metrics' clock",
                )
    return Alignment(0, "assumed: iteration i was driven by checkpoint i (nothing in deepracer_checkpoints.json to anchor it)")


def summarize(files: list[MetricsFile], alignment: Alignment) -> list[Iteration]:
    """Per iteration, training over every worker and evaluation (worker 0's) of its checkpoint."""
    training: dict[int, list[Episode]] = {}
    evaluation: dict[int, list[Episode]] = {}
    for metrics_file in files:
        for episode in metrics_file.episodes:
            (training if episode.phase == "training" else evaluation).setdefault(episode.iteration, []).append(episode)
    count = max((f.iterations for f in files), default=0)
    return [
        Iteration(i, i + alignment.offset, Stats.of(training.get(i, [])), Stats.of(evaluation.get(i, [])))
        for i in range(count)
    ]


def metrics_keys(names: Iterable[str]) -> list[str]:
    """The TrainingMetrics files among ``names`` (keys directly in the metrics folder), worker 0 first."""
    found = [(worker, name) for name in names if (worker := worker_of(name.rsplit("/", 1)[-1])) is not None]
    return [name for _, name in sorted(found)]


def list_metrics(client: Any, location: S3Location, folder: str, listed: Iterable[ObjectInfo] | None = None) -> list[str]:
    """Full keys of the metrics files in ``folder`` (a full key prefix without the trailing '/').

    ``listed``: what a listing of the folder already gave, else the folder's own files are listed.
    """
    head = folder.strip("/") + "/"
    if listed is None:
        with s3_errors(location.with_prefix(folder)):
            listed = list(list_folder_files(client, location.bucket, folder))
    return metrics_keys(o.key for o in listed if o.key.startswith(head) and "/" not in o.key[len(head) :])


def load_run(
    client: Any, location: S3Location, folder: str, index: dict[str, Any] | None, listed: Iterable[ObjectInfo] | None = None
) -> TrainingRun:
    """Read every worker's metrics file under ``folder`` and summarise the run."""
    keys = list_metrics(client, location, folder, listed)
    if not keys:
        raise DrtasksError(
            f"no training metrics in s3://{location.bucket}/{folder.strip('/')}/ (TrainingMetrics.json): "
            "without them no checkpoint can be judged by its evaluation"
        )

    def read(key: str) -> MetricsFile:
        with s3_errors(location.with_prefix(key)):
            body = read_proven(client, location.bucket, key)
        return parse_metrics(body, f"s3://{location.bucket}/{key}", worker_of(key.rsplit("/", 1)[-1]) or 0)

    with ThreadPoolExecutor(min(4, len(keys))) as pool:
        files = list(pool.map(read, keys))
    alignment = align(files, index)
    return TrainingRun(files, alignment, summarize(files, alignment))
