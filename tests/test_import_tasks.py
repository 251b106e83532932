"""inv import-model, inv models and inv upload --import, end to end in child processes.

Console: the fake console API (built from the service model) and a real SeaweedFS upload bucket.
DRoA: moto's Cognito pools for sign-in, moto's S3 as the deployment's transit bucket (it accepts the
temporary credentials the identity pool issues, which SeaweedFS refuses) behind DRoA's put-only
policy, the fake DRoA API, and the trained model on SeaweedFS: the upload streams between the two.
"""

from __future__ import annotations

import json
import re
import socket
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from tests.cli import Result, drtasks, run
from tests.drfc import UPLOAD_PREFIX, write_env_files
from tests.fakes.console_api import FakeConsoleApi
from drtasks.sample_model import seed_model
from tests.droa_world import PASSWORD, USERNAME, Transit, cognito_env
from tests.fakes.droa_api import FakeDroa
from tests.fakes.s3_put_only import RACER_ALLOWED

ROLE_ARN = "arn:aws:iam::123456789012:role/service-role/AWSDeepRacerServiceRole"


def objects(client: Any, bucket: str, prefix: str = "") -> dict[str, bytes]:
    """Key -> content of everything under ``prefix``."""
    found: dict[str, bytes] = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            found[item["Key"]] = client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
    return found


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def refused(result: Result, *words: str) -> None:
    """A clean one-line refusal: non-zero exit, no traceback, every word named."""
    assert result.code != 0, result.text
    assert "Traceback" not in result.text
    for word in words:
        assert word in result.text, result.text




# =========================================================================== console


@pytest.fixture
def console_api() -> Iterator[FakeConsoleApi]:
    with FakeConsoleApi(import_polls=2) as api:
        yield api


@pytest.fixture
def dr_dir(tmp_path: Path, s3_server: Any, model: Any, upload_bucket: str, console_api: FakeConsoleApi) -> Path:
    """Env files: the seeded model, an empty upload bucket, the fake console and the role."""
    return write_env_files(
        tmp_path, s3_server, model, upload_bucket,
        system=f"DR_UPLOAD_S3_ROLE={ROLE_ARN}\nDR_IMPORT_ENDPOINT_URL={console_api.endpoint_url}\nDR_IMPORT_POLL_SECONDS=0\n",
        run="DR_WORLD_NAME=2022_april_open\n",
    )


def set_line(path: Path, key: str, value: str | None) -> None:
    """Replace (or with None remove) ``key`` in an env file."""
    lines = [line for line in path.read_text().splitlines() if not line.startswith(f"{key}=")]
    if value is not None:
        lines.append(f"{key}={value}")
    path.write_text("\n".join(lines) + "\n")


def test_upload_with_import_imports_the_upload_prefix_with_the_role(dr_dir: Path, console_api: FakeConsoleApi, upload_bucket: str) -> None:
    result = drtasks("upload", "-f", "--import", dr_dir=dr_dir)

    assert result.code == 0, result.text
    [request] = console_api.calls("ImportModel")
    assert request.body == {
        "Type": "REINFORCEMENT_LEARNING",
        "Name": UPLOAD_PREFIX,
        "ModelArtifactsS3Path": f"s3://{upload_bucket}/{UPLOAD_PREFIX}",
        "RoleArn": ROLE_ARN,
    }
    assert "Import of 'race-model-1' started" in result.out


def test_dr_upload_model_dash_capital_i_imports_under_the_given_name(dr_dir: Path, console_api: FakeConsoleApi, upload_bucket: str) -> None:
    result = run("dr-upload-model", "-f", "-I", "my-name", dr_dir=dr_dir)

    assert result.code == 0, result.text
    [request] = console_api.calls("ImportModel")
    assert request.body["Name"] == "my-name"
    assert request.body["ModelArtifactsS3Path"] == f"s3://{upload_bucket}/{UPLOAD_PREFIX}"


def test_import_model_with_wait_reports_ready(dr_dir: Path, console_api: FakeConsoleApi) -> None:
    assert drtasks("upload", "-f", dr_dir=dr_dir).code == 0

    result = drtasks("import-model", "--wait", "-f", "--description", "v1 best", dr_dir=dr_dir)

    assert result.code == 0, result.text
    assert "IMPORTING" in result.out and "is READY" in result.out
    [request] = console_api.calls("ImportModel")
    assert request.body["Description"] == "v1 best"
    assert [m.status for m in console_api.models.values()] == ["READY"]


