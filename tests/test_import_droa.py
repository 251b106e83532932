"""Import into DeepRacer on AWS (DRoA): discovery, sign-in, local rules and the API as DRoA answers.

Real servers: moto (Cognito user pool + identity pool, and S3 for the deployment's buckets behind
the put-only policy of tests.fakes.s3_put_only). The DRoA API gateway and backend are the fake in
tests.fakes.droa_api, built from DRoA v1.2.5's source (fixtures: tests.droa_world).
"""

from __future__ import annotations

import dataclasses
import json
import stat
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import botocore.exceptions
import pytest
import yaml

from drtasks.errors import DrtasksError
from drtasks.importing import droa
from drtasks.importing.droa import (
    DroaCredentials,
    credentials_cache_file,
    new_upload_prefix,
    parse_env_js,
    save_cached_credentials,
    sign_in,
    wait_for_model,
)
from drtasks.importing.reward_check import check_reward_function
from drtasks.importing.droa_rules import (
    CLOCKWISE,
    COUNTER_CLOCKWISE,
    DroaModelFiles,
    check_action_space,
    check_algorithm,
    check_car,
    check_import,
    check_names,
    check_object_avoidance,
    check_track,
    droa_direction,
    dump_training_params,
    training_params_for_droa,
)
from tests.droa_world import PASSWORD, REGION, USERNAME, Transit, cognito_env, install_checkpoint
from tests.fakes.droa_api import FakeDroa


def blocking(problems: list[Any]) -> list[str]:
    return [str(p) for p in problems if p.blocking]


@pytest.fixture
def droa_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, moto_url: str) -> Path:
    """Cognito calls go to moto through botocore's own endpoint variables; the cache goes to tmp."""
    for name, value in cognito_env(moto_url, tmp_path / "cache").items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL", "DR_DROA_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "cache"


@pytest.fixture
def site(droa_site: FakeDroa, droa_env: Path) -> FakeDroa:
    return droa_site


def correct_password() -> str:
    return PASSWORD


def refuse_to_ask() -> str:
    raise AssertionError("the password was asked although cached credentials were valid")


# --------------------------------------------------------------------------- model files

DRFC_TRAINING_PARAMS = {
    "AWS_REGION": "us-east-1",
    "JOB_TYPE": "TRAINING",
    "METRICS_S3_BUCKET": "bucket",
    "METRICS_S3_OBJECT_KEY": "rl-model/TrainingMetrics.json",
    "MODEL_METADATA_FILE_S3_KEY": "rl-model/model/model_metadata.json",
    "REWARD_FILE_S3_KEY": "rl-model/reward_function.py",
    "SAGEMAKER_SHARED_S3_BUCKET": "bucket",
    "SAGEMAKER_SHARED_S3_PREFIX": "rl-model",
    "BODY_SHELL_TYPE": "deepracer",
    "CAR_COLOR": "Red",
    "CAR_NAME": "FastCar",
    "RACE_TYPE": "TIME_TRIAL",
    "WORLD_NAME": "2022_april_open_cw",
    "DISPLAY_NAME": "FastCar",
    "RACER_NAME": "FastCar",
    "ALTERNATE_DRIVING_DIRECTION": "False",
    "CHANGE_START_POSITION": "True",
    "ENABLE_DOMAIN_RANDOMIZATION": "False",
    "MIN_EVAL_TRIALS": "5",
}
PPO_METADATA = {
    "action_space": [{"steering_angle": -30, "speed": 0.6}, {"steering_angle": 30, "speed": 0.6}],
    "sensor": ["FRONT_FACING_CAMERA"],
    "neural_network": "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW",
    "training_algorithm": "clipped_ppo",
    "action_space_type": "discrete",
    "version": "5",
}
HYPERPARAMETERS = {"batch_size": 64, "num_episodes_between_training": 20, "lr": 0.0003}
REWARD = "def reward_function(params):\n    return 1.0\n"


def model_texts(params: dict[str, Any] | None = None, *, metadata: dict[str, Any] | None = None,
                hyper: dict[str, Any] | None = None, reward: str = REWARD,
                bucket: str = "b", prefix: str = "uploads/models/x") -> dict[str, str]:
    droa_params = training_params_for_droa(params or DRFC_TRAINING_PARAMS, bucket, prefix)
    return {
        "training_params.yaml": dump_training_params(droa_params),
        "model_metadata.json": json.dumps(metadata or PPO_METADATA),
        "ip/hyperparameters.json": json.dumps(hyper or HYPERPARAMETERS),
        "reward_function.py": reward,
    }


