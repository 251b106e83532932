"""inv backup, inv restore and dr-download-model on real S3 servers (and folders of this machine).

Specification (issue 12, points 3 and 4):
- a backup holds the WHOLE model: every kept checkpoint, model/checkpoint, .coach_checkpoint,
  deepracer_checkpoints.json, every model_N.pb, the metadata, ip/, metrics/ of every worker and
  metrics/evaluation/, training_params*.yaml, the root reward function, plus the custom files it
  used under custom_files/; simtraces and videos only when asked;
- drtasks-backup.json lists every object with its size, SHA-256 and MD5, and is written last: a
  backup without it is unfinished, and restore refuses it;
- incremental: a second run copies nothing; a changed object is copied (and hashed) again;
- restore checks every object against the manifest before writing anything, refuses a tampered
  backup, refuses an existing model unless -w, and leaves a model DRfC can train on and drtasks
  can ship;
- dr-download-model takes DRfC's switches -s -t -f -w -d -c.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Iterator

import pytest

from drtasks.model import SourceModel
from drtasks.sample_model import seed_model
from tests.cli import drtasks, run
from tests.drfc import UPLOAD_PREFIX, write_env_files
from tests.fault_proxy import FaultProxy, Rule, op

PREFIX = "rl-deepracer-sagemaker"
MANIFEST = "drtasks-backup.json"
MODEL_MARKERS = ("model/deepracer_checkpoints.json", "model/.coach_checkpoint", "model/checkpoint")
MiB = 1024 * 1024


def objects(client: Any, bucket: str, prefix: str) -> dict[str, bytes]:
    """Relative key -> content of everything under ``prefix/``."""
    found: dict[str, bytes] = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{prefix}/"):
        for item in page.get("Contents", []):
            found[item["Key"][len(prefix) + 1 :]] = client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
    return found


def files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def model_objects(client: Any, model: Any, simtraces: bool = False) -> dict[str, bytes]:
    """What a backup must hold of the model itself (the simtraces only when asked)."""
    found = objects(client, model.bucket, model.prefix)
    return {k: v for k, v in found.items() if simtraces or not k.startswith("training-simtrace/")}


def custom_files(client: Any, bucket: str) -> dict[str, bytes]:
    return {f"custom_files/{key}": body for key, body in objects(client, bucket, "custom_files").items()}


def plan_of(result: Any, step: str = "backup") -> dict[str, Any]:
    assert result.code == 0, result.err
    chain = json.loads(result.out)
    assert chain["chain"] == [step]
    return chain["steps"][0]


def actions(plan: dict[str, Any], folder: str) -> dict[str, str]:
    """Key relative to the backup (or restore) folder -> planned action."""
    return {item["key"][len(folder) + 1 :]: item["action"] for item in plan["items"]}


@pytest.fixture
def dr_dir(tmp_path: Path, s3_server: Any, model: Any, upload_bucket: str) -> Path:
    (tmp_path / "dr").mkdir()
    return write_env_files(tmp_path / "dr", s3_server, model, upload_bucket)


@pytest.fixture
def vault(s3_server: Any) -> str:
    """A backup bucket on the training bucket's server."""
    return s3_server.new_bucket()


# -- backup to S3 --------------------------------------------------------------------------------------