def test_dry_run_checks_the_upload_and_imports_nothing(dr_dir: Path, console_api: FakeConsoleApi) -> None:
    assert drtasks("upload", "-f", dr_dir=dr_dir).code == 0

    result = drtasks("import-model", "--dry-run", dr_dir=dr_dir)

    assert result.code == 0, result.text
    assert "Dry run: nothing was written or imported." in result.err
    assert console_api.calls("ImportModel") == []


def test_an_existing_name_is_refused_before_uploading(dr_dir: Path, console_api: FakeConsoleApi, s3_server: Any, upload_bucket: str) -> None:
    console_api.add_model(UPLOAD_PREFIX)

    result = drtasks("upload", "-f", "--import", dr_dir=dr_dir)

    refused(result, "already exists")
    assert console_api.calls("ImportModel") == []
    assert objects(s3_server.client(), upload_bucket) == {}


def test_a_bad_name_is_refused_before_anything_is_written(dr_dir: Path, console_api: FakeConsoleApi, s3_server: Any, upload_bucket: str) -> None:
    result = drtasks("upload", "-f", "--import-name", "bad_name!", dr_dir=dr_dir)

    refused(result, "bad_name!", "^[a-zA-Z0-9-]+$")
    assert console_api.requests == []
    assert objects(s3_server.client(), upload_bucket) == {}


@pytest.mark.parametrize(
    ("role", "named"),
    [(None, "DR_UPLOAD_S3_ROLE"), ("arn:aws:iam::12345:role/short-account", "is not of the form")],
    ids=["missing", "malformed"],
)
def test_the_role_arn_is_required_and_checked(dr_dir: Path, console_api: FakeConsoleApi, s3_server: Any, upload_bucket: str, role: str | None, named: str) -> None:
    set_line(dr_dir / "system.env", "DR_UPLOAD_S3_ROLE", role)

    result = drtasks("upload", "-f", "--import", dr_dir=dr_dir)

    refused(result, named)
    assert console_api.requests == []
    assert objects(s3_server.client(), upload_bucket) == {}


def test_a_prefix_without_an_importable_model_is_refused_naming_what_is_missing(dr_dir: Path, console_api: FakeConsoleApi, s3_server: Any, upload_bucket: str, model: Any) -> None:
    assert drtasks("upload", "-f", dr_dir=dr_dir).code == 0
    client = s3_server.client()
    client.delete_object(Bucket=upload_bucket, Key=f"{UPLOAD_PREFIX}/reward_function.py")
    client.delete_object(Bucket=upload_bucket, Key=f"{UPLOAD_PREFIX}/model/model_{model.last}.pb")

    result = drtasks("import-model", "-f", dr_dir=dr_dir)

    refused(result, "does not hold an importable model", "reward_function.py", f"model/model_{model.last}.pb")
    assert console_api.calls("ImportModel") == []


def test_an_empty_upload_prefix_asks_for_an_upload_first(dr_dir: Path, console_api: FakeConsoleApi) -> None:
    result = drtasks("import-model", "-f", dr_dir=dr_dir)

    refused(result, "nothing is uploaded", "inv upload")
    assert console_api.calls("ImportModel") == []


def test_a_missing_service_model_is_named_with_the_install_command(dr_dir: Path, tmp_path: Path, console_api: FakeConsoleApi, s3_server: Any, upload_bucket: str) -> None:
    # An empty `deepracer` package ahead of the real one hides deepracer-utils' copy of the model,
    # and a fresh HOME has no ~/.aws/models.
    shadow = tmp_path / "shadow"
    (shadow / "deepracer").mkdir(parents=True)
    (shadow / "deepracer" / "__init__.py").write_text("")
    home = tmp_path / "home"
    home.mkdir()

    result = drtasks("upload", "-f", "--import", dr_dir=dr_dir, env={"PYTHONPATH": str(shadow), "HOME": str(home)})

    refused(result, "service model 'deepracer'", "deepracer-utils<1.5")
    assert objects(s3_server.client(), upload_bucket) == {}


def test_an_unreachable_console_says_it_was_retired_and_points_to_droa(dr_dir: Path, s3_server: Any, upload_bucket: str) -> None:
    set_line(dr_dir / "system.env", "DR_IMPORT_ENDPOINT_URL", closed_port_url())

    result = drtasks("upload", "-f", "--import", dr_dir=dr_dir)

    refused(result, "retired in December 2025", "--target droa")
    assert objects(s3_server.client(), upload_bucket) == {}


