"""What drtasks checks and writes for DRoA before uploading: the reward function and the training graph.

The reward function is checked as DRoA v1.2.5's validator checks it (facts section 7); every refusal
names reward_function.py and the rule. The training graph is DRfC's metrics in the file DRoA reads.
"""

from __future__ import annotations

import json
import math

import pytest

from drtasks.errors import DrtasksError
from drtasks.importing.droa_metrics import droa_metrics_file, is_droa_metrics_key, merge_workers, worker_files
from drtasks.importing.reward_check import check_reward_function
from drtasks.importing.sample_track import sample_track, situations

GOOD = '''import math


def reward_function(params):
    """Stay near the centre line."""
    if not params["all_wheels_on_track"]:
        return 1e-3
    return float(math.exp(-params["distance_from_center"] / params["track_width"]))
'''


def findings(source: str, seconds: float = 5.0) -> list[str]:
    return [str(p) for p in check_reward_function(source, "2022_april_open", True, seconds=seconds) if p.blocking]


def test_a_clean_reward_function_passes_every_rule() -> None:
    assert check_reward_function(GOOD, "2022_april_open", True) == []


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("def reward_function(params)\n    return 1.0\n", "reward_function.py: line 1: syntax error: expected ':'"),
        ("import os\n\n\ndef reward_function(params):\n    return float(len(os.sep))\n",
         "reward_function.py: line 1: imports os: DRoA allows only math, random, numpy, scipy, shapely"),
        ("from subprocess import run\n\n\ndef reward_function(params):\n    return float(bool(run))\n",
         "reward_function.py: line 1: imports subprocess: DRoA allows only math, random, numpy, scipy, shapely"),
        ('def reward_function(params):\n    return float(eval("1"))\n',
         "reward_function.py: line 2: calls eval(): DRoA forbids open, eval, input, exec, compile"),
        ("def reward_function(params):\n    # keep the payload light\n    return 1.0\n",
         'reward_function.py: line 2: contains the string "load", which DRoA refuses anywhere in the file'),
        ("def reward_function(params):\n    return 1\n",
         "reward_function.py: reward_function returned 1 (int) for the valid car: DRoA requires a float"),
        ("def reward_function(params):\n    return True\n", "(bool) for the valid car: DRoA requires a float"),
        ("def reward_function(params):\n    return float('nan')\n", "returned nan for the valid car: DRoA requires a number in [-100000, 100000]"),
        ("def reward_function(params):\n    return 1e6\n", "returned 1000000.0 for the valid car"),
        ("def reward_function(params, extra):\n    return 1.0\n", "reward_function must take exactly one argument"),
        ("def reward_function(params):\n    import math\n    return math.pi\n", "import of math inside the function"),
        ("def reward_function(params):\n    return params['no_such_key']\n", "KeyError: 'no_such_key'"),
        ("def reward_function(params):\n    return 1.0 if params['progress'] < 100 else 'done'\n",
         "returned 'done' (str) for the car at the finish"),
        ("import math\n\ndef reward_function(params):\n    return 1.0\n", "F401 'math' imported but unused"),
    ],
    ids=["syntax", "import", "from import", "eval", "forbidden string", "int", "bool", "nan", "out of range",
         "two arguments", "import inside", "exception", "finish", "flake8"],
)
def test_each_rule_of_droa_validator_refuses_naming_the_file_and_the_rule(source: str, expected: str) -> None:
    found = findings(source)
    assert found and all(f.startswith("reward_function.py: ") for f in found)
    assert any(expected in f for f in found), found


def test_a_function_that_does_not_return_in_time_is_stopped_and_refused() -> None:
    found = findings("def reward_function(params):\n    while True:\n        pass\n", seconds=1)
    assert found == ["reward_function.py: the call with sample params on 2022_april_open for the valid car failed: "
                     "did not return within 1 s"]


