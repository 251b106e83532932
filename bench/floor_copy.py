"""The floor for `inv upload` on one endpoint: the bare boto3 calls an upload cannot avoid.

Reads a plan written by `drtasks upload --dry-run --json` and performs exactly its writes, with
nothing else: no listing, no comparison, no verification, no progress. Data keys are copied
server-side with copy_object; generated keys (training_params.yaml, the checkpoint index, ...)
are written with put_object at the size the plan states, so the bytes sent match drtasks'.

    python bench/floor_copy.py --plan plan.json --profile P --endpoint-url URL [--prefix NEW] [--workers 8]
"""

from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any


def parse_s3_url(url: str) -> tuple[str, str]:
    bucket, _, key = url.removeprefix("s3://").partition("/")
    return bucket, key


def writes_of(plan: dict[str, Any], new_prefix: str | None) -> tuple[str, list[tuple[str, str | None, int]]]:
    """(target bucket, [(target key, source url or None, size)]) for every add/replace."""
    bucket, old_prefix = parse_s3_url(plan["target"])
    jobs = []
    for item in plan["items"]:
        if item["action"] not in ("add", "replace"):
            continue
        key = item["key"]
        if new_prefix is not None:
            key = f"{new_prefix}/{key[len(old_prefix) + 1:]}"
        source = item["source"] if str(item["source"]).startswith("s3://") else None
        jobs.append((key, source, int(item["source_size"] or 0)))
    return bucket, jobs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plan", required=True, help="plan JSON from `upload --dry-run --json`")
    parser.add_argument("--profile", required=True, help="AWS profile holding the endpoint's keys")
    parser.add_argument("--endpoint-url", required=True)
    parser.add_argument("--prefix", help="write under this target prefix instead of the plan's")
    parser.add_argument("--workers", type=int, default=8, help="concurrent requests (drtasks' default is 8)")
    args = parser.parse_args(argv)

    with open(args.plan, encoding="utf-8") as handle:
        plan = json.load(handle)
    bucket, jobs = writes_of(plan, args.prefix)

    import boto3
    from botocore.config import Config

    # The same client settings drtasks uses, so only the work around the calls differs.
    config = Config(
        max_pool_connections=args.workers + 2,
        s3={"addressing_style": "path"},
        retries={"max_attempts": 3, "mode": "standard"},
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    client = boto3.Session(profile_name=args.profile).client("s3", endpoint_url=args.endpoint_url, config=config)

    def write(job: tuple[str, str | None, int]) -> None:
        key, source, size = job
        if source is None:
            client.put_object(Bucket=bucket, Key=key, Body=b"g" * size)
        else:
            source_bucket, source_key = parse_s3_url(source)
            client.copy_object(Bucket=bucket, Key=key, CopySource={"Bucket": source_bucket, "Key": source_key})

    with ThreadPoolExecutor(max(1, args.workers)) as pool:
        list(pool.map(write, jobs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
