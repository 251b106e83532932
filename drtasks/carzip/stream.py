"""A frozen graph read from S3 once, straight into the archive being written.

One GET, read by a thread of its own while the archive writer compresses what already arrived (the
network and zlib work side by side). Every chunk is hashed against the object's ETag (its MD5, or
the MD5 of its parts) and copied to a file beside the archive, which the graph check then reads
without the weights. A short, long or mismatching read makes the caller write the archive again
(``ReadAgain``), up to ``attempts`` reads, as the transfer executor does.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from typing import Any, BinaryIO

from drtasks.errors import DrtasksError
from drtasks.manifest import SourceObject
from drtasks.s3 import S3Location, s3_errors
from drtasks.transfer import SourceDigest, read_exactly, source_part_size

CHUNK = 4 * 1024 * 1024
QUEUED = 4  # chunks read ahead of the compressor: memory stays near QUEUED * CHUNK


class ReadAgain(Exception):
    """This read of the graph cannot be proven (short, long, or not the planned bytes)."""


@dataclass(frozen=True)
class S3Graph:
    """The graph object to read, as listed when the checkpoint was chosen."""

    client: Any
    location: S3Location
    source: SourceObject

    @property
    def url(self) -> str:
        return f"s3://{self.source.bucket}/{self.source.key} at {self.location.endpoint_url or 'AWS'}"


_END = object()


class GraphFeed:
    """A readable of the graph's bytes for the archive writer, fed by a reading thread.

    ``read(n)`` gives exactly ``n`` bytes until the end, as tarfile expects; the bytes are also
    written to ``copy`` (for the graph check) and hashed. ``proven()`` says, once all is read,
    whether they are the object the ETag names.
    """

    def __init__(self, graph: S3Graph, copy: BinaryIO, part_size: int | None) -> None:
        self.graph = graph
        self.copy = copy
        self.digest = SourceDigest(graph.source.etag, graph.source.size, part_size)
        self._queue: queue.Queue[Any] = queue.Queue(QUEUED)
        self._stop = threading.Event()
        self._pending = memoryview(b"")
        self._front: list[Any] = []  # an item taken from the queue and not used yet
        self._ended = False
        self.problem = ""
        self._thread = threading.Thread(target=self._produce, name="drtasks-graph-read", daemon=True)
        self._thread.start()

    def _put(self, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self) -> None:
        source = self.graph.source
        try:
            with s3_errors(self.graph.location):
                body = self.graph.client.get_object(Bucket=source.bucket, Key=source.key, IfMatch=f'"{source.etag}"')["Body"]
            try:
                remaining = source.size
                while remaining > 0 and not self._stop.is_set():
                    chunk = read_exactly(body, min(CHUNK, remaining))
                    if not chunk:
                        break
                    self.digest.update(chunk)
                    self.copy.write(chunk)
                    remaining -= len(chunk)
                    if not self._put(chunk):
                        return
                if remaining:
                    self.problem = f"read {source.size - remaining} of {source.size} bytes"
                elif read_exactly(body, 1):
                    self.problem = f"the object holds more than the {source.size} bytes listed"
            finally:
                body.close()
            self._put(_END)
        except BaseException as error:  # noqa: BLE001 - handed to the reading side
            if isinstance(error, DrtasksError) and "PreconditionFailed" in error.message:
                error = DrtasksError(f"s3://{source.bucket}/{source.key} changed while it was read; run the command again")
            self._put(error)

    def read(self, size: int = -1) -> bytes:
        wanted = size if size >= 0 else self.graph.source.size
        if not self._pending and not self._ended:
            item = self._queue.get()
            if isinstance(item, bytes) and len(item) == wanted:
                return item  # the usual case: the writer asks for what one read gave
            self._queue_front(item)
        out = bytearray()
        while len(out) < wanted:
            if not self._pending:
                if self._ended:
                    break
                item = self._front.pop() if self._front else self._queue.get()
                if item is _END:
                    self._ended = True
                    if self.problem:
                        raise ReadAgain(self.problem)
                    continue
                if isinstance(item, BaseException):
                    self._ended = True
                    raise item
                self._pending = memoryview(item)
            take = self._pending[: wanted - len(out)]
            out += take
            self._pending = self._pending[len(take) :]
        return bytes(out)

    def _queue_front(self, item: Any) -> None:
        self._front.append(item)

    def close(self) -> None:
        """Stop the reading thread (after a failure of the writer too) and wait for it."""
        self._stop.set()
        while self._thread.is_alive():
            try:
                self._queue.get(timeout=0.1)
            except queue.Empty:
                pass
        self._thread.join()

    def proven(self) -> bool | None:
        """After the end: True or False when the ETag decides, None when a second read must."""
        return self.digest.matches() if not self.problem else False


def whole_md5(graph: S3Graph) -> str:
    """The MD5 of the object read once more (its ETag cannot tell: parts of unknown size)."""
    import hashlib

    source = graph.source
    digest = hashlib.md5(usedforsecurity=False)
    with s3_errors(graph.location):
        body = graph.client.get_object(Bucket=source.bucket, Key=source.key, IfMatch=f'"{source.etag}"')["Body"]
    try:
        while chunk := read_exactly(body, CHUNK):
            digest.update(chunk)
    finally:
        body.close()
    return digest.hexdigest()


def graph_part_size(graph: S3Graph) -> int | None:
    return source_part_size(graph.client, graph.source)
