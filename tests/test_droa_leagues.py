"""Leagues in DRoA: a profile names a leaderboard; submit a model to it once READY; show the ranking.

Servers as in tests/test_droa_lifecycle.py. The fake DRoA races a submission in a moment (QUEUED,
then COMPLETED with its stats) and keeps each racer's best ranking, as DRoA's job finalizer does.
The whole chain upload -> import -> submit runs against the real camera model, so that DRoA's
model validation passes and the model becomes READY.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.cli import Result, drtasks
from tests.droa_world import PASSWORD, USERNAME, Transit, cognito_env
from tests.drfc import UPLOAD_PREFIX, write_env_files
from tests.fakes.droa_api import FakeDroa, FakeLeaderboard


@pytest.fixture
def site(droa_site: FakeDroa) -> FakeDroa:
    return droa_site


@pytest.fixture
def env(moto_url: str, tmp_path: Path) -> dict[str, str]:
    return {**cognito_env(moto_url, tmp_path / "cache"), "DR_DROA_PASSWORD": PASSWORD}


def write_profile(dr_dir: Path, site: FakeDroa, transit: Transit, **extra: Any) -> None:
    """profiles/league.yaml: where the racer races, which model, which leaderboard."""
    data: dict[str, Any] = {
        "description": "the April league",
        "import": {"target": "droa", "droa_url": site.url, "droa_username": USERNAME, "droa_s3_endpoint_url": transit.proxy.url,
                   "name": "summit-7", "leaderboard": "April Open", "poll_seconds": 0.05},
    }
    for key, value in extra.items():
        if isinstance(value, dict):
            data.setdefault(key, {}).update(value)
        else:
            data[key] = value
    (dr_dir / "profiles").mkdir(exist_ok=True)
    (dr_dir / "profiles" / "league.yaml").write_text(yaml.safe_dump(data))


@pytest.fixture
def dr_dir(tmp_path: Path, site: FakeDroa, transit: Transit) -> Path:
    folder = tmp_path / "drfc"
    folder.mkdir()
    write_profile(folder, site, transit)
    return folder


@pytest.fixture
def board(site: FakeDroa) -> FakeLeaderboard:
    return site.add_leaderboard("April Open", "2022_april_open", "CLOCKWISE")


def refused(result: Result, *words: str) -> None:
    assert result.code != 0, result.text
    assert "Traceback" not in result.text and len(result.err.strip().splitlines()) == 1, result.err
    for word in words:
        assert word in result.err, result.err


def flat(text: str) -> str:
    return " ".join(text.split())


def test_the_profile_names_the_leaderboard(dr_dir: Path) -> None:
    result = drtasks("config", "-p", "league", "--json", dr_dir=dr_dir)

    assert result.code == 0, result.text
    settings = {row["key"]: row for row in json.loads(result.out)["settings"]}
    assert settings["DR_DROA_LEADERBOARD"]["value"] == "April Open" and "league" in settings["DR_DROA_LEADERBOARD"]["source"]


def test_submit_sends_the_profile_model_to_its_leaderboard_and_waits_for_the_race(
    site: FakeDroa, board: FakeLeaderboard, dr_dir: Path, env: dict[str, str]
) -> None:
    model = site.add_model("summit-7", USERNAME)
    site.add_ranking(board, "speedy", 11_500)
    site.add_ranking(board, "slowpoke", 14_000)

    result = drtasks("submit", "-p", "league", "-f", "--wait", dr_dir=dr_dir, env=env)

    assert result.code == 0, result.text
    [submission] = board.submissions
    assert (submission["modelId"], submission["status"]) == (model.model_id, "COMPLETED")
    assert "submission 1 of 3" in flat(result.out)
    assert "best lap 12.001 s over 3 completed lap(s); your rank on 'April Open': 2 (with 'summit-7')" in flat(result.out)


def test_submit_waits_until_the_model_is_ready(site: FakeDroa, board: FakeLeaderboard, dr_dir: Path, env: dict[str, str]) -> None:
    model = site.add_model("summit-7", USERNAME, status="IMPORTING")

    def import_finishes_while_polled() -> None:
        # The submit step polls GET /models/{id} (planning only lists /models): DRoA finishes meanwhile.
        while ("GET", f"/prod/models/{model.model_id}") not in site.calls:
            time.sleep(0.02)
        model.status = "READY"

    ready = threading.Thread(target=import_finishes_while_polled, daemon=True)
    ready.start()

    result = drtasks("submit", "-p", "league", "-f", dr_dir=dr_dir, env=env)

    ready.join(timeout=5)
    assert result.code == 0, result.text
    assert "'summit-7': IMPORTING" in result.out and "'summit-7': READY" in result.out
    assert [s["modelId"] for s in board.submissions] == [model.model_id]


def test_a_model_named_on_the_command_line_and_a_leaderboard_by_id(site: FakeDroa, board: FakeLeaderboard, dr_dir: Path, env: dict[str, str]) -> None:
    other = site.add_model("other-model", USERNAME)

    result = drtasks("submit", "-p", "league", "--model", other.model_id, "--leaderboard", board.leaderboard_id, "-f", dr_dir=dr_dir, env=env)

    assert result.code == 0, result.text
    assert [s["modelName"] for s in board.submissions] == ["other-model"]


def test_what_droa_would_refuse_is_refused_before_submitting(site: FakeDroa, dr_dir: Path, env: dict[str, str], transit: Transit) -> None:
    site.add_model("summit-7", USERNAME)
    site.add_leaderboard("Closed Cup", "2022_april_open", opened=False)
    site.add_leaderboard("Full Cup", "2022_april_open", max_submissions=0)
    twin_a = site.add_leaderboard("Twin Cup", "2022_april_open")
    twin_b = site.add_leaderboard("Twin Cup", "reInvent2019_wide")

    refused(drtasks("submit", "-p", "league", "-l", "Closed Cup", "-f", dr_dir=dr_dir, env=env),
            "'Closed Cup'", "closed", "The leaderboard is not accepting submissions.")
    refused(drtasks("submit", "-p", "league", "-l", "Full Cup", "-f", dr_dir=dr_dir, env=env),
            "allows 0 submission(s)", "Max number of submissions has been reached.")
    refused(drtasks("submit", "-p", "league", "-l", "Twin Cup", "-f", dr_dir=dr_dir, env=env),
            "'Twin Cup' names 2 DRoA leaderboards", twin_a.leaderboard_id, twin_b.leaderboard_id, "reInvent2019_wide")
    write_profile(dr_dir, site, transit, **{"import": {"leaderboard": None}})
    refused(drtasks("submit", "-p", "league", "-f", dr_dir=dr_dir, env=env), "no leaderboard to submit to", "import.leaderboard")
    assert all(not board.submissions for board in site.leaderboards.values())
    assert not any(method == "POST" for method, _ in site.calls)


def test_a_model_in_error_cannot_race(site: FakeDroa, board: FakeLeaderboard, dr_dir: Path, env: dict[str, str]) -> None:
    site.add_model("summit-7", USERNAME, status="ERROR")

    refused(drtasks("submit", "-p", "league", "-f", dr_dir=dr_dir, env=env), "is ERROR", "Model is not in a submittable state.")
    assert board.submissions == []


def test_the_leaderboard_shows_the_ranking_and_your_submissions(site: FakeDroa, board: FakeLeaderboard, dr_dir: Path, env: dict[str, str]) -> None:
    site.page_size = 1  # rankings and submissions come page by page; ranks count on across pages
    site.add_model("summit-7", USERNAME)
    site.add_ranking(board, "speedy", 11_500)
    site.add_ranking(board, "slowpoke", 14_000)
    assert drtasks("submit", "-p", "league", "-f", "--wait", dr_dir=dr_dir, env=env).code == 0

    table = drtasks("leaderboard", "-p", "league", dr_dir=dr_dir, env=env)
    as_json = drtasks("leaderboard", "-p", "league", "--json", dr_dir=dr_dir, env=env)

    assert table.code == 0, table.text
    lines = table.out.splitlines()
    rows = [line for line in lines if any(alias in line for alias in ("speedy", "slowpoke", USERNAME))]
    assert [next(a for a in ("speedy", USERNAME, "slowpoke") if a in row) for row in rows[:3]] == ["speedy", USERNAME, "slowpoke"]
    assert "11.500 s" in rows[0] and "12.001 s" in rows[1] and "summit-7" in rows[1] and "14.000 s" in rows[2]
    assert "your submissions" in table.out and "COMPLETED" in table.out and "You have 2 of 3 submission(s) left." in table.out
    document = json.loads(as_json.out)
    assert [(r["rank"], r["userProfile"]["alias"]) for r in document["rankings"]] == [(1, "speedy"), (2, USERNAME), (3, "slowpoke")]
    assert document["ranking"]["modelName"] == "summit-7" and "X-Amz-Signature" not in as_json.out


def test_without_a_leaderboard_every_leaderboard_is_listed(site: FakeDroa, dr_dir: Path, env: dict[str, str], transit: Transit) -> None:
    open_board = site.add_leaderboard("April Open", "2022_april_open", "CLOCKWISE")
    site.add_leaderboard("Winter Cup", "reInvent2019_wide", opened=False)
    write_profile(dr_dir, site, transit, **{"import": {"leaderboard": None}})

    result = drtasks("leaderboard", "-p", "league", dr_dir=dr_dir, env=env)

    assert result.code == 0, result.text
    assert "April Open" in result.out and open_board.leaderboard_id in result.out and "Winter Cup" in result.out
    assert "--leaderboard" in result.out


# =========================================================================== chains


@pytest.fixture
def real_league_dir(tmp_path: Path, s3_server: Any, real_models: Any, upload_bucket: str, site: FakeDroa, transit: Transit) -> tuple[Path, Any]:
    """DRfC's env files around the real camera model, and a league profile that ships it to DRoA and races it."""
    bucket = s3_server.new_bucket()
    model = real_models.seed(s3_server.client(), bucket, "rl-real-camera")
    s3_server.client().delete_object(Bucket=bucket, Key=model.key("training_params.yaml"))  # the DR_* settings write it
    dr_dir = write_env_files(tmp_path, s3_server, model, upload_bucket, run="DR_WORLD_NAME=2022_april_open_cw\n")
    write_profile(dr_dir, site, transit, steps=["upload", "import", "submit"], **{"import": {"name": None}})
    return dr_dir, model


