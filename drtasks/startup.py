"""Start-up of a short command: skip the cyclic garbage collector while modules load.

Loading invoke, boto3 and rich creates many long-lived objects (modules, classes, botocore's
service models); the collector walking them again and again costs several percent of a short
run. It is paused at process start and resumes, with those objects frozen out of its work, once
the first S3 client exists: by then the heavy imports are done.
"""

from __future__ import annotations

import gc

_paused = False


def pause_collection() -> None:
    global _paused
    if gc.isenabled():
        gc.disable()
        _paused = True


def resume_collection() -> None:
    """Idempotent; only undoes what pause_collection did."""
    global _paused
    if _paused:
        _paused = False
        gc.freeze()
        gc.enable()
