"""A local AWS DeepRacer console API for tests, driven by the service's own botocore model.

It speaks JSON 1.1 the way botocore expects it: one POST path, the operation in
``X-Amz-Target``, errors as ``{"__type", "message"}``. Requests are validated against the
input shapes of ``service-2.json`` (required and unknown members, types, enums, lengths,
patterns) and every answer is checked against the output shape, so the fake cannot drift
from the contract the real client was built from.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from drtasks.importing.console import service_model_file

CONTENT_TYPE = "application/x-amz-json-1.1"
AUTH_PATTERN = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/\s]+)/(?P<date>\d{8})/(?P<region>[a-z0-9-]+)/"
    r"(?P<service>[a-z0-9-]+)/aws4_request, SignedHeaders=(?P<headers>[a-z0-9;-]+), Signature=[0-9a-f]{64}"
)


class ApiError(Exception):
    """An answer in the JSON 1.1 error format."""

    def __init__(self, type_: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.type = type_
        self.message = message
        self.status = status


@dataclass
class RecordedRequest:
    operation: str
    body: dict[str, Any]
    headers: dict[str, str]


@dataclass
class FakeModel:
    name: str
    arn: str
    status: str
    created_ms: int
    description: str | None = None
    source: str | None = None
    polls: int = 0


class ServiceModel:
    """The parts of a botocore ``service-2.json`` the fake needs."""

    def __init__(self, path: Path) -> None:
        document = json.loads(Path(path).read_text())
        self.metadata: dict[str, Any] = document["metadata"]
        self.operations: dict[str, Any] = document["operations"]
        self.shapes: dict[str, Any] = document["shapes"]

    @property
    def target_prefix(self) -> str:
        return self.metadata["targetPrefix"]

    @property
    def signing_name(self) -> str:
        return self.metadata.get("signingName") or self.metadata["endpointPrefix"]

    def enum(self, shape_name: str) -> list[str]:
        return list(self.shapes[shape_name]["enum"])

    def check(self, shape_name: str, value: Any, where: str) -> None:
        """Raise ValidationException when ``value`` does not fit shape ``shape_name``."""
        shape = self.shapes[shape_name]
        kind = shape["type"]
        if kind == "structure":
            if not isinstance(value, dict):
                raise ApiError("ValidationException", f"{where} must be an object")
            members = shape.get("members", {})
            for unknown in sorted(set(value) - set(members)):
                raise ApiError("ValidationException", f"Unknown member {where}.{unknown}")
            for required in shape.get("required", []):
                if value.get(required) is None:
                    raise ApiError("ValidationException", f"Missing required member {where}.{required}")
            for member, item in value.items():
                self.check(members[member]["shape"], item, f"{where}.{member}")
        elif kind == "list":
            if not isinstance(value, list):
                raise ApiError("ValidationException", f"{where} must be a list")
            for index, item in enumerate(value):
                self.check(shape["member"]["shape"], item, f"{where}[{index}]")
        elif kind == "map":
            if not isinstance(value, dict):
                raise ApiError("ValidationException", f"{where} must be an object")
            for key, item in value.items():
                self.check(shape["key"]["shape"], key, f"{where} key")
                self.check(shape["value"]["shape"], item, f"{where}.{key}")
        elif kind == "string":
            self._check_string(shape, value, where)
        elif kind in ("integer", "long"):
            if not isinstance(value, int) or isinstance(value, bool):
                raise ApiError("ValidationException", f"{where} must be an integer")
            self._check_range(shape, value, where)
        elif kind in ("double", "float"):
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise ApiError("ValidationException", f"{where} must be a number")
        elif kind == "boolean":
            if not isinstance(value, bool):
                raise ApiError("ValidationException", f"{where} must be a boolean")
        else:  # The deepracer model uses no other types; fail loudly if that ever changes.
            raise ApiError("InternalFailure", f"fake cannot validate shape type {kind}", 500)

    def _check_string(self, shape: dict[str, Any], value: Any, where: str) -> None:
        if not isinstance(value, str):
            raise ApiError("ValidationException", f"{where} must be a string")
        if "enum" in shape and value not in shape["enum"]:
            raise ApiError("ValidationException", f"{where} must be one of {', '.join(shape['enum'])}")
        self._check_range(shape, len(value), where, "length ")
        # Smithy patterns are unanchored: the value must contain a match.
        if "pattern" in shape and not re.search(shape["pattern"], value):
            raise ApiError("ValidationException", f"{where} must satisfy pattern {shape['pattern']}")

    @staticmethod
    def _check_range(shape: dict[str, Any], size: int, where: str, what: str = "") -> None:
        if "min" in shape and size < shape["min"]:
            raise ApiError("ValidationException", f"{where} {what}must be at least {shape['min']}")
        if "max" in shape and size > shape["max"]:
            raise ApiError("ValidationException", f"{where} {what}must be at most {shape['max']}")


@dataclass
class FakeConsoleApi:
    """The console API on 127.0.0.1; use as a context manager.

    ``import_polls``: GetModel answers IMPORTING this many times before the final status.
    ``fail_marker``: an imported model whose name contains it ends in IMPORT_ERROR.
    ``page_size``: ListModels page size when the caller sends no MaxResults.
    ``access_key``: when set, requests signed with another key are refused.
    """

    service_model_path: Path | None = None
    import_polls: int = 2
    fail_marker: str = "import-error"
    page_size: int = 100
    access_key: str | None = None
    account_id: str = "123456789012"
    requests: list[RecordedRequest] = field(default_factory=list)
    models: dict[str, FakeModel] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.service = ServiceModel(self.service_model_path or service_model_file())
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle

    @property
    def endpoint_url(self) -> str:
        assert self._server is not None, "the fake is not running"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "FakeConsoleApi":
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server naming
                fake._handle(self)

            def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        # A short poll interval keeps shutdown (one test's teardown) quick.
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def __enter__(self) -> "FakeConsoleApi":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- test helpers

    def add_model(self, name: str, status: str = "READY") -> FakeModel:
        """A model that exists before the test starts."""
        with self._lock:
            return self._create(name, status, None, None)

    def calls(self, operation: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.operation == operation]

    # -- protocol

    def _handle(self, http: BaseHTTPRequestHandler) -> None:
        length = int(http.headers.get("Content-Length") or 0)
        raw = http.rfile.read(length)
        try:
            operation, body = self._parse(http, raw)
            with self._lock:
                self.requests.append(RecordedRequest(operation, body, dict(http.headers.items())))
                output = getattr(self, f"_op_{operation}")(body)
            spec = self.service.operations[operation]
            if "output" in spec:
                self.service.check(spec["output"]["shape"], output, spec["output"]["shape"])
            self._send(http, 200, output)
        except ApiError as error:
            self._send(http, error.status, {"__type": error.type, "message": error.message})

    def _parse(self, http: BaseHTTPRequestHandler, raw: bytes) -> tuple[str, dict[str, Any]]:
        self._check_auth(http.headers.get("Authorization"))
        target = http.headers.get("X-Amz-Target") or ""
        prefix, _, operation = target.partition(".")
        if prefix != self.service.target_prefix or operation not in self.service.operations:
            raise ApiError("UnknownOperationException", f"unknown X-Amz-Target '{target}'")
        if not hasattr(self, f"_op_{operation}"):
            raise ApiError("UnknownOperationException", f"{operation} is not served by this fake")
        spec = self.service.operations[operation]
        if http.path != spec["http"]["requestUri"]:
            raise ApiError("UnknownOperationException", f"{operation} is served at {spec['http']['requestUri']}")
        content_type = (http.headers.get("Content-Type") or "").split(";")[0].strip()
        if content_type != CONTENT_TYPE:
            raise ApiError("SerializationException", f"Content-Type must be {CONTENT_TYPE}, got '{content_type}'")
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            raise ApiError("SerializationException", "request body is not JSON") from None
        self.service.check(spec["input"]["shape"], body, spec["input"]["shape"])
        return operation, body

    def _check_auth(self, header: str | None) -> None:
        if not header:
            raise ApiError("MissingAuthenticationTokenException", "Missing Authentication Token", 403)
        match = AUTH_PATTERN.fullmatch(header)
        if match is None:
            raise ApiError("IncompleteSignatureException", "Authorization header is not AWS4-HMAC-SHA256", 403)
        if match["service"] != self.service.signing_name:
            raise ApiError(
                "InvalidSignatureException",
                f"Credential should be scoped to correct service: '{self.service.signing_name}'",
                403,
            )
        if self.access_key is not None and match["key"] != self.access_key:
            raise ApiError("UnrecognizedClientException", "The security token included in the request is invalid", 403)

    @staticmethod
    def _send(http: BaseHTTPRequestHandler, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        http.send_response(status)
        http.send_header("Content-Type", CONTENT_TYPE)
        http.send_header("Content-Length", str(len(data)))
        http.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        http.end_headers()
        http.wfile.write(data)

    # -- operations (called with the lock held)

    def _create(self, name: str, status: str, description: str | None, source: str | None) -> FakeModel:
        model_id = uuid.uuid4().hex
        arn = f"arn:aws:deepracer:us-east-1:{self.account_id}:model/reinforcement_learning/{model_id}"
        model = FakeModel(name, arn, status, int(time.time() * 1000), description, source)
        self.models[arn] = model
        return model

    def _op_ImportModel(self, body: dict[str, Any]) -> dict[str, Any]:  # noqa: N802 - operation name
        if any(m.name == body["Name"] for m in self.models.values()):
            raise ApiError("ConflictException", f"A model named {body['Name']} already exists")
        model = self._create(body["Name"], "IMPORTING", body.get("Description"), body["ModelArtifactsS3Path"])
        return {"ModelArn": model.arn}

    def _op_ListModels(self, body: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        size = body.get("MaxResults") or self.page_size
        start = 0
        if "NextToken" in body:
            try:
                start = int(base64.b64decode(body["NextToken"]).decode())
            except ValueError:
                raise ApiError("ValidationException", "NextToken is not valid") from None
        ordered = sorted(self.models.values(), key=lambda m: (m.created_ms, m.arn))
        page = ordered[start : start + size]
        answer: dict[str, Any] = {"Models": [self._describe(m) for m in page]}
        if start + size < len(ordered):
            answer["NextToken"] = base64.b64encode(str(start + size).encode()).decode()
        return answer

    def _op_GetModel(self, body: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        model = self.models.get(body["ModelArn"])
        if model is None:
            raise ApiError("ResourceNotFoundException", f"Model {body['ModelArn']} does not exist")
        if model.status == "IMPORTING":
            model.polls += 1
            if model.polls > self.import_polls:
                model.status = "IMPORT_ERROR" if self.fail_marker in model.name else "READY"
        return {"Model": self._describe(model)}

    def _describe(self, model: FakeModel) -> dict[str, Any]:
        described: dict[str, Any] = {
            "ModelType": "REINFORCEMENT_LEARNING",
            "ModelName": model.name,
            "ModelArn": model.arn,
            "WasImported": model.source is not None,
            "CreationTime": model.created_ms,
            "ModelFramework": "TENSOR_FLOW",
            "AgentAlgorithm": "PPO",
            "AgentNetwork": "SIX_LAYER_DOUBLE_HEAD_OUTPUT",
            "Status": model.status,
        }
        if model.description:
            described["ModelDescription"] = model.description
        if model.source:
            described["ImportModelS3SrcLocation"] = model.source
        if model.status == "IMPORT_ERROR":
            described["Error"] = {"ErrorCode": "InvalidModel", "Details": "model_metadata.json could not be read"}
        return described
