"""A racer's DRoA models from the command line: list, show, download, delete, car archive, by id or name.

Real servers: moto (Cognito pools; S3 for the deployment's buckets, behind the put-only proxy that
also checks every presigned URL's signature and expiry). The DRoA API is the fake of
tests.fakes.droa_api (fixtures: tests.droa_world). Every command runs as a child process, as
`inv <task>` (through the `drtasks` entry point) or as DRfC's droa-* command.
"""

from __future__ import annotations

import io
import json
import random
import tarfile
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from drtasks.errors import DrtasksError
from drtasks.importing.droa_names import MODEL, resolve
from drtasks.sample_model import model_metadata, simtrace, training_run
from tests.cli import Result, drtasks, in_terminal, run
from tests.droa_world import PASSWORD, USERNAME, Transit, cognito_env
from tests.fakes.droa_api import FakeDroa, FakeModel

DROA_COMMANDS = ("droa-list-models", "droa-get-model", "droa-download-logs", "droa-delete-model", "droa-import-model")


@pytest.fixture
def site(droa_site: FakeDroa) -> FakeDroa:
    return droa_site


@pytest.fixture
def dr_dir(tmp_path: Path, site: FakeDroa, transit: Transit) -> Path:
    """A DR_DIR that only says where the racer races."""
    folder = tmp_path / "drfc"
    folder.mkdir()
    (folder / "system.env").write_text(
        f"DR_DROA_URL={site.url}\nDR_DROA_USERNAME={USERNAME}\nDR_DROA_S3_ENDPOINT_URL={transit.proxy.url}\n"
        "DR_IMPORT_TARGET=droa\nDR_IMPORT_POLL_SECONDS=0.05\n"
    )
    return folder


@pytest.fixture
def env(moto_url: str, tmp_path: Path) -> dict[str, str]:
    return {**cognito_env(moto_url, tmp_path / "cache"), "DR_DROA_PASSWORD": PASSWORD}


def refused(result: Result, *words: str) -> None:
    """A clean refusal: non-zero exit, one line on stderr, no traceback, every word named."""
    assert result.code != 0, result.text
    assert "Traceback" not in result.text
    assert len(result.err.strip().splitlines()) == 1, result.err
    for word in words:
        assert word in result.err, result.err


def at(minutes: int) -> datetime:
    return datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc) + timedelta(minutes=minutes)


def described_model(site: FakeDroa, name: str = "summit-7", **fields: Any) -> FakeModel:
    """A READY model as DRoA describes an imported one: car, track, agent, action space, reward function."""
    metadata = {
        "agentAlgorithm": "PPO", "rewardFunction": "def reward_function(params):\n    return float(params['speed'])\n",
        "actionSpace": {"discrete": [{"speed": 1.0, "steeringAngle": -20}, {"speed": 2.5, "steeringAngle": 0}, {"speed": 1.0, "steeringAngle": 20}]},
        "hyperparameters": {"batch_size": 64, "lr": 0.0003}, "sensors": {"camera": "FRONT_FACING_CAMERA"},
    }
    defaults = {"car": ("DEEPRACER", "BLUE"), "track": {"trackId": "2022_april_open", "trackDirection": "CLOCKWISE"},
                "metadata": metadata, "file_size": 4_200_000, "created_at": at(0)}
    return site.add_model(name, USERNAME, **{**defaults, **fields})


def put_training_metrics(site: FakeDroa, model: FakeModel) -> dict[str, Any]:
    """The training metrics DRoA imported for ``model`` (the simapp's format, 3 iterations)."""
    run_ = training_run(random.Random(7), 0, 2, [1, 2], 2)
    body = run_.files["metrics/TrainingMetrics.json"]
    site.s3.put_object(Bucket=site.model_bucket, Key=model.metrics_key, Body=body.encode())
    return json.loads(body)


# =========================================================================== naming


def records(*pairs: tuple[str, str, str]) -> list[dict[str, Any]]:
    return [{"name": name, "modelId": model_id, "status": status, "createdAt": "2026-03-01T12:00:00.000Z"} for name, model_id, status in pairs]


def test_a_model_is_named_by_id_or_by_name() -> None:
    models = records(("alpha", "AAAAAAAAAAAAAAA", "READY"), ("beta", "BBBBBBBBBBBBBBB", "ERROR"))
    assert resolve(models, "BBBBBBBBBBBBBBB", MODEL)["name"] == "beta"
    assert resolve(models, "alpha", MODEL)["modelId"] == "AAAAAAAAAAAAAAA"


