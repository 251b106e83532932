"""Import as plain functions: what is imported, where, and the checks made before any write or call.

The console imports a model already uploaded in the race layout (``inv upload``); DRoA gets its own
upload into its transit bucket (see ``drtasks.importing.droa_flow``). Both read the same settings:

- DR_IMPORT_TARGET: ``console`` or ``droa`` (default ``droa`` when DR_DROA_URL is set, else ``console``)
- DR_IMPORT_NAME (default: the upload prefix), DR_IMPORT_DESCRIPTION
- DR_IMPORT_ENDPOINT_URL: the console API endpoint (else botocore's AWS_ENDPOINT_URL_DEEPRACER)
- DR_UPLOAD_S3_ROLE: the IAM role ARN the console reads the upload bucket with
- DR_IMPORT_POLL_SECONDS: how often ``--wait`` asks for the model's status (default 10)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Collection

from drtasks.config import targets
from drtasks.config.settings import Settings
from drtasks.errors import DrtasksError
from drtasks.model import Checkpoint, checkpoint_number
from drtasks.plan import list_target
from drtasks.s3 import S3Location, s3_errors

CONSOLE = "console"
DROA = "droa"
TARGETS = (CONSOLE, DROA)
# The console only ever ran in us-east-1.
CONSOLE_REGION = "us-east-1"
DEFAULT_POLL_SECONDS = 10.0

# What the console reads from the upload prefix (facts: the race layout of dr-upload-model).
RACE_FILES = (
    "model_metadata.json",
    "model/model_metadata.json",
    "reward_function.py",
    "training_params.yaml",
    "ip/hyperparameters.json",
    "model/deepracer_checkpoints.json",
    "model/.coach_checkpoint",
)
COACH_CHECKPOINT = "model/.coach_checkpoint"
_FROZEN_GRAPH = re.compile(r"^model/model_\d+\.pb$")


def _where(settings: Settings, key: str) -> str:
    origin = settings.origin(key)
    return f" ({origin})" if origin else ""


@dataclass(frozen=True)
class ImportRequest:
    """What to import as what, decided from the settings (flags included)."""

    target: str  # CONSOLE or DROA
    name: str
    description: str | None


def import_target(settings: Settings) -> str:
    explicit = settings.get("DR_IMPORT_TARGET")
    if explicit is None:
        return DROA if settings.get("DR_DROA_URL") else CONSOLE
    target = explicit.strip().lower()
    if target not in TARGETS:
        raise DrtasksError(
            f"DR_IMPORT_TARGET is {explicit!r}{_where(settings, 'DR_IMPORT_TARGET')}; expected console or droa"
        )
    return target


def resolve_request(settings: Settings, name: str | None = None) -> ImportRequest:
    """``name`` (a flag such as --import-name) wins over DR_IMPORT_NAME, which defaults to the upload prefix."""
    chosen = name or settings.get("DR_IMPORT_NAME")
    if not chosen:
        chosen = settings.require(
            "DR_UPLOAD_S3_PREFIX", "the import is named after the upload prefix; or give a name with --name"
        ).strip("/")
    return ImportRequest(import_target(settings), chosen, settings.get("DR_IMPORT_DESCRIPTION"))


def poll_seconds(settings: Settings) -> float:
    text = settings.get("DR_IMPORT_POLL_SECONDS")
    if text is None:
        return DEFAULT_POLL_SECONDS
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if value < 0:
        raise DrtasksError(
            f"DR_IMPORT_POLL_SECONDS is {text!r}{_where(settings, 'DR_IMPORT_POLL_SECONDS')}; expected seconds (0 or more)"
        )
    return value


# ---------------------------------------------------------------------------- console


def missing_race_files(keys: Collection[str], coach_checkpoint: str | None) -> list[str]:
    """The race-layout files absent from ``keys`` (relative to the prefix).

    ``coach_checkpoint`` is the content of model/.coach_checkpoint: it names the checkpoint whose
    data files and frozen graph must be there.
    """
    missing = [key for key in RACE_FILES if key not in keys]
    name = (coach_checkpoint or "").strip()
    if name:
        try:
            number = checkpoint_number(name)
        except DrtasksError:
            return [*missing, f"{COACH_CHECKPOINT} names {name!r}, not a checkpoint"]
        checkpoint = Checkpoint(number, name, {})
        wanted = [checkpoint.frozen_graph, *checkpoint.data_files]
        missing += [key for key in wanted if key not in keys]
    elif not any(_FROZEN_GRAPH.match(key) for key in keys):
        missing.append("model/model_<N>.pb")
    return missing


def check_uploaded_model(client: Any, location: S3Location) -> None:
    """Refuse a prefix that does not hold a model in the race layout, naming what is missing."""
    keys = set(list_target(client, location))
    with s3_errors(location):
        if not keys:
            raise DrtasksError(f"nothing is uploaded at {location.url}: upload the model first (inv upload)")
        coach = None
        if COACH_CHECKPOINT in keys:
            body = client.get_object(Bucket=location.bucket, Key=location.key(COACH_CHECKPOINT))["Body"].read()
            coach = body.decode("utf-8", errors="replace")
    missing = missing_race_files(keys, coach)
    if missing:
        raise DrtasksError(f"{location.url} does not hold an importable model; missing: " + ", ".join(missing))


def console_role(settings: Settings) -> str | None:
    return settings.get("DR_UPLOAD_S3_ROLE")


def check_console_request(settings: Settings, request: ImportRequest) -> None:
    """Name, description, role and the service model: everything decidable without a call."""
    from drtasks.importing import console

    console.check_import_request(request.name, console_role(settings), request.description)
    console.service_model_file()


def console_client(settings: Settings) -> Any:
    """The console API client, with the upload bucket's AWS profile (as DRfC's importer used)."""
    from drtasks.importing import console

    return console.make_client(
        region=CONSOLE_REGION,
        endpoint_url=targets.endpoint_url(settings, "DR_IMPORT_ENDPOINT_URL"),
        aws_profile=settings.get("DR_UPLOAD_S3_PROFILE"),
    )


def refuse_existing_name(client: Any, name: str) -> None:
    """The console refuses a second model of the same name; say so before uploading or importing."""
    from drtasks.importing import console

    models = console.list_models(client)
    clash = models[models["name"] == name]
    if not clash.empty:
        raise DrtasksError(
            f"a console model named '{name}' already exists (status {clash.iloc[0]['status']}); choose another name"
        )


def import_into_console(
    settings: Settings, request: ImportRequest, location: S3Location, client: Any | None = None
) -> str:
    """Check the uploaded prefix, then import it; returns the new model's ARN."""
    from drtasks.importing import console
    from drtasks.s3 import make_client

    client = client or console_client(settings)
    return console.import_model(
        client,
        name=request.name,
        s3_path=location.url,
        role_arn=console_role(settings),
        description=request.description,
        check_artifacts=lambda: check_uploaded_model(make_client(location), location),
    )


def models_as_records(frame: Any) -> list[dict[str, Any]]:
    """A models DataFrame as JSON-ready records (times in ISO 8601)."""
    import json

    return json.loads(frame.to_json(orient="records", date_format="iso"))
