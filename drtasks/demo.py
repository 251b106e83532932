"""inv demo: the whole job on the embedded S3, with nothing but this machine."""

from __future__ import annotations

import hashlib
from pathlib import Path

from drtasks.locals3 import LocalS3Info

SOURCE_BUCKET = "drtasks-demo-training"
UPLOAD_BUCKET = "drtasks-demo-upload"
MODEL_PREFIX = "demo-model"
UPLOAD_PREFIX = "demo-model-race-1"
MiB = 1024 * 1024


def demo_settings(info: LocalS3Info) -> dict[str, str]:
    """Every setting that decides where the demo reads and writes: all on the embedded server."""
    return {
        "DR_LOCAL_S3_BUCKET": SOURCE_BUCKET,
        "DR_LOCAL_S3_MODEL_PREFIX": MODEL_PREFIX,
        "DR_LOCAL_S3_ENDPOINT_URL": info.endpoint_url,
        "DR_LOCAL_S3_PROFILE": info.profile,
        "DR_LOCAL_S3_REWARD_KEY": "custom_files/reward_function.py",
        "DR_LOCAL_S3_METRICS_PREFIX": f"{MODEL_PREFIX}/metrics",
        "DR_UPLOAD_S3_BUCKET": UPLOAD_BUCKET,
        "DR_UPLOAD_S3_PREFIX": UPLOAD_PREFIX,
        "DR_UPLOAD_S3_ENDPOINT_URL": info.endpoint_url,
        "DR_UPLOAD_S3_PROFILE": info.profile,
        "DR_WORLD_NAME": "2022_april_open",
        "DR_CAR_NAME": "DemoCar",
    }


def profile_text(info: LocalS3Info) -> str:
    return (
        "# Written by `inv demo`: the sample model on drtasks' embedded local S3.\n"
        "description: Sample model on the embedded local S3 (inv demo)\n"
        "source:\n"
        f"  bucket: {SOURCE_BUCKET}\n  prefix: {MODEL_PREFIX}\n  endpoint_url: {info.endpoint_url}\n  aws_profile: {info.profile}\n"
        "upload:\n"
        f"  bucket: {UPLOAD_BUCKET}\n  prefix: {UPLOAD_PREFIX}\n  endpoint_url: {info.endpoint_url}\n  aws_profile: {info.profile}\n"
        "checkpoint: last\n"
        "car_zip:\n  source: s3\n"
        "env:\n  DR_WORLD_NAME: 2022_april_open\n  DR_CAR_NAME: DemoCar\n"
    )


_STAMP = "# drtasks-demo-sha256: "


def _stamped(body: str) -> str:
    return body + _STAMP + hashlib.sha256(body.encode()).hexdigest() + "\n"


def _edited(text: str) -> bool:
    """True when the file is not exactly what `inv demo` wrote (its stamp no longer matches)."""
    body, _, stamp = text.rpartition(_STAMP)
    return not stamp or stamp.strip() != hashlib.sha256(body.encode()).hexdigest()


def write_profile(dr_dir: Path, info: LocalS3Info) -> tuple[Path, bool]:
    """(path, written): the demo profile is written when missing or still as the demo wrote it.

    A profile the user edited is kept as it is.
    """
    path = dr_dir / "profiles" / "demo.yaml"
    if path.exists():
        try:
            if _edited(path.read_text(encoding="utf-8")):
                return path, False
        except (OSError, UnicodeDecodeError):
            return path, False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(_stamped(profile_text(info)), encoding="utf-8")
    return path, True


def seed_if_missing(info: LocalS3Info) -> bool:
    """Seed the sample model once; True when it was written now."""
    from drtasks.s3 import make_client
    from drtasks.sample_model import seed_model

    location = info.location(SOURCE_BUCKET, MODEL_PREFIX)
    client = make_client(location)
    listed = client.list_objects_v2(Bucket=SOURCE_BUCKET, Prefix=f"{MODEL_PREFIX}/model/deepracer_checkpoints.json")
    if listed.get("KeyCount", 0):
        return False
    seed_model(client, SOURCE_BUCKET, MODEL_PREFIX, data_size=6 * MiB, pb_size=3 * MiB, meta_size=512 * 1024)
    return True
