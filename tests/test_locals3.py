"""The embedded SeaweedFS server and the user's long-lived ``inv local-s3`` server."""

from __future__ import annotations

import configparser
import os
import stat
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from drtasks import locals3, s3


def _refused_code(client) -> str:
    with pytest.raises(ClientError) as caught:
        client.list_buckets()
    return caught.value.response["Error"]["Code"]


def test_server_accepts_its_credentials_through_the_aws_profile(s3_server, bucket):
    client = s3_server.client()
    client.put_object(Bucket=bucket, Key="a/b.txt", Body=b"hello")

    assert client.get_object(Bucket=bucket, Key="a/b.txt")["Body"].read() == b"hello"
    assert s3_server.endpoint_url.startswith("http://127.0.0.1:")


def test_server_refuses_a_wrong_secret(s3_server):
    wrong = locals3.raw_client(s3_server.endpoint_url, s3_server.access_key, "not-the-secret")

    assert _refused_code(wrong) == "SignatureDoesNotMatch"


def test_server_refuses_an_unknown_access_key(s3_server):
    stranger = locals3.raw_client(s3_server.endpoint_url, "AKIAUNKNOWN", s3_server.secret_key)

    assert _refused_code(stranger) == "InvalidAccessKeyId"


def test_two_servers_are_independent(s3_server, s3_server_b, bucket):
    assert s3_server.endpoint_url != s3_server_b.endpoint_url
    names_b = {b["Name"] for b in s3_server_b.client().list_buckets()["Buckets"]}

    assert bucket not in names_b


def test_ensure_bucket_creates_once(s3_server):
    client = s3_server.client()

    assert locals3.ensure_bucket(client, "ensure-bucket-once") is True
    assert locals3.ensure_bucket(client, "ensure-bucket-once") is False


def test_ports_come_with_free_grpc_twins():
    ports = locals3.pick_ports()

    assert set(ports) == set(locals3.PORT_NAMES)
    every = [p for port in ports.values() for p in (port, port + locals3.GRPC_OFFSET)]
    assert len(set(every)) == len(every)


def test_a_busy_s3_port_is_refused_before_starting(tmp_path, s3_server):
    busy_port = int(s3_server.endpoint_url.rsplit(":", 1)[1])

    with pytest.raises(locals3.DrtasksError, match="in use"):
        locals3.S3Server().start(tmp_path, s3_port=busy_port)


def _make_user_home(root: Path, patch: pytest.MonkeyPatch) -> Path:
    """A user's cache and drtasks credentials file under ``root``."""
    patch.setenv("XDG_CACHE_HOME", str(root / "cache"))
    credentials = root / "cache" / "drtasks" / "credentials"
    patch.setenv(s3.DRTASKS_CREDENTIALS_ENV, str(credentials))
    credentials.parent.mkdir(parents=True)
    # Another profile the user already keeps there must survive.
    credentials.write_text("[elsewhere]\naws_access_key_id = OTHER\naws_secret_access_key = other-secret\n")
    return root


@pytest.fixture
def user_home(tmp_path, monkeypatch) -> Path:
    """An empty user home; whatever local server a test starts is stopped afterwards."""
    yield _make_user_home(tmp_path, monkeypatch)
    locals3.stop()


@pytest.fixture(scope="module")
def running_local(tmp_path_factory) -> locals3.LocalS3Info:
    """One local server shared by the tests that only look at it (starting one costs seconds)."""
    with pytest.MonkeyPatch.context() as patch:
        _make_user_home(tmp_path_factory.mktemp("home"), patch)
        try:
            yield locals3.ensure_running(buckets=["bucket"])
        finally:
            locals3.stop()


def test_local_server_lifecycle_reuses_a_running_server(user_home):
    assert locals3.status() is None

    first = locals3.ensure_running(buckets=["bucket"])
    again = locals3.ensure_running()

    assert first.started and not again.started
    assert again.pid == first.pid and again.endpoint_url == first.endpoint_url
    assert locals3.status() == again
    assert first.state_dir == user_home / "cache" / "drtasks" / "local-s3"
    assert (first.state_dir / "state.json").is_file() and first.log_file.is_file()

    assert locals3.stop() is True
    assert locals3.status() is None
    assert locals3.stop() is False


def test_local_server_keeps_its_credentials_and_ports_across_restarts(user_home):
    first = locals3.ensure_running()
    keys = locals3.read_credentials()
    locals3.stop()

    second = locals3.ensure_running()

    assert second.started and second.pid != first.pid
    assert locals3.read_credentials() == keys
    assert second.endpoint_url == first.endpoint_url and second.ports == first.ports  # system.env keeps working
    locals3.stop()


def test_credentials_file_is_private_and_usable_through_make_client(running_local):
    info = running_local
    path = s3.drtasks_credentials_file()

    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    parser = configparser.ConfigParser()
    parser.read(path)
    assert parser.has_section("drtasks-local") and parser.has_section("elsewhere")

    client = s3.make_client(info.location("bucket"))
    client.put_object(Bucket="bucket", Key="made-by-make-client", Body=b"v")
    assert "made-by-make-client" in [o.key for o in s3.list_objects(client, "bucket", "")]


def test_state_and_env_lines_never_hold_the_secret(running_local):
    info = running_local
    _, secret = locals3.read_credentials()

    lines = locals3.env_lines(info)

    assert lines == [f"DR_LOCAL_S3_ENDPOINT_URL={info.endpoint_url}", "DR_LOCAL_S3_PROFILE=drtasks-local"]
    assert secret not in "\n".join(lines)
    assert secret not in (info.state_dir / "state.json").read_text()
    assert secret not in str(locals3.describe(info))
