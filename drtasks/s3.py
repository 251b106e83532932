"""S3 locations and clients: one place decides endpoints, credentials and addressing."""

from __future__ import annotations

import configparser
import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from drtasks.errors import DrtasksError
from drtasks.startup import resume_collection

# Where `inv local-s3` keeps credentials of the embedded server, as a named AWS profile.
DRTASKS_CREDENTIALS_ENV = "DRTASKS_CREDENTIALS_FILE"


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "drtasks"


def drtasks_credentials_file() -> Path:
    return Path(os.environ.get(DRTASKS_CREDENTIALS_ENV) or cache_dir() / "credentials")


@dataclass(frozen=True)
class S3Location:
    """A bucket and prefix on one S3 service, reached with one set of credentials."""

    bucket: str
    prefix: str
    endpoint_url: str | None = None
    aws_profile: str | None = None
    region: str = "us-east-1"

    def key(self, relative: str) -> str:
        """The full key of ``relative`` below this location's prefix."""
        return f"{self.prefix}/{relative}" if self.prefix else relative

    def relative(self, key: str) -> str:
        return key[len(self.prefix) + 1 :] if self.prefix else key

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"

    def same_service(self, other: "S3Location") -> bool:
        """True when one client can reach both, so copies can stay server-side."""
        return (self.endpoint_url or None, self.aws_profile or None) == (
            other.endpoint_url or None,
            other.aws_profile or None,
        )

    def with_prefix(self, prefix: str) -> "S3Location":
        return S3Location(self.bucket, prefix.strip("/"), self.endpoint_url, self.aws_profile, self.region)


def _drtasks_profile(name: str) -> dict[str, str] | None:
    path = drtasks_credentials_file()
    if not path.is_file():
        return None
    parser = configparser.ConfigParser()
    parser.read(path)
    if not parser.has_section(name):
        return None
    return dict(parser[name])


def session_for(aws_profile: str | None, region: str) -> Any:
    """A boto3 session: the named AWS profile, else drtasks' own profile file, else the default chain."""
    import boto3
    from botocore.exceptions import ProfileNotFound

    if not aws_profile:
        return boto3.Session(region_name=region)
    try:
        return boto3.Session(profile_name=aws_profile, region_name=region)
    except ProfileNotFound:
        pass
    own = _drtasks_profile(aws_profile)
    if own is None:
        raise DrtasksError(
            f"AWS profile '{aws_profile}' is not in your AWS config or in {drtasks_credentials_file()}"
        )
    return boto3.Session(
        aws_access_key_id=own.get("aws_access_key_id"),
        aws_secret_access_key=own.get("aws_secret_access_key"),
        region_name=region,
    )


def remember_session_secrets(session: Any) -> None:
    """Tell the redaction about the secret key and token the session signs with."""
    from drtasks import secrets

    credentials = session.get_credentials()
    if credentials is not None:
        secrets.remember(getattr(credentials, "secret_key", None), getattr(credentials, "token", None))


def make_client(location: S3Location, max_pool_connections: int = 16, connect_timeout: float | None = None) -> Any:
    """An S3 client for ``location``; path-style addressing for any non-AWS endpoint.

    ``connect_timeout``: shorter than DRTASKS_TIMEOUT for probes that may meet an endpoint nobody answers.
    """
    from botocore.config import Config

    from drtasks import timeouts

    path_style = bool(location.endpoint_url) and "amazonaws.com" not in (location.endpoint_url or "")
    options = timeouts.botocore_options()
    if connect_timeout is not None:
        options["connect_timeout"] = min(connect_timeout, options["connect_timeout"])
    config = Config(
        max_pool_connections=max_pool_connections,
        s3={"addressing_style": "path" if path_style else "auto"},
        # A silent endpoint fails after a bounded time (see drtasks.timeouts), not minutes.
        **options,
        # Not every S3-compatible server accepts the newer default checksums.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    session = session_for(location.aws_profile, location.region)
    try:
        client = session.client("s3", endpoint_url=location.endpoint_url or None, config=config)
    except ValueError as error:  # botocore's "Invalid endpoint"
        raise DrtasksError(f"the S3 endpoint for {location.url} ({location.endpoint_url or 'from the AWS configuration'}): {error}") from None
    remember_session_secrets(session)
    resume_collection()  # the heavy imports are behind us once a client exists
    return disable_expect_continue(client)


def _drop_expect_on_empty_body(request: Any, **_: Any) -> None:
    if request.headers.get("Content-Length") in ("0", b"0"):
        request.headers.pop("Expect", None)


def disable_expect_continue(client: Any) -> Any:
    """Send zero-byte PUTs without `Expect: 100-continue`.

    With that header on an empty body, botocore leaves the pooled connection in a state where the
    next request on it waits out the whole read timeout (60 s) and is sent again. The header is not
    signed, so dropping it is safe; larger bodies keep it.
    """
    client.meta.events.register("before-send.s3", _drop_expect_on_empty_body, unique_id="drtasks-no-expect")
    return client


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    etag: str
    last_modified: float = 0.0


def list_objects(client: Any, bucket: str, prefix: str) -> Iterator[ObjectInfo]:
    """Every object under ``prefix`` (a folder: the prefix is followed by '/')."""
    folder = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
    from drtasks.s3lean import for_listing

    lean = for_listing(client)
    if lean is not None:  # thousands of keys: botocore's parsing of each would cost more than the listing
        yield from lean.list_objects(bucket, folder)
        return
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=folder):
        for item in page.get("Contents", []):
            modified = item.get("LastModified")
            yield ObjectInfo(
                item["Key"], int(item["Size"]), item["ETag"].strip('"'), modified.timestamp() if modified else 0.0
            )


