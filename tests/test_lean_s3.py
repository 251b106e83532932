"""The lean S3 path (drtasks.s3lean): small objects, copies and listings without botocore's per-call work.

Specification (issue "scale"): a real S3 server accepts its SigV4 signatures for any key; it keeps
every proof the executor relies on (If-Match on the source read, Content-MD5 on the write, the
source-ETag metadata, the copy's If-Match); failures are one line naming the side and the S3 code,
never the secret; server errors and broken connections are tried again (3 attempts in all) and a
body cut short comes back short, for the executor to read again. Checked against SeaweedFS, with
faults injected by a proxy in front of it.
"""

from __future__ import annotations

import base64
import hashlib
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Iterator

import pytest

from drtasks import s3
from drtasks.errors import DrtasksError
from drtasks.manifest import ManifestItem, SourceObject
from drtasks.plan import plan_upload
from drtasks.s3lean import ENV_SWITCH, LeanS3, PreconditionFailed, for_listing, listing_page
from drtasks.transfer import TransferConfig, apply
from tests.fault_proxy import FaultProxy, Rule, op

ODD_KEY = "metrics/evaluation/a b+c=d&e\u00e9~(1)*'!.json"


def md5_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


@pytest.fixture
def proxy(s3_server: Any) -> Iterator[FaultProxy]:
    proxy = FaultProxy(s3_server.endpoint_url, seed=3).start()
    yield proxy
    proxy.stop()


def lean_through(proxy: FaultProxy, s3_server: Any, bucket: str, prefix: str = "p") -> LeanS3:
    location = s3.S3Location(bucket, prefix, proxy.endpoint_url, s3_server.aws_profile)
    lean = LeanS3.for_client(s3.make_client(location), location)
    assert lean is not None
    lean.backoff = 0.01  # keep the retries quick
    return lean


def test_objects_with_any_key_round_trip_with_their_proofs(s3_server: Any, bucket: str) -> None:
    client = s3_server.client()
    lean = LeanS3.for_client(client, s3_server.location(bucket, "p"))
    assert lean is not None
    data = b"{\"episode\": 1}\n" * 100
    etag = lean.put_object(bucket, f"p/{ODD_KEY}", data, md5_b64(data), {"drtasks-source-etag": "abc123"})
    assert etag == hashlib.md5(data).hexdigest()
    assert lean.get_object(bucket, f"p/{ODD_KEY}", etag, len(data) + 1) == data
    head = client.head_object(Bucket=bucket, Key=f"p/{ODD_KEY}")
    assert head["Metadata"] == {"drtasks-source-etag": "abc123"}

    copied = lean.copy_object(bucket, f"q/{ODD_KEY}", bucket, f"p/{ODD_KEY}", etag, {"drtasks-source-etag": etag})
    assert copied == etag
    assert client.head_object(Bucket=bucket, Key=f"q/{ODD_KEY}")["Metadata"] == {"drtasks-source-etag": etag}


def test_a_listing_equals_botocores_across_pages(s3_server: Any, bucket: str) -> None:
    client = s3_server.client()
    lean = LeanS3.for_client(client, s3_server.location(bucket, "m"))
    assert lean is not None
    keys = [f"m/metrics/evaluation-{n:05d}.json" for n in range(1003)] + [f"m/{ODD_KEY}", "m/top.json", "other/x.json"]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda key: lean.put_object(bucket, key, key.encode(), md5_b64(key.encode()), {}), keys))
    expected = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="m/"):
        expected.update({o["Key"]: (o["Size"], o["ETag"].strip('"'), o["LastModified"].timestamp()) for o in page["Contents"]})
    found = {o.key: (o.size, o.etag, o.last_modified) for o in lean.list_objects(bucket, "m/")}
    assert found == expected and len(found) == 1005
    assert {o.key for o in lean.list_objects(bucket, "m/", "/")} == {"m/top.json"}  # the folder's own files only
    # drtasks.s3's listings take this path for clients of an explicit endpoint
    assert for_listing(client) is not None
    assert {o.key for o in s3.list_objects(client, bucket, "m")} == set(expected)


def test_a_listing_page_that_is_not_well_formed_is_asked_for_again_and_never_half_read(s3_server: Any, bucket: str, proxy: FaultProxy) -> None:
    # Found by the fault campaign: a corrupt listing answer was a traceback (KeyError) on this path.
    lean = lean_through(proxy, s3_server, bucket)
    keys = [f"p/metrics/evaluation-{n}.json" for n in range(5)]
    for key in keys:
        lean.put_object(bucket, key, key.encode(), md5_b64(key.encode()), {})
    broken_xml = Rule("corrupt", op("ListObjects"), times=1, offset=0)  # "<?xml" no longer opens the answer
    proxy.add(broken_xml)
    assert sorted(o.key for o in lean.list_objects(bucket, "p/")) == keys
    assert broken_xml.hits == 1 and proxy.count("ListObjects") == 2

    proxy.add(Rule("corrupt", op("ListObjects"), offset=0))
    with pytest.raises(DrtasksError) as failed:
        list(lean.list_objects(bucket, "p/"))
    assert failed.value.message == (
        f"S3 failure on s3://{bucket}/p at {proxy.endpoint_url}: the listing is not a well-formed ListObjectsV2 answer (3 tries)"
    )


