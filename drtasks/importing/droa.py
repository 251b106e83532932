"""DeepRacer on AWS (DRoA): find a deployment, sign a racer in, call its import API.

A deployment describes itself in ``<site>/env.js``. Signing in goes through its Cognito user pool
(USER_PASSWORD_AUTH -> IdToken) and identity pool (-> temporary AWS credentials); those credentials
upload into the deployment's bucket and sign the API calls (SigV4, service ``execute-api``).
Passwords are never stored; the temporary credentials are cached in a 0600 file until they expire.

Endpoints can be redirected with botocore's own variables, e.g. for tests:
``AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER`` (user pool) and ``AWS_ENDPOINT_URL_COGNITO_IDENTITY``.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

from drtasks import secrets, timeouts
from drtasks.errors import DrtasksError, shorten
from drtasks.importing.droa_rules import (  # noqa: F401 (the last two are re-exported)
    check_names,
    dump_training_params,
    training_params_for_droa,
)
from drtasks.s3 import cache_dir

PASSWORD_ENV = "DR_DROA_PASSWORD"
# Cached credentials are reused only while they have at least this long to live.
REUSE_MARGIN = timedelta(minutes=5)
MAX_ENV_JS_BYTES = 1024 * 1024  # a deployment's env.js is a few hundred bytes
UPLOAD_ROOT = "uploads/models"

DEPLOYMENT_FIELDS = {
    "region": "region",
    "userPoolId": "user_pool_id",
    "userPoolClientId": "user_pool_client_id",
    "identityPoolId": "identity_pool_id",
    "apiEndpointUrl": "api_endpoint_url",
    "uploadBucketName": "upload_bucket_name",
}


# --------------------------------------------------------------------------- env.js


@dataclass(frozen=True)
class DroaDeployment:
    """What ``env.js`` tells about one DRoA deployment."""

    url: str
    region: str
    user_pool_id: str
    user_pool_client_id: str
    identity_pool_id: str
    api_endpoint_url: str
    upload_bucket_name: str

    @property
    def login_provider(self) -> str:
        return f"cognito-idp.{self.region}.amazonaws.com/{self.user_pool_id}"


def parse_env_js(text: str, url: str = "") -> DroaDeployment:
    """The deployment described by env.js (``window.EnvironmentConfig = {...}``)."""
    found = re.search(r"EnvironmentConfig\s*=\s*(?=\{)", text)
    if not found:
        raise DrtasksError(f"{url or 'env.js'} does not set window.EnvironmentConfig: is this a DRoA site?")
    import json5  # env.js is a JavaScript object literal: unquoted keys, single quotes, comments

    try:
        config = json5.loads(text, start=found.end(), consume_trailing=False)
    except ValueError as error:
        raise DrtasksError(f"{url or 'env.js'}: window.EnvironmentConfig is not a plain object literal ({error})") from None
    if not isinstance(config, dict):
        raise DrtasksError(f"{url or 'env.js'}: window.EnvironmentConfig is not an object")
    missing = [key for key in DEPLOYMENT_FIELDS if not isinstance(config.get(key), str) or not config.get(key)]
    if missing:
        raise DrtasksError(f"{url or 'env.js'} lacks {', '.join(missing)} in window.EnvironmentConfig")
    values = {attr: config[key] for key, attr in DEPLOYMENT_FIELDS.items()}
    return DroaDeployment(url=url, **values)


def env_js_url(site_url: str) -> str:
    site_url = site_url.strip()
    if site_url.endswith("/env.js"):
        return site_url
    return site_url.rstrip("/") + "/env.js"


def discover(site_url: str) -> DroaDeployment:
    """Read ``<site_url>/env.js``."""
    url = env_js_url(site_url)
    wait = timeouts.seconds()
    try:
        with urllib.request.urlopen(url, timeout=wait) as response:
            text = response.read(MAX_ENV_JS_BYTES + 1).decode("utf-8", errors="replace")
    except urllib.error.HTTPError as exc:
        raise DrtasksError(f"cannot read {url}: HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise DrtasksError(f"cannot reach {url}: {_network_reason(exc, wait)}") from None
    if len(text) > MAX_ENV_JS_BYTES:
        raise DrtasksError(f"{url} is larger than {MAX_ENV_JS_BYTES:,} bytes: is this a DRoA site?")
    return parse_env_js(text, site_url.rstrip("/"))


def _network_reason(exc: BaseException, wait: float) -> str:
    """Why a urllib call failed, in a few words (a timeout names the bound and how to change it)."""
    reason = getattr(exc, "reason", exc)
    if isinstance(reason, TimeoutError) or isinstance(exc, TimeoutError):
        return f"no answer within {wait:g} s ({timeouts.TIMEOUT_ENV} sets the wait)"
    return shorten(str(reason), 200)


# --------------------------------------------------------------------------- credentials


@dataclass(frozen=True)
class DroaCredentials:
    """Temporary AWS credentials of a signed-in racer; repr shows only the key id's start."""

    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str = field(repr=False)
    expiration: datetime

    def __repr__(self) -> str:
        return (
            f"DroaCredentials(access_key_id='{self.access_key_id[:4]}...', "
            f"expiration={self.expiration.isoformat()})"
        )

    __str__ = __repr__

    def remaining(self, now: datetime | None = None) -> timedelta:
        return self.expiration - (now or datetime.now(timezone.utc))

    def to_json(self) -> dict[str, str]:
        return {
            "access_key_id": self.access_key_id,
            "secret_access_key": self.secret_access_key,
            "session_token": self.session_token,
            "expiration": self.expiration.isoformat(),
        }

    @classmethod
    def from_json(cls, data: dict[str, str]) -> "DroaCredentials":
        expiration = datetime.fromisoformat(data["expiration"])
        if expiration.tzinfo is None:
            expiration = expiration.replace(tzinfo=timezone.utc)
        return cls(data["access_key_id"], data["secret_access_key"], data["session_token"], expiration)


