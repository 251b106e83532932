"""inv car-push / inv car-models against fake cars built from the car's web server (HTTPS, CSRF).

Two fake cars with different self-signed certificates run for the whole session; each test
starts from cars holding only their sample model and from an empty known-cars file.
"""

from __future__ import annotations

import io
import json
import os
import stat
import tarfile
from pathlib import Path
from typing import Any, Iterator

import pytest
import requests

from drtasks.car import rules
from drtasks.car.client import CarClient
from drtasks.car.connect import CarConnector, TrustPolicy
from drtasks.car.pins import KnownCars, car_url, normalize_fingerprint, show_fingerprint
from drtasks.car.plan import CarPushPlan, CarTarget, apply_car_push
from drtasks.carzip.archive import build_car_archive
from drtasks.errors import DrtasksError
from drtasks.sample_model import model_metadata, pseudo_random_bytes
from tests.cli import Result, drtasks
from tests.fakes.car_server import FakeCar

pytestmark = pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")

PASSWORD = "s3cret-Car-Pw"
MODEL = "fast-model"
METADATA = json.dumps(model_metadata()).encode()


@pytest.fixture(scope="session")
def two_cars(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FakeCar, FakeCar]]:
    cars = (FakeCar(tmp_path_factory.mktemp("car-a"), PASSWORD).start(), FakeCar(tmp_path_factory.mktemp("car-b"), PASSWORD).start())
    yield cars
    for car in cars:
        car.stop()


@pytest.fixture
def cars(two_cars: tuple[FakeCar, FakeCar]) -> tuple[FakeCar, FakeCar]:
    for car in two_cars:
        car.reset()
        car.set_password(PASSWORD)
    return two_cars


@pytest.fixture
def car(cars: tuple[FakeCar, FakeCar]) -> FakeCar:
    return cars[0]


@pytest.fixture(scope="session")
def graph() -> bytes:
    return pseudo_random_bytes(1, "car-push graph", 300_000)


@pytest.fixture
def archive(tmp_path: Path, graph: bytes) -> Path:
    path = tmp_path / f"{MODEL}.tar.gz"
    path.write_bytes(build_car_archive(graph, METADATA))
    return path


@pytest.fixture
def known(tmp_path: Path) -> Path:
    return tmp_path / "config" / "drtasks" / "known_cars"


def env(known: Path, password: str = PASSWORD) -> dict[str, str]:
    return {"DR_CAR_PASSWORD": password, "DRTASKS_KNOWN_CARS": str(known)}


def push(tmp_path: Path, known: Path, *args: str, password: str = PASSWORD) -> Result:
    return drtasks("car-push", *args, dr_dir=tmp_path, env=env(known, password))


def trust(*cars: FakeCar) -> list[str]:
    return [arg for car in cars for arg in ("--trust-fingerprint", car.fingerprint)]


