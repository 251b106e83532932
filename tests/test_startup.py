"""Start-up: the garbage collector pauses while a command loads and resumes with the first S3 client."""

from __future__ import annotations

import gc
from typing import Any, Iterator

import pytest

from drtasks import startup
from drtasks.s3 import make_client


@pytest.fixture
def collector_restored() -> Iterator[None]:
    enabled = gc.isenabled()
    yield
    startup._paused = False
    gc.enable() if enabled else gc.disable()


def test_collection_pauses_and_resumes_with_the_first_s3_client(collector_restored: None, s3_server: Any) -> None:
    startup.pause_collection()
    assert not gc.isenabled()
    make_client(s3_server.location("any-bucket"))
    assert gc.isenabled()


def test_resuming_never_enables_a_collector_someone_else_disabled(collector_restored: None) -> None:
    gc.disable()
    startup.pause_collection()  # already off: not ours to turn back on
    startup.resume_collection()
    assert not gc.isenabled()
