"""inv car-zip as plain functions: find the model, build and check the archive, plan where it goes."""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from drtasks.carzip.archive import (
    METADATA_MEMBER,
    PB_MEMBER,
    ArchiveMember,
    BuiltArchive,
    archive_file_name,
    car_model_name,
    read_member,
    validate_car_archive,
    validate_metadata,
    write_car_archive,
)
from drtasks.carzip.stream import GraphFeed, ReadAgain, S3Graph, graph_part_size, whole_md5
from drtasks.checkpoint_choice import choose_for
from drtasks.config import targets
from drtasks.config.settings import Settings
from drtasks.errors import DrtasksError, shorten
from drtasks.manifest import LocalFile, ManifestItem, SourceObject
from drtasks.model import SourceModel
from drtasks.model_check import ModelSpec, check_model
from drtasks.plan import SOURCE_ETAG_METADATA, Action, Plan, compare, list_target, refuse_unsafe_prefix
from drtasks.s3 import ObjectInfo, S3Location, make_client, read_proven, s3_errors
from drtasks.transfer import TransferConfig

CAR_FILE = "carfile.tar.gz"  # DRfC's key below the upload prefix
READ_ATTEMPTS = TransferConfig().read_attempts


@dataclass(frozen=True)
class CarModel:
    pb: "bytes | S3Graph"  # the graph's bytes (container), or the S3 object read while the archive is written
    metadata: bytes
    origin: str  # one line for people: where the graph came from and why that one
    pb_name: str = "model.pb"  # the graph's file name where it came from, for messages
    name: str | None = None  # the model's own name where it has one (DRoA), for the car's file name
    workdir: Path | None = None  # a temporary folder of this build, removed by CarArchive.close()

    @property
    def pb_size(self) -> int:
        return self.pb.source.size if isinstance(self.pb, S3Graph) else len(self.pb)


@dataclass
class CarArchive:
    """The built archive: a file in the build's temporary folder, never held in memory."""

    path: Path
    size: int
    etag: str  # what S3 answers for it uploaded in part_size parts
    sha256: str
    members: list[ArchiveMember]
    model: CarModel
    spec: ModelSpec  # what the metadata promises, checked against the graph
    part_size: int = 0
    part_md5s: tuple[str, ...] = ()

    def read_bytes(self) -> bytes:
        """The archive's bytes (for the few callers that need them whole: --verify, car-push)."""
        return self.path.read_bytes()

    def close(self) -> None:
        """Remove the build's temporary folder."""
        if self.model.workdir is not None:
            shutil.rmtree(self.model.workdir, ignore_errors=True)


@dataclass(frozen=True)
class FileWrite:
    path: Path
    action: Action
    reason: str
    car_name: str


def _workdir() -> Path:
    path = Path(tempfile.mkdtemp(prefix="drtasks-car-zip-"))
    atexit.register(shutil.rmtree, path, True)  # also after a failure that skipped close()
    return path


def from_s3(settings: Settings) -> CarModel:
    """The chosen checkpoint's graph (read when the archive is written) and its metadata."""
    source = targets.source_location(settings)
    client = make_client(source)
    model = SourceModel.load(client, source)
    choice = choose_for(settings, client, model)
    checkpoint = choice.checkpoint
    missing = model.missing([checkpoint.frozen_graph, "model/model_metadata.json"])
    if missing:
        raise DrtasksError("cannot build the car archive, missing: " + ", ".join(source.key(key) for key in missing))
    info, listed_metadata = model.objects[checkpoint.frozen_graph], model.objects["model/model_metadata.json"]
    with s3_errors(source):  # the car gets exactly the listed versions' bytes, proven (the graph as it is read)
        metadata = read_proven(client, source.bucket, listed_metadata.key, listed_metadata.etag or None)
    origin = f"{source.url}/{checkpoint.frozen_graph} (checkpoint {checkpoint.name}; {choice.reason})"
    graph = S3Graph(client, source, SourceObject(source.bucket, info.key, info.size, info.etag))
    return CarModel(graph, metadata, origin, checkpoint.frozen_graph.rsplit("/", 1)[-1])