def test_an_import_error_while_waiting_exits_non_zero_naming_the_status(dr_dir: Path, console_api: FakeConsoleApi) -> None:
    assert drtasks("upload", "-f", dr_dir=dr_dir).code == 0

    result = drtasks("import-model", "-f", "--wait", "--name", "my-import-error", dr_dir=dr_dir)

    refused(result, "IMPORT_ERROR")
    assert [m.status for m in console_api.models.values()] == ["IMPORT_ERROR"]


def test_checkpoint_flags_are_refused_for_the_console(dr_dir: Path, console_api: FakeConsoleApi) -> None:
    refused(drtasks("import-model", "-f", "--best", dr_dir=dr_dir), "--best/--checkpoint", "inv upload")
    assert console_api.requests == []


def test_models_json_lists_the_console_models(dr_dir: Path, console_api: FakeConsoleApi) -> None:
    alpha = console_api.add_model("alpha")
    console_api.add_model("beta", status="TRAINING")

    result = drtasks("models", "--json", dr_dir=dr_dir)

    assert result.code == 0, result.text
    listed = {m["name"]: m for m in json.loads(result.out)}
    assert {name: m["status"] for name, m in listed.items()} == {"alpha": "READY", "beta": "TRAINING"}
    assert listed["alpha"]["arn"] == alpha.arn and listed["alpha"]["created"].startswith("20")


def test_models_table_shows_name_status_and_arn(dr_dir: Path, console_api: FakeConsoleApi) -> None:
    model = console_api.add_model("alpha")

    result = drtasks("models", dr_dir=dr_dir)

    assert result.code == 0, result.text
    assert "alpha" in result.out and "READY" in result.out and model.arn in result.out


# =========================================================================== DRoA
# moto's Cognito pools and S3 (the deployment's buckets, behind the put-only policy of
# tests.fakes.s3_put_only) and the fake DRoA API: fixtures of tests.droa_world.


@pytest.fixture
def site(droa_site: FakeDroa) -> FakeDroa:
    return droa_site


def settings_only(client: Any, model: Any) -> None:
    """Remove the training run's own training_params: the DR_* settings then write it."""
    client.delete_object(Bucket=model.bucket, Key=model.key("training_params.yaml"))


@pytest.fixture
def droa_dir(tmp_path: Path, s3_server: Any, model: Any, upload_bucket: str, site: FakeDroa, transit: Transit) -> Path:
    """Env files for a DRoA import of the seeded model, trained clockwise on Ace Speedway."""
    settings_only(s3_server.client(), model)
    return write_env_files(
        tmp_path, s3_server, model, upload_bucket,
        system=f"DR_DROA_URL={site.url}\nDR_DROA_USERNAME={USERNAME}\nDR_DROA_S3_ENDPOINT_URL={transit.proxy.url}\nDR_IMPORT_POLL_SECONDS=0.05\n",
        run="DR_WORLD_NAME=2022_april_open_cw\n",
    )


@pytest.fixture
def real_droa_dir(tmp_path: Path, s3_server: Any, real_models: Any, upload_bucket: str, site: FakeDroa, transit: Transit) -> tuple[Path, Any]:
    """Like ``droa_dir``, with the real camera model (real TensorFlow checkpoints) as the source."""
    bucket = s3_server.new_bucket()
    model = real_models.seed(s3_server.client(), bucket, "rl-real-camera")
    settings_only(s3_server.client(), model)
    return write_env_files(
        tmp_path, s3_server, model, upload_bucket,
        system=f"DR_DROA_URL={site.url}\nDR_DROA_USERNAME={USERNAME}\nDR_DROA_S3_ENDPOINT_URL={transit.proxy.url}\nDR_IMPORT_POLL_SECONDS=0.05\n",
        run="DR_WORLD_NAME=2022_april_open_cw\n",
    ), model


def droa_env(moto_url: str, tmp_path: Path, password: str = PASSWORD) -> dict[str, str]:
    return {**cognito_env(moto_url, tmp_path / "cache"), "DR_DROA_PASSWORD": password}


def the_upload(transit: Transit) -> tuple[str, dict[str, bytes]]:
    """(prefix, relative key -> content) of the one upload in the transit bucket."""
    uploaded = transit.objects()
    prefixes = {key.split("/")[2] for key in uploaded}
    assert len(prefixes) == 1 and all(key.startswith("uploads/models/") for key in uploaded), sorted(uploaded)
    prefix = f"uploads/models/{prefixes.pop()}"
    return prefix, {key[len(prefix) + 1:]: body for key, body in uploaded.items()}