def tar_gz(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def one_line_error(result: Result) -> str:
    assert result.code != 0
    assert "Traceback" not in result.err
    lines = [line for line in result.err.splitlines() if line.strip()]
    assert len(lines) == 1, result.err
    return lines[0]


# ---------------------------------------------------------------- pushing


def test_push_to_two_cars_installs_the_model_and_each_car_lists_it(tmp_path: Path, cars: tuple[FakeCar, FakeCar], archive: Path, known: Path, graph: bytes) -> None:
    result = push(tmp_path, known, "--car", cars[0].url, "--car", cars[1].url, "--archive", str(archive), "-f", *trust(*cars))
    assert result.code == 0, result.err
    for car in cars:
        assert car.installed(MODEL) == {"model.pb": graph, "model_metadata.json": METADATA, "checksum.txt": car.installed(MODEL)["checksum.txt"]}
        assert car.uploads == [f"{MODEL}.tar.gz"] and car.logins == 1  # one login per car, reused from plan to push
        assert car.url in result.out
    assert "car-push: pushed fast-model to 2 cars" in result.out
    assert result.out.count("Model uploaded successfully to your vehicle") == 2  # the cars' own words, one row each


def test_dry_run_logs_in_and_writes_nothing(tmp_path: Path, cars: tuple[FakeCar, FakeCar], archive: Path, known: Path) -> None:
    result = push(tmp_path, known, "--car", cars[0].url, "--car", cars[1].url, "--archive", str(archive), "-d", *trust(*cars))
    assert result.code == 0, result.err
    assert "Dry run: nothing was written." in result.err
    assert result.out.count("add") >= 2 and "no model named fast-model on the car" in result.out
    assert all(car.uploads == [] and car.installed(MODEL) == {} for car in cars)
    assert not known.exists() and "not pinned" in result.out  # not even the pins


def test_second_push_of_the_same_archive_replaces_the_model(tmp_path: Path, car: FakeCar, archive: Path, known: Path) -> None:
    assert push(tmp_path, known, "--car", car.url, "--archive", str(archive), "-f", *trust(car)).code == 0
    plan = push(tmp_path, known, "--car", car.url, "--archive", str(archive), "-d", "--json")
    assert plan.code == 0, plan.err
    planned = json.loads(plan.out)["steps"][0]["cars"][0]
    assert planned["action"] == "replace" and planned["trust"] == "pinned"
    assert push(tmp_path, known, "--car", car.url, "--archive", str(archive), "-f").code == 0
    assert car.uploads == [f"{MODEL}.tar.gz"] * 2 and car.installed(MODEL)
    newer_graph = pseudo_random_bytes(2, "newer graph", 200_000)
    newer = tmp_path / "newer" / f"{MODEL}.tar.gz"
    newer.parent.mkdir()
    newer.write_bytes(build_car_archive(newer_graph, METADATA))
    again = push(tmp_path, known, "--car", car.url, "--archive", str(newer), "-f")
    assert again.code == 0, again.err
    assert car.installed(MODEL)["model.pb"] == newer_graph


def test_the_name_comes_from_the_flag_or_the_archive_file(tmp_path: Path, car: FakeCar, archive: Path, known: Path) -> None:
    result = push(tmp_path, known, "--car", car.url, "--archive", str(archive), "--name", "league round.2", "-f", *trust(car))
    assert result.code == 0, result.err
    assert car.uploads == ["league_round_2.tar.gz"]  # the car names a model up to the first dot
    assert car.installed("league_round_2") and not car.installed(MODEL)


def test_load_loads_the_model_on_the_car(tmp_path: Path, car: FakeCar, archive: Path, known: Path) -> None:
    result = push(tmp_path, known, "--car", car.url, "--archive", str(archive), "--load", "-f", *trust(car))
    assert result.code == 0, result.err
    assert car.loaded == f"{MODEL}/model"
    assert "car-push: pushed fast-model to 1 car and loaded it" in result.out


def test_load_fails_in_the_cars_words_when_its_sensors_are_missing(tmp_path: Path, car: FakeCar, graph: bytes, known: Path) -> None:
    lidar = dict(model_metadata(), sensor=["FRONT_FACING_CAMERA", "LIDAR"])
    path = tmp_path / "lidar-model.tar.gz"
    path.write_bytes(build_car_archive(graph, json.dumps(lidar).encode()))
    result = push(tmp_path, known, "--car", car.url, "--archive", str(path), "--load", "-f", *trust(car))
    assert "LiDAR" in one_line_error(result) and "not connected" in result.err
    assert car.loaded is None and car.installed("lidar-model")  # installed, not loaded


def test_the_profile_lists_the_cars(tmp_path: Path, cars: tuple[FakeCar, FakeCar], archive: Path, known: Path) -> None:
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "garage.yaml").write_text(f"car_zip:\n  cars:\n    - {cars[0].url}\n    - {cars[1].url}/\n")
    result = push(tmp_path, known, "-p", "garage", "--archive", str(archive), "-f", *trust(*cars))
    assert result.code == 0, result.err
    assert all(car.installed(MODEL) for car in cars)
    config = drtasks("config", "--profile", "garage", dr_dir=tmp_path)
    assert "DR_CAR_ZIP_CARS" in config.out and f"{cars[0].url},{cars[1].url}/" in config.out


def test_a_profile_naming_one_car_without_a_list_is_refused_with_its_line(tmp_path: Path, archive: Path, known: Path) -> None:
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "garage.yaml").write_text("description: one car\ncar_zip:\n  cars: https://192.168.1.20\n")
    line = one_line_error(push(tmp_path, known, "-p", "garage", "--archive", str(archive), "-f"))
    assert "garage.yaml:3" in line and "car_zip.cars" in line


