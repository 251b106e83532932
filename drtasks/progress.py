"""Transfer progress for people: a rich bar on a terminal, one quiet line per object otherwise."""

from __future__ import annotations

import sys
import threading
import time
from contextlib import contextmanager
from typing import TYPE_CHECKING, Callable, Iterator

from rich.console import Console

from drtasks.transfer import NoProgress
from drtasks.units import human

if TYPE_CHECKING:
    from rich.progress import Progress


class BarProgress:
    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._task = progress.add_task("transfer", total=None)

    def started(self, total_bytes: int, total_objects: int) -> None:
        self._progress.update(self._task, total=max(total_bytes, 1), description=f"{total_objects} objects")

    def advanced(self, key: str, nbytes: int) -> None:
        self._progress.advance(self._task, nbytes)

    def finished_object(self, key: str) -> None:
        pass


class LineProgress:
    """When output is not a terminal: a short line every few seconds and one at the end.

    A line per object would drown the plan of a thousand-object model (and slow it down).
    """

    EVERY_SECONDS = 5.0

    def __init__(self, out: Console) -> None:
        self._out = out
        self._lock = threading.Lock()
        self._done = 0
        self._total = 0
        self._bytes = 0
        self._total_bytes = 0
        self._last = 0.0

    def started(self, total_bytes: int, total_objects: int) -> None:
        self._total = total_objects
        self._total_bytes = total_bytes
        self._last = time.monotonic()

    def advanced(self, key: str, nbytes: int) -> None:
        with self._lock:
            self._bytes += nbytes

    def finished_object(self, key: str) -> None:
        with self._lock:
            self._done += 1
            now = time.monotonic()
            if self._done < self._total and now - self._last < self.EVERY_SECONDS:
                return
            self._last = now
            self._out.print(f"[{self._done:,}/{self._total:,} objects, {human(self._bytes)} of {human(self._total_bytes)}]")


@contextmanager
def progress_for(out: Console, quiet: bool = False) -> Iterator[BarProgress | LineProgress | NoProgress]:
    if quiet:
        yield NoProgress()
    elif out.is_terminal and sys.stdout.isatty():
        from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

        columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn())
        with Progress(*columns, console=out, transient=True) as bar:
            yield BarProgress(bar)
    else:
        yield LineProgress(out)


@contextmanager
def status_reporter(out: Console, what: str) -> Iterator[Callable[[str], None]]:
    """While waiting on a remote status: a rich spinner on a terminal, else one line per change."""
    if out.is_terminal:
        with out.status(f"{what}: waiting") as spinner:
            yield lambda status: spinner.update(f"{what}: {status}")
        return
    last: list[str] = []

    def line(status: str) -> None:
        if not last or last[-1] != status:
            last.append(status)
            out.print(f"{what}: {status}")

    yield line
