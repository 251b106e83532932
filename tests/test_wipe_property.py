"""A wipe never deletes outside the target prefix, nor an input of the upload: 40 random layouts.

Each case (``tests/wipe_property.py`` draws it from a fixed seed) lays out a small trained model,
inputs and strays over two real S3 servers, runs the real ``upload -w`` or ``increment -w``, and
compares every bucket before and after. The fault campaign (``bench/fault_campaign.py``) runs
hundreds of these cases; this is its fast, fixed sample.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.wipe_property import Storage, World, make_world, random_case, run_case

SEED = 20260
CASES = 40
CHILD_CASES = (3, 17)  # these run as child processes (the DRfC command line), the rest in process


@pytest.fixture(scope="session")
def world(s3_server: Any, s3_server_b: Any, aws_files: Any) -> Iterator[World]:
    alias = f"{s3_server.aws_profile}-alias"
    aws_files.add_profile(alias, s3_server.access_key, s3_server.secret_key)
    port = s3_server.endpoint_url.rsplit(":", 1)[1]
    a = Storage("a", s3_server.endpoint_url, s3_server.aws_profile, s3_server.client(), (f"http://localhost:{port}", f"{s3_server.endpoint_url}/"), alias)
    b = Storage("b", s3_server_b.endpoint_url, s3_server_b.aws_profile, s3_server_b.client())
    yield make_world(a, b)


@pytest.mark.parametrize("number", range(CASES))
def test_a_wipe_deletes_only_inside_the_target_and_never_an_input(world: World, tmp_path: Path, number: int) -> None:
    case = random_case(SEED, number)
    if number in CHILD_CASES:
        case = type(case)(**{**case.__dict__, "child": True})
    verdict = run_case(world, case, tmp_path)
    assert verdict.held, verdict.report()
