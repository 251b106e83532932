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
from typing import IO, TYPE_CHECKING, Callable, Iterable, Iterator, Mapping

from drtasks.carzip.archive import CAR_UPLOAD_LIMIT_BYTES
from drtasks.errors import DrtasksError, shorten

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
        raise DrtasksError(f"refusing unsafe path {shorten(name)} in the container's {MODEL_DIR}")
    if not parts or parts[0] != root:
        raise DrtasksError(f"unexpected path {shorten(name)} outside '{root}/' in the container's archive")
    return "/".join(parts[1:])


# Bounds of the reader. A frozen graph over the car's upload limit can never reach the car; the
# pointer files and the metadata are a few hundred bytes. Graphs are held only while they could
# still be the chosen one, and never more than MAX_HELD_BYTES at once.
MAX_GRAPH_BYTES = CAR_UPLOAD_LIMIT_BYTES
MAX_SMALL_FILE_BYTES = 1024 * 1024
MAX_HELD_BYTES = 2 * CAR_UPLOAD_LIMIT_BYTES


@dataclass
class TarContents:
    """What the reader kept of ``/opt/ml/model``: the small files and the chosen frozen graph."""

    files: dict[str, bytes]
    graphs_seen: int  # every model_N.pb in the directory, kept or not


def _pointer(file_name: str, content: bytes) -> tuple[str, str] | None:
    """(checkpoint name, where it came from) named by one pointer file, or None when unusable."""
    if file_name == COACH_CHECKPOINT_FILE:
        text = content.decode("utf-8", "replace").strip()
        return (text.splitlines()[0].strip(), COACH_CHECKPOINT_FILE) if text else None
    try:
        last = json.loads(content or b"null")["last_checkpoint"]["name"]
    except (ValueError, TypeError, KeyError):
        return None  # a missing or half-written pointer file just means: fall back to the highest N
    return (last, f"last_checkpoint of {CHECKPOINTS_FILE}") if isinstance(last, str) and last else None


_POINTER_FILES = (COACH_CHECKPOINT_FILE, CHECKPOINTS_FILE)  # most trusted first


def _choose(numbers: Iterable[int], pointers: list[tuple[str, str] | None]) -> tuple[int, str | None, str]:
    """(number, checkpoint, reason): the first pointer whose graph exists, else the highest number."""
    available = set(numbers)
    for pointed in pointers:
        if pointed is None:
            continue
        number = _checkpoint_number(pointed[0])
        if number in available:
            return number, pointed[0], f"checkpoint {pointed[0]} named in {pointed[1]}"
    highest = max(available)
    reason = "the only frozen graph" if len(available) == 1 else f"the highest of {len(available)} frozen graphs"
    return highest, None, reason


class _GraphChooser:
    """Follows the tar as it streams and holds only the graphs that can still be chosen."""

    def __init__(self) -> None:
        self.pointers: dict[str, tuple[str, str] | None] = {}  # pointer file -> what it names, once read
        self.seen: dict[int, int] = {}  # graph number -> size
        self.held: dict[int, bytes] = {}

    def could_be_chosen(self, number: int) -> bool:
        for file_name in _POINTER_FILES:
            if file_name not in self.pointers:
                return True  # not read yet: it may still name this graph
            pointed = self.pointers[file_name]
            wanted = _checkpoint_number(pointed[0]) if pointed else None
            if wanted is None:
                continue
            if wanted == number:
                return True
            if wanted in self.seen:
                return False  # that pointer's graph exists, and it wins
        return number == max(self.seen)  # the fallback: the highest number

    def prune(self) -> None:
        for number in [n for n in self.held if not self.could_be_chosen(n)]:
            del self.held[number]

    def pointer(self, file_name: str, content: bytes) -> None:
        self.pointers[file_name] = _pointer(file_name, content)
        self.prune()

    def graph(self, number: int, size: int, read: "Callable[[], bytes]") -> None:
        self.seen[number] = size
        if size <= MAX_GRAPH_BYTES and self.could_be_chosen(number):
            if sum(len(g) for g in self.held.values()) + size > MAX_HELD_BYTES:
                raise DrtasksError(
                    f"the container's {MODEL_DIR} holds more than {MAX_HELD_BYTES // 1_000_000} MB of frozen graphs"
                    " before its checkpoint pointers; use --from s3"
                )
            self.held[number] = read()
        self.prune()

    def choice(self) -> tuple[int, str | None, str] | None:
        if not self.seen:
            return None
        return _choose(self.seen, [self.pointers.get(name) for name in _POINTER_FILES])


