"""inv checkpoints and inv inventory on real S3: the evidence for choosing, and what is where."""

from __future__ import annotations

import json
import os
import re
import struct
from pathlib import Path
from typing import Any

import pytest

from drtasks import inventory
from drtasks.s3 import S3Location, make_client
from drtasks.sample_model import seed_model
from tests.cli import PROJECT_ROOT, drtasks, in_terminal
from tests.fault_proxy import FaultProxy
from tests.drfc import UPLOAD_PREFIX, write_env_files

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def dr_dir(tmp_path: Path, s3_server: Any, model: Any, upload_bucket: str) -> Path:
    return write_env_files(tmp_path, s3_server, model, upload_bucket)


def write_profile(dr_dir: Path, name: str, text: str) -> None:
    (dr_dir / "profiles").mkdir(exist_ok=True)
    (dr_dir / "profiles" / f"{name}.yaml").write_text(text)


def checkpoints_json(dr_dir: Path, *args: str) -> dict[str, Any]:
    result = drtasks("checkpoints", "--json", *args, dr_dir=dr_dir)
    assert result.code == 0, result.err
    return json.loads(result.out)


# -- inv checkpoints ---------------------------------------------------------------------------------


def table_row(out: str, checkpoint: int) -> str:
    """The table's line of ``checkpoint`` (its second column)."""
    return next(line for line in out.splitlines() if re.match(rf"│[^│]*│\s+{checkpoint} │", line))


def test_checkpoints_json_joins_training_evaluation_and_the_kept_checkpoints(dr_dir: Path, model: Any) -> None:
    report = checkpoints_json(dr_dir)

    assert report["kept"] == [10, 13, 16, 19] and (report["best"], report["last"]) == (13, 19)
    assert report["best_model_metric"] == "progress" and report["alignment"]["offset"] == 0
    assert {metric: v["checkpoint"] for metric, v in report["best_by"].items()} == {"progress": 13, "reward": 10, "laptime": 16}
    rows = {row["checkpoint"]: row for row in report["iterations"]}
    assert sorted(rows) == list(range(20))
    assert all(row["training"]["episodes"] == 20 and row["evaluation"]["episodes"] == 5 for row in rows.values())
    assert rows[16]["evaluation"] == {"episodes": 5, "reward": rows[16]["evaluation"]["reward"], "progress": 83.2, "laps": 3, "lap_time": 11.84, "best_lap": 11.7}
    assert rows[13]["marks"] == ["best", "best-by progress"] and rows[19]["marks"] == ["last"]
    assert rows[16]["name"] == model.checkpoints[16].name and rows[15]["name"] is None and not rows[15]["kept"]
    evaluation = model.evaluations[10]
    assert rows[10]["evaluation"]["reward"] == pytest.approx(sum(e["reward_score"] for e in evaluation) / len(evaluation), abs=0.01)


def test_checkpoints_table_marks_kept_rows_and_gives_each_verdict_without_a_chart_when_piped(dr_dir: Path) -> None:
    result = drtasks("checkpoints", dr_dir=dr_dir)

    assert result.code == 0, result.err
    row_16 = next(line for line in result.out.splitlines() if re.search(r"│\s+16 │\s+16 │", line))
    assert "11.84 s" in row_16 and "3/5" in row_16 and "best-by laptime" in row_16
    assert "best-by progress: checkpoint 13 (mean evaluation progress 99.2 % over 5 episodes;" in result.out
    assert "best-by laptime: checkpoint 16 (mean lap 11.84 s over 3 completed evaluation laps; 19: 12.30 s" in result.out
    assert "note: iterations and checkpoints: last_checkpoint" in result.out
    assert "kept checkpoints" not in result.out and "▁" not in result.out  # the chart is for terminals


def test_at_80_columns_the_table_keeps_every_value_whole_and_leaves_the_training_columns_out(dr_dir: Path) -> None:
    wide = drtasks("checkpoints", dr_dir=dr_dir)
    narrow = drtasks("checkpoints", dr_dir=dr_dir, env={"COLUMNS": "80"})

    assert narrow.code == 0, narrow.err
    assert all(len(line) <= 80 for line in narrow.out.splitlines())
    assert "training columns left out at 80 columns: widen the terminal, or see --json" in narrow.out
    assert "train reward" in wide.out and "reward" in narrow.out and "train" not in narrow.out.split("training columns")[0]
    row_16 = next(line for line in narrow.out.splitlines() if re.match(r"\s+16\s+16\s", line))
    assert re.search(r"\b5\s+83\.2 %\s+201\.6\s+3/5\s+11\.84 s\s+best-by\b", row_16)  # no value cut short, no "…"
    assert "…" not in narrow.out