def from_container(name: str | None) -> CarModel:
    from drtasks.carzip.container import model_from_container

    found = model_from_container(name)
    return CarModel(found.pb_bytes, found.metadata_bytes, f"container {found.container_name}: {found.reason or found.pb_name}", found.pb_name)


def training_container_running() -> bool:
    """Whether DRfC's way is available: an engine answers and a training container runs."""
    from drtasks.carzip.container import connect_docker, training_containers

    try:
        return bool(training_containers(connect_docker()))
    except DrtasksError:
        return False


def from_droa(settings: Settings, reference: str | None) -> CarModel:
    """The graph and metadata of a DRoA-trained model's PHYSICAL_CAR_MODEL asset, checked as the car reads it.

    DRoA keeps that archive only for models it trained itself; an imported model has none.
    """
    from drtasks.importing import droa_flow
    from drtasks.importing.droa_assets import asset_url, fetch
    from drtasks.importing.droa_names import resolve_model

    if not reference:
        raise DrtasksError("--from droa needs the DRoA model: --model ID|NAME")
    api = droa_flow.sign_in(settings).api()
    model = resolve_model(api, reference)
    label = f"'{model.get('name')}' ({model.get('modelId')})"
    try:
        url = asset_url(api, model, "PHYSICAL_CAR_MODEL", timeout=0)
    except DrtasksError as error:
        if "Unable to find physical model artifact" in error.message:
            raise DrtasksError(
                f"DRoA model {label} has no physical car model: DRoA makes one only for models it trained itself, "
                "not for imported ones (build the archive from the training bucket: --from s3)"
            ) from None
        raise
    what = f"DRoA's physical car model of {label}"
    data = fetch(url, what)
    members = validate_car_archive(data, what)
    [pb_member] = [m.name for m in members if m.name.endswith(".pb")]
    pb = read_member(data, pb_member, what)
    metadata = read_member(data, "model_metadata.json", what)
    origin = f"DRoA model {label}: its PHYSICAL_CAR_MODEL asset ({pb_member}, sha256 {hashlib.sha256(data).hexdigest()[:16]}...)"
    return CarModel(pb, metadata, origin, pb_member.rsplit("/", 1)[-1], name=str(model.get("name")))


SOURCES = ("auto", "container", "s3", "droa")


def gather(settings: Settings, source: str, container: str | None, model: str | None = None) -> CarModel:
    """The graph and metadata from ``source``; ``droa:NAME`` is short for ``droa`` with the model NAME."""
    if source.startswith("droa:") and not model:
        source, model = "droa", source[len("droa:"):]
    if source not in SOURCES:
        raise DrtasksError(f"--from {shorten(source)}: choose auto, container, s3 or droa")
    if model and source != "droa":
        raise DrtasksError("--model names a DRoA model: use it with --from droa")
    if source == "droa":
        return from_droa(settings, model)
    if source == "container" or (source == "auto" and (container or training_container_running())):
        return from_container(container)
    return from_s3(settings)


def car_members(model: CarModel, graph: Any) -> list[tuple[str, Any, int]]:
    """(name, content, size) of what the archive holds: the graph as agent/model.pb, the metadata at the root."""
    return [(PB_MEMBER, graph, model.pb_size), (METADATA_MEMBER, model.metadata, len(model.metadata))]


def build(model: CarModel) -> CarArchive:
    """The archive, once the metadata is one the car loads and the graph is the one it describes.

    A graph in S3 is read once, straight into the archive being written (and into a file for the
    graph check, which skips its weights), hashed against its ETag as it passes; the archive is
    checked as it is written. Nothing is read back.
    """
    validate_metadata(model.metadata, "model_metadata.json")
    workdir = _workdir()
    model = replace(model, workdir=workdir)
    path = workdir / "car.tar.gz"
    try:
        if isinstance(model.pb, S3Graph):
            built, graph_file = _write_from_s3(model, model.pb, path)
            spec = check_model(model.metadata, graph_file, graph_name=model.pb_name, for_car=True)
            graph_file.unlink()
        else:
            spec = check_model(model.metadata, model.pb, graph_name=model.pb_name, for_car=True)
            with path.open("wb") as out:
                built = write_car_archive(car_members(model, model.pb), out, "car archive")
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    return CarArchive(path, built.size, built.etag, built.sha256, built.members, model, spec, built.part_size, built.part_md5s)


