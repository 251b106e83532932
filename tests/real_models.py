"""Real TensorFlow models for tests: generated once per session, seeded into S3 on demand.

``real_models`` (session) writes each variant the first time a test asks for it, into one
temporary directory, with ``drtasks.real_model``; TensorFlow is imported then, not before.
``real_models.seed(client, bucket, prefix, variant)`` puts a variant into a bucket as a trained
model (the sample model's text files around the real checkpoints and frozen graphs).

``real_source`` (session) is the camera model seeded once into its own bucket on ``s3_server``:
tests only read it (they upload from it into their own buckets), so nobody pays for it twice.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from drtasks.sample_model import SeededModel, model_metadata, seed_model

# TensorFlow reads this when it is imported, in this process and in every command the tests run.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

REAL_PREFIX = "real-camera-model"


@dataclass(frozen=True)
class Variant:
    metadata: dict[str, Any]
    checkpoints: tuple[int, ...]


VARIANTS = {
    # The model most tests use: the shallow camera network at its real size, best != last.
    "camera": Variant(model_metadata(actions=6), (10, 13, 16)),
    "stereo-lidar": Variant(model_metadata(("STEREO_CAMERAS", "LIDAR"), actions=5), (4,)),
    "camera-sector-lidar": Variant(model_metadata(("FRONT_FACING_CAMERA", "SECTOR_LIDAR"), actions=7), (4,)),
    "continuous": Variant(model_metadata(continuous=True), (4,)),
    "sac": Variant(model_metadata(continuous=True, algorithm="sac"), (4,)),
    "legacy-observation": Variant({**model_metadata(actions=3), "sensor": ["observation"]}, (2,)),
}


class RealModels:
    """Each variant generated at most once, on first use, under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._models: dict[str, Any] = {}
        self._lock = threading.Lock()

    def model(self, variant: str) -> Any:
        """The variant's ``drtasks.real_model.RealModel``."""
        from drtasks.real_model import write_real_model

        with self._lock:
            if variant not in self._models:
                spec = VARIANTS[variant]
                self._models[variant] = write_real_model(self.root / variant, spec.metadata, checkpoints=spec.checkpoints)
            return self._models[variant]

    def seed(self, client: Any, bucket: str, prefix: str, variant: str = "camera", **kwargs: Any) -> SeededModel:
        """The variant as a trained model at ``s3://bucket/prefix/`` (best and last as generated)."""
        real = self.model(variant)
        return seed_model(client, bucket, prefix, checkpoints=tuple(real.checkpoints), best=real.best, files=real.files, **kwargs)


@pytest.fixture(scope="session")
def real_models(tmp_path_factory: pytest.TempPathFactory) -> RealModels:
    return RealModels(tmp_path_factory.mktemp("real-models"))


class RealSource(NamedTuple):
    model: SeededModel
    real: Any  # the RealModel it was seeded from
    location: Any  # drtasks.s3.S3Location


@pytest.fixture(scope="session")
def real_source(real_models: RealModels, s3_server: Any) -> RealSource:
    """The real camera model in its own bucket; read it, never change it."""
    bucket = s3_server.new_bucket()
    seeded = real_models.seed(s3_server.client(), bucket, REAL_PREFIX, "camera")
    return RealSource(seeded, real_models.model("camera"), s3_server.location(bucket, REAL_PREFIX))
