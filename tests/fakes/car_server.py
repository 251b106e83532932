"""A stand-in for one AWS DeepRacer car's web console, where no car can run.

Built from the car's own software, independently of drtasks' client and rules:
aws-deepracer-webserver-pkg (webserver.py, login.py, models.py, constants.py), the model loader
of aws-deepracer-systems-pkg (model_loader_node.py, model_install_state.py, file_system_utils.py)
and the car's nginx site (nginx.default: which paths need the login cookie, client_max_body_size).

Kept from the real car:
- HTTPS with a self-signed certificate (RSA 2048, CN deepracer.io, as nginx_install_certs.sh makes
  it), generated for each fake car; ``renew_certificate`` swaps it as re-imaging a car would;
- nginx in front: a body over 200 MiB gets nginx's 413 page; every path but ``/login*``, ``/``,
  ``/home`` and ``/static/`` needs the ``deepracer_token`` cookie, else nginx's 401 page;
- Flask with Flask-WTF's real ``CSRFProtect`` on the whole app, so POST/PUT (``/login`` too)
  need the token that the login page carries in ``<meta name="csrf-token">``, sent back in
  ``X-CSRFToken``; its own error pages ("The CSRF token is missing." ...). Flask here sees HTTPS
  itself, so Flask-WTF also checks the Referer, which the car's Flask behind nginx does not: this
  fake is stricter there, never more lenient;
- ``POST /login``: sha224 of the form field ``password`` against password.txt; a new token per
  login (one token per car: a new login ends the previous session), ``{"redirect": "/home"}``
  or the text ``failure``;
- ``POST|PUT /api/uploadModels``: multipart field ``file``; a name not ending in ``.tar.gz`` gets
  ``{"success": false, "message": "Failed to upload the model. Not a .tar.gz file"}``; the folder
  named after the file is replaced, the archive saved in it and handed to the model loader, which
  unpacks it, counts model files the way the car does (extension contained in the string
  ".pb", so files without an extension count too), installs exactly one as ``model.pb`` with the
  root ``model_metadata.json`` and a checksum, or silently ignores the archive. The answer is
  ``success: true`` either way, unless the model loader service is down (``loader_available``);
- ``GET /api/models``, ``GET /api/uploaded_model_list``, ``PUT /api/models/<folder>/<name>``
  (the load checks: installed, sensors known and connected, algorithm, action space type and
  values, LiDAR config), ``POST /api/deleteModels``, ``GET /api/is_model_installed``, with the
  car's JSON and messages.
"""

from __future__ import annotations

import datetime
import fnmatch
import gzip
import hashlib
import hmac
import json
import os
import secrets
import shutil
import ssl
import tarfile
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask import Flask, Response, flash, jsonify, make_response, render_template_string, request
from flask_wtf.csrf import CSRFProtect
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.utils import secure_filename

NGINX_BODY_LIMIT = 200 * 1024 * 1024  # client_max_body_size 200M
TOKEN_COOKIE = "deepracer_token"

SENSORS = {
    "observation": "Camera",
    "LIDAR": "LiDAR",
    "SECTOR_LIDAR": "LiDAR",
    "LEFT_CAMERA": "Left camera",
    "FRONT_FACING_CAMERA": "Front-facing camera",
    "STEREO_CAMERAS": "Stereo camera",
}
ALGORITHMS = {"clipped_ppo": "Clipped PPO", "sac": "Soft actor critic"}
ACTION_SPACE_TYPES = {"discrete": "Discrete", "continuous": "Continuous"}
LIDAR_KEYS = ("num_values", "min_angle", "max_angle", "min_distance", "max_distance", "clipping_distance", "num_sectors")
LOADER_EXTENSIONS = (".pb", ".json", ".gz", ".tar")
MODEL_EXTENSION_STRING = ".pb"  # the loader tests `ext in ".pb"`: a substring test