@pytest.mark.parametrize(
    "page",
    [
        b"<ListBucketResult><Contents><Size>3</Size><ETag>x</ETag></Contents></ListBucketResult>",  # no key
        b"<ListBucketResult><Contents><Key>a</Key><Size>three</Size><ETag>x</ETag></Contents></ListBucketResult>",
        b"<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>",  # more pages, but no token
        b"<Error><Code>InternalError</Code></Error>",
        b"<ListBucketResult><Contents><Key>a</Key>",
    ],
)
def test_a_page_missing_what_a_plan_needs_is_no_page(page: bytes) -> None:
    assert listing_page(page) is None


def test_a_well_formed_page_gives_its_objects_and_the_next_token() -> None:
    page = (
        b'<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
        b"<IsTruncated>true</IsTruncated><Contents><Key>a &amp; b.json</Key><LastModified>2026-11-25T01:02:03.000Z</LastModified>"
        b'<ETag>"0123"</ETag><Size>7</Size></Contents><NextContinuationToken>t+1</NextContinuationToken></ListBucketResult>'
    )
    [found], token = listing_page(page)  # type: ignore[misc]
    assert (found.key, found.size, found.etag, token) == ("a & b.json", 7, "0123", "t+1")
    assert found.last_modified == 1795568523.0


def test_a_missing_object_and_a_changed_one_are_refused_naming_the_side(s3_server: Any, bucket: str) -> None:
    lean = LeanS3.for_client(s3_server.client(), s3_server.location(bucket, "p"))
    assert lean is not None
    with pytest.raises(DrtasksError) as missing:
        lean.get_object(bucket, "p/none.json", "0" * 32, 10)
    assert missing.value.message.startswith(f"S3 refused GetObject on s3://{bucket}/p at {s3_server.endpoint_url}: NoSuchKey")
    etag = lean.put_object(bucket, "p/a.json", b"one", md5_b64(b"one"), {})
    with pytest.raises(PreconditionFailed) as changed:
        lean.get_object(bucket, "p/a.json", hashlib.md5(b"two").hexdigest(), 10)
    assert "PreconditionFailed" in changed.value.message
    with pytest.raises(DrtasksError) as copy_changed:
        lean.copy_object(bucket, "p/b.json", bucket, "p/a.json", hashlib.md5(b"two").hexdigest(), {})
    assert "CopyObject" in copy_changed.value.message and "PreconditionFailed" in copy_changed.value.message
    assert lean.get_object(bucket, "p/a.json", etag, 10) == b"one"


def test_bytes_that_differ_from_their_content_md5_are_refused(s3_server: Any, bucket: str) -> None:
    lean = LeanS3.for_client(s3_server.client(), s3_server.location(bucket, "p"))
    assert lean is not None
    with pytest.raises(DrtasksError) as refused:
        lean.put_object(bucket, "p/a.json", b"what was hashed, changed", md5_b64(b"what was hashed"), {})
    assert refused.value.message.startswith(f"S3 refused PutObject on s3://{bucket}/p")
    assert "p/a.json" not in {o.key for o in lean.list_objects(bucket, "p/")}


def test_wrong_credentials_are_refused_without_showing_the_secret(s3_server: Any, bucket: str) -> None:
    location = s3_server.location(bucket, "p")
    lean = LeanS3(location, lambda: (s3_server.access_key, "not-the-secret-key", None), "us-east-1")
    with pytest.raises(DrtasksError) as refused:
        lean.put_object(bucket, "p/a.json", b"x", md5_b64(b"x"), {})
    assert refused.value.message.startswith(f"S3 refused PutObject on s3://{bucket}/p at {s3_server.endpoint_url}: ")
    assert "SignatureDoesNotMatch" in refused.value.message or "AccessDenied" in refused.value.message
    assert "not-the-secret-key" not in refused.value.message


@pytest.mark.parametrize("fault", ["error", "reset"])
def test_a_passing_server_error_or_reset_is_tried_again(s3_server: Any, bucket: str, proxy: FaultProxy, fault: str) -> None:
    lean = lean_through(proxy, s3_server, bucket)
    proxy.add(Rule(fault, op("PutObject"), times=1))
    proxy.add(Rule(fault, op("GetObject"), times=1))
    etag = lean.put_object(bucket, "p/a.json", b"data", md5_b64(b"data"), {})
    assert lean.get_object(bucket, "p/a.json", etag, 10) == b"data"
    assert proxy.count("PutObject") == 2 and proxy.count("GetObject") == 2


@pytest.mark.parametrize(
    ("fault", "expected"),
    [("error", "S3 refused PutObject on s3://{bucket}/p at {url}: InternalError: injected fault"), ("reset", "S3 failure on s3://{bucket}/p at {url}: the connection broke")],
)
def test_a_lasting_server_error_or_reset_fails_after_three_attempts(s3_server: Any, bucket: str, proxy: FaultProxy, fault: str, expected: str) -> None:
    lean = lean_through(proxy, s3_server, bucket)
    proxy.add(Rule(fault, op("PutObject")))
    with pytest.raises(DrtasksError) as failed:
        lean.put_object(bucket, "p/a.json", b"data", md5_b64(b"data"), {})
    assert failed.value.message.startswith(expected.format(bucket=bucket, url=proxy.endpoint_url))
    assert proxy.count("PutObject") == 3


