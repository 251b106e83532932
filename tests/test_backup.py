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
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from drtasks.model import SourceModel
from drtasks.sample_model import seed_model
from tests.cli import drtasks, run
from tests.drfc import UPLOAD_PREFIX, write_env_files
from tests.fault_proxy import FaultProxy, Rule, op
from tests.test_upload import objects, sha

PREFIX = "rl-deepracer-sagemaker"
MANIFEST = "drtasks-backup.json"
MODEL_MARKERS = ("model/deepracer_checkpoints.json", "model/.coach_checkpoint", "model/checkpoint")
MiB = 1024 * 1024


def files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


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


def test_a_lease_left_by_a_killed_backup_is_removed_by_the_next_one_even_with_nothing_to_copy(dr_dir: Path, s3_server: Any, vault: str) -> None:
    client = s3_server.client()
    assert drtasks("backup", "--to", f"s3://{vault}/backups", "-f", dr_dir=dr_dir).code == 0
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    killed = {"run_id": "f00dfeed" * 4, "host": socket.gethostname(), "pid": int(gone.stdout), "command": "backup", "started": time.time() - 5, "expires": time.time() + 600}
    lease_key = f"backups/{PREFIX}/.drtasks-lease.json"
    client.put_object(Bucket=vault, Key=lease_key, Body=json.dumps(killed).encode())

    plan = plan_of(drtasks("backup", "--to", f"s3://{vault}/backups", "-d", "--json", dr_dir=dr_dir))
    assert plan["stale_lease"].startswith("run f00dfeed") and plan["summary"]["add"] == plan["summary"]["replace"] == 0
    result = drtasks("backup", "--to", f"s3://{vault}/backups", "-f", dr_dir=dr_dir)

    assert result.code == 0, result.err
    assert "Contents" not in client.list_objects_v2(Bucket=vault, Prefix=lease_key)


def test_a_multi_worker_model_keeps_every_workers_files_its_evaluations_and_its_own_reward_function(dr_dir: Path, tmp_path: Path, s3_server: Any) -> None:
    client = s3_server.client()
    bucket = s3_server.new_bucket()
    seed_model(client, bucket, "fleet", checkpoints=(5, 6), workers=3, reward_at_root=True, simtrace_iterations=1, markers=(".ready",))
    client.put_object(Bucket=bucket, Key="fleet/metrics/evaluation/evaluation-1700000600.json", Body=b'{"metrics": []}')
    write_profile(dr_dir, "fleet", f"source:\n  bucket: {bucket}\n  prefix: fleet\n")

    result = drtasks("backup", "-p", "fleet", "--to", str(tmp_path / "shelf"), "-f", dr_dir=dr_dir)

    assert result.code == 0, result.err
    manifest = json.loads((tmp_path / "shelf" / "fleet" / MANIFEST).read_bytes())
    keys = {o["key"] for o in manifest["objects"]}
    assert {"metrics/TrainingMetrics.json", "metrics/TrainingMetrics_1.json", "metrics/TrainingMetrics_2.json"} <= keys
    assert {"training_params_1.yaml", "training_params_2.yaml", "training_params_3.yaml", "metrics/evaluation/evaluation-1700000600.json"} <= keys
    assert {"reward_function.py", "model/.ready", "model/checkpoint", "model/model_5.pb", "model/model_6.pb", "ip/done"} <= keys
    assert manifest["config"]["reward_function"] == "reward_function.py"  # the model root's, which the simapp prefers
    assert keys == set(objects(client, bucket, "fleet")) - {"training-simtrace/0-iteration.csv"} | {k for k in keys if k.startswith("custom_files/")}


def test_simtraces_and_videos_are_left_out_unless_asked_for(dr_dir: Path, s3_server: Any, model: Any, vault: str) -> None:
    client = s3_server.client()
    client.put_object(Bucket=model.bucket, Key=f"{PREFIX}/camera-pip/0-video.mp4", Body=b"\x00" * 1000)
    client.put_object(Bucket=model.bucket, Key=f"{PREFIX}/evaluation-simtrace/0-iteration.csv", Body=b"episode,steps\n")
    folder = f"backups/{PREFIX}"

    plain = plan_of(drtasks("backup", "--to", f"s3://{vault}/backups", "-d", "--json", dr_dir=dr_dir))
    both = plan_of(drtasks("backup", "--to", f"s3://{vault}/backups", "-d", "--json", "--with-simtraces", "--with-videos", dr_dir=dr_dir))

    keys = set(actions(plain, folder))
    assert not any(k.startswith(("training-simtrace/", "evaluation-simtrace/", "camera-pip/")) for k in keys)
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


