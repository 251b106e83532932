"""A DRfC-like DR_DIR for tests: system.env and run.env pointing at the test S3 server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

UPLOAD_PREFIX = "race-model-1"


def write_env_files(
    dr_dir: Path, s3_server: Any, model: Any, upload_bucket: str, *, system: str = "", run: str = "", upload_prefix: str = UPLOAD_PREFIX
) -> Path:
    """The training bucket holds ``model``; uploads go to ``upload_bucket`` on the same server.

    ``system`` and ``run`` are extra lines appended to each file.
    """
    (dr_dir / "system.env").write_text(
        "DR_CLOUD=local\n"
        f"DR_LOCAL_S3_ENDPOINT_URL={s3_server.endpoint_url}\n"
        f"DR_LOCAL_S3_PROFILE={s3_server.aws_profile}\n"
        f"DR_LOCAL_S3_BUCKET={model.bucket}\n"
        f"DR_UPLOAD_S3_ENDPOINT_URL={s3_server.endpoint_url}\n"
        f"DR_UPLOAD_S3_PROFILE={s3_server.aws_profile}\n"
        f"DR_UPLOAD_S3_BUCKET={upload_bucket}\n" + system
    )
    (dr_dir / "run.env").write_text(
        f"DR_LOCAL_S3_MODEL_PREFIX={model.prefix}\n"
        f"DR_UPLOAD_S3_PREFIX={upload_prefix}\n"
        "DR_CAR_NAME=Speedy\nDR_RACE_TYPE=TIME_TRIAL\n" + run
    )
    return dr_dir
