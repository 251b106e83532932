"""What a trained model must hold before it is shipped anywhere: checked before anything is written.

A zero-byte checkpoint file or frozen graph, or a model_metadata.json without a usable action space,
would upload, verify (the bytes match the source) and then fail on the race server, in the console
or on the car. Sizes come from the listing already made; only the metadata file is read.
"""

from __future__ import annotations

from typing import Any

from drtasks.errors import DrtasksError
from drtasks.model import Checkpoint, SourceModel
from drtasks.s3 import s3_errors

METADATA = "model/model_metadata.json"


def empty_files(model: SourceModel, checkpoint: Checkpoint) -> list[str]:
    """The checkpoint's data, index and meta files and its frozen graph that exist but hold no byte."""
    keys = [*checkpoint.data_files, checkpoint.frozen_graph]
    return [key for key in keys if key in model.objects and model.objects[key].size == 0]


def check_metadata(data: bytes, where: str) -> dict[str, Any]:
    """model_metadata.json parsed, with an action space the simapp, the consoles and the car can use."""
    from drtasks.carzip.archive import validate_metadata

    return validate_metadata(data, where)


def check_model(client: Any, model: SourceModel, checkpoint: Checkpoint) -> None:
    """Refuse a broken model (one line, nothing written); missing files are reported by the manifest."""
    empty = empty_files(model, checkpoint)
    if empty:
        listed = ", ".join(model.location.key(key) for key in empty)
        raise DrtasksError(f"the model is broken, nothing was written: zero-byte {listed}")
    if METADATA in model.objects:
        with s3_errors(model.location):
            data = client.get_object(Bucket=model.location.bucket, Key=model.location.key(METADATA))["Body"].read()
        check_metadata(data, f"{model.location.url}/{METADATA}")
