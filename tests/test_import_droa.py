"""Import into DeepRacer on AWS (DRoA): discovery, sign-in, local rules and the import API.

Real servers: moto (Cognito user pool + identity pool) and SeaweedFS (the upload bucket). The DRoA
API gateway is the fake in tests.fakes.droa_api, which applies the backend's own rules.
"""

from __future__ import annotations

import json
import socket
import stat
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator

import boto3
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
from tests.fakes.droa_api import FakeDroa

REGION = "eu-west-1"
USERNAME = "racer-1"
PASSWORD = "Corr3ct-Horse!battery"


def blocking(problems: list[Any]) -> list[str]:
    return [str(p) for p in problems if p.blocking]


# --------------------------------------------------------------------------- servers


def _free_port(also_free_offset: int | None = None) -> int:
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if also_free_offset is None or port + also_free_offset > 65535:
            if also_free_offset is None:
                return port
            continue
        with socket.socket() as other:
            try:
                other.bind(("127.0.0.1", port + also_free_offset))
            except OSError:
                continue
        return port


# The DRoA upload bucket lives on the shared SeaweedFS test server (tests/conftest.py).
LocalS3 = Any


@pytest.fixture
def droa_s3(s3_server: Any) -> Any:
    return s3_server


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@dataclass
class CognitoPools:
    user_pool_id: str
    client_id: str
    identity_pool_id: str


@pytest.fixture(scope="module")
def cognito(moto_url: str) -> CognitoPools:
    """A DRoA-like user pool with one racer, and its identity pool."""
    admin = dict(endpoint_url=moto_url, region_name=REGION,
                 aws_access_key_id="admin", aws_secret_access_key="admin")
    idp = boto3.client("cognito-idp", **admin)
    pool_id = idp.create_user_pool(PoolName="droa-users")["UserPool"]["Id"]
    client_id = idp.create_user_pool_client(
        UserPoolId=pool_id, ClientName="droa-web", ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH"]
    )["UserPoolClient"]["ClientId"]
    idp.admin_create_user(UserPoolId=pool_id, Username=USERNAME)
    idp.admin_set_user_password(UserPoolId=pool_id, Username=USERNAME, Password=PASSWORD, Permanent=True)
    identity_pool_id = boto3.client("cognito-identity", **admin).create_identity_pool(
        IdentityPoolName="droa_identities",
        AllowUnauthenticatedIdentities=False,
        CognitoIdentityProviders=[{
            "ProviderName": f"cognito-idp.{REGION}.amazonaws.com/{pool_id}", "ClientId": client_id,
        }],
    )["IdentityPoolId"]
    return CognitoPools(pool_id, client_id, identity_pool_id)


