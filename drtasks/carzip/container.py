"""Take the car's model out of the running training container, through the Docker API only.

DRfC's way: the SageMaker training container (its name contains ``algo``) keeps the
model being trained under ``/opt/ml/model``. We copy that directory out with the API's
archive call and keep only what the car needs, reading the tar as untrusted input.
"""

from __future__ import annotations

import io
import json
import os
import re
import tarfile
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Iterable, Iterator

from drtasks.errors import DrtasksError

if TYPE_CHECKING:  # the docker SDK is only needed when a container is really asked for
    import docker
    from docker.models.containers import Container

MODEL_DIR = "/opt/ml/model"
TRAINING_NAME_PART = "algo"  # DRfC finds the training container by this part of its name
METADATA_FILE = "model_metadata.json"
COACH_CHECKPOINT_FILE = ".coach_checkpoint"
CHECKPOINTS_FILE = "deepracer_checkpoints.json"

_PB_NAME = re.compile(r"^model_(\d+)\.pb$")
# Besides the frozen graphs, only these small files are worth keeping from the directory.
_KEPT_FILES = frozenset({METADATA_FILE, COACH_CHECKPOINT_FILE, CHECKPOINTS_FILE})


@dataclass(frozen=True)
class ContainerModel:
    """The frozen graph and metadata taken from a training container."""

    container_name: str
    pb_name: str
    pb_bytes: bytes
    metadata_bytes: bytes
    checkpoint: str | None  # e.g. "19_Step-10822.ckpt" when the container says which
    reason: str = ""  # why this .pb was chosen, for the user


# ---------------------------------------------------------------- engine


def _one_line(err: BaseException) -> str:
    text = getattr(err, "explanation", None) or str(err) or type(err).__name__
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return " ".join(str(text).split())


def connect_docker(base_url: str | None = None) -> "docker.DockerClient":
    """A Docker API client: ``base_url`` if given, else the environment (``DOCKER_HOST``)."""
    import docker

    where = base_url or os.environ.get("DOCKER_HOST") or "the default Docker socket"
    try:
        if base_url:
            client = docker.DockerClient(base_url=base_url)
            client.ping()  # an explicit URL is not contacted until the first call
            return client
        return docker.from_env()
    except Exception as err:  # docker wraps connection failures in several types
        raise DrtasksError(
            f"cannot reach the Docker engine at {where} ({_one_line(err)});"
            " start Docker or use --from s3"
        ) from None


def _api_errors() -> tuple[type[BaseException], ...]:
    import docker.errors
    import requests.exceptions

    return (docker.errors.DockerException, requests.exceptions.RequestException)


# ---------------------------------------------------------------- choosing the container


def training_containers(client: "docker.DockerClient") -> list["Container"]:
    """Running containers whose name contains ``algo``, sorted by name."""
    try:
        running = client.containers.list()
    except _api_errors() as err:
        raise DrtasksError(f"cannot list containers: {_one_line(err)}") from None
    # Filter here rather than with the API's name filter: engines differ in how they match it.
    found = [c for c in running if TRAINING_NAME_PART in c.name]
    return sorted(found, key=lambda c: c.name)


def choose_container(client: "docker.DockerClient", name: str | None = None) -> "Container":
    """The training container to read: ``name`` if given, else the only running ``algo`` one."""
    if name:
        import docker.errors

        try:
            container = client.containers.get(name)
        except docker.errors.NotFound:
            raise DrtasksError(f"--container {name}: no such container") from None
        except _api_errors() as err:
            raise DrtasksError(f"--container {name}: {_one_line(err)}") from None
        if container.status != "running":
            raise DrtasksError(f"--container {name}: container is {container.status}, not running")
        return container
    found = training_containers(client)
    if not found:
        raise DrtasksError(
            f"no running training container (name containing '{TRAINING_NAME_PART}');"
            " is training running? use --from s3 to build from a checkpoint in S3"
        )
    if len(found) > 1:
        names = ", ".join(c.name for c in found)
        raise DrtasksError(f"{len(found)} training containers are running ({names}); choose one with --container NAME")
    return found[0]


# ---------------------------------------------------------------- reading the tar safely


class _ChunkReader(io.RawIOBase):
    """A file object over the API's chunk iterator, so the tar streams instead of filling memory."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks: Iterator[bytes] = iter(chunks)
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._pending:
            try:
                self._pending = next(self._chunks)
            except StopIteration:
                return 0
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


def _relative_name(member: tarfile.TarInfo, root: str) -> str:
    """The member's path below ``root``, refusing anything that could escape it."""
    name = member.name
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if name.startswith("/") or ".." in parts:
        raise DrtasksError(f"refusing unsafe path {name!r} in the container's {MODEL_DIR}")
    if not parts or parts[0] != root:
        raise DrtasksError(f"unexpected path {name!r} outside '{root}/' in the container's archive")
    return "/".join(parts[1:])


