"""inv import-model, inv models and inv upload --import, end to end in child processes.

Console: the fake console API (built from the service model) and a real SeaweedFS upload bucket.
DRoA: moto's Cognito pools for sign-in, moto's S3 as the deployment's transit bucket (it accepts the
temporary credentials the identity pool issues, which SeaweedFS refuses), the fake DRoA API gateway,
and the trained model on SeaweedFS: the upload streams between the two services.
"""

from __future__ import annotations

import json
import socket
import uuid
from pathlib import Path
from typing import Any, Iterator

import boto3
import pytest
import yaml
from botocore.config import Config

from tests.cli import Result, drtasks, run
from tests.drfc import UPLOAD_PREFIX, write_env_files
from tests.fakes.console_api import FakeConsoleApi
from tests.fakes.droa_api import FakeDroa, FakeModel

ROLE_ARN = "arn:aws:iam::123456789012:role/service-role/AWSDeepRacerServiceRole"
REGION = "eu-west-1"
USERNAME = "racer-7"
PASSWORD = "Sup3r-secret!racer-password"


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


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    """One moto server: Cognito for the sign-in, S3 for DRoA's transit bucket."""
    from moto.server import ThreadedMotoServer

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


def moto_client(service: str, moto_url: str) -> Any:
    return boto3.client(
        service, endpoint_url=moto_url, region_name=REGION, aws_access_key_id="admin", aws_secret_access_key="admin",
        config=Config(s3={"addressing_style": "path"}),
    )


@pytest.fixture(scope="module")
def pools(moto_url: str) -> dict[str, str]:
    """A DRoA-like user pool holding one racer, and the identity pool trusting it."""
    idp = moto_client("cognito-idp", moto_url)
    pool = idp.create_user_pool(PoolName="droa-racers")["UserPool"]["Id"]
    client = idp.create_user_pool_client(UserPoolId=pool, ClientName="web", ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH"])
    client_id = client["UserPoolClient"]["ClientId"]
    idp.admin_create_user(UserPoolId=pool, Username=USERNAME)
    idp.admin_set_user_password(UserPoolId=pool, Username=USERNAME, Password=PASSWORD, Permanent=True)
    identities = moto_client("cognito-identity", moto_url).create_identity_pool(
        IdentityPoolName="droa_racers",
        AllowUnauthenticatedIdentities=False,
        CognitoIdentityProviders=[{"ProviderName": f"cognito-idp.{REGION}.amazonaws.com/{pool}", "ClientId": client_id}],
    )
    return {"user_pool_id": pool, "client_id": client_id, "identity_pool_id": identities["IdentityPoolId"]}


@pytest.fixture
def transit(moto_url: str) -> tuple[Any, str]:
    """(client, bucket): a fresh transit bucket of the deployment."""
    client = moto_client("s3", moto_url)
    name = f"droa-transit-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION})
    return client, name


@pytest.fixture
def site(pools: dict[str, str], transit: tuple[Any, str]) -> Iterator[FakeDroa]:
    client, bucket = transit
    fake = FakeDroa(
        region=REGION, user_pool_id=pools["user_pool_id"], user_pool_client_id=pools["client_id"],
        identity_pool_id=pools["identity_pool_id"], upload_bucket=bucket, s3_client=client, ready_after=2,
    ).start()
    yield fake
    fake.stop()


@pytest.fixture
def droa_dir(tmp_path: Path, s3_server: Any, model: Any, upload_bucket: str, site: FakeDroa, moto_url: str) -> Path:
    """Env files for a DRoA import of the seeded model, trained clockwise on Ace Speedway."""
    return write_env_files(
        tmp_path, s3_server, model, upload_bucket,
        system=f"DR_DROA_URL={site.url}\nDR_DROA_USERNAME={USERNAME}\nDR_DROA_S3_ENDPOINT_URL={moto_url}\nDR_IMPORT_POLL_SECONDS=0\n",
        run="DR_WORLD_NAME=2022_april_open_cw\n",
    )


def droa_env(moto_url: str, tmp_path: Path, password: str = PASSWORD) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER": moto_url,
        "AWS_ENDPOINT_URL_COGNITO_IDENTITY": moto_url,
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "DR_DROA_PASSWORD": password,
    }


def test_droa_import_uploads_what_the_backend_reads_then_waits_until_ready(
    droa_dir: Path, site: FakeDroa, transit: tuple[Any, str], moto_url: str, tmp_path: Path, model: Any
) -> None:
    client, bucket = transit

    result = drtasks("import-model", "--target", "droa", "--wait", "-f", dr_dir=droa_dir, env=droa_env(moto_url, tmp_path))

    assert result.code == 0, result.text
    assert "READY" in result.out and PASSWORD not in result.text
    uploaded = objects(client, bucket)
    prefixes = {key.split("/")[2] for key in uploaded}
    assert len(prefixes) == 1 and all(key.startswith("uploads/models/") for key in uploaded)
    prefix = f"uploads/models/{prefixes.pop()}"
    keys = {key[len(prefix) + 1 :] for key in uploaded}
    name = model.checkpoints[model.last].name
    assert {"model_metadata.json", "reward_function.py", "training_params.yaml", "ip/hyperparameters.json"} <= keys
    assert {f"model/{name}.index", f"model/{name}.meta", f"model/{name}.data-00000-of-00001", f"model/model_{model.last}.pb"} <= keys
    assert not any(key.endswith((".gz", ".zip")) for key in keys)
    params = yaml.safe_load(uploaded[f"{prefix}/training_params.yaml"])
    assert params["WORLD_NAME"] == "2022_april_open"
    assert params["TRACK_DIRECTION_CLOCKWISE"] is True
    assert params["SAGEMAKER_SHARED_S3_BUCKET"] == bucket and params["SAGEMAKER_SHARED_S3_PREFIX"] == prefix
    assert params["REWARD_FILE_S3_KEY"] == f"{prefix}/reward_function.py"
    [imported] = site.models.values()
    assert (imported.name, imported.status) == (UPLOAD_PREFIX, "READY")
    assert imported.track == {"trackId": "2022_april_open", "trackDirection": "CLOCKWISE"}