def test_a_backup_holds_the_whole_model_and_its_custom_files_with_a_manifest_written_last(dr_dir: Path, s3_server: Any, model: Any, vault: str) -> None:
    client = s3_server.client()
    folder = f"backups/{PREFIX}"

    plan = plan_of(drtasks("backup", "--to", f"s3://{vault}/backups", "-d", "--json", dr_dir=dr_dir))

    expected = {**model_objects(client, model), **custom_files(client, model.bucket)}
    assert plan["backup"] == f"s3://{vault}/{folder}" and plan["transfer"] == "server-side copy"
    assert actions(plan, folder) == {**{key: "add" for key in expected}, MANIFEST: "add"}
    assert plan["summary"]["bytes_copied_server_side"] == sum(len(v) for v in expected.values()) and plan["summary"]["bytes_to_move"] > 0
    assert sorted(plan["to_hash"]) == sorted(expected) and plan["left_out"] == ["training-simtrace/"]
    assert plan["checkpoints"] == [model.checkpoints[n].name for n in (10, 13, 16, 19)]
    assert objects(client, vault, folder) == {}  # a dry run writes nothing

    result = drtasks("backup", "--to", f"s3://{vault}/backups", "-f", dr_dir=dr_dir)

    assert result.code == 0, result.err
    stored = objects(client, vault, folder)
    assert {k: v for k, v in stored.items() if k != MANIFEST} == expected
    manifest = json.loads(stored[MANIFEST])
    assert manifest["format"] == "drtasks-backup/1"
    assert manifest["source"] == {"bucket": model.bucket, "prefix": PREFIX, "endpoint_url": s3_server.endpoint_url}
    assert {o["key"]: (o["size"], o["sha256"], o["md5"]) for o in manifest["objects"]} == {
        key: (len(body), sha(body), hashlib.md5(body).hexdigest()) for key, body in expected.items()
    }
    assert [c["number"] for c in manifest["checkpoints"]] == [10, 13, 16, 19]
    assert (manifest["best"], manifest["last"]) == (model.best_checkpoint.name, model.last_checkpoint.name)
    assert manifest["config"] == {"reward_function": "custom_files/reward_function.py", "model_metadata": "model/model_metadata.json", "hyperparameters": "ip/hyperparameters.json"}
    assert manifest["totals"] == {"objects": len(expected), "bytes": sum(len(v) for v in expected.values())}
    assert f"backed up s3://{model.bucket}/{PREFIX} to s3://{vault}/{folder}" in result.out



def test_simtraces_and_videos_are_left_out_unless_asked_for(dr_dir: Path, s3_server: Any, model: Any, vault: str) -> None:
    client = s3_server.client()
    client.put_object(Bucket=model.bucket, Key=f"{PREFIX}/camera-pip/0-video.mp4", Body=b"\x00" * 1000)
    client.put_object(Bucket=model.bucket, Key=f"{PREFIX}/evaluation-simtrace/0-iteration.csv", Body=b"episode,steps\n")
    folder = f"backups/{PREFIX}"
    listed: list[str] = []

    plain = plan_of(drtasks("backup", "--to", f"s3://{vault}/backups", "-d", "--json", dr_dir=dr_dir))
    both = plan_of(drtasks("backup", "--to", f"s3://{vault}/backups", "-d", "--json", "--with-simtraces", "--with-videos", dr_dir=dr_dir))

    keys = set(actions(plain, folder))
    assert not any(k.startswith(("training-simtrace/", "evaluation-simtrace/", "camera-pip/")) for k in keys) and listed == []
    assert plain["left_out"] == ["camera-pip/", "evaluation-simtrace/", "training-simtrace/"]
    assert "left out: training-simtrace/ (--with-simtraces to include it)" in plain["notes"]
    assert "left out: camera-pip/ (--with-videos to include it)" in plain["notes"]
    with_all = set(actions(both, folder))
    assert with_all - keys == {"camera-pip/0-video.mp4", "evaluation-simtrace/0-iteration.csv", *(f"training-simtrace/{i}-iteration.csv" for i in range(3))}
    assert both["left_out"] == []


@pytest.fixture
def proxies(s3_server: Any, s3_server_b: Any) -> Iterator[tuple[FaultProxy, FaultProxy]]:
    """Fault proxies in front of the training bucket's server and of the second server."""
    source = FaultProxy(s3_server.endpoint_url, seed=3).start()
    target = FaultProxy(s3_server_b.endpoint_url, seed=5).start()
    yield source, target
    source.stop()
    target.stop()