def test_a_corrupted_read_of_the_previous_manifest_never_carries_a_wrong_hash_over(
    offsite: Path, s3_server_b: Any, bucket_b: str, proxies: tuple[FaultProxy, FaultProxy]
) -> None:
    # Found when the fault campaign's proven reads were extended to the backup: a re-run carries the
    # hashes of unchanged objects over from the previous manifest, read unproven; a flipped digit
    # that stays a hex digit ('8' -> 'b') was carried over and the manifest written again with it.
    target_proxy = proxies[1]
    backup_client, key = s3_server_b.client(), f"vault/{PREFIX}/{MANIFEST}"
    assert drtasks("backup", "-p", "offsite", "-f", dr_dir=offsite).code == 0
    raw = backup_client.get_object(Bucket=bucket_b, Key=key)["Body"].read()
    value = raw.index(b'"', raw.index(b'"sha256"') + len(b'"sha256"') + 1) + 1  # the first SHA-256's first digit
    offset = next(i for i in range(value, value + 64) if raw[i : i + 1] in b"89")
    target_proxy.add(Rule("corrupt", op("GetObject", rf"/{MANIFEST}$"), times=1, offset=offset))

    again = drtasks("backup", "-p", "offsite", "-f", dr_dir=offsite)

    assert again.code == 0, again.err
    after = backup_client.get_object(Bucket=bucket_b, Key=key)["Body"].read()
    assert json.loads(after)["objects"] == json.loads(raw)["objects"]


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


def test_a_wiped_backup_drops_what_the_model_no_longer_holds_but_never_a_nested_backup(dr_dir: Path, s3_server: Any, model: Any, vault: str) -> None:
    client = s3_server.client()
    folder = f"b/{PREFIX}"
    assert drtasks("backup", "--to", f"s3://{vault}/b", "-f", dr_dir=dr_dir).code == 0
    dropped = model.checkpoints[10].keys  # the trainer keeps the last few checkpoints: 10 goes
    client.delete_objects(Bucket=model.bucket, Delete={"Objects": [{"Key": f"{PREFIX}/{key}"} for key in dropped]})

    kept = plan_of(drtasks("backup", "--to", f"s3://{vault}/b", "-d", "--json", dr_dir=dr_dir))
    wiped = plan_of(drtasks("backup", "--to", f"s3://{vault}/b", "-w", "-d", "--json", dr_dir=dr_dir))

    assert kept["summary"]["kept"] == len(dropped) and kept["summary"]["delete"] == 0
    assert {k: v for k, v in actions(kept, folder).items() if v != "unchanged"} == {MANIFEST: "replace"}
    assert kept["checkpoints"] == [model.checkpoints[n].name for n in (13, 16, 19)]
    assert {k: v for k, v in actions(wiped, folder).items() if v != "unchanged"} == {**{key: "delete" for key in dropped}, MANIFEST: "replace"}
    assert drtasks("backup", "--to", f"s3://{vault}/b", "-w", "-f", dr_dir=dr_dir).code == 0
    stored = objects(client, vault, folder)
    assert not set(dropped) & set(stored)
    assert {o["key"] for o in json.loads(stored[MANIFEST])["objects"]} == set(stored) - {MANIFEST}

    client.put_object(Bucket=vault, Key=f"{folder}/nested/{MANIFEST}", Body=b"{}")
    refused = drtasks("backup", "--to", f"s3://{vault}/b", "-w", "-f", dr_dir=dr_dir)
    assert refused.code != 0 and "Traceback" not in refused.text
    assert refused.err.strip() == f"drtasks: refusing to wipe s3://{vault}/{folder}: its subfolder nested/ holds another backup (of a model nested in this one); back up without -w"


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


# -- interrupted, tampered ---------------------------------------------------------------------------------


