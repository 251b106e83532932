"""The physical car's model archive (``inv car-zip``): build, validate, name, and take from a container."""

from __future__ import annotations

from drtasks.carzip.archive import (
    ARCHIVE_SUFFIX,
    CAR_UPLOAD_LIMIT_BYTES,
    METADATA_MEMBER,
    PB_MEMBER,
    ArchiveMember,
    archive_file_name,
    archive_members,
    build_car_archive,
    car_model_name,
    validate_car_archive,
    validate_metadata,
)

# container.py imports the docker SDK lazily, so importing it here stays cheap.
from drtasks.carzip.container import ContainerModel, model_from_container

__all__ = [
    "ARCHIVE_SUFFIX",
    "CAR_UPLOAD_LIMIT_BYTES",
    "METADATA_MEMBER",
    "PB_MEMBER",
    "ArchiveMember",
    "ContainerModel",
    "archive_file_name",
    "archive_members",
    "build_car_archive",
    "car_model_name",
    "model_from_container",
    "validate_car_archive",
    "validate_metadata",
]
