"""Which checkpoint to ship, with one line saying why.

- ``last`` / ``best``: what the model's deepracer_checkpoints.json names (best is the simapp's own
  choice, by its DR_TRAIN_BEST_MODEL_METRIC, among every checkpoint it ever evaluated).
- a number: that checkpoint, when it is kept.
- ``best-by:METRIC``: the kept checkpoints ranked by their own evaluation episodes in the training
  metrics: ``progress`` (highest mean completion), ``reward`` (highest mean reward) or ``laptime``
  (lowest mean lap time, counting only completed laps: a checkpoint without a completed lap is
  out). Ties go to the later checkpoint, as in the simapp. A kept checkpoint without evaluation
  episodes (saved after the last evaluation) cannot win and the reason says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from drtasks.config import targets
from drtasks.config.settings import Settings
from drtasks.config.targets import BestBy, CheckpointPolicy
from drtasks.errors import DrtasksError
from drtasks.model import CHECKPOINT_INDEX, Checkpoint, SourceModel

if TYPE_CHECKING:  # the metrics reader loads only when best-by needs it
    from drtasks.metrics import Stats, TrainingRun
    from drtasks.s3 import ObjectInfo

Listing = Callable[[], "list[ObjectInfo]"]


@dataclass(frozen=True)
class Choice:
    checkpoint: Checkpoint
    reason: str  # one line for people and for the plan's notes


@dataclass(frozen=True)
class Candidate:
    number: int
    evaluation: "Stats | None"


def _value(candidate: Candidate, metric: str) -> float | None:
    evaluation = candidate.evaluation
    if evaluation is None:
        return None
    return {"progress": evaluation.progress, "reward": evaluation.reward, "laptime": evaluation.lap_time}[metric]


def _shown(candidate: Candidate, metric: str) -> str:
    value = _value(candidate, metric)
    if value is None:
        if candidate.evaluation is None:
            return "no evaluation episodes"
        return f"no completed lap in {candidate.evaluation.episodes} evaluation episodes"
    return {"progress": f"{value:.1f} %", "reward": f"{value:.1f}", "laptime": f"{value:.2f} s"}[metric]


def _evidence(candidate: Candidate, metric: str) -> str:
    evaluation = candidate.evaluation
    assert evaluation is not None
    if metric == "laptime":
        laps = "lap" if evaluation.laps == 1 else "laps"
        return f"mean lap {evaluation.lap_time:.2f} s over {evaluation.laps} completed evaluation {laps}"
    what = "progress" if metric == "progress" else "reward"
    episodes = "episode" if evaluation.episodes == 1 else "episodes"
    return f"mean evaluation {what} {_shown(candidate, metric)} over {evaluation.episodes} {episodes}"


def best_by(candidates: list[Candidate], metric: str) -> tuple[int, str]:
    """The winning checkpoint number and the reason, from the evaluation of each candidate."""
    scored = [c for c in candidates if _value(c, metric) is not None]
    if not scored:
        what = "a completed evaluation lap" if metric == "laptime" else "evaluation episodes"
        details = ", ".join(f"{c.number}: {_shown(c, metric)}" for c in candidates) or "no kept checkpoints"
        raise DrtasksError(f"best-by {metric}: no kept checkpoint has {what} ({details})")
    lower_wins = metric == "laptime"
    # Ties go to the later checkpoint, as the simapp's >= / <= comparisons do.
    ranked = sorted(scored, key=lambda c: ((_value(c, metric) or 0.0) * (1 if lower_wins else -1), -c.number))
    winner = ranked[0]
    others = [f"{c.number}: {_shown(c, metric)}" for c in ranked[1:]]
    others += [f"{c.number}: {_shown(c, metric)}" for c in candidates if c not in scored]
    tail = f"; {', '.join(others)}" if others else ""
    return winner.number, f"best-by {metric}: checkpoint {winner.number} ({_evidence(winner, metric)}{tail})"


def candidates(model: SourceModel, run: "TrainingRun") -> list[Candidate]:
    return [Candidate(number, run.evaluation_of(number)) for number in model.available_numbers()]


def load_run(client: Any, model: SourceModel, metrics_folder: str, listed: "Listing | None" = None) -> "TrainingRun":
    """The model's training metrics (``metrics_folder``: a full key prefix, DR_LOCAL_S3_METRICS_PREFIX).

    ``listed`` answers what the metrics folder holds when a listing was started ahead of time.
    """
    from drtasks.metrics import load_run as _load_run

    return _load_run(client, model.location, metrics_folder, model.index, listed() if listed else None)


def _from_index(model: SourceModel, which: str) -> Choice:
    checkpoint = model.select(which)
    metric = checkpoint.entry.get("avg_eval_metric", checkpoint.entry.get("avg_comp_pct"))
    shown = f", avg_eval_metric {metric:g}" if isinstance(metric, (int, float)) and not isinstance(metric, bool) else ""
    return Choice(checkpoint, f"{which}: checkpoint {checkpoint.number} ({which}_checkpoint of {CHECKPOINT_INDEX}{shown})")


def choose(client: Any, model: SourceModel, policy: CheckpointPolicy, metrics_folder: str, listed: "Listing | None" = None) -> Choice:
    """The checkpoint for ``policy``; only best-by reads the training metrics."""
    if policy in ("last", "best"):
        return _from_index(model, str(policy))
    if isinstance(policy, BestBy):
        number, reason = best_by(candidates(model, load_run(client, model, metrics_folder, listed)), policy.metric)
        return Choice(model.select(number), reason)
    checkpoint = model.select(int(policy))
    return Choice(checkpoint, f"checkpoint {checkpoint.number} (chosen by number)")


def choose_for(settings: Settings, client: Any, model: SourceModel, listed: "Listing | None" = None) -> Choice:
    """``choose`` with the policy and metrics folder of ``settings``; the reason names where the policy came from."""
    choice = choose(client, model, targets.checkpoint_policy(settings), targets.metrics_prefix(settings), listed)
    origin = settings.origin("DR_UPLOAD_CHECKPOINT")
    if origin is None or origin.layer == "default":
        return choice
    return Choice(choice.checkpoint, f"{choice.reason}; policy from {origin}")