def test_an_ambiguous_name_lists_every_candidate_with_id_and_status() -> None:
    models = records(("twin", "AAAAAAAAAAAAAAA", "READY"), ("twin", "BBBBBBBBBBBBBBB", "IMPORTING"), ("solo", "CCCCCCCCCCCCCCC", "READY"))
    with pytest.raises(DrtasksError) as error:
        resolve(models, "twin", MODEL)
    message = error.value.message
    assert "'twin' names 2 DRoA models" in message and "by its id" in message
    assert "AAAAAAAAAAAAAAA (READY" in message and "BBBBBBBBBBBBBBB (IMPORTING" in message and "CCCCCCCCCCCCCCC" not in message


def test_an_unknown_name_lists_the_closest_names() -> None:
    models = records(("summit-7", "AAAAAAAAAAAAAAA", "READY"), ("summit-8", "BBBBBBBBBBBBBBB", "READY"), ("zzz", "CCCCCCCCCCCCCCC", "READY"))
    with pytest.raises(DrtasksError, match=r"no DRoA model has the name 'sumit-7'; did you mean 'summit-7' \(AAAAAAAAAAAAAAA\)"):
        resolve(models, "sumit-7", MODEL)
    with pytest.raises(DrtasksError, match="no DRoA model has the id 'QQQQQQQQQQQQQQQ'; yours: summit-7, summit-8, zzz"):
        resolve(models, "QQQQQQQQQQQQQQQ", MODEL)


# =========================================================================== listing and showing


def test_models_are_listed_newest_first_with_their_training_status(site: FakeDroa, dr_dir: Path, env: dict[str, str]) -> None:
    old = site.add_model("old-one", USERNAME, created_at=at(0))
    new = site.add_model("new-one", USERNAME, created_at=at(30))
    middle = site.add_model("middle-one", USERNAME, status="ERROR", created_at=at(10))

    table = drtasks("models", "--target", "droa", dr_dir=dr_dir, env=env)
    listed = drtasks("models", "--target", "droa", "--json", dr_dir=dr_dir, env=env)

    assert table.code == 0, table.text
    assert table.out.index("new-one") < table.out.index("middle-one") < table.out.index("old-one")
    assert "training" in table.out and "COMPLETED" in table.out
    rows = json.loads(listed.out)
    assert [(m["name"], m["id"], m["training"]) for m in rows] == [
        ("new-one", new.model_id, "COMPLETED"), ("middle-one", middle.model_id, "COMPLETED"), ("old-one", old.model_id, "COMPLETED")]


def test_droa_list_models_prints_droa_records_newest_first_without_signatures(site: FakeDroa, dr_dir: Path, env: dict[str, str]) -> None:
    site.page_size = 1  # every page is followed
    site.add_model("first", USERNAME, created_at=at(0))
    site.add_model("second", USERNAME, created_at=at(5))

    result = run("droa-list-models", "--json", dr_dir=dr_dir, env=env)

    assert result.code == 0, result.text
    models = json.loads(result.out)
    assert [m["name"] for m in models] == ["second", "first"] and all(m["trainingStatus"] == "COMPLETED" for m in models)
    assert "X-Amz-Signature" not in result.out and "signature omitted" in models[0]["trainingMetricsUrl"]


def test_model_info_shows_identity_car_track_and_agent(site: FakeDroa, dr_dir: Path, env: dict[str, str]) -> None:
    model = described_model(site)

    by_name = drtasks("model-info", "summit-7", dr_dir=dr_dir, env=env)
    by_id = drtasks("model-info", model.model_id, dr_dir=dr_dir, env=env)

    assert by_name.code == 0, by_name.text
    assert by_name.out == by_id.out
    for shown in (model.model_id, "READY", "COMPLETED", "2026-03-01 12:00", "4.0 MiB", "DEEPRACER", "BLUE",
                  "2022_april_open", "clockwise", "PPO", "FRONT_FACING_CAMERA", "batch_size", "discrete, 3 actions"):
        assert shown in by_name.out, shown
    assert "reward_function" not in by_name.out and "action 0" not in by_name.out


