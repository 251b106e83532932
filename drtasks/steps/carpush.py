"""The car-push step: the car's archive to each car's web console, proven by the car's own model list.

The archive is the one an earlier car-zip step of the chain built, else a given file, else one built
as car-zip builds it. Planning logs in to every car (reads only); applying uploads, reads back, loads.
"""

from __future__ import annotations

import hashlib

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drtasks.errors import DrtasksError
from drtasks.steps.base import Row, Runtime, StepContext, StepPlan, StepResult
from drtasks.steps.carzip import CarZipPlan
from drtasks.units import human, plural

CARS_VARIABLE = "DR_CAR_ZIP_CARS"


@dataclass(frozen=True)
class CarPushOptions:
    cars: tuple[str, ...] = ()  # --car values; empty: the profile's car_zip.cars
    archive: str | None = None  # push this .tar.gz as it is
    name: str | None = None
    load: bool = False
    trust_fingerprints: tuple[str, ...] = ()
    source: str | None = None  # when building: auto | container | s3
    container: str | None = None
    dry_run: bool = False  # a dry run pins nothing
    verify: bool = False  # run the archive's model as the car does (OpenVINO) before any car is touched


def resolve_cars(flags: tuple[str, ...] | list[str], settings: Any) -> list[str]:
    """--car values, else the profile's car_zip.cars (DR_CAR_ZIP_CARS, comma-separated)."""
    from drtasks.car.pins import car_url

    if flags:
        return [car_url(value, "--car") for value in flags]
    configured = settings.get(CARS_VARIABLE) or ""
    origin = settings.origin(CARS_VARIABLE) or CARS_VARIABLE
    return [car_url(value, f"{CARS_VARIABLE} ({origin})") for value in configured.split(",") if value.strip()]


def connector_for(trust_fingerprints: tuple[str, ...] | list[str], dry_run: bool) -> Any:
    from drtasks.car.connect import CarConnector, TrustPolicy, ask_on_terminal, password_from_env_or_terminal
    from drtasks.car.pins import KnownCars, normalize_fingerprint

    accepted = frozenset(normalize_fingerprint(value) for value in trust_fingerprints)
    ask = ask_on_terminal if sys.stdin.isatty() else None
    return CarConnector(TrustPolicy(KnownCars(), accepted, ask, save=not dry_run), password_from_env_or_terminal())


def archive_to_push(context: StepContext, options: CarPushOptions) -> tuple[bytes, str, str]:
    """(archive bytes, model name, where it came from): a given file, an earlier car-zip's, or built."""
    from drtasks.carzip.archive import car_model_name

    settings = context.settings
    if options.archive:
        path = Path(options.archive).expanduser()
        try:
            data = path.read_bytes()
        except OSError as error:
            raise DrtasksError(f"--archive {options.archive}: cannot read it ({error.strerror or error.__class__.__name__})") from None
        return data, options.name or car_model_name(path.name), str(path)
    built = context.last(CarZipPlan)
    name = options.name or settings.get("DR_UPLOAD_S3_PREFIX") or "model"
    if built is not None:  # the car-zip step's archive, removed when the chain is done
        return built.archive.read_bytes(), name, built.archive.model.origin
    from drtasks.carzip import flow

    source = options.source or settings.get("DR_CAR_ZIP_SOURCE") or "auto"
    container = options.container or settings.get("DR_CAR_ZIP_CONTAINER")
    archive = flow.build(flow.gather(settings, source, container))
    try:
        return archive.read_bytes(), name, archive.model.origin
    finally:
        archive.close()