def test_an_allowed_module_missing_here_is_a_warning_not_a_refusal() -> None:
    # DRoA has numpy, scipy and shapely; this machine may not. A module of an allowed package that
    # is missing here stands for that case.
    source = "import shapely.not_here_xyz\n\n\ndef reward_function(params):\n    return float(bool(shapely))\n"

    problems = check_reward_function(source, "2022_april_open", True)

    assert [p.blocking for p in problems] == [False]
    assert str(problems[0]).startswith("reward_function.py: shapely is not installed here, so the function was not called")


def test_the_sample_track_is_a_closed_loop_and_each_situation_is_where_it_says() -> None:
    track = sample_track("2022_april_open")
    assert len(track.center) == 120 and 15 < track.length < 25
    assert all(math.isclose(math.dist(i, o), track.width, rel_tol=0.05) for i, o in zip(track.inner, track.outer))
    cases = situations(track)
    assert set(cases) == {"valid car", "car on the start line", "car half-way round", "car off the track", "car at the finish"}
    assert cases["car off the track"]["is_offtrack"] and not cases["car off the track"]["all_wheels_on_track"]
    assert (cases["car half-way round"]["progress"], cases["car at the finish"]["progress"]) == (50.0, 100.0)
    clockwise = sample_track("2022_april_open", clockwise=True)
    assert clockwise.center == list(reversed(track.center))


# --------------------------------------------------------------------------- the training graph


def entry(episode: int, phase: str = "training", trial: int = 1, time: int = 1_000) -> dict[str, object]:
    return {"episode": episode, "phase": phase, "trial": trial, "reward_score": 1.0, "completion_percentage": 10,
            "elapsed_time_in_milliseconds": 5000, "episode_status": "Off track", "metric_time": time, "start_time": time - 5000}


def test_one_worker_metrics_are_kept_as_they_are_under_the_key_droa_imports() -> None:
    document = {"metrics": [entry(1), entry(2, time=1_767_225_600_000)], "version": "2", "best_model_metric": "progress"}

    key, content = droa_metrics_file([(0, "TrainingMetrics.json", json.dumps(document).encode())])

    assert key == "metrics/training/training-20260101000000.json" and is_droa_metrics_key(key)
    assert json.loads(content) == document


def test_workers_are_merged_iteration_by_iteration_with_one_episode_counter() -> None:
    # Two workers, two training episodes per worker per iteration, one evaluation each after an iteration.
    worker = {"metrics": [entry(1, trial=1), entry(2, trial=2), entry(2, "evaluation"), entry(3, trial=1), entry(4, trial=2)]}
    merged = merge_workers([(1, "TrainingMetrics_1.json", json.dumps(worker).encode()),
                            (2, "TrainingMetrics_2.json", json.dumps(worker).encode())])["metrics"]

    assert [(e["phase"], e["episode"]) for e in merged] == [
        ("training", 1), ("training", 2), ("training", 3), ("training", 4),  # iteration 0, both workers
        ("evaluation", 4), ("evaluation", 4),  # grouped under the iteration's last episode
        ("training", 5), ("training", 6), ("training", 7), ("training", 8),
    ]


def test_worker_files_are_recognised_by_drfc_names() -> None:
    names = ["TrainingMetrics_2.json", "TrainingMetrics.json", "TrainingMetrics_1.json", "evaluation/evaluation-1.json"]
    assert worker_files(names) == [(0, "TrainingMetrics.json"), (1, "TrainingMetrics_1.json"), (2, "TrainingMetrics_2.json")]
    assert not is_droa_metrics_key("metrics/TrainingMetrics.json")


def test_metrics_that_are_not_the_simapp_format_are_refused_by_name() -> None:
    with pytest.raises(DrtasksError, match="metrics/TrainingMetrics.json has no 'metrics' list"):
        droa_metrics_file([(0, "TrainingMetrics.json", b'{"episodes": []}')])
    with pytest.raises(DrtasksError, match="metrics/TrainingMetrics.json is not JSON"):
        droa_metrics_file([(0, "TrainingMetrics.json", b"{")])