def test_droa_import_puts_what_the_backend_reads_then_waits_until_ready(
    real_droa_dir: tuple[Path, Any], site: FakeDroa, transit: Transit, moto_url: str, tmp_path: Path
) -> None:
    dr_dir, model = real_droa_dir

    result = drtasks("import-model", "--target", "droa", "--wait", "-f", dr_dir=dr_dir, env=droa_env(moto_url, tmp_path))

    assert result.code == 0, result.text
    assert "READY" in result.out and PASSWORD not in result.text
    prefix, files = the_upload(transit)
    name = model.checkpoints[model.last].name
    assert {"model_metadata.json", "reward_function.py", "training_params.yaml", "ip/hyperparameters.json"} <= set(files)
    assert {f"model/{name}.index", f"model/{name}.meta", f"model/{name}.data-00000-of-00001", f"model/model_{model.last}.pb"} <= set(files)
    assert not any(key.endswith((".gz", ".zip")) for key in files)
    params = yaml.safe_load(files["training_params.yaml"])
    assert params["WORLD_NAME"] == "2022_april_open" and params["TRACK_DIRECTION_CLOCKWISE"] is True
    assert params["SAGEMAKER_SHARED_S3_BUCKET"] == transit.bucket and params["SAGEMAKER_SHARED_S3_PREFIX"] == prefix
    # The training graph, where DRoA reads it, in the simapp's format.
    [graph] = [key for key in files if key.startswith("metrics/training/")]
    assert re.fullmatch(r"metrics/training/training-\d{14}\.json", graph)
    assert json.loads(files[graph])["metrics"] == json.loads(files["metrics/TrainingMetrics.json"])["metrics"]
    [imported] = site.models.values()
    assert (imported.name, imported.status) == (UPLOAD_PREFIX, "READY")
    assert imported.track == {"trackId": "2022_april_open", "trackDirection": "CLOCKWISE"}
    # Only puts reached the bucket: the proof of the upload came from their answers.
    operations = {seen.operation for seen in transit.proxy.racer_requests()}
    assert operations <= RACER_ALLOWED and "PutObject" in operations


def test_droa_training_graph_merges_the_workers_and_prefers_training_params_1(
    tmp_path: Path, s3_server: Any, upload_bucket: str, site: FakeDroa, transit: Transit, moto_url: str
) -> None:
    bucket = s3_server.new_bucket()
    model = seed_model(s3_server.client(), bucket, "rl-two-workers", workers=2, checkpoints=(3, 5))
    client = s3_server.client()
    params = yaml.safe_load(client.get_object(Bucket=bucket, Key=model.key("training_params_1.yaml"))["Body"].read())
    client.put_object(Bucket=bucket, Key=model.key("training_params_1.yaml"),
                      Body=yaml.safe_dump({**params, "WORLD_NAME": "2022_april_open_ccw", "CAR_COLOR": "Blue"}))
    dr_dir = write_env_files(
        tmp_path, s3_server, model, upload_bucket,
        system=f"DR_DROA_URL={site.url}\nDR_DROA_USERNAME={USERNAME}\nDR_DROA_S3_ENDPOINT_URL={transit.proxy.url}\n",
        run="DR_WORLD_NAME=reInvent2019_wide\n",
    )

    result = drtasks("import-model", "-t", "droa", "-f", "-n", "two-workers", dr_dir=dr_dir, env=droa_env(moto_url, tmp_path))

    assert result.code == 0, result.text
    assert "training_params_1.yaml of the training run" in result.out
    _, files = the_upload(transit)
    uploaded = yaml.safe_load(files["training_params.yaml"])
    assert (uploaded["WORLD_NAME"], uploaded["TRACK_DIRECTION_CLOCKWISE"], uploaded["CAR_COLOR"]) == ("2022_april_open", False, "Blue")
    [graph] = [json.loads(body) for key, body in files.items() if key.startswith("metrics/training/")]
    # The simapp names worker 0's file TrainingMetrics.json and worker n's TrainingMetrics_<n>.json.
    workers = [json.loads(files[name])["metrics"] for name in ("metrics/TrainingMetrics.json", "metrics/TrainingMetrics_1.json")]
    assert len(graph["metrics"]) == sum(len(w) for w in workers)
    training = [entry["episode"] for entry in graph["metrics"] if entry["phase"] == "training"]
    assert training == list(range(1, len(training) + 1))  # one episode counter across the workers