def test_on_a_terminal_a_compact_chart_comes_first(dr_dir: Path) -> None:
    result = in_terminal("checkpoints", dr_dir=dr_dir, columns=100)

    assert result.code == 0, result.out
    lines = [re.sub(r"\x1b\[[0-9;]*m", "", line) for line in result.out.splitlines()]
    chart = {line[:22].strip(): line[22:] for line in lines[:6] if line[:22].strip()}
    assert set(chart) >= {"eval progress %", "train progress %", "eval laps completed", "kept checkpoints"}
    assert len(chart["eval progress %"]) == 20 and set(chart["eval progress %"]) <= set("▁▂▃▄▅▆▇█")
    assert [i for i, c in enumerate(chart["kept checkpoints"]) if c != " "] == [10, 13, 16, 19]
    assert chart["kept checkpoints"][13] == "B" and chart["kept checkpoints"][19] == "L"
    assert any("best-by laptime: checkpoint 16" in line for line in lines)


def test_plot_writes_a_png_of_the_curves(dr_dir: Path, tmp_path: Path) -> None:
    target = tmp_path / "curves.png"

    result = drtasks("checkpoints", "--plot", str(target), "--json", dr_dir=dr_dir)

    assert result.code == 0, result.err
    assert json.loads(result.out)["kept"] == [10, 13, 16, 19]  # stdout stays JSON; the file is reported on stderr
    assert f"Wrote {target}" in result.err
    data = target.read_bytes()
    assert data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (1100, 850) and len(data) > 30_000
    assert not list(tmp_path.glob("*.part"))


@pytest.mark.parametrize("name, message", [("curves.jpg", "the plot is a PNG"), ("missing/curves.png", "does not exist")])
def test_a_plot_path_that_cannot_be_written_is_refused_first(dr_dir: Path, tmp_path: Path, name: str, message: str) -> None:
    result = drtasks("checkpoints", "--plot", str(tmp_path / name), dr_dir=dr_dir)
    assert result.code != 0 and "Traceback" not in result.text
    assert len(result.err.strip().splitlines()) == 1 and message in result.err


def test_plot_without_matplotlib_says_which_extra_to_install(tmp_path: Path) -> None:
    shadow = tmp_path / "no-matplotlib" / "matplotlib"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError(\"No module named 'matplotlib'\")\n")
    path = f"{PROJECT_ROOT}{os.pathsep}{shadow.parent}"

    result = drtasks("checkpoints", "--plot", str(tmp_path / "c.png"), dr_dir=tmp_path, env={"PYTHONPATH": path})

    assert result.code != 0 and "Traceback" not in result.text
    assert result.err.strip() == "drtasks: --plot needs matplotlib: pip install 'drtasks[analysis]'"


def test_checkpoints_shows_which_checkpoint_each_profiles_target_holds(dr_dir: Path, model: Any) -> None:
    write_profile(dr_dir, "race", "description: race\nupload:\n  prefix: race-weekend\n")
    assert drtasks("upload", "-f", "--profile", "race", "-c", "16", dr_dir=dr_dir).code == 0
    assert drtasks("upload", "-f", "--best", dr_dir=dr_dir).code == 0  # the env files' own target

    report = checkpoints_json(dr_dir)

    shipped = {s["profile"]: s for s in report["shipped"]}
    assert shipped["race"]["number"] == 16 and shipped["race"]["target"].endswith("/race-weekend")
    assert shipped["(env files)"]["number"] == 13 and shipped["(env files)"]["target"].endswith(f"/{UPLOAD_PREFIX}")
    rows = {row["checkpoint"]: row for row in report["iterations"]}
    assert rows[16]["shipped"] == ["race"] and "(env files)" in rows[13]["shipped"]
    assert any(note.startswith("profile league: upload target s3://dr-league-uploads/") and "skipped" in note for note in report["notes"])

    table = drtasks("checkpoints", dr_dir=dr_dir)
    assert table.code == 0, table.err
    row = {n: table_row(table.out, n) for n in (13, 16, 19)}
    assert "best, best-by progress, shipped: (env files)" in row[13] and "shipped: race" in row[16]
    assert row[19].rstrip(" │").endswith("last") and "shipped" not in row[19]


