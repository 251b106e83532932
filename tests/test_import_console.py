"""Importing into the AWS DeepRacer console, against a local API built from the real service model."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest
from botocore.exceptions import ClientError

from drtasks.errors import DrtasksError
from drtasks.importing import console
from tests.fakes.console_api import FakeConsoleApi

ACCESS_KEY = "AKIAFAKECONSOLE00001"
SECRET_KEY = "fake-secret-never-printed-0123456789abcd"
ROLE_ARN = "arn:aws:iam::123456789012:role/service-role/AWSDeepRacerServiceRole"
S3_PATH = "s3://upload-bucket/my-model-3"


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Static fake credentials and no AWS config of the machine running the tests."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DEEPRACER",
                 "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "DRTASKS_CREDENTIALS_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))


@pytest.fixture
def console_api() -> Iterator[FakeConsoleApi]:
    with FakeConsoleApi(access_key=ACCESS_KEY, import_polls=2) as api:
        yield api


@pytest.fixture
def client(console_api: FakeConsoleApi):
    return console.make_client(endpoint_url=console_api.endpoint_url)


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_import_then_wait_reports_each_status_until_ready(client, console_api: FakeConsoleApi) -> None:
    seen: list[str] = []

    arn = console.import_model(client, name="my-model-3", s3_path=S3_PATH, role_arn=ROLE_ARN, description="v3 best")
    status = console.wait_for_model(client, arn, on_status=seen.append, poll_seconds=0)

    assert status == "READY"
    assert seen == ["IMPORTING", "IMPORTING", "READY"]
    assert arn.startswith("arn:aws:deepracer:us-east-1:123456789012:model/reinforcement_learning/")
    [request] = console_api.calls("ImportModel")
    assert request.body == {
        "Type": "REINFORCEMENT_LEARNING",
        "Name": "my-model-3",
        "ModelArtifactsS3Path": S3_PATH,
        "RoleArn": ROLE_ARN,
        "Description": "v3 best",
    }
    assert request.headers["X-Amz-Target"] == "AwsSilverstoneCloudService.ImportModel"
    assert "/deepracer/aws4_request" in request.headers["Authorization"]


def test_every_request_is_signed_for_deepracer_without_leaking_the_secret(client, console_api) -> None:
    console.list_models(client)

    [request] = console_api.requests
    assert request.headers["Authorization"].startswith(f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/")
    assert SECRET_KEY not in str(request.headers)


def test_description_is_left_out_when_not_given(client, console_api) -> None:
    console.import_model(client, name="plain", s3_path=S3_PATH, role_arn=ROLE_ARN)

    assert "Description" not in console_api.calls("ImportModel")[0].body


def test_botocore_endpoint_env_variable_selects_the_endpoint(console_api, monkeypatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_DEEPRACER", console_api.endpoint_url)

    client = console.make_client()
    console.import_model(client, name="via-env", s3_path=S3_PATH, role_arn=ROLE_ARN)

    assert client.meta.endpoint_url == console_api.endpoint_url
    assert [r.body["Name"] for r in console_api.calls("ImportModel")] == ["via-env"]


def test_explicit_endpoint_overrides_the_env_variable(console_api, monkeypatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_DEEPRACER", closed_port_url())

    client = console.make_client(endpoint_url=console_api.endpoint_url)

    assert client.meta.endpoint_url == console_api.endpoint_url
    assert console.list_models(client).empty


def test_without_any_endpoint_setting_the_console_endpoint_is_used() -> None:
    client = console.make_client()

    assert client.meta.endpoint_url == "https://deepracer-prod.us-east-1.amazonaws.com"


def test_list_models_follows_every_page_into_a_dataframe(client, console_api) -> None:
    for index in range(5):
        console_api.add_model(f"model-{index}", status="READY" if index % 2 else "TRAINING")

    models = console.list_models(client, page_size=2)

    assert list(models.columns) == ["name", "status", "created", "arn"]
    assert sorted(models["name"]) == [f"model-{i}" for i in range(5)]
    assert dict(zip(models["name"], models["status"]))["model-1"] == "READY"
    assert str(models["created"].dt.tz) == "UTC"
    pages = console_api.calls("ListModels")
    assert len(pages) == 3
    assert all(p.body["ModelType"] == "REINFORCEMENT_LEARNING" and p.body["MaxResults"] == 2 for p in pages)
    assert "NextToken" not in pages[0].body and "NextToken" in pages[1].body


def test_existing_name_is_refused_before_import_model_is_called(client, console_api) -> None:
    console_api.add_model("my-model-3")

    with pytest.raises(DrtasksError, match="'my-model-3' already exists"):
        console.import_model(client, name="my-model-3", s3_path=S3_PATH, role_arn=ROLE_ARN)

    assert console_api.calls("ListModels")
    assert console_api.calls("ImportModel") == []


@pytest.mark.parametrize("name", ["", "has space", "under_score", "x" * 65, "ends-with-newline\n"])
def test_invalid_name_is_refused_before_any_call(client, console_api, name: str) -> None:
    with pytest.raises(DrtasksError, match="model name .* is not valid"):
        console.import_model(client, name=name, s3_path=S3_PATH, role_arn=ROLE_ARN)

    assert console_api.requests == []


def test_longest_valid_name_is_accepted(client, console_api) -> None:
    console.import_model(client, name="N" * 64, s3_path=S3_PATH, role_arn=ROLE_ARN)

    assert console_api.calls("ImportModel")[0].body["Name"] == "N" * 64


@pytest.mark.parametrize("role", [None, ""])
def test_missing_role_is_refused_naming_the_setting(client, console_api, role) -> None:
    with pytest.raises(DrtasksError, match="needs an IAM role ARN.*DR_UPLOAD_S3_ROLE"):
        console.import_model(client, name="my-model", s3_path=S3_PATH, role_arn=role)

    assert console_api.requests == []


@pytest.mark.parametrize(
    "role",
    [
        "arn:aws:iam::1234:role/TooShortAccount",
        "arn:aws:iam::123456789012:user/not-a-role",
        "arn:aws:s3:::upload-bucket",
        "AWSDeepRacerServiceRole",
    ],
)
def test_malformed_role_is_refused_before_any_call(client, console_api, role: str) -> None:
    with pytest.raises(DrtasksError, match="is not of the form arn:aws:iam::"):
        console.import_model(client, name="my-model", s3_path=S3_PATH, role_arn=role)

    assert console_api.requests == []


def test_too_long_description_is_refused_before_any_call(client, console_api) -> None:
    with pytest.raises(DrtasksError, match="256 characters long.*at most 255"):
        console.import_model(client, name="my-model", s3_path=S3_PATH, role_arn=ROLE_ARN, description="d" * 256)

    assert console_api.requests == []


def test_artifact_check_runs_before_any_call_and_can_stop_the_import(client, console_api) -> None:
    def no_model_there() -> None:
        raise DrtasksError("s3://upload-bucket/my-model-3 holds no model_metadata.json")

    with pytest.raises(DrtasksError, match="holds no model_metadata.json"):
        console.import_model(client, name="my-model", s3_path=S3_PATH, role_arn=ROLE_ARN, check_artifacts=no_model_there)

    assert console_api.requests == []


def test_missing_service_model_names_the_commands_that_install_it(tmp_path, monkeypatch) -> None:
    home = tmp_path / "home"
    empty_models = tmp_path / "models"
    empty_models.mkdir()
    monkeypatch.setenv("HOME", str(home))

    with pytest.raises(DrtasksError) as caught:
        console.make_client(models_roots=[empty_models, *console.default_models_roots()[1:]])

    message = str(caught.value)
    assert 'pip install "deepracer-utils<1.5"' in message
    assert "python -m deepracer install-cli --force" in message
    assert str(home / ".aws" / "models") in message


def test_service_model_installed_for_the_aws_cli_is_found(tmp_path, monkeypatch, console_api) -> None:
    home = tmp_path / "home"
    installed = home / ".aws" / "models" / "deepracer" / "2019-04-01"
    installed.mkdir(parents=True)
    installed.joinpath("service-2.json").write_bytes(console.service_model_file().read_bytes())
    monkeypatch.setenv("HOME", str(home))
    cli_root = console.default_models_roots()[-1]

    client = console.make_client(endpoint_url=console_api.endpoint_url, models_roots=[cli_root])

    assert cli_root == home / ".aws" / "models"
    assert console.list_models(client).empty


def test_locating_the_service_model_does_not_import_deepracer_or_pandas() -> None:
    code = (
        "import sys\n"
        "from drtasks.importing.console import service_model_file\n"
        "path = service_model_file()\n"
        "print(path.name, 'deepracer' in sys.modules, 'pandas' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            cwd=Path(__file__).resolve().parents[1])

    assert result.stdout.split() == ["service-2.json", "False", "False"]


def test_unreachable_endpoint_points_to_the_retirement_and_droa() -> None:
    client = console.make_client(endpoint_url=closed_port_url(), max_attempts=1)

    with pytest.raises(DrtasksError) as caught:
        console.import_model(client, name="my-model", s3_path=S3_PATH, role_arn=ROLE_ARN)

    message = str(caught.value)
    assert "retired in December 2025" in message
    assert "--target droa" in message
    assert SECRET_KEY not in message and "\n" not in message


def test_import_error_status_fails_naming_the_status(client, console_api) -> None:
    seen: list[str] = []
    arn = console.import_model(client, name="broken-import-error", s3_path=S3_PATH, role_arn=ROLE_ARN)

    with pytest.raises(DrtasksError, match="'broken-import-error' ended in status IMPORT_ERROR") as caught:
        console.wait_for_model(client, arn, on_status=seen.append, poll_seconds=0)

    assert seen[-1] == "IMPORT_ERROR"
    assert "InvalidModel" in str(caught.value)


def test_waiting_gives_up_after_the_timeout(client, console_api) -> None:
    console_api.import_polls = 1000
    arn = console.import_model(client, name="slow", s3_path=S3_PATH, role_arn=ROLE_ARN)

    with pytest.raises(DrtasksError, match="still IMPORTING"):
        console.wait_for_model(client, arn, poll_seconds=0, timeout=0)


def test_service_errors_become_one_line_with_code_and_message(client, console_api, monkeypatch) -> None:
    console_api.access_key = "AKIASOMEONEELSE00000"

    with pytest.raises(DrtasksError) as caught:
        console.list_models(client)

    message = str(caught.value)
    assert message.startswith("DeepRacer console ListModels failed with UnrecognizedClientException: ")
    assert "security token" in message
    assert SECRET_KEY not in message and "\n" not in message


def test_fake_rejects_requests_that_break_the_service_model(client, console_api) -> None:
    with pytest.raises(ClientError) as caught:
        client.import_model(Type="REINFORCEMENT_LEARNING", Name="bad name!", ModelArtifactsS3Path=S3_PATH,
                            RoleArn=ROLE_ARN)

    assert caught.value.response["Error"]["Code"] == "ValidationException"
    assert "ImportModelRequest.Name" in caught.value.response["Error"]["Message"]
    assert console_api.models == {}
