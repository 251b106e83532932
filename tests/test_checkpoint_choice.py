"""Checkpoint policies: last, best, a number, and best-by progress|reward|laptime chosen by evidence."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

import pytest

from drtasks import checkpoint_choice
from drtasks.config.targets import BestBy, parse_checkpoint
from drtasks.errors import DrtasksError
from drtasks.metrics import Stats
from drtasks.model import SourceModel
from drtasks.sample_model import seed_model
from tests.cli import drtasks
from tests.drfc import UPLOAD_PREFIX, write_env_files


def evaluation_means(entries: list[dict[str, Any]]) -> dict[str, float | None]:
    laps = [e["elapsed_time_in_milliseconds"] / 1000 for e in entries if e["episode_status"] == "Lap complete"]
    return {
        "progress": statistics.fmean(e["completion_percentage"] for e in entries),
        "reward": statistics.fmean(e["reward_score"] for e in entries),
        "laptime": statistics.fmean(laps) if laps else None,
    }


def expected_winner(model: Any, metric: str) -> int:
    """Computed here from the seeded evaluation entries, independently of drtasks' reader."""
    kept = [n for n in model.checkpoints if n in model.evaluations]
    scored = {n: v for n in kept if (v := evaluation_means(model.evaluations[n])[metric]) is not None}
    if metric == "laptime":
        return min(scored, key=lambda n: (scored[n], -n))
    return max(scored, key=lambda n: (scored[n], n))


@pytest.fixture
def source(s3_server: Any, seeded_model: Any) -> tuple[Any, SourceModel]:
    client = s3_server.client()
    return client, SourceModel.load(client, seeded_model.location)


@pytest.mark.parametrize("metric, winner", [("progress", 13), ("reward", 10), ("laptime", 16)])
def test_best_by_picks_a_different_kept_checkpoint_per_metric(source: Any, model: Any, metric: str, winner: int) -> None:
    client, loaded = source

    choice = checkpoint_choice.choose(client, loaded, BestBy(metric), f"{model.prefix}/metrics")

    assert choice.checkpoint.number == winner == expected_winner(model, metric) == model.roles[metric]
    assert choice.checkpoint.name == model.checkpoints[winner].name
    assert winner != model.last
    assert choice.reason.startswith(f"best-by {metric}: checkpoint {winner} (")


def test_the_laptime_reason_gives_the_evidence_and_the_runners_up(source: Any, model: Any) -> None:
    client, loaded = source

    reason = checkpoint_choice.choose(client, loaded, BestBy("laptime"), f"{model.prefix}/metrics").reason

    means = {n: evaluation_means(model.evaluations[n])["laptime"] for n in model.checkpoints}
    assert reason == (
        "best-by laptime: checkpoint 16 (mean lap 11.84 s over 3 completed evaluation laps; "
        f"19: {means[19]:.2f} s, 13: {means[13]:.2f} s, 10: {means[10]:.2f} s)"
    )
    assert "19: 12.30 s" in reason


def test_last_best_and_a_number_need_no_metrics_and_say_where_they_come_from(source: Any, model: Any) -> None:
    client, loaded = source
    nowhere = "no/metrics/here"  # never read for these policies

    last = checkpoint_choice.choose(client, loaded, "last", nowhere)
    best = checkpoint_choice.choose(client, loaded, "best", nowhere)
    numbered = checkpoint_choice.choose(client, loaded, 16, nowhere)

    assert (last.checkpoint.number, best.checkpoint.number, numbered.checkpoint.number) == (19, 13, 16)
    assert last.reason == "last: checkpoint 19 (last_checkpoint of model/deepracer_checkpoints.json, avg_eval_metric 87.6)"
    assert best.reason == "best: checkpoint 13 (best_checkpoint of model/deepracer_checkpoints.json, avg_eval_metric 99.2)"
    assert numbered.reason == "checkpoint 16 (chosen by number)"


