"""Typed answers drawn from Settings: where the model is, where it goes, which checkpoint."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Union
from urllib.parse import urlsplit

from drtasks.config.settings import Settings
from drtasks.errors import DrtasksError, shorten
from drtasks.s3 import S3Location

# How best-by ranks the evaluation episodes of the kept checkpoints (DR_TRAIN_BEST_MODEL_METRIC's names).
BEST_BY_METRICS = ("progress", "reward", "laptime")


@dataclass(frozen=True)
class BestBy:
    """Choose among the kept checkpoints by their evaluation episodes (drtasks.checkpoint_choice)."""

    metric: str

    def __str__(self) -> str:
        return f"best-by:{self.metric}"  # the form DR_UPLOAD_CHECKPOINT and profiles hold


CheckpointPolicy = Union[Literal["last", "best"], int, BestBy]
POLICY_FORMS = "'last', 'best', a checkpoint number or 'best-by:progress|reward|laptime'"

LOCAL_MINIO = "http://localhost:9000"


def _where(settings: Settings, key: str) -> str:
    origin = settings.origin(key)
    return f" ({origin})" if origin else ""


def endpoint_url(settings: Settings, key: str) -> str | None:
    """The endpoint URL in ``key``, checked: http(s)://host[:port][/path], else one line naming it."""
    value = settings.get(key)
    if value is None:
        return None
    try:
        parsed = urlsplit(value)
        parsed.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        parsed = None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.hostname or any(c.isspace() for c in value):
        raise DrtasksError(
            f"{key} is {shorten(value)}{_where(settings, key)}; expected an endpoint URL such as http://localhost:9000"
        )
    return value


def source_endpoint(settings: Settings) -> str | None:
    explicit = endpoint_url(settings, "DR_LOCAL_S3_ENDPOINT_URL")
    if explicit:
        return explicit
    cloud = (settings.get("DR_CLOUD") or "aws").lower()
    if cloud in ("local", "azure"):
        return LOCAL_MINIO
    if cloud == "remote":
        settings.require("DR_REMOTE_MINIO_URL", "DR_CLOUD=remote needs the MinIO url in DR_REMOTE_MINIO_URL")
        return endpoint_url(settings, "DR_REMOTE_MINIO_URL")
    if cloud == "aws":
        return None
    raise DrtasksError(
        f"DR_CLOUD is {shorten(settings.get('DR_CLOUD'))}{_where(settings, 'DR_CLOUD')}; expected aws, local, remote or azure"
    )


def _present(settings: Settings, key: str) -> str | None:
    """The raw value of ``key`` when some layer set it, even to an empty string."""
    setting = settings.values.get(key)
    return setting.value if setting is not None else None


def prefix(settings: Settings, key: str, hint: str) -> str:
    """An S3 prefix from ``key``, without its slashes; never empty (the bucket root).

    An empty prefix would make a listing, a wipe or a write cover the whole bucket, so a value that
    is empty once its slashes are gone is refused, naming where it came from.
    """
    raw = _present(settings, key)
    if raw is None:
        settings.require(key, hint)  # names the DR_DIR and the files that were read
    cleaned = raw.strip("/")
    if not cleaned:
        raise DrtasksError(
            f"{key} is {shorten(raw)}{_where(settings, key)}: an empty prefix means the whole bucket; refusing"
        )
    if any(ord(c) < 32 or ord(c) == 127 for c in raw):
        raise DrtasksError(f"{key} is {shorten(raw)}{_where(settings, key)}; a prefix has no control characters")
    return cleaned


def target_prefix(value: str, origin: str) -> str:
    """A prefix computed from settings (e.g. the incremented upload prefix), refused when empty."""
    cleaned = value.strip("/")
    if not cleaned:
        raise DrtasksError(f"{origin} is {shorten(value)}: an empty prefix means the whole bucket; refusing")
    return cleaned


def _region(settings: Settings, key: str) -> str:
    return settings.get(key) or settings.get("DR_AWS_APP_REGION") or "us-east-1"


def bucket(settings: Settings, key: str, hint: str) -> str:
    value = settings.require(key, hint)
    if "/" in value or any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in value):
        raise DrtasksError(f"{key} is {shorten(value)}{_where(settings, key)}; a bucket name has no '/' or spaces")
    return value


def source_location(settings: Settings) -> S3Location:
    return S3Location(
        bucket=bucket(settings, "DR_LOCAL_S3_BUCKET", "set it in system.env or the profile's source.bucket"),
        prefix=prefix(settings, "DR_LOCAL_S3_MODEL_PREFIX", "set it in run.env or the profile's source.prefix"),
        endpoint_url=source_endpoint(settings),
        aws_profile=settings.get("DR_LOCAL_S3_PROFILE"),
        region=_region(settings, "DR_LOCAL_S3_REGION"),
    )


def upload_location(settings: Settings, local: bool = False) -> S3Location:
    """The upload target; ``local`` puts it in the training bucket, on the training endpoint (DRfC's -L)."""
    target = prefix(settings, "DR_UPLOAD_S3_PREFIX", "set it in run.env, the profile's upload.prefix or --prefix")
    if local:
        return source_location(settings).with_prefix(target)
    return S3Location(
        bucket=bucket(settings, "DR_UPLOAD_S3_BUCKET", "set it in system.env or the profile's upload.bucket"),
        prefix=target,
        endpoint_url=endpoint_url(settings, "DR_UPLOAD_S3_ENDPOINT_URL"),
        aws_profile=settings.get("DR_UPLOAD_S3_PROFILE"),
        region=_region(settings, "DR_UPLOAD_S3_REGION"),
    )


