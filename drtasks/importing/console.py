"""Import a model into the (retired) AWS DeepRacer console through its botocore service model.

The service model is not part of botocore: deepracer-utils before 1.5 ships it, and
``python -m deepracer install-cli --force`` copies it to ``~/.aws/models``. We only need the
folder that holds it, so the deepracer package is located, never imported (its ``__init__``
pulls in pandas, matplotlib and friends).
"""

from __future__ import annotations

import importlib.util
import re
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from drtasks.errors import DrtasksError

SERVICE_NAME = "deepracer"
API_VERSION = "2019-04-01"
MODEL_TYPE = "REINFORCEMENT_LEARNING"

READY_STATUS = "READY"
ERROR_STATUSES = frozenset({"ERROR", "IMPORT_ERROR", "MIGRATE_ERROR"})

NAME_PATTERN = re.compile(r"[a-zA-Z0-9-]{1,64}")
DESCRIPTION_MAX = 255
ROLE_ARN_PATTERN = re.compile(r"arn:aws(-[a-z]+)*:iam::[0-9]{12}:role/[a-zA-Z0-9_+=,.@/-]{1,512}")
ROLE_ARN_FORMAT = "arn:aws:iam::<12-digit account>:role/<name>"

INSTALL_HINT = (
    'pip install "deepracer-utils<1.5"` and then `python -m deepracer install-cli --force'
)
RETIRED_HINT = (
    "the AWS DeepRacer console was retired in December 2025; "
    "import into DeepRacer on AWS instead with `--target droa`"
)

MODEL_COLUMNS = ["name", "status", "created", "arn"]


# ---------------------------------------------------------------------------- service model


def deepracer_utils_models_root() -> Path | None:
    """deepracer-utils' ``boto3_enhancer/models`` folder, found without importing the package."""
    spec = importlib.util.find_spec("deepracer")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        root = Path(location) / "boto3_enhancer" / "models"
        if root.is_dir():
            return root
    return None


def default_models_roots() -> list[Path]:
    """Where the service model may live: deepracer-utils' copy, then the AWS CLI's models folder."""
    roots = [Path.home() / ".aws" / "models"]
    utils_root = deepracer_utils_models_root()
    if utils_root is not None:
        roots.insert(0, utils_root)
    return roots


def service_model_file(models_roots: Sequence[Path] | None = None) -> Path:
    """The ``service-2.json`` of the deepracer service in the first root that has one."""
    roots = list(models_roots) if models_roots is not None else default_models_roots()
    for root in roots:
        candidate = Path(root) / SERVICE_NAME / API_VERSION / "service-2.json"
        if candidate.is_file():
            return candidate
    searched = ", ".join(str(r) for r in roots) or "nowhere"
    raise DrtasksError(
        f"the botocore service model '{SERVICE_NAME}' ({API_VERSION}) was not found (searched {searched}); "
        f"install it with `{INSTALL_HINT}`"
    )


def make_client(
    *,
    region: str = "us-east-1",
    endpoint_url: str | None = None,
    aws_profile: str | None = None,
    session: Any | None = None,
    models_roots: Sequence[Path] | None = None,
    max_attempts: int = 3,
) -> Any:
    """A botocore client for the console API.

    Without ``endpoint_url`` botocore resolves it, so ``AWS_ENDPOINT_URL_DEEPRACER`` (or
    ``endpoint_url`` in an AWS config profile's ``deepracer`` section) is honoured.
    """
    from botocore.config import Config

    from drtasks.s3 import session_for

    models_root = service_model_file(models_roots).parents[2]
    if session is None:
        session = session_for(aws_profile, region)
    # boto3 exposes no public way to extend the data path of an existing session; the
    # loader itself is botocore's public component and its search_paths a plain list.
    loader = session._session.get_component("data_loader")
    if str(models_root) not in loader.search_paths:
        loader.search_paths.insert(0, str(models_root))
    from drtasks import timeouts
    from drtasks.s3 import remember_session_secrets

    options = timeouts.botocore_options()
    options["retries"]["total_max_attempts"] = max_attempts
    client = session.client(SERVICE_NAME, region_name=region, endpoint_url=endpoint_url or None, config=Config(**options))
    remember_session_secrets(session)
    return client


# ---------------------------------------------------------------------------- checks


def check_import_request(name: str, role_arn: str | None, description: str | None = None) -> None:
    """Refuse a request the service would refuse, before any call is made."""
    if not NAME_PATTERN.fullmatch(name or ""):
        raise DrtasksError(
            f"model name {name!r} is not valid: use 1-64 letters, digits or '-' (pattern ^[a-zA-Z0-9-]+$)"
        )
    if description is not None and len(description) > DESCRIPTION_MAX:
        raise DrtasksError(
            f"model description is {len(description)} characters long; the console accepts at most {DESCRIPTION_MAX}"
        )
    if not role_arn:
        raise DrtasksError(
            "the console import needs an IAM role ARN that may read the upload bucket: "
            f"set DR_UPLOAD_S3_ROLE to {ROLE_ARN_FORMAT}"
        )
    if not ROLE_ARN_PATTERN.fullmatch(role_arn):
        raise DrtasksError(f"role ARN {role_arn!r} (DR_UPLOAD_S3_ROLE) is not of the form {ROLE_ARN_FORMAT}")