def test_a_kept_checkpoint_without_evaluation_is_explained_and_cannot_win(s3_server: Any, bucket: str) -> None:
    client = s3_server.client()
    seeded = seed_model(client, bucket, "m", checkpoints=(10, 13, 16, 19), unevaluated=(20,), simtrace_iterations=0)
    loaded = SourceModel.load(client, s3_server.location(bucket, "m"))

    choice = checkpoint_choice.choose(client, loaded, BestBy("progress"), "m/metrics")

    assert choice.checkpoint.number == seeded.roles["progress"] == 13
    assert choice.reason.endswith("20: no evaluation episodes)")


def test_laptime_without_any_completed_lap_is_refused_with_the_evidence() -> None:
    candidates = [
        checkpoint_choice.Candidate(4, Stats(5, 120.0, 60.0, 0, None, None)),
        checkpoint_choice.Candidate(5, None),
    ]
    with pytest.raises(DrtasksError) as caught:
        checkpoint_choice.best_by(candidates, "laptime")
    assert caught.value.message == (
        "best-by laptime: no kept checkpoint has a completed evaluation lap "
        "(4: no completed lap in 5 evaluation episodes, 5: no evaluation episodes)"
    )


def test_ties_go_to_the_later_checkpoint_as_in_the_simapp() -> None:
    same = Stats(5, 200.0, 90.0, 2, 12.5, 12.0)
    number, _ = checkpoint_choice.best_by([checkpoint_choice.Candidate(7, same), checkpoint_choice.Candidate(9, same)], "laptime")
    assert number == 9
    number, _ = checkpoint_choice.best_by([checkpoint_choice.Candidate(7, same), checkpoint_choice.Candidate(9, same)], "progress")
    assert number == 9


@pytest.mark.parametrize(
    "text, policy",
    [("last", "last"), ("BEST", "best"), ("12", 12), ("best-by:laptime", BestBy("laptime")), ("best-by reward", BestBy("reward")), ("best-by: Progress", BestBy("progress"))],
)
def test_policy_text_forms(text: str, policy: Any) -> None:
    assert parse_checkpoint(text, "DR_UPLOAD_CHECKPOINT") == policy


def test_an_unknown_best_by_metric_names_where_it_came_from() -> None:
    with pytest.raises(DrtasksError, match=r"^DR_UPLOAD_CHECKPOINT \(env\): unknown best-by metric 'speed'; choose progress, reward or laptime$"):
        parse_checkpoint("best-by:speed", "DR_UPLOAD_CHECKPOINT (env)")


# -- through the tasks ---------------------------------------------------------------------------


@pytest.fixture
def dr_dir(tmp_path: Path, s3_server: Any, model: Any, upload_bucket: str) -> Path:
    return write_env_files(tmp_path, s3_server, model, upload_bucket)


def uploaded_checkpoint(s3_server: Any, upload_bucket: str) -> str:
    body = s3_server.client().get_object(Bucket=upload_bucket, Key=f"{UPLOAD_PREFIX}/model/deepracer_checkpoints.json")["Body"].read()
    return json.loads(body)["last_checkpoint"]["name"]


def test_upload_best_by_flag_uploads_the_winner_and_the_plan_says_why(dr_dir: Path, s3_server: Any, model: Any, upload_bucket: str) -> None:
    planned = drtasks("upload", "--best-by", "laptime", "--dry-run", "--json", dr_dir=dr_dir)
    assert planned.code == 0, planned.err
    (step,) = json.loads(planned.out)["steps"]
    notes = step["notes"]
    assert notes[0].startswith("best-by laptime: checkpoint 16 (mean lap 11.84 s over 3 completed evaluation laps; 19: 12.30 s")
    assert notes[0].endswith("; policy from flag (--best-by)")
    assert f"model/{model.checkpoints[16].name}.index" in planned.out

    result = drtasks("upload", "-f", "--best-by", "laptime", dr_dir=dr_dir)
    assert result.code == 0, result.err
    assert "note (upload): best-by laptime: checkpoint 16" in result.out
    assert uploaded_checkpoint(s3_server, upload_bucket) == model.checkpoints[16].name


