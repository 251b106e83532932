"""An endpoint that accepts connections and never answers fails after a bounded, documented time.

The silent endpoint is a real loopback TCP server that accepts every connection and then says
nothing. DRTASKS_TIMEOUT is lowered to 1 s so the bound is visible in a fast test: S3 gives up after
3 tries of 1 s (plus at most 3 s of back-off), the DRoA site after one.
"""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from drtasks import timeouts
from drtasks.errors import DrtasksError
from tests.cli import drtasks
from tests.drfc import write_env_files

FAST = {"DRTASKS_TIMEOUT": "1"}
BOUND = timeouts.ATTEMPTS * 1 + timeouts.MAX_BACKOFF + 4  # + the command's own start-up, generously


class SilentServer:
    """Accepts connections on loopback and never sends a byte."""

    def __init__(self) -> None:
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.socket.listen(64)
        self.accepted: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.socket.getsockname()[1]}"

    def _accept(self) -> None:
        self.socket.settimeout(0.2)
        while not self._stop.is_set():
            try:
                connection, _ = self.socket.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted.append(connection)  # held open, never read, never answered

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        for connection in self.accepted:
            connection.close()
        self.socket.close()


@pytest.fixture
def silent() -> Iterator[SilentServer]:
    server = SilentServer()
    yield server
    server.close()


def timed(*args: str, **kwargs: Any) -> tuple[Any, float]:
    start = time.monotonic()
    result = drtasks(*args, **kwargs)
    return result, time.monotonic() - start


def test_the_default_bound_is_about_half_a_minute(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(timeouts.TIMEOUT_ENV, raising=False)
    assert timeouts.seconds() == 10
    assert 30 <= timeouts.worst_case() <= 40
    options = timeouts.botocore_options()
    assert (options["connect_timeout"], options["read_timeout"], options["retries"]["total_max_attempts"]) == (10, 10, 3)


@pytest.mark.parametrize("text", ["soon", "0", "-1", "nan", "inf", "99999"])
def test_a_timeout_that_is_not_a_sensible_number_of_seconds_is_refused(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    monkeypatch.setenv(timeouts.TIMEOUT_ENV, text)
    with pytest.raises(DrtasksError, match=f"^DRTASKS_TIMEOUT is '{text}'; expected seconds"):
        timeouts.seconds()


def test_a_silent_source_endpoint_fails_in_bounded_time_naming_the_source(
    tmp_path: Path, silent: SilentServer, s3_server: Any, model: Any, upload_bucket: str
) -> None:
    dr_dir = write_env_files(tmp_path, s3_server, model, upload_bucket, system=f"DR_LOCAL_S3_ENDPOINT_URL={silent.url}\n")
    result, elapsed = timed("upload", "-f", dr_dir=dr_dir, env=FAST)
    assert result.code != 0 and "Traceback" not in result.text
    assert f"the S3 endpoint for s3://{model.bucket}/{model.prefix} at {silent.url} did not answer within 1 s" in result.err
    assert "DRTASKS_TIMEOUT" in result.err
    assert elapsed < BOUND
    assert silent.accepted  # it really connected, and then waited


def test_a_silent_target_endpoint_fails_in_bounded_time_naming_the_target(
    tmp_path: Path, silent: SilentServer, s3_server: Any, model: Any, upload_bucket: str
) -> None:
    dr_dir = write_env_files(tmp_path, s3_server, model, upload_bucket, system=f"DR_UPLOAD_S3_ENDPOINT_URL={silent.url}\n")
    result, elapsed = timed("upload", "-f", dr_dir=dr_dir, env=FAST)
    assert result.code != 0 and "Traceback" not in result.text
    assert f"s3://{upload_bucket}/race-model-1 at {silent.url} did not answer within 1 s" in result.err
    assert elapsed < BOUND


def test_a_silent_droa_site_fails_in_bounded_time(tmp_path: Path, silent: SilentServer) -> None:
    (tmp_path / "system.env").write_text(
        f"DR_DROA_URL={silent.url}\nDR_DROA_USERNAME=racer\nDR_LOCAL_S3_BUCKET=b\nDR_LOCAL_S3_MODEL_PREFIX=m\nDR_UPLOAD_S3_PREFIX=m-1\n"
    )
    result, elapsed = timed("import-model", "--target", "droa", "-f", dr_dir=tmp_path, env={**FAST, "DR_DROA_PASSWORD": "x"})
    assert result.code != 0 and "Traceback" not in result.text
    assert f"cannot reach {silent.url}/env.js: no answer within 1 s (DRTASKS_TIMEOUT sets the wait)" in result.err
    assert elapsed < 1 + 4


def test_a_silent_droa_api_fails_after_one_bounded_attempt(silent: SilentServer, monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import datetime, timedelta, timezone

    from drtasks.importing.droa import DroaApi, DroaCredentials

    monkeypatch.setenv(timeouts.TIMEOUT_ENV, "0.5")
    credentials = DroaCredentials("AKIDEXAMPLE", "secret", "token", datetime.now(timezone.utc) + timedelta(hours=1))
    start = time.monotonic()
    with pytest.raises(DrtasksError, match=r"cannot reach the DRoA API at .*: no answer within 1\.5 s"):
        DroaApi(silent.url, credentials, "eu-west-1").list_models()
    assert time.monotonic() - start < 1.5 + 1


def test_a_silent_cognito_endpoint_fails_in_bounded_time(silent: SilentServer, monkeypatch: pytest.MonkeyPatch) -> None:
    from drtasks.importing.droa import DroaDeployment, authenticate

    monkeypatch.setenv(timeouts.TIMEOUT_ENV, "0.5")
    monkeypatch.setenv("AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER", silent.url)
    deployment = DroaDeployment(silent.url, "eu-west-1", "eu-west-1_x", "client", "eu-west-1:pool", silent.url, "bucket")
    start = time.monotonic()
    with pytest.raises(DrtasksError, match="DRoA sign-in failed for racer: Read timeout"):
        authenticate(deployment, "racer", "password")
    assert time.monotonic() - start < timeouts.ATTEMPTS * 0.5 + timeouts.MAX_BACKOFF + 1