def _refuse_unsafe(member: tarfile.TarInfo) -> None:
    if member.issym() or member.islnk():
        raise DrtasksError(
            f"refusing link {shorten(member.name)} -> {shorten(member.linkname)} in the container's {MODEL_DIR}"
        )
    if member.issparse() or any(key.startswith("GNU.sparse.") for key in member.pax_headers):
        # A sparse member reads back as its full size of zeros: kilobytes that expand to gigabytes.
        raise DrtasksError(f"refusing sparse file {shorten(member.name)} in the container's {MODEL_DIR}")
    if not member.isfile():
        raise DrtasksError(f"refusing special file {shorten(member.name)} in the container's {MODEL_DIR}")


def _read(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    extracted = tar.extractfile(member)
    return extracted.read(member.size) if extracted else b""


def read_model_tar(data: bytes | IO[bytes], root: str = "model") -> TarContents:
    """Read the archive of a model directory (members ``<root>/...``) as untrusted input.

    Refuses absolute paths, ``..``, hard and symbolic links, sparse files, devices and FIFOs
    anywhere in it. Keeps, by name below ``root``: model_metadata.json and the checkpoint pointers
    at its top level (at most 1 MiB each), and the one ``model_N.pb`` the pointers choose (at most
    the car's 200 MB). Other graphs are held only while they could still be chosen.
    """
    stream = io.BytesIO(data) if isinstance(data, (bytes, bytearray)) else data
    kept: dict[str, bytes] = {}
    chooser = _GraphChooser()
    try:
        # "r|" reads strictly forward: the 45 MiB checkpoint files are skipped, never held.
        with tarfile.open(fileobj=stream, mode="r|") as tar:
            for member in tar:
                relative = _relative_name(member, root)
                if member.isdir():
                    continue
                _refuse_unsafe(member)
                graph = _PB_NAME.match(relative)
                if graph:
                    chooser.graph(int(graph.group(1)), member.size, lambda: _read(tar, member))
                elif relative in _KEPT_FILES:
                    if member.size > MAX_SMALL_FILE_BYTES:
                        raise DrtasksError(
                            f"refusing {relative} of {member.size:,} bytes in the container's {MODEL_DIR}"
                            f" (at most {MAX_SMALL_FILE_BYTES:,})"
                        )
                    kept[relative] = _read(tar, member)
                    if relative in _POINTER_FILES:
                        chooser.pointer(relative, kept[relative])
    except (tarfile.TarError, EOFError, OSError) as err:
        raise DrtasksError(f"unreadable archive of the container's {MODEL_DIR}: {shorten(str(err))}") from None
    choice = chooser.choice()
    if choice is not None:
        number = choice[0]
        if number not in chooser.held:
            size = chooser.seen[number]
            raise DrtasksError(
                f"model_{number}.pb in the container's {MODEL_DIR} is {size:,} bytes;"
                f" the car accepts uploads under {CAR_UPLOAD_LIMIT_BYTES:,}"
            )
        kept[f"model_{number}.pb"] = chooser.held[number]
    return TarContents(kept, len(chooser.seen))


# ---------------------------------------------------------------- choosing the frozen graph


def _checkpoint_number(checkpoint: str) -> int | None:
    head = checkpoint.strip().split("_", 1)[0]
    return int(head) if head.isdigit() else None


def pick_model(files: Mapping[str, bytes], container_name: str, graphs_seen: int | None = None) -> ContainerModel:
    """Choose the frozen graph of the current checkpoint among the files of ``/opt/ml/model``.

    ``graphs_seen`` counts the graphs the directory held when the reader kept only some.
    """
    graphs = {int(m.group(1)): name for name in files if (m := _PB_NAME.match(name))}
    where = f"container {container_name}: {MODEL_DIR}"
    if not graphs:
        raise DrtasksError(f"{where} holds no model_N.pb yet (no checkpoint saved?); use --from s3")
    if METADATA_FILE not in files:
        raise DrtasksError(f"{where} has no {METADATA_FILE}")
    pointers = [_pointer(name, files[name]) if name in files else None for name in _POINTER_FILES]
    number, checkpoint, reason = _choose(graphs, pointers)
    if checkpoint is None and graphs_seen and graphs_seen > 1:
        reason = f"the highest of {graphs_seen} frozen graphs"
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
        contents = read_model_tar(io.BufferedReader(_ChunkReader(chunks)), root=MODEL_DIR.rsplit("/", 1)[-1])
    except docker.errors.NotFound:
        raise DrtasksError(f"container {container.name} has no {MODEL_DIR}") from None
    except _api_errors() as err:
        raise DrtasksError(f"copying {MODEL_DIR} from container {container.name}: {_one_line(err)}") from None
    return pick_model(contents.files, container.name, contents.graphs_seen)
