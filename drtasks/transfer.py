"""Apply a plan: copy server-side when one service holds both sides, else stream; then verify.

Transfers run on one bounded pool of workers. Large objects are split into parts that are
scheduled like any other job, so memory stays near ``max_concurrency * part_size`` whatever
the model size. Progress reaches the UI through callbacks only.
"""

from __future__ import annotations

import threading
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

from drtasks.errors import DrtasksError
from drtasks.manifest import ManifestItem
from drtasks.plan import SOURCE_ETAG_METADATA, Action, Plan, PlanItem, list_target
from drtasks.s3 import s3_errors

MiB = 1024 * 1024
MAX_PARTS = 10_000


@dataclass(frozen=True)
class TransferConfig:
    max_concurrency: int = 8
    part_size: int = 5 * MiB  # streamed parts: memory stays near max_concurrency * part_size
    copy_threshold: int = 5 * 1024 * MiB  # CopyObject's limit; above it, multipart copy
    copy_part_size: int = 512 * MiB

    def __post_init__(self) -> None:
        if min(self.part_size, self.copy_part_size) < 5 * MiB:
            raise ValueError("S3 parts are at least 5 MiB")  # all but the last part of an upload
        if self.max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")


class Progress(Protocol):
    def started(self, total_bytes: int, total_objects: int) -> None: ...
    def advanced(self, key: str, nbytes: int) -> None: ...
    def finished_object(self, key: str) -> None: ...


class NoProgress:
    def started(self, total_bytes: int, total_objects: int) -> None:
        pass

    def advanced(self, key: str, nbytes: int) -> None:
        pass

    def finished_object(self, key: str) -> None:
        pass