def test_a_backup_that_fails_midway_never_leaves_a_manifest_and_restore_refuses_it(
    offsite: Path, s3_server: Any, s3_server_b: Any, model: Any, bucket_b: str, proxies: tuple[FaultProxy, FaultProxy]
) -> None:
    _, target_proxy = proxies
    folder = f"vault/{PREFIX}"
    assert drtasks("backup", "-p", "offsite", "-f", dr_dir=offsite).code == 0
    changed = f"model/model_{model.last}.pb"
    s3_server.client().put_object(Bucket=model.bucket, Key=f"{PREFIX}/{changed}", Body=os.urandom(4096))
    target_proxy.add(Rule("error", op("PutObject", rf"/{changed}$")))

    failed = drtasks("backup", "-p", "offsite", "-f", dr_dir=offsite)

    assert failed.code != 0 and "Traceback" not in failed.text
    stored = objects(s3_server_b.client(), bucket_b, folder)
    # The old manifest went first, so the backup being rewritten is visibly unfinished.
    assert MANIFEST not in stored and not set(MODEL_MARKERS) & set(stored)
    refused = drtasks("restore", "-p", "offsite", "--from", f"s3://{bucket_b}/{folder}", "--prefix", "from-partial", "-f", dr_dir=offsite)
    assert refused.code != 0 and "Traceback" not in refused.text
    assert refused.err.strip() == (
        f"drtasks: s3://{bucket_b}/{folder} holds no drtasks-backup.json: it is not a complete drtasks backup "
        "(an interrupted backup has none); nothing was written"
    )

    target_proxy.clear()
    assert drtasks("backup", "-p", "offsite", "-f", dr_dir=offsite).code == 0
    assert MANIFEST in objects(s3_server_b.client(), bucket_b, folder)


def test_a_tampered_backup_is_refused_before_anything_is_written(dr_dir: Path, tmp_path: Path, s3_server: Any, model: Any, vault: str) -> None:
    client = s3_server.client()
    assert drtasks("backup", "--to", f"s3://{vault}/backups", "-f", dr_dir=dr_dir).code == 0
    assert drtasks("backup", "--to", str(tmp_path / "shelf"), "-f", dr_dir=dr_dir).code == 0
    pb = f"model/model_{model.best}.pb"
    key = f"backups/{PREFIX}/{pb}"
    original = client.get_object(Bucket=vault, Key=key)["Body"].read()
    # Same size, other bytes, even the metadata of a drtasks copy: only the content can tell.
    metadata = client.head_object(Bucket=vault, Key=key)["Metadata"]
    client.put_object(Bucket=vault, Key=key, Body=bytes(len(original)), Metadata={**metadata, "drtasks-source-etag": "0" * 32})

    refused = drtasks("restore", "--from", f"s3://{vault}/backups/{PREFIX}", "--prefix", "restored", "-f", dr_dir=dr_dir)

    assert refused.code != 0 and "Traceback" not in refused.text and len(refused.err.strip().splitlines()) == 1
    assert f"the backup s3://{vault}/backups/{PREFIX} does not match its drtasks-backup.json: {pb}: its content is not the one the manifest recorded" in refused.err
    assert objects(client, model.bucket, "restored") == {}

    client.put_object(Bucket=vault, Key=key, Body=original[:-1])
    shorter = drtasks("restore", "--from", f"s3://{vault}/backups/{PREFIX}", "--prefix", "restored", "-f", dr_dir=dr_dir)
    assert f"{pb}: {len(original) - 1} bytes, the manifest says {len(original)}" in shorter.err

    local = tmp_path / "shelf" / PREFIX
    data = local / f"model/{model.last_checkpoint.name}.index"
    data.write_bytes(bytes(reversed(data.read_bytes())))
    (local / "ip/ip.json").unlink()
    from_folder = drtasks("restore", "--from", str(local), "--prefix", "restored", "-f", dr_dir=dr_dir)
    assert from_folder.code != 0 and "Traceback" not in from_folder.text
    assert f"the backup {local} does not match its drtasks-backup.json: ip/ip.json: missing and 1 more; nothing was written" in from_folder.err
    assert objects(client, model.bucket, "restored") == {}