def test_built_from_s3_like_car_zip(tmp_path: Path, s3_server: Any, model: Any, upload_bucket: str, car: FakeCar, known: Path) -> None:
    from tests.drfc import UPLOAD_PREFIX, write_env_files

    dr_dir = write_env_files(tmp_path, s3_server, model, upload_bucket)
    result = drtasks("car-push", "--car", car.url, "--from", "s3", "--best", "-f", *trust(car), dr_dir=dr_dir, env=env(known))
    assert result.code == 0, result.err
    installed = car.installed(UPLOAD_PREFIX)  # named after the upload prefix, as car-zip names its file
    import hashlib

    assert hashlib.sha256(installed["model.pb"]).hexdigest() == model.pb_sha256[model.best]
    assert car.uploads == [f"{UPLOAD_PREFIX}.tar.gz"]


# ---------------------------------------------------------------- refusals


def test_wrong_password_is_one_line_and_nothing_is_uploaded(tmp_path: Path, car: FakeCar, archive: Path, known: Path) -> None:
    result = push(tmp_path, known, "--car", car.url, "--archive", str(archive), "-f", *trust(car), password="not-the-password")
    assert "wrong password" in one_line_error(result) and car.url in result.err
    assert car.uploads == [] and car.logins == 0
    assert "not-the-password" not in result.text


def test_no_password_and_no_terminal_is_refused(tmp_path: Path, car: FakeCar, archive: Path, known: Path) -> None:
    result = drtasks("car-push", "--car", car.url, "--archive", str(archive), "-f", *trust(car), dr_dir=tmp_path, env={"DRTASKS_KNOWN_CARS": str(known)})
    assert "DR_CAR_PASSWORD" in one_line_error(result)
    assert car.logins == 0


def test_the_fake_car_refuses_a_request_without_its_csrf_token(car: FakeCar) -> None:
    session = requests.Session()
    session.trust_env = False  # else a CA bundle from the environment would override verify=False
    session.verify = False
    session.headers["Referer"] = car.url + "/"
    page = session.get(car.url + "/login")
    assert 'name="csrf-token"' in page.text
    refused = session.post(car.url + "/login", data={"password": PASSWORD})
    assert refused.status_code == 400 and "The CSRF token is missing." in refused.text
    assert car.logins == 0
    token = page.text.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]
    assert session.post(car.url + "/login", data={"password": PASSWORD}, headers={"X-CSRFToken": token}).json() == {"redirect": "/home"}
    upload = session.post(car.url + "/api/uploadModels", files={"file": ("x.tar.gz", b"data")})
    assert upload.status_code == 400 and "The CSRF token is missing." in upload.text
    assert car.uploads == []


def test_the_fake_car_asks_for_the_login_cookie_first(car: FakeCar) -> None:
    session = requests.Session()
    session.trust_env = False
    answer = session.get(car.url + "/api/models", verify=False)
    assert answer.status_code == 401 and "401 Authorization Required" in answer.text


def test_a_refused_csrf_token_is_one_clear_error(car: FakeCar) -> None:
    client = CarClient(car.url, car.fingerprint)
    client.login(PASSWORD)
    car.restart_web_server()  # the session the token was bound to is gone
    with pytest.raises(DrtasksError, match="refused uploading x.tar.gz: The CSRF session token is missing."):
        client.upload("x.tar.gz", b"data")
    assert car.uploads == []


def test_a_car_answering_success_false_is_reported_with_its_message(tmp_path: Path, cars: tuple[FakeCar, FakeCar], archive: Path, known: Path) -> None:
    cars[0].loader_available = False
    result = push(tmp_path, known, "--car", cars[0].url, "--car", cars[1].url, "--archive", str(archive), "-f", *trust(*cars))
    line = one_line_error(result)
    assert "success: false" in line and "Failed to upload & optimize the model" in line and "1 of 2" in line
    assert cars[1].installed(MODEL)  # the other car still got it
    assert "Failed to upload & optimize the model" in result.out  # and the results table says so


