"""The floor for `inv car-zip --from s3`: get the graph and metadata, tar and gzip them, put the archive.

What a bare script does: both objects read into memory with boto3, `tarfile` + gzip level 6 in
memory, one `put_object`. No checks of any kind.

    python bench/floor_carzip.py --profile P --endpoint-url URL --bucket B --pb KEY --metadata KEY \
        --target-bucket B --target-key KEY
"""

from __future__ import annotations

import argparse
import io
import sys
import tarfile


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", required=True)
    parser.add_argument("--endpoint-url", required=True)
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--pb", required=True)
    parser.add_argument("--metadata", required=True)
    parser.add_argument("--target-bucket", required=True)
    parser.add_argument("--target-key", required=True)
    args = parser.parse_args(argv)

    import boto3
    from botocore.config import Config

    config = Config(s3={"addressing_style": "path"}, request_checksum_calculation="when_required", response_checksum_validation="when_required")
    client = boto3.Session(profile_name=args.profile).client("s3", endpoint_url=args.endpoint_url, config=config)
    pb = client.get_object(Bucket=args.bucket, Key=args.pb)["Body"].read()
    metadata = client.get_object(Bucket=args.bucket, Key=args.metadata)["Body"].read()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=6) as tar:
        for name, content in (("agent/model.pb", pb), ("model_metadata.json", metadata)):
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    del pb
    client.put_object(Bucket=args.target_bucket, Key=args.target_key, Body=buffer.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(main())