def test_a_manifest_naming_a_file_outside_its_folder_is_refused(dr_dir: Path, tmp_path: Path, model: Any) -> None:
    assert drtasks("backup", "--to", str(tmp_path / "shelf"), "-f", dr_dir=dr_dir).code == 0
    manifest_file = tmp_path / "shelf" / PREFIX / MANIFEST
    manifest = json.loads(manifest_file.read_text())
    manifest["objects"][0]["key"] = "../../outside.txt"
    manifest_file.write_text(json.dumps(manifest))

    result = drtasks("restore", "--from", str(manifest_file.parent), "--prefix", "restored", "-f", dr_dir=dr_dir)

    assert result.code != 0 and "Traceback" not in result.text
    assert "cannot be a file inside the backup folder" in result.err and "'../../outside.txt'" in result.err


# -- restore ---------------------------------------------------------------------------------------------


def test_a_restored_model_is_complete_drfc_can_train_on_it_and_drtasks_ships_it(dr_dir: Path, s3_server: Any, model: Any, vault: str, upload_bucket: str) -> None:
    client = s3_server.client()
    proxy = FaultProxy(s3_server.endpoint_url).start()  # to see the order of the copies
    try:
        write_profile(
            dr_dir, "seen",
            f"source:\n  endpoint_url: {proxy.endpoint_url}\nbackup:\n  to: s3://{vault}/backups\n  endpoint_url: {proxy.endpoint_url}\n  aws_profile: {s3_server.aws_profile}\n",
        )
        assert drtasks("backup", "-p", "seen", "-f", dr_dir=dr_dir).code == 0
        proxy.clear()

        result = drtasks("restore", "-p", "seen", "--from", f"s3://{vault}/backups/{PREFIX}", "--prefix", "restored", "-c", "-f", dr_dir=dr_dir)

        assert result.code == 0, result.err
        copies = [r.path.split("/restored/", 1)[1] for r in proxy.requests if r.operation == "PutObject" and "/restored/" in r.path]
    finally:
        proxy.stop()
    assert "DR_LOCAL_S3_PRETRAINED=True and DR_LOCAL_S3_PRETRAINED_PREFIX=restored" in result.out
    assert objects(client, model.bucket, "restored") == model_objects(client, model)
    assert set(copies[-len(MODEL_MARKERS) :]) == set(MODEL_MARKERS)  # the model's pointers come last

    # What DRfC and drtasks read: the checkpoints, best and last, all intact.
    restored = SourceModel.load(client, s3_server.location(model.bucket, "restored"))
    assert restored.available_numbers() == [10, 13, 16, 19]
    assert (restored.select("best").name, restored.select("last").name) == (model.best_checkpoint.name, model.last_checkpoint.name)
    # -c: the model's config where dr-upload-custom-files takes it from.
    config = dr_dir / "custom_files"
    source = model_objects(client, model)
    assert (config / "model_metadata.json").read_bytes() == source["model/model_metadata.json"]
    assert (config / "hyperparameters.json").read_bytes() == source["ip/hyperparameters.json"]
    assert (config / "reward_function.py").read_bytes() == client.get_object(Bucket=model.bucket, Key=model.custom_reward_key)["Body"].read()

    shipped = drtasks("upload", "-f", "--best", "--prefix", "restored", dr_dir=dr_dir)
    assert shipped.code == 0, shipped.err
    index = json.loads(client.get_object(Bucket=upload_bucket, Key="restored/model/deepracer_checkpoints.json")["Body"].read())
    assert index["last_checkpoint"]["name"] == model.best_checkpoint.name