@dataclass
class _Multipart:
    """A multipart upload whose parts run as independent jobs; the last part completes it."""

    key: str
    upload_id: str
    remaining: int
    parts: dict[int, str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def part_done(self, number: int, etag: str) -> bool:
        with self.lock:
            self.parts[number] = etag
            self.remaining -= 1
            return self.remaining == 0


class Transfer:
    def __init__(self, plan: Plan, source_client: Any, target_client: Any, config: TransferConfig, progress: Progress) -> None:
        self.plan = plan
        self.source_client = source_client
        self.target_client = target_client
        self.config = config
        self.progress = progress
        self.target = plan.target
        self._open_uploads: list[_Multipart] = []

    # -- one object ------------------------------------------------------------------
    def _metadata(self, item: ManifestItem) -> dict[str, str]:
        return {SOURCE_ETAG_METADATA: item.etag}

    def _put_content(self, item: ManifestItem) -> None:
        self.target_client.put_object(
            Bucket=self.target.bucket, Key=self.target.key(item.key), Body=item.content or b"", Metadata=self._metadata(item)
        )
        self.progress.advanced(item.key, item.size)
        self.progress.finished_object(item.key)

    def _copy_whole(self, item: ManifestItem) -> None:
        assert item.source
        self.target_client.copy_object(
            Bucket=self.target.bucket,
            Key=self.target.key(item.key),
            CopySource={"Bucket": item.source.bucket, "Key": item.source.key},
            MetadataDirective="REPLACE",
            Metadata=self._metadata(item),
        )
        self.progress.advanced(item.key, item.size)
        self.progress.finished_object(item.key)

    def _stream_whole(self, item: ManifestItem) -> None:
        assert item.source
        body = self.source_client.get_object(Bucket=item.source.bucket, Key=item.source.key)["Body"].read()
        self.target_client.put_object(Bucket=self.target.bucket, Key=self.target.key(item.key), Body=body, Metadata=self._metadata(item))
        self.progress.advanced(item.key, item.size)
        self.progress.finished_object(item.key)

    def _part_jobs(self, item: ManifestItem, server_side: bool) -> list[Callable[[], None]]:
        assert item.source
        source = item.source
        wanted = self.config.copy_part_size if server_side else self.config.part_size
        part_size = max(wanted, -(-item.size // MAX_PARTS))  # S3 allows 10,000 parts per upload
        ranges = [(start, min(start + part_size, item.size) - 1) for start in range(0, item.size, part_size)]
        created = self.target_client.create_multipart_upload(Bucket=self.target.bucket, Key=self.target.key(item.key), Metadata=self._metadata(item))
        upload = _Multipart(item.key, created["UploadId"], len(ranges))
        self._open_uploads.append(upload)

        def job(number: int, first: int, last: int) -> None:
            common = {"Bucket": self.target.bucket, "Key": self.target.key(item.key), "UploadId": upload.upload_id, "PartNumber": number}
            if server_side:
                answer = self.target_client.upload_part_copy(
                    CopySource={"Bucket": source.bucket, "Key": source.key}, CopySourceRange=f"bytes={first}-{last}", **common
                )
                etag = answer["CopyPartResult"]["ETag"]
            else:
                body = self.source_client.get_object(Bucket=source.bucket, Key=source.key, Range=f"bytes={first}-{last}")["Body"].read()
                etag = self.target_client.upload_part(Body=body, **common)["ETag"]
            self.progress.advanced(item.key, last - first + 1)
            if upload.part_done(number, etag):
                parts = [{"PartNumber": n, "ETag": upload.parts[n]} for n in sorted(upload.parts)]
                self.target_client.complete_multipart_upload(
                    Bucket=self.target.bucket, Key=self.target.key(item.key), UploadId=upload.upload_id, MultipartUpload={"Parts": parts}
                )
                self._open_uploads.remove(upload)
                self.progress.finished_object(item.key)

        return [lambda n=n, a=a, b=b: job(n, a, b) for n, (a, b) in enumerate(ranges, start=1)]

    def _jobs_for(self, entry: PlanItem) -> list[Callable[[], None]]:
        item = entry.item
        assert item is not None
        if item.source is None:
            return [lambda: self._put_content(item)]
        if self.plan.server_side:
            if item.size > self.config.copy_threshold:
                return self._part_jobs(item, server_side=True)
            return [lambda: self._copy_whole(item)]
        if item.size > self.config.part_size:
            return self._part_jobs(item, server_side=False)
        return [lambda: self._stream_whole(item)]

    def _delete(self, keys: list[str]) -> None:
        for start in range(0, len(keys), 1000):
            batch = keys[start : start + 1000]
            answer = self.target_client.delete_objects(
                Bucket=self.target.bucket, Delete={"Objects": [{"Key": self.target.key(k)} for k in batch], "Quiet": True}
            )
            if answer.get("Errors"):
                first = answer["Errors"][0]
                raise DrtasksError(f"S3 refused to delete {first.get('Key')}: {first.get('Code')}")
            for key in batch:
                self.progress.finished_object(key)

    # -- the whole plan ------------------------------------------------------------------
    def _run_phase(self, pool: ThreadPoolExecutor, entries: list[PlanItem]) -> None:
        futures: list[Future[None]] = []
        for entry in entries:
            for job in self._jobs_for(entry):
                futures.append(pool.submit(job))
        done, pending = wait(futures, return_when=FIRST_EXCEPTION)
        for future in pending:
            future.cancel()
        for future in done:
            error = future.exception()
            if error is not None:
                raise error

    def run(self) -> None:
        writes = [entry for entry in self.plan.items if entry.writes]
        deletes = [entry.key for entry in self.plan.items if entry.action is Action.DELETE]
        self.progress.started(sum(entry.source_size or 0 for entry in writes), len(writes) + len(deletes))
        data = [entry for entry in writes if not (entry.item and entry.item.final)]
        final = [entry for entry in writes if entry.item and entry.item.final]
        with s3_errors(self.target), ThreadPoolExecutor(self.config.max_concurrency, thread_name_prefix="drtasks") as pool:
            try:
                self._run_phase(pool, data)
                self._run_phase(pool, final)  # only once every data object is in place
                if deletes:
                    self._delete(deletes)
            except BaseException:
                self._abort_open_uploads()
                raise

    def _abort_open_uploads(self) -> None:
        for upload in list(self._open_uploads):
            try:
                self.target_client.abort_multipart_upload(Bucket=self.target.bucket, Key=self.target.key(upload.key), UploadId=upload.upload_id)
            except Exception:  # noqa: BLE001 - best effort clean-up while another error propagates
                pass


def apply(plan: Plan, source_client: Any, target_client: Any, config: TransferConfig | None = None, progress: Progress | None = None) -> None:
    """Execute exactly the plan's writes and deletes."""
    Transfer(plan, source_client, target_client, config or TransferConfig(), progress or NoProgress()).run()


@dataclass(frozen=True)
class Check:
    key: str
    ok: bool
    detail: str


def verify(plan: Plan, target_client: Any) -> list[Check]:
    """After a transfer: every planned object is there with the right size and checksum, deletions gone."""
    target = plan.target
    present = list_target(target_client, target)
    with s3_errors(target):
        checks: list[Check] = []
        for entry in plan.items:
            found = present.get(entry.key)
            if entry.action is Action.DELETE:
                checks.append(Check(entry.key, found is None, "deleted" if found is None else "still present"))
                continue
            item = entry.item
            assert item is not None
            if found is None:
                checks.append(Check(entry.key, False, "missing"))
            elif found.size != item.size:
                checks.append(Check(entry.key, False, f"size {found.size} != {item.size}"))
            elif found.etag == item.etag:
                checks.append(Check(entry.key, True, "size and checksum match"))
            else:
                metadata = target_client.head_object(Bucket=target.bucket, Key=found.key).get("Metadata", {})
                same = metadata.get(SOURCE_ETAG_METADATA) == item.etag
                checks.append(Check(entry.key, same, "size and source checksum match" if same else "checksum differs"))
    return checks
