"""A real container engine for tests: podman serving the Docker API on a private socket.

Each test session gets its own podman storage, run and temp directories, so the
containers seen through the API are exactly the ones the tests started, whatever else
runs on the machine. Setup goes through the podman CLI (import, run, rm); the code under
test only ever talks to the Docker API socket.

Fixtures: ``docker_engine`` (session) and ``clean_docker_engine`` (per test: removes the
containers the test started). Outside CI they skip, saying why, when podman is missing;
in CI (``CI`` set) they fail instead, so a broken CI image cannot pass silently.
"""

from __future__ import annotations

import io
import itertools
import os
import shutil
import subprocess
import tarfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import pytest

if TYPE_CHECKING:
    import docker

# The two fixes this kind of machine needs: crun fails on cgroups (use runc), and the
# default ulimits must be set here because any --ulimit replaces both of them.
CONTAINERS_CONF = """\
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]

[engine]
runtime = "runc"
events_logger = "file"
"""

MODEL_DIR = "opt/ml/model"
REQUIRED_TOOLS = ("podman", "runc", "busybox")


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def missing_tools() -> list[str]:
    return [tool for tool in REQUIRED_TOOLS if shutil.which(tool) is None]


def _rootfs_tar(files: dict[str, bytes], symlinks: dict[str, str]) -> bytes:
    """A minimal root file system: a static busybox plus the given files under /opt/ml/model."""
    busybox = shutil.which("busybox")
    assert busybox, "busybox-static is required"
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        tar.add(os.path.realpath(busybox), arcname="bin/busybox")
        for directory in ("tmp", "opt", "opt/ml", MODEL_DIR):
            info = tarfile.TarInfo(directory)
            info.type = tarfile.DIRTYPE
            info.mode = 0o755
            tar.addfile(info)
        for name, content in files.items():
            info = tarfile.TarInfo(f"{MODEL_DIR}/{name}")
            info.size = len(content)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(content))
        for name, target in symlinks.items():
            info = tarfile.TarInfo(f"{MODEL_DIR}/{name}")
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tar.addfile(info)
    return buffer.getvalue()


class PodmanEngine:
    """A podman API service on ``unix://<workdir>/podman.sock`` with private storage."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.socket = workdir / "podman.sock"
        self.base_url = f"unix://{self.socket}"
        # CI writes its own (CONTAINERS_CONF); elsewhere the tests bring the settings they need.
        conf = Path(os.environ["CONTAINERS_CONF"]) if os.environ.get("CONTAINERS_CONF") else workdir / "containers.conf"
        if not conf.is_file():
            conf.write_text(CONTAINERS_CONF)
        self._env = {**os.environ, "CONTAINERS_CONF": str(conf)}
        self._global = [
            "--root", str(workdir / "storage"),
            "--runroot", str(workdir / "run"),
            "--tmpdir", str(workdir / "tmp"),
        ]
        self._service: subprocess.Popen[bytes] | None = None
        self._names = itertools.count(1)
        self.started: list[str] = []

    # -- service
    def start(self, timeout: float = 30.0) -> None:
        log = open(self.workdir / "service.log", "wb")
        self._service = subprocess.Popen(
            ["podman", *self._global, "system", "service", "--time=0", self.base_url],
            env=self._env, stdout=log, stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._service.poll() is not None:
                raise RuntimeError(f"podman service exited: {self.service_log()}")
            if self.socket.exists():
                try:
                    self.client().ping()
                    return
                except Exception:
                    pass
            time.sleep(0.1)
        raise RuntimeError(f"podman service did not answer within {timeout} s: {self.service_log()}")

    def service_log(self) -> str:
        path = self.workdir / "service.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""

    def stop(self) -> None:
        self.remove_all()
        if self._service is not None and self._service.poll() is None:
            self._service.terminate()
            try:
                self._service.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._service.kill()
                self._service.wait(timeout=10)
        self._service = None
        # podman bind-mounts its overlay store onto itself; unmount it so the temp dir can go.
        overlay = self.workdir / "storage" / "overlay"
        if os.path.ismount(overlay):
            subprocess.run(["umount", str(overlay)], capture_output=True, timeout=30)

    def client(self) -> "docker.DockerClient":
        import docker

        return docker.DockerClient(base_url=self.base_url)

    # -- podman CLI for setting the scene
    def podman(self, *args: str, input: bytes | None = None) -> str:
        done = subprocess.run(
            ["podman", *self._global, *args], env=self._env, input=input, capture_output=True, timeout=120
        )
        if done.returncode != 0:
            raise RuntimeError(f"podman {' '.join(args)} failed: {done.stderr.decode(errors='replace')}")
        return done.stdout.decode().strip()

    def image_with_model(self, files: dict[str, bytes], symlinks: dict[str, str] | None = None) -> str:
        """Import an image whose /opt/ml/model holds ``files`` (and ``symlinks``); return its tag."""
        tag = f"localhost/drtasks-test:{next(self._names)}"
        rootfs = self.workdir / f"rootfs-{tag.rsplit(':', 1)[1]}.tar"
        rootfs.write_bytes(_rootfs_tar(files, symlinks or {}))
        self.podman("import", str(rootfs), tag)
        rootfs.unlink()
        return tag

    def run_container(
        self, name: str, files: dict[str, bytes], symlinks: dict[str, str] | None = None
    ) -> str:
        """Start a long-sleeping container called ``name`` with the given /opt/ml/model."""
        image = self.image_with_model(files, symlinks)
        self.podman("run", "-d", "--network=none", "--name", name, image, "/bin/busybox", "sleep", "100000")
        self.started.append(name)
        return name

    def remove_all(self) -> None:
        for name in self.started:
            # -t 0: busybox sleep as PID 1 ignores SIGTERM, don't wait 10 s for it
            subprocess.run(
                ["podman", *self._global, "rm", "-f", "-t", "0", name],
                env=self._env, capture_output=True, timeout=60,
            )
        self.started.clear()


@pytest.fixture(scope="session")
def docker_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PodmanEngine]:
    missing = missing_tools()
    if missing:
        message = f"podman engine unavailable: {', '.join(missing)} not installed (see .ci/podman-setup.sh)"
        if in_ci():
            pytest.fail(message + "; CI must run the container tests", pytrace=False)
        pytest.skip(message + "; skipped because CI is unset")
    engine = PodmanEngine(tmp_path_factory.mktemp("podman"))
    try:
        engine.start()
    except RuntimeError as err:
        engine.stop()
        if in_ci():
            pytest.fail(str(err), pytrace=False)
        pytest.skip(f"podman engine did not start ({err}); skipped because CI is unset")
    yield engine
    engine.stop()


@pytest.fixture
def clean_docker_engine(docker_engine: PodmanEngine) -> Iterator[PodmanEngine]:
    """The session's engine, with every container this test started removed afterwards."""
    yield docker_engine
    docker_engine.remove_all()