# ---------------------------------------------------------------------------- calls


@contextmanager
def service_errors(client: Any, operation: str) -> Iterator[None]:
    """Turn botocore failures of one console call into a one-line DrtasksError."""
    from botocore.exceptions import (
        ClientError,
        ConnectTimeoutError,
        EndpointConnectionError,
        NoCredentialsError,
    )

    try:
        yield
    except (EndpointConnectionError, ConnectTimeoutError) as exc:
        raise DrtasksError(
            f"cannot reach the DeepRacer console API at {client.meta.endpoint_url} ({operation}): {RETIRED_HINT}"
        ) from exc
    except NoCredentialsError as exc:
        raise DrtasksError(
            f"no AWS credentials for the DeepRacer console ({operation}): configure an AWS profile"
        ) from exc
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code = error.get("Code") or "UnknownError"
        message = (error.get("Message") or "").splitlines()[0:1]
        detail = f": {message[0]}" if message else ""
        raise DrtasksError(f"DeepRacer console {operation} failed with {code}{detail}") from exc


def list_models(client: Any, page_size: int = 50) -> Any:
    """Every reinforcement-learning model of the account as a DataFrame (name, status, created, arn)."""
    import pandas as pd

    rows: list[dict[str, Any]] = []
    request: dict[str, Any] = {"ModelType": MODEL_TYPE, "MaxResults": page_size}
    with service_errors(client, "ListModels"):
        while True:
            page = client.list_models(**request)
            for model in page.get("Models", []):
                rows.append(
                    {
                        "name": model.get("ModelName"),
                        "status": model.get("Status"),
                        "created": model.get("CreationTime"),
                        "arn": model.get("ModelArn"),
                    }
                )
            token = page.get("NextToken")
            if not token:
                break
            request["NextToken"] = token
    frame = pd.DataFrame(rows, columns=MODEL_COLUMNS)
    # The model declares CreationTime as epoch milliseconds (a long), not a timestamp.
    frame["created"] = pd.to_datetime(frame["created"], unit="ms", utc=True)
    return frame


def import_model(
    client: Any,
    *,
    name: str,
    s3_path: str,
    role_arn: str | None,
    description: str | None = None,
    check_artifacts: Callable[[], None] | None = None,
) -> str:
    """Import ``s3_path`` (``s3://bucket/prefix``) as model ``name``; returns the new model's ARN.

    ``check_artifacts`` runs after the local checks and before any console call; it should raise
    DrtasksError when the prefix does not hold an importable model.
    """
    check_import_request(name, role_arn, description)
    if not s3_path.startswith("s3://") or len(s3_path) <= len("s3://"):
        raise DrtasksError(f"model location {s3_path!r} must be an s3://bucket/prefix URL")
    if check_artifacts is not None:
        check_artifacts()

    existing = list_models(client)
    clash = existing[existing["name"] == name]
    if not clash.empty:
        status = clash.iloc[0]["status"]
        raise DrtasksError(
            f"a console model named '{name}' already exists (status {status}); choose another name"
        )

    request: dict[str, Any] = {
        "Type": MODEL_TYPE,
        "Name": name,
        "ModelArtifactsS3Path": s3_path,
        "RoleArn": role_arn,
    }
    if description:
        request["Description"] = description
    with service_errors(client, "ImportModel"):
        return client.import_model(**request)["ModelArn"]


def wait_for_model(
    client: Any,
    arn: str,
    on_status: Callable[[str], None] | None = None,
    poll_seconds: float = 10.0,
    timeout: float = 1800.0,
) -> str:
    """Poll GetModel until the model is READY (returned) or in an error status (DrtasksError).

    ``on_status`` receives the status after every poll, so a caller can show progress.
    """
    deadline = time.monotonic() + timeout
    while True:
        with service_errors(client, "GetModel"):
            model = client.get_model(ModelArn=arn)["Model"]
        status = model.get("Status", "")
        if on_status is not None:
            on_status(status)
        if status == READY_STATUS:
            return status
        if status in ERROR_STATUSES:
            error = model.get("Error") or {}
            reason = ": ".join(part for part in (error.get("ErrorCode"), error.get("Details")) if part)
            suffix = f" ({reason})" if reason else ""
            raise DrtasksError(f"console model '{model.get('ModelName', arn)}' ended in status {status}{suffix}")
        if time.monotonic() + poll_seconds > deadline:
            raise DrtasksError(
                f"console model '{model.get('ModelName', arn)}' is still {status} after {timeout:.0f} s; "
                "check the console later"
            )
        time.sleep(poll_seconds)
