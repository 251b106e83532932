"""The training graph for DRoA: DRfC's metrics as the file DRoA imports.

DRoA imports training metrics only from the first key under ``<prefix>/metrics/training/`` that
contains ``training-`` and ends in ``.json`` (ImportHelper.parseMetrics), and its web UI draws the
graph from that file's ``metrics`` list: training entries in batches of
``num_episodes_between_training`` (one point per iteration) and evaluation entries grouped by
``episode``. DRfC writes the same simapp format to ``metrics/TrainingMetrics.json``; a multi-worker
run writes one file per worker (``TrainingMetrics_<n>.json``), each with its own episode counter.

One worker's file is kept as it is. Several are merged iteration by iteration (a worker's iteration
is ``(episode - 1) // episodes_per_iteration``, as deepracer-utils computes it): training episodes
are renumbered in that order across workers, and each evaluation entry takes the number of the last
training episode of its iteration, so DRoA averages the workers' evaluations of one iteration
together. The file is named after its last ``metric_time`` (UTC), so the same metrics always give
the same key.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from typing import Any

from drtasks.errors import DrtasksError

DROA_METRICS_FOLDER = "metrics/training/"
_WORKER_FILE = re.compile(r"^TrainingMetrics(?:_(\d+))?\.json$")


def worker_files(names: list[str]) -> list[tuple[int, str]]:
    """(worker number, name) of the DRfC metrics files among ``names`` (plain file = worker 0)."""
    found = []
    for name in names:
        match = _WORKER_FILE.match(name)
        if match:
            found.append((int(match.group(1) or 0), name))
    return sorted(found)


def is_droa_metrics_key(relative: str) -> bool:
    """Would DRoA import this key (relative to the upload prefix) as the training metrics?"""
    return relative.startswith(DROA_METRICS_FOLDER) and "training-" in relative and relative.endswith(".json")


def _load(name: str, raw: bytes) -> dict[str, Any]:
    try:
        data = json.loads(raw)
    except ValueError as error:
        raise DrtasksError(f"metrics/{name} is not JSON ({error}); DRoA could not draw the training graph") from None
    if not isinstance(data, dict) or not isinstance(data.get("metrics"), list):
        raise DrtasksError(f"metrics/{name} has no 'metrics' list (the simapp's format)")
    for number, entry in enumerate(data["metrics"]):
        if not isinstance(entry, dict) or not isinstance(entry.get("episode"), int) or entry.get("phase") not in ("training", "evaluation"):
            raise DrtasksError(f"metrics/{name}: entry {number} lacks an integer 'episode' or a phase training/evaluation")
    return data


def _iteration_size(entries: list[dict[str, Any]]) -> int:
    trials = [e.get("trial") for e in entries if e["phase"] == "training" and isinstance(e.get("trial"), int)]
    return max(trials, default=1) or 1


def merge_workers(files: list[tuple[int, str, bytes]]) -> dict[str, Any]:
    """One simapp metrics document from the workers' files (see the module docstring)."""
    documents = [(worker, _load(name, raw)) for worker, name, raw in files]
    if len(documents) == 1:
        return documents[0][1]
    tagged = []
    for worker, document in documents:
        entries = document["metrics"]
        size = _iteration_size(entries)
        for order, entry in enumerate(entries):
            iteration = max(entry["episode"] - 1, 0) // size
            tagged.append((iteration, 0 if entry["phase"] == "training" else 1, worker, order, entry))
    tagged.sort(key=lambda item: item[:4])
    merged: list[dict[str, Any]] = []
    episode = 0
    last_of_iteration: dict[int, int] = {}
    for iteration, phase, _worker, _order, entry in tagged:
        entry = dict(entry)
        if phase == 0:
            episode += 1
            entry["episode"] = episode
            last_of_iteration[iteration] = episode
        else:
            entry["episode"] = last_of_iteration.get(iteration, episode)
        merged.append(entry)
    head = documents[0][1]
    return {key: value for key, value in head.items() if key != "metrics"} | {"metrics": merged}


def droa_metrics_file(files: list[tuple[int, str, bytes]]) -> tuple[str, bytes]:
    """(key relative to the upload prefix, content) of the file DRoA reads the training graph from."""
    document = merge_workers(files)
    times = [e.get("metric_time") for e in document["metrics"] if isinstance(e.get("metric_time"), (int, float))]
    stamp = datetime.fromtimestamp(max(times) / 1000, timezone.utc) if times else datetime(1970, 1, 1, tzinfo=timezone.utc)
    key = f"{DROA_METRICS_FOLDER}training-{stamp:%Y%m%d%H%M%S}.json"
    return key, (json.dumps(document, separators=(",", ":")) + "\n").encode()