def test_a_body_cut_short_comes_back_short_and_the_next_request_still_works(s3_server: Any, bucket: str, proxy: FaultProxy) -> None:
    lean = lean_through(proxy, s3_server, bucket)
    data = bytes(range(256)) * 64
    etag = lean.put_object(bucket, "p/a.bin", data, md5_b64(data), {})
    proxy.add(Rule("truncate", op("GetObject"), times=1))
    assert len(lean.get_object(bucket, "p/a.bin", etag, len(data) + 1)) < len(data)
    assert lean.get_object(bucket, "p/a.bin", etag, len(data) + 1) == data


def test_an_endpoint_nobody_answers_is_named(s3_server: Any, bucket: str) -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    location = s3.S3Location(bucket, "p", f"http://127.0.0.1:{port}", s3_server.aws_profile)
    lean = LeanS3(location, lambda: ("a", "b", None), "us-east-1", backoff=0.01)
    with pytest.raises(DrtasksError) as failed:
        lean.get_object(bucket, "p/a", "0" * 32, 1)
    assert failed.value.message == f"cannot reach the S3 endpoint for s3://{bucket}/p at http://127.0.0.1:{port}: is the server running?"


def test_aws_proxied_or_switched_off_endpoints_stay_with_botocore(s3_server: Any, bucket: str, monkeypatch: pytest.MonkeyPatch) -> None:
    client = s3_server.client()
    aws = s3.S3Location(bucket, "p", None, s3_server.aws_profile)
    assert LeanS3.for_client(client, aws) is None
    assert LeanS3.for_client(client, s3.S3Location(bucket, "p", "https://s3.eu-west-1.amazonaws.com")) is None
    assert LeanS3.for_client(client, s3_server.location(bucket, "p")) is not None
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.invalid:3128")
    monkeypatch.setenv("NO_PROXY", "")
    assert LeanS3.for_client(client, s3_server.location(bucket, "p")) is None
    monkeypatch.delenv("HTTP_PROXY")
    monkeypatch.setenv(ENV_SWITCH, "0")
    assert LeanS3.for_client(client, s3_server.location(bucket, "p")) is None


@pytest.mark.parametrize("lean", [True, False])
def test_a_source_changed_after_planning_stops_its_copy_with_or_without_the_lean_path(s3_server: Any, s3_server_b: Any, bucket: str, bucket_b: str, lean: bool) -> None:
    source_client, target_client = s3_server.client(), s3_server_b.client()
    source_client.put_object(Bucket=bucket, Key="m/a.json", Body=b"planned")
    planned = source_client.head_object(Bucket=bucket, Key="m/a.json")
    source_client.put_object(Bucket=bucket, Key="m/a.json", Body=b"changed")
    item = ManifestItem("a.json", SourceObject(bucket, "m/a.json", len(b"planned"), planned["ETag"].strip('"')))
    plan = plan_upload([item], s3_server.location(bucket, "m"), s3_server_b.location(bucket_b, "t"), target_client)
    with pytest.raises(DrtasksError) as stopped:
        apply(plan, source_client, target_client, TransferConfig(lean=lean))
    assert stopped.value.message == f"s3://{bucket}/m/a.json changed since the plan was made; run the command again"
    assert not list(s3.list_objects(target_client, bucket_b, "t"))


@pytest.mark.parametrize("lean", [True, False])
def test_streamed_and_copied_small_objects_carry_the_same_proof_either_way(s3_server: Any, s3_server_b: Any, bucket: str, bucket_b: str, lean: bool) -> None:
    source_client, target_client = s3_server.client(), s3_server_b.client()
    bodies = {f"metrics/e-{n}.json": f"{{\"n\": {n}}}".encode() for n in range(30)} | {ODD_KEY: b"odd"}
    for key, body in bodies.items():
        source_client.put_object(Bucket=bucket, Key=f"m/{key}", Body=body)
    items = [ManifestItem(o.key[2:], SourceObject(bucket, o.key, o.size, o.etag)) for o in s3.list_objects(source_client, bucket, "m")]
    items.append(ManifestItem("training_params.yaml", content=b"x: 1\n"))
    for target_client_, target in ((target_client, s3_server_b.location(bucket_b, "t")), (source_client, s3_server.location(bucket, "t"))):
        plan = plan_upload(items, s3_server.location(bucket, "m"), target, target_client_)
        checks = apply(plan, source_client, target_client_, TransferConfig(lean=lean))
        assert all(check.ok for check in checks) and len(checks) == len(items)
        for key, body in bodies.items():
            answer = target_client_.get_object(Bucket=target.bucket, Key=f"t/{key}")
            assert answer["Body"].read() == body
            assert answer["Metadata"] == {"drtasks-source-etag": hashlib.md5(body).hexdigest()}
