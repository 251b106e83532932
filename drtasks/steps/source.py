"""Reads of S3 shared by every step of every chain in one run, each made once and in parallel.

Several profiles shipped together read the same trained model once; a planner starts the reads
it will need (``prefetch``) and collects them when it needs them, so independent round trips
overlap. Clients are made once per service.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable, Hashable, TypeVar

from drtasks.config import targets
from drtasks.config.settings import Settings
from drtasks.model import SourceModel
from drtasks.plan import Input, PendingUpload, list_pending_uploads, list_target
from drtasks.s3 import ObjectInfo, S3Location, head, list_objects, make_client, s3_errors

T = TypeVar("T")
# Connections per client: transfers use two pools of max_concurrency workers each.
CLIENT_POOL = 20


class SourceReads:
    def __init__(self, workers: int = 6) -> None:
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="drtasks-read")
        self._futures: dict[Hashable, Future[Any]] = {}
        self._clients: dict[Hashable, Any] = {}
        self._lock = threading.Lock()

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def __enter__(self) -> "SourceReads":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- clients -----------------------------------------------------------------------
    def client(self, location: S3Location) -> Any:
        service = (location.endpoint_url or None, location.aws_profile or None, location.region)
        with self._lock:
            if service not in self._clients:
                self._clients[service] = make_client(location, max_pool_connections=CLIENT_POOL)
            return self._clients[service]

    # -- memoised reads ----------------------------------------------------------------
    def _once(self, key: Hashable, read: Callable[[], T]) -> Future[T]:
        with self._lock:
            future = self._futures.get(key)
            if future is None:
                future = self._futures[key] = self._pool.submit(read)
            return future

    def model(self, location: S3Location) -> Future[SourceModel]:
        return self._once(("model", _where(location)), lambda: SourceModel.load(self.client(location), location))

    def head(self, location: S3Location, key: str) -> Future[ObjectInfo | None]:
        def read() -> ObjectInfo | None:
            with s3_errors(location):
                return head(self.client(location), location.bucket, key)

        return self._once(("head", _where(location), key), read)

    def listing(self, location: S3Location, prefix: str) -> Future[list[ObjectInfo]]:
        def read() -> list[ObjectInfo]:
            with s3_errors(location):
                return list(list_objects(self.client(location), location.bucket, prefix))

        return self._once(("list", _where(location), prefix.strip("/")), read)

    def target(self, location: S3Location) -> Future[dict[str, ObjectInfo]]:
        """What a target prefix holds at planning time (read once per run)."""
        return self._once(("target", _where(location)), lambda: list_target(self.client(location), location))

    def pending(self, location: S3Location) -> Future[list[PendingUpload]]:
        return self._once(("pending", _where(location)), lambda: list_pending_uploads(self.client(location), location))


def _where(location: S3Location) -> Hashable:
    return (location.endpoint_url or None, location.aws_profile or None, location.bucket, location.prefix)


def upload_inputs(settings: Settings, source: S3Location) -> list[Input]:
    """Everything an upload reads from the training bucket: a wipe may never delete any of it."""
    custom = (settings.get("DR_LOCAL_S3_CUSTOM_FILES_PREFIX") or "custom_files").strip("/")
    return [
        Input(source, folder=True, what="the trained model"),
        Input(source.with_prefix(targets.metrics_prefix(settings)), folder=True, what="the training metrics"),
        Input(S3Location(source.bucket, targets.reward_key(settings).strip("/"), source.endpoint_url, source.aws_profile, source.region), what="the reward function"),
        Input(source.with_prefix(custom), folder=True, what="the custom files"),
    ]