def test_multi_worker_training_is_merged_per_iteration(s3_server: Any, bucket: str, upload_bucket: str, tmp_path: Path) -> None:
    seeded = seed_model(s3_server.client(), bucket, "multi", workers=3, checkpoints=(5, 6, 7), first_checkpoint=2, simtrace_iterations=0)
    dr_dir = write_env_files(tmp_path, s3_server, seeded, upload_bucket)

    report = checkpoints_json(dr_dir)

    assert len(report["metrics"]) == 3 and report["alignment"]["offset"] == 2
    assert [row["checkpoint"] for row in report["iterations"]] == [2, 3, 4, 5, 6, 7]
    assert all(row["training"]["episodes"] == 20 for row in report["iterations"])
    assert report["best_by"]["progress"]["checkpoint"] == seeded.best == 6


def test_a_kept_checkpoint_beyond_the_metrics_has_a_row_and_a_missing_evaluation_is_null(
    s3_server: Any, bucket: str, upload_bucket: str, tmp_path: Path
) -> None:
    """Checkpoint 20 was saved after the last evaluation; the run stopped before evaluating 19."""
    client = s3_server.client()
    seeded = seed_model(client, bucket, "cut", checkpoints=(10, 13, 16, 19), unevaluated=(20,), simtrace_iterations=0)
    key = seeded.key("metrics/TrainingMetrics.json")
    body = json.loads(client.get_object(Bucket=bucket, Key=key)["Body"].read())
    last_training = max(i for i, e in enumerate(body["metrics"]) if e["phase"] == "training")
    body["metrics"] = body["metrics"][: last_training + 1]  # iteration 19's evaluation never ran
    client.put_object(Bucket=bucket, Key=key, Body=json.dumps(body).encode())
    dr_dir = write_env_files(tmp_path, s3_server, seeded, upload_bucket)

    report = checkpoints_json(dr_dir)

    rows = {row["checkpoint"]: row for row in report["iterations"]}
    assert list(rows) == list(range(21)) and report["kept"] == [10, 13, 16, 19, 20]
    assert rows[19]["iteration"] == 19 and rows[19]["training"]["episodes"] == 20 and rows[19]["marks"] == ["last"]
    assert rows[19]["evaluation"] == {"episodes": 0, "reward": None, "progress": None, "laps": 0, "lap_time": None, "best_lap": None}
    assert rows[20]["iteration"] is None and rows[20]["kept"] and rows[20]["name"] == seeded.checkpoints[20].name
    assert rows[20]["training"] == {"episodes": 0, "reward": None, "progress": None, "laps": 0, "lap_time": None, "best_lap": None}
    assert all(type(row["checkpoint"]) is int for row in rows.values()) and type(rows[5]["iteration"]) is int
    assert type(rows[16]["evaluation"]["laps"]) is int and type(rows[16]["evaluation"]["lap_time"]) is float
    assert "kept without evaluation episodes in the metrics: 19, 20" in report["notes"]

    table = drtasks("checkpoints", dr_dir=dr_dir)
    assert table.code == 0, table.err
    cells = [cell.strip() for cell in table_row(table.out, 20).strip("│").split("│")]
    assert cells[:3] == ["", "20", "yes"] and not any(cells[3:])  # kept, nothing measured
    cells = [cell.strip() for cell in table_row(table.out, 19).strip("│").split("│")]
    assert cells[:4] == ["19", "19", "yes", "20"] and cells[6:11] == ["0", "", "", "", ""]