def read_model_tar(data: bytes | IO[bytes], root: str = "model") -> dict[str, bytes]:
    """Read the archive of a model directory (members ``<root>/...``) as untrusted input.

    Refuses absolute paths, ``..``, hard and symbolic links, devices and FIFOs anywhere in
    it. Returns the files the car archive can need, by name below ``root``: every
    ``model_N.pb`` plus the metadata and checkpoint pointers found at its top level.
    """
    stream = io.BytesIO(data) if isinstance(data, (bytes, bytearray)) else data
    kept: dict[str, bytes] = {}
    try:
        # "r|" reads strictly forward: the 45 MiB checkpoint files are skipped, never held.
        with tarfile.open(fileobj=stream, mode="r|") as tar:
            for member in tar:
                relative = _relative_name(member, root)
                if member.isdir():
                    continue
                if member.issym() or member.islnk():
                    raise DrtasksError(
                        f"refusing link {member.name!r} -> {member.linkname!r} in the container's {MODEL_DIR}"
                    )
                if not member.isfile():
                    raise DrtasksError(f"refusing special file {member.name!r} in the container's {MODEL_DIR}")
                if relative in _KEPT_FILES or _PB_NAME.match(relative):
                    extracted = tar.extractfile(member)
                    kept[relative] = extracted.read() if extracted else b""
    except (tarfile.TarError, EOFError) as err:
        raise DrtasksError(f"unreadable archive of the container's {MODEL_DIR}: {err}") from None
    return kept


# ---------------------------------------------------------------- choosing the frozen graph


def _checkpoint_number(checkpoint: str) -> int | None:
    head = checkpoint.strip().split("_", 1)[0]
    return int(head) if head.isdigit() else None


def _pointed_checkpoints(files: dict[str, bytes]) -> list[tuple[str, str]]:
    """(checkpoint name, where it came from), most trusted first."""
    pointers: list[tuple[str, str]] = []
    coach = files.get(COACH_CHECKPOINT_FILE, b"").decode("utf-8", "replace").strip()
    if coach:
        pointers.append((coach.splitlines()[0].strip(), COACH_CHECKPOINT_FILE))
    try:
        checkpoints = json.loads(files.get(CHECKPOINTS_FILE, b"") or b"null")
        last = checkpoints["last_checkpoint"]["name"]
        if isinstance(last, str) and last:
            pointers.append((last, f"last_checkpoint of {CHECKPOINTS_FILE}"))
    except (ValueError, TypeError, KeyError):
        pass  # a missing or half-written pointer file just means: fall back to the highest N
    return pointers


def pick_model(files: dict[str, bytes], container_name: str) -> ContainerModel:
    """Choose the frozen graph of the current checkpoint among the files of ``/opt/ml/model``."""
    graphs = {int(m.group(1)): name for name in files if (m := _PB_NAME.match(name))}
    where = f"container {container_name}: {MODEL_DIR}"
    if not graphs:
        raise DrtasksError(f"{where} holds no model_N.pb yet (no checkpoint saved?); use --from s3")
    if METADATA_FILE not in files:
        raise DrtasksError(f"{where} has no {METADATA_FILE}")
    chosen: tuple[int, str | None, str] | None = None
    for checkpoint, source in _pointed_checkpoints(files):
        number = _checkpoint_number(checkpoint)
        if number in graphs:
            chosen = (number, checkpoint, f"checkpoint {checkpoint} named in {source}")
            break
    if chosen is None:
        highest = max(graphs)
        reason = "the only frozen graph" if len(graphs) == 1 else f"the highest of {len(graphs)} frozen graphs"
        chosen = (highest, None, reason)
    number, checkpoint, reason = chosen
    pb_name = graphs[number]
    return ContainerModel(
        container_name=container_name,
        pb_name=pb_name,
        pb_bytes=files[pb_name],
        metadata_bytes=files[METADATA_FILE],
        checkpoint=checkpoint,
        reason=f"{pb_name}: {reason}",
    )


# ---------------------------------------------------------------- the whole step


def model_from_container(
    container_name: str | None = None,
    *,
    docker_client: "docker.DockerClient | None" = None,
    base_url: str | None = None,
) -> ContainerModel:
    """Find the training container, copy ``/opt/ml/model`` out and pick the car's files."""
    client = docker_client or connect_docker(base_url)
    container = choose_container(client, container_name)
    import docker.errors

    try:
        chunks, _stat = container.get_archive(MODEL_DIR)
        files = read_model_tar(io.BufferedReader(_ChunkReader(chunks)), root=MODEL_DIR.rsplit("/", 1)[-1])
    except docker.errors.NotFound:
        raise DrtasksError(f"container {container.name} has no {MODEL_DIR}") from None
    except _api_errors() as err:
        raise DrtasksError(f"copying {MODEL_DIR} from container {container.name}: {_one_line(err)}") from None
    return pick_model(files, container.name)
