"""One DeepRacer on AWS (DRoA) v1.2.5 deployment: its env.js, its API gateway and its backend.

Built from DRoA's source, read for the contract (nothing copied): the Smithy model
(libs/model/src/main/smithy: routes, shapes, errors), the API Gateway set-up (apps/infra api.ts:
IAM SigV4 on every route, the "full" request validator answering ``{"errorMessage": ...}``), the
handlers (libs/lambda/src/api/handlers: importModel, listModels, getModel, deleteModel, stopModel,
getAssetUrl, listEvaluations, getEvaluation, createEvaluation, listLeaderboards, getLeaderboard,
createSubmission, listSubmissions, testRewardFunction), ImportHelper.ts and the import workflow
(importWorkflow.ts: reward validation, then model validation, then asset import, then completion).
Cognito is not faked: env.js names the pools of a moto server. S3 is not faked: the upload bucket,
the model bucket and every presigned URL live on moto's S3 behind ``tests.fakes.s3_put_only``,
which enforces the racer's put-only policy and the URLs' expiry.

What it answers as DRoA does:
- API Gateway: a request without a valid SigV4 signature (``execute-api``, this region, the
  identity pool's credentials, verified by ``tests.fakes.sigv4``) gets 403 ``{"message": ...}``;
  an unknown route 403 "Missing Authentication Token"; a body outside the Smithy constraints 400
  ``{"errorMessage": "Invalid request body: [...]"}`` before any handler runs;
- Smithy framework: a label or enum outside its constraint 400 ValidationException; an unmodelled
  error 500 with ``x-amzn-errortype: InternalFailure`` and the body ``{}`` (e.g. a required file
  missing from the upload: ImportHelper rethrows S3's NoSuchKey);
- handlers: 400 BadRequestError / 404 NotFoundError ``{"message": ...}`` with DRoA's texts;
- ``POST /importmodel``: the synchronous checks, then status IMPORTING and the workflow in a thread:
  the reward validator (``tests.fakes.droa_reward_validator``, a child process), the model
  validation (``tests.fakes.droa_model_validator``, TensorFlow), the asset copy; READY, or ERROR
  with ``importErrorMessage`` ("Reward Function Validation ...", "Model validation failed: ...");
- ``GET /models``: pages of ``page_size`` (DRoA: 100) with an opaque ``token``;
- ``DELETE /models/{id}``: only READY or ERROR (else 400), then DELETING and gone a moment later;
- ``GET /models/{id}/getasset``: presigned URLs (logs 3600 s, physical model 300 s, virtual model
  900 s, as getAssetUrl.ts asks S3Helper for); VIRTUAL_MODEL answers ``{"status": "QUEUED"}``
  while it is packaged; PHYSICAL_CAR_MODEL exists only for models trained in DRoA.
"""

from __future__ import annotations

import base64
import io
import json
import re
import secrets
import string
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

from tests.fakes.sigv4 import Secret, verify

TRACKS_FILE = Path(__file__).resolve().parents[2] / "drtasks" / "data" / "droa_tracks.json"
HERE = Path(__file__).resolve().parent
STAGE = "/prod"

CAR_COLORS = {"BLACK", "BLUE", "BROWN", "GOLDEN", "GOLDENPINK", "GREEN", "GREY", "ORANGE", "PINK",
              "PURPLE", "RED", "SKY_BLUE", "TEAL", "WHITE", "YELLOW"}
DEEPRACER_COLORS = {"BLACK", "BLUE", "GREY", "ORANGE", "PURPLE", "RED", "WHITE"}
# A sample of SimAppCarShells (shell, colour) by simulator id; unknown ids fall back to a white deepracer.
SHELL_IDS = {"f1_2021": ("F1", "RED"), "f1_car_tron_01": ("TRON", "BLUE"), "f1_kart": ("KART", "RED"),
             "f1_snail": ("SNAIL", "PINK")}
ASSET_TYPES = ["VIRTUAL_MODEL", "TRAINING_LOGS", "EVALUATION_LOGS", "PHYSICAL_CAR_MODEL", "VIDEOS"]
RESOURCE_ID = re.compile(r"^[A-Za-z0-9]{15}$")
NAME = re.compile(r"^[a-zA-Z0-9-]+$")
DESCRIPTION = re.compile(r"^[a-zA-Z0-9- ]+$")
ITEM_NOT_FOUND = "Item not found."
# s3Helper.getPresignedUrl's expiries (seconds): default, physical model, virtual model.
URL_SECONDS = {"default": 3600, "PHYSICAL_CAR_MODEL": 300, "VIRTUAL_MODEL": 900}


class ApiError(Exception):
    def __init__(self, status: int, body: dict[str, Any], error_type: str | None = None) -> None:
        super().__init__(body.get("message") or body.get("errorMessage") or error_type)
        self.status, self.body, self.error_type = status, body, error_type


def bad_request(message: str) -> ApiError:
    return ApiError(400, {"message": message}, "BadRequestError")


def not_found(message: str = ITEM_NOT_FOUND) -> ApiError:
    return ApiError(404, {"message": message}, "NotFoundError")


def internal_failure() -> ApiError:
    return ApiError(500, {}, "InternalFailure")


def validation_exception(path: str, value: Any, constraint: str) -> ApiError:
    message = f"Value {value} at '{path}' failed to satisfy constraint: {constraint}"
    return ApiError(400, {"message": f"1 validation error detected. {message}", "fieldList": [{"path": path, "message": message}]},
                    "ValidationException")