def test_an_archive_the_car_would_ignore_is_refused_before_any_upload(tmp_path: Path, car: FakeCar, graph: bytes, known: Path) -> None:
    two_graphs = tmp_path / "two.tar.gz"
    two_graphs.write_bytes(tar_gz({"agent/model.pb": graph, "agent/other.pb": graph, "model_metadata.json": METADATA}))
    assert "exactly one .pb" in one_line_error(push(tmp_path, known, "--car", car.url, "--archive", str(two_graphs), "-f", *trust(car)))
    no_extension = tmp_path / "quirk.tar.gz"
    no_extension.write_bytes(tar_gz({"agent/model.pb": graph, "agent/checkpoint": b"x", "model_metadata.json": METADATA}))
    line = one_line_error(push(tmp_path, known, "--car", car.url, "--archive", str(no_extension), "-f", *trust(car)))
    assert "would ignore" in line and "agent/checkpoint" in line
    unknown_algorithm = tmp_path / "algo.tar.gz"
    unknown_algorithm.write_bytes(tar_gz({"agent/model.pb": graph, "model_metadata.json": json.dumps(dict(model_metadata(), training_algorithm="ppo")).encode()}))
    assert "training_algorithm" in one_line_error(push(tmp_path, known, "--car", car.url, "--archive", str(unknown_algorithm), "-f", *trust(car)))
    assert car.uploads == [] and car.logins == 0  # checked before even logging in


def test_the_fake_car_really_ignores_such_an_archive_and_the_read_back_catches_it(tmp_path: Path, car: FakeCar, graph: bytes, known: Path) -> None:
    """Both readings of the car agree, and a plan that slipped past the checks fails its proof."""
    ignored = tar_gz({"agent/model.pb": graph, "agent/checkpoint": b"x", "model_metadata.json": METADATA})
    connector = CarConnector(TrustPolicy(KnownCars(known), frozenset({car.fingerprint})), lambda: PASSWORD)
    target = CarTarget(car.url, car.fingerprint, "new, --trust-fingerprint", "add", "test", 1)
    plan = CarPushPlan("quirk", "quirk.tar.gz", len(ignored), "", rules.CarView("Clipped PPO", "Discrete", ("Front-facing camera",)), False, "test", (target,), ignored)
    [result] = apply_car_push(plan, connector)
    connector.close()
    assert result.uploaded and not result.listed and not result.ok
    assert "does not list quirk" in result.error
    assert car.installed("quirk") == {"quirk.tar.gz": ignored}  # the car kept the archive and installed nothing


def test_the_car_rules_agree_with_the_fake_car(car: FakeCar, graph: bytes) -> None:
    base = model_metadata()
    continuous = dict(base, action_space_type="continuous", training_algorithm="sac", action_space={"speed": {"low": 0.5, "high": 2}, "steering_angle": {"low": -30, "high": 30}})
    variants = {
        "good": base,
        "sac-continuous": continuous,
        "flat-speed": dict(continuous, action_space={"speed": {"low": 1, "high": 1}, "steering_angle": {"low": -30, "high": 30}}),
        "unknown-sensor": dict(base, sensor=["THERMAL_CAMERA"]),
        "unknown-type": dict(base, action_space_type="mixed"),
        "no-type-but-continuous": dict(continuous, action_space_type=None),
    }
    client = CarClient(car.url, car.fingerprint)
    client.login(PASSWORD)
    for name, metadata in variants.items():
        metadata = {k: v for k, v in metadata.items() if v is not None}
        body = json.dumps(metadata).encode()
        assert client.upload(f"{name}.tar.gz", tar_gz({"agent/model.pb": graph, "model_metadata.json": body})).success
        listed = any(m["model_folder_name"] == name for m in client.models())
        loadable = listed and client.load(name, "model").success
        try:
            rules.car_view(body)
            accepted = True
        except DrtasksError:
            accepted = False
        assert accepted == loadable, name
    client.close()


# ---------------------------------------------------------------- certificates


def test_first_use_without_a_terminal_shows_the_fingerprint_and_sends_nothing(tmp_path: Path, car: FakeCar, archive: Path, known: Path) -> None:
    line = one_line_error(push(tmp_path, known, "--car", car.url, "--archive", str(archive), "-f"))
    assert "not a known car" in line and show_fingerprint(car.fingerprint) in line and "--trust-fingerprint" in line
    assert car.logins == 0 and car.uploads == [] and not known.exists()


def test_a_fingerprint_for_another_car_is_refused(tmp_path: Path, cars: tuple[FakeCar, FakeCar], archive: Path, known: Path) -> None:
    line = one_line_error(push(tmp_path, known, "--car", cars[0].url, "--archive", str(archive), "-f", *trust(cars[1])))
    assert "no --trust-fingerprint names" in line
    assert cars[0].logins == 0


