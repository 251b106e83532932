"""inv car-push / inv car-models: the physical car's web console (upload, prove, load; list)."""

from __future__ import annotations

import json as jsonlib
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from invoke import Collection

from drtasks.tasks.common import checkpoint_flags, confirm, drtask, settings_for

CARS_VARIABLE = "DR_CAR_ZIP_CARS"


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


def resolve_cars(flags: list[str], settings: Any) -> list[str]:
    """--car values, else the profile's car_zip.cars (DR_CAR_ZIP_CARS, comma-separated)."""
    from drtasks.car.pins import car_url

    if flags:
        return [car_url(value, "--car") for value in flags]
    configured = settings.get(CARS_VARIABLE) or ""
    origin = settings.values[CARS_VARIABLE].origin if CARS_VARIABLE in settings.values else CARS_VARIABLE
    return [car_url(value, f"{CARS_VARIABLE} ({origin})") for value in configured.split(",") if value.strip()]


def connector_for(trust_fingerprints: list[str], dry_run: bool) -> Any:
    from drtasks.car.connect import CarConnector, TrustPolicy, ask_on_terminal, password_from_env_or_terminal
    from drtasks.car.pins import KnownCars, normalize_fingerprint

    accepted = frozenset(normalize_fingerprint(value) for value in trust_fingerprints)
    ask = ask_on_terminal if sys.stdin.isatty() else None
    return CarConnector(TrustPolicy(KnownCars(), accepted, ask, save=not dry_run), password_from_env_or_terminal())


def archive_to_push(request: CarPushRequest, settings: Any) -> tuple[bytes, str, str]:
    """(archive bytes, model name, where it came from): the given file, or built as car-zip builds it."""
    from drtasks.carzip.archive import car_model_name
    from drtasks.errors import DrtasksError

    if request.archive:
        path = Path(request.archive).expanduser()
        try:
            data = path.read_bytes()
        except OSError as error:
            raise DrtasksError(f"--archive {request.archive}: cannot read it ({error.strerror or error.__class__.__name__})") from None
        return data, request.name or car_model_name(path.name), str(path)
    from drtasks.carzip import flow

    source = request.source or settings.get("DR_CAR_ZIP_SOURCE") or "auto"
    container = request.container or settings.get("DR_CAR_ZIP_CONTAINER")
    built = flow.build(flow.gather(settings, source, container))
    return built.data, request.name or settings.get("DR_UPLOAD_S3_PREFIX") or "model", built.model.origin


def plan_table(plan: Any) -> Any:
    from rich.table import Table

    from drtasks import render
    from drtasks.car.pins import show_fingerprint

    table = Table(title=f"car-push: {plan.file_name} ({render.human(plan.archive_size)}, sha256 {plan.archive_sha256[:16]}...) from {plan.origin}", title_justify="left")
    for column in ("", "car", "certificate sha256", "trust", "model", "action", "reason"):
        table.add_column(column)
    for car in plan.cars:
        style = "green" if car.action == "add" else "yellow"
        sign = "+" if car.action == "add" else "~"
        table.add_row(sign, car.url, show_fingerprint(car.fingerprint)[:23] + "...", car.trust, plan.model_name, car.action, car.reason, style=style)
    return table


def results_table(results: list[Any], plan: Any) -> Any:
    from rich.table import Table

    table = Table(title=f"car-push results: {plan.model_name}", title_justify="left")
    for column in ("car", "uploaded", "listed by the car", "loaded", "seconds", "message"):
        table.add_column(column, justify="right" if column == "seconds" else "left")
    for result in results:
        loaded = "not asked" if result.loaded is None else ("yes" if result.loaded else "no")
        table.add_row(
            result.url,
            "yes" if result.uploaded else "no",
            "yes" if result.listed else "no",
            loaded,
            f"{result.seconds:.1f}",
            result.error or result.message,
            style="green" if result.ok else "red",
        )
    return table


def run_car_push(request: CarPushRequest) -> list[Any]:
    from drtasks import render
    from drtasks.car.plan import apply_car_push, plan_car_push
    from drtasks.errors import DrtasksError
    from drtasks.progress import progress_for

    settings = settings_for(request.profile, checkpoint_flags(request.best, request.checkpoint))
    cars = resolve_cars(request.cars, settings)
    if not cars:
        raise DrtasksError("no car to push to: give --car https://HOST, or list car_zip.cars in the profile")
    connector = connector_for(request.trust_fingerprints, request.dry_run)
    archive, name, origin = archive_to_push(request, settings)
    out = render.console()
    status = render.console(stderr=True) if request.json else out
    try:
        plan = plan_car_push(archive, name, cars, connector, load=request.load, origin=origin, source=origin)
        if request.json:
            print(plan.to_json())
        else:
            out.print(plan_table(plan))
        view = plan.view
        status.print(
            f"The car{'s' if len(plan.cars) > 1 else ''} will show '{plan.model_name}' ({view.training_algorithm}, {view.action_space_type},"
            f" {', '.join(view.sensors)}){'; then load it' if plan.load else ''}."
        )
        if request.dry_run:
            status.print("Dry run: nothing was written.")
            return []
        confirm(f"Push {plan.model_name} to {len(plan.cars)} car{'s' if len(plan.cars) > 1 else ''}?", request.force)
        with progress_for(status) as progress:
            results = apply_car_push(plan, connector, progress)
    finally:
        connector.close()
    status.print(results_table(results, plan))
    failed = [result for result in results if not result.ok]
    if failed:
        detail = "; ".join(f"{result.url}: {result.error}" for result in failed)
        raise DrtasksError(f"car-push failed on {len(failed)} of {len(results)} car(s): {detail}")
    status.print(f"Pushed {plan.model_name} to {len(results)} car{'s' if len(results) > 1 else ''}{' and loaded it' if plan.load else ''}.")
    return results


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
) -> None:
    """Upload the car's .tar.gz to each car's web console, prove the car lists it, optionally load it.

    The password comes from DR_CAR_PASSWORD or a prompt and is never stored. A car's self-signed
    certificate is trusted only once pinned: on first use its fingerprint is shown and asked about
    (or given with --trust-fingerprint); later a changed certificate is refused.
    """
    run_car_push(
        CarPushRequest(profile, list(car or []), archive, name, load, force, dry_run, json, list(trust_fingerprint or []), from_, container, best, checkpoint)
    )


def run_car_models(profile: str | None, cars: list[str], as_json: bool, trust_fingerprints: list[str]) -> None:
    import datetime

    from rich.table import Table

    from drtasks import render
    from drtasks.car.plan import car_models as list_models
    from drtasks.errors import DrtasksError

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