def write_profile(dr_dir: Path, name: str, text: str) -> None:
    (dr_dir / "profiles").mkdir(exist_ok=True)
    (dr_dir / "profiles" / f"{name}.yaml").write_text(text)


@pytest.fixture
def offsite(dr_dir: Path, s3_server: Any, s3_server_b: Any, bucket_b: str, proxies: tuple[FaultProxy, FaultProxy]) -> Path:
    """The profile `offsite`: the training bucket read through one proxy, backups kept on the second
    server (as local MinIO -> AWS), written through another."""
    source, target = proxies
    write_profile(
        dr_dir,
        "offsite",
        f"source:\n  endpoint_url: {source.endpoint_url}\n"
        f"backup:\n  to: s3://{bucket_b}/vault\n  endpoint_url: {target.endpoint_url}\n  aws_profile: {s3_server_b.aws_profile}\n",
    )
    return dr_dir


def written_keys(proxy: FaultProxy) -> list[str]:
    """Keys written through ``proxy`` (PUTs, copies and parts), in order, lease left out."""
    return [r.path for r in proxy.requests if r.operation in ("PutObject", "UploadPart", "CompleteMultipartUpload") and not r.path.endswith(".drtasks-lease.json")]


def test_a_backup_across_servers_is_streamed_then_a_rerun_copies_nothing_and_a_changed_checkpoint_is_copied_again(
    offsite: Path, s3_server: Any, s3_server_b: Any, model: Any, bucket_b: str, proxies: tuple[FaultProxy, FaultProxy]
) -> None:
    source_proxy, target_proxy = proxies
    client, backup_client = s3_server.client(), s3_server_b.client()
    folder = f"vault/{PREFIX}"
    expected = {**model_objects(client, model), **custom_files(client, model.bucket)}

    first = drtasks("backup", "-p", "offsite", "-f", dr_dir=offsite)

    assert first.code == 0, first.err
    assert "(streamed between endpoints)" in first.out
    stored = objects(backup_client, bucket_b, folder)
    assert {k: v for k, v in stored.items() if k != MANIFEST} == expected
    assert {o["key"]: o["sha256"] for o in json.loads(stored[MANIFEST])["objects"]} == {k: sha(v) for k, v in expected.items()}
    assert written_keys(target_proxy)[-1].endswith(f"/{folder}/{MANIFEST}")  # the manifest is the last write

    # Unchanged: the plan says so, and nothing moves.
    source_proxy.clear()
    target_proxy.clear()
    again = plan_of(drtasks("backup", "-p", "offsite", "-d", "--json", dr_dir=offsite))
    assert set(actions(again, folder).values()) == {"unchanged"} and again["to_hash"] == []
    assert again["summary"]["bytes_to_move"] == again["summary"]["bytes_copied_server_side"] == 0
    rerun = drtasks("backup", "-p", "offsite", "-f", dr_dir=offsite)
    assert rerun.code == 0, rerun.err
    assert "Nothing to do" in rerun.out
    assert written_keys(target_proxy) == []
    data_reads = [r.path for r in source_proxy.requests if r.operation == "GetObject"]
    assert all(path.endswith("/model/deepracer_checkpoints.json") for path in data_reads)  # only the index, to name best and last

    # A checkpoint rewritten in the training bucket is copied (and hashed) again; nothing else is.
    changed = f"model/{model.last_checkpoint.name}.data-00000-of-00001"
    new_bytes = os.urandom(len(expected[changed]))
    client.put_object(Bucket=model.bucket, Key=f"{PREFIX}/{changed}", Body=new_bytes)
    source_proxy.clear()
    target_proxy.clear()
    plan = plan_of(drtasks("backup", "-p", "offsite", "-d", "--json", dr_dir=offsite))
    planned = {k: v for k, v in actions(plan, folder).items() if v != "unchanged"}
    assert planned == {changed: "replace", **{m: "replace" for m in MODEL_MARKERS}, MANIFEST: "replace"}
    assert {item["key"].rsplit("/", 2)[-2] + "/" + item["key"].rsplit("/", 1)[-1] for item in plan["items"] if item.get("removed_first")} >= set(MODEL_MARKERS)
    assert plan["to_hash"] == [changed]

    result = drtasks("backup", "-p", "offsite", "-f", dr_dir=offsite)

    assert result.code == 0, result.err
    data_writes = [p for p in written_keys(target_proxy) if not p.endswith((MANIFEST, *MODEL_MARKERS))]
    assert data_writes == [f"/{bucket_b}/{folder}/{changed}"]
    assert source_proxy.count("GetObject", rf"/{changed}$") == 2  # hashed once, streamed once
    stored = objects(backup_client, bucket_b, folder)
    assert stored[changed] == new_bytes
    entry = next(o for o in json.loads(stored[MANIFEST])["objects"] if o["key"] == changed)
    assert (entry["sha256"], entry["size"]) == (sha(new_bytes), len(new_bytes))