def test_model_info_verbose_adds_the_action_space_and_the_reward_function(site: FakeDroa, dr_dir: Path, env: dict[str, str]) -> None:
    described_model(site)

    result = drtasks("model-info", "summit-7", "--verbose", dr_dir=dr_dir, env=env)

    assert result.code == 0, result.text
    assert "action 1" in result.out and "speed 2.5 m/s, steering 0 degrees" in result.out
    assert "def reward_function(params):" in result.out and "return float(params['speed'])" in result.out


def test_model_info_summary_reads_the_training_metrics_droa_imported(site: FakeDroa, dr_dir: Path, env: dict[str, str]) -> None:
    model = described_model(site)
    metrics = put_training_metrics(site, model)

    table = drtasks("model-info", "summit-7", "--summary", dr_dir=dr_dir, env=env)
    as_json = run("droa-get-model", model.model_id, "--summary", "--json", dr_dir=dr_dir, env=env)

    assert table.code == 0 and as_json.code == 0, table.text + as_json.text
    assert "training of 'summit-7' per iteration" in table.out
    summary = json.loads(as_json.out)["trainingSummary"]
    assert [row["iteration"] for row in summary] == [0, 1, 2]
    first = [e for e in metrics["metrics"] if e["phase"] == "training"][:summary[0]["training"]["episodes"]]
    assert summary[0]["training"]["reward"] == round(sum(e["reward_score"] for e in first) / len(first), 2)
    assert all(row["evaluation"]["episodes"] > 0 for row in summary)
    assert "X-Amz-Signature" not in as_json.out


def test_model_info_summary_says_when_droa_holds_no_metrics(site: FakeDroa, dr_dir: Path, env: dict[str, str]) -> None:
    described_model(site, "no-graph")

    refused(drtasks("model-info", "no-graph", "--summary", dr_dir=dr_dir, env=env), "holds no training metrics for model 'no-graph'")


def test_an_ambiguous_model_name_lists_the_candidates_everywhere(site: FakeDroa, dr_dir: Path, env: dict[str, str]) -> None:
    first = site.add_model("twin", USERNAME, created_at=at(0))
    second = site.add_model("twin", USERNAME, status="ERROR", created_at=at(9))

    for result in (drtasks("model-info", "twin", dr_dir=dr_dir, env=env),
                   drtasks("delete-model", "twin", "-f", dr_dir=dr_dir, env=env),
                   drtasks("download-asset", "twin", "-f", dr_dir=dr_dir, env=env)):
        refused(result, "'twin' names 2 DRoA models", f"{first.model_id} (READY", f"{second.model_id} (ERROR", "by its id")
    assert ("DELETE", f"/prod/models/{second.model_id}") not in site.calls and len(site.models) == 2
    assert drtasks("model-info", second.model_id, dr_dir=dr_dir, env=env).code == 0


# =========================================================================== downloading assets


def members(path: Path) -> list[str]:
    with tarfile.open(path, "r:gz") as archive:
        return archive.getnames()


def test_training_logs_are_downloaded_under_droa_name_and_summarised(site: FakeDroa, dr_dir: Path, env: dict[str, str], tmp_path: Path) -> None:
    model = described_model(site)
    put_training_metrics(site, model)
    for iteration in (0, 1):
        key = f"{model.root}sim-trace/training/2026-03-01T12-00-deepracerindy-training-{model.model_id}/training-simtrace/{iteration}-iteration.csv"
        site.s3.put_object(Bucket=site.model_bucket, Key=key, Body=simtrace(random.Random(iteration), iteration).encode())
    out = tmp_path / "downloads"
    out.mkdir()

    result = drtasks("download-asset", "summit-7", "-o", f"{out}/", "--summary", "-f", dr_dir=dr_dir, env=env)

    assert result.code == 0, result.text
    path = out / f"deepracerindy-training-{model.model_id}-logs.tar.gz"
    assert path.is_file() and not list(out.glob("*.part"))
    assert any(name.endswith("0-iteration.csv") for name in members(path))
    assert "MD5 equal to the ETag" in " ".join(result.out.split())
    # The simtraces' step timing (about 1/15 s per step), then the training per iteration.
    assert "simulation step timing" in result.out and "OVERALL" in result.out and "66.7" in result.out
    assert "training per iteration" in result.out


