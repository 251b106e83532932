"""Reading a configuration file (env file, profile) as untrusted input.

Only a regular file is opened: a FIFO would block the command forever, a device could stream
without end, a directory is a mistake. The size is capped before anything is read; DRfC's own
run.env and system.env are a few KiB.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from drtasks.errors import DrtasksError

MAX_CONFIG_BYTES = 1024 * 1024  # 1 MiB: a hundred times the largest real env file or profile


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def read_config_text(path: Path, what: str, limit: int = MAX_CONFIG_BYTES) -> str:
    """The text of ``path`` (a ``what``: "env file", "profile"), refused unless a regular UTF-8 file within ``limit``."""
    try:
        info = os.stat(path)  # follows links: a link to a regular file is fine
    except FileNotFoundError:
        raise DrtasksError(f"{path}: {what} not found") from None
    except OSError as error:
        raise DrtasksError(f"{path}: cannot read {what} ({error.strerror or error.__class__.__name__})") from None
    if not stat.S_ISREG(info.st_mode):
        raise DrtasksError(f"{path}: {what} is {_kind(info.st_mode)}, not a regular file")
    if info.st_size > limit:
        raise DrtasksError(f"{path}: {what} is {info.st_size:,} bytes; at most {limit:,} are read")
    try:
        # O_NONBLOCK: should the file be swapped for a FIFO after the check, open does not hang.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as handle:
            data = handle.read(limit + 1)
    except OSError as error:
        raise DrtasksError(f"{path}: cannot read {what} ({error.strerror or error.__class__.__name__})") from None
    if len(data) > limit:
        raise DrtasksError(f"{path}: {what} is larger than {limit:,} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise DrtasksError(f"{path}: cannot read {what}: not UTF-8 text (byte {error.start})") from None
