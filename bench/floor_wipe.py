"""The floor for a wipe: list a prefix, delete every object with DeleteObjects, nothing else.

One listing page (up to 1000 keys) is one DeleteObjects call, sent as the page arrives: what a
short script written for the job would do.

    python bench/floor_wipe.py --profile P --endpoint-url URL --bucket B --prefix PREFIX
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", required=True)
    parser.add_argument("--endpoint-url", required=True)
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--prefix", required=True, help="the folder to empty (a '/' is added)")
    args = parser.parse_args(argv)

    import boto3
    from botocore.config import Config

    config = Config(s3={"addressing_style": "path"}, request_checksum_calculation="when_required", response_checksum_validation="when_required")
    client = boto3.Session(profile_name=args.profile).client("s3", endpoint_url=args.endpoint_url, config=config)
    deleted = 0
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=args.bucket, Prefix=args.prefix.strip("/") + "/"):
        keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
        if keys:
            client.delete_objects(Bucket=args.bucket, Delete={"Objects": keys, "Quiet": True})
            deleted += len(keys)
    print(deleted)
    return 0


if __name__ == "__main__":
    sys.exit(main())