def test_evaluation_logs_need_the_evaluation_id(site: FakeDroa, dr_dir: Path, env: dict[str, str], tmp_path: Path) -> None:
    model = described_model(site)
    evaluation = site.create_evaluation(USERNAME, model.model_id, {"evaluationConfig": {"evaluationName": "e1", "maxLaps": 2}})["evaluationId"]
    site.wait_idle()

    refused(drtasks("download-asset", "summit-7", "--asset", "evaluation-logs", "-f", dr_dir=dr_dir, env=env), "EVALUATION_LOGS needs --evaluation-id")
    result = run("droa-download-logs", model.model_id, "--asset-type", "EVALUATION_LOGS", "--evaluation-id", evaluation,
                 "--output", str(tmp_path / "eval.tar.gz"), dr_dir=dr_dir, env=env)

    assert result.code == 0, result.text
    assert members(tmp_path / "eval.tar.gz") == [f"metrics/evaluation/evaluation-{evaluation}.json"]


def test_the_physical_car_model_of_a_droa_trained_model(site: FakeDroa, dr_dir: Path, env: dict[str, str], tmp_path: Path) -> None:
    archive = car_archive()
    trained = site.add_trained_model("grown-here", USERNAME, archive)
    described_model(site, "imported-one")

    result = drtasks("download-asset", "grown-here", "--asset", "PHYSICAL_CAR_MODEL", "-o", f"{tmp_path}/", "-f", dr_dir=dr_dir, env=env)
    imported = drtasks("download-asset", "imported-one", "-a", "PHYSICAL_CAR_MODEL", "-o", f"{tmp_path}/", "-f", dr_dir=dr_dir, env=env)

    assert result.code == 0, result.text
    assert (tmp_path / "physicalmodel-grown-here.tar.gz").read_bytes() == archive
    assert trained.model_id in result.out
    refused(imported, "DRoA has no PHYSICAL_CAR_MODEL for model 'imported-one'", "Unable to find physical model artifact.")


def test_a_virtual_model_is_waited_for_while_droa_packages_it(site: FakeDroa, dr_dir: Path, env: dict[str, str], tmp_path: Path) -> None:
    model = described_model(site, "to-package")
    site.s3.put_object(Bucket=site.model_bucket, Key=f"{model.root}reward_function.py", Body=b"def reward_function(params):\n    return 1.0\n")

    result = drtasks("download-asset", "to-package", "--asset", "VIRTUAL_MODEL", "-o", f"{tmp_path}/", "-f", dr_dir=dr_dir, env=env)

    assert result.code == 0, result.text
    assert "QUEUED (DRoA is packaging it)" in result.out and "to-package': ready" in result.out
    assert "reward_function.py" in members(tmp_path / "virtualmodel-to-package.tar.gz")


def test_videos_are_refused_as_droa_refuses_them(site: FakeDroa, dr_dir: Path, env: dict[str, str], tmp_path: Path) -> None:
    described_model(site)

    result = run("droa-download-logs", "summit-7", "--asset-type", "VIDEOS", "-o", str(tmp_path / "v.mp4"), dr_dir=dr_dir, env=env)

    refused(result, "DRoA has no VIDEOS for model 'summit-7'", "This asset type is not supported.")
    assert list(tmp_path.glob("v.mp4*")) == []


def test_an_expired_download_link_is_one_line_and_leaves_no_file(site: FakeDroa, transit: Transit, dr_dir: Path, env: dict[str, str], tmp_path: Path) -> None:
    site.add_trained_model("grown-here", USERNAME, car_archive())
    transit.proxy.clock_offset = timedelta(seconds=301)  # S3's clock is past the link's 300 s

    result = drtasks("download-asset", "grown-here", "-a", "PHYSICAL_CAR_MODEL", "-o", str(tmp_path / "car.tar.gz"), "-f", dr_dir=dr_dir, env=env)

    refused(result, "has expired", "Request has expired", "run the command again")
    assert list(tmp_path.glob("car.tar.gz*")) == []