def gateway_body_error(detail: str) -> ApiError:
    return ApiError(400, {"errorMessage": f"Invalid request body: [{detail}]"}, "BadRequestException")


def new_id() -> str:
    return "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(15))


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@dataclass
class FakeModel:
    model_id: str
    profile_id: str
    name: str
    description: str | None
    status: str = "IMPORTING"
    created_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    import_error: str | None = None
    car: tuple[str, str] = ("DEEPRACER", "WHITE")
    track: dict[str, str] = field(default_factory=dict)
    race_type: str = "TIME_TRIAL"
    metadata: dict[str, Any] = field(default_factory=dict)
    physical_artifact: str | None = None  # models trained in DRoA only
    packaging_status: str | None = None
    virtual_artifact: str | None = None
    logs_archive: str | None = None
    file_size: int = 0

    @property
    def root(self) -> str:
        return f"{self.profile_id}/models/{self.model_id}/"

    @property
    def metrics_key(self) -> str:
        return f"{self.root}metrics/training/training-deepracerindy-training-{self.model_id}.json"


@dataclass
class FakeEvaluation:
    evaluation_id: str
    model_id: str
    profile_id: str
    name: str
    status: str = "COMPLETED"
    created_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    metrics: list[dict[str, Any]] = field(default_factory=list)
    logs_key: str | None = None


@dataclass
class FakeLeaderboard:
    leaderboard_id: str
    name: str
    track: dict[str, str]
    open_time: datetime
    close_time: datetime
    max_submissions: int = 3
    race_type: str = "TIME_TRIAL"
    submissions: list[dict[str, Any]] = field(default_factory=list)


