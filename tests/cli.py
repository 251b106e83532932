"""Run drtasks' commands as a user would: a separate process, its exit code, its two streams."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

PROJECT_ROOT = Path(__file__).resolve().parents[1]

ENTRY_POINTS = {
    "drtasks": "main",
    "dr-upload-model": "dr_upload_model",
    "dr-increment-upload-model": "dr_increment_upload_model",
    "dr-create-car-zip": "dr_create_car_zip",
    "dr-upload-car-zip": "dr_upload_car_zip",
    "dr-download-model": "dr_download_model",
}


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err


def _child(command: str, dr_dir: Path | None, env: Mapping[str, str] | None) -> tuple[str, dict[str, str]]:
    """The Python code that runs ``command`` and the environment of its process."""
    function = ENTRY_POINTS[command]
    environment = {k: v for k, v in os.environ.items() if not k.startswith("DR_")}
    environment["COLUMNS"] = "200"
    # The code under test is this tree's, whatever an editable install elsewhere points at.
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, (str(PROJECT_ROOT), environment.get("PYTHONPATH"))))
    if dr_dir is not None:
        environment["DR_DIR"] = str(dr_dir)
    environment.update(env or {})
    return f"import sys; sys.argv[0] = {command!r}; from drtasks.cli import {function}; {function}()", environment


def run(command: str, *args: str, dr_dir: Path | None = None, env: Mapping[str, str] | None = None, stdin: str | None = None, timeout: float = 120) -> Result:
    """Run a console script of drtasks in a child process (the installed entry point's function)."""
    code, environment = _child(command, dr_dir, env)
    completed = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        env=environment,
        input=stdin,
        timeout=timeout,
        cwd=str(dr_dir) if dr_dir else None,
    )
    return Result(completed.returncode, completed.stdout, completed.stderr)


def drtasks(*args: str, **kwargs: object) -> Result:
    return run("drtasks", *args, **kwargs)  # type: ignore[arg-type]


def in_terminal(*args: str, dr_dir: Path | None = None, columns: int = 120, timeout: float = 120) -> Result:
    """Run ``drtasks`` with a pseudo-terminal as its stdin, stdout and stderr (what a user at a terminal sees)."""
    import fcntl
    import pty
    import struct
    import termios

    code, environment = _child("drtasks", dr_dir, {"COLUMNS": str(columns), "TERM": "xterm-256color"})
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    child = subprocess.Popen([sys.executable, "-c", code, *args], stdin=follower, stdout=follower, stderr=follower, env=environment, cwd=str(dr_dir) if dr_dir else None)
    os.close(follower)
    output = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        output += chunk
    os.close(leader)
    code_ = child.wait(timeout=timeout)
    return Result(code_, output.decode("utf-8", errors="replace"), "")