def test_droa_best_checkpoint_flag_chooses_what_is_uploaded(
    droa_dir: Path, site: FakeDroa, transit: tuple[Any, str], moto_url: str, tmp_path: Path, model: Any
) -> None:
    client, bucket = transit

    result = drtasks("import-model", "-t", "droa", "-f", "-b", "-n", "best-one", dr_dir=droa_dir, env=droa_env(moto_url, tmp_path))

    assert result.code == 0, result.text
    keys = set(objects(client, bucket))
    assert any(key.endswith(f"model/model_{model.best}.pb") for key in keys)
    assert not any(key.endswith(f"model/model_{model.last}.pb") for key in keys)
    assert [m.name for m in site.models.values()] == ["best-one"]


def test_droa_dry_run_shows_the_plan_and_writes_nothing(droa_dir: Path, site: FakeDroa, transit: tuple[Any, str], moto_url: str, tmp_path: Path) -> None:
    client, bucket = transit

    result = drtasks("import-model", "-t", "droa", "--dry-run", dr_dir=droa_dir, env=droa_env(moto_url, tmp_path))

    assert result.code == 0, result.text
    assert "Plan:" in result.out and "uploads/models/" in result.out and "nothing was written" in result.err
    assert objects(client, bucket) == {} and site.models == {}


def test_droa_wrong_password_is_a_clean_error_that_never_shows_it(droa_dir: Path, site: FakeDroa, transit: tuple[Any, str], moto_url: str, tmp_path: Path) -> None:
    client, bucket = transit
    wrong = "Wr0ng-password-typed!"

    result = drtasks("import-model", "-t", "droa", "-f", dr_dir=droa_dir, env=droa_env(moto_url, tmp_path, wrong))

    refused(result, "sign-in refused", USERNAME)
    assert wrong not in result.text and PASSWORD not in result.text
    assert objects(client, bucket) == {} and site.models == {}


def test_droa_model_without_reward_function_is_refused_before_upload(
    droa_dir: Path, site: FakeDroa, transit: tuple[Any, str], moto_url: str, tmp_path: Path, s3_server: Any, model: Any
) -> None:
    client, bucket = transit
    s3_server.client().delete_object(Bucket=model.bucket, Key=model.custom_reward_key)
    s3_server.client().delete_object(Bucket=model.bucket, Key=model.key("reward_function.py"))

    result = drtasks("import-model", "-t", "droa", "-f", dr_dir=droa_dir, env=droa_env(moto_url, tmp_path))

    refused(result, "reward_function.py", "nothing was written")
    assert objects(client, bucket) == {} and site.models == {}


def test_droa_rules_refuse_with_every_blocking_problem_listed(droa_dir: Path, site: FakeDroa, transit: tuple[Any, str], moto_url: str, tmp_path: Path) -> None:
    client, bucket = transit
    set_line(droa_dir / "run.env", "DR_WORLD_NAME", "no_such_track")
    set_line(droa_dir / "run.env", "DR_CAR_COLOR", "Pink")

    result = drtasks("import-model", "-t", "droa", "-f", dr_dir=droa_dir, env=droa_env(moto_url, tmp_path))

    refused(result, "DRoA would refuse", "no_such_track", "CAR_COLOR 'Pink'")
    assert objects(client, bucket) == {} and site.models == {}


def test_droa_bad_name_is_refused_before_any_call(droa_dir: Path, site: FakeDroa, transit: tuple[Any, str], moto_url: str, tmp_path: Path) -> None:
    client, bucket = transit

    result = drtasks("import-model", "-t", "droa", "-f", "--name", "not_valid", dr_dir=droa_dir, env=droa_env(moto_url, tmp_path))

    refused(result, "not_valid")
    assert site.calls == [] and objects(client, bucket) == {}


def test_upload_with_import_into_droa_uploads_to_both_buckets(
    droa_dir: Path, site: FakeDroa, transit: tuple[Any, str], moto_url: str, tmp_path: Path, s3_server: Any, upload_bucket: str
) -> None:
    client, bucket = transit
    set_line(droa_dir / "system.env", "DR_IMPORT_TARGET", "droa")

    result = drtasks("upload", "-f", "--import-name", "chained", dr_dir=droa_dir, env=droa_env(moto_url, tmp_path))

    assert result.code == 0, result.text
    assert objects(s3_server.client(), upload_bucket, UPLOAD_PREFIX + "/")
    assert objects(client, bucket)
    assert [m.name for m in site.models.values()] == ["chained"]


def test_models_json_lists_the_droa_models(droa_dir: Path, site: FakeDroa, moto_url: str, tmp_path: Path) -> None:
    site.models["m-1"] = FakeModel("m-1", "alpha", None, status="READY")

    result = drtasks("models", "--target", "droa", "--json", dr_dir=droa_dir, env=droa_env(moto_url, tmp_path))

    assert result.code == 0, result.text
    assert [(m["name"], m["status"], m["id"]) for m in json.loads(result.out)] == [("alpha", "READY", "m-1")]


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
