"""What a new user tripped on: each case as the behaviour they should have met instead."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.cli import PROJECT_ROOT, drtasks, run
from tests.drfc import write_env_files

PROFILE_TASKS = ("upload", "increment", "car-zip", "import-model", "models", "config", "ship",
                 "model-info", "download-asset", "delete-model", "submit", "leaderboard")


@pytest.fixture
def dr_dir(tmp_path: Path, s3_server: Any, model: Any, upload_bucket: str) -> Path:
    return write_env_files(tmp_path, s3_server, model, upload_bucket)


def test_plan_tables_fit_80_columns_and_never_cut_a_key(dr_dir: Path, model: Any) -> None:
    result = drtasks("upload", "-d", dr_dir=dr_dir, env={"COLUMNS": "80"})
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert "…" not in result.out  # folded, never cut with an ellipsis
    # Every key of the plan can be read back from the folded key column.
    key_column = "".join(line.split("│")[2].strip() for line in lines if line.count("│") >= 6)
    for key in json.loads(drtasks("upload", "-d", "--json", dr_dir=dr_dir).out)["steps"][0]["items"]:
        assert key["key"].split("/", 1)[1] in key_column


def test_profiles_and_config_do_not_break_words_at_80_columns(dr_dir: Path) -> None:
    for command in (("profiles",), ("config", "--profile", "car")):
        result = drtasks(*command, dr_dir=dr_dir, env={"COLUMNS": "80"})
        assert result.code == 0, result.err
        assert max(len(line) for line in result.out.splitlines()) <= 80
    described = drtasks("profiles", dr_dir=dr_dir, env={"COLUMNS": "80"}).out
    for word in "Physical car archive of the last checkpoint, saved locally too".split():
        assert re.search(rf"(^|[\s│]){re.escape(word)}([\s│]|$)", described, re.M), word


def test_piped_output_follows_columns(dr_dir: Path) -> None:
    wide = drtasks("upload", "-d", dr_dir=dr_dir, env={"COLUMNS": "132"})
    assert max(len(line) for line in wide.out.splitlines()) <= 132


@pytest.mark.parametrize("task", PROFILE_TASKS)
def test_every_task_takes_the_profile_as_dash_p(dr_dir: Path, task: str) -> None:
    help_text = drtasks("--help", task, dr_dir=dr_dir).out
    assert re.search(r"-p(\s|\[)[^\n]*--profile|-p STRING, --profile", help_text) or "-p, --profile" in help_text, help_text


def test_upload_dash_p_means_the_profile_not_a_prefix(dr_dir: Path) -> None:
    result = drtasks("upload", "-p", "demo-that-does-not-exist", "-d", dr_dir=dr_dir)
    assert result.code != 0 and "unknown profile 'demo-that-does-not-exist'" in result.err


def test_target_is_accepted_by_upload_only_with_an_import(dr_dir: Path) -> None:
    result = drtasks("upload", "--target", "droa", "-d", dr_dir=dr_dir)
    assert result.code != 0 and "Traceback" not in result.text
    assert "--target chooses where --import imports" in result.err


def test_drfc_commands_explain_every_switch(dr_dir: Path) -> None:
    for command, switches in (
        ("dr-upload-model", ("-f", "-w", "-d", "-b", "-c N", "-p PREFIX", "-i", "-I NAME", "-1", "-L")),
        ("dr-increment-upload-model", ("-d DELIMITER", "-w", "-f")),
        ("dr-create-car-zip", ("-b", "-p PREFIX", "-o FILE", "-f")),
        ("dr-upload-car-zip", ("-b", "-f", "-L", "-p PREFIX")),
    ):
        for flag in ("-h", "--help"):
            result = run(command, flag, dr_dir=dr_dir)
            assert result.code == 0 and result.out.startswith(f"Usage: {command}")
            explained = {line.split()[0] + (" " + line.split()[1] if line.split()[1].isupper() else "") for line in result.out.splitlines() if line.startswith("  -")}
            assert set(switches) <= explained, (command, explained)


def test_dr_upload_model_refuses_local_with_import_as_drfc_does(dr_dir: Path) -> None:
    result = run("dr-upload-model", "-L", "-i", dr_dir=dr_dir)
    assert result.code != 0 and result.err.count("\n") == 1 and "-L" in result.err and "-i" in result.err


def test_counts_are_plural_where_they_should_be_and_match_the_rows(dr_dir: Path, s3_server: Any, upload_bucket: str) -> None:
    s3_server.client().put_object(Bucket=upload_bucket, Key="race-model-1/stray.txt", Body=b"x")
    result = drtasks("upload", "-d", dr_dir=dr_dir)
    assert "1 other target object kept (use --wipe to delete it)" in result.out
    plan = json.loads(drtasks("upload", "-d", "-w", "--json", dr_dir=dr_dir).out)["steps"][0]
    summary = plan["summary"]
    assert summary["add"] + summary["replace"] + summary["unchanged"] + summary["delete"] + summary["abort"] == len(plan["items"])
    assert summary["objects"] == len([i for i in plan["items"] if i["action"] not in ("delete", "abort")])
    assert "1 to delete" in drtasks("upload", "-d", "-w", dr_dir=dr_dir).out


def test_the_readme_states_the_part_size_the_code_uses() -> None:
    from drtasks.transfer import TransferConfig

    readme = (PROJECT_ROOT / "README.md").read_text()
    stated = {int(n) for n in re.findall(r"streamed (?:in|parts are) (\d+) MiB", readme)}
    assert len(re.findall(r"streamed (?:in|parts are) (\d+) MiB", readme)) >= 2  # the engine's section and Speed
    assert stated == {TransferConfig().part_size // (1024 * 1024)}


def test_a_missing_setting_names_the_dr_dir_and_the_files_read(tmp_path: Path) -> None:
    (tmp_path / "system.env").write_text("DR_LOCAL_S3_BUCKET=bucket\n")
    read = drtasks("upload", "-d", dr_dir=tmp_path)
    assert read.code != 0 and read.err.count("\n") == 1
    assert "DR_UPLOAD_S3_PREFIX is not set" in read.err and f"DR_DIR={tmp_path}; read: system.env" in read.err
    missing = drtasks("upload", "-d", env={"DR_DIR": str(tmp_path / "nope")})
    assert f"DR_DIR={tmp_path / 'nope'} does not exist" in missing.err
    (tmp_path / "a-file").write_text("")
    a_file = drtasks("upload", "-d", env={"DR_DIR": str(tmp_path / "a-file")})
    assert "is a file, not a folder" in a_file.err
