"""inv car-push as a plan (a value: per car, what happens to which model) and one executor.

Planning reads only: it checks the archive the way the car will read it, then logs in to each
car and reads its model folders to say whether the model is added or replaces one of the same
name. Applying uploads to each car, reads the car's own model list back to prove the model is
installed and described as expected, and loads it when asked. One car failing while applying
does not stop the others; every car gets a result row.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drtasks.car import rules
from drtasks.car.connect import CarConnector
from drtasks.car.pins import show_fingerprint
from drtasks.carzip.archive import METADATA_MEMBER, archive_file_name, car_model_name, validate_car_archive
from drtasks.errors import DrtasksError
from drtasks.transfer import NoProgress, Progress  # the transfers' progress callbacks serve pushes too


@dataclass(frozen=True)
class CarTarget:
    url: str
    fingerprint: str
    trust: str  # pinned | new, accepted | new, --trust-fingerprint
    action: str  # add | replace
    reason: str
    models_on_car: int

    def as_json(self) -> dict[str, Any]:
        return {
            "car": self.url,
            "fingerprint_sha256": show_fingerprint(self.fingerprint),
            "trust": self.trust,
            "action": self.action,
            "reason": self.reason,
            "models_on_car": self.models_on_car,
        }


@dataclass(frozen=True)
class CarPushPlan:
    model_name: str  # the name the car will show (its folder)
    file_name: str  # the archive's name in the upload, which makes that name
    archive_size: int
    archive_sha256: str
    view: rules.CarView
    load: bool
    origin: str
    cars: tuple[CarTarget, ...]
    archive: bytes = field(repr=False, compare=False, default=b"")

    @property
    def changes(self) -> bool:
        return bool(self.cars)  # every car is written: the car keeps no checksum to compare with

    def as_json(self) -> dict[str, Any]:
        return {
            "title": "car-push",
            "model": self.model_name,
            "file_name": self.file_name,
            "archive": {"size": self.archive_size, "sha256": self.archive_sha256, "origin": self.origin},
            "car_view": self.view.as_json(),
            "load": self.load,
            "cars": [car.as_json() for car in self.cars],
        }

    def to_json(self) -> str:
        return json.dumps(self.as_json(), indent=2)


@dataclass
class CarResult:
    url: str
    uploaded: bool = False
    listed: bool = False
    loaded: bool | None = None  # None: not asked
    message: str = ""  # the car's own words on success
    error: str = ""  # why this car failed, in one line
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.error and self.uploaded and self.listed and self.loaded is not False

    def as_json(self) -> dict[str, Any]:
        return {
            "car": self.url,
            "ok": self.ok,
            "uploaded": self.uploaded,
            "listed": self.listed,
            "loaded": self.loaded,
            "message": self.message,
            "error": self.error,
            "seconds": round(self.seconds, 3),
        }


# ---------------------------------------------------------------- plan


def read_metadata(archive: bytes) -> bytes:
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        for member in tar:
            name = member.name
            while name.startswith("./"):
                name = name[2:]
            if member.isfile() and name == METADATA_MEMBER:
                handle = tar.extractfile(member)
                return handle.read() if handle else b""
    raise DrtasksError(f"archive: no {METADATA_MEMBER} at the root")  # validate_car_archive said otherwise


def check_archive(archive: bytes, source: str) -> rules.CarView:
    """Everything the car checks quietly, checked loudly, before anything is uploaded."""
    members = validate_car_archive(archive, source)
    rules.check_model_files([member.name for member in members], source)
    return rules.car_view(read_metadata(archive), f"{source}: {METADATA_MEMBER}")


def plan_car_push(
    archive: bytes | Path, model_name: str, cars: list[str], connector: CarConnector, *, load: bool = False, origin: str = "", source: str = "archive"
) -> CarPushPlan:
    """The plan for pushing ``archive`` as ``model_name`` to ``cars`` (normalised URLs); reads only."""
    if isinstance(archive, Path):
        origin, source = origin or str(archive), str(archive)
        try:
            archive = archive.read_bytes()
        except OSError as error:
            raise DrtasksError(f"{source}: cannot read it ({error.strerror or error.__class__.__name__})") from None
    if not cars:
        raise DrtasksError("no car to push to: give --car https://HOST, or list car_zip.cars in the profile")
    if len(set(cars)) != len(cars):
        raise DrtasksError(f"--car: {', '.join(sorted({c for c in cars if cars.count(c) > 1}))} given twice")
    view = check_archive(archive, source)
    file_name = archive_file_name(model_name)
    shown = car_model_name(file_name)
    targets = []
    for url in cars:
        client, trusted = connector.open(url)
        folders = {str(entry.get("name")) for entry in client.uploaded_models()}
        if shown in folders:
            targets.append(CarTarget(url, trusted.fingerprint, trusted.how, "replace", f"the car has a model named {shown}: its folder is replaced", len(folders)))
        else:
            targets.append(CarTarget(url, trusted.fingerprint, trusted.how, "add", f"no model named {shown} on the car", len(folders)))
    return CarPushPlan(shown, file_name, len(archive), hashlib.sha256(archive).hexdigest(), view, load, origin, tuple(targets), archive)


# ---------------------------------------------------------------- apply


def _listed(models: list[dict[str, Any]], folder: str) -> dict[str, Any] | None:
    return next((m for m in models if m.get("model_folder_name") == folder), None)


def _view_mismatch(entry: dict[str, Any], view: rules.CarView) -> str:
    shown = (entry.get("model_training_algorithm"), entry.get("model_action_space_type"), set(entry.get("model_sensors") or ()))
    expected = (view.training_algorithm, view.action_space_type, set(view.sensors))
    if shown == expected:
        return ""
    return f"the car lists it as {shown[0]}, {shown[1]}, {', '.join(sorted(shown[2]))}; expected {expected[0]}, {expected[1]}, {', '.join(sorted(expected[2]))}"


def push_one(plan: CarPushPlan, car: CarTarget, connector: CarConnector, progress: Progress) -> CarResult:
    result = CarResult(car.url)
    started = time.perf_counter()
    try:
        client, _ = connector.open(car.url, expected_fingerprint=car.fingerprint)
        answer = client.upload(plan.file_name, plan.archive, lambda n: progress.advanced(car.url, n))
        progress.finished_object(car.url)
        if not answer.success:
            result.error = f"the car answered success: false: {answer.message or 'no message'}"
            return result
        result.uploaded = True
        entry = _listed(client.models(), plan.model_name)
        if entry is None:
            result.error = f"uploaded, but the car does not list {plan.model_name}: it did not install the archive"
            return result
        mismatch = _view_mismatch(entry, plan.view)
        if mismatch:
            result.error = mismatch
            return result
        result.listed = True
        result.message = answer.message
        if plan.load:
            if entry.get("is_select_disabled"):
                result.loaded = False
                result.error = f"the car cannot select {plan.model_name}: its sensors ({', '.join(entry.get('model_sensors') or ())}) are not connected"
                return result
            loaded = client.load(plan.model_name, str(entry.get("model_name") or rules.INSTALLED_MODEL_NAME))
            result.loaded = loaded.success
            if not loaded.success:
                result.error = f"loading failed: {loaded.message or 'no reason given'}"
    except DrtasksError as error:
        result.error = error.message
    finally:
        result.seconds = time.perf_counter() - started
    return result


def apply_car_push(plan: CarPushPlan, connector: CarConnector, progress: Progress | None = None) -> list[CarResult]:
    """Push to every car of the plan, one after the other (each car's link is the bottleneck)."""
    progress = progress or NoProgress()
    progress.started(plan.archive_size * len(plan.cars), len(plan.cars))
    return [push_one(plan, car, connector, progress) for car in plan.cars]


# ---------------------------------------------------------------- listing


@dataclass(frozen=True)
class CarModelRow:
    name: str
    size: str
    uploaded: float | None
    training_algorithm: str
    action_space_type: str
    sensors: str
    loadable: str  # yes | sensors missing | not installed

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "size": self.size,
            "uploaded": self.uploaded,
            "training_algorithm": self.training_algorithm,
            "action_space_type": self.action_space_type,
            "sensors": self.sensors,
            "loadable": self.loadable,
        }


def car_models(connector: CarConnector, url: str) -> list[CarModelRow]:
    """Every model folder on the car, with whether the car offers it for loading."""
    client, _ = connector.open(url)
    loadable = {str(m.get("model_folder_name")): m for m in client.models()}
    rows = []
    for entry in client.uploaded_models():
        name = str(entry.get("name"))
        listed = loadable.get(name)
        state = "not installed" if listed is None else ("sensors missing" if listed.get("is_select_disabled") else "yes")
        created = entry.get("creation_time")
        rows.append(
            CarModelRow(
                name,
                str(entry.get("size", "")),
                float(created) if isinstance(created, (int, float)) else None,
                str(entry.get("training_algorithm", "")),
                str(entry.get("action_space_type", "")),
                str(entry.get("sensors", "")),
                state,
            )
        )
    return sorted(rows, key=lambda row: row.name.lower())
