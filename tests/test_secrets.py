"""No secret in any output, `--debug` included: S3 secret keys, the DRoA password, temporary
credentials, session tokens and Authorization headers never print; `inv config` hides any value that
equals a known secret, whatever its variable's name.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from drtasks import secrets
from tests.cli import Result, drtasks, run
from tests.drfc import write_env_files
from tests.test_import_tasks import PASSWORD, droa_dir, droa_env, site  # noqa: F401 - fixtures (moto: tests.droa_world)

# ---------------------------------------------------------------------------- the redaction itself

BOTOCORE_REQUEST = (
    "Sending http request: <AWSPreparedRequest stream_output=False, method=GET, url=http://127.0.0.1:9000/b?list-type=2, "
    "headers={'User-Agent': b'Boto3/1.35', 'X-Amz-Date': b'20250101T000000Z', 'X-Amz-Security-Token': b'IQoJb3JpZ2luX2VjEXAMPLETOKEN', "
    "'Authorization': b'AWS4-HMAC-SHA256 Credential=ASIAEXAMPLE/20250101/eu-west-1/s3/aws4_request, SignedHeaders=host, Signature=abcdef0123'}>"
)
COGNITO_BODY = (
    'Response body:\nb\'{"Credentials":{"AccessKeyId":"ASIAEXAMPLE","Expiration":1.7E9,'
    '"SecretKey":"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY","SessionToken":"FwoGZXIvYXdzEXAMPLE"},"IdentityId":"eu-west-1:1"}\''
)
AUTH_PARAMS = "Making request with params: {'body': {'AuthParameters': {'USERNAME': 'racer', 'PASSWORD': 'Corr3ct-Horse!battery'}}}"


@pytest.mark.parametrize(
    ("text", "hidden"),
    [
        (BOTOCORE_REQUEST, ["IQoJb3JpZ2luX2VjEXAMPLETOKEN", "Signature=abcdef0123", "Credential=ASIAEXAMPLE"]),
        (COGNITO_BODY, ["wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "FwoGZXIvYXdzEXAMPLE"]),
        (AUTH_PARAMS, ["Corr3ct-Horse!battery"]),
        ("Authorization: AWS4-HMAC-SHA256 Credential=AKID/x, Signature=ff00", ["AWS4-HMAC-SHA256", "ff00"]),
        ("GET https://b.s3.amazonaws.com/k?X-Amz-Security-Token=tok3n&X-Amz-Signature=s1g", ["tok3n", "s1g"]),
        ("endpoint http://minio:Sup3rSecret@localhost:9000", ["Sup3rSecret"]),
        ("aws_secret_access_key = 'abc123secret'", ["abc123secret"]),
    ],
)
def test_secret_fields_headers_and_urls_are_redacted(text: str, hidden: list[str]) -> None:
    redacted = secrets.redact(text)
    for value in hidden:
        assert value not in redacted
    assert "****" in redacted


def test_a_known_secret_is_redacted_wherever_it_appears() -> None:
    secrets.remember("kn0wn-s3cret-value")
    assert secrets.redact("the body said kn0wn-s3cret-value!") == "the body said ****!"
    assert secrets.redact_value("DR_HARMLESS_NAME", "kn0wn-s3cret-value") == "****"
    assert secrets.redact_value("DR_CAR_NAME", "Speedy") == "Speedy"


def test_log_records_are_redacted_and_header_printing_loggers_stay_quiet_at_debug() -> None:
    secrets.install_log_redaction()
    secrets.remember("an0ther-kn0wn-secret")
    seen: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(self.format(record))

    root = logging.getLogger()
    handler, level = Collect(), root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)  # what invoke's --debug does
    try:
        logging.getLogger("drtasks.example").debug("token %s and %s", "an0ther-kn0wn-secret", {"SessionToken": "xyz-token"})
        logging.getLogger("botocore.endpoint").debug("Sending http request: %s", BOTOCORE_REQUEST)
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    assert seen == ["token **** and {'SessionToken': '****'}"]
    assert not logging.getLogger("botocore.endpoint").isEnabledFor(logging.DEBUG)


# ---------------------------------------------------------------------------- through the commands


def assert_no_secret(result: Result, *values: str) -> None:
    for value in values:
        assert value and value not in result.text
    for header in ("AWS4-HMAC-SHA256", "Signature=", "X-Amz-Security-Token': b'"):
        assert header not in result.text


@pytest.fixture
def dr_dir(tmp_path: Path, s3_server: Any, model: Any, upload_bucket: str) -> Path:
    return write_env_files(tmp_path, s3_server, model, upload_bucket)


def test_debug_upload_prints_debug_output_but_no_secret(dr_dir: Path, s3_server: Any) -> None:
    result = drtasks("--debug", "upload", "-f", dr_dir=dr_dir)
    assert result.code == 0, result.err[-2000:]
    assert "invoke." in result.err  # --debug really logged
    assert_no_secret(result, s3_server.secret_key)


def test_invoke_debug_in_the_environment_leaks_nothing_from_drfc_commands(dr_dir: Path, s3_server: Any) -> None:
    result = run("dr-upload-model", "-f", dr_dir=dr_dir, env={"INVOKE_DEBUG": "1"})
    assert result.code == 0, result.err[-2000:]
    assert_no_secret(result, s3_server.secret_key)


def test_debug_droa_import_shows_no_password_temporary_credentials_or_token(
    droa_dir: Path, site: Any, moto_url: str, tmp_path: Path  # noqa: F811 - fixtures
) -> None:
    result = drtasks("--debug", "import-model", "--target", "droa", "-f", dr_dir=droa_dir, env=droa_env(moto_url, tmp_path))
    assert result.code == 0, result.err[-2000:]
    assert "invoke." in result.err
    cache = next((tmp_path / "cache" / "drtasks" / "droa").glob("*.json"))  # the child's cache
    issued = json.loads(cache.read_text())
    assert_no_secret(result, PASSWORD, issued["secret_access_key"], issued["session_token"])


def test_config_hides_a_value_equal_to_a_known_secret_whatever_its_name(dr_dir: Path, s3_server: Any) -> None:
    with (dr_dir / "run.env").open("a") as env:
        env.write(f"DR_NOTE={s3_server.secret_key}\nDR_MIRROR=http://user:{s3_server.secret_key}@host:9000\n")
        env.write("DR_ECHO=Corr3ct-Horse!battery\nDR_CAR_NAME=Speedy\n")
    result = drtasks("config", "--json", dr_dir=dr_dir, env={"DR_DROA_PASSWORD": "Corr3ct-Horse!battery"})
    assert result.code == 0, result.err
    rows = {row["key"]: row["value"] for row in json.loads(result.out)["settings"]}
    assert rows["DR_NOTE"] == rows["DR_ECHO"] == rows["DR_DROA_PASSWORD"] == "****"
    assert rows["DR_MIRROR"] == "http://user:****@host:9000"
    assert rows["DR_CAR_NAME"] == "Speedy"
    assert s3_server.secret_key not in result.text and "Corr3ct-Horse!battery" not in result.text


def test_an_error_line_never_shows_a_secret(tmp_path: Path) -> None:
    (tmp_path / "run.env").write_text("DR_DROA_PASSWORD hunter2-is-my-password\n")
    result = drtasks("config", dr_dir=tmp_path)
    assert result.code != 0 and "hunter2" not in result.text
    assert "run.env:1: not a KEY=VALUE line: 'DR_DROA_PASSWORD ...'" in result.err
