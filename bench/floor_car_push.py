"""The floor for car-push: the least a script must do to put a model on a car, in bare requests.

    floor_car_push.py --url URL --password-env VAR --archive FILE
    floor_car_push.py --url URL --password-env VAR --from-s3 --endpoint-url E --profile P --bucket B --prefix MP --pb KEY --name NAME

Login page (CSRF token from the meta tag), POST /login, POST /api/uploadModels, and a check of the
answer's ``success``. With --from-s3 it first fetches the frozen graph and the metadata with boto3
and packs them as ``agent/model.pb`` + ``model_metadata.json`` (gzip level 6, as drtasks does).
No certificate pinning, no checks of the archive, no read-back: only what the transfer needs.
"""

from __future__ import annotations

import argparse
import io
import os
import re
import sys
import tarfile


def build(pb: bytes, metadata: bytes) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=6) as tar:
        for name, content in (("agent/model.pb", pb), ("model_metadata.json", metadata)):
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--password-env", required=True)
    parser.add_argument("--archive")
    parser.add_argument("--from-s3", action="store_true")
    parser.add_argument("--endpoint-url")
    parser.add_argument("--profile")
    parser.add_argument("--bucket")
    parser.add_argument("--prefix")
    parser.add_argument("--pb")
    parser.add_argument("--name")
    args = parser.parse_args()

    if args.from_s3:
        import boto3

        s3 = boto3.Session(profile_name=args.profile).client("s3", endpoint_url=args.endpoint_url)
        pb = s3.get_object(Bucket=args.bucket, Key=f"{args.prefix}/{args.pb}")["Body"].read()
        metadata = s3.get_object(Bucket=args.bucket, Key=f"{args.prefix}/model/model_metadata.json")["Body"].read()
        data, file_name = build(pb, metadata), f"{args.name}.tar.gz"
    else:
        with open(args.archive, "rb") as handle:
            data = handle.read()
        file_name = os.path.basename(args.archive)

    import requests
    import urllib3

    urllib3.disable_warnings()
    session = requests.Session()
    session.trust_env = False
    session.verify = False
    session.headers["Referer"] = args.url + "/"
    page = session.get(args.url + "/login").text
    token = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    session.headers["X-CSRFToken"] = token
    login = session.post(args.url + "/login", data={"password": os.environ[args.password_env]})
    if login.text.strip() == "failure":
        print("login failed", file=sys.stderr)
        return 1
    answer = session.post(args.url + "/api/uploadModels", files={"file": (file_name, data, "application/gzip")}).json()
    if not answer.get("success"):
        print(f"upload failed: {answer}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