# --------------------------------------------------------------------------- env.js


def test_env_js_is_read_as_a_javascript_object_literal() -> None:
    text = """
    // generated at deploy time
    window.EnvironmentConfig = {
      region: 'eu-west-1',
      "userPoolId": "eu-west-1_AbC",
      userPoolClientId: 'client1', /* web client */
      identityPoolId: 'eu-west-1:0f0e-11',
      apiEndpointUrl: 'https://abc.execute-api.eu-west-1.amazonaws.com/prod/',
      uploadBucketName: 'droa-upload-bucket',
      featureFlags: { racing: true, limits: [1, 2.5,], },
    };
    """
    deployment = parse_env_js(text, "https://droa.example.com")
    assert deployment.region == "eu-west-1"
    assert deployment.user_pool_id == "eu-west-1_AbC"
    assert deployment.user_pool_client_id == "client1"
    assert deployment.identity_pool_id == "eu-west-1:0f0e-11"
    assert deployment.api_endpoint_url.endswith("/prod/")
    assert deployment.upload_bucket_name == "droa-upload-bucket"
    assert deployment.login_provider == "cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbC"


def test_env_js_without_environment_config_or_with_missing_fields_is_refused_by_name() -> None:
    with pytest.raises(DrtasksError, match="does not set window.EnvironmentConfig"):
        parse_env_js("console.log('hello')")
    with pytest.raises(DrtasksError, match="lacks identityPoolId, uploadBucketName"):
        parse_env_js("window.EnvironmentConfig = {region: 'r', userPoolId: 'p', userPoolClientId: 'c',"
                     " apiEndpointUrl: 'https://x'}")


def test_deployment_is_discovered_from_the_site_url(site: FakeDroa) -> None:
    deployment = droa.discover(site.url + "/")
    assert deployment.api_endpoint_url == site.api_url
    assert deployment.upload_bucket_name == site.upload_bucket
    assert deployment.url == site.url


# --------------------------------------------------------------------------- sign-in


def test_sign_in_caches_temporary_credentials_in_an_owner_only_file(site: FakeDroa) -> None:
    session = sign_in(site.url, USERNAME, correct_password)

    assert not session.from_cache
    assert session.region == REGION
    assert session.credentials.remaining() > timedelta(0)
    cache = credentials_cache_file(site.url, USERNAME)
    assert stat.S_IMODE(cache.stat().st_mode) == 0o600
    assert PASSWORD not in cache.read_text()
    assert json.loads(cache.read_text())["session_token"] == session.credentials.session_token
    # Usable for S3 in the deployment's region
    assert session.boto3_session().region_name == REGION


def test_cached_credentials_are_reused_without_asking_for_the_password(
    site: FakeDroa, monkeypatch: pytest.MonkeyPatch
) -> None:
    # moto issues 90-second credentials (AWS: one hour), below the 5-minute margin kept in real use.
    monkeypatch.setattr(droa, "REUSE_MARGIN", timedelta(seconds=30))
    first = sign_in(site.url, USERNAME, correct_password)
    again = sign_in(site.url, USERNAME, refuse_to_ask)
    assert again.from_cache
    assert again.credentials == first.credentials


def test_credentials_about_to_expire_are_not_reused(site: FakeDroa) -> None:
    stale = DroaCredentials("ASIASTALE", "secret", "token", datetime.now(timezone.utc) + timedelta(minutes=3))
    save_cached_credentials(site.url, USERNAME, stale)
    asked = []

    def provider() -> str:
        asked.append(True)
        return PASSWORD

    session = sign_in(site.url, USERNAME, provider)
    assert asked == [True]
    assert session.credentials.access_key_id != "ASIASTALE"


def test_wrong_password_is_a_one_line_error_that_never_shows_the_password(site: FakeDroa) -> None:
    wrong = "Wr0ng-Secret-Value!"
    with pytest.raises(DrtasksError) as refused:
        sign_in(site.url, USERNAME, lambda: wrong)
    message = str(refused.value)
    assert message.startswith(f"DRoA sign-in refused for {USERNAME}: ")
    assert "\n" not in message
    assert wrong not in message
    assert not credentials_cache_file(site.url, USERNAME).exists()