def test_droa_best_checkpoint_flag_chooses_what_is_uploaded(droa_dir: Path, site: FakeDroa, transit: Transit, moto_url: str, tmp_path: Path, model: Any) -> None:
    result = drtasks("import-model", "-t", "droa", "-f", "-b", "-n", "best-one", dr_dir=droa_dir, env=droa_env(moto_url, tmp_path))

    assert result.code == 0, result.text
    _, files = the_upload(transit)
    assert f"model/model_{model.best}.pb" in files and f"model/model_{model.last}.pb" not in files
    assert [m.name for m in site.models.values()] == ["best-one"]


def test_droa_dry_run_shows_the_plan_and_writes_nothing(droa_dir: Path, site: FakeDroa, transit: Transit, moto_url: str, tmp_path: Path) -> None:
    result = drtasks("import-model", "-t", "droa", "--dry-run", dr_dir=droa_dir, env=droa_env(moto_url, tmp_path))

    assert result.code == 0, result.text
    assert "Plan:" in result.out and "uploads/models/" in result.out and "nothing was written" in result.err
    assert "metrics/training/training-" in result.out
    assert transit.objects() == {} and site.models == {}


def test_droa_wrong_password_is_a_clean_error_that_never_shows_it(droa_dir: Path, site: FakeDroa, transit: Transit, moto_url: str, tmp_path: Path) -> None:
    wrong = "Wr0ng-password-typed!"

    result = drtasks("import-model", "-t", "droa", "-f", dr_dir=droa_dir, env=droa_env(moto_url, tmp_path, wrong))

    refused(result, "sign-in refused", USERNAME)
    assert wrong not in result.text and PASSWORD not in result.text
    assert transit.objects() == {} and site.models == {}


def test_droa_model_without_reward_function_is_refused_before_upload(
    droa_dir: Path, site: FakeDroa, transit: Transit, moto_url: str, tmp_path: Path, s3_server: Any, model: Any
) -> None:
    s3_server.client().delete_object(Bucket=model.bucket, Key=model.custom_reward_key)
    s3_server.client().delete_object(Bucket=model.bucket, Key=model.key("reward_function.py"))

    result = drtasks("import-model", "-t", "droa", "-f", dr_dir=droa_dir, env=droa_env(moto_url, tmp_path))

    refused(result, "reward_function.py", "nothing was written")
    assert transit.objects() == {} and site.models == {}


REWARD_REFUSALS = {
    "illegal import": ("import os\n\n\ndef reward_function(params):\n    return float(len(os.sep))\n", "imports os"),
    "forbidden string": ("def reward_function(params):\n    # the payload\n    return 1.0\n", 'the string "load"'),
    "int reward": ("def reward_function(params):\n    return 1\n", "DRoA requires a float"),
    "endless loop": ("def reward_function(params):\n    while True:\n        pass\n", "did not return within 5 s"),
    "syntax error": ("def reward_function(params)\n    return 1.0\n", "line 1: syntax error"),
}


@pytest.mark.parametrize("case", sorted(REWARD_REFUSALS))
def test_droa_reward_function_is_checked_as_droa_validates_it_before_upload(
    case: str, droa_dir: Path, site: FakeDroa, transit: Transit, moto_url: str, tmp_path: Path, s3_server: Any, model: Any
) -> None:
    source, named = REWARD_REFUSALS[case]
    s3_server.client().put_object(Bucket=model.bucket, Key=model.reward_key, Body=source.encode())

    result = drtasks("import-model", "-t", "droa", "-f", dr_dir=droa_dir, env=droa_env(moto_url, tmp_path))

    refused(result, "DRoA would refuse this model, nothing was written", "reward_function.py", named)
    assert transit.objects() == {} and site.models == {}


def test_droa_model_whose_graph_disagrees_with_its_metadata_is_refused_before_upload(
    droa_dir: Path, site: FakeDroa, transit: Transit, moto_url: str, tmp_path: Path, s3_server: Any, model: Any
) -> None:
    from drtasks.sample_model import model_metadata

    five = json.dumps(model_metadata(actions=5)).encode()
    s3_server.client().put_object(Bucket=model.bucket, Key=model.key("model/model_metadata.json"), Body=five)

    result = drtasks("import-model", "-t", "droa", "-f", dr_dir=droa_dir, env=droa_env(moto_url, tmp_path))

    refused(result, f"model_metadata.json lists 5 actions, model_{model.last}.pb's policy has 15")
    assert transit.objects() == {} and site.models == {}


