"""Training metrics: read as the simapp writes them, merged across workers, tied to checkpoints."""

from __future__ import annotations

import random
import statistics
from pathlib import Path
from typing import Any

import pytest

from drtasks import metrics
from drtasks.errors import DrtasksError
from drtasks.model import SourceModel
from drtasks.sample_model import EPISODES_PER_ITERATION, seed_model, training_run


def files_of(run: Any) -> list[metrics.MetricsFile]:
    return [
        metrics.parse_metrics(body.encode(), key, metrics.worker_of(key.rsplit("/", 1)[-1]) or 0)
        for key, body in sorted(run.files.items())
    ]


def lap_mean(entries: list[dict[str, Any]]) -> float | None:
    laps = [e["elapsed_time_in_milliseconds"] / 1000 for e in entries if e["episode_status"] == "Lap complete"]
    return statistics.fmean(laps) if laps else None


def test_iterations_restart_where_training_trials_restart_and_evaluations_join_the_one_they_follow() -> None:
    run = training_run(random.Random(3), first=0, last=5, kept=[4, 5], best=4)
    (single,) = files_of(run)

    assert single.iterations == 6
    for iteration in range(6):
        training = [e for e in single.episodes if e.iteration == iteration and e.phase == "training"]
        assert [e.trial for e in training] == list(range(1, EPISODES_PER_ITERATION + 1))
        assert [e.episode for e in training] == list(range(iteration * 20 + 1, iteration * 20 + 21))
        evaluation = [e for e in single.episodes if e.iteration == iteration and e.phase == "evaluation"]
        assert evaluation and all(e.episode == (iteration + 1) * 20 for e in evaluation)


def test_summary_means_and_lap_time_count_only_completed_laps() -> None:
    run = training_run(random.Random(1), first=0, last=19, kept=[10, 13, 16, 19], best=13)
    files = files_of(run)
    alignment = metrics.align(files, None)
    iterations = {i.checkpoint: i for i in metrics.summarize(files, alignment)}

    for number, entries in run.evaluations.items():
        evaluation = iterations[number].evaluation
        assert evaluation.episodes == len(entries)
        assert evaluation.progress == pytest.approx(statistics.fmean(e["completion_percentage"] for e in entries))
        assert evaluation.reward == pytest.approx(statistics.fmean(e["reward_score"] for e in entries))
        assert evaluation.laps == sum(e["episode_status"] == "Lap complete" for e in entries)
        assert evaluation.lap_time == (pytest.approx(lap_mean(entries)) if lap_mean(entries) else None)
    assert iterations[16].evaluation.lap_time == pytest.approx(11.84)
    assert iterations[16].evaluation.laps == 3 and iterations[16].evaluation.episodes == 5


def test_multi_worker_files_merge_training_of_all_workers_and_evaluation_of_worker_zero() -> None:
    run = training_run(random.Random(2), first=0, last=7, kept=[6, 7], best=6, workers=3)
    assert sorted(run.files) == ["metrics/TrainingMetrics.json", "metrics/TrainingMetrics_1.json", "metrics/TrainingMetrics_2.json"]
    files = files_of(run)
    assert [f.worker for f in files] == [0, 1, 2]
    assert [max(e.trial for e in f.episodes) for f in files] == [7, 7, 6]  # 20 episodes shared by 3 workers
    assert all(e.phase == "training" for f in files[1:] for e in f.episodes)

    iterations = metrics.summarize(files, metrics.align(files, None))

    assert len(iterations) == 8
    assert all(i.training.episodes == EPISODES_PER_ITERATION for i in iterations)
    for i in iterations:
        rows = [e for f in files for e in f.episodes if e.iteration == i.number and e.phase == "training"]
        assert i.training.progress == pytest.approx(statistics.fmean(e.progress for e in rows))
        assert i.evaluation.episodes == len(run.evaluations[i.checkpoint])


def test_our_reader_agrees_with_deepracer_utils_on_the_same_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """deepracer-utils (the community's reader) groups the same episodes into the same iterations."""
    TrainingMetrics = pytest.importorskip("deepracer.logs.metrics").TrainingMetrics
    run = training_run(random.Random(5), first=0, last=11, kept=[9, 10, 11], best=10)
    path = tmp_path / "TrainingMetrics.json"
    path.write_text(run.files["metrics/TrainingMetrics.json"])

    theirs = TrainingMetrics(None, fname=str(path)).getSummary()
    capsys.readouterr()  # it prints a line of its own
    ours = metrics.summarize(files_of(run), metrics.align(files_of(run), None))

    assert len(theirs) == len(ours)
    for row, iteration in zip(theirs.itertuples(), ours):
        assert row.Index[1] == iteration.number
        assert row.train_episodes == iteration.training.episodes
        assert row.train_completion == pytest.approx(iteration.training.progress)
        assert row.eval_episodes == iteration.evaluation.episodes
        assert row.eval_completion == pytest.approx(iteration.evaluation.progress)
        assert row.eval_reward == pytest.approx(iteration.evaluation.reward)