def test_the_pin_file_is_private_and_names_each_car(tmp_path: Path, cars: tuple[FakeCar, FakeCar], archive: Path, known: Path) -> None:
    assert push(tmp_path, known, "--car", cars[0].url, "--car", cars[1].url, "--archive", str(archive), "-f", *trust(*cars)).code == 0
    assert stat.S_IMODE(known.stat().st_mode) == 0o600
    assert stat.S_IMODE(known.parent.stat().st_mode) == 0o700
    pins = KnownCars(known)
    assert [pins.get(car.url) for car in cars] == [car.fingerprint for car in cars]
    assert PASSWORD not in known.read_text()


def test_a_changed_certificate_is_refused_with_both_fingerprints(tmp_path: Path, car: FakeCar, archive: Path, known: Path) -> None:
    assert push(tmp_path, known, "--car", car.url, "--archive", str(archive), "-f", *trust(car)).code == 0
    pinned = car.fingerprint
    car.renew_certificate()
    car.uploads.clear()
    logins = car.logins
    line = one_line_error(push(tmp_path, known, "--car", car.url, "--archive", str(archive), "-f", *trust(car)))
    assert "certificate changed" in line and show_fingerprint(pinned) in line and show_fingerprint(car.fingerprint) in line
    assert car.uploads == [] and car.logins == logins
    assert KnownCars(known).get(car.url) == pinned  # the pin is not silently replaced


def test_every_connection_is_checked_against_the_pin(car: FakeCar) -> None:
    """A session pinned to another certificate never sends a byte of its request (no password)."""
    client = CarClient(car.url, normalize_fingerprint("AB" * 32))
    with pytest.raises(DrtasksError, match="certificate changed") as refused:
        client.login(PASSWORD)
    assert show_fingerprint(car.fingerprint) in refused.value.message and show_fingerprint("ab" * 32) in refused.value.message
    assert car.logins == 0


def test_an_unreachable_car_is_one_line(tmp_path: Path, archive: Path, known: Path) -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    line = one_line_error(push(tmp_path, known, "--car", f"https://127.0.0.1:{port}", "--archive", str(archive), "-f"))
    assert f"cannot reach https://127.0.0.1:{port}: connection refused" in line


def test_car_addresses_and_fingerprints_are_normalised() -> None:
    assert car_url("192.168.1.20") == "https://192.168.1.20"
    assert car_url("https://DeepRacer.local:443/") == "https://deepracer.local"
    assert car_url("https://10.0.0.5:8443") == "https://10.0.0.5:8443"
    for bad in ("http://192.168.1.20", "https://car/login", ""):
        with pytest.raises(DrtasksError):
            car_url(bad)
    colon = show_fingerprint("ab" * 32)
    assert normalize_fingerprint(colon) == normalize_fingerprint("SHA256:" + colon.lower()) == "ab" * 32
    with pytest.raises(DrtasksError, match="64 hex digits"):
        normalize_fingerprint("abcd")


# ---------------------------------------------------------------- listing and secrets


def test_car_models_lists_what_the_car_holds(tmp_path: Path, cars: tuple[FakeCar, FakeCar], archive: Path, known: Path) -> None:
    assert push(tmp_path, known, "--car", cars[0].url, "--archive", str(archive), "-f", *trust(*cars)).code == 0
    listed = drtasks("car-models", "--car", cars[0].url, "--car", cars[1].url, "--json", *trust(cars[1]), dr_dir=tmp_path, env=env(known))
    assert listed.code == 0, listed.err
    models = json.loads(listed.out)
    names = {url: {row["name"]: row for row in rows} for url, rows in models.items()}
    assert set(names[cars[0].url]) == {MODEL, "Sample_single_cam"} and set(names[cars[1].url]) == {"Sample_single_cam"}
    row = names[cars[0].url][MODEL]
    assert row["loadable"] == "yes" and row["training_algorithm"] == "Clipped PPO" and row["sensors"] == "Front-facing camera"
    table = drtasks("car-models", "--car", cars[0].url, dr_dir=tmp_path, env=env(known))
    assert table.code == 0 and MODEL in table.out and "Sample_single_cam" in table.out


