"""Shared fixtures: real SeaweedFS S3 servers on loopback, fresh buckets, a seeded trained model.

Isolation (for the whole session, every test):
- AWS credentials reach drtasks only through a temporary AWS shared-credentials file holding the
  profiles ``drtasks-test-a`` / ``drtasks-test-b``; AWS_CONFIG_FILE is an empty temporary file and
  AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_PROFILE are removed, so the developer's real AWS
  setup is never read or used.
- DRTASKS_CREDENTIALS_FILE and XDG_CACHE_HOME point into a temporary directory, so drtasks' own
  cache and credentials in the user's home are never touched.

Servers start once per session (about a second each, ``s3_server_b`` only when a test asks for it)
and are stopped at the end of the session. Tests using them are marked ``s3`` automatically, so
``pytest -m "not s3"`` runs only the server-less tests.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, NamedTuple

import pytest

from drtasks import s3
from drtasks.locals3 import S3Server, ensure_bucket
from drtasks.sample_model import SeededModel, seed_model

# The real container engine (podman serving the Docker API) for the car-zip tests, real TensorFlow
# models generated once per session, and DeepRacer on AWS (moto's Cognito and S3 behind the put-only
# policy, the fake DRoA API) for the DRoA tests.
pytest_plugins = ["tests.podman", "tests.real_models", "tests.droa_world"]

PROFILE_A = "drtasks-test-a"
PROFILE_B = "drtasks-test-b"
MODEL_PREFIX = "rl-deepracer-sagemaker"
_S3_FIXTURES = {"s3_server", "s3_server_b", "bucket", "bucket_b", "seeded_model"}
_AWS_ENV_REMOVED = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "s3: uses the SeaweedFS S3 test servers (a few seconds to start)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _S3_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.s3)


@dataclass(frozen=True)
class AwsFiles:
    """The temporary files standing in for the user's AWS and drtasks configuration."""

    shared_credentials: Path
    config: Path
    drtasks_credentials: Path
    cache_home: Path

    def add_profile(self, name: str, access_key: str, secret_key: str) -> None:
        with self.shared_credentials.open("a", encoding="utf-8") as handle:
            handle.write(f"[{name}]\naws_access_key_id = {access_key}\naws_secret_access_key = {secret_key}\n\n")


@pytest.fixture(scope="session", autouse=True)
def aws_files(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AwsFiles]:
    """Point every AWS and drtasks credential lookup at temporary files for the whole session."""
    root = tmp_path_factory.mktemp("aws")
    files = AwsFiles(root / "credentials", root / "config", root / "drtasks-credentials", root / "cache")
    files.shared_credentials.touch(mode=0o600)
    files.config.touch(mode=0o600)
    with pytest.MonkeyPatch.context() as patch:
        for name in _AWS_ENV_REMOVED:
            patch.delenv(name, raising=False)
        patch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(files.shared_credentials))
        patch.setenv("AWS_CONFIG_FILE", str(files.config))
        patch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        patch.setenv(s3.DRTASKS_CREDENTIALS_ENV, str(files.drtasks_credentials))
        patch.setenv("XDG_CACHE_HOME", str(files.cache_home))
        yield files


@dataclass
class TestS3Server:
    """A running SeaweedFS reached through an AWS profile, as drtasks reaches any S3 service."""

    __test__ = False  # not a test class despite its name

    server: S3Server
    aws_profile: str

    @property
    def endpoint_url(self) -> str:
        return self.server.endpoint_url

    @property
    def access_key(self) -> str:
        return self.server.access_key

    @property
    def secret_key(self) -> str:
        return self.server.secret_key

    def location(self, bucket: str, prefix: str = "") -> s3.S3Location:
        return s3.S3Location(bucket, prefix.strip("/"), self.endpoint_url, self.aws_profile)

    def client(self) -> Any:
        """A client made by drtasks itself (profile lookup, path-style addressing).

        Without ``Expect: 100-continue``: arranging test data often writes zero-byte objects,
        after which botocore would stall the next request for 60 s (botocore issue #3755).
        """
        return s3.make_client(self.location(""))

    def new_bucket(self) -> str:
        name = f"test-{uuid.uuid4().hex[:16]}"
        ensure_bucket(self.client(), name)
        return name


def _serve(tmp_path_factory: pytest.TempPathFactory, files: AwsFiles, profile: str) -> Iterator[TestS3Server]:
    server = S3Server().start(tmp_path_factory.mktemp(profile))
    try:
        files.add_profile(profile, server.access_key, server.secret_key)
        yield TestS3Server(server, profile)
    finally:
        server.stop()


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory, aws_files: AwsFiles) -> Iterator[TestS3Server]:
    """The main S3 service (plays the training bucket's MinIO), profile ``drtasks-test-a``."""
    yield from _serve(tmp_path_factory, aws_files, PROFILE_A)


@pytest.fixture(scope="session")
def s3_server_b(tmp_path_factory: pytest.TempPathFactory, aws_files: AwsFiles) -> Iterator[TestS3Server]:
    """A second, independent S3 service (plays real S3 as upload target), profile ``drtasks-test-b``."""
    yield from _serve(tmp_path_factory, aws_files, PROFILE_B)


@pytest.fixture
def bucket(s3_server: TestS3Server) -> str:
    """A fresh, empty bucket on ``s3_server``."""
    return s3_server.new_bucket()


@pytest.fixture
def bucket_b(s3_server_b: TestS3Server) -> str:
    """A fresh, empty bucket on ``s3_server_b``."""
    return s3_server_b.new_bucket()


class SeededSource(NamedTuple):
    model: SeededModel
    location: s3.S3Location


@pytest.fixture
def seeded_model(s3_server: TestS3Server, bucket: str) -> SeededSource:
    """A small realistic trained model at ``s3://<bucket>/rl-deepracer-sagemaker`` (best 13, last 19)."""
    model = seed_model(s3_server.client(), bucket, MODEL_PREFIX)
    return SeededSource(model, s3_server.location(bucket, MODEL_PREFIX))


@pytest.fixture
def model(seeded_model: SeededSource) -> SeededModel:
    """The seeded trained model itself (best 13, last 19)."""
    return seeded_model.model


@pytest.fixture
def upload_bucket(s3_server: TestS3Server) -> str:
    """An empty upload bucket on ``s3_server`` (same endpoint as the training bucket)."""
    return s3_server.new_bucket()