def _write_from_s3(model: CarModel, graph: S3Graph, path: Path, attempts: int = READ_ATTEMPTS) -> tuple[BuiltArchive, Path]:
    """Write the archive while the graph is read; read again (and write again) when its bytes are not proven."""
    assert model.workdir is not None
    part_size = graph_part_size(graph)
    copy = model.workdir / "graph.pb"
    problem = ""
    for _attempt in range(attempts):
        with copy.open("wb") as copied, path.open("wb") as out:
            feed = GraphFeed(graph, copied, part_size)
            try:
                built = write_car_archive(car_members(model, feed), out, "car archive")
            except ReadAgain as again:
                problem = str(again)
                continue
            finally:
                feed.close()
        verdict = feed.proven()
        if verdict is None:
            verdict = whole_md5(graph) == feed.digest.whole.hexdigest()
        if verdict:
            return built, copy
        problem = feed.problem or "the bytes read do not match the object's checksum"
    raise DrtasksError(f"{graph.url}: {problem} on {attempts} reads; nothing was written")


def plan_upload(archive: CarArchive, target: S3Location, key: str = CAR_FILE) -> tuple[Plan, Any]:
    """The one-object plan for s3://<bucket>/<prefix>/<key> (DRfC's carfile.tar.gz by default).

    The archive goes up from its file like any file of this machine (in parts when large); an
    object drtasks wrote from the same archive bytes is "unchanged" (its source-ETag metadata).
    """
    refuse_unsafe_prefix(target)
    client = make_client(target)
    item = ManifestItem(key, local=LocalFile(archive.path, archive.size, archive.etag, archive.part_size, archive.part_md5s))

    def source_etag_of(info: ObjectInfo) -> str | None:
        with s3_errors(target):
            return client.head_object(Bucket=target.bucket, Key=info.key).get("Metadata", {}).get(SOURCE_ETAG_METADATA)

    entry = compare(item, list_target(client, target).get(key), source_etag_of)
    return Plan(target, target, [entry], title="car-zip"), client


def output_path(output: str, model_name: str) -> Path:
    """A folder gets a file named after the model, so the car shows that name."""
    path = Path(output).expanduser()
    if output.endswith(("/", "\\")) or path.is_dir():
        return path / archive_file_name(model_name)
    if not path.name.endswith(".tar.gz"):
        raise DrtasksError(f"--output {output}: the car loads .tar.gz archives; name the file <model>.tar.gz or give a folder")
    return path


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(4 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _oserror(error: OSError) -> str:
    return error.strerror or error.__class__.__name__


def _check_output_folder(path: Path) -> None:
    """The nearest existing folder above ``path`` must be a folder we may write in."""
    existing = path.parent
    try:
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
    except OSError as error:
        raise DrtasksError(f"--output {path}: {_oserror(error)}") from None
    if not existing.is_dir():
        raise DrtasksError(f"--output {path}: {existing} is not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise DrtasksError(f"--output {path}: {existing} is not writable")


def plan_file(archive: CarArchive, path: Path) -> FileWrite:
    name = car_model_name(path.name)
    _check_output_folder(path)
    try:
        if not path.exists():
            return FileWrite(path, Action.ADD, "new", name)
        if not path.is_file():
            raise DrtasksError(f"--output {path}: exists and is not a regular file")
        if path.stat().st_size == archive.size and _sha256_of(path) == archive.sha256:
            return FileWrite(path, Action.UNCHANGED, "same content", name)
    except OSError as error:
        raise DrtasksError(f"--output {path}: {_oserror(error)}") from None
    return FileWrite(path, Action.REPLACE, "content differs", name)


def write_file(write: FileWrite, archive: CarArchive) -> None:
    partial = write.path.with_name(write.path.name + ".part")
    try:
        write.path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(archive.path, partial)
        if partial.stat().st_size != archive.size:
            raise OSError(0, "the copy is short")
        partial.replace(write.path)  # never leave a half-written archive under the final name
    except OSError as error:
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)
        raise DrtasksError(f"--output {write.path}: cannot write the archive ({_oserror(error)})") from None
