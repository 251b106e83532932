"""inv ship: the steps a profile lists, planned together, shown as one table, asked once, run in order."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.cli import drtasks, run
from tests.drfc import UPLOAD_PREFIX, write_env_files
from tests.fault_proxy import FaultProxy, Rule, op


def keys(client: Any, bucket: str, prefix: str) -> set[str]:
    found: set[str] = set()
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{prefix}/"):
        found |= {item["Key"][len(prefix) + 1 :] for item in page.get("Contents", [])}
    return found


def profile(dr_dir: Path, name: str, text: str) -> None:
    (dr_dir / "profiles").mkdir(exist_ok=True)
    (dr_dir / "profiles" / f"{name}.yaml").write_text(text)


@pytest.fixture
def dr_dir(tmp_path: Path, s3_server: Any, model: Any, upload_bucket: str) -> Path:
    return write_env_files(tmp_path, s3_server, model, upload_bucket)


def test_a_dry_run_shows_every_step_in_one_plan_against_the_new_prefix(dr_dir: Path, s3_server: Any, upload_bucket: str) -> None:
    profile(dr_dir, "league", "steps: [car-zip, upload, increment]\n")
    before = (dr_dir / "run.env").read_text()
    result = drtasks("ship", "-p", "league", "-d", "--json", dr_dir=dr_dir)
    assert result.code == 0, result.err
    chain = json.loads(result.out)
    assert chain["profile"] == "league" and chain["chain"] == ["increment", "upload", "car-zip"]  # drtasks' order
    increment, upload, car_zip = chain["steps"]
    assert (increment["old"], increment["new"]) == (UPLOAD_PREFIX, "race-model-2")
    assert upload["target"] == f"s3://{upload_bucket}/race-model-2"  # planned against the NEW prefix
    assert car_zip["upload"]["target"] == f"s3://{upload_bucket}/race-model-2"
    assert (dr_dir / "run.env").read_text() == before
    assert keys(s3_server.client(), upload_bucket, "race-model-2") == set()

    table = drtasks("ship", "-p", "league", "-d", dr_dir=dr_dir)
    assert table.out.count("plan (profile league): increment -> upload -> car-zip") == 1  # ONE table
    assert "Plan: increment:" in table.out and "upload:" in table.out and "car-zip:" in table.out


def test_shipping_runs_the_steps_in_order_and_reports_each(dr_dir: Path, s3_server: Any, model: Any, upload_bucket: str) -> None:
    profile(dr_dir, "league", "checkpoint: best\nsteps: [increment, upload, car-zip]\n")
    result = drtasks("ship", "-p", "league", "-f", dr_dir=dr_dir)
    assert result.code == 0, result.err
    assert "DR_UPLOAD_S3_PREFIX=race-model-2" in (dr_dir / "run.env").read_text()
    shipped = keys(s3_server.client(), upload_bucket, "race-model-2")
    assert f"model/model_{model.best}.pb" in shipped and "carfile.tar.gz" in shipped
    assert "done (profile league): increment -> upload -> car-zip" in result.out
    assert result.out.count(" done ") >= 3


def test_the_chain_stops_at_the_first_failure_and_says_what_was_left(dr_dir: Path, s3_server: Any, upload_bucket: str) -> None:
    profile(dr_dir, "p", "steps: [upload, car-zip]\ncar_zip:\n  output: /proc/nope/x.tar.gz\n  upload: false\n")
    failing = drtasks("ship", "-p", "p", "-f", dr_dir=dr_dir)
    assert failing.code != 0 and "Traceback" not in failing.text
    assert "car-zip failed: --output /proc/nope/x.tar.gz: cannot write the archive" in failing.err
    assert "upload" in failing.out and "failed" in failing.out  # the results table
    assert "model/.coach_checkpoint" in keys(s3_server.client(), upload_bucket, UPLOAD_PREFIX)


@pytest.fixture
def proxied(s3_server: Any) -> Iterator[FaultProxy]:
    proxy = FaultProxy(s3_server.endpoint_url).start()
    yield proxy
    proxy.stop()


def test_later_steps_are_not_run_after_a_failure(tmp_path: Path, s3_server: Any, model: Any, upload_bucket: str, proxied: FaultProxy) -> None:
    dr_dir = write_env_files(tmp_path, s3_server, model, upload_bucket)
    (dr_dir / "system.env").write_text((dr_dir / "system.env").read_text().replace(f"DR_UPLOAD_S3_ENDPOINT_URL={s3_server.endpoint_url}", f"DR_UPLOAD_S3_ENDPOINT_URL={proxied.endpoint_url}"))
    profile(dr_dir, "p", "steps: [increment, upload, car-zip]\n")
    proxied.add(Rule("error", op("PutObject", r"training_params\.yaml$")))
    result = drtasks("ship", "-p", "p", "-f", dr_dir=dr_dir)
    assert result.code != 0 and "Traceback" not in result.text
    table = result.out[result.out.index("done (profile p)") :]
    assert "increment" in table and "upload" in table and "failed" in table and "not run" in table
    assert "carfile.tar.gz" not in keys(s3_server.client(), upload_bucket, "race-model-2")


def test_several_profiles_ship_one_after_another_from_one_read_of_the_source(tmp_path: Path, s3_server: Any, model: Any, upload_bucket: str, proxied: FaultProxy) -> None:
    dr_dir = write_env_files(tmp_path, s3_server, model, upload_bucket)
    (dr_dir / "system.env").write_text((dr_dir / "system.env").read_text().replace(f"DR_LOCAL_S3_ENDPOINT_URL={s3_server.endpoint_url}", f"DR_LOCAL_S3_ENDPOINT_URL={proxied.endpoint_url}"))
    profile(dr_dir, "summit", "upload:\n  prefix: summit-1\n")
    profile(dr_dir, "league", "upload:\n  prefix: league-1\n")
    result = drtasks("ship", "-p", "summit", "-p", "league", "-f", dr_dir=dr_dir)
    assert result.code == 0, result.err
    client = s3_server.client()
    assert "model/.coach_checkpoint" in keys(client, upload_bucket, "summit-1")
    assert "model/.coach_checkpoint" in keys(client, upload_bucket, "league-1")
    listings_of_model = [r for r in proxied.requests if r.operation == "ListObjects" and r.query.get("prefix") == [f"{model.prefix}/model/"]]
    assert len(listings_of_model) == 1


def test_an_unknown_step_in_a_profile_is_one_line_naming_the_file_and_line(dr_dir: Path) -> None:
    profile(dr_dir, "bad", "description: x\nsteps: [upload, teleport]\n")
    result = drtasks("ship", "-p", "bad", "-d", dr_dir=dr_dir)
    assert result.code != 0 and "Traceback" not in result.text and result.err.count("\n") == 1
    assert "bad.yaml:2" in result.err and "steps" in result.err


def test_dr_upload_model_increment_dry_run_plans_the_new_prefix_and_changes_nothing(dr_dir: Path, s3_server: Any, upload_bucket: str) -> None:
    before = (dr_dir / "run.env").read_text()
    result = run("dr-upload-model", "-1", "-d", dr_dir=dr_dir)
    assert result.code == 0, result.err
    assert f"s3://{upload_bucket}/race-model-2" in result.out and "race-model-1 -> race-model-2" in result.out
    assert (dr_dir / "run.env").read_text() == before
    assert keys(s3_server.client(), upload_bucket, "race-model-2") == set()


def test_increment_with_wipe_asks_first_and_a_refusal_changes_nothing(dr_dir: Path, s3_server: Any, upload_bucket: str) -> None:
    s3_server.client().put_object(Bucket=upload_bucket, Key="race-model-2/old", Body=b"x")
    before = (dr_dir / "run.env").read_text()
    result = run("dr-increment-upload-model", "-w", dr_dir=dr_dir, stdin="n\n")
    assert result.code != 0 and "Traceback" not in result.text
    assert (dr_dir / "run.env").read_text() == before
    assert keys(s3_server.client(), upload_bucket, "race-model-2") == {"old"}
