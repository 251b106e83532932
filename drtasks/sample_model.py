"""Write a realistic DRfC-trained model into S3: the layout, names and file shapes of a real run.

Used by the tests, the benchmark and ``inv demo``. The text files (JSON, YAML, CSV, the reward
function) have the shape the simapp and DRfC write. The binary files of each checkpoint (its
data, index, meta and frozen graph) come from a ``ModelFiles`` provider:

- ``SampleFiles`` (default), fast and TensorFlow-free, at any size: the checkpoint files are
  deterministic pseudo-random bytes (nothing drtasks does reads them), the frozen graph a real
  DeepRacer policy graph for the metadata with pseudo-random weights (``drtasks.sample_graph``),
  because drtasks checks every graph it ships against the metadata;
- ``drtasks.real_model``'s real TensorFlow checkpoints and frozen graphs (test extra).
"""

from __future__ import annotations

import hashlib
import io
import json
import random
import statistics
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Protocol, Union

KIB = 1024
MIB = 1024 * KIB

# Seconds since the epoch of the first simulated iteration (simtrace time stamps, real_model's entries).
EPOCH = 1_700_000_000.0
_STEER = (-30.0, -15.0, 0.0, 15.0, 30.0)
_SPEEDS = (1.0, 2.0, 3.0)
CHECKPOINT_SUFFIXES = ("data-00000-of-00001", "index", "meta")

# A file's content: bytes in memory, or a file on disk (large real checkpoints stay there).
Body = Union[bytes, Path]


@dataclass(frozen=True)
class SeededCheckpoint:
    """One kept checkpoint: its number N, name ``N_Step-M.ckpt`` and its keys (relative to the prefix)."""

    number: int
    step: int
    name: str
    keys: tuple[str, ...]
    pb_key: str
    pb_sha256: str
    avg_eval_metric: float | None  # None: saved after the last evaluation
    time_stamp: float  # simulation time (s) its evaluation was recorded

    def entry(self) -> dict[str, Any]:
        """The checkpoint's entry as deepracer_checkpoints.json holds it."""
        return {"name": self.name, "avg_eval_metric": self.avg_eval_metric, "time_stamp": self.time_stamp}


@dataclass(frozen=True)
class SeededModel:
    """Everything ``seed_model`` wrote. Keys in ``objects`` are full keys in ``bucket``."""

    bucket: str
    prefix: str
    reward_key: str  # full key of the reward function that applies (root one when present)
    custom_reward_key: str  # full key of the custom_files reward function
    checkpoints: dict[int, SeededCheckpoint]
    best: int
    last: int
    objects: dict[str, int] = field(default_factory=dict)  # full key -> size
    sha256: dict[str, str] = field(default_factory=dict)  # full key -> sha256 of the content
    first_checkpoint: int = 0  # the checkpoint that drove iteration 0
    evaluations: dict[int, list[dict[str, Any]]] = field(default_factory=dict)  # checkpoint -> its evaluation entries
    roles: dict[str, int] = field(default_factory=dict)  # best-by metric (and "last") -> checkpoint designed to win it
    unevaluated: tuple[int, ...] = ()

    def key(self, relative: str) -> str:
        return f"{self.prefix}/{relative}" if self.prefix else relative

    @property
    def model_keys(self) -> list[str]:
        """Full keys under the model prefix, sorted."""
        head = f"{self.prefix}/" if self.prefix else ""
        return sorted(k for k in self.objects if k.startswith(head))

    @property
    def best_checkpoint(self) -> SeededCheckpoint:
        return self.checkpoints[self.best]

    @property
    def last_checkpoint(self) -> SeededCheckpoint:
        return self.checkpoints[self.last]

    @property
    def pb_sha256(self) -> dict[int, str]:
        return {number: cp.pb_sha256 for number, cp in self.checkpoints.items()}


def pseudo_random_bytes(seed: int, label: str, size: int) -> bytes:
    """``size`` deterministic bytes, different for every (seed, label)."""
    digest = hashlib.sha256(f"{seed}:{label}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big")).randbytes(size)