def test_the_password_never_appears_in_any_output(tmp_path: Path, cars: tuple[FakeCar, FakeCar], archive: Path, known: Path) -> None:
    runs = [
        drtasks("--debug", "car-push", "--car", cars[0].url, "--archive", str(archive), "-f", "--load", *trust(*cars), dr_dir=tmp_path, env=env(known)),
        drtasks("--debug", "car-push", "--car", cars[1].url, "--archive", str(archive), "-f", *trust(*cars), dr_dir=tmp_path, env=env(known, PASSWORD + "x")),
        drtasks("--debug", "car-models", "--car", cars[0].url, "--json", dr_dir=tmp_path, env=env(known)),
        drtasks("config", dr_dir=tmp_path, env=env(known)),
    ]
    assert [run.code for run in runs] == [0, 1, 0, 0], [run.err for run in runs]
    for run in runs:
        assert PASSWORD not in run.text


def run_on_terminal(args: list[str], env_overrides: dict[str, str], answers: list[tuple[str, str]], cwd: Path, timeout: float = 60) -> tuple[int, str]:
    """Run drtasks on a pseudo-terminal; type each answer once its prompt has appeared."""
    import select
    import subprocess
    import sys
    import time

    from tests.cli import PROJECT_ROOT

    environment = {k: v for k, v in os.environ.items() if not k.startswith("DR_")}
    environment.update(env_overrides, PYTHONPATH=str(PROJECT_ROOT), COLUMNS="200")
    master, slave = os.openpty()
    code = "import sys; sys.argv[0] = 'drtasks'; from drtasks.cli import main; main()"
    process = subprocess.Popen([sys.executable, "-c", code, *args], stdin=slave, stdout=slave, stderr=slave, env=environment, cwd=cwd, start_new_session=True)
    os.close(slave)
    seen, pending, deadline = "", list(answers), time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(master, 65536).decode(errors="replace")
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            seen += chunk
        if pending and pending[0][0] in seen:
            os.write(master, (pending.pop(0)[1] + "\n").encode())
        if process.poll() is not None and not ready:
            break
    process.wait(timeout=10)
    os.close(master)
    return process.returncode, seen


def test_on_a_terminal_a_new_car_is_shown_and_asked_about_and_the_password_is_not_echoed(tmp_path: Path, car: FakeCar, archive: Path, known: Path) -> None:
    code, seen = run_on_terminal(
        ["car-push", "--car", car.url, "--archive", str(archive), "-f"],
        {"DRTASKS_KNOWN_CARS": str(known)},
        [("Trust this certificate?", "y"), ("Car console password:", PASSWORD)],
        tmp_path,
    )
    assert code == 0, seen
    assert show_fingerprint(car.fingerprint) in seen and "not a known car" in seen
    assert PASSWORD not in seen
    assert KnownCars(known).get(car.url) == car.fingerprint and car.installed(MODEL)


def test_on_a_terminal_declining_the_certificate_sends_nothing(tmp_path: Path, car: FakeCar, archive: Path, known: Path) -> None:
    code, seen = run_on_terminal(["car-push", "--car", car.url, "--archive", str(archive), "-f"], {"DRTASKS_KNOWN_CARS": str(known), "DR_CAR_PASSWORD": PASSWORD}, [("Trust this certificate?", "n")], tmp_path)
    assert code == 1 and "certificate not trusted; nothing was sent to it" in seen
    assert car.logins == 0 and not known.exists()


def test_verify_runs_the_model_as_the_car_does_before_any_car_is_touched(tmp_path: Path, car: FakeCar, known: Path) -> None:
    from drtasks.sample_graph import sample_frozen_graph

    runnable = tmp_path / "runnable.tar.gz"
    runnable.write_bytes(build_car_archive(sample_frozen_graph(model_metadata(), 300_000), METADATA))
    result = push(tmp_path, known, "--car", car.url, "--archive", str(runnable), "--verify", "-f", *trust(car))
    assert result.code == 0, result.err
    assert result.out.count("on a blank frame") == len(model_metadata()["action_space"]) and "the car's choice" in result.out
    assert car.installed("runnable")


def test_verify_stops_a_model_the_car_could_not_run_before_logging_in(tmp_path: Path, car: FakeCar, archive: Path, known: Path) -> None:
    line = one_line_error(push(tmp_path, known, "--car", car.url, "--archive", str(archive), "--verify", "-f", *trust(car)))
    assert "the car could not load agent/model.pb" in line
    assert car.logins == 0 and car.uploads == []