def test_the_checkpoint_index_time_stamp_anchors_a_run_continued_from_a_pretrained_model() -> None:
    """Checkpoint numbers of a continued run start past 0; the metrics' iterations start at 0."""
    run = training_run(random.Random(4), first=20, last=27, kept=[24, 25, 26, 27], best=25)
    files = files_of(run)
    index = {
        "best_checkpoint": {"name": "25_Step-900.ckpt", "avg_eval_metric": 99.2, "time_stamp": run.switch_times[25]},
        "last_checkpoint": {"name": "27_Step-999.ckpt", "avg_eval_metric": 87.6, "time_stamp": run.switch_times[27]},
    }

    alignment = metrics.align(files, index)

    assert alignment.offset == 20
    assert "last_checkpoint 27_Step-999.ckpt was recorded when iteration 7's evaluation ended" == alignment.how
    iterations = metrics.summarize(files, alignment)
    assert [i.checkpoint for i in iterations] == list(range(20, 28))
    assert iterations[5].evaluation.progress == pytest.approx(99.2)  # checkpoint 25, the designed best


def test_a_time_stamp_on_another_clock_falls_back_to_last_being_the_last_evaluation() -> None:
    run = training_run(random.Random(4), first=3, last=9, kept=[8, 9], best=8)
    files = files_of(run)
    wall_clock = {"last_checkpoint": {"name": "9_Step-1.ckpt", "time_stamp": 1_700_000_000.0}}

    alignment = metrics.align(files, wall_clock)

    assert alignment.offset == 3 and alignment.how.startswith("assumed: last_checkpoint 9_Step-1.ckpt")
    assert metrics.align(files, None).how.startswith("assumed: iteration i was driven by checkpoint i")


@pytest.mark.parametrize(
    "body, message",
    [
        (b"{not json", "not valid JSON"),
        (b'{"version": "2"}', "no 'metrics' list"),
        (b'{"metrics": [{"episode": 1}]}', "entry 0 has no 'trial', 'phase'"),
        (
            b'{"metrics": [{"episode": 1, "trial": 1, "phase": "racing", "completion_percentage": 5,'
            b' "elapsed_time_in_milliseconds": 9, "episode_status": "x", "reward_score": 1}]}',
            "phase 'racing'",
        ),
        (
            b'{"metrics": [{"episode": 1, "trial": "one", "phase": "training", "completion_percentage": 5,'
            b' "elapsed_time_in_milliseconds": 9, "episode_status": "x", "reward_score": 1}]}',
            "'trial' is 'one', not a number",
        ),
    ],
)
def test_a_malformed_metrics_file_is_one_line_naming_the_file(body: bytes, message: str) -> None:
    with pytest.raises(DrtasksError) as caught:
        metrics.parse_metrics(body, "s3://b/m/metrics/TrainingMetrics.json", 0)
    assert caught.value.message.startswith("s3://b/m/metrics/TrainingMetrics.json")
    assert message in caught.value.message and "\n" not in caught.value.message


def test_load_run_reads_every_worker_file_from_real_s3(s3_server: Any, bucket: str) -> None:
    seeded = seed_model(s3_server.client(), bucket, "multi", workers=2, first_checkpoint=5, checkpoints=(9, 10, 11), simtrace_iterations=0)
    location = s3_server.location(bucket, "multi")
    client = s3_server.client()
    model = SourceModel.load(client, location)

    run = metrics.load_run(client, location, "multi/metrics", model.index)

    assert [f.url for f in run.files] == [f"s3://{bucket}/multi/metrics/TrainingMetrics.json", f"s3://{bucket}/multi/metrics/TrainingMetrics_1.json"]
    assert run.alignment.offset == 5 and run.best_model_metric == "progress"
    for number in (9, 10, 11):
        evaluation = run.evaluation_of(number)
        assert evaluation is not None
        assert evaluation.progress == pytest.approx(seeded.checkpoints[number].avg_eval_metric)


def test_metrics_outside_the_model_prefix_are_listed_there(s3_server: Any, bucket: str) -> None:
    client = s3_server.client()
    seed_model(client, bucket, "m", checkpoints=(2, 3), simtrace_iterations=0)
    body = client.get_object(Bucket=bucket, Key="m/metrics/TrainingMetrics.json")["Body"].read()
    client.put_object(Bucket=bucket, Key="DeepRacer-Metrics/TrainingMetrics.json", Body=body)
    client.put_object(Bucket=bucket, Key="DeepRacer-Metrics/evaluation/evaluation-1.json", Body=b"{}")
    location = s3_server.location(bucket, "m")

    run = metrics.load_run(client, location, "DeepRacer-Metrics", None)

    assert [f.url for f in run.files] == [f"s3://{bucket}/DeepRacer-Metrics/TrainingMetrics.json"]
    with pytest.raises(DrtasksError, match=r"no training metrics in s3://.*/nowhere/ \(TrainingMetrics.json\)"):
        metrics.load_run(client, location, "nowhere", None)