def test_the_report_is_a_frame_of_iterations_merged_with_the_checkpoints(s3_server: Any, model: Any) -> None:
    """The outer merge keeps every iteration and every checkpoint the model's files name, even one
    a profile's target still holds after training deleted it."""
    from drtasks.checkpoint_report import COLUMNS, build_report
    from drtasks.inventory import Shipment, Survey
    from drtasks.checkpoint_choice import load_run
    from drtasks.model import SourceModel

    client = s3_server.client()
    source = SourceModel.load(client, s3_server.location(model.bucket, model.prefix))
    run = load_run(client, source, f"{model.prefix}/metrics")
    target = s3_server.location("uploads", "old")
    survey = Survey(shipments=[Shipment("old", target, "25_Step-9.ckpt", source.location), Shipment("older", target, "7_Step-3.ckpt", source.location)])

    report = build_report(source, run, survey)

    table = report.table
    assert tuple(table.columns) == COLUMNS and table["checkpoint"].is_monotonic_increasing
    assert list(table["checkpoint"]) == [*range(20), 25]
    assert str(table["iteration"].dtype) == "Int64" and str(table["evaluation.episodes"].dtype) == "int64"
    by_checkpoint = table.set_index("checkpoint")
    assert by_checkpoint.loc[25, "shipped"] == ["old"] and not by_checkpoint.loc[25, "kept"]
    assert by_checkpoint.loc[7, "shipped"] == ["older"] and by_checkpoint.loc[7, "iteration"] == 7
    assert list(by_checkpoint.loc[[13, 16, 19], "marks"]) == [["best", "best-by progress"], ["best-by laptime"], ["last"]]
    assert report.records()[-1]["iteration"] is None and report.records()[-1]["evaluation.progress"] is None


HEAVY_FOR_OTHER_TASKS = ("pandas", "matplotlib", "tensorflow", "openvino", "docker", "deepracer", "flask")


def test_upload_with_best_by_never_imports_what_only_other_tasks_need(dr_dir: Path) -> None:
    """The metrics reader behind --best-by is plain Python, and the upload's start-up loads no
    analysis, model-conversion, container or console package: those belong to other tasks."""
    result = drtasks("upload", "--dry-run", "--best-by", "laptime", dr_dir=dr_dir, env={"PYTHONPROFILEIMPORTTIME": "1"})

    assert result.code == 0, result.err
    imported = {line.rsplit("|", 1)[1].strip() for line in result.err.splitlines() if line.startswith("import time:")}
    # Every import statement is timed (a task module itself is loaded by importlib, which is not).
    assert {"drtasks.steps.upload", "drtasks.checkpoint_choice", "drtasks.metrics"} <= imported
    heavy = {name for name in imported if name.split(".")[0] in HEAVY_FOR_OTHER_TASKS}
    assert not heavy, f"upload imported {sorted(heavy)[:5]}"
    assert "best-by laptime: checkpoint 16" in result.out


def test_checkpoints_without_metrics_is_one_line(s3_server: Any, bucket: str, upload_bucket: str, tmp_path: Path) -> None:
    seeded = seed_model(s3_server.client(), bucket, "bare", checkpoints=(3, 4), with_metrics=False, simtrace_iterations=0)
    dr_dir = write_env_files(tmp_path, s3_server, seeded, upload_bucket)

    result = drtasks("checkpoints", dr_dir=dr_dir)

    assert result.code != 0 and result.out == ""
    assert result.err.strip().splitlines() == [
        f"drtasks: no training metrics in s3://{bucket}/bare/metrics/ (TrainingMetrics.json): without them no checkpoint can be judged by its evaluation"
    ]


# -- inv inventory ------------------------------------------------------------------------------------


@pytest.fixture
def two_models(s3_server: Any, model: Any) -> Any:
    """The seeded model plus a second one, nested one level down, in the same training bucket."""
    return seed_model(s3_server.client(), model.bucket, "experiments/round-2", checkpoints=(4, 5, 6), best=5, seed=3, simtrace_iterations=40)