@pytest.fixture
def droa_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, moto_url: str) -> Path:
    """Cognito calls go to moto through botocore's own endpoint variables; the cache goes to tmp."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER", moto_url)
    monkeypatch.setenv("AWS_ENDPOINT_URL_COGNITO_IDENTITY", moto_url)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL", "DR_DROA_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "cache"


@pytest.fixture
def upload_bucket(droa_s3: LocalS3) -> str:
    name = f"droa-upload-{uuid.uuid4().hex[:12]}"
    droa_s3.client().create_bucket(Bucket=name)
    return name


@pytest.fixture
def site(cognito: CognitoPools, droa_s3: LocalS3, upload_bucket: str, droa_env: Path) -> Iterator[FakeDroa]:
    fake = FakeDroa(
        region=REGION,
        user_pool_id=cognito.user_pool_id,
        user_pool_client_id=cognito.client_id,
        identity_pool_id=cognito.identity_pool_id,
        upload_bucket=upload_bucket,
        s3_client=droa_s3.client(),
        ready_after=2,
    ).start()
    yield fake
    fake.stop()


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


def upload(s3: LocalS3, bucket: str, prefix: str, texts: dict[str, str]) -> None:
    client = s3.client()
    for name, text in texts.items():
        client.put_object(Bucket=bucket, Key=f"{prefix}/{name}", Body=text.encode())


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


# --------------------------------------------------------------------------- import API


def test_import_then_wait_reports_importing_then_ready(site: FakeDroa, droa_s3: LocalS3) -> None:
    session = sign_in(site.url, USERNAME, correct_password)
    bucket = session.deployment.upload_bucket_name
    prefix = new_upload_prefix()
    texts = model_texts(bucket=bucket, prefix=prefix)
    assert blocking(check_import("my-model-1", "first import", texts)) == []
    upload(droa_s3, bucket, prefix, texts)

    api = session.api()
    model_id = api.import_model(bucket, prefix, "my-model-1", "first import")
    seen: list[str] = []
    model = wait_for_model(api, model_id, on_status=lambda status, _: seen.append(status), poll_seconds=0)

    assert seen == ["IMPORTING", "READY"]
    assert model["name"] == "my-model-1"
    # The direction suffix of the DRfC world name reached DRoA as a clockwise track.
    assert model["trainingConfig"]["trackConfig"] == {"trackId": "2022_april_open", "trackDirection": "CLOCKWISE"}
    assert model["carCustomization"] == {"carShell": "DEEPRACER", "carColor": "RED"}
    assert [m["modelId"] for m in api.list_models()] == [model_id]
    api.delete_model(model_id)
    assert api.list_models() == []


def test_missing_hyperparameters_are_refused_by_the_backend_as_a_clean_error(site: FakeDroa, droa_s3: LocalS3) -> None:
    session = sign_in(site.url, USERNAME, correct_password)
    bucket, prefix = site.upload_bucket, new_upload_prefix()
    texts = model_texts(bucket=bucket, prefix=prefix)
    del texts["ip/hyperparameters.json"]
    upload(droa_s3, bucket, prefix, texts)

    assert blocking(check_import("no-hyper", None, texts)) == [
        "ip/hyperparameters.json: missing: DRoA needs it to import the model"
    ]
    with pytest.raises(DrtasksError) as refused:
        session.api().import_model(bucket, prefix, "no-hyper")
    assert str(refused.value) == (
        f"DRoA import of 'no-hyper' failed: hyperparameters.json not found at s3://{bucket}/{prefix}/ip/hyperparameters.json"
    )


def test_bad_model_name_is_refused_locally_before_any_call(site: FakeDroa) -> None:
    session = sign_in(site.url, USERNAME, correct_password)
    site.calls.clear()
    with pytest.raises(DrtasksError, match="model name: 'my model_1' must be 1-64 letters, digits or hyphens"):
        session.api().import_model(site.upload_bucket, "uploads/models/x", "my model_1")
    assert site.calls == []


def test_import_that_fails_later_surfaces_droa_reason(site: FakeDroa, droa_s3: LocalS3) -> None:
    session = sign_in(site.url, USERNAME, correct_password)
    bucket, prefix = site.upload_bucket, new_upload_prefix()
    upload(droa_s3, bucket, prefix, model_texts(reward="print('no function here')\n"))
    api = session.api()
    model_id = api.import_model(bucket, prefix, "broken-reward")
    with pytest.raises(DrtasksError, match=f"DRoA could not import model {model_id}: Reward function validation"):
        wait_for_model(api, model_id, poll_seconds=0)


def test_api_calls_are_sigv4_signed_with_the_temporary_credentials(site: FakeDroa) -> None:
    session = sign_in(site.url, USERNAME, correct_password)
    assert session.api().list_models() == []
    # The same call unsigned is what API Gateway denies.
    with pytest.raises(urllib.error.HTTPError) as denied:
        urllib.request.urlopen(site.api_url + "/models")
    assert denied.value.code == 403


BACKEND_REFUSALS = {
    "unknown track": dict(DRFC_TRAINING_PARAMS, WORLD_NAME="no_such_track"),
    "deepracer in teal": dict(DRFC_TRAINING_PARAMS, CAR_COLOR="Teal"),
    "seven obstacles": dict(DRFC_TRAINING_PARAMS, RACE_TYPE="OBJECT_AVOIDANCE", NUMBER_OF_OBSTACLES="7"),
    "obstacles too close": dict(DRFC_TRAINING_PARAMS, RACE_TYPE="OBJECT_AVOIDANCE", NUMBER_OF_OBSTACLES="2",
                                RANDOMIZE_OBSTACLE_LOCATIONS="False", OBJECT_POSITIONS="0.2,1;0.3,-1"),
}


@pytest.mark.parametrize("case", sorted(BACKEND_REFUSALS))
def test_what_local_rules_block_the_backend_refuses_too(case: str, site: FakeDroa, droa_s3: LocalS3) -> None:
    session = sign_in(site.url, USERNAME, correct_password)
    bucket, prefix = site.upload_bucket, new_upload_prefix()
    texts = model_texts(BACKEND_REFUSALS[case], bucket=bucket, prefix=prefix)
    upload(droa_s3, bucket, prefix, texts)
    assert blocking(check_import("refused", None, texts)), case
    with pytest.raises(DrtasksError, match="DRoA import of 'refused' failed: "):
        session.api().import_model(bucket, prefix, "refused")


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