def test_restoring_over_an_existing_model_is_refused_unless_wiped_and_the_wipe_stays_in_its_prefix(dr_dir: Path, s3_server: Any, model: Any, vault: str) -> None:
    client = s3_server.client()
    assert drtasks("backup", "--to", f"s3://{vault}/backups", "-f", dr_dir=dr_dir).code == 0
    backed_up = objects(client, vault, f"backups/{PREFIX}")
    before_custom = objects(client, model.bucket, "custom_files")
    # The model at its prefix gets damaged: a checkpoint file lost, a file changed, a stray added.
    lost = f"model/{model.best_checkpoint.name}.index"
    client.delete_object(Bucket=model.bucket, Key=f"{PREFIX}/{lost}")
    client.put_object(Bucket=model.bucket, Key=f"{PREFIX}/ip/hyperparameters.json", Body=b"{}")
    client.put_object(Bucket=model.bucket, Key=f"{PREFIX}/model/stray.tmp", Body=b"x")
    client.put_object(Bucket=model.bucket, Key=f"{PREFIX}-2/model/keep.me", Body=b"sibling")
    damaged = objects(client, model.bucket, PREFIX)

    refused = drtasks("restore", "--from", f"s3://{vault}/backups/{PREFIX}", "-f", dr_dir=dr_dir)

    assert refused.code != 0 and "Traceback" not in refused.text
    assert f"s3://{model.bucket}/{PREFIX} already holds {len(damaged)} objects: restore into another prefix, or pass -w/--wipe" in refused.err
    assert objects(client, model.bucket, PREFIX) == damaged

    plan = plan_of(drtasks("restore", "--from", f"s3://{vault}/backups/{PREFIX}", "-w", "-d", "--json", dr_dir=dr_dir), "restore")
    planned = {k: v for k, v in actions(plan, PREFIX).items() if v != "unchanged"}
    simtraces = {f"training-simtrace/{i}-iteration.csv": "delete" for i in range(3)}
    assert planned == {lost: "add", "ip/hyperparameters.json": "replace", "model/stray.tmp": "delete", **simtraces, **{m: "replace" for m in MODEL_MARKERS}}
    assert all(item["key"].startswith(f"{PREFIX}/") for item in plan["items"])
    assert "the backup left out training-simtrace/: the restored model has none" in plan["notes"]

    result = drtasks("restore", "--from", f"s3://{vault}/backups/{PREFIX}", "-w", "-f", dr_dir=dr_dir)

    assert result.code == 0, result.err
    assert objects(client, model.bucket, PREFIX) == {k: v for k, v in backed_up.items() if k != MANIFEST and not k.startswith("custom_files/")}
    assert objects(client, model.bucket, f"{PREFIX}-2") == {"model/keep.me": b"sibling"}
    assert objects(client, model.bucket, "custom_files") == before_custom
    assert objects(client, vault, f"backups/{PREFIX}") == backed_up


def test_restore_from_a_folder_uploads_each_file_as_its_manifest_records_it(dr_dir: Path, tmp_path: Path, s3_server: Any, model: Any) -> None:
    client = s3_server.client()
    assert drtasks("backup", "--to", str(tmp_path / "shelf"), "-f", dr_dir=dr_dir).code == 0

    (dr_dir / "custom_files").mkdir()
    (dr_dir / "custom_files" / "reward_function.py").write_text("def reward_function(params):\n    return 0.0\n")
    (dr_dir / "custom_files" / "hyperparameters.json").write_bytes(model_objects(client, model)["ip/hyperparameters.json"])

    plan = plan_of(drtasks("restore", "--from", str(tmp_path / "shelf" / PREFIX), "--prefix", "from-shelf", "-c", "-d", "--json", dr_dir=dr_dir), "restore")
    result = drtasks("restore", "--from", str(tmp_path / "shelf" / PREFIX), "--prefix", "from-shelf", "-c", "-f", dr_dir=dr_dir)

    assert plan["transfer"] == "stream" and plan["verified_against"] == MANIFEST
    assert {item["reason"] for item in plan["items"]} == {"new (backup: its SHA-256, taken now)"}
    config = {Path(item["key"]).name: item["action"] for item in plan["config"]["items"]}
    assert config == {"reward_function.py": "replace", "model_metadata.json": "add", "hyperparameters.json": "unchanged"}
    assert result.code == 0, result.err
    assert objects(client, model.bucket, "from-shelf") == model_objects(client, model)
    assert (dr_dir / "custom_files" / "reward_function.py").read_bytes() == client.get_object(Bucket=model.bucket, Key=model.custom_reward_key)["Body"].read()
    assert "2 config files written to" in result.out


# -- dr-download-model -----------------------------------------------------------------------------------


def test_dr_download_model_explains_its_switches_and_needs_a_source_and_a_target(dr_dir: Path) -> None:
    shown = run("dr-download-model", "-h", dr_dir=dr_dir)
    assert shown.code == 0
    assert shown.out.startswith("Usage: dr-download-model [-s URL] [-t PREFIX] [-f] [-w] [-d] [-c]")
    for switch in ("-s URL", "-t PREFIX", "-f ", "-w ", "-d ", "-c ", "-h, --help"):
        assert f"  {switch}" in shown.out

    for args, message in (
        (("-t", "x"), "dr-download-model: no source URL to download the model from: -s s3://bucket/prefix"),
        (("-s", "s3://bucket/model"), "dr-download-model: no target prefix: -t PREFIX"),
        (("-s", "/some/folder", "-t", "x"), "dr-download-model: -s: '/some/folder' is not an s3:// URL"),
        (("-x",), "dr-download-model: option -x not recognized"),
    ):
        result = run("dr-download-model", *args, dr_dir=dr_dir)
        assert result.code != 0 and "Traceback" not in result.text
        assert result.err.startswith(message) and len(result.err.strip().splitlines()) == 1, result.err