def test_password_comes_from_dr_droa_password_for_automation(site: FakeDroa, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DR_DROA_PASSWORD", PASSWORD)
    session = sign_in(site.url, USERNAME, use_cache=False)
    assert session.credentials.session_token
    assert not credentials_cache_file(site.url, USERNAME).exists()


def test_credentials_repr_hides_the_secret_and_the_token() -> None:
    creds = DroaCredentials("ASIAEXAMPLEKEY", "very-secret-key", "very-long-token",
                            datetime(2030, 1, 1, tzinfo=timezone.utc))
    for text in (repr(creds), str(creds)):
        assert "very-secret-key" not in text
        assert "very-long-token" not in text
        assert "ASIAEXAMPLEKEY" not in text


# --------------------------------------------------------------------------- the DRoA API (fake built from v1.2.5)


def uploaded(transit: Transit, texts: dict[str, str], checkpoint: dict[str, bytes] | None = None) -> str:
    """Put a model's files into the upload bucket (as the tests' admin); returns the prefix."""
    prefix = new_upload_prefix()
    transit.put(prefix, texts)
    if checkpoint is not None:
        name = "2_Step-400.ckpt"
        install_checkpoint(transit.admin, transit.bucket, prefix, name, checkpoint)
        entry = {"name": name, "time_stamp": 1.0, "avg_comp_pct": 50.0}
        transit.put(prefix, {"model/deepracer_checkpoints.json": json.dumps({"best_checkpoint": entry, "last_checkpoint": entry}),
                             "model/.coach_checkpoint": name, "model/model_metadata.json": texts["model_metadata.json"]})
    return prefix


@pytest.fixture
def api(site: FakeDroa) -> droa.DroaApi:
    return sign_in(site.url, USERNAME, correct_password).api()


def test_import_then_wait_reports_importing_then_ready(site: FakeDroa, transit: Transit, api: droa.DroaApi, real_checkpoint: Any) -> None:
    texts = model_texts(metadata=real_checkpoint.metadata)
    prefix = uploaded(transit, texts, real_checkpoint.files)
    assert blocking(check_import("my-model-1", "first import", texts)) == []

    model_id = api.import_model(transit.bucket, prefix, "my-model-1", "first import")
    seen: list[str] = []
    model = wait_for_model(api, model_id, on_status=lambda status, _: seen.append(status), poll_seconds=0.05)

    assert seen == ["IMPORTING", "READY"]
    assert len(model_id) == 15 and model_id.isalnum()
    assert model["name"] == "my-model-1" and model["description"] == "first import"
    # The direction suffix of the DRfC world name reached DRoA as a clockwise track.
    assert model["trainingConfig"]["trackConfig"] == {"trackId": "2022_april_open", "trackDirection": "CLOCKWISE"}
    assert model["carCustomization"] == {"carShell": "DEEPRACER", "carColor": "RED"}
    assert model["metadata"]["rewardFunction"] == REWARD
    assert [m["modelId"] for m in api.list_models()] == [model_id]


def test_a_missing_required_file_is_a_500_internal_failure_not_a_400(site: FakeDroa, transit: Transit, api: droa.DroaApi) -> None:
    texts = model_texts()
    del texts["ip/hyperparameters.json"]
    prefix = uploaded(transit, texts)

    assert blocking(check_import("no-hyper", None, texts)) == ["ip/hyperparameters.json: missing: DRoA needs it to import the model"]
    with pytest.raises(DrtasksError) as refused:
        api.import_model(transit.bucket, prefix, "no-hyper")
    message = str(refused.value)
    assert "HTTP 500 (InternalFailure)" in message and "required file" in message and "\n" not in message
    assert site.models == {}


def test_a_name_outside_the_pattern_never_reaches_the_api(site: FakeDroa, api: droa.DroaApi) -> None:
    site.calls.clear()
    with pytest.raises(DrtasksError, match="model name: 'my model_1' must be 1-64 letters, digits or hyphens"):
        api.import_model(site.upload_bucket, "uploads/models/x", "my model_1")
    assert site.calls == []


def test_api_gateway_validates_the_body_before_the_handler(site: FakeDroa, api: droa.DroaApi) -> None:
    with pytest.raises(DrtasksError) as refused:
        api.request("POST", "/importmodel", {"s3Bucket": site.upload_bucket, "s3Path": "p", "modelName": "bad_name!"})
    assert str(refused.value).endswith('Invalid request body: [ECMA 262 regex "^[a-zA-Z0-9-]+$" does not match input string "bad_name!"]')
    with pytest.raises(DrtasksError, match=r'object has missing required properties \(\["s3Path"\]\)'):
        api.request("POST", "/importmodel", {"s3Bucket": site.upload_bucket, "modelName": "ok"})


@pytest.mark.parametrize(
    ("reward", "reason"),
    [
        ("import os\n\n\ndef reward_function(params):\n    return float(len(os.sep))\n",
         "Reward Function Validation The reward function contains illegal import(s): ['os']"),
        ("def reward_function(params):\n    return 1\n", "Reward Function Validation Method returned non-floating type value: 1"),
        ("def reward_function(params):\n    # payload of the car\n    return 1.0\n",
         'Reward Function Validation Your code snippet contains a restricted string "load"'),
        ("print('no function here')\n", "Reward Function Validation module 'reward_function' has no attribute 'reward_function'"),
    ],
    ids=["illegal import", "int", "forbidden string", "no function"],
)
def test_a_reward_function_that_fails_validation_ends_in_error(
    reward: str, reason: str, site: FakeDroa, transit: Transit, api: droa.DroaApi
) -> None:
    prefix = uploaded(transit, model_texts(reward=reward))
    model_id = api.import_model(transit.bucket, prefix, "broken-reward")
    assert api.get_model(model_id)["status"] == "IMPORTING"

    with pytest.raises(DrtasksError) as failed:
        wait_for_model(api, model_id, poll_seconds=0.05)
    assert str(failed.value).startswith(f"DRoA could not import model {model_id}: {reason}")
    # What DRoA's validator refuses, drtasks refuses before uploading.
    assert blocking(check_reward_function(reward, "2022_april_open", True))


def test_a_checkpoint_of_random_bytes_fails_model_validation(site: FakeDroa, transit: Transit, api: droa.DroaApi) -> None:
    junk = {suffix: bytes(range(256)) * 8 for suffix in ("index", "data-00000-of-00001", "meta")}
    prefix = uploaded(transit, model_texts(), junk)
    model_id = api.import_model(transit.bucket, prefix, "random-bytes")
    with pytest.raises(DrtasksError, match="Model validation failed: Validation worker exited with exception"):
        wait_for_model(api, model_id, poll_seconds=0.05)


def test_a_policy_head_that_does_not_match_the_action_space_fails_model_validation(
    site: FakeDroa, transit: Transit, api: droa.DroaApi, real_checkpoint: Any
) -> None:
    assert len(real_checkpoint.metadata["action_space"]) == 6 and len(PPO_METADATA["action_space"]) == 2
    prefix = uploaded(transit, model_texts(metadata=PPO_METADATA), real_checkpoint.files)
    model_id = api.import_model(transit.bucket, prefix, "six-actions")
    with pytest.raises(DrtasksError, match=r"Model validation failed: User modified model: Cannot feed value of shape \(512, 6\)"):
        wait_for_model(api, model_id, poll_seconds=0.05)


def test_models_are_listed_page_by_page_with_a_token(site: FakeDroa, api: droa.DroaApi) -> None:
    site.page_size = 2
    names = [f"model-{n}" for n in range(5)]
    for name in names:
        site.add_model(name, USERNAME)
    first = api.request("GET", "/models")
    assert len(first["models"]) == 2 and first["token"]
    assert [m["name"] for m in api.list_models()] == names


def test_delete_is_refused_while_importing_and_asynchronous_once_ready(site: FakeDroa, api: droa.DroaApi) -> None:
    importing = site.add_model("busy", USERNAME, status="IMPORTING")
    with pytest.raises(DrtasksError, match="This resource cannot be deleted at this time. Try again later."):
        api.delete_model(importing.model_id)

    ready = site.add_model("done", USERNAME)
    api.delete_model(ready.model_id)
    assert api.get_model(ready.model_id)["status"] == "DELETING"
    site.wait_idle()
    with pytest.raises(DrtasksError, match="DRoA found nothing .*: Item not found."):
        api.get_model(ready.model_id)


def test_model_ids_outside_droa_pattern_are_a_validation_exception(site: FakeDroa, api: droa.DroaApi) -> None:
    with pytest.raises(DrtasksError, match=r"1 validation error detected. Value m-1 at '/modelId'"):
        api.get_model("m-1")


def download(url: str) -> bytes:
    with urllib.request.urlopen(url) as response:
        return response.read()


def test_each_asset_type_as_droa_serves_it(site: FakeDroa, transit: Transit, api: droa.DroaApi, real_checkpoint: Any) -> None:
    import io
    import tarfile

    texts = model_texts(metadata=real_checkpoint.metadata)
    prefix = uploaded(transit, {**texts, "metrics/training/training-20260101000000.json": '{"metrics": []}'}, real_checkpoint.files)
    model_id = api.import_model(transit.bucket, prefix, "assets")
    wait_for_model(api, model_id, poll_seconds=0.05)

    logs = tarfile.open(fileobj=io.BytesIO(download(api.get_asset_url(model_id, "TRAINING_LOGS")["url"])))
    assert any(name.startswith("metrics/training/") for name in logs.getnames())

    assert api.get_asset_url(model_id, "VIRTUAL_MODEL") == {"status": "QUEUED"}
    site.wait_idle()
    virtual = api.get_asset_url(model_id, "VIRTUAL_MODEL")["url"]
    assert "X-Amz-Expires=900" in virtual and "virtualmodel-assets.tar.gz" in urllib.parse.unquote(virtual)
    members = tarfile.open(fileobj=io.BytesIO(download(virtual))).getnames()
    assert "reward_function.py" in members and "model/2_Step-400.ckpt.index" in members

    with pytest.raises(DrtasksError, match="Unable to find physical model artifact."):
        api.get_asset_url(model_id, "PHYSICAL_CAR_MODEL")  # imports have none: trained in DRoA only
    trained = site.add_trained_model("trained-here", USERNAME, b"car archive")
    physical = api.get_asset_url(trained.model_id, "PHYSICAL_CAR_MODEL")["url"]
    assert "X-Amz-Expires=300" in physical and download(physical) == b"car archive"

    with pytest.raises(DrtasksError, match="evaluationId is required for evaluation logs."):
        api.get_asset_url(model_id, "EVALUATION_LOGS")
    evaluation = api.request("POST", f"/models/{model_id}/evaluation",
                             {"evaluationConfig": {"evaluationName": "e1", "maxLaps": 3}})["evaluationId"]
    with pytest.raises(DrtasksError, match="Logs download is not available until job is complete."):
        api.get_asset_url(model_id, "EVALUATION_LOGS", evaluation)
    site.wait_idle()
    evaluation_logs = tarfile.open(fileobj=io.BytesIO(download(api.get_asset_url(model_id, "EVALUATION_LOGS", evaluation)["url"])))
    assert evaluation_logs.getnames() == [f"metrics/evaluation/evaluation-{evaluation}.json"]

    with pytest.raises(DrtasksError, match="This asset type is not supported."):
        api.get_asset_url(model_id, "VIDEOS")
    with pytest.raises(DrtasksError, match="Member must satisfy enum value set"):
        api.get_asset_url(model_id, "EVERYTHING")


def test_presigned_asset_urls_expire(site: FakeDroa, transit: Transit, api: droa.DroaApi) -> None:
    trained = site.add_trained_model("trained-here", USERNAME, b"car archive")
    url = api.get_asset_url(trained.model_id, "PHYSICAL_CAR_MODEL")["url"]
    assert download(url) == b"car archive"

    transit.proxy.clock_offset = timedelta(seconds=301)
    with pytest.raises(urllib.error.HTTPError) as expired:
        download(url)
    assert expired.value.code == 403 and b"<Message>Request has expired</Message>" in expired.value.read()


def test_api_calls_are_sigv4_signed_with_the_identity_pool_credentials(site: FakeDroa, api: droa.DroaApi) -> None:
    assert api.list_models() == []
    with pytest.raises(urllib.error.HTTPError) as unsigned:
        urllib.request.urlopen(site.api_url + "/models")
    assert unsigned.value.code == 403 and json.loads(unsigned.value.read()) == {"message": "Missing Authentication Token"}
    forged = droa.DroaApi(site.api_url, dataclasses.replace(api.credentials, secret_access_key="not-the-secret"), REGION)
    with pytest.raises(DrtasksError, match="DRoA denied GET /models \\(403\\): The request signature we calculated does not match"):
        forged.list_models()


BACKEND_REFUSALS = {
    "unknown track": (dict(DRFC_TRAINING_PARAMS, WORLD_NAME="no_such_track"),
                      "Invalid track configuration. Track no_such_track is not available in direction COUNTER_CLOCKWISE."),
    "deepracer in teal": (dict(DRFC_TRAINING_PARAMS, CAR_COLOR="Teal"),
                          "Invalid car customization. Car shell DEEPRACER is not available in color TEAL."),
    "seven obstacles": (dict(DRFC_TRAINING_PARAMS, RACE_TYPE="OBJECT_AVOIDANCE", NUMBER_OF_OBSTACLES="7"),
                        "Number of obstacle positions is invalid."),
    "obstacles too close": (dict(DRFC_TRAINING_PARAMS, RACE_TYPE="OBJECT_AVOIDANCE", NUMBER_OF_OBSTACLES="2",
                                 RANDOMIZE_OBSTACLE_LOCATIONS="False", OBJECT_POSITIONS="0.2,1;0.3,-1"),
                            "Obstacle position distances are invalid."),
}


@pytest.mark.parametrize("case", sorted(BACKEND_REFUSALS))
def test_what_local_rules_block_the_backend_refuses_too(case: str, site: FakeDroa, transit: Transit, api: droa.DroaApi) -> None:
    params, message = BACKEND_REFUSALS[case]
    texts = model_texts(params)
    prefix = uploaded(transit, texts)
    assert blocking(check_import("refused", None, texts)), case
    with pytest.raises(DrtasksError) as refused:
        api.import_model(transit.bucket, prefix, "refused")
    assert str(refused.value) == f"DRoA import of 'refused' failed: {message}"


def test_the_racer_may_only_put_into_the_upload_bucket(site: FakeDroa, transit: Transit) -> None:
    session = sign_in(site.url, USERNAME, correct_password)
    racer = session.s3_client(transit.proxy.url)
    racer.put_object(Bucket=transit.bucket, Key="uploads/models/x/a.txt", Body=b"a")
    for refused in (lambda: racer.list_objects_v2(Bucket=transit.bucket),
                    lambda: racer.get_object(Bucket=transit.bucket, Key="uploads/models/x/a.txt"),
                    lambda: racer.head_object(Bucket=transit.bucket, Key="uploads/models/x/a.txt")):
        with pytest.raises(botocore.exceptions.ClientError) as denied:
            refused()
        assert denied.value.response["Error"]["Code"] in ("AccessDenied", "403")
    # The fixture's guard turns such requests into a failure of the test that made them.
    with pytest.raises(AssertionError, match="ListObjectsV2 .*GetObject .*HeadObject"):
        transit.proxy.assert_put_only()
    transit.proxy.requests.clear()


def test_a_verify_by_listing_is_what_the_put_only_bucket_refuses(site: FakeDroa, transit: Transit) -> None:
    """The old way to prove an upload (list the prefix) cannot work against a real deployment."""
    from drtasks.plan import list_target
    from drtasks.s3 import S3Location

    racer = sign_in(site.url, USERNAME, correct_password).s3_client(transit.proxy.url)
    with pytest.raises(DrtasksError, match="AccessDenied|Access Denied"):
        list_target(racer, S3Location(transit.bucket, "uploads/models/x", transit.proxy.url, "droa", REGION))
    transit.proxy.requests.clear()

# --------------------------------------------------------------------------- training params


def test_training_params_point_at_droa_bucket_and_keep_booleans_unquoted() -> None:
    params = training_params_for_droa(DRFC_TRAINING_PARAMS, "droa-bucket", "uploads/models/abc/")
    assert params["WORLD_NAME"] == "2022_april_open"
    assert params["TRACK_DIRECTION_CLOCKWISE"] is True
    assert params["SAGEMAKER_SHARED_S3_BUCKET"] == "droa-bucket"
    assert params["SAGEMAKER_SHARED_S3_PREFIX"] == "uploads/models/abc"
    assert params["METRICS_S3_BUCKET"] == "droa-bucket"
    assert params["REWARD_FILE_S3_KEY"] == "uploads/models/abc/reward_function.py"
    assert params["MODEL_METADATA_FILE_S3_KEY"] == "uploads/models/abc/model/model_metadata.json"
    text = dump_training_params(params)
    assert "TRACK_DIRECTION_CLOCKWISE: true\n" in text
    assert yaml.safe_load(text)["TRACK_DIRECTION_CLOCKWISE"] is True
    # DRfC's own strings stay strings
    assert yaml.safe_load(text)["CHANGE_START_POSITION"] == "True"


@pytest.mark.parametrize(
    ("world", "extra", "expected"),
    [
        ("2022_april_open_cw", {}, CLOCKWISE),
        ("2022_april_open_ccw", {}, COUNTER_CLOCKWISE),
        ("2022_april_open", {}, COUNTER_CLOCKWISE),  # the track's default direction
        ("2022_april_open", {"REVERSE_DIR": "True"}, CLOCKWISE),
        ("reInvent2019_wide", {}, CLOCKWISE),  # a track whose default is clockwise
        ("reInvent2019_wide", {"REVERSE_DIR": True}, COUNTER_CLOCKWISE),
        ("2022_april_open_cw", {"REVERSE_DIR": "true"}, COUNTER_CLOCKWISE),
    ],
)
def test_direction_comes_from_the_suffix_or_the_default_flipped_by_reverse(
    world: str, extra: dict[str, Any], expected: str
) -> None:
    assert droa_direction({"WORLD_NAME": world, **extra}) == expected


def test_object_avoidance_values_lose_drfc_quotes() -> None:
    params = training_params_for_droa(
        dict(DRFC_TRAINING_PARAMS, RACE_TYPE="OBJECT_AVOIDANCE", NUMBER_OF_OBSTACLES="3",
             RANDOMIZE_OBSTACLE_LOCATIONS="False", OBJECT_POSITIONS="0.2,1;0.5,-1;0.8,1"),
        "b", "p",
    )
    assert params["NUMBER_OF_OBSTACLES"] == 3
    assert params["RANDOMIZE_OBSTACLE_LOCATIONS"] is False
    assert params["OBJECT_POSITIONS"] == ["0.2,1", "0.5,-1", "0.8,1"]
    assert check_object_avoidance(params) == []


# --------------------------------------------------------------------------- rules


def test_names_and_descriptions_follow_droa_patterns() -> None:
    assert check_names("good-Name-42", "A fine model - v2") == []
    assert check_names("x" * 64) == []
    assert blocking(check_names("x" * 65))
    assert blocking(check_names("under_score"))
    assert blocking(check_names(""))
    assert [p.file for p in check_names("ok", "no_underscores!")] == ["model description"]
    assert blocking(check_names("ok", "d" * 256))


def test_track_must_be_a_droa_track_without_direction_suffix() -> None:
    assert check_track({"WORLD_NAME": "2022_april_open", "TRACK_DIRECTION_CLOCKWISE": True}) == []
    assert blocking(check_track({"WORLD_NAME": "2022_april_open_cw"})) == [
        "training_params.yaml: WORLD_NAME '2022_april_open_cw' carries a direction suffix: DRoA wants "
        "'2022_april_open' with TRACK_DIRECTION_CLOCKWISE"
    ]
    assert blocking(check_track({"WORLD_NAME": "Nowhere_track"})) == [
        "training_params.yaml: WORLD_NAME 'Nowhere_track' is not a track of DRoA"
    ]
    assert blocking(check_track({})) == ["training_params.yaml: WORLD_NAME is missing"]


def test_track_direction_must_be_a_yaml_boolean_where_both_directions_exist() -> None:
    as_string = check_track({"WORLD_NAME": "2022_april_open", "TRACK_DIRECTION_CLOCKWISE": "true"})
    assert blocking(as_string) and "not a YAML boolean" in str(as_string[0])
    assert check_track({"WORLD_NAME": "2022_april_open", "TRACK_DIRECTION_CLOCKWISE": False}) == []
    missing = check_track({"WORLD_NAME": "2022_april_open"})
    assert [p.blocking for p in missing] == [False]
    # A single-direction track ignores the flag, whatever its type.
    assert check_track({"WORLD_NAME": "2022_july_open", "TRACK_DIRECTION_CLOCKWISE": "true"}) == []
    assert check_track({"WORLD_NAME": "Albert"}) == []


def test_object_avoidance_needs_one_to_six_obstacles_placed_apart() -> None:
    base = {"RACE_TYPE": "OBJECT_AVOIDANCE", "RANDOMIZE_OBSTACLE_LOCATIONS": False}
    assert check_object_avoidance({**base, "NUMBER_OF_OBSTACLES": 6}) == []
    assert blocking(check_object_avoidance({**base, "NUMBER_OF_OBSTACLES": 0}))
    assert blocking(check_object_avoidance({**base, "NUMBER_OF_OBSTACLES": 7}))
    assert blocking(check_object_avoidance({**base}))
    assert blocking(check_object_avoidance({**base, "NUMBER_OF_OBSTACLES": "3",
                                            "OBJECT_POSITIONS": ["0.2,1", "0.5,1", "0.8,1"]}))
    placed = {**base, "NUMBER_OF_OBSTACLES": 2}
    assert check_object_avoidance({**placed, "OBJECT_POSITIONS": ["0.2,1", "0.5,-1"]}) == []
    assert blocking(check_object_avoidance({**placed, "OBJECT_POSITIONS": ["0.2,1"]}))
    assert blocking(check_object_avoidance({**placed, "OBJECT_POSITIONS": ["0.05,1", "0.5,1"]}))
    assert blocking(check_object_avoidance({**placed, "OBJECT_POSITIONS": ["0.2,1", "0.95,1"]}))
    assert blocking(check_object_avoidance({**placed, "OBJECT_POSITIONS": ["0.2,1", "0.3,1"]}))
    # Randomized obstacles ignore the positions, like DRoA.
    assert check_object_avoidance({**placed, "RANDOMIZE_OBSTACLE_LOCATIONS": True,
                                   "OBJECT_POSITIONS": ["0.2,1", "0.3,1"]}) == []
    assert check_object_avoidance({"RACE_TYPE": "TIME_TRIAL", "NUMBER_OF_OBSTACLES": 99}) == []


def test_sac_needs_a_continuous_space_and_one_episode_between_training() -> None:
    sac_discrete = {"training_algorithm": "sac", "action_space_type": "discrete"}
    sac_continuous = {"training_algorithm": "sac", "action_space_type": "continuous"}
    assert blocking(check_algorithm(sac_discrete, {"num_episodes_between_training": 1})) == [
        "model_metadata.json: SAC does not work with a discrete action space"
    ]
    assert check_algorithm(sac_continuous, {"num_episodes_between_training": 1}) == []
    assert blocking(check_algorithm(sac_continuous, {"num_episodes_between_training": 20})) == [
        "ip/hyperparameters.json: num_episodes_between_training is 20: SAC needs 1"
    ]
    assert check_algorithm(PPO_METADATA, {"num_episodes_between_training": 20}) == []


def test_continuous_ranges_need_low_below_high() -> None:
    def space(speed: tuple[float, float], angle: tuple[float, float]) -> dict[str, Any]:
        return {"action_space_type": "continuous", "action_space": {
            "speed": {"low": speed[0], "high": speed[1]},
            "steering_angle": {"low": angle[0], "high": angle[1]}}}

    assert check_action_space(space((0.5, 3.0), (-30, 30))) == []
    assert blocking(check_action_space(space((3.0, 3.0), (-30, 30)))) == [
        "model_metadata.json: continuous speed: low 3.0 must be below high 3.0"
    ]
    assert len(blocking(check_action_space(space((4, 1), (30, -30))))) == 2
    assert blocking(check_action_space({"action_space_type": "continuous", "action_space": []}))


def test_car_shell_and_colour_pairs_follow_droa() -> None:
    assert check_car({"BODY_SHELL_TYPE": "deepracer", "CAR_COLOR": "Purple"}) == []
    assert check_car({"BODY_SHELL_TYPE": "deepracer"}) == []
    assert check_car({"BODY_SHELL_TYPE": "f1_car_tron_05"}) == []
    assert check_car({}) == []
    teal = check_car({"BODY_SHELL_TYPE": "deepracer", "CAR_COLOR": "Teal"})
    assert blocking(teal) and "not available for the deepracer shell" in str(teal[0])
    # What DRoA would silently replace is reported, without blocking.
    unknown_colour = check_car({"BODY_SHELL_TYPE": "deepracer", "CAR_COLOR": "Magenta"})
    unknown_shell = check_car({"BODY_SHELL_TYPE": "f1_car_11"})
    assert [p.blocking for p in unknown_colour + unknown_shell] == [False, False]


def test_unreadable_and_missing_files_are_named() -> None:
    texts = model_texts()
    texts["model_metadata.json"] = "{not json"
    del texts["reward_function.py"]
    problems = blocking(check_import("ok", None, texts))
    assert len(problems) == 2
    assert problems[0].startswith("model_metadata.json: cannot be parsed")
    assert problems[1] == "reward_function.py: missing: DRoA needs it to import the model"


def test_check_model_files_reports_every_missing_file() -> None:
    from drtasks.importing.droa_rules import check_model_files

    problems = check_model_files(DroaModelFiles(None, None, None, None))
    assert sorted(p.file for p in problems) == sorted(
        ["training_params.yaml", "model_metadata.json", "ip/hyperparameters.json", "reward_function.py"]
    )


def test_env_js_that_is_not_a_plain_object_literal_is_a_clear_error() -> None:
    with pytest.raises(DrtasksError, match="not a plain object literal"):
        parse_env_js("window.EnvironmentConfig = {region: getRegion(), userPoolId: 'p'};", "https://droa.example.com")