def test_replacing_a_file_is_asked_and_a_dry_run_writes_nothing(site: FakeDroa, dr_dir: Path, env: dict[str, str], tmp_path: Path) -> None:
    site.add_trained_model("grown-here", USERNAME, car_archive())
    target = tmp_path / "car.tar.gz"
    target.write_bytes(b"older")

    dry = drtasks("download-asset", "grown-here", "-a", "PHYSICAL_CAR_MODEL", "-o", str(target), "-d", dr_dir=dr_dir, env=env)
    unasked = drtasks("download-asset", "grown-here", "-a", "PHYSICAL_CAR_MODEL", "-o", str(target), dr_dir=dr_dir, env=env)

    drfc = run("droa-download-logs", "grown-here", "--asset-type", "PHYSICAL_CAR_MODEL", "-o", str(target), dr_dir=dr_dir, env=env)

    assert dry.code == 0 and "replace" in dry.out and "the file exists" in dry.out and "nothing was written" in dry.err
    refused(unasked, "needs an answer", "--force")
    refused(drfc, "needs an answer", "--force")  # DRfC's command writes new files unasked, but replaces none unasked
    assert target.read_bytes() == b"older"


# =========================================================================== deleting


def test_delete_is_refused_while_importing_with_droa_message(site: FakeDroa, dr_dir: Path, env: dict[str, str]) -> None:
    importing = site.add_model("busy", USERNAME, status="IMPORTING")

    for result in (drtasks("delete-model", "busy", "-f", dr_dir=dr_dir, env=env), run("droa-delete-model", importing.model_id, "-y", dr_dir=dr_dir, env=env)):
        refused(result, "is IMPORTING", "This resource cannot be deleted at this time. Try again later.", "nothing was deleted")
    assert importing.status == "IMPORTING" and not any(method == "DELETE" for method, _ in site.calls)


def test_delete_asks_to_type_the_model_name(site: FakeDroa, dr_dir: Path, env: dict[str, str]) -> None:
    model = site.add_model("doomed", USERNAME)

    wrong = in_terminal("delete-model", "doomed", dr_dir=dr_dir, env=env, answers={"Type the model name": "doomed-not"})
    assert wrong.code != 0 and "nothing was deleted: 'doomed-not' is not the model name 'doomed'" in wrong.out
    assert model.status == "READY"

    right = in_terminal("delete-model", "doomed", "--wait", dr_dir=dr_dir, env=env, answers={"Type the model name": "doomed"})
    assert right.code == 0, right.out
    assert "delete" in right.out and model.model_id in right.out and "is deleted" in right.out
    assert model.model_id not in site.models


def test_delete_without_a_terminal_needs_force_and_a_dry_run_deletes_nothing(site: FakeDroa, dr_dir: Path, env: dict[str, str]) -> None:
    model = site.add_model("kept", USERNAME, status="ERROR")

    refused(drtasks("delete-model", "kept", dr_dir=dr_dir, env=env), "type its name", "--force")
    dry = drtasks("delete-model", "kept", "--dry-run", dr_dir=dr_dir, env=env)
    as_json = drtasks("delete-model", model.model_id, "--dry-run", "--json", dr_dir=dr_dir, env=env)
    assert dry.code == 0 and "model 'kept'" in dry.out and "nothing was deleted" in dry.err
    assert json.loads(as_json.out)["steps"][0]["model"]["name"] == "kept" and "X-Amz-Signature" not in as_json.out
    assert model.status == "ERROR" and not any(method == "DELETE" for method, _ in site.calls)


def test_droa_delete_model_yes_deletes_at_once(site: FakeDroa, dr_dir: Path, env: dict[str, str]) -> None:
    model = site.add_model("gone-soon", USERNAME, status="ERROR")

    result = run("droa-delete-model", model.model_id, "-y", dr_dir=dr_dir, env=env)

    assert result.code == 0, result.text
    assert "it is DELETING" in result.text
    site.wait_idle()
    assert model.model_id not in site.models


# =========================================================================== car-zip --from droa


def car_archive(actions: int = 3, extra: dict[str, bytes] | None = None) -> bytes:
    """A physical car model as DRoA keeps it for a model it trained: agent/model.pb + metadata."""
    from drtasks.sample_graph import sample_frozen_graph

    metadata = model_metadata(actions=actions)
    files = {"agent/model.pb": sample_frozen_graph(metadata, 300_000), "model_metadata.json": json.dumps(metadata).encode(), **(extra or {})}
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, body in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(body)
            archive.addfile(info, io.BytesIO(body))
    return buffer.getvalue()