def test_ship_uploads_imports_and_submits_once_ready(
    real_league_dir: tuple[Path, Any], site: FakeDroa, board: FakeLeaderboard, transit: Transit, s3_server: Any, upload_bucket: str, env: dict[str, str]
) -> None:
    dr_dir, _model = real_league_dir

    result = drtasks("ship", "-p", "league", "-f", dr_dir=dr_dir, env=env, timeout=300)

    assert result.code == 0, result.text
    site.wait_idle()  # the race
    [imported] = site.models.values()
    assert (imported.name, imported.status) == (UPLOAD_PREFIX, "READY")
    assert [s["modelId"] for s in board.submissions] == [imported.model_id]
    listed = s3_server.client().list_objects_v2(Bucket=upload_bucket, Prefix=UPLOAD_PREFIX + "/")
    assert listed.get("KeyCount", 0) > 0 and transit.objects()
    assert "upload -> import -> submit" in result.out and result.out.count("done") >= 3


def test_import_and_upload_chain_a_submission_when_asked(
    real_league_dir: tuple[Path, Any], site: FakeDroa, board: FakeLeaderboard, env: dict[str, str]
) -> None:
    dr_dir, _model = real_league_dir

    imported = drtasks("import-model", "-p", "league", "--submit", "--json", "-d", dr_dir=dr_dir, env=env)
    uploaded = drtasks("upload", "-p", "league", "--import", "--submit", "-d", dr_dir=dr_dir, env=env)
    without_import = drtasks("upload", "-p", "league", "--submit", "-d", dr_dir=dr_dir, env=env)

    assert imported.code == 0, imported.text
    chain = json.loads(imported.out)
    assert chain["chain"] == ["import", "submit"]
    assert chain["steps"][1]["leaderboard"]["leaderboardId"] == board.leaderboard_id and chain["steps"][1]["model_name"] == UPLOAD_PREFIX
    assert uploaded.code == 0 and "upload -> import -> submit" in uploaded.out and "nothing was written or imported" in uploaded.err
    refused(without_import, "--submit submits the imported model: add --import")
    assert site.models == {} and board.submissions == []