def test_objects_written_in_parts_are_backed_up_and_restored_across_servers(
    dr_dir: Path, s3_server: Any, s3_server_b: Any, bucket: str, bucket_b: str
) -> None:
    """Checkpoints uploaded in parts (as the trainer's boto3 does above 8 MiB) keep their part
    layout in the backup, so its ETags prove them against the manifest without reading them again."""
    client = s3_server.client()
    big = seed_model(client, bucket, "big-run", checkpoints=(1, 2), data_size=12 * MiB, multipart_threshold=5 * MiB, simtrace_iterations=0)
    etags = {k: client.head_object(Bucket=bucket, Key=f"big-run/{k}")["ETag"].strip('"') for k in ("model/" + big.last_checkpoint.name + ".data-00000-of-00001",)}
    assert all("-" in etag for etag in etags.values())
    write_profile(
        dr_dir,
        "big",
        f"source:\n  bucket: {bucket}\n  prefix: big-run\n"
        f"backup:\n  to: s3://{bucket_b}/vault\n  endpoint_url: {s3_server_b.endpoint_url}\n  aws_profile: {s3_server_b.aws_profile}\n",
    )

    assert drtasks("backup", "-p", "big", "-f", dr_dir=dr_dir).code == 0
    backup_client = s3_server_b.client()
    for key, etag in etags.items():
        assert backup_client.head_object(Bucket=bucket_b, Key=f"vault/big-run/{key}")["ETag"].strip('"') == etag

    plan = plan_of(drtasks("restore", "-p", "big", "--from", f"s3://{bucket_b}/vault/big-run", "--prefix", "big-run-restored", "-d", "--json", dr_dir=dr_dir), "restore")
    reasons = {item["key"].split("/", 1)[1]: item["reason"] for item in plan["items"]}
    assert all("the recorded source version's ETag" in reasons[key] for key in etags)
    assert plan["transfer"] == "stream"
    result = drtasks("restore", "-p", "big", "--from", f"s3://{bucket_b}/vault/big-run", "--prefix", "big-run-restored", "-f", dr_dir=dr_dir)
    assert result.code == 0, result.err
    original = {k: v for k, v in objects(client, bucket, "big-run").items()}
    assert objects(client, bucket, "big-run-restored") == original


# -- backup to a folder ----------------------------------------------------------------------------------