def test_dr_download_model_copies_any_model_whole_like_drfc_and_writes_its_config_with_c(dr_dir: Path, s3_server: Any, model: Any, upload_bucket: str) -> None:
    client = s3_server.client()
    assert drtasks("upload", "-f", dr_dir=dr_dir).code == 0  # a race upload: a model, but no drtasks backup
    raced = objects(client, upload_bucket, UPLOAD_PREFIX)
    source = f"s3://{upload_bucket}/{UPLOAD_PREFIX}"

    dry = run("dr-download-model", "-s", source, "-t", "from-race", "-d", dr_dir=dr_dir)
    assert dry.code == 0, dry.err
    assert f"no drtasks-backup.json at {source}: the model is copied as it is" in dry.out and "Dry run: nothing was written." in dry.err
    assert objects(client, model.bucket, "from-race") == {} and not (dr_dir / "custom_files").exists()

    result = run("dr-download-model", "-s", source, "-t", "from-race", "-f", "-c", dr_dir=dr_dir)

    assert result.code == 0, result.err
    assert objects(client, model.bucket, "from-race") == raced
    assert {p.name: p.read_bytes() for p in (dr_dir / "custom_files").iterdir()} == {
        "reward_function.py": raced["reward_function.py"],
        "model_metadata.json": raced["model/model_metadata.json"],
        "hyperparameters.json": raced["ip/hyperparameters.json"],
    }
    again = run("dr-download-model", "-s", source, "-t", "from-race", "-f", dr_dir=dr_dir)
    assert again.code != 0 and f"s3://{model.bucket}/from-race already holds" in again.err
    client.put_object(Bucket=model.bucket, Key="from-race/model/extra.tmp", Body=b"x")
    wiped = run("dr-download-model", "-s", source, "-t", "from-race", "-f", "-w", dr_dir=dr_dir)
    assert wiped.code == 0, wiped.err
    assert objects(client, model.bucket, "from-race") == raced

    # DRfC checks the model's config files are there before it copies anything.
    not_a_model = run("dr-download-model", "-s", f"s3://{model.bucket}/{PREFIX}", "-t", "copy", "-f", dr_dir=dr_dir)
    assert not_a_model.code != 0
    assert not_a_model.err.strip() == f"dr-download-model: s3://{model.bucket}/{PREFIX} is not a model DRfC can download: missing reward_function.py; nothing was written"


def test_dr_download_model_checks_a_drtasks_backup_against_its_manifest(dr_dir: Path, s3_server: Any, model: Any, upload_bucket: str) -> None:
    client = s3_server.client()
    # By default a backup is kept where uploads go: dr-download-model reaches it the same way.
    assert drtasks("backup", "--to", f"s3://{upload_bucket}/vault", "-f", dr_dir=dr_dir).code == 0

    dry = run("dr-download-model", "-s", f"s3://{upload_bucket}/vault/{PREFIX}", "-t", "recovered", "-d", dr_dir=dr_dir)
    assert dry.code == 0, dry.err
    assert "(backup: its MD5 as recorded)" in dry.out and "no drtasks-backup.json" not in dry.out
    result = run("dr-download-model", "-s", f"s3://{upload_bucket}/vault/{PREFIX}", "-t", "recovered", "-f", dr_dir=dr_dir)

    assert result.code == 0, result.err
    assert "each proven against drtasks-backup.json" in result.out
    assert objects(client, model.bucket, "recovered") == model_objects(client, model)


# -- where backups go, profiles, inventory, ship -------------------------------------------------------------