@pytest.mark.parametrize("form", ["checkpoint: best-by:reward\n", "checkpoint:\n  best-by: reward\n"])
def test_a_profile_policy_in_either_form_and_a_flag_overrides_it(dr_dir: Path, s3_server: Any, model: Any, upload_bucket: str, form: str) -> None:
    (dr_dir / "profiles").mkdir()
    (dr_dir / "profiles" / "steady.yaml").write_text("description: the steady one\n" + form)

    result = drtasks("upload", "-f", "--profile", "steady", dr_dir=dr_dir)
    assert result.code == 0, result.err
    assert uploaded_checkpoint(s3_server, upload_bucket) == model.checkpoints[10].name
    assert "policy from profile (steady: profiles/steady.yaml:2)" in result.out

    result = drtasks("upload", "-f", "--profile", "steady", "-b", dr_dir=dr_dir)
    assert result.code == 0, result.err
    assert uploaded_checkpoint(s3_server, upload_bucket) == model.checkpoints[13].name
    rows = {row["key"]: row for row in json.loads(drtasks("config", "--profile", "steady", "--json", dr_dir=dr_dir).out)["settings"]}
    assert rows["DR_UPLOAD_CHECKPOINT"]["value"] == rows["checkpoint policy"]["value"] == "best-by:reward"


def test_an_unknown_metric_in_a_profile_is_one_line_with_file_and_line(dr_dir: Path, upload_bucket: str, s3_server: Any) -> None:
    (dr_dir / "profiles").mkdir()
    (dr_dir / "profiles" / "fast.yaml").write_text("description: fast\ncheckpoint:\n  best-by: speed\n")

    result = drtasks("upload", "-f", "--profile", "fast", dr_dir=dr_dir)

    assert result.code != 0 and "Traceback" not in result.text
    assert result.err.strip() == (
        f"drtasks: {dr_dir}/profiles/fast.yaml:3: checkpoint: unknown best-by metric 'speed'; choose progress, reward or laptime"
        " (got {'best-by': 'speed'})"
    )
    assert s3_server.client().list_objects_v2(Bucket=upload_bucket).get("KeyCount", 0) == 0


def test_policy_flags_exclude_each_other_and_a_bad_metric_is_refused(dr_dir: Path) -> None:
    both = drtasks("upload", "-f", "-b", "--best-by", "progress", dr_dir=dr_dir)
    assert both.code != 0 and both.err.strip() == "drtasks: --best and --best-by exclude each other"
    bad = drtasks("car-zip", "-f", "--from", "s3", "--best-by", "fastest", dr_dir=dr_dir)
    assert bad.code != 0 and bad.err.strip() == "drtasks: --best-by: unknown best-by metric 'fastest'; choose progress, reward or laptime"


def test_best_by_without_metrics_stops_before_anything_is_written(s3_server: Any, bucket: str, upload_bucket: str, tmp_path: Path) -> None:
    seeded = seed_model(s3_server.client(), bucket, "bare", checkpoints=(3, 4), with_metrics=False, simtrace_iterations=0)
    dr_dir = write_env_files(tmp_path, s3_server, seeded, upload_bucket)

    result = drtasks("upload", "-f", "--best-by", "progress", dr_dir=dr_dir)

    assert result.code != 0 and "Traceback" not in result.text
    assert result.err.strip() == (
        f"drtasks: no training metrics in s3://{bucket}/bare/metrics/ (TrainingMetrics.json): without them no checkpoint can be judged by its evaluation"
    )
    assert s3_server.client().list_objects_v2(Bucket=upload_bucket).get("KeyCount", 0) == 0


def test_car_zip_best_by_packs_the_winner_and_says_why(dr_dir: Path, s3_server: Any, model: Any, tmp_path: Path) -> None:
    out = tmp_path / "car"
    out.mkdir()
    result = drtasks("car-zip", "--from", "s3", "--best-by", "progress", "-N", "-o", f"{out}/", "-f", "--json", dr_dir=dr_dir)
    assert result.code == 0, result.err
    (step,) = json.loads(result.out)["steps"]
    assert step["origin"].endswith(
        f"model_13.pb (checkpoint {model.checkpoints[13].name}; best-by progress: checkpoint 13 (mean evaluation progress 99.2 % over 5 episodes;"
        " 10: 90.2 %, 19: 87.6 %, 16: 83.2 %); policy from flag (--best-by))"
    )
