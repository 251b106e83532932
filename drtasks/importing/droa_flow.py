"""DRoA import as plain functions: the upload DRoA's backend reads, checked, planned, then imported.

The model goes from the SOURCE (training) bucket straight into the deployment's transit bucket under
``uploads/models/<uuid>/``, through the same manifest, plan and transfer as ``inv upload``; only
training_params.yaml differs (S3 fields on the DRoA bucket, WORLD_NAME without a direction suffix,
a boolean TRACK_DIRECTION_CLOCKWISE). The files DRoA reads are checked with its rules first.

Settings: DR_DROA_URL (the site), DR_DROA_USERNAME; the password comes from DR_DROA_PASSWORD or a
prompt and is never stored. DR_DROA_S3_ENDPOINT_URL redirects the transit bucket to an S3-compatible
endpoint (tests); without it botocore's own AWS_ENDPOINT_URL_S3 is honoured, else AWS S3.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from drtasks.checkpoint_choice import choose_for
from drtasks.config import targets
from drtasks.config.settings import Settings
from drtasks.errors import DrtasksError, shorten
from drtasks.importing.flow import ImportRequest
from drtasks.manifest import ManifestItem, find_pieces, upload_manifest
from drtasks.model import Checkpoint, SourceModel
from drtasks.model_check import check_checkpoint_model
from drtasks.plan import Plan, plan_upload
from drtasks.s3 import S3Location, disable_expect_continue, make_client, s3_errors
from drtasks.transfer import Check, Progress, TransferConfig, apply

# DRoA's upload skips archives; so do we.
SKIPPED_SUFFIXES = (".gz", ".zip")
# The web UI refuses bigger folders; the API may too.
UPLOAD_CAP = 1024 * 1024 * 1024
DROA_MODEL_COLUMNS = ["name", "status", "created", "id"]


def _where(settings: Settings, key: str) -> str:
    origin = settings.origin(key)
    return f" ({origin})" if origin else ""


def droa_site(settings: Settings) -> tuple[str, str]:
    """(site url, username); both must be set."""
    url = settings.require("DR_DROA_URL", "set the DRoA site's address in the profile's import.droa_url")
    if not url.startswith(("https://", "http://")):
        raise DrtasksError(f"DR_DROA_URL is {shorten(url)}{_where(settings, 'DR_DROA_URL')}; expected an https:// address")
    username = settings.require("DR_DROA_USERNAME", "set your DRoA user name in the profile's import.droa_username")
    return url, username


def check_droa_request(settings: Settings, request: ImportRequest) -> None:
    """Name, description and site settings: everything decidable without a call."""
    from drtasks.importing.droa_rules import check_names

    refused = check_names(request.name, request.description)
    if refused:
        raise DrtasksError("DRoA would refuse the import: " + "; ".join(str(p) for p in refused))
    droa_site(settings)


def sign_in(settings: Settings) -> Any:
    """A DroaSession: cached temporary credentials, else DR_DROA_PASSWORD or a prompt."""
    from drtasks.importing import droa

    url, username = droa_site(settings)
    return droa.sign_in(url, username)


def transit_endpoint(settings: Settings) -> str | None:
    return targets.endpoint_url(settings, "DR_DROA_S3_ENDPOINT_URL")


def transit_client(session: Any, endpoint_url: str | None, concurrency: int) -> Any:
    from drtasks import timeouts

    client = session.s3_client(
        endpoint_url,
        max_pool_connections=concurrency + 2,
        **timeouts.botocore_options(),
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    disable_expect_continue(client)
    return client


@dataclass
class DroaUploadJob:
    plan: Plan
    checkpoint: Checkpoint
    source_client: Any
    target_client: Any
    bucket: str
    prefix: str  # uploads/models/<uuid>
    warnings: list[str] = field(default_factory=list)


def _read(client: Any, item: ManifestItem) -> bytes:
    if item.content is not None or item.source is None:
        return item.content or b""
    return client.get_object(Bucket=item.source.bucket, Key=item.source.key)["Body"].read()


def files_droa_reads(manifest: list[ManifestItem], source_client: Any, source: S3Location) -> dict[str, bytes | None]:
    """The four small files DRoA's backend reads, as they will be uploaded (None when absent)."""
    from drtasks.importing.droa_rules import REQUIRED_FILES

    by_key = {item.key: item for item in manifest}
    with s3_errors(source):
        return {name: _read(source_client, by_key[name]) if name in by_key else None for name in REQUIRED_FILES}