def test_a_profile_names_the_backup_place_and_inventory_finds_every_backup(dr_dir: Path, tmp_path: Path, s3_server_b: Any, model: Any, bucket_b: str) -> None:
    write_profile(
        dr_dir, "vault",
        f"backup:\n  to: s3://{bucket_b}/deepracer\n  endpoint_url: {s3_server_b.endpoint_url}\n  aws_profile: {s3_server_b.aws_profile}\n  simtraces: true\n",
    )
    write_profile(dr_dir, "shelf", f"backup:\n  to: {tmp_path / 'shelf'}\n")
    config = json.loads(drtasks("config", "-p", "vault", "--json", dr_dir=dr_dir).out)
    settings = {row["key"]: row for row in config["settings"]}
    assert settings["DR_BACKUP_TO"]["value"] == f"s3://{bucket_b}/deepracer" and "profile" in settings["DR_BACKUP_TO"]["source"]
    assert settings["DR_BACKUP_SIMTRACES"]["value"] == "True"

    assert drtasks("backup", "-p", "vault", "-f", dr_dir=dr_dir).code == 0
    assert drtasks("backup", "-p", "shelf", "-f", dr_dir=dr_dir).code == 0
    assert "training-simtrace/0-iteration.csv" in objects(s3_server_b.client(), bucket_b, f"deepracer/{PREFIX}")

    found = json.loads(drtasks("inventory", "--json", dr_dir=dr_dir).out)

    (mine,) = [m for m in found["models"] if m["prefix"] == PREFIX]
    names = [model.checkpoints[n].name for n in (10, 13, 16, 19)]
    assert sorted((b["location"], tuple(b["checkpoints"])) for b in mine["backups"]) == sorted(
        [(f"s3://{bucket_b}/deepracer/{PREFIX}", tuple(names)), (str(tmp_path / "shelf" / PREFIX), tuple(names))]
    )
    assert all(b["updated"] and b["created"] for b in mine["backups"])


def test_a_profile_may_list_backup_as_its_last_step(dr_dir: Path, s3_server: Any, model: Any, vault: str, upload_bucket: str) -> None:
    write_profile(dr_dir, "safe", f"steps: [backup, upload]\nbackup:\n  to: s3://{vault}/b\n")

    plan = json.loads(drtasks("ship", "-p", "safe", "-d", "--json", dr_dir=dr_dir).out)
    result = drtasks("ship", "-p", "safe", "-f", dr_dir=dr_dir)

    assert plan["chain"] == ["upload", "backup"]
    assert result.code == 0, result.err
    assert MANIFEST in objects(s3_server.client(), vault, f"b/{PREFIX}")
    assert "model/deepracer_checkpoints.json" in objects(s3_server.client(), upload_bucket, UPLOAD_PREFIX)


@pytest.mark.parametrize(
    "args, message",
    [
        ((), "drtasks: no backup location: pass --to s3://bucket/prefix or --to FOLDER, or set backup.to in the profile (DR_BACKUP_TO)"),
        (("--to", "s3://{bucket}"), "drtasks: the backup folder s3://{bucket}/rl-deepracer-sagemaker and the model s3://{bucket}/rl-deepracer-sagemaker contain one another"),
        (("--to", "s3://{bucket}/rl-deepracer-sagemaker/keep"), "drtasks: the backup folder s3://{bucket}/rl-deepracer-sagemaker/keep/rl-deepracer-sagemaker and the model"),
        (("--to", "s3:///x"), "drtasks: --to: 's3:///x' names no bucket; write s3://bucket/prefix"),
        (("--to", "{file}"), "drtasks: {file}/rl-deepracer-sagemaker: {file} is a file, not a folder; nothing was written"),
        (("--prefix", "nothing-here", "--to", "s3://{bucket}/b"), "drtasks: no model at s3://{bucket}/nothing-here: the prefix holds no objects"),
    ],
)
def test_a_backup_with_nowhere_to_go_or_inside_its_model_is_refused_in_one_line(dr_dir: Path, tmp_path: Path, model: Any, args: tuple[str, ...], message: str) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    filled = [a.format(bucket=model.bucket, file=tmp_path / "a-file") for a in args]

    result = drtasks("backup", "-f", *filled, dr_dir=dr_dir)

    assert result.code != 0 and "Traceback" not in result.text and len(result.err.strip().splitlines()) == 1, result.err
    assert result.err.startswith(message.format(bucket=model.bucket, file=tmp_path / "a-file")), result.err