def test_droa_rules_refuse_with_every_blocking_problem_listed(droa_dir: Path, site: FakeDroa, transit: Transit, moto_url: str, tmp_path: Path) -> None:
    set_line(droa_dir / "run.env", "DR_WORLD_NAME", "no_such_track")
    set_line(droa_dir / "run.env", "DR_CAR_COLOR", "Pink")

    result = drtasks("import-model", "-t", "droa", "-f", dr_dir=droa_dir, env=droa_env(moto_url, tmp_path))

    refused(result, "DRoA would refuse", "no_such_track", "CAR_COLOR 'Pink'")
    assert transit.objects() == {} and site.models == {}


def test_droa_bad_name_is_refused_before_any_call(droa_dir: Path, site: FakeDroa, transit: Transit, moto_url: str, tmp_path: Path) -> None:
    result = drtasks("import-model", "-t", "droa", "-f", "--name", "not_valid", dr_dir=droa_dir, env=droa_env(moto_url, tmp_path))

    refused(result, "not_valid")
    assert site.calls == [] and transit.objects() == {}


def test_droa_a_name_that_exists_is_refused_as_ambiguous_before_upload(
    droa_dir: Path, site: FakeDroa, transit: Transit, moto_url: str, tmp_path: Path
) -> None:
    site.page_size = 1  # the clash is on the second page of GET /models
    site.add_model("other", USERNAME)
    existing = site.add_model(UPLOAD_PREFIX, USERNAME)

    result = drtasks("import-model", "-t", "droa", "-f", dr_dir=droa_dir, env=droa_env(moto_url, tmp_path))

    refused(result, f"DRoA already has a model named '{UPLOAD_PREFIX}'", existing.model_id, "ambiguous")
    assert transit.objects() == {} and len(site.models) == 2


def test_droa_import_that_fails_validation_exits_non_zero_with_droa_reason(
    droa_dir: Path, site: FakeDroa, transit: Transit, moto_url: str, tmp_path: Path
) -> None:
    # The seeded model's checkpoint is random bytes: DRoA's model validation cannot restore it.
    result = drtasks("import-model", "-t", "droa", "-f", "--wait", dr_dir=droa_dir, env=droa_env(moto_url, tmp_path))

    refused(result, "DRoA could not import model", "Model validation failed")
    assert [m.status for m in site.models.values()] == ["ERROR"]


def test_upload_with_import_into_droa_uploads_to_both_buckets(
    droa_dir: Path, site: FakeDroa, transit: Transit, moto_url: str, tmp_path: Path, s3_server: Any, upload_bucket: str
) -> None:
    set_line(droa_dir / "system.env", "DR_IMPORT_TARGET", "droa")

    result = drtasks("upload", "-f", "--import-name", "chained", dr_dir=droa_dir, env=droa_env(moto_url, tmp_path))

    assert result.code == 0, result.text
    assert objects(s3_server.client(), upload_bucket, UPLOAD_PREFIX + "/")
    assert transit.objects()
    assert [m.name for m in site.models.values()] == ["chained"]


def test_models_json_lists_the_droa_models(droa_dir: Path, site: FakeDroa, moto_url: str, tmp_path: Path) -> None:
    site.page_size = 1
    # Listed newest first: alpha was created an hour after beta (set, so the order never hangs on the clock).
    beta = site.add_model("beta", USERNAME, status="ERROR", created_at=datetime.now(timezone.utc) - timedelta(hours=1))
    alpha = site.add_model("alpha", USERNAME)

    result = drtasks("models", "--target", "droa", "--json", dr_dir=droa_dir, env=droa_env(moto_url, tmp_path))

    assert result.code == 0, result.text
    listed = [(m["name"], m["status"], m["id"]) for m in json.loads(result.out)]
    assert listed == [("alpha", "READY", alpha.model_id), ("beta", "ERROR", beta.model_id)]
    assert all(m["created"].startswith("20") for m in json.loads(result.out))


def test_upload_json_with_import_keeps_standard_output_for_the_plan(dr_dir: Path, console_api: FakeConsoleApi) -> None:
    result = drtasks("upload", "-f", "--json", "--import", dr_dir=dr_dir)

    assert result.code == 0, result.text
    chain = json.loads(result.out)  # nothing but the plan on stdout
    assert chain["chain"] == ["upload", "import"]
    plan, call = chain["steps"]
    assert plan["summary"]["add"] == len(plan["items"])
    assert call["target"] == "console" and call["name"] == "race-model-1"
    assert "Import of 'race-model-1' started" in result.err
    assert len(console_api.calls("ImportModel")) == 1
