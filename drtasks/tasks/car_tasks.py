"""inv car-push / inv car-models: the physical car's web console (upload, prove, load; list)."""

from __future__ import annotations

import json as jsonlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from invoke import Collection

from drtasks.tasks.common import checkpoint_flags, drtask, settings_for

if TYPE_CHECKING:
    from drtasks.chain import ChainRequest


@dataclass
class CarPushRequest:
    profile: str | None = None
    cars: list[str] = field(default_factory=list)
    archive: str | None = None  # a .tar.gz to push as it is; else built like inv car-zip builds it
    name: str | None = None
    load: bool = False
    force: bool = False
    dry_run: bool = False
    json: bool = False
    trust_fingerprints: list[str] = field(default_factory=list)
    source: str | None = None  # auto | container | s3 when building
    container: str | None = None
    best: bool = False
    checkpoint: str | None = None
    verify: bool = False


def car_push_chain(request: CarPushRequest) -> "ChainRequest":
    from drtasks.chain import ChainRequest, StepSpec
    from drtasks.steps.carpush import CarPushOptions

    options = CarPushOptions(
        tuple(request.cars), request.archive, request.name, request.load, tuple(request.trust_fingerprints),
        request.source, request.container, request.dry_run, request.verify,
    )
    return ChainRequest(request.profile, [StepSpec("car-push", options)], checkpoint_flags(request.best, request.checkpoint))


def run_car_push(request: CarPushRequest) -> None:
    from drtasks.tasks.runner import RunOptions, run_chains

    run_chains([car_push_chain(request)], RunOptions(force=request.force, dry_run=request.dry_run, json=request.json, question="Push this model to the cars?"))


@drtask(
    iterable=["car", "trust_fingerprint"],
    short={
        "profile": "p",
        "force": "f",
        "dry_run": "d",
        "json": "j",
        "load": "l",
        "archive": "a",
        "name": "n",
        "best": "b",
        "checkpoint": "c",
        "from_": "s",
        "trust_fingerprint": "t",
        "verify": "V",
    },
    help={
        "car": "the car's console, https://HOST[:PORT] (repeat for several cars; default: the profile's car_zip.cars)",
        "archive": "push this .tar.gz as it is (default: build it as inv car-zip does)",
        "name": "the model name the car shows (default: the archive's file name, or the upload prefix)",
        "load": "load the model for inference once it is installed",
        "profile": "named profile from profiles/",
        "force": "do not ask before uploading",
        "dry-run": "log in, show the plan, upload nothing",
        "json": "print the plan as JSON",
        "trust-fingerprint": "trust a car presenting this SHA-256 certificate fingerprint on first use (repeatable)",
        "from": "when building: container, s3 or auto, as for inv car-zip",
        "container": "when building from a container: its name",
        "best": "when building from S3: the best checkpoint",
        "checkpoint": "when building from S3: checkpoint number N",
        "verify": "before any car is contacted, load the model as the car does (OpenVINO) and run it once; stop if the car could not (pip install 'drtasks[verify]')",
    },
)
def car_push(
    c: Any,
    car: list[str] | None = None,
    archive: str | None = None,
    name: str | None = None,
    load: bool = False,
    profile: str | None = None,
    force: bool = False,
    dry_run: bool = False,
    json: bool = False,
    trust_fingerprint: list[str] | None = None,
    from_: str | None = None,
    container: str | None = None,
    best: bool = False,
    checkpoint: str | None = None,
    verify: bool = False,
) -> None:
    """Upload the car's .tar.gz to each car's web console, prove the car lists it, optionally load it.

    The password comes from DR_CAR_PASSWORD or a prompt and is never stored. A car's self-signed
    certificate is trusted only once pinned: on first use its fingerprint is shown and asked about
    (or given with --trust-fingerprint); later a changed certificate is refused.
    """
    run_car_push(
        CarPushRequest(profile, list(car or []), archive, name, load, force, dry_run, json, list(trust_fingerprint or []), from_, container, best, checkpoint, verify)
    )


def run_car_models(profile: str | None, cars: list[str], as_json: bool, trust_fingerprints: list[str]) -> None:
    import datetime

    from rich.table import Table

    from drtasks import render
    from drtasks.car.plan import car_models as list_models
    from drtasks.errors import DrtasksError

    from drtasks.steps.carpush import connector_for, resolve_cars

    settings = settings_for(profile)
    urls = resolve_cars(cars, settings)
    if not urls:
        raise DrtasksError("no car to list: give --car https://HOST, or list car_zip.cars in the profile")
    connector = connector_for(trust_fingerprints, dry_run=False)
    try:
        listings = {url: list_models(connector, url) for url in urls}
    finally:
        connector.close()
    if as_json:
        print(jsonlib.dumps({url: [row.as_json() for row in rows] for url, rows in listings.items()}, indent=2))
        return
    out = render.console()
    for url, rows in listings.items():
        table = Table(title=f"models on {url}", title_justify="left")
        for column in ("name", "size", "uploaded", "algorithm", "action space", "sensors", "loadable"):
            table.add_column(column)
        for row in rows:
            when = datetime.datetime.fromtimestamp(row.uploaded).strftime("%Y-%m-%d %H:%M") if row.uploaded else ""
            table.add_row(row.name, row.size, when, row.training_algorithm, row.action_space_type, row.sensors, row.loadable)
        out.print(table)


@drtask(
    iterable=["car", "trust_fingerprint"],
    short={"profile": "p", "json": "j", "trust_fingerprint": "t"},
    help={
        "car": "the car's console, https://HOST[:PORT] (repeatable; default: the profile's car_zip.cars)",
        "profile": "named profile from profiles/",
        "json": "print the models as JSON",
        "trust-fingerprint": "trust a car presenting this SHA-256 certificate fingerprint on first use (repeatable)",
    },
)
def car_models(c: Any, car: list[str] | None = None, profile: str | None = None, json: bool = False, trust_fingerprint: list[str] | None = None) -> None:
    """The models on each car: name, size, upload time, algorithm, action space, sensors, whether it can be loaded."""
    run_car_models(profile, list(car or []), json, list(trust_fingerprint or []))


namespace = Collection(car_push, car_models)