# DRfC's multi-worker runs write training_params_<n>.yaml; worker 1's is the canonical one.
TRAINING_PARAMS_CANDIDATES = ("training_params_1.yaml", "training_params.yaml")


def base_training_params(settings: Settings, model: SourceModel, source_client: Any, target: S3Location,
                         metrics_key: str) -> tuple[dict[str, Any], str]:
    """(params, where they came from): the training run's own file, as DRfC's importer prefers it.

    ``training_params_1.yaml`` (multi-worker) wins over ``training_params.yaml``; a model without
    either gets the file generated from the DR_* settings, as ``inv upload`` writes it.
    """
    import yaml

    from drtasks.training_params import training_params

    for name in TRAINING_PARAMS_CANDIDATES:
        if name in model.objects:
            with s3_errors(model.location):
                raw = source_client.get_object(Bucket=model.location.bucket, Key=model.objects[name].key)["Body"].read()
            try:
                params = yaml.safe_load(raw)
            except yaml.YAMLError as error:
                raise DrtasksError(f"{model.location.url}/{name} is not valid YAML: {str(error).splitlines()[0]}") from None
            if not isinstance(params, dict):
                raise DrtasksError(f"{model.location.url}/{name} does not hold a mapping of training parameters")
            return params, f"{name} of the training run"
    return dict(training_params(settings, target, metrics_key)), "training_params.yaml generated from the DR_* settings"


def droa_metrics_item(model: SourceModel, pieces: Any, source_client: Any) -> ManifestItem | None:
    """metrics/training/training-<time>.json from DRfC's TrainingMetrics file(s), or None without any."""
    from drtasks.importing.droa_metrics import droa_metrics_file, worker_files

    folder = pieces.metrics_folder
    names = {info.key[len(folder):]: info for info in pieces.metrics}
    found = worker_files(list(names))
    if not found:
        return None
    location = S3Location(model.location.bucket, folder.rstrip("/"), model.location.endpoint_url,
                          model.location.aws_profile, model.location.region)
    files = []
    with s3_errors(location):
        for worker, name in found:
            info = names[name]
            body = source_client.get_object(Bucket=model.location.bucket, Key=info.key)["Body"].read()
            files.append((worker, name, body))
    key, content = droa_metrics_file(files)
    return ManifestItem(key, content=content)


def droa_manifest(settings: Settings, model: SourceModel, checkpoint: Checkpoint, pieces: Any, target: S3Location,
                  source_client: Any) -> tuple[list[ManifestItem], list[str]]:
    """(dr-upload-model's manifest as DRoA reads it, notes): archives left out, DRoA's
    training_params.yaml, and the training metrics where DRoA imports them."""
    from drtasks.importing.droa_metrics import is_droa_metrics_key
    from drtasks.importing.droa_rules import dump_training_params, training_params_for_droa

    base, origin = base_training_params(settings, model, source_client, target, pieces.metrics_file_key)
    params = dump_training_params(training_params_for_droa(base, target.bucket, target.prefix)).encode()
    manifest = [item for item in upload_manifest(model, checkpoint, pieces, params)
                if not item.key.lower().endswith(SKIPPED_SUFFIXES)]
    notes = [f"training_params.yaml: {origin}, S3 fields on the DRoA bucket"]
    if any(is_droa_metrics_key(item.key) for item in manifest):
        notes.append("training graph: the model's own metrics/training/ file")
        return manifest, notes
    graph = droa_metrics_item(model, pieces, source_client)
    if graph is None:
        notes.append("warning: no metrics/TrainingMetrics*.json, so DRoA will show no training graph")
        return manifest, notes
    # Before the final keys, so an interrupted upload never looks complete.
    first_final = next((i for i, item in enumerate(manifest) if item.final), len(manifest))
    manifest.insert(first_final, graph)
    notes.append(f"training graph: {graph.key} (simapp format, from DRfC's TrainingMetrics)")
    return manifest, notes