def test_a_backup_to_a_folder_is_proven_and_incremental_by_recorded_size_and_time(dr_dir: Path, tmp_path: Path, s3_server: Any, model: Any) -> None:
    client = s3_server.client()
    root = tmp_path / "shelf"
    folder = root / PREFIX
    expected = {**model_objects(client, model), **custom_files(client, model.bucket)}

    result = drtasks("backup", "--to", str(root), "-f", dr_dir=dr_dir)

    assert result.code == 0, result.err
    stored = files(folder)
    assert {k: v for k, v in stored.items() if k != MANIFEST} == expected and not list(folder.rglob("*.part"))
    manifest = json.loads(stored[MANIFEST])
    recorded = {o["key"]: o for o in manifest["objects"]}
    assert {k: (o["sha256"], o["size"]) for k, o in recorded.items()} == {k: (sha(v), len(v)) for k, v in expected.items()}
    assert all(o["mtime_ns"] == (folder / k).stat().st_mtime_ns for k, o in recorded.items())

    unchanged = plan_of(drtasks("backup", "--to", str(root), "-d", "--json", dr_dir=dr_dir))
    assert set(actions(unchanged, str(folder)).values()) == {"unchanged"}
    assert {item["reason"] for item in unchanged["items"] if not item["key"].endswith(MANIFEST)} == {"same size and time as recorded for this source version"}
    assert "Nothing to do" in drtasks("backup", "--to", str(root), "-f", dr_dir=dr_dir).out

    # A file whose time changed is hashed again and kept; one whose bytes changed is fetched again.
    touched, damaged = "ip/hyperparameters.json", f"model/model_{model.best}.pb"
    os.utime(folder / touched, ns=(1, 1))
    (folder / damaged).write_bytes(bytes(len(expected[damaged])))
    plan = plan_of(drtasks("backup", "--to", str(root), "-d", "--json", dr_dir=dr_dir))
    by_key = {item["key"][len(str(folder)) + 1 :]: item for item in plan["items"]}
    assert (by_key[touched]["action"], by_key[touched]["reason"]) == ("unchanged", "same bytes as the source (hashed now)")
    assert (by_key[damaged]["action"], by_key[damaged]["reason"]) == ("replace", "checksum differs")
    assert by_key[MANIFEST]["action"] == "replace" and by_key[MANIFEST]["removed_first"]

    assert drtasks("backup", "--to", str(root), "-f", dr_dir=dr_dir).code == 0
    assert (folder / damaged).read_bytes() == expected[damaged]
    recorded = {o["key"]: o for o in json.loads((folder / MANIFEST).read_bytes())["objects"]}
    assert recorded[touched]["mtime_ns"] == 1 and recorded[damaged]["sha256"] == sha(expected[damaged])


def test_an_interrupted_folder_backup_leaves_no_manifest(dr_dir: Path, tmp_path: Path, s3_server: Any, model: Any, proxies: tuple[FaultProxy, FaultProxy]) -> None:
    source_proxy, _ = proxies
    write_profile(dr_dir, "proxied", f"source:\n  endpoint_url: {source_proxy.endpoint_url}\n")
    root = tmp_path / "shelf"
    pb = f"model/model_{model.best}.pb"
    source_proxy.add(Rule("corrupt", op("GetObject", rf"/{pb}$")))

    failed = drtasks("backup", "-p", "proxied", "--to", str(root), "-f", dr_dir=dr_dir)

    assert failed.code != 0 and "Traceback" not in failed.text
    assert "do not match the object's checksum on 3 reads" in failed.err
    folder = root / PREFIX
    assert not (folder / MANIFEST).exists() and not (folder / pb).exists() and not list(folder.rglob("*.part"))
    assert not any((folder / marker).exists() for marker in MODEL_MARKERS)
    refused = drtasks("restore", "--from", str(folder), "--prefix", "from-partial", "-f", dr_dir=dr_dir)
    assert refused.code != 0 and "holds no drtasks-backup.json: it is not a complete drtasks backup" in refused.err

    source_proxy.clear()
    assert drtasks("backup", "-p", "proxied", "--to", str(root), "-f", dr_dir=dr_dir).code == 0
    assert (folder / MANIFEST).exists() and (folder / pb).read_bytes() == s3_server.client().get_object(Bucket=model.bucket, Key=f"{PREFIX}/{pb}")["Body"].read()