def model_metadata(
    sensors: Iterable[str] = ("FRONT_FACING_CAMERA",),
    actions: int | None = None,
    *,
    continuous: bool = False,
    algorithm: str = "clipped_ppo",
    network: str = "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW",
) -> dict[str, Any]:
    """model_metadata.json as the simapp reads it.

    Discrete (default): ``actions`` actions spread over steering angles and speeds, by default
    every one of 5 angles at each of 3 speeds (15). ``continuous``: steering and speed ranges.
    """
    if continuous:
        space: Any = {"steering_angle": {"low": -30.0, "high": 30.0}, "speed": {"low": 0.5, "high": 3.0}}
    else:
        pairs = [(a, s) for s in _SPEEDS for a in _STEER]
        count = len(pairs) if actions is None else actions
        if count < 1:
            raise ValueError("a discrete action space needs at least one action")
        # More actions than the grid: finer speeds, so every action stays distinct.
        pairs = [(_STEER[i % len(_STEER)], round(0.5 + 0.25 * (i // len(_STEER)), 2)) for i in range(count)] if count > len(pairs) else pairs[:count]
        space = [{"steering_angle": angle, "speed": speed, "index": index} for index, (angle, speed) in enumerate(pairs)]
    return {
        "action_space": space,
        "sensor": list(sensors),
        "neural_network": network,
        "training_algorithm": algorithm,
        "action_space_type": "continuous" if continuous else "discrete",
        "version": "5",
    }


def action_count(metadata: dict[str, Any]) -> int:
    """Outputs of the policy head: one per discrete action, or steering + speed when continuous."""
    space = metadata["action_space"]
    return len(space) if isinstance(space, list) else 2


def hyperparameters() -> dict[str, Any]:
    return {
        "batch_size": 64,
        "beta_entropy": 0.01,
        "discount_factor": 0.99,
        "e_greedy_value": 0.05,
        "epsilon_steps": 10000,
        "exploration_type": "categorical",
        "loss_type": "huber",
        "lr": 0.0003,
        "num_episodes_between_training": 20,
        "num_epochs": 5,
        "stack_size": 1,
        "term_cond_avg_score": 350.0,
        "term_cond_max_episodes": 1000,
        "sac_alpha": 0.2,
    }


def reward_function(variant: str) -> str:
    return f'''"""Reward staying close to the centre line ({variant})."""


def reward_function(params):
    half_width = 0.5 * params["track_width"]
    distance = params["distance_from_center"]
    if not params["all_wheels_on_track"]:
        return 1e-3
    if distance <= 0.1 * half_width:
        return 1.0
    if distance <= 0.25 * half_width:
        return 0.5
    if distance <= 0.5 * half_width:
        return 0.1
    return 1e-3
'''


def training_params(bucket: str, prefix: str, reward_key: str) -> str:
    """A DRfC training_params.yaml (every value a quoted string, as DRfC writes it)."""
    params = {
        "AWS_REGION": "us-east-1",
        "JOB_TYPE": "TRAINING",
        "METRICS_S3_BUCKET": bucket,
        "METRICS_S3_OBJECT_KEY": f"{prefix}/metrics/TrainingMetrics.json",
        "MODEL_METADATA_FILE_S3_KEY": f"{prefix}/model/model_metadata.json",
        "REWARD_FILE_S3_KEY": reward_key,
        "SAGEMAKER_SHARED_S3_BUCKET": bucket,
        "SAGEMAKER_SHARED_S3_PREFIX": prefix,
        "SIMTRACE_S3_BUCKET": bucket,
        "SIMTRACE_S3_PREFIX": f"{prefix}/training-simtrace",
        "BODY_SHELL_TYPE": "deepracer",
        "CAR_COLOR": "Red",
        "CAR_NAME": "FastCar",
        "RACE_TYPE": "TIME_TRIAL",
        "WORLD_NAME": "reInvent2019_track",
        "DISPLAY_NAME": "FastCar",
        "RACER_NAME": "FastCar",
        "ALTERNATE_DRIVING_DIRECTION": "False",
        "CHANGE_START_POSITION": "True",
        "ROUND_ROBIN_ADVANCE_DIST": "0.05",
        "START_POSITION_OFFSET": "0.0",
        "ENABLE_DOMAIN_RANDOMIZATION": "False",
        "MIN_EVAL_TRIALS": "5",
        "BEST_MODEL_METRIC": "progress",
    }
    return "".join(f"{key}: '{value}'\n" for key, value in params.items())


# DRfC's defaults: hyperparameters' num_episodes_between_training, training_params' MIN_EVAL_TRIALS.
EPISODES_PER_ITERATION = 20
EVALUATION_TRIALS = 5
_SIM_START_MS = 30_000  # the simulation clock when the first episode starts

# The evaluation of a kept checkpoint, by the role it plays: the progress of each evaluation
# episode, the lap times (s) of the completed ones in order, and reward per progress point.
# Chosen so that each best-by metric picks a different kept checkpoint:
# progress 99.2 % | laptime 11.84 s | reward ~4.4 per point (slow and steady) | last 87.6 %, 12.30 s.
_ROLE_EVALUATIONS: dict[str, tuple[tuple[int, ...], tuple[float, ...], float]] = {
    "progress": ((100, 100, 100, 100, 96), (13.02, 13.11, 13.06, 13.21), 2.6),
    "laptime": ((100, 61, 100, 55, 100), (11.70, 11.84, 11.98), 2.4),
    "reward": ((100, 88, 100, 84, 79), (15.21, 15.79), 4.4),
    "last": ((100, 85, 100, 70, 83), (12.20, 12.40), 2.5),
}
_FAILURES = ("Off track", "Off track", "Off track", "Crashed", "Immobilized")


@dataclass
class _Clock:
    """One worker's simulation clock in milliseconds (each worker runs its own simulation)."""

    now: int = _SIM_START_MS

    def episode(self, rng: random.Random, seconds: float) -> tuple[int, int, int]:
        start = self.now
        elapsed = int(round(seconds * 1000))
        self.now = start + elapsed + rng.randrange(300, 900)  # the car is reset between episodes
        return start, start + elapsed, elapsed


def _episode(clock: _Clock, rng: random.Random, episode: int, trial: int, phase: str, progress: int, lap: float | None, per_point: float) -> dict[str, Any]:
    """One entry of TrainingMetrics.json, as the simapp's append_episode_metrics writes it."""
    complete = progress >= 100
    seconds = lap if complete and lap else (progress / 100) * rng.uniform(13.0, 17.0)
    start, end, elapsed = clock.episode(rng, max(seconds, 0.4))
    return {
        "reward_score": int(round(progress * per_point * rng.uniform(0.97, 1.03))),
        "metric_time": end,
        "start_time": start,
        "elapsed_time_in_milliseconds": elapsed,
        "episode": episode,
        "trial": trial,
        "phase": phase,
        "completion_percentage": int(progress),
        "episode_status": "Lap complete" if complete else rng.choice(_FAILURES),
    }


def _ordinary_evaluation(rng: random.Random, skill: float) -> tuple[list[int], list[float], float]:
    """Evaluation outcomes of a checkpoint without a role: never the best of the kept ones."""
    progress, laps = [], []
    for _ in range(EVALUATION_TRIALS):
        if len(laps) < 3 and rng.random() < 0.7 * skill:
            progress.append(100)
            laps.append(round(rng.uniform(12.6, 16.5), 2))
        else:
            progress.append(int(min(90, max(3, rng.gauss(75 * skill + 10, 12)))))
    return progress, laps, rng.uniform(2.0, 2.8)


@dataclass(frozen=True)
class TrainingRun:
    """The metrics files of a run and what the simapp recorded for each evaluated checkpoint."""

    files: dict[str, str]  # relative key (metrics/TrainingMetrics*.json) -> content
    evaluations: dict[int, list[dict[str, Any]]]  # checkpoint number -> its evaluation entries
    switch_times: dict[int, float]  # checkpoint number -> simulation time (s) its evaluation was recorded
    roles: dict[str, int]  # best-by metric -> the kept checkpoint designed to win it ("last" too)


def training_run(rng: random.Random, first: int, last: int, kept: list[int], best: int, workers: int = 1) -> TrainingRun:
    """TrainingMetrics.json (and TrainingMetrics_<n>.json for workers n > 0) of a run.

    Iteration i (0-based) is driven by checkpoint ``first + i``: every worker plays its share of
    the iteration's training episodes (``trial`` 1.., ``episode`` counting on), then worker 0
    evaluates that same checkpoint; checkpoint ``first + i + 1`` is trained from those episodes.
    When the next iteration starts, the simapp records the evaluation in deepracer_checkpoints.json
    (the time of that switch is ``switch_times``).
    """
    others = [n for n in kept if n not in (best, last)]
    roles = {"progress": best, "laptime": others[-1] if others else last, "reward": others[0] if len(others) >= 2 else last, "last": last}
    by_checkpoint = {number: role for role, number in reversed(list(roles.items()))}
    shares = [EPISODES_PER_ITERATION // workers + (1 if w < EPISODES_PER_ITERATION % workers else 0) for w in range(workers)]
    rows: list[list[dict[str, Any]]] = [[] for _ in range(workers)]
    clocks = [_Clock(_SIM_START_MS + 977 * w) for w in range(workers)]
    counters = [0] * workers
    evaluations: dict[int, list[dict[str, Any]]] = {}
    switch_times: dict[int, float] = {}
    iterations = last - first + 1
    for iteration in range(iterations):
        checkpoint = first + iteration
        skill = 0.15 + 0.8 * iteration / max(1, iterations - 1)
        for worker in range(workers):
            for trial in range(1, shares[worker] + 1):
                counters[worker] += 1
                completes = rng.random() < 0.5 * skill
                progress = 100 if completes else int(min(99, max(1, rng.gauss(70 * skill + 5, 15))))
                lap = round(rng.uniform(12.5, 17.0), 2) if completes else None
                rows[worker].append(_episode(clocks[worker], rng, counters[worker], trial, "training", progress, lap, rng.uniform(2.0, 3.0)))
        role = by_checkpoint.get(checkpoint)
        if role:
            progress_list, laps, per_point = _ROLE_EVALUATIONS[role]
        else:
            progress_list, laps, per_point = _ordinary_evaluation(rng, skill)
        lap_times = iter(laps)
        evaluated = []
        for progress in progress_list:
            lap = next(lap_times) if progress >= 100 else None
            # Evaluation entries repeat the episode and trial of the last training episode.
            evaluated.append(_episode(clocks[0], rng, counters[0], shares[0], "evaluation", progress, lap, per_point))
        rows[0].extend(evaluated)
        evaluations[checkpoint] = evaluated
        # The physics pause while the trainer works: the switch happens at the last evaluation's end.
        switch_times[checkpoint] = evaluated[-1]["metric_time"] / 1000
        clocks[0].now = evaluated[-1]["metric_time"] + rng.randrange(300, 900)
    files = {
        f"metrics/TrainingMetrics{'' if worker == 0 else f'_{worker}'}.json": json.dumps(
            {"metrics": rows[worker], "version": "2", "best_model_metric": "progress"}
        )
        for worker in range(workers)
    }
    return TrainingRun(files, evaluations, switch_times, roles)


_SIMTRACE_HEADER = (
    "episode,steps,X,Y,yaw,steer,throttle,action,reward,done,all_wheels_on_track,progress,"
    "closest_waypoint,track_len,tstamp,episode_status,pause_duration\n"
)


def simtrace(rng: random.Random, iteration: int, episodes: int = 4, steps: int = 60) -> str:
    """One iteration's simulation trace CSV (a few episodes of steps)."""
    rows = [_SIMTRACE_HEADER]
    stamp = EPOCH + iteration * 600
    for offset in range(episodes):
        episode = iteration * episodes + offset
        x, y, yaw = 0.3, 2.7, 0.0
        for step in range(1, steps + 1):
            action = rng.randrange(len(_STEER) * len(_SPEEDS))
            steer, speed = _STEER[action % len(_STEER)], _SPEEDS[action // len(_STEER)]
            yaw += steer / 10
            x += 0.05 * speed
            y += rng.uniform(-0.01, 0.01)
            stamp += 1 / 15
            done = step == steps
            rows.append(
                f"{episode},{step},{x:.4f},{y:.4f},{yaw:.4f},{steer:.1f},{speed:.1f},{action},"
                f"{rng.uniform(0, 1):.4f},{done},True,{step * 100 / (steps * 3):.4f},{step % 150},"
                f"17.71,{stamp:.3f},{'off_track' if done else 'prepare' if step == 1 else 'in_progress'},0.0\n"
            )
    return "".join(rows)


def _checkpoint_steps(numbers: Iterable[int], rng: random.Random) -> dict[int, int]:
    steps, total = {}, 0
    for number in sorted(numbers):
        total = max(total, number * 540) + rng.randrange(1, 400)
        steps[number] = total
    return steps


def checkpoint_names(numbers: Iterable[int], seed: int = 0) -> dict[int, str]:
    """The names ``seed_model`` gives the checkpoints ``numbers`` for ``seed``: ``N_Step-M.ckpt``."""
    steps = _checkpoint_steps(numbers, random.Random(seed))
    return {number: f"{number}_Step-{step}.ckpt" for number, step in steps.items()}


def checkpoint_index(best: SeededCheckpoint, last: SeededCheckpoint) -> str:
    """deepracer_checkpoints.json naming the best and the last checkpoint."""
    return json.dumps({"best_checkpoint": best.entry(), "last_checkpoint": last.entry()})


def tf_checkpoint_state(names: list[str], last: str) -> str:
    """The legacy TensorFlow ``checkpoint`` pointer file."""
    return f'model_checkpoint_path: "{last}"\n' + "".join(f'all_model_checkpoint_paths: "{name}"\n' for name in names)


class ModelFiles(Protocol):
    """Where a seeded model's metadata and binary files come from."""

    def metadata(self) -> dict[str, Any]:
        """model_metadata.json's content."""
        ...

    def checkpoint_files(self, number: int, name: str) -> dict[str, Body]:
        """Checkpoint ``number``'s files by suffix (``data-00000-of-00001``, ``index``, ``meta``)."""
        ...

    def frozen_graph(self, number: int) -> Body:
        """model_<number>.pb."""
        ...


@dataclass(frozen=True)
class SampleFiles:
    """Pseudo-random checkpoint bytes and a sample frozen graph, of about the given sizes."""

    seed: int = 0
    data_size: int = 256 * KIB
    pb_size: int = 128 * KIB
    meta_size: int = 32 * KIB
    index_size: int = 1 * KIB
    model_metadata: dict[str, Any] = field(default_factory=model_metadata)

    def metadata(self) -> dict[str, Any]:
        return self.model_metadata

    def checkpoint_files(self, number: int, name: str) -> dict[str, Body]:
        sizes = dict(zip(CHECKPOINT_SUFFIXES, (self.data_size, self.index_size, self.meta_size)))
        return {suffix: pseudo_random_bytes(self.seed, f"{number}.{suffix}", size) for suffix, size in sizes.items()}

    def frozen_graph(self, number: int) -> Body:
        from drtasks.sample_graph import sample_frozen_graph

        return sample_frozen_graph(self.model_metadata, self.pb_size, seed=self.seed, label=f"{number}.pb")


def body_size(body: Body) -> int:
    return body.stat().st_size if isinstance(body, Path) else len(body)


def body_sha256(body: Body) -> str:
    if isinstance(body, bytes):
        return hashlib.sha256(body).hexdigest()
    digest = hashlib.sha256()
    with body.open("rb") as handle:
        while chunk := handle.read(4 * MIB):
            digest.update(chunk)
    return digest.hexdigest()


def seed_model(
    client: Any,
    bucket: str,
    prefix: str,
    *,
    checkpoints: Iterable[int] = (10, 13, 16, 19),
    best: int | None = None,
    data_size: int = 256 * KIB,
    pb_size: int = 128 * KIB,
    meta_size: int = 32 * KIB,
    index_size: int = 1 * KIB,
    reward_key: str = "custom_files/reward_function.py",
    reward_at_root: bool = False,
    with_metrics: bool = True,
    simtrace_iterations: int = 3,
    workers: int = 1,
    markers: Iterable[str] = (),
    multipart_threshold: int = 64 * MIB,
    seed: int = 0,
    first_checkpoint: int = 0,
    unevaluated: Iterable[int] = (),
    files: ModelFiles | None = None,
) -> SeededModel:
    """Write a trained model at ``s3://bucket/prefix/`` (plus the custom_files beside it).

    ``best`` defaults to the second kept checkpoint (the highest ``avg_eval_metric``), so best != last
    whenever more than one checkpoint is kept. ``markers`` adds e.g. ``.ready`` under ``model/``.
    Objects above ``multipart_threshold`` are uploaded in parts (their ETag is then not an MD5).
    ``files`` provides the metadata and binary files; by default ``SampleFiles`` of about the given sizes.

    The metrics cover iterations ``first_checkpoint`` .. last kept checkpoint (a run continued from
    a pretrained model starts past 0), and make best-by differ per metric: with the default
    checkpoints, progress picks 13, reward 10, laptime 16, and last is 19 (see ``roles``).
    ``unevaluated`` adds checkpoints the trainer saved after the last evaluation (kept, no
    evaluation episodes, not named by deepracer_checkpoints.json).
    """
    numbers = sorted(set(checkpoints))
    if not numbers:
        raise ValueError("seed_model needs at least one checkpoint")
    last = numbers[-1]
    best = best if best is not None else (numbers[1] if len(numbers) > 1 else last)
    if best not in numbers:
        raise ValueError(f"best checkpoint {best} is not among {numbers}")
    if first_checkpoint > numbers[0]:
        raise ValueError(f"first_checkpoint {first_checkpoint} is after the kept checkpoint {numbers[0]}")
    newer = sorted(set(unevaluated))
    if newer and newer[0] <= last:
        raise ValueError(f"unevaluated checkpoints {newer} must come after the last evaluated one ({last})")
    prefix = prefix.strip("/")
    rng = random.Random(seed)
    source = files or SampleFiles(seed, data_size, pb_size, meta_size, index_size)
    bodies: dict[str, Body] = {}

    def put(relative: str, body: Body | str) -> None:
        bodies[f"{prefix}/{relative}" if prefix else relative] = body.encode() if isinstance(body, str) else body

    # Names first, from a fresh generator: checkpoint_names() and real_model give the same ones.
    steps = _checkpoint_steps([*numbers, *newer], rng)
    run = training_run(rng, first_checkpoint, last, numbers, best, workers=max(1, workers))
    kept = _seed_checkpoints(put, source, numbers, newer, steps, run)
    newest = kept[max(kept)].name  # the trainer's latest save, evaluated or not
    put("model/deepracer_checkpoints.json", checkpoint_index(kept[best], kept[last]))
    put("model/.coach_checkpoint", f"{newest}\n")
    put("model/checkpoint", tf_checkpoint_state([kept[n].name for n in sorted(kept)], newest))
    metadata = json.dumps(source.metadata(), indent=4)
    hyper = json.dumps(hyperparameters(), indent=4)
    put("model/model_metadata.json", metadata)
    for marker in markers:
        put(f"model/{marker}", b"")
    put("ip/hyperparameters.json", hyper)
    put("ip/ip.json", json.dumps({"IP": "172.18.0.3"}))
    put("ip/done", b"")

    custom_dir = reward_key.rsplit("/", 1)[0] if "/" in reward_key else ""
    custom_reward = reward_function("custom_files")
    bodies[reward_key] = custom_reward.encode()
    bodies[f"{custom_dir}/model_metadata.json" if custom_dir else "model_metadata.json"] = metadata.encode()
    bodies[f"{custom_dir}/hyperparameters.json" if custom_dir else "hyperparameters.json"] = hyper.encode()
    effective_reward = reward_key
    if reward_at_root:
        put("reward_function.py", reward_function("model root"))
        effective_reward = f"{prefix}/reward_function.py" if prefix else "reward_function.py"

    # DRfC's multi-config runs write one training_params_<n>.yaml per worker, n from 1; the simapp
    # names worker 0's metrics TrainingMetrics.json and worker n's TrainingMetrics_<n>.json.
    worker_ids = [None] if workers <= 1 else list(range(1, workers + 1))
    for worker in worker_ids:
        suffix = "" if worker is None else f"_{worker}"
        put(f"training_params{suffix}.yaml", training_params(bucket, prefix, reward_key))
    if with_metrics:
        for relative, body in run.files.items():
            put(relative, body)
    for iteration in range(simtrace_iterations):
        put(f"training-simtrace/{iteration}-iteration.csv", simtrace(rng, iteration))

    _upload_all(client, bucket, bodies, multipart_threshold)
    return SeededModel(
        bucket=bucket,
        prefix=prefix,
        reward_key=effective_reward,
        custom_reward_key=reward_key,
        checkpoints=kept,
        best=best,
        last=last,
        objects={key: body_size(body) for key, body in bodies.items()},
        sha256={key: body_sha256(body) for key, body in bodies.items()},
        first_checkpoint=first_checkpoint,
        evaluations=run.evaluations if with_metrics else {},
        roles=run.roles,
        unevaluated=tuple(newer),
    )


def _seed_checkpoints(
    put: Any, source: ModelFiles, numbers: list[int], newer: list[int], steps: dict[int, int], run: TrainingRun
) -> dict[int, SeededCheckpoint]:
    """Put every kept checkpoint's files; their entries as deepracer_checkpoints.json records them."""
    kept: dict[int, SeededCheckpoint] = {}
    last = numbers[-1]
    for number in [*numbers, *newer]:
        name = f"{number}_Step-{steps[number]}.ckpt"
        keys = []
        for suffix, body in source.checkpoint_files(number, name).items():
            keys.append(f"model/{name}.{suffix}")
            put(keys[-1], body)
        pb = source.frozen_graph(number)
        pb_key = f"model/model_{number}.pb"
        put(pb_key, pb)
        evaluation = run.evaluations.get(number)
        kept[number] = SeededCheckpoint(
            number=number,
            step=steps[number],
            name=name,
            keys=(*keys, pb_key),
            pb_key=pb_key,
            pb_sha256=body_sha256(pb),
            # What the simapp records: the mean evaluation progress, when the next iteration starts.
            avg_eval_metric=statistics.fmean(e["completion_percentage"] for e in evaluation) if evaluation else None,
            time_stamp=run.switch_times.get(number, run.switch_times[last] + 60.0 * (number - last)),
        )
    return kept


def _upload_all(client: Any, bucket: str, files: dict[str, Body], multipart_threshold: int) -> None:
    from boto3.s3.transfer import TransferConfig

    from drtasks.s3 import disable_expect_continue

    # Real models hold zero-byte files (ip/done, markers): keep them from stalling the next PUT.
    disable_expect_continue(client)
    config = TransferConfig(multipart_threshold=multipart_threshold, max_concurrency=4)

    def upload(item: tuple[str, Body]) -> None:
        key, body = item
        if body_size(body) < multipart_threshold:
            client.put_object(Bucket=bucket, Key=key, Body=body.read_bytes() if isinstance(body, Path) else body)
        elif isinstance(body, Path):
            client.upload_file(str(body), bucket, key, Config=config)
        else:
            client.upload_fileobj(io.BytesIO(body), bucket, key, Config=config)

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(upload, files.items()))