def refuse_existing_name(api: Any, name: str) -> None:
    """DRoA accepts a second model of the same name; refuse it here, while a name still means one model."""
    clash = [model for model in api.list_models() if model.get("name") == name]
    if clash:
        first = clash[0]
        raise DrtasksError(
            f"DRoA already has a model named '{name}' (id {first.get('modelId')}, {first.get('status')}): a second "
            "one would make the name ambiguous; choose another name, nothing was written"
        )


def prepare_droa_upload(
    settings: Settings, session: Any, request: ImportRequest, config: TransferConfig | None = None
) -> DroaUploadJob:
    """Everything up to the plan; refuses with every blocking problem before anything is written."""
    from drtasks.importing import droa
    from drtasks.importing.droa_rules import check_import, parse_model_files
    from drtasks.importing.reward_check import check_reward_function

    config = config or TransferConfig()
    source = targets.source_location(settings)
    source_client = make_client(source, max_pool_connections=config.max_concurrency + 2)
    model = SourceModel.load(source_client, source)
    choice = choose_for(settings, source_client, model)
    checkpoint = choice.checkpoint
    pieces = find_pieces(source_client, model, checkpoint, targets.reward_key(settings), targets.metrics_prefix(settings))

    bucket = session.deployment.upload_bucket_name
    prefix = droa.new_upload_prefix()
    # The racer's temporary credentials reach the transit bucket, never the training bucket: the
    # profile label keeps the two locations on different "services", so the transfer streams.
    target = S3Location(bucket, prefix, transit_endpoint(settings), f"droa:{session.username}", session.region)
    manifest, notes = droa_manifest(settings, model, checkpoint, pieces, target, source_client)
    check_checkpoint_model(source_client, model, checkpoint)  # metadata and frozen graph agree

    texts = files_droa_reads(manifest, source_client, source)
    problems = check_import(request.name, request.description, texts)
    files, _ = parse_model_files(texts)
    if files.reward_function is not None:
        params = files.training_params or {}
        track = str(params.get("WORLD_NAME") or "sample")
        clockwise = params.get("TRACK_DIRECTION_CLOCKWISE") is True
        problems += check_reward_function(files.reward_function, track, clockwise)
    blocking = [str(p) for p in problems if p.blocking]
    if blocking:
        raise DrtasksError("DRoA would refuse this model, nothing was written: " + "; ".join(blocking))
    refuse_existing_name(session.api(), request.name)

    target_client = transit_client(session, target.endpoint_url, config.max_concurrency)
    # A fresh uuid prefix holds nothing yet: no listing, which racers' credentials may not allow.
    plan = plan_upload(manifest, source, target, target_client, title="DRoA upload", existing={}, put_only=True)
    plan.notes.append(choice.reason)
    plan.notes += notes
    plan.notes.append(f"then import as '{request.name}' from s3://{bucket}/{prefix}")
    warnings = [str(p) for p in problems if not p.blocking]
    total = sum(item.size for item in manifest)
    if total > UPLOAD_CAP:
        warnings.append(f"the upload is {total / UPLOAD_CAP:.2f} GiB; DRoA's web UI accepts at most 1 GiB")
    plan.notes += [f"warning: {w}" for w in warnings]
    return DroaUploadJob(plan, checkpoint, source_client, target_client, bucket, prefix, warnings)


def execute_droa_upload(job: DroaUploadJob, progress: Progress | None = None) -> list[Check]:
    """Put-only: the racer may not read the bucket back, so the proof is the answers of the writes."""
    return apply(job.plan, job.source_client, job.target_client, None, progress)


def droa_models(session: Any) -> Any:
    """The racer's DRoA models as a DataFrame (name, status, created, id)."""
    import pandas as pd

    rows = [
        {
            "name": model.get("name"),
            "status": model.get("status"),
            "created": next((model[k] for k in ("createdAt", "creationTime", "createdDate") if model.get(k)), None),
            "id": model.get("modelId"),
        }
        for model in session.api().list_models()
    ]
    frame = pd.DataFrame(rows, columns=DROA_MODEL_COLUMNS)
    numeric = pd.api.types.is_numeric_dtype(frame["created"]) and not frame.empty
    # Epoch milliseconds or ISO text, whichever the deployment answers.
    frame["created"] = pd.to_datetime(frame["created"], unit="ms" if numeric else None, utc=True, errors="coerce")
    return frame