def test_inventory_lists_each_model_with_what_was_shipped_and_backed_up(dr_dir: Path, s3_server: Any, model: Any, two_models: Any, bucket_b: str, s3_server_b: Any) -> None:
    write_profile(dr_dir, "race", "description: race\nupload:\n  prefix: race-weekend\ncheckpoint: best-by:laptime\n")
    write_profile(
        dr_dir,
        "offline",
        "description: a server that is down\nupload:\n  endpoint_url: http://127.0.0.1:9\n  prefix: x\n",
    )
    write_profile(
        dr_dir,
        "vault",
        f"description: keeps backups\nbackup:\n  to: s3://{bucket_b}/backups\n"
        f"  endpoint_url: {s3_server_b.endpoint_url}\n  aws_profile: {s3_server_b.aws_profile}\n",
    )
    assert drtasks("upload", "-f", "--profile", "race", dr_dir=dr_dir).code == 0
    manifest = {"source": {"bucket": model.bucket, "prefix": model.prefix}, "checkpoints": [{"name": model.checkpoints[13].name}], "created": "2026-05-01T10:00:00Z"}
    s3_server_b.client().put_object(Bucket=bucket_b, Key=f"backups/{model.prefix}/2026-05-01/{inventory.BACKUP_MANIFEST}", Body=json.dumps(manifest))

    result = drtasks("inventory", "--json", dr_dir=dr_dir)

    assert result.code == 0, result.err
    found = json.loads(result.out)
    models = {m["prefix"]: m for m in found["models"]}
    assert sorted(models) == ["experiments/round-2", model.prefix]
    mine, other = models[model.prefix], models["experiments/round-2"]
    assert [c["number"] for c in mine["checkpoints"]] == [10, 13, 16, 19] and [c["number"] for c in other["checkpoints"]] == [4, 5, 6]
    assert (mine["best"], mine["best_metric"], mine["metric"]) == (model.best_checkpoint.name, 99.2, "progress")
    assert mine["last"] == model.last_checkpoint.name
    assert mine["model_bytes"] == sum(size for key, size in model.objects.items() if key.startswith(f"{model.prefix}/model/"))
    assert mine["last_written"] > 0
    race = next(s for s in mine["shipped"] if s["profile"] == "race")
    assert race["number"] == 16 and race["kept"] and race["target"].endswith("/race-weekend")
    assert other["shipped"] == [] and other["backups"] == []
    (backup,) = mine["backups"]
    assert backup["location"] == f"s3://{bucket_b}/backups/{model.prefix}/2026-05-01" and backup["checkpoints"] == [model.checkpoints[13].name]
    assert any(n.startswith("profile offline: upload target s3://") and "http://127.0.0.1:9" in n and "skipped" in n for n in found["notes"])

    table = drtasks("inventory", dr_dir=dr_dir)
    assert table.code == 0, table.err
    assert "experiments/round-2" in table.out and "race: 16" in table.out and "(1 checkpoint)" in table.out
    assert "note: profile offline" in table.out

    # At 80 columns each model is a block of labelled lines: nothing is cut short.
    narrow = drtasks("inventory", dr_dir=dr_dir, env={"COLUMNS": "80"})
    assert narrow.code == 0, narrow.err
    assert all(len(line) <= 80 for line in narrow.out.splitlines()) and "…" not in narrow.out
    fields = [line.split(None, 1) for line in narrow.out.splitlines() if line.startswith(" model ")]
    assert sorted(value.strip() for _label, value in fields) == ["experiments/round-2", model.prefix]
    assert re.search(r"^ best\s+13 \(99\.2 progress\)\s*$", narrow.out, re.M)
    assert re.search(rf"^ backups\s+s3://{bucket_b}/backups/", narrow.out, re.M)


def test_inventory_never_walks_inside_a_model(s3_server: Any, model: Any, two_models: Any) -> None:
    """Thousands of simtrace files must not be listed: one delimiter listing per folder level."""
    client = s3_server.client()
    # A model whose checkpoint index is gone is no model, and is not walked either.
    broken = seed_model(client, model.bucket, "broken-run", checkpoints=(1, 2), simtrace_iterations=5)
    client.delete_object(Bucket=model.bucket, Key=broken.key("model/deepracer_checkpoints.json"))
    # Every listing as the server receives it (botocore's or drtasks' own lean requests alike).
    proxy = FaultProxy(s3_server.endpoint_url).start()
    try:
        location = S3Location(model.bucket, "", proxy.endpoint_url, s3_server.aws_profile)
        models = inventory.find_models(make_client(location), location)
    finally:
        proxy.stop()
    listed = [(r.query.get("prefix", [""])[0], r.query.get("delimiter", [None])[0]) for r in proxy.requests if r.operation == "ListObjects"]

    assert [m.location.prefix for m in models] == ["experiments/round-2", model.prefix]
    assert not any("training-simtrace" in prefix for prefix, _ in listed)
    full = [prefix for prefix, delimiter in listed if delimiter is None]
    assert sorted(full) == ["experiments/round-2/model/", f"{model.prefix}/model/"]  # only model/ is listed in full


def test_the_tasks_and_the_best_by_flags_are_listed_with_help(tmp_path: Path) -> None:
    listed = drtasks("--list", dr_dir=tmp_path).out
    assert "  checkpoints " in listed and "  inventory " in listed
    for task in ("upload", "car-zip"):
        help_text = drtasks("--help", task, dr_dir=tmp_path).out
        assert "--best-by=STRING" in help_text and "best by progress, reward" in help_text
    assert "--plot=STRING" in drtasks("--help", "checkpoints", dr_dir=tmp_path).out
