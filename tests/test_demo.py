"""inv local-s3 and inv demo: the newcomer's first run, on the embedded S3 only."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import pytest

from tests.cli import drtasks


@pytest.fixture
def home(tmp_path: Path) -> Iterator[dict[str, str]]:
    """A private cache dir for the embedded server; the server is stopped whatever happens."""
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache"), "DRTASKS_CREDENTIALS_FILE": str(tmp_path / "cache" / "drtasks" / "credentials")}
    yield env
    drtasks("local-s3", "--stop", dr_dir=tmp_path, env=env)


def test_local_s3_starts_reports_and_stops_without_printing_the_secret(tmp_path: Path, home: dict[str, str]) -> None:
    assert "not running" in drtasks("local-s3", "--status", dr_dir=tmp_path, env=home).out
    started = drtasks("local-s3", dr_dir=tmp_path, env=home)
    assert started.code == 0, started.err
    assert "Started: embedded S3 at http://127.0.0.1:" in started.out
    assert "DR_LOCAL_S3_PROFILE=drtasks-local" in started.out
    secret = next(line.split("=", 1)[1].strip() for line in Path(home["DRTASKS_CREDENTIALS_FILE"]).read_text().splitlines() if line.startswith("aws_secret_access_key"))
    assert secret not in started.text
    status = json.loads(drtasks("local-s3", "--status", "--json", dr_dir=tmp_path, env=home).out)
    assert status["endpoint_url"].startswith("http://127.0.0.1:") and secret not in json.dumps(status)
    again = drtasks("local-s3", dr_dir=tmp_path, env=home)
    assert "Running: embedded S3 at " + status["endpoint_url"] in again.out  # reused, same endpoint
    assert "Stopped the embedded S3." in drtasks("local-s3", "--stop", dr_dir=tmp_path, env=home).out
    assert "not running" in drtasks("local-s3", "--status", dr_dir=tmp_path, env=home).out


def test_demo_seeds_uploads_reuploads_and_packs_for_the_car(tmp_path: Path, home: dict[str, str]) -> None:
    # A real DRfC environment variable must not send the demo anywhere else.
    env = {**home, "DR_UPLOAD_S3_BUCKET": "someones-real-bucket"}
    result = drtasks("demo", dr_dir=tmp_path, env=env, timeout=300)
    assert result.code == 0, result.err
    out = result.out
    assert "Seeded a sample trained model" in out
    assert "someones-real-bucket" not in out
    first, second, car = out.split("1. upload")[1], out.split("2. upload again")[1], out.split("3. car-zip")[1]
    assert "+ " in first and "uploaded checkpoint 19_Step-" in first
    assert "12 unchanged" in second and "Nothing to do" in second
    assert "model_13.pb" in car and "agent/model.pb" in car and "carfile.tar.gz" in car
    assert (tmp_path / "profiles" / "demo.yaml").is_file()

    # The written profile drives the same model from the user's own commands.
    chain = json.loads(drtasks("upload", "--profile", "demo", "--dry-run", "--json", dr_dir=tmp_path, env=home).out)
    assert chain["profile"] == "demo" and chain["chain"] == ["upload"]
    assert {item["action"] for item in chain["steps"][0]["items"]} == {"unchanged"}
    again = drtasks("demo", dr_dir=tmp_path, env=home, timeout=300)
    assert again.code == 0 and "Seeded" not in again.out


def test_demo_keeps_a_demo_profile_the_user_edited(tmp_path: Path, home: dict[str, str]) -> None:
    assert drtasks("demo", dr_dir=tmp_path, env=home, timeout=300).code == 0
    profile = tmp_path / "profiles" / "demo.yaml"
    edited = profile.read_text().replace("checkpoint: last", "checkpoint: best")
    profile.write_text(edited)
    again = drtasks("demo", dr_dir=tmp_path, env=home, timeout=300)
    assert again.code == 0, again.err
    assert "Kept your edited profile" in again.out
    assert profile.read_text() == edited
