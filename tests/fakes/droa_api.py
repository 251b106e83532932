"""A stand-in for one DeepRacer on AWS (DRoA) deployment: its env.js and its REST API gateway.

Built from DRoA v1.2.5's contract (api/handlers/importModel.ts, getModel.ts, listModels.ts and
import-workflow/utils/ImportHelper.ts) and written independently of drtasks' own rules, so the
tests compare two readings of the backend. Cognito is not faked: env.js points at the user and
identity pools of a moto server. The model files are read from a real S3 server with the client
the test gives.

Behaviour kept from the real thing:
- every API call must be SigV4-signed for ``execute-api`` with temporary credentials
  (else 403 "Missing Authentication Token", as API Gateway answers);
- POST /importmodel validates the request, reads the four files under ``s3://s3Bucket/s3Path``
  and answers 400 ``{"message": ...}`` on the first fault; else ``{"modelId"}``;
- a model is IMPORTING, then READY after ``ready_after`` polls of GET /models/{id} (ERROR with
  ``importErrorMessage`` when the reward function has no ``def reward_function``, as the
  asynchronous validation would);
- GET /models answers ``{"models": [...]}``; DELETE /models/{id} removes one.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

TRACKS_FILE = Path(__file__).resolve().parents[2] / "drtasks" / "data" / "droa_tracks.json"

CAR_COLORS = {"BLACK", "BLUE", "BROWN", "GOLDEN", "GOLDENPINK", "GREEN", "GREY", "ORANGE", "PINK",
              "PURPLE", "RED", "SKY_BLUE", "TEAL", "WHITE", "YELLOW"}
DEEPRACER_COLORS = {"BLACK", "BLUE", "GREY", "ORANGE", "PURPLE", "RED", "WHITE"}
# A sample of DRoA's SimApp shell ids (shell, colour); unknown ids fall back to a white deepracer.
SHELL_IDS = {
    "f1_2021": ("F1", "RED"),
    "f1_car_tron_01": ("TRON", "BLUE"),
    "f1_kart": ("KART", "RED"),
    "f1_snail": ("SNAIL", "PINK"),
}


class BadRequest(Exception):
    pass


@dataclass
class FakeModel:
    model_id: str
    name: str
    description: str | None
    status: str = "IMPORTING"
    polls: int = 0
    error: str | None = None
    car: tuple[str, str] = ("DEEPRACER", "WHITE")
    track: dict[str, str] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        model = {
            "modelId": self.model_id,
            "name": self.name,
            "status": self.status,
            "carCustomization": {"carShell": self.car[0], "carColor": self.car[1]},
            "trainingConfig": {"trackConfig": self.track},
        }
        if self.description:
            model["description"] = self.description
        if self.error:
            model["importErrorMessage"] = self.error
        return model


class FakeDroa:
    """Serve env.js and the API on 127.0.0.1 at a free port, in a thread."""

    def __init__(
        self,
        *,
        region: str,
        user_pool_id: str,
        user_pool_client_id: str,
        identity_pool_id: str,
        upload_bucket: str,
        s3_client: Any,
        ready_after: int = 2,
    ) -> None:
        self.region = region
        self.user_pool_id = user_pool_id
        self.user_pool_client_id = user_pool_client_id
        self.identity_pool_id = identity_pool_id
        self.upload_bucket = upload_bucket
        self.s3 = s3_client
        self.ready_after = ready_after
        self.models: dict[str, FakeModel] = {}
        self.calls: list[tuple[str, str]] = []
        self.tracks = {t["trackId"]: t for t in json.loads(TRACKS_FILE.read_text())["tracks"]}
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    # -- lifecycle

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def api_url(self) -> str:
        return f"{self.url}/prod"

    def start(self) -> "FakeDroa":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def env_js(self) -> str:
        # Written the way a build tool emits it: unquoted keys, single quotes, trailing comma.
        return (
            "window.EnvironmentConfig = {\n"
            f"  region: '{self.region}',\n"
            f"  userPoolId: '{self.user_pool_id}',\n"
            f"  userPoolClientId: '{self.user_pool_client_id}',\n"
            f"  identityPoolId: '{self.identity_pool_id}',\n"
            f"  apiEndpointUrl: '{self.api_url}',\n"
            f"  uploadBucketName: '{self.upload_bucket}',\n"
            "};\n"
        )

    # -- the backend's rules

    def _read(self, bucket: str, key: str) -> str:
        try:
            return self.s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
        except self.s3.exceptions.NoSuchKey:
            raise BadRequest(f"{key.rsplit('/', 1)[-1]} not found at s3://{bucket}/{key}") from None

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
            raise BadRequest(f"Invalid car customization. Car shell {shell} is not available in color {color}.")
        return shell, color

    def _track(self, params: dict[str, Any]) -> dict[str, str]:
        track_id = params.get("WORLD_NAME")
        track = self.tracks.get(track_id)
        if track and len(track["enabledDirections"]) == 1:
            direction = track["defaultDirection"]
        else:
            direction = "CLOCKWISE" if params.get("TRACK_DIRECTION_CLOCKWISE") is True else "COUNTER_CLOCKWISE"
        if not track or direction not in track["enabledDirections"]:
            raise BadRequest(
                f"Invalid track configuration. Track {track_id} is not available in direction {direction}."
            )
        return {"trackId": track_id, "trackDirection": direction}

    @staticmethod
    def _object_avoidance(params: dict[str, Any]) -> None:
        count = params.get("NUMBER_OF_OBSTACLES")
        positions = params.get("OBJECT_POSITIONS") or []
        # JavaScript semantics: a quoted "3" passes this test (compared as a number) ...
        if not count or float(count) > 6:
            raise BadRequest("Number of obstacle positions is invalid.")
        if not positions or params.get("RANDOMIZE_OBSTACLE_LOCATIONS") is True:
            return
        # ... but never equals the number of positions (strict comparison).
        if len(positions) != count:
            raise BadRequest("Obstacle positions must be equal to number of objects.")
        spots = sorted(float(str(p).split(",")[0]) for p in positions)
        if spots[0] < 0.07:
            raise BadRequest("First obstacle position is invalid.")
        if spots[-1] > 0.9:
            raise BadRequest("Last obstacle position is invalid.")
        if any(b - a < 0.13 for a, b in zip(spots, spots[1:])):
            raise BadRequest("Obstacle position distances are invalid.")

    def import_model(self, payload: dict[str, Any]) -> FakeModel:
        name, bucket, path = payload.get("modelName"), payload.get("s3Bucket"), payload.get("s3Path")
        description = payload.get("modelDescription")
        if not name or not bucket or not path:
            raise BadRequest("Missing required fields")
        if not re.fullmatch(r"[a-zA-Z0-9-]+", name) or len(name) > 64:
            raise BadRequest("Model name must contain only alphanumeric characters and hyphens; "
                             "and must be less than or equal to 64 characters in length")
        if description and (not re.fullmatch(r"[a-zA-Z0-9- ]+", description) or len(description) > 255):
            raise BadRequest("Model description must contain only alphanumeric characters, spaces, and hyphen; "
                             "and must be less than or equal to 255 characters in length")
        params = yaml.safe_load(self._read(bucket, f"{path}/training_params.yaml")) or {}
        metadata = json.loads(self._read(bucket, f"{path}/model_metadata.json"))
        reward = self._read(bucket, f"{path}/reward_function.py")
        hyper = json.loads(self._read(bucket, f"{path}/ip/hyperparameters.json"))
        car = self._car(params)
        track = self._track(params)
        if params.get("RACE_TYPE") == "OBJECT_AVOIDANCE":
            self._object_avoidance(params)
        algorithm, space_type = metadata.get("training_algorithm"), metadata.get("action_space_type")
        if algorithm == "sac" and space_type == "discrete":
            raise BadRequest("Agent algorithm SAC does not work with discrete action space.")
        if algorithm == "sac" and hyper.get("num_episodes_between_training") != 1:
            raise BadRequest("Invalid hyperparameter number of episodes between training for SAC agent algorithm.")
        if space_type == "continuous" and isinstance(metadata.get("action_space"), dict):
            space = metadata["action_space"]
            if space["speed"]["low"] >= space["speed"]["high"]:
                raise BadRequest("Invalid action space speeds.")
            if space["steering_angle"]["low"] >= space["steering_angle"]["high"]:
                raise BadRequest("Invalid action space steering angles.")
        model = FakeModel(uuid.uuid4().hex[:12], name, description, car=car, track=track)
        if "def reward_function" not in reward:
            model.error = "Reward function validation failed: no reward_function defined."
        with self._lock:
            self.models[model.model_id] = model
        return model

    def poll(self, model_id: str) -> FakeModel | None:
        with self._lock:
            model = self.models.get(model_id)
            if model and model.status == "IMPORTING":
                model.polls += 1
                if model.polls >= self.ready_after:
                    model.status = "ERROR" if model.error else "READY"
            return model

    # -- HTTP

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def _answer(self, status: int, body: Any, content_type: str = "application/json") -> None:
                data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _signed(self) -> bool:
                auth = self.headers.get("Authorization", "")
                scope = re.search(r"Credential=[^/]+/\d{8}/([^/]+)/([^/]+)/aws4_request", auth)
                return (
                    auth.startswith("AWS4-HMAC-SHA256 ")
                    and scope is not None
                    and scope.group(1) == fake.region
                    and scope.group(2) == "execute-api"
                    and "SignedHeaders=" in auth
                    and bool(self.headers.get("X-Amz-Security-Token"))
                    and bool(self.headers.get("X-Amz-Date"))
                )

            def _route(self, method: str) -> None:
                path = self.path.split("?", 1)[0]
                fake.calls.append((method, path))
                if method == "GET" and path == "/env.js":
                    return self._answer(200, fake.env_js(), "application/javascript")
                if not path.startswith("/prod/"):
                    return self._answer(404, {"message": "Not Found"})
                if not self._signed():
                    return self._answer(403, {"message": "Missing Authentication Token"})
                route = path[len("/prod"):]
                if method == "POST" and route == "/importmodel":
                    length = int(self.headers.get("Content-Length") or 0)
                    try:
                        payload = json.loads(self.rfile.read(length) or b"{}")
                        model = fake.import_model(payload)
                    except BadRequest as exc:
                        return self._answer(400, {"message": str(exc)})
                    except (ValueError, yaml.YAMLError) as exc:
                        return self._answer(400, {"message": f"Unreadable model file: {exc}"})
                    return self._answer(200, {"modelId": model.model_id})
                if method == "GET" and route == "/models":
                    return self._answer(200, {"models": [m.as_json() for m in fake.models.values()]})
                found = re.fullmatch(r"/models/([^/]+)", route)
                if found and method == "GET":
                    model = fake.poll(found.group(1))
                    if model is None:
                        return self._answer(404, {"message": "Model not found."})
                    return self._answer(200, {"model": model.as_json()})
                if found and method == "DELETE":
                    with fake._lock:
                        removed = fake.models.pop(found.group(1), None)
                    return self._answer(200 if removed else 404, {} if removed else {"message": "Model not found."})
                return self._answer(404, {"message": "Not Found"})

            def do_GET(self) -> None:
                self._route("GET")

            def do_POST(self) -> None:
                self._route("POST")

            def do_DELETE(self) -> None:
                self._route("DELETE")

        return Handler