def test_car_zip_from_droa_builds_the_archive_from_the_physical_car_model(site: FakeDroa, dr_dir: Path, env: dict[str, str], tmp_path: Path) -> None:
    site.add_trained_model("grown-here", USERNAME, car_archive())

    result = drtasks("car-zip", "--from", "droa", "--model", "grown-here", "-N", "-o", f"{tmp_path}/", "-f", dr_dir=dr_dir, env=env)

    assert result.code == 0, result.text
    assert "PHYSICAL_CAR_MODEL" in result.out and "agent/model.pb" in result.out
    assert sorted(members(tmp_path / "grown-here.tar.gz")) == ["agent/model.pb", "model_metadata.json"]


def test_car_zip_from_droa_refuses_an_imported_model_and_a_broken_archive(site: FakeDroa, dr_dir: Path, env: dict[str, str], tmp_path: Path) -> None:
    described_model(site, "imported-one")
    site.add_trained_model("two-graphs", USERNAME, car_archive(extra={"agent/other.pb": b"graph"}))

    imported = drtasks("car-zip", "--from", "droa", "--model", "imported-one", "-N", "-o", f"{tmp_path}/", "-f", dr_dir=dr_dir, env=env)
    broken = drtasks("car-zip", "--from", "droa:two-graphs", "-N", "-o", f"{tmp_path}/", "-f", dr_dir=dr_dir, env=env)

    refused(imported, "DRoA model 'imported-one'", "has no physical car model", "not for imported ones")
    refused(broken, "the car needs exactly one .pb file, found 2")
    assert list(tmp_path.glob("*.tar.gz")) == []


# =========================================================================== DRfC's commands


DRFC_SWITCHES = {
    "droa-list-models": ("--json",),
    "droa-get-model": ("ID", "-v, --verbose", "--summary", "--json"),
    "droa-download-logs": ("ID", "--asset-type T", "--evaluation-id E", "-o, --output FILE", "--summary"),
    "droa-delete-model": ("ID", "-y, --yes"),
    "droa-import-model": ("--model-prefix P", "--model-dir DIR", "--model-name NAME", "--model-description TEXT", "--best", "--checkpoint N"),
}


@pytest.mark.parametrize("command", DROA_COMMANDS)
def test_drfc_droa_commands_explain_every_switch(command: str, tmp_path: Path) -> None:
    for flag in ("-h", "--help"):
        result = run(command, flag, dr_dir=tmp_path)
        assert result.code == 0 and result.out.startswith(f"Usage: {command}"), result.text
        explained = {line[2:].split("  ")[0] for line in result.out.splitlines() if line.startswith("  ")}
        assert set(DRFC_SWITCHES[command]) | {"--url URL", "--username NAME", "--password PASSWORD"} <= explained, explained


def test_drfc_droa_commands_refuse_bad_switches_in_one_line(tmp_path: Path) -> None:
    refused(run("droa-get-model", dr_dir=tmp_path), "missing ID", "usage: droa-get-model")
    refused(run("droa-delete-model", "a", "b", dr_dir=tmp_path), "unexpected argument number 2")
    refused(run("droa-list-models", "--region", "x", dr_dir=tmp_path), "--region not recognized")
    refused(run("droa-import-model", "--best", dr_dir=tmp_path), "give one of --model-prefix P and --model-dir DIR")


def test_a_password_on_the_command_line_is_used_and_never_shown(site: FakeDroa, moto_url: str, tmp_path: Path) -> None:
    site.add_model("mine", USERNAME)
    bare = {**cognito_env(moto_url, tmp_path / "cache")}  # no DR_DROA_PASSWORD, no DR_DROA_URL
    wrong = "Wr0ng-but-secret!"
    common = ("--url", site.url, "--username", USERNAME)

    listed = run("droa-list-models", *common, "--password", PASSWORD, dr_dir=tmp_path, env=bare)
    shown = run("droa-get-model", "mine", "--verbose", f"--password={PASSWORD}", *common, dr_dir=tmp_path, env=bare)
    (tmp_path / "cache").rename(tmp_path / "cache-old")  # no cached credentials: the wrong password is tried
    denied = run("droa-list-models", *common, "--password", wrong, dr_dir=tmp_path, env=bare)

    assert listed.code == 0 and "mine" in listed.out, listed.text
    assert shown.code == 0 and "mine" in shown.out, shown.text
    refused(denied, "sign-in refused", USERNAME)
    for result in (listed, shown, denied):
        assert PASSWORD not in result.text and wrong not in result.text