@dataclass
class CarPushStepPlan(StepPlan):
    step = "car-push"
    push: Any  # drtasks.car.plan.CarPushPlan
    connector: Any
    car_run: Any = None  # drtasks.carzip.verify.CarRun, with --verify
    notes: list[str] = field(default_factory=list)

    def heading(self) -> str:
        push = self.push
        return f"{push.file_name} ({human(push.archive_size)}, sha256 {push.archive_sha256[:16]}...) from {push.origin}"

    def rows(self) -> list[Row]:
        from drtasks.car.pins import show_fingerprint

        rows = []
        if self.car_run is not None:
            from drtasks.carzip.verify import verify_rows

            rows += [Row("check", what, reason=reason) for what, reason in verify_rows(self.car_run)]
        for car in self.push.cars:
            trust = f"certificate {show_fingerprint(car.fingerprint)[:23]}... ({car.trust})"
            rows.append(Row(car.action, f"{car.url} {self.push.model_name}", self.push.archive_size, reason=f"{car.reason}; {trust}"))
        if self.push.load:
            rows += [Row("call", f"{car.url} load {self.push.model_name}", reason="load it for inference") for car in self.push.cars]
        return rows

    def summary(self) -> dict[str, Any]:
        return {"model": self.push.model_name, "cars": len(self.push.cars), "load": self.push.load}

    def summary_line(self) -> str:
        view = self.push.view
        return (
            f"{plural(len(self.push.cars), 'car')} will show '{self.push.model_name}' ({view.training_algorithm}, "
            f"{view.action_space_type}, {', '.join(view.sensors)}){'; then load it' if self.push.load else ''}."
        )

    def as_dict(self) -> dict[str, Any]:
        verified = {"verify": self.car_run.as_dict()} if self.car_run is not None else {}
        return {"step": self.step, **self.push.as_json(), **verified}

    @property
    def changes(self) -> bool:
        return self.push.changes

    def apply(self, runtime: Runtime) -> StepResult:
        from drtasks.car.plan import apply_car_push

        with runtime.progress(runtime.out) as progress:
            results = apply_car_push(self.push, self.connector, progress)
        report = results_table(results, self.push)
        failed = [result for result in results if not result.ok]
        if failed:
            detail = "; ".join(f"{result.url}: {result.error}" for result in failed)
            return StepResult(self.step, "failed", f"failed on {len(failed)} of {plural(len(results), 'car')}: {detail}", report=report)
        loaded = " and loaded it" if self.push.load else ""
        return StepResult(self.step, "done", f"pushed {self.push.model_name} to {plural(len(results), 'car')}{loaded}", report=report)

    def close(self) -> None:
        self.connector.close()


def results_table(results: list[Any], push: Any) -> Any:
    from rich.table import Table

    table = Table(title=f"car-push results: {push.model_name}", title_justify="left")
    for column in ("car", "uploaded", "listed by the car", "loaded", "seconds", "message"):
        table.add_column(column, justify="right" if column == "seconds" else "left", overflow="fold")
    for result in results:
        loaded = "not asked" if result.loaded is None else ("yes" if result.loaded else "no")
        table.add_row(
            result.url, "yes" if result.uploaded else "no", "yes" if result.listed else "no", loaded,
            f"{result.seconds:.1f}", result.error or result.message, style="green" if result.ok else "red",
        )
    return table


def plan_car_push_step(context: StepContext) -> CarPushStepPlan:
    from drtasks.car.plan import plan_car_push

    options: CarPushOptions = context.options or CarPushOptions()
    cars = resolve_cars(options.cars, context.settings)
    if not cars:
        raise DrtasksError("no car to push to: give --car https://HOST, or list car_zip.cars in the profile")
    archive, name, origin = archive_to_push(context, options)
    car_run = None
    if options.verify:
        # Before any car is contacted; an earlier car-zip step of the chain may have done it already.
        built = context.last(CarZipPlan)
        same = built is not None and built.archive.size == len(archive) and built.archive.sha256 == hashlib.sha256(archive).hexdigest()
        car_run = built.car_run if built is not None and same else None
        if car_run is None:
            from drtasks.carzip.verify import run_like_the_car

            car_run = run_like_the_car(archive)
    connector = connector_for(options.trust_fingerprints, options.dry_run)
    try:
        push = plan_car_push(archive, name, cars, connector, load=options.load, origin=origin, source=origin)
    except BaseException:
        connector.close()
        raise
    return CarPushStepPlan(push, connector, car_run)