def credentials_cache_file(site_url: str, username: str) -> Path:
    digest = hashlib.sha256(f"{site_url.rstrip('/')}\n{username}".encode()).hexdigest()[:24]
    return cache_dir() / "droa" / f"{digest}.json"


def load_cached_credentials(site_url: str, username: str, now: datetime | None = None) -> DroaCredentials | None:
    """Cached credentials with more than REUSE_MARGIN to live, else None."""
    path = credentials_cache_file(site_url, username)
    try:
        credentials = DroaCredentials.from_json(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    secrets.remember(credentials.secret_access_key, credentials.session_token)
    return credentials if credentials.remaining(now) > REUSE_MARGIN else None


def save_cached_credentials(site_url: str, username: str, credentials: DroaCredentials) -> Path:
    """Write the cache readable by the owner only (created 0600, never widened)."""
    path = credentials_cache_file(site_url, username)
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    temp = path.with_suffix(".tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(credentials.to_json(), handle)
    os.chmod(temp, 0o600)
    os.replace(temp, path)
    return path


def forget_cached_credentials(site_url: str, username: str) -> None:
    credentials_cache_file(site_url, username).unlink(missing_ok=True)


def password_from_env_or_terminal(username: str) -> Callable[[], str]:
    """DR_DROA_PASSWORD when set (automation), else a getpass prompt."""

    def provide() -> str:
        from_env = os.environ.get(PASSWORD_ENV)
        if from_env:
            return from_env
        return getpass.getpass(f"DRoA password for {username}: ")

    return provide


def _cognito_client(service: str, region: str) -> Any:
    """An unsigned client: these Cognito calls need no AWS credentials, only the racer's own."""
    import boto3
    from botocore import UNSIGNED
    from botocore.config import Config

    session = boto3.Session(region_name=region)
    return session.client(service, config=Config(signature_version=UNSIGNED, **timeouts.botocore_options()))


def _client_error_text(exc: Exception) -> tuple[str, str]:
    error = getattr(exc, "response", {}).get("Error", {})
    return error.get("Code", type(exc).__name__), error.get("Message", "") or str(exc)


def authenticate(deployment: DroaDeployment, username: str, password: str) -> DroaCredentials:
    """User pool sign-in, then the identity pool's temporary credentials. Nothing is stored."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        idp = _cognito_client("cognito-idp", deployment.region)
        answer = idp.initiate_auth(
            AuthFlow="USER_PASSWORD_AUTH",
            ClientId=deployment.user_pool_client_id,
            AuthParameters={"USERNAME": username, "PASSWORD": password},
        )
    except ClientError as exc:
        code, message = _client_error_text(exc)
        if code in ("NotAuthorizedException", "UserNotFoundException", "PasswordResetRequiredException"):
            raise DrtasksError(f"DRoA sign-in refused for {username}: {message}") from None
        raise DrtasksError(f"DRoA sign-in failed for {username}: {code}: {message}") from None
    except BotoCoreError as exc:
        raise DrtasksError(f"DRoA sign-in failed for {username}: {exc}") from None
    if "AuthenticationResult" not in answer:
        challenge = answer.get("ChallengeName", "an unknown challenge")
        raise DrtasksError(
            f"DRoA sign-in for {username} needs {challenge}: sign in once on {deployment.url} first"
        )
    id_token = answer["AuthenticationResult"]["IdToken"]
    secrets.remember(id_token, answer["AuthenticationResult"].get("AccessToken"), answer["AuthenticationResult"].get("RefreshToken"))
    logins = {deployment.login_provider: id_token}
    try:
        identity = _cognito_client("cognito-identity", deployment.region)
        identity_id = identity.get_id(IdentityPoolId=deployment.identity_pool_id, Logins=logins)["IdentityId"]
        issued = identity.get_credentials_for_identity(IdentityId=identity_id, Logins=logins)["Credentials"]
    except ClientError as exc:
        code, message = _client_error_text(exc)
        raise DrtasksError(f"DRoA identity pool refused {username}: {code}: {message}") from None
    except BotoCoreError as exc:
        raise DrtasksError(f"DRoA identity pool unreachable for {username}: {exc}") from None
    secrets.remember(issued.get("SecretKey"), issued.get("SessionToken"))
    expiration = issued["Expiration"]
    if expiration.tzinfo is None:
        expiration = expiration.replace(tzinfo=timezone.utc)
    return DroaCredentials(issued["AccessKeyId"], issued["SecretKey"], issued["SessionToken"], expiration)


@dataclass(frozen=True)
class DroaSession:
    """A signed-in racer on one deployment: credentials for its upload bucket and its API."""

    deployment: DroaDeployment
    username: str
    credentials: DroaCredentials
    from_cache: bool = False

    @property
    def region(self) -> str:
        return self.deployment.region

    def boto3_session(self) -> Any:
        import boto3

        return boto3.Session(
            aws_access_key_id=self.credentials.access_key_id,
            aws_secret_access_key=self.credentials.secret_access_key,
            aws_session_token=self.credentials.session_token,
            region_name=self.region,
        )

    def s3_client(self, endpoint_url: str | None = None, **config: Any) -> Any:
        """S3 client for the upload bucket (``endpoint_url`` only for tests or S3-compatible stores)."""
        from botocore.config import Config

        style = "path" if endpoint_url and "amazonaws.com" not in endpoint_url else "auto"
        return self.boto3_session().client(
            "s3", endpoint_url=endpoint_url, config=Config(s3={"addressing_style": style}, **config)
        )

    def api(self) -> "DroaApi":
        return DroaApi(self.deployment.api_endpoint_url, self.credentials, self.region)


def sign_in(
    site_url: str,
    username: str,
    password_provider: Callable[[], str] | None = None,
    *,
    deployment: DroaDeployment | None = None,
    use_cache: bool = True,
) -> DroaSession:
    """Discover the deployment, then reuse cached credentials or ask for the password and sign in.

    ``password_provider`` is called only when a sign-in is needed (default: DR_DROA_PASSWORD, else
    a terminal prompt).
    """
    deployment = deployment or discover(site_url)
    if use_cache:
        cached = load_cached_credentials(site_url, username)
        if cached is not None:
            return DroaSession(deployment, username, cached, from_cache=True)
    provider = password_provider or password_from_env_or_terminal(username)
    password = provider()
    secrets.remember(password)
    if not password:
        raise DrtasksError(f"no DRoA password for {username} (set {PASSWORD_ENV} or type it when asked)")
    credentials = authenticate(deployment, username, password)
    del password
    if use_cache:
        save_cached_credentials(site_url, username, credentials)
    return DroaSession(deployment, username, credentials)


# --------------------------------------------------------------------------- API


class DroaApi:
    """DRoA's REST API, each call SigV4-signed for ``execute-api`` with the racer's credentials."""

    def __init__(self, api_endpoint_url: str, credentials: DroaCredentials, region: str) -> None:
        self.base_url = api_endpoint_url.rstrip("/")
        self.credentials = credentials
        self.region = region

    def __repr__(self) -> str:
        return f"DroaApi({self.base_url!r}, region={self.region!r})"

    def _signed_headers(self, method: str, url: str, body: bytes | None) -> dict[str, str]:
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials

        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        request = AWSRequest(method=method, url=url, data=body, headers=headers)
        creds = Credentials(
            self.credentials.access_key_id, self.credentials.secret_access_key, self.credentials.session_token
        )
        SigV4Auth(creds, "execute-api", self.region).add_auth(request)
        return dict(request.headers.items())

    def request(self, method: str, path: str, payload: dict[str, Any] | None = None,
                query: dict[str, str] | None = None) -> dict[str, Any]:
        url = self.base_url + path
        if query:
            url += "?" + urllib.parse.urlencode(query)
        body = json.dumps(payload).encode() if payload is not None else None
        request = urllib.request.Request(url, data=body, method=method,
                                         headers=self._signed_headers(method, url, body))
        wait = timeouts.api_seconds()
        try:
            with urllib.request.urlopen(request, timeout=wait) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            message = _error_message(exc)
            if exc.code == 400:
                raise DrtasksError(f"DRoA refused {method} {path}: {message}") from None
            if exc.code in (401, 403):
                raise DrtasksError(f"DRoA denied {method} {path} ({exc.code}): {message}; sign in again") from None
            if exc.code == 404:
                raise DrtasksError(f"DRoA found nothing at {method} {path}: {message}") from None
            if exc.code >= 500:
                kind = exc.headers.get("x-amzn-errortype") or "an internal error"
                raise DrtasksError(
                    f"DRoA {method} {path} failed with HTTP {exc.code} ({kind}){': ' + message if message else ''}; "
                    "for an import this is how DRoA answers when a required file cannot be read from the upload"
                ) from None
            raise DrtasksError(f"DRoA {method} {path} failed with HTTP {exc.code}: {message}") from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise DrtasksError(f"cannot reach the DRoA API at {self.base_url}: {_network_reason(exc, wait)}") from None
        if not raw:
            return {}
        try:
            return json.loads(raw)
        except ValueError:
            raise DrtasksError(f"DRoA {method} {path} answered something that is not JSON") from None

    def import_model(self, s3_bucket: str, s3_path: str, model_name: str,
                     model_description: str | None = None) -> str:
        """Ask DRoA to import the model under ``s3://s3_bucket/s3_path``; returns its modelId.

        A name or description DRoA would refuse is refused here, before any call.
        """
        refused = check_names(model_name, model_description)
        if refused:
            raise DrtasksError(f"DRoA import refused: {refused[0]}")
        payload = {"s3Bucket": s3_bucket, "s3Path": s3_path.strip("/"), "modelName": model_name}
        if model_description:
            payload["modelDescription"] = model_description
        try:
            answer = self.request("POST", "/importmodel", payload)
        except DrtasksError as exc:
            raise DrtasksError(f"DRoA import of '{model_name}' failed: {_after_colon(exc.message)}") from None
        model_id = answer.get("modelId")
        if not model_id:
            raise DrtasksError(f"DRoA accepted the import of '{model_name}' but returned no modelId")
        return str(model_id)

    def get_model(self, model_id: str) -> dict[str, Any]:
        answer = self.request("GET", f"/models/{urllib.parse.quote(model_id, safe='')}")
        return answer.get("model", answer)

    def list_models(self) -> list[dict[str, Any]]:
        """Every model of the racer (follows the pagination token)."""
        models: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            answer = self.request("GET", "/models", query={"token": token} if token else None)
            models.extend(answer.get("models", []))
            token = answer.get("token")
            if not token:
                return models

    def delete_model(self, model_id: str) -> None:
        self.request("DELETE", f"/models/{urllib.parse.quote(model_id, safe='')}")

    def get_asset_url(self, model_id: str, asset_type: str, evaluation_id: str | None = None) -> dict[str, Any]:
        """``{"url": ...}`` (a presigned URL) or ``{"status": "QUEUED"}`` while DRoA packages the asset."""
        query = {"assetType": asset_type}
        if evaluation_id:
            query["evaluationId"] = evaluation_id
        return self.request("GET", f"/models/{urllib.parse.quote(model_id, safe='')}/getasset", query=query)


def _error_message(exc: urllib.error.HTTPError) -> str:
    """The message of an API answer: ``message`` (the handlers), ``errorMessage`` (API Gateway's request
    validator) or ``Message``; empty when the body carries none (a 500 InternalFailure answers ``{}``)."""
    try:
        data = json.loads(exc.read() or b"{}")
    except ValueError:
        return exc.reason or ""
    if not isinstance(data, dict):
        return ""
    return str(data.get("message") or data.get("errorMessage") or data.get("Message") or "")


def _after_colon(message: str) -> str:
    # "DRoA refused POST /importmodel: <backend message>" -> "<backend message>"
    return message.split(": ", 1)[1] if message.startswith("DRoA refused") else message


def new_upload_prefix() -> str:
    """Where a fresh upload goes in the DRoA bucket, as its web UI does: uploads/models/<uuid>."""
    import uuid

    return f"{UPLOAD_ROOT}/{uuid.uuid4()}"


TERMINAL_STATUSES = ("READY", "ERROR")


def wait_for_model(
    api: DroaApi,
    model_id: str,
    on_status: Callable[[str, dict[str, Any]], None] | None = None,
    poll_seconds: float = 10.0,
    timeout: float = 1800.0,
) -> dict[str, Any]:
    """Poll until the model is READY (returned) or ERROR (DrtasksError with DRoA's reason).

    ``on_status(status, model)`` is called on every change of status, the first one included.
    """
    deadline = time.monotonic() + timeout
    last = None
    while True:
        model = api.get_model(model_id)
        status = str(model.get("status", "UNKNOWN"))
        if status != last and on_status:
            on_status(status, model)
        last = status
        if status == "READY":
            return model
        if status == "ERROR" or status.endswith("_ERROR"):
            reason = model.get("importErrorMessage") or "no reason given"
            raise DrtasksError(f"DRoA could not import model {model_id}: {reason}")
        if time.monotonic() >= deadline:
            raise DrtasksError(f"DRoA model {model_id} is still {status} after {int(timeout)} s")
        time.sleep(poll_seconds)
