"""Transfer progress for people: a rich bar on a terminal, one quiet line per object otherwise."""

from __future__ import annotations

import sys
import threading
from contextlib import contextmanager
from typing import Iterator

from typing import TYPE_CHECKING

from rich.console import Console

from drtasks.transfer import NoProgress

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
    """When output is not a terminal: a line per finished object, safe from several threads."""

    def __init__(self, out: Console) -> None:
        self._out = out
        self._lock = threading.Lock()
        self._done = 0
        self._total = 0

    def started(self, total_bytes: int, total_objects: int) -> None:
        self._total = total_objects

    def advanced(self, key: str, nbytes: int) -> None:
        pass

    def finished_object(self, key: str) -> None:
        with self._lock:
            self._done += 1
            self._out.print(f"[{self._done}/{self._total}] {key}")


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