class ModelValidator:
    """The TensorFlow child of ``droa_model_validator``, started once and shared."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: subprocess.Popen[str] | None = None

    def validate(self, folder: str) -> dict[str, Any]:
        with self._lock:
            if self._process is None or self._process.poll() is not None:
                self._process = subprocess.Popen(
                    [sys.executable, str(HERE / "droa_model_validator.py")], stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE, text=True, bufsize=1,
                )
                assert self._process.stdout is not None
                json.loads(self._process.stdout.readline())
            assert self._process.stdin is not None and self._process.stdout is not None
            self._process.stdin.write(json.dumps({"folder": folder}) + "\n")
            self._process.stdin.flush()
            return json.loads(self._process.stdout.readline())

    def stop(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.wait()


_VALIDATOR = ModelValidator()


class FakeDroa:
    """Serve env.js and the API on 127.0.0.1 at a free port; run imports in background threads."""

    def __init__(
        self,
        *,
        region: str,
        user_pool_id: str,
        user_pool_client_id: str,
        identity_pool_id: str,
        upload_bucket: str,
        s3_endpoint_url: str,
        backend: Secret,
        racers: dict[str, tuple[Secret, str]],
        model_bucket: str | None = None,
        page_size: int = 100,
        import_seconds: float = 0.3,
    ) -> None:
        import boto3
        from botocore.config import Config

        self.region = region
        self.user_pool_id = user_pool_id
        self.user_pool_client_id = user_pool_client_id
        self.identity_pool_id = identity_pool_id
        self.upload_bucket = upload_bucket
        self.racers = racers  # access key id -> (secret, profile id)
        self.page_size = page_size
        self.import_seconds = import_seconds
        self.clock_offset = timedelta(0)
        self.s3 = boto3.client(
            "s3", endpoint_url=s3_endpoint_url, region_name=region, aws_access_key_id=backend.access_key_id,
            aws_secret_access_key=backend.secret_access_key,
            config=Config(signature_version="s3v4", s3={"addressing_style": "path"},
                          request_checksum_calculation="when_required", response_checksum_validation="when_required"),
        )
        self.model_bucket = model_bucket or f"droa-models-{uuid.uuid4().hex[:12]}"
        self.s3.create_bucket(Bucket=self.model_bucket, CreateBucketConfiguration={"LocationConstraint": region})
        self.models: dict[str, FakeModel] = {}
        self.evaluations: dict[str, FakeEvaluation] = {}
        self.leaderboards: dict[str, FakeLeaderboard] = {}
        self.calls: list[tuple[str, str]] = []
        self.hold = threading.Event()  # set: imports stay IMPORTING until cleared
        self.tracks = {t["trackId"]: t for t in json.loads(TRACKS_FILE.read_text())["tracks"]}
        self._lock = threading.RLock()
        self._threads: list[threading.Thread] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    # -- life cycle

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def api_url(self) -> str:
        return self.url + STAGE

    def start(self) -> "FakeDroa":
        self._thread.start()
        return self

    def stop(self) -> None:
        self.hold.clear()
        for thread in list(self._threads):
            thread.join(timeout=30)
        self._server.shutdown()
        self._server.server_close()

    def now(self) -> datetime:
        return datetime.now(timezone.utc) + self.clock_offset

    def env_js(self) -> str:
        # As the site's build writes it: unquoted keys, single quotes, trailing comma.
        return (
            "window.EnvironmentConfig = {\n"
            f"  region: '{self.region}',\n  userPoolId: '{self.user_pool_id}',\n"
            f"  userPoolClientId: '{self.user_pool_client_id}',\n  identityPoolId: '{self.identity_pool_id}',\n"
            f"  apiEndpointUrl: '{self.api_url}',\n  uploadBucketName: '{self.upload_bucket}',\n"
            "  iotEndpoint: 'a1b2c3-ats.iot.eu-west-1.amazonaws.com',\n  solutionVersion: 'v1.2.5',\n"
            "  namespace: 'deepracer',\n};\n"
        )

    def _background(self, target: Any, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def wait_idle(self, timeout: float = 60) -> None:
        """Wait until every background job (imports, deletions, packaging) has finished."""
        deadline = time.monotonic() + timeout
        for thread in list(self._threads):
            thread.join(max(0.0, deadline - time.monotonic()))

    def presign(self, bucket: str, key: str, seconds: int, filename: str | None = None) -> str:
        params: dict[str, Any] = {"Bucket": bucket, "Key": key}
        if filename:
            params["ResponseContentDisposition"] = f'attachment; filename="{filename}"'
        return self.s3.generate_presigned_url("get_object", Params=params, ExpiresIn=seconds)

    # -- test helpers (what a deployment would hold before the test)

    def add_model(self, name: str, profile_id: str, status: str = "READY", **fields: Any) -> FakeModel:
        model = FakeModel(new_id(), profile_id, name, fields.pop("description", None), status=status, **fields)
        with self._lock:
            self.models[model.model_id] = model
        return model

    def add_trained_model(self, name: str, profile_id: str, car_archive: bytes) -> FakeModel:
        """A model trained in DRoA itself: it has a physical car archive, which imports never have."""
        model = self.add_model(name, profile_id)
        model.physical_artifact = f"{model.root}output/model.tar.gz"
        self.s3.put_object(Bucket=self.model_bucket, Key=model.physical_artifact, Body=car_archive)
        return model

    def add_leaderboard(self, name: str, track_id: str, direction: str = "COUNTER_CLOCKWISE", *, opened: bool = True,
                        max_submissions: int = 3) -> FakeLeaderboard:
        now = self.now()
        board = FakeLeaderboard(new_id(), name, {"trackId": track_id, "trackDirection": direction},
                                now - timedelta(days=1), now + (timedelta(days=7) if opened else timedelta(days=-0.5)),
                                max_submissions)
        with self._lock:
            self.leaderboards[board.leaderboard_id] = board
        return board

    # -- reading the upload (the backend's own rights: Get and List)

    def _read_text(self, bucket: str, key: str) -> str:
        try:
            body = self.s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
        except self.s3.exceptions.NoSuchKey:
            raise internal_failure() from None  # ImportHelper rethrows NoSuchKey: an unmodelled error
        if not body:
            raise internal_failure()  # "... not found at ..." thrown as a plain Error
        return body

    def _list(self, bucket: str, prefix: str) -> list[str]:
        keys: list[str] = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            keys += [item["Key"] for item in page.get("Contents", [])]
        return keys

    # -- POST /importmodel

    @staticmethod
    def _gateway_validate_import(payload: Any) -> None:
        """API Gateway's "full" request validator over the ImportModel input schema."""
        if not isinstance(payload, dict):
            raise gateway_body_error('instance type (array) does not match any allowed primitive type (allowed: ["object"])')
        missing = [k for k in ("modelName", "s3Bucket", "s3Path") if k not in payload]
        if missing:
            raise gateway_body_error(f"object has missing required properties ({json.dumps(missing)})")
        for key, pattern, longest in (("modelName", NAME, 64), ("modelDescription", DESCRIPTION, 255)):
            value = payload.get(key)
            if value is None:
                continue
            if not isinstance(value, str):
                raise gateway_body_error('instance type does not match any allowed primitive type (allowed: ["string"])')
            if len(value) > longest:
                raise gateway_body_error(f'string "{value}" is too long (length: {len(value)}, maximum allowed: {longest})')
            if not pattern.match(value):
                raise gateway_body_error(f'ECMA 262 regex "{pattern.pattern}" does not match input string "{value}"')

    def _car(self, params: dict[str, Any]) -> tuple[str, str]:
        shell, color = "DEEPRACER", "WHITE"
        shell_type = params.get("BODY_SHELL_TYPE")
        if shell_type == "deepracer":
            wanted = str(params.get("CAR_COLOR") or "").upper()
            if wanted in CAR_COLORS:
                color = wanted
        elif shell_type in SHELL_IDS:
            shell, color = SHELL_IDS[shell_type]
        if shell == "DEEPRACER" and color not in DEEPRACER_COLORS:
            raise bad_request(f"Invalid car customization. Car shell {shell} is not available in color {color}.")
        return shell, color

    def _track(self, params: dict[str, Any]) -> dict[str, str]:
        track_id = params.get("WORLD_NAME")
        track = self.tracks.get(track_id)
        if track and len(track["enabledDirections"]) == 1:
            direction = track["defaultDirection"]
        else:
            direction = "CLOCKWISE" if params.get("TRACK_DIRECTION_CLOCKWISE") is True else "COUNTER_CLOCKWISE"
        if not track or direction not in track["enabledDirections"]:
            raise bad_request(f"Invalid track configuration. Track {track_id} is not available in direction {direction}.")
        return {"trackId": track_id, "trackDirection": direction}

    def _validation_track_name(self, track: dict[str, str]) -> str:
        known = self.tracks[track["trackId"]]
        if len(known["enabledDirections"]) == 1:
            return track["trackId"]
        return track["trackId"] + ("_cw" if track["trackDirection"] == "CLOCKWISE" else "_ccw")

    @staticmethod
    def _object_avoidance(params: dict[str, Any]) -> None:
        count = params.get("NUMBER_OF_OBSTACLES")
        positions = params.get("OBJECT_POSITIONS") or []
        randomize = params.get("RANDOMIZE_OBSTACLE_LOCATIONS") is True
        # JavaScript: `!count || count > 6` compares a quoted "3" as a number ...
        if not count or float(count) > 6:
            raise bad_request("Number of obstacle positions is invalid.")
        if not positions or randomize:
            return
        # ... but `count !== positions.length` is strict: "3" never equals 3.
        if len(positions) != count or isinstance(count, (str, bool)):
            raise bad_request("Obstacle positions must be equal to number of objects.")
        spots = sorted(float(str(p).split(",")[0]) for p in positions)
        if spots[0] < 0.07:
            raise bad_request("First obstacle position is invalid.")
        if spots[-1] > 0.9:
            raise bad_request("Last obstacle position is invalid.")
        if any(b - a < 0.13 for a, b in zip(spots, spots[1:])):
            raise bad_request("Obstacle position distances are invalid.")

    def import_model(self, profile_id: str, payload: Any) -> FakeModel:
        self._gateway_validate_import(payload)
        name, bucket, path = payload.get("modelName"), payload.get("s3Bucket"), payload.get("s3Path")
        description = payload.get("modelDescription")
        if not name or not bucket or not path:
            raise bad_request("Missing required fields")
        location = f"{bucket}/{path}"
        try:
            params = yaml.safe_load(self._read_text(bucket, f"{path}/training_params.yaml")) or {}
            metadata = json.loads(self._read_text(bucket, f"{path}/model_metadata.json"))
            reward = self._read_text(bucket, f"{path}/reward_function.py")
            hyper = json.loads(self._read_text(bucket, f"{path}/ip/hyperparameters.json"))
        except (ValueError, yaml.YAMLError):
            raise internal_failure() from None  # YAML.parse / JSON.parse throw: unmodelled
        car = self._car(params)
        track = self._track(params)
        race_type = "OBJECT_AVOIDANCE" if params.get("RACE_TYPE") == "OBJECT_AVOIDANCE" else "TIME_TRIAL"
        if race_type == "OBJECT_AVOIDANCE":
            self._object_avoidance(params)
        algorithm, space_type = metadata.get("training_algorithm"), metadata.get("action_space_type")
        if algorithm == "sac" and space_type == "discrete":
            raise bad_request("Agent algorithm SAC does not work with discrete action space.")
        if algorithm == "sac" and hyper.get("num_episodes_between_training") != 1:
            raise bad_request("Invalid hyperparameter number of episodes between training for SAC agent algorithm.")
        space = metadata.get("action_space")
        if isinstance(space, list):
            action_space: dict[str, Any] = {"discrete": [{"speed": a.get("speed"), "steeringAngle": a.get("steering_angle")} for a in space]}
        else:
            try:
                action_space = {"continous": {"lowSpeed": space["speed"]["low"], "highSpeed": space["speed"]["high"],
                                              "lowSteeringAngle": space["steering_angle"]["low"],
                                              "highSteeringAngle": space["steering_angle"]["high"]}}
            except (TypeError, KeyError):
                raise internal_failure() from None
            if space_type == "continuous":
                if action_space["continous"]["lowSpeed"] >= action_space["continous"]["highSpeed"]:
                    raise bad_request("Invalid action space speeds.")
                if action_space["continous"]["lowSteeringAngle"] >= action_space["continous"]["highSteeringAngle"]:
                    raise bad_request("Invalid action space steering angles.")
        sensors: dict[str, str] = {}
        for sensor in metadata.get("sensor") or []:
            if sensor in ("FRONT_FACING_CAMERA", "LEFT_CAMERA", "STEREO_CAMERAS", "OBSERVATION_CAMERA"):
                sensors["camera"] = sensor
            elif sensor in ("LIDAR", "SECTOR_LIDAR", "DISCRETIZED_SECTOR_LIDAR"):
                sensors["lidar"] = sensor
        model = FakeModel(new_id(), profile_id, name, description, car=car, track=track, race_type=race_type,
                          created_at=self.now(),
                          metadata={"agentAlgorithm": "SAC" if algorithm == "sac" else "PPO", "rewardFunction": "",
                                    "actionSpace": action_space, "hyperparameters": hyper, "sensors": sensors})
        with self._lock:
            self.models[model.model_id] = model
        # parseMetrics: the first key under metrics/training/ holding "training-" and ending in .json
        candidates = [k for k in self._list(bucket, f"{path}/metrics/training/") if "training-" in k and k.endswith(".json")]
        if candidates:
            self.s3.copy_object(Bucket=self.model_bucket, Key=model.metrics_key, CopySource={"Bucket": bucket, "Key": candidates[0]})
        self._background(self._import_workflow, model.model_id, bucket, path, reward, self._validation_track_name(track), location)
        return model

    # -- the asynchronous import workflow (Step Functions in DRoA)

    def _import_workflow(self, model_id: str, bucket: str, path: str, reward: str, track_name: str, location: str) -> None:
        started = time.monotonic()
        verdict = self._validate_reward(reward, track_name)
        error: str | None = None
        if verdict:
            messages = [e.get("message") for e in verdict if isinstance(e.get("message"), str) and e.get("message")]
            error = f"Reward Function Validation {', '.join(messages)}" if messages else "Model validation failed"
        else:
            result = self._validate_model(bucket, path)
            if result.get("timeout"):
                error = ("Unexpected error occurred while importing a model. Please try again in few minutes or contact "
                         f"support if issue persists with Request ID: {uuid.uuid4()}")
            elif not result.get("valid"):
                error = "Model validation failed" + (f": {result['message']}" if result.get("message") else "")
            else:
                self._import_assets(model_id, bucket, path, reward)
        while self.hold.is_set() or time.monotonic() - started < self.import_seconds:
            time.sleep(0.05)
        with self._lock:
            model = self.models.get(model_id)
            if model is not None:
                model.status, model.import_error = ("ERROR", error) if error else ("READY", None)

    def _validate_reward(self, reward: str, track_name: str, seconds: float = 5.0) -> list[dict[str, Any]]:
        with tempfile.TemporaryDirectory(prefix="fake-droa-rf-") as folder:
            path = Path(folder) / "reward_function.py"
            path.write_text(reward, encoding="utf-8")
            result = subprocess.run([sys.executable, str(HERE / "droa_reward_validator.py"), str(path), track_name, str(seconds)],
                                    capture_output=True, text=True, timeout=120, cwd=folder, check=False)
        try:
            return json.loads(result.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            return [{"type": "TEST_FAILURE", "message": f"Exception occured during validation: {result.stderr.strip()[-200:]}"}]

    def _validate_model(self, bucket: str, path: str) -> dict[str, Any]:
        with tempfile.TemporaryDirectory(prefix="fake-droa-model-") as folder:
            for key in self._list(bucket, f"{path}/model/"):
                target = Path(folder) / "model" / key[len(path) + len("/model/"):]
                target.parent.mkdir(parents=True, exist_ok=True)
                self.s3.download_file(bucket, key, str(target))
            return _VALIDATOR.validate(folder)

    def _import_assets(self, model_id: str, bucket: str, path: str, reward: str) -> None:
        model = self.models[model_id]
        total = 0
        for key in self._list(bucket, path + "/"):
            relative = key[len(path) + 1:]
            root_level = relative in ("model_metadata.json", "reward_function.py")
            target = model.root + (relative if root_level else f"sagemaker-artifacts/{relative}")
            self.s3.copy_object(Bucket=self.model_bucket, Key=target, CopySource={"Bucket": bucket, "Key": key})
            total += self.s3.head_object(Bucket=self.model_bucket, Key=target)["ContentLength"]
        with self._lock:
            model.metadata["rewardFunction"] = reward
            model.file_size = total

    # -- models

    def _model(self, profile_id: str, model_id: str) -> FakeModel:
        if not RESOURCE_ID.match(model_id):
            raise validation_exception("/modelId", model_id, "Member must satisfy regular expression pattern: ^[A-Za-z0-9]{15}$")
        with self._lock:
            model = self.models.get(model_id)
        if model is None or model.profile_id != profile_id:
            raise not_found()
        return model

    def model_json(self, model: FakeModel) -> dict[str, Any]:
        body: dict[str, Any] = {
            "carCustomization": {"carShell": model.car[0], "carColor": model.car[1]},
            "createdAt": iso(model.created_at),
            "fileSizeInBytes": model.file_size,
            "metadata": model.metadata,
            "modelId": model.model_id,
            "name": model.name,
            "status": model.status,
            "trainingConfig": {"maxTimeInMinutes": 0, "raceType": model.race_type, "trackConfig": model.track},
            "trainingStatus": "COMPLETED",
            "trainingMetricsUrl": self.presign(self.model_bucket, model.metrics_key, URL_SECONDS["default"]),
        }
        if model.description:
            body["description"] = model.description
        if model.import_error:
            body["importErrorMessage"] = model.import_error
        if model.packaging_status:
            body["packagingStatus"] = model.packaging_status
        return body

    @staticmethod
    def _page(items: list[Any], token: str | None, size: int) -> tuple[list[Any], str | None]:
        start = 0
        if token:
            try:
                start = int(json.loads(base64.urlsafe_b64decode(token.encode()))["offset"])
            except (ValueError, KeyError, TypeError):
                raise internal_failure() from None  # ElectroDB cannot read the cursor: unmodelled
        page = items[start:start + size]
        following = start + size
        next_token = base64.urlsafe_b64encode(json.dumps({"offset": following}).encode()).decode() if following < len(items) else None
        return page, next_token

    def list_models(self, profile_id: str, token: str | None) -> dict[str, Any]:
        with self._lock:
            mine = sorted((m for m in self.models.values() if m.profile_id == profile_id), key=lambda m: m.created_at)
        page, next_token = self._page(mine, token, self.page_size)
        answer: dict[str, Any] = {"models": [self.model_json(m) for m in page]}
        if next_token:
            answer["token"] = next_token
        return answer

    def delete_model(self, profile_id: str, model_id: str) -> None:
        model = self._model(profile_id, model_id)
        with self._lock:
            if model.status not in ("READY", "ERROR"):
                raise bad_request("This resource cannot be deleted at this time. Try again later.")
            model.status = "DELETING"

        def remove() -> None:
            time.sleep(0.2)
            for key in self._list(self.model_bucket, model.root):
                self.s3.delete_object(Bucket=self.model_bucket, Key=key)
            with self._lock:
                self.models.pop(model_id, None)

        self._background(remove)

    def stop_model(self, profile_id: str, model_id: str) -> None:
        model = self._model(profile_id, model_id)
        if model.status not in ("EVALUATING", "QUEUED", "TRAINING"):
            raise bad_request("Model is not in a stoppable state.")
        model.status = "READY"

    # -- assets

    def get_asset(self, profile_id: str, model_id: str, query: dict[str, str]) -> dict[str, Any]:
        if "assetType" not in query:
            raise ApiError(400, {"errorMessage": "Missing required request parameters: [assetType]"}, "BadRequestException")
        model = self._model(profile_id, model_id)
        asset = query["assetType"]
        if asset not in ASSET_TYPES:
            raise validation_exception("/assetType", asset, f"Member must satisfy enum value set: [{', '.join(ASSET_TYPES)}]")
        evaluation_id = query.get("evaluationId")
        if evaluation_id is not None and not RESOURCE_ID.match(evaluation_id):
            raise validation_exception("/evaluationId", evaluation_id, "Member must satisfy regular expression pattern: ^[A-Za-z0-9]{15}$")
        if asset == "TRAINING_LOGS":
            return {"url": self._training_logs(model)}
        if asset == "EVALUATION_LOGS":
            if not evaluation_id:
                raise bad_request("evaluationId is required for evaluation logs.")
            with self._lock:
                evaluation = self.evaluations.get(evaluation_id)
            if evaluation is None or evaluation.model_id != model.model_id:
                raise not_found()
            if evaluation.status not in ("COMPLETED", "FAILED"):
                raise bad_request("Logs download is not available until job is complete.")
            return {"url": self.presign(self.model_bucket, self._evaluation_logs(model, evaluation), URL_SECONDS["default"])}
        if asset == "PHYSICAL_CAR_MODEL":
            if not model.physical_artifact:
                raise not_found("Unable to find physical model artifact.")
            return {"url": self.presign(self.model_bucket, model.physical_artifact, URL_SECONDS["PHYSICAL_CAR_MODEL"],
                                        f"physicalmodel-{model.name}.tar.gz")}
        if asset == "VIRTUAL_MODEL":
            if model.packaging_status == "READY" and model.virtual_artifact:
                return {"url": self.presign(self.model_bucket, model.virtual_artifact, URL_SECONDS["VIRTUAL_MODEL"],
                                            f"virtualmodel-{model.name}.tar.gz")}
            if model.packaging_status != "QUEUED":
                model.packaging_status = "QUEUED"
                self._background(self._package, model.model_id)
            return {"status": "QUEUED"}
        raise bad_request("This asset type is not supported.")

    def _archive(self, keys: list[str], strip: str) -> bytes:
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
            for key in keys:
                body = self.s3.get_object(Bucket=self.model_bucket, Key=key)["Body"].read()
                info = tarfile.TarInfo(key[len(strip):].replace("sagemaker-artifacts/", "", 1))
                info.size = len(body)
                archive.addfile(info, io.BytesIO(body))
        return buffer.getvalue()

    def _training_logs(self, model: FakeModel) -> str:
        if model.logs_archive is None:
            keys = [k for k in self._list(self.model_bucket, model.root)
                    if k == model.metrics_key or "/sim-trace/" in k or "/logs/" in k]
            if not keys:
                raise not_found("No log files found.")
            model.logs_archive = f"{model.root}logs/training-logs.tar.gz"
            self.s3.put_object(Bucket=self.model_bucket, Key=model.logs_archive, Body=self._archive(keys, model.root))
        return self.presign(self.model_bucket, model.logs_archive, URL_SECONDS["default"])

    def _evaluation_logs(self, model: FakeModel, evaluation: FakeEvaluation) -> str:
        if evaluation.logs_key is None:
            evaluation.logs_key = f"{model.root}logs/evaluation-{evaluation.evaluation_id}.tar.gz"
            metrics_key = f"{model.root}metrics/evaluation/evaluation-{evaluation.evaluation_id}.json"
            self.s3.put_object(Bucket=self.model_bucket, Key=metrics_key, Body=json.dumps({"metrics": evaluation.metrics}).encode())
            self.s3.put_object(Bucket=self.model_bucket, Key=evaluation.logs_key, Body=self._archive([metrics_key], model.root))
        return evaluation.logs_key

    def _package(self, model_id: str) -> None:
        time.sleep(0.2)
        model = self.models.get(model_id)
        if model is None:
            return
        keys = [k for k in self._list(self.model_bucket, model.root)
                if not any(part in k for part in ("/sim-trace/", "/videos/", "/output/", "/logs/")) and not k.endswith("virtualmodel.tar.gz")]
        model.virtual_artifact = f"{model.root}virtualmodel.tar.gz"
        self.s3.put_object(Bucket=self.model_bucket, Key=model.virtual_artifact, Body=self._archive(keys, model.root))
        model.packaging_status = "READY"

    # -- evaluations

    def create_evaluation(self, profile_id: str, model_id: str, payload: Any) -> dict[str, Any]:
        model = self._model(profile_id, model_id)
        config = payload.get("evaluationConfig") if isinstance(payload, dict) else None
        if not isinstance(config, dict):
            raise gateway_body_error('object has missing required properties (["evaluationConfig"])')
        if model.status != "READY":
            raise bad_request("Model is not ready for evaluation.")
        evaluation = FakeEvaluation(new_id(), model_id, profile_id, str(config.get("evaluationName", "evaluation")),
                                    status="IN_PROGRESS", created_at=self.now())
        evaluation.metrics = [{"completionPercentage": 100, "crashCount": 0, "elapsedTimeInMilliseconds": 12_000 + lap * 500,
                               "episodeStatus": "Lap complete", "offTrackCount": lap % 2, "resetCount": 0, "trial": lap + 1}
                              for lap in range(int(config.get("maxLaps", 3)))]
        with self._lock:
            self.evaluations[evaluation.evaluation_id] = evaluation
            model.status = "EVALUATING"

        def finish() -> None:
            time.sleep(0.3)
            with self._lock:
                evaluation.status = "COMPLETED"
                model.status = "READY"

        self._background(finish)
        return {"evaluationId": evaluation.evaluation_id}

    def evaluation_json(self, evaluation: FakeEvaluation) -> dict[str, Any]:
        return {"modelId": evaluation.model_id, "evaluationId": evaluation.evaluation_id, "createdAt": iso(evaluation.created_at),
                "status": evaluation.status, "metrics": evaluation.metrics,
                "config": {"evaluationName": evaluation.name, "maxLaps": len(evaluation.metrics), "maxTimeInMinutes": 20,
                           "raceType": "TIME_TRIAL", "trackConfig": self.models[evaluation.model_id].track,
                           "resettingBehaviorConfig": {"continuousLap": True}}}

    # -- leaderboards

    def leaderboard_json(self, board: FakeLeaderboard) -> dict[str, Any]:
        return {"leaderboardId": board.leaderboard_id, "name": board.name, "openTime": iso(board.open_time),
                "closeTime": iso(board.close_time), "trackConfig": board.track, "raceType": board.race_type,
                "maxSubmissionsPerUser": board.max_submissions,
                "resettingBehaviorConfig": {"continuousLap": False, "offTrackPenaltySeconds": 3.0},
                "submissionTerminationConditions": {"minimumLaps": 1, "maximumLaps": 3, "maxTimeInMinutes": 20},
                "timingMethod": "BEST_LAP_TIME", "participantCount": len({s["profileId"] for s in board.submissions})}

    def _leaderboard(self, leaderboard_id: str) -> FakeLeaderboard:
        if not RESOURCE_ID.match(leaderboard_id):
            raise validation_exception("/leaderboardId", leaderboard_id, "Member must satisfy regular expression pattern: ^[A-Za-z0-9]{15}$")
        board = self.leaderboards.get(leaderboard_id)
        if board is None:
            raise not_found()
        return board

    def create_submission(self, profile_id: str, leaderboard_id: str, payload: Any) -> dict[str, Any]:
        if not isinstance(payload, dict) or "modelId" not in payload:
            raise gateway_body_error('object has missing required properties (["modelId"])')
        model = self._model(profile_id, str(payload["modelId"]))
        board = self._leaderboard(leaderboard_id)
        if model.status != "READY":
            raise bad_request("Model is not in a submittable state.")
        now = self.now()
        if now < board.open_time or now > board.close_time:
            raise bad_request("The leaderboard is not accepting submissions.")
        mine = [s for s in board.submissions if s["profileId"] == profile_id]
        if len(mine) >= board.max_submissions:
            raise bad_request("Max number of submissions has been reached.")
        submission = {"submissionId": new_id(), "profileId": profile_id, "modelId": model.model_id, "modelName": model.name,
                      "status": "QUEUED", "submissionNumber": len(mine) + 1, "submittedAt": iso(now)}
        with self._lock:
            board.submissions.append(submission)
            model.status = "QUEUED"

        def race() -> None:
            time.sleep(0.3)
            with self._lock:
                submission["status"] = "COMPLETED"
                submission["rankingScore"] = 12345
                submission["stats"] = {"avgLapTime": 12345, "avgResets": 0.0, "bestLapTime": 12001, "collisionCount": 0,
                                       "completedLapCount": 3, "offTrackCount": 1, "resetCount": 0, "totalLapTime": 37035}
                model.status = "READY"

        self._background(race)
        return {"submissionId": submission["submissionId"]}

    def list_submissions(self, profile_id: str, leaderboard_id: str, token: str | None) -> dict[str, Any]:
        board = self._leaderboard(leaderboard_id)
        mine = [s for s in board.submissions if s["profileId"] == profile_id]
        page, next_token = self._page(sorted(mine, key=lambda s: -s["submissionNumber"]), token, self.page_size)
        submissions = [{k: v for k, v in s.items() if k not in ("profileId", "submissionId")}
                       | {"videoUrl": self.presign(self.model_bucket, f"videos/{s['submissionId']}.mp4", URL_SECONDS["default"])}
                       for s in page]
        return {"submissions": submissions} | ({"token": next_token} if next_token else {})

    # -- HTTP

    def authenticate(self, method: str, raw_path: str, headers: dict[str, str], body: bytes) -> str:
        """The caller's profile id, or an ApiError as API Gateway's IAM authorizer answers."""
        secrets_by_key = {key: secret for key, (secret, _) in self.racers.items()}
        verdict = verify(method, raw_path, headers, body, service="execute-api", region=self.region,
                         secrets=secrets_by_key, now=self.now())
        if not verdict.ok:
            kind = {"MissingAuthenticationToken": "MissingAuthenticationTokenException",
                    "InvalidToken": "UnrecognizedClientException"}.get(verdict.code, verdict.code)
            raise ApiError(403, {"message": verdict.message}, kind)
        return self.racers[verdict.access_key_id or ""][1]

    def route(self, method: str, raw_path: str, headers: dict[str, str], body: bytes) -> tuple[int, Any]:
        path, _, query_text = raw_path.partition("?")
        query = dict(urllib.parse.parse_qsl(query_text))
        self.calls.append((method, path))
        if not path.startswith(STAGE + "/"):
            raise ApiError(403, {"message": "Missing Authentication Token"}, "MissingAuthenticationTokenException")
        profile = self.authenticate(method, raw_path, headers, body)
        route = urllib.parse.unquote(path[len(STAGE):])

        def payload() -> Any:
            try:
                return json.loads(body or b"{}")
            except ValueError:
                raise ApiError(400, {"message": "Could not parse request body into json"}, "BadRequestException") from None

        if route == "/importmodel" and method == "POST":
            return 200, {"modelId": self.import_model(profile, payload()).model_id}
        if route == "/models" and method == "GET":
            return 200, self.list_models(profile, query.get("token"))
        if route == "/rewardFunction" and method == "POST":
            data = payload()
            track = self._track({"WORLD_NAME": data.get("trackConfig", {}).get("trackId"),
                                 "TRACK_DIRECTION_CLOCKWISE": data.get("trackConfig", {}).get("trackDirection") == "CLOCKWISE"})
            return 200, {"errors": self._validate_reward(str(data.get("rewardFunction", "")), self._validation_track_name(track))}
        if route == "/leaderboards" and method == "GET":
            boards = sorted(self.leaderboards.values(), key=lambda b: b.open_time)
            page, token = self._page(boards, query.get("token"), self.page_size)
            return 200, {"leaderboards": [self.leaderboard_json(b) for b in page]} | ({"token": token} if token else {})
        if found := re.fullmatch(r"/leaderboards/([^/]+)", route):
            if method == "GET":
                return 200, {"leaderboard": self.leaderboard_json(self._leaderboard(found.group(1)))}
        if found := re.fullmatch(r"/leaderboards/([^/]+)/submissions", route):
            if method == "POST":
                return 200, self.create_submission(profile, found.group(1), payload())
            if method == "GET":
                return 200, self.list_submissions(profile, found.group(1), query.get("token"))
        if found := re.fullmatch(r"/models/([^/]+)", route):
            model_id = found.group(1)
            if method == "GET":
                return 200, {"model": self.model_json(self._model(profile, model_id))}
            if method == "DELETE":
                self.delete_model(profile, model_id)
                return 200, {}
            if method == "PATCH":
                self.stop_model(profile, model_id)
                return 200, {}
        if (found := re.fullmatch(r"/models/([^/]+)/getasset", route)) and method == "GET":
            return 200, self.get_asset(profile, found.group(1), query)
        if (found := re.fullmatch(r"/models/([^/]+)/evaluation", route)) and method == "POST":
            return 200, self.create_evaluation(profile, found.group(1), payload())
        if (found := re.fullmatch(r"/models/([^/]+)/evaluations", route)) and method == "GET":
            self._model(profile, found.group(1))
            mine = sorted((e for e in self.evaluations.values() if e.model_id == found.group(1)), key=lambda e: e.created_at)
            page, token = self._page(mine, query.get("token"), self.page_size)
            return 200, {"evaluations": [self.evaluation_json(e) for e in page]} | ({"token": token} if token else {})
        if (found := re.fullmatch(r"/models/([^/]+)/evaluations/([^/]+)", route)) and method == "GET":
            evaluation = self.evaluations.get(found.group(2))
            if evaluation is None or evaluation.model_id != found.group(1):
                raise not_found()
            if evaluation.profile_id != profile:
                raise not_found("The evaluation cannot be found.")
            return 200, {"evaluation": self.evaluation_json(evaluation)}
        # API Gateway answers an unknown resource or method like a missing signature.
        raise ApiError(403, {"message": "Missing Authentication Token"}, "MissingAuthenticationTokenException")

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def _answer(self, status: int, body: Any, content_type: str = "application/json", error_type: str | None = None) -> None:
                data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Access-Control-Allow-Origin", "*")
                if error_type:
                    self.send_header("x-amzn-ErrorType", error_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.command == "GET" and self.path.split("?")[0] == "/env.js":
                    return self._answer(200, fake.env_js(), "application/javascript")
                headers = {name: value for name, value in self.headers.items()}
                try:
                    status, answer = fake.route(self.command, self.path, headers, body)
                except ApiError as error:
                    return self._answer(error.status, error.body, error_type=error.error_type)
                except Exception:  # noqa: BLE001 - an unmodelled error, as the Smithy server answers it
                    return self._answer(500, {}, error_type="InternalFailure")
                return self._answer(status, answer)

            do_GET = do_POST = do_DELETE = do_PATCH = do_PUT = _handle

        return Handler
