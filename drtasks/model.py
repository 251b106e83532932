"""The trained model in the training bucket: its objects, its checkpoints, and picking one."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Sequence

from drtasks.errors import DrtasksError, shorten
from drtasks.s3 import ObjectInfo, S3Location, list_objects

CHECKPOINT_INDEX = "model/deepracer_checkpoints.json"
# The folders an upload, an import or a car archive reads; simtraces and videos stay unlisted.
MODEL_FOLDERS = ("model", "ip")
_CHECKPOINT_FILE = re.compile(r"^model/(\d+)_Step-(\d+)\.ckpt\.")


@dataclass(frozen=True)
class Checkpoint:
    number: int
    name: str  # e.g. "19_Step-10822.ckpt"
    entry: dict[str, Any]  # its entry in deepracer_checkpoints.json (or one made for it)

    @property
    def frozen_graph(self) -> str:
        return f"model/model_{self.number}.pb"

    @property
    def data_files(self) -> list[str]:
        return [f"model/{self.name}.{suffix}" for suffix in ("data-00000-of-00001", "index", "meta")]


def read_if_present(client: Any, bucket: str, key: str) -> bytes | None:
    from botocore.exceptions import ClientError

    try:
        return client.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
            return None
        raise


def checkpoint_number(name: str) -> int:
    head = name.split("_", 1)[0] if isinstance(name, str) else ""
    if not head.isdigit():
        raise DrtasksError(f"checkpoint name {shorten(name)} does not start with a number")
    return int(head)


@dataclass
class SourceModel:
    """One listing of the model prefix plus its checkpoint index, read once and queried after."""

    location: S3Location
    objects: dict[str, ObjectInfo]  # relative key -> object
    index: dict[str, Any] | None
    extra: dict[str, ObjectInfo] = field(default_factory=dict)  # full key -> object, outside the prefix

    @classmethod
    def load(cls, client: Any, location: S3Location, folders: Sequence[str] = MODEL_FOLDERS) -> "SourceModel":
        """List the files at the model's root and in ``folders`` only, never the simtraces beside them.

        The listings and the checkpoint index are read in parallel: one round trip, whatever the
        number of other objects under the prefix.
        """
        from concurrent.futures import ThreadPoolExecutor

        from drtasks.s3 import list_folder_files, s3_errors

        with s3_errors(location), ThreadPoolExecutor(len(folders) + 2) as pool:
            body = pool.submit(read_if_present, client, location.bucket, location.key(CHECKPOINT_INDEX))
            root = pool.submit(lambda: list(list_folder_files(client, location.bucket, location.prefix)))
            inside = [pool.submit(lambda f=f: list(list_objects(client, location.bucket, location.key(f.strip("/"))))) for f in folders]
            listed = [*root.result(), *(info for future in inside for info in future.result())]
            objects = {location.relative(o.key): o for o in listed}
            if not objects:
                raise DrtasksError(f"no model at {location.url}: the prefix holds no objects")
            index = None
            raw = body.result()
            if raw is not None:
                try:
                    index = json.loads(raw)
                except ValueError:
                    raise DrtasksError(f"{location.url}/{CHECKPOINT_INDEX} is not valid JSON") from None
                if not isinstance(index, dict):
                    raise DrtasksError(
                        f"{location.url}/{CHECKPOINT_INDEX} is a JSON {type(index).__name__}, not an object"
                        " with last_checkpoint and best_checkpoint"
                    )
        return cls(location, objects, index)

    def available_numbers(self) -> list[int]:
        numbers = {int(m.group(1)) for key in self.objects if (m := _CHECKPOINT_FILE.match(key))}
        return sorted(numbers)

    def _checkpoint_from_index(self, which: str) -> Checkpoint:
        if self.index is None:
            raise DrtasksError(f"missing {self.location.url}/{CHECKPOINT_INDEX}: cannot tell the {which} checkpoint")
        entry = self.index.get(f"{which}_checkpoint")
        if not isinstance(entry, dict) or not entry.get("name"):
            raise DrtasksError(f"{self.location.url}/{CHECKPOINT_INDEX} names no {which}_checkpoint")
        name = entry["name"]
        if not isinstance(name, str) or "/" in name or not name.strip():
            raise DrtasksError(
                f"{self.location.url}/{CHECKPOINT_INDEX}: {which}_checkpoint.name is {shorten(name)}, not a checkpoint name"
            )
        return Checkpoint(checkpoint_number(name), name, dict(entry))

    def select(self, policy: str | int) -> Checkpoint:
        """The checkpoint for 'last', 'best' or a number (best-by: drtasks.checkpoint_choice)."""
        if not isinstance(policy, (str, int)):
            raise DrtasksError(f"checkpoint policy {policy} needs the training metrics: choose through drtasks.checkpoint_choice")
        if policy in ("last", "best"):
            return self._checkpoint_from_index(str(policy))
        number = int(policy)
        names = sorted({key.split("/", 1)[1].split(".ckpt", 1)[0] + ".ckpt" for key in self.objects if (m := _CHECKPOINT_FILE.match(key)) and int(m.group(1)) == number})
        if not names:
            available = ", ".join(map(str, self.available_numbers())) or "none"
            raise DrtasksError(f"checkpoint {number} is not in {self.location.url}/model/ (available: {available})")
        name = names[-1]
        for entry in (self.index or {}).values():
            if isinstance(entry, dict) and entry.get("name") == name:
                return Checkpoint(number, name, dict(entry))
        # Not last or best: date the entry by when the checkpoint was written, so that
        # uploading the same checkpoint twice yields the same file.
        written = self.objects[f"model/{name}.index"].last_modified if f"model/{name}.index" in self.objects else None
        entry = {"name": name, "time_stamp": written or 0.0}
        return Checkpoint(number, name, entry)

    def missing(self, keys: list[str]) -> list[str]:
        return [key for key in keys if key not in self.objects]