NGINX_PAGE = "<html>\r\n<head><title>{status}</title></head>\r\n<body>\r\n<center><h1>{status}</h1></center>\r\n<hr><center>nginx/1.18.0 (Ubuntu)</center>\r\n</body>\r\n</html>\r\n"

LOGIN_PAGE = """<!DOCTYPE html>
<html>
<head>
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <meta name="csrf-token" content="{{ csrf_token() }}" />
  <title>AWS DeepRacer </title>
</head>
<body>
  <input type="password" id="password" name="password" class="form-control" required autofocus>
  <p>{% for message in get_flashed_messages() %}{{ message }} {% endfor %}</p>
  <button id="login_submit">Access vehicle</button>
</body>
</html>
"""

INDEX_PAGE = """<!DOCTYPE html>
<html>
<head>
  <meta name="csrf-token" content="{{ csrf_token() }}" />
  <title>AWS DeepRacer</title>
</head>
<body><div id="root"></div></body>
</html>
"""


def make_certificate(common_name: str = "deepracer.io") -> tuple[bytes, bytes, bytes]:
    """A self-signed certificate like the car's: (certificate PEM, key PEM, certificate DER)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Amazon.com Inc."),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption())
    return certificate.public_bytes(serialization.Encoding.PEM), key_pem, certificate.public_bytes(serialization.Encoding.DER)


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass

    def log(self, *args: Any, **kwargs: Any) -> None:
        pass


@dataclass
class SensorStatus:
    """What the car's sensor service reports: 1 = not connected (the car's convention)."""

    single_camera_status: int = 0
    stereo_camera_status: int = 1
    lidar_status: int = 1


@dataclass
class FakeCar:
    """One car on 127.0.0.1 at a free port, serving HTTPS from a thread."""

    root: Path
    password: str = "deepracer-secret"
    sensors: SensorStatus = field(default_factory=SensorStatus)
    loader_available: bool = True  # False: the model loader service does not answer
    loaded: str | None = None  # "<folder>/<name>" once a model is loaded
    uploads: list[str] = field(default_factory=list)  # file names of every upload received
    logins: int = 0

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        self.artifacts = self.root / "artifacts"
        self.temp = self.root / "tmp"
        self.artifacts.mkdir(parents=True, exist_ok=True)
        self.temp.mkdir(exist_ok=True)
        self.set_password(self.password)
        self._lock = threading.Lock()
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.renew_certificate()
        self._server: Any = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ life cycle

    def renew_certificate(self) -> None:
        """A new key and certificate, served from the next handshake on (a re-imaged car)."""
        cert_pem, key_pem, der = make_certificate()
        cert_file, key_file = self.root / "nginx-selfsigned.crt", self.root / "nginx-selfsigned.key"
        cert_file.write_bytes(cert_pem)
        key_file.write_bytes(key_pem)
        self._context.load_cert_chain(cert_file, key_file)
        self.certificate_der = der
        self.fingerprint = hashlib.sha256(der).hexdigest()

    def start(self) -> "FakeCar":
        self._app = self.app()
        self._server = make_server("127.0.0.1", 0, self._app, threaded=True, request_handler=_QuietHandler, ssl_context=self._context)
        self._thread = threading.Thread(target=self._server.serve_forever, name=f"fake-car-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def port(self) -> int:
        return int(self._server.server_port)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    # ------------------------------------------------------------------ state helpers for tests

    def restart_web_server(self) -> None:
        """The console process restarts with a new secret key: Flask sessions (and the CSRF
        tokens bound to them) are gone, the login token file stays."""
        self._app.config["SECRET_KEY"] = secrets.token_hex(16)

    def set_password(self, password: str) -> None:
        self.password = password
        (self.root / "password.txt").write_text(hashlib.sha224(password.encode("utf-8")).hexdigest())

    def reset(self) -> None:
        """Back to a car with only its sample model, nobody logged in."""
        with self._lock:
            shutil.rmtree(self.artifacts, ignore_errors=True)
            self.artifacts.mkdir()
            (self.root / "token.txt").unlink(missing_ok=True)
            self.loaded = None
            self.uploads.clear()
            self.logins = 0
            self.loader_available = True
            self.sensors = SensorStatus()
        sample = {"action_space": [{"steering_angle": 0, "speed": 1}], "sensor": ["FRONT_FACING_CAMERA"], "training_algorithm": "clipped_ppo", "action_space_type": "discrete"}
        self.install("Sample_single_cam", b"sample graph", json.dumps(sample).encode())

    def install(self, folder: str, pb: bytes, metadata: bytes) -> None:
        """A model already on the car, installed as the loader installs one."""
        target = self.artifacts / folder
        target.mkdir(parents=True, exist_ok=True)
        (target / "model.pb").write_bytes(pb)
        (target / "model_metadata.json").write_bytes(metadata)
        (target / "checksum.txt").write_text(hashlib.md5(pb).hexdigest())

    def installed(self, folder: str) -> dict[str, bytes]:
        """The files of one model folder, as the car holds them."""
        base = self.artifacts / folder
        return {p.relative_to(base).as_posix(): p.read_bytes() for p in sorted(base.rglob("*")) if p.is_file()} if base.is_dir() else {}

    # ------------------------------------------------------------------ the car's model loader

    def _install_uploaded(self, upload_dir: Path) -> None:
        """model_loader_node.console_model_action(action=1) on the folder holding the upload."""
        for entry in sorted(upload_dir.iterdir()):
            if not entry.is_file() or not _loader_extensions(entry.name):
                continue
            name = entry.name.split(".", 1)[0]
            work = self.temp / f"aws-temp-model-{name}"
            if work.exists():
                continue  # "ignoring model with duplicate name"
            work.mkdir()
            try:
                if not _extract(entry, work):
                    continue
                models = [p for p in sorted(work.rglob("*")) if p.is_file() and os.path.splitext(p.name)[1] in MODEL_EXTENSION_STRING]
                if len(models) != 1:
                    continue  # none, or "more than one models found in the archive, ignoring all of them"
                name = name.replace(" ", "_")
                install_dir = self.artifacts / name
                checksum = hashlib.md5(models[0].read_bytes()).hexdigest()
                checksum_file = install_dir / "checksum.txt"
                if checksum_file.is_file() and checksum_file.read_text().strip() == checksum:
                    continue  # "model already installed, ignoring"
                shutil.rmtree(install_dir, ignore_errors=True)
                install_dir.mkdir(parents=True)
                shutil.copy(models[0], install_dir / ("model" + os.path.splitext(models[0].name)[1]))
                if (work / "model_metadata.json").is_file():
                    shutil.copy(work / "model_metadata.json", install_dir)
                checksum_file.write_text(checksum)
            finally:
                shutil.rmtree(work, ignore_errors=True)

    # ------------------------------------------------------------------ the web console

    def app(self) -> Flask:
        app = Flask(f"fake_car_{id(self)}")
        app.config.update(SECRET_KEY=secrets.token_hex(16), SESSION_COOKIE_SECURE=True, REMEMBER_COOKIE_SECURE=True)
        # nginx runs before Flask: registered before CSRFProtect's own hook, so it answers first.
        app.before_request(self._nginx)
        CSRFProtect(app)
        car = self

        def authenticated() -> bool:
            token_file = car.root / "token.txt"
            if not token_file.exists():
                return False
            return hmac.compare_digest(str(request.cookies.get(TOKEN_COOKIE)), token_file.read_text())

        @app.get("/")
        @app.get("/home")
        def home() -> Any:
            return render_template_string(INDEX_PAGE if authenticated() else LOGIN_PAGE)

        @app.route("/login", methods=["GET", "POST"])
        def login() -> Any:
            if request.method == "POST":
                response = make_response(jsonify({"redirect": "/home"}), 200)
                stored = (car.root / "password.txt").read_text()
                given = hashlib.sha224(request.form["password"].encode("utf-8")).hexdigest()
                if hmac.compare_digest(given, stored):
                    token = str(uuid.uuid4())
                    (car.root / "token.txt").write_text(token)
                    car.logins += 1
                    response.set_cookie(TOKEN_COOKIE, token, max_age=datetime.timedelta(hours=1), secure=True)
                    return response
                flash("Incorrect password. Try again.")
                return "failure"
            return render_template_string(LOGIN_PAGE)

        @app.route("/logout", methods=["GET"])
        @app.route("/redirect_login", methods=["GET", "POST"])
        def logout() -> Any:
            response = make_response(render_template_string(LOGIN_PAGE), 200)
            response.set_cookie(TOKEN_COOKIE, "", expires=0)
            return response

        @app.get("/api/models")
        def list_models() -> Any:
            return jsonify(car._models_listing())

        @app.route("/api/models/<folder>/<name>", methods=["PUT", "POST"])
        def load_model(folder: str, name: str) -> Any:
            ok, reason = car._load(folder, name)
            return jsonify({"success": True}) if ok else jsonify({"success": False, "reason": reason})

        @app.get("/api/uploaded_model_list")
        def uploaded_models() -> Any:
            return jsonify([car._folder_info(entry) for entry in sorted(car.artifacts.iterdir())])

        @app.route("/api/uploadModels", methods=["POST", "PUT"])
        def upload() -> Any:
            file_obj = request.files["file"]
            file_name = file_obj.filename or ""
            car.uploads.append(file_name)
            if not file_name.endswith(".tar.gz"):
                return jsonify({"success": False, "message": "Failed to upload the model. Not a .tar.gz file"})
            with car._lock:
                upload_dir = car.artifacts / file_name[:-7]
                shutil.rmtree(upload_dir, ignore_errors=True)
                upload_dir.mkdir(parents=True)
                file_obj.save(upload_dir / secure_filename(file_name))
                if not car.loader_available:
                    return jsonify({"success": False, "message": "Failed to upload & optimize the model"})
                car._install_uploaded(upload_dir)
            return jsonify({"success": True, "message": "Model uploaded successfully to your vehicle"})

        @app.route("/api/deleteModels", methods=["POST", "PUT"])
        def delete_models() -> Any:
            deleted_all = True
            for name in request.json["filenames"]:
                path = car.artifacts / name
                if path.resolve().parent != car.artifacts.resolve() or not path.is_dir():
                    deleted_all = False
                    continue
                shutil.rmtree(path)
            if deleted_all:
                return jsonify({"success": True, "message": "Models deleted successfully from your vehicle"})
            return jsonify({"success": False, "message": "Failed to delete the selected models"})

        @app.get("/api/is_model_installed")
        def is_model_installed() -> Any:
            if (car.artifacts / str(request.args.get("filename"))).exists():
                return jsonify({"success": True, "message": "Model is installed"})
            return jsonify({"success": False, "message": "Model is not installed"})

        return app

    def _nginx(self) -> Response | None:
        """nginx.default: the body limit first, then auth_request for everything but the login pages."""
        if request.content_length is not None and request.content_length > NGINX_BODY_LIMIT:
            return Response(NGINX_PAGE.format(status="413 Request Entity Too Large"), 413, content_type="text/html")
        path = request.path
        if path == "/auth":
            return Response(NGINX_PAGE.format(status="404 Not Found"), 404, content_type="text/html")  # internal location
        if path.startswith(("/login", "/static/")) or path in ("/", "/home"):
            return None
        token_file = self.root / "token.txt"
        cookie = str(request.cookies.get(TOKEN_COOKIE))
        if not token_file.exists() or not hmac.compare_digest(cookie, token_file.read_text()):
            return Response(NGINX_PAGE.format(status="401 Authorization Required"), 401, content_type="text/html")
        return None

    # ------------------------------------------------------------------ models.py

    def _metadata(self, folder: str) -> tuple[str, dict[str, Any]]:
        path = self.artifacts / folder / "model_metadata.json"
        if not path.is_file():
            return "No model_metadata_file for the model selected", {}
        try:
            return "", json.loads(path.read_text())
        except Exception:
            return "Error while reading model_metadata.json", {}

    @staticmethod
    def _sensors(metadata: dict[str, Any]) -> tuple[str, list[str]]:
        if "sensor" not in metadata:
            return "", ["observation"]
        try:
            names = set(metadata["sensor"])
        except TypeError:
            return "Error while getting sensor names from model_metadata.json", []
        if not all(isinstance(n, str) and n in SENSORS for n in names):
            return "The sensor configurations of your vehicle and trained model must match", []
        return "", sorted(names)

    @staticmethod
    def _enum(metadata: dict[str, Any], key: str, known: dict[str, str], default: str, message: str) -> tuple[str, str]:
        value = metadata.get(key, default)
        return ("", value) if isinstance(value, str) and value in known else (message, "")

    def _describe(self, metadata: dict[str, Any]) -> tuple[str, list[str], str, str]:
        error, sensors = self._sensors(metadata)
        if error:
            return error, [], "", ""
        error, algorithm = self._enum(metadata, "training_algorithm", ALGORITHMS, "clipped_ppo", "The training algorithm value is incorrect")
        if error:
            return error, [], "", ""
        error, space_type = self._enum(metadata, "action_space_type", ACTION_SPACE_TYPES, "discrete", "The action space type value is incorrect")
        return error, sensors, algorithm, space_type

    def _missing_sensors(self, sensors: list[str]) -> str:
        missing = []
        if ("SECTOR_LIDAR" in sensors or "LIDAR" in sensors) and self.sensors.lidar_status == 1:
            missing.append("LiDAR")
        if "STEREO_CAMERAS" in sensors and self.sensors.stereo_camera_status == 1:
            missing.append("Stereo camera")
        if any(s in sensors for s in ("FRONT_FACING_CAMERA", "observation", "LEFT_CAMERA")) and self.sensors.single_camera_status == 1:
            missing.append("Front-facing camera")
        if missing:
            return f"Check the connections for the {', '.join(missing)} {'sensors' if len(missing) > 1 else 'sensor'}"
        return ""

    def _models_listing(self) -> dict[str, Any]:
        status = {
            "camera_status": "not_connected" if self.sensors.single_camera_status == 1 else "connected",
            "stereo_status": "not_connected" if self.sensors.stereo_camera_status == 1 else "connected",
            "lidar_status": "not_connected" if self.sensors.lidar_status == 1 else "connected",
        }
        enabled, disabled = [], []
        for root, _, files in os.walk(self.artifacts):
            folder = os.path.basename(root) if Path(root) != self.artifacts else ""
            for file_name in fnmatch.filter(sorted(files), "*.pb"):
                if not folder:
                    continue
                error, metadata = self._metadata(folder)
                if error:
                    continue
                error, sensors, algorithm, space_type = self._describe(metadata)
                if error:
                    continue
                is_disabled = bool(self._missing_sensors(sensors))
                model = {
                    "model_name": file_name[: -len(".pb")],
                    "model_folder_name": folder,
                    "model_training_algorithm": ALGORITHMS[algorithm],
                    "model_action_space_type": ACTION_SPACE_TYPES[space_type],
                    "model_sensors": [SENSORS[s] for s in sensors],
                    "is_select_disabled": is_disabled,
                }
                (disabled if is_disabled else enabled).append(model)
        return {"models": enabled + disabled, "sensor_status": status}

    def _folder_info(self, path: Path) -> dict[str, Any]:
        algorithm = space_type = "--"
        sensor_names = "--"
        error, metadata = self._metadata(path.name) if path.is_dir() else ("not a folder", {})
        if not error:
            error, sensors = self._sensors(metadata)
            if not error:
                sensor_names = ", ".join(SENSORS[s] for s in sensors)
            error, value = self._enum(metadata, "training_algorithm", ALGORITHMS, "clipped_ppo", "x")
            if not error:
                algorithm = ALGORITHMS[value]
            error, value = self._enum(metadata, "action_space_type", ACTION_SPACE_TYPES, "discrete", "x")
            if not error:
                space_type = ACTION_SPACE_TYPES[value]
        return {
            "name": path.name,
            "size": _du_size(path),
            "creation_time": path.stat().st_mtime,
            "status": "Ready",
            "training_algorithm": algorithm,
            "action_space_type": space_type,
            "sensors": sensor_names,
        }

    def _load(self, folder: str, name: str) -> tuple[bool, str]:
        checksum = self.artifacts / folder / "checksum.txt"
        if not checksum.is_file() or not checksum.read_text().strip():
            return False, "Model optimization failed!"
        error, metadata = self._metadata(folder)
        if error:
            return False, error
        error, sensors, _, space_type = self._describe(metadata)
        if error:
            return False, error
        if "action_space" not in metadata:
            return False, "No action space value found in model_metadata.json"
        if not _valid_action_space(metadata["action_space"], space_type):
            return False, "Incorrect values in model_metadata.json"
        missing = self._missing_sensors(sensors)
        if missing:
            return False, missing
        if ("LIDAR" in sensors or "SECTOR_LIDAR" in sensors) and "lidar_config" in metadata:
            config = metadata["lidar_config"]
            if not isinstance(config, dict) or any(key not in config for key in LIDAR_KEYS):
                return False, "Unable to connect to vehicle with current LiDAR configuration"
        if not (self.artifacts / folder / f"{name}.pb").is_file():
            return False, "Model load failed! Please check the ROS logs"
        self.loaded = f"{folder}/{name}"
        return True, ""


def _loader_extensions(file_name: str) -> bool:
    """model_loader_node.get_list_of_archives: at least one supported extension at the end."""
    extension = os.path.splitext(file_name)[1]
    return extension in LOADER_EXTENSIONS


def _extract(path: Path, work: Path) -> bool:
    """model_loader_node.extract_archive: peel .gz, .tar, .pb/.json off the name, one action each."""
    current = path
    try:
        while True:
            stem, extension = os.path.splitext(current.name)
            if extension not in LOADER_EXTENSIONS:
                return True
            target = work / stem
            if extension == ".gz":
                with gzip.open(current, "rb") as source, open(target, "wb") as out:
                    shutil.copyfileobj(source, out)
            elif extension == ".tar":
                with tarfile.open(current, "r:") as tar:
                    tar.extractall(work, filter="data")  # the car extracts everything; tests stay in their folder
            else:
                shutil.copy(current, work)
            current = target
    except Exception:
        return False  # "failed to decompress": the model is ignored


def _valid_action_space(space: Any, space_type: str) -> bool:
    try:
        if space_type == "discrete":
            return all("steering_angle" in action and "speed" in action for action in space)
        if "steering_angle" not in space or "speed" not in space:
            return False
        steering, speed = space["steering_angle"], space["speed"]
        return all(k in steering and k in speed for k in ("high", "low")) and steering["high"] > steering["low"] and speed["high"] > speed["low"]
    except TypeError:
        return False


def _du_size(path: Path) -> str:
    """`du -sh`: 4 KiB blocks, one decimal below 10."""
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    blocks = 1 + sum(-(-p.stat().st_size // 4096) for p in files)
    size = blocks * 4096.0
    for unit in ("K", "M", "G"):
        size /= 1024
        if size < 1024 or unit == "G":
            return f"{size:.1f}{unit}" if size < 10 else f"{size:.0f}{unit}"
    return f"{size:.0f}G"  # pragma: no cover