def parse_best_by(metric: str, where: str) -> BestBy:
    value = metric.strip().lower()
    if value not in BEST_BY_METRICS:
        raise DrtasksError(f"{where}: unknown best-by metric {metric.strip()!r}; choose progress, reward or laptime")
    return BestBy(value)


def parse_checkpoint(text: str, where: str) -> CheckpointPolicy:
    """'last', 'best', a number, or 'best-by:METRIC' (also written 'best-by METRIC')."""
    value = text.strip().lower()
    if value in ("last", "best"):
        return value  # type: ignore[return-value]
    if value.isdigit():
        return int(value)
    if value.startswith("best-by"):
        return parse_best_by(value[len("best-by") :].lstrip(" :"), where)
    raise DrtasksError(f"{where}: checkpoint must be {POLICY_FORMS} (got {shorten(text)})")


def checkpoint_policy(settings: Settings) -> CheckpointPolicy:
    return parse_checkpoint(settings.get("DR_UPLOAD_CHECKPOINT") or "last", f"DR_UPLOAD_CHECKPOINT{_where(settings, 'DR_UPLOAD_CHECKPOINT')}")


def reward_key(settings: Settings) -> str:
    key = settings.get("DR_LOCAL_S3_REWARD_KEY")
    if key is None:
        return "custom_files/reward_function.py"
    if not key.strip("/") or key.endswith("/"):
        where = _where(settings, "DR_LOCAL_S3_REWARD_KEY")
        raise DrtasksError(f"DR_LOCAL_S3_REWARD_KEY is {shorten(key)}{where}; expected the key of a file, such as custom_files/reward_function.py")
    return key.strip("/")


def metrics_prefix(settings: Settings) -> str:
    """DR_LOCAL_S3_METRICS_PREFIX, else ``<model prefix>/metrics``; never the bucket root."""
    if settings.get("DR_LOCAL_S3_METRICS_PREFIX") is not None:
        return prefix(settings, "DR_LOCAL_S3_METRICS_PREFIX", "")
    return f"{source_location(settings).prefix}/metrics"


# -- backups ----------------------------------------------------------------------------------------

BackupPlace = Union[S3Location, Path]  # an S3 folder, or a folder of this machine


def parse_s3_url(text: str, where: str) -> tuple[str, str]:
    """(bucket, prefix) of ``s3://bucket[/prefix]``."""
    rest = text.strip()[len("s3://") :]
    bucket, _, prefix = rest.partition("/")
    if not bucket or "/" in bucket:
        raise DrtasksError(f"{where}: {text.strip()!r} names no bucket; write s3://bucket/prefix")
    return bucket, prefix.strip("/")


def is_s3_url(text: str) -> bool:
    return text.strip().lower().startswith("s3://")


def backup_service(settings: Settings, bucket: str, prefix: str) -> S3Location:
    """An S3 folder of backups, reached as DR_BACKUP_S3_* say, else as the upload bucket is.

    DRfC reaches any ``s3://`` model it downloads with the upload bucket's profile; a backup kept
    elsewhere (another endpoint, account or region) names its own.
    """
    return S3Location(
        bucket=bucket,
        prefix=prefix.strip("/"),
        endpoint_url=settings.get("DR_BACKUP_S3_ENDPOINT_URL") or settings.get("DR_UPLOAD_S3_ENDPOINT_URL"),
        aws_profile=settings.get("DR_BACKUP_S3_PROFILE") or settings.get("DR_UPLOAD_S3_PROFILE"),
        region=settings.get("DR_BACKUP_S3_REGION") or _region(settings, "DR_UPLOAD_S3_REGION"),
    )


def upload_service(settings: Settings, bucket: str, prefix: str) -> S3Location:
    """Any S3 folder reached as the upload bucket is (DRfC's dr-download-model -s)."""
    return S3Location(bucket, prefix.strip("/"), settings.get("DR_UPLOAD_S3_ENDPOINT_URL"), settings.get("DR_UPLOAD_S3_PROFILE"), _region(settings, "DR_UPLOAD_S3_REGION"))


def backup_place(text: str, settings: Settings, where: str) -> BackupPlace:
    """``s3://bucket/prefix`` on the backup service, or a folder of this machine."""
    if is_s3_url(text):
        return backup_service(settings, *parse_s3_url(text, where))
    if not text.strip():
        raise DrtasksError(f"{where}: empty; write s3://bucket/prefix or a folder")
    return Path(text.strip()).expanduser()


def backup_root(settings: Settings) -> BackupPlace | None:
    """Where backups go (DR_BACKUP_TO: the profile's backup.to, or --to); None when unset.

    Each model's backup is the folder ``<root>/<model prefix>/``.
    """
    text = settings.get("DR_BACKUP_TO")
    if not text:
        return None
    origin = settings.origin("DR_BACKUP_TO")
    where = origin.detail if origin and origin.layer == "flag" and origin.detail else f"DR_BACKUP_TO{_where(settings, 'DR_BACKUP_TO')}"
    return backup_place(text, settings, where)


def custom_files_prefix(settings: Settings) -> str:
    return (settings.get("DR_LOCAL_S3_CUSTOM_FILES_PREFIX") or "custom_files").strip("/")


def flag_on(settings: Settings, key: str) -> bool:
    return (settings.get(key) or "").strip().lower() in ("1", "true", "yes", "on")
