"""One writer per target prefix: a lease object written with a conditional PUT.

The lease is ``<prefix>/.drtasks-lease.json``, created with ``If-None-Match: *`` so that of two
runs starting together exactly one gets it; the other stops and names the holder. The holder
renews it (``If-Match`` on its own ETag) while it works and deletes it at the end. A lease whose
holder is gone is taken over: it expired, or it names a process of this machine that no longer
runs (a run killed with -9 on this machine can be re-run at once).

Servers without conditional writes still get the lease written, and the executor re-checks the
whole target before it writes the completion markers, so a concurrent writer is caught either way.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

from drtasks.errors import DrtasksError
from drtasks.plan import LEASE_NAME
from drtasks.processes import process_alive
from drtasks.s3 import S3Location, s3_errors

TTL_SECONDS = 120.0
RENEW_EVERY = 30.0


@dataclass(frozen=True)
class Holder:
    run_id: str
    host: str
    pid: int
    command: str
    started: float
    expires: float

    def describe(self) -> str:
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.started))
        return f"run {self.run_id[:8]} ({self.command}, pid {self.pid} on {self.host}, since {since})"

    def gone(self, now: float | None = None) -> bool:
        if (now or time.time()) > self.expires:
            return True
        if self.host == socket.gethostname():
            return not process_alive(self.pid)
        return False


def _code(error: Exception) -> str:
    return str(getattr(error, "response", {}).get("Error", {}).get("Code", ""))


def read_holder(client: Any, target: S3Location) -> tuple[Holder, str] | None:
    """The current holder and the lease's ETag, or None when nobody holds the target."""
    from botocore.exceptions import ClientError

    try:
        answer = client.get_object(Bucket=target.bucket, Key=target.key(LEASE_NAME))
    except ClientError as error:
        if _code(error) in ("NoSuchKey", "404", "NotFound"):
            return None
        raise
    try:
        data = json.loads(answer["Body"].read())
        holder = Holder(str(data["run_id"]), str(data["host"]), int(data["pid"]), str(data["command"]), float(data["started"]), float(data["expires"]))
    except (ValueError, KeyError, TypeError):
        # Unreadable: treat as an expired lease of an unknown run, so it can be taken over.
        holder = Holder("unknown", "unknown", 0, "unknown", 0.0, 0.0)
    return holder, answer["ETag"].strip('"')


def refuse_if_held(client: Any, target: S3Location) -> str:
    """At planning time: stop early when another live run is writing this target.

    Returns who left a lease whose run is gone (killed), "" when there is none: the plan's
    ``stale_lease``, which applying it takes over and removes even when nothing else changes.
    """
    with s3_errors(target):
        found = read_holder(client, target)
    if found and not found[0].gone():
        raise _held_by(target, found[0])
    return found[0].describe() if found else ""


def _held_by(target: S3Location, holder: Holder) -> DrtasksError:
    until = time.strftime("%H:%M:%S", time.localtime(holder.expires))
    return DrtasksError(
        f"{target.url} is being written by another drtasks {holder.describe()}; "
        f"wait for it to finish (its lease expires at {until} unless renewed)"
    )


class Lease:
    def __init__(self, client: Any, target: S3Location) -> None:
        self.client = client
        self.target = target
        self.run_id = uuid.uuid4().hex
        self._etag: str | None = None
        self._lost = threading.Event()
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None
        self._started = time.time()

    @property
    def key(self) -> str:
        return self.target.key(LEASE_NAME)

    def _body(self) -> bytes:
        command = " ".join(os.path.basename(a) if i == 0 else a for i, a in enumerate(sys.argv[:4]))
        return json.dumps(
            {
                "run_id": self.run_id,
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "command": command or "drtasks",
                "started": self._started,
                "expires": time.time() + TTL_SECONDS,
            }
        ).encode()

    def acquire(self) -> "Lease":
        from botocore.exceptions import ClientError

        with s3_errors(self.target):
            for _attempt in range(2):
                try:
                    answer = self.client.put_object(Bucket=self.target.bucket, Key=self.key, Body=self._body(), IfNoneMatch="*")
                except ClientError as error:
                    if _code(error) not in ("PreconditionFailed", "412", "ConditionalRequestConflict"):
                        raise
                    found = read_holder(self.client, self.target)
                    if found is None:
                        continue  # released meanwhile: try again
                    holder, etag = found
                    if not holder.gone():
                        raise _held_by(self.target, holder) from None
                    self._take_over(etag)
                    continue
                self._etag = answer["ETag"].strip('"')
                break
            else:
                raise DrtasksError(f"could not take the lease on {self.target.url}: another run keeps taking it")
        self._renewer = threading.Thread(target=self._renew_loop, name="drtasks-lease", daemon=True)
        self._renewer.start()
        return self

    def _take_over(self, etag: str) -> None:
        """Remove a dead run's lease, but only the one we saw (another taker may be quicker)."""
        from botocore.exceptions import ClientError

        try:
            self.client.delete_object(Bucket=self.target.bucket, Key=self.key, IfMatch=f'"{etag}"')
        except ClientError as error:
            if _code(error) not in ("PreconditionFailed", "412", "NoSuchKey", "404", "NotImplemented"):
                raise
            if _code(error) == "NotImplemented":
                self.client.delete_object(Bucket=self.target.bucket, Key=self.key)

    def _renew_loop(self) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        while not self._stop.wait(RENEW_EVERY):
            try:
                answer = self.client.put_object(Bucket=self.target.bucket, Key=self.key, Body=self._body(), IfMatch=f'"{self._etag}"')
                self._etag = answer["ETag"].strip('"')
            except ClientError as error:
                if _code(error) in ("PreconditionFailed", "412", "NoSuchKey"):
                    self._lost.set()
                    return
            except BotoCoreError:
                pass  # a passing network fault; the next renewal tries again

    def ensure_held(self) -> None:
        """Before the completion markers: the lease must still be ours."""
        if self._lost.is_set():
            raise DrtasksError(f"lost the lease on {self.target.url} to another run: the target is partial, its completion markers were not written")
        with s3_errors(self.target):
            found = read_holder(self.client, self.target)
        if found is None or found[0].run_id != self.run_id:
            other = f" to {found[0].describe()}" if found else ""
            raise DrtasksError(f"lost the lease on {self.target.url}{other}: the target is partial, its completion markers were not written")

    def release(self) -> None:
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join(timeout=5)
        if self._lost.is_set() or self._etag is None:
            return
        try:
            found = read_holder(self.client, self.target)
            if found is not None and found[0].run_id == self.run_id:
                self.client.delete_object(Bucket=self.target.bucket, Key=self.key)
        except Exception:  # noqa: BLE001 - releasing is best effort: an expired lease is taken over later
            pass