def test_a_backup_folder_holding_another_models_backup_is_refused(dr_dir: Path, tmp_path: Path, s3_server: Any, model: Any) -> None:
    bucket = s3_server.new_bucket()
    seed_model(s3_server.client(), bucket, PREFIX, checkpoints=(3, 4), seed=5, simtrace_iterations=0)  # same prefix, another bucket
    write_profile(dr_dir, "twin", f"source:\n  bucket: {bucket}\n")
    assert drtasks("backup", "--to", str(tmp_path / "shelf"), "-f", dr_dir=dr_dir).code == 0

    result = drtasks("backup", "-p", "twin", "--to", str(tmp_path / "shelf"), "-f", dr_dir=dr_dir)

    assert result.code != 0 and "Traceback" not in result.text
    assert result.err.strip() == (
        f"drtasks: {tmp_path / 'shelf' / PREFIX} holds the backup of s3://{model.bucket}/{PREFIX}, not of s3://{bucket}/{PREFIX}; choose another --to"
    )


def test_restore_refuses_a_place_that_holds_no_backup_or_a_target_around_the_backup(dr_dir: Path, tmp_path: Path, s3_server: Any, model: Any) -> None:
    assert drtasks("backup", "--to", f"s3://{model.bucket}/backups", "-f", dr_dir=dr_dir).code == 0
    cases = [
        (("--from", f"s3://{model.bucket}"), f"drtasks: --from: s3://{model.bucket} names a bucket; name the backup's folder"),
        (("--from", str(tmp_path / "none")), f"drtasks: --from: {tmp_path / 'none'} is not a folder"),
        (("--from", f"s3://{model.bucket}/{PREFIX}", "--prefix", "x"), f"drtasks: s3://{model.bucket}/{PREFIX} holds no drtasks-backup.json"),
        (("--from", f"s3://{model.bucket}/backups/{PREFIX}", "--prefix", "backups", "-w"), f"drtasks: the restore target s3://{model.bucket}/backups and the backup"),
        (("--from", f"s3://{model.bucket}/backups/{PREFIX}", "--prefix", "custom_files/x", "-w"), f"drtasks: the restore target s3://{model.bucket}/custom_files/x and the custom files"),
    ]
    for args, message in cases:
        result = drtasks("restore", "-f", *args, dr_dir=dr_dir)
        assert result.code != 0 and "Traceback" not in result.text and len(result.err.strip().splitlines()) == 1, result.err
        assert result.err.startswith(message), result.err
    assert MANIFEST in objects(s3_server.client(), model.bucket, f"backups/{PREFIX}")


# -- a real model ------------------------------------------------------------------------------------------


def test_a_real_model_backed_up_to_a_folder_and_restored_elsewhere_loads_in_tensorflow(tmp_path: Path, s3_server: Any, real_source: Any, upload_bucket: str, bucket: str) -> None:
    from tests.consumers import restore_policy
    from tests.real_models import REAL_PREFIX

    seeded, real, _ = real_source
    client = s3_server.client()
    (tmp_path / "dr").mkdir()
    dr = write_env_files(tmp_path / "dr", s3_server, seeded, upload_bucket)
    write_profile(dr, "elsewhere", f"source:\n  bucket: {bucket}\n")  # another, empty training bucket
    shelf = tmp_path / "shelf"

    assert drtasks("backup", "--to", str(shelf), "-f", dr_dir=dr).code == 0
    result = drtasks("restore", "-p", "elsewhere", "--from", str(shelf / REAL_PREFIX), "-f", dr_dir=dr)

    assert result.code == 0, result.err
    restored = objects(client, bucket, REAL_PREFIX)
    assert restored == model_objects(client, seeded)
    metadata = json.loads(restored["model/model_metadata.json"])
    index = json.loads(restored["model/deepracer_checkpoints.json"])
    for which in ("best", "last"):
        name = index[f"{which}_checkpoint"]["name"]
        for suffix in ("data-00000-of-00001", "index", "meta"):
            path = tmp_path / "tf" / f"{name}.{suffix}"
            path.parent.mkdir(exist_ok=True)
            path.write_bytes(restored[f"model/{name}.{suffix}"])
        outputs = restore_policy(tmp_path / "tf" / name, metadata)
        assert len(outputs) == len(metadata["action_space"]) == 6 and sum(outputs) == pytest.approx(1.0, abs=1e-4)