def list_folder_files(client: Any, bucket: str, prefix: str) -> Iterator[ObjectInfo]:
    """The objects directly in the folder ``prefix/``, not in its sub-folders (one delimiter listing)."""
    folder = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
    from drtasks.s3lean import for_listing

    lean = for_listing(client)
    if lean is not None:
        yield from lean.list_objects(bucket, folder, "/")
        return
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=folder, Delimiter="/"):
        for item in page.get("Contents", []):
            modified = item.get("LastModified")
            yield ObjectInfo(
                item["Key"], int(item["Size"]), item["ETag"].strip('"'), modified.timestamp() if modified else 0.0
            )


def head(client: Any, bucket: str, key: str) -> ObjectInfo | None:
    """The object's size and ETag, or None when it does not exist."""
    from botocore.exceptions import ClientError

    try:
        answer = client.head_object(Bucket=bucket, Key=key)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return None
        raise
    return ObjectInfo(key, int(answer["ContentLength"]), answer["ETag"].strip('"'), answer["LastModified"].timestamp())


def _is_md5(etag: str) -> bool:
    return len(etag) == 32 and all(c in "0123456789abcdef" for c in etag.lower())


def read_proven(client: Any, bucket: str, key: str, etag: str | None = None, attempts: int = 3) -> bytes:
    """An object's bytes, proven against its ETag, for reads whose bytes drtasks writes or remembers.

    A whole-object ETag is the MD5 of the bytes: a read that breaks off, comes up short or hashes
    to something else is read again, up to ``attempts`` times. The ETag of an object written in
    parts cannot be checked against one read: two reads must then agree. ``etag`` pins the reads to
    the version the caller listed. A missing object raises botocore's ClientError, as get_object does.
    """
    import hashlib

    from botocore.exceptions import BotoCoreError
    from urllib3.exceptions import HTTPError

    pin = {"IfMatch": f'"{etag}"'} if etag else {}
    digests: list[str] = []
    problem = ""
    for _attempt in range(attempts):
        answer = client.get_object(Bucket=bucket, Key=key, **pin)
        try:
            body = answer["Body"].read()
        except (BotoCoreError, HTTPError, ConnectionError, TimeoutError):
            problem = "the read broke off"
            continue
        finally:
            answer["Body"].close()
        expected = answer.get("ContentLength")
        if expected is not None and len(body) != int(expected):
            problem = f"read {len(body)} of {expected} bytes"
            continue
        digest = hashlib.md5(body, usedforsecurity=False).hexdigest()
        tag = str(answer.get("ETag", "")).strip('"')
        if digest == tag or (not _is_md5(tag) and digest in digests):
            return body
        digests.append(digest)
        problem = "the bytes read do not match the source's checksum" if _is_md5(tag) else "two reads did not agree"
    raise DrtasksError(f"s3://{bucket}/{key} at {client.meta.endpoint_url}: {problem} on {attempts} reads")


@contextmanager
def s3_errors(location: S3Location) -> Iterator[None]:
    """Turn botocore's failures into one line that names the bucket and endpoint, never a traceback."""
    from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError, NoCredentialsError

    from botocore.exceptions import ConnectTimeoutError, ReadTimeoutError

    from drtasks import timeouts

    where = f"{location.url} at {location.endpoint_url or 'AWS'}"
    try:
        yield
    except (ReadTimeoutError, ConnectTimeoutError) as error:
        what = "did not answer" if isinstance(error, ReadTimeoutError) else "did not accept a connection"
        raise DrtasksError(
            f"the S3 endpoint for {where} {what} within {timeouts.seconds():g} s ({timeouts.ATTEMPTS} tries;"
            f" {timeouts.TIMEOUT_ENV} sets the wait)"
        ) from None
    except EndpointConnectionError:
        raise DrtasksError(f"cannot reach the S3 endpoint for {where}: is the server running?") from None
    except NoCredentialsError:
        raise DrtasksError(f"no AWS credentials for {where}: set an AWS profile for it") from None
    except ClientError as error:
        info = error.response.get("Error", {})
        code = info.get("Code", "error")
        message = info.get("Message") or code
        raise DrtasksError(f"S3 refused {error.operation_name} on {where}: {code}: {message}") from None
    except BotoCoreError as error:
        raise DrtasksError(f"S3 failure on {where}: {error}") from None
