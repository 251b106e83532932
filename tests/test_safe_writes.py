"""Safe writes, proven on two real S3 servers with faults injected between drtasks and them.

Specification (issue "every write is safe"):
- every byte copied across endpoints is checked against its source; a corrupt or short read is
  read again, and if it stays wrong the run fails without writing that object;
- completion markers are removed before data changes and written only after every data object is
  proven, so a failed or interrupted run never leaves a target that looks complete;
- a wipe never deletes an object the upload reads;
- one writer per target: a live run's lease stops a second one, a dead run's lease does not;
- unfinished multipart uploads under the target are shown and aborted, or resumed from their parts.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from drtasks.sample_model import seed_model
from tests.cli import PROJECT_ROOT, drtasks
from tests.fault_proxy import FaultProxy, Rule, op

UPLOAD_PREFIX = "race-model-1"
MARKERS = ("model/deepracer_checkpoints.json", "model/.coach_checkpoint", "model_metadata.json")
MiB = 1024 * 1024


def listing(client: Any, bucket: str, prefix: str) -> dict[str, Any]:
    found = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{prefix}/"):
        for item in page.get("Contents", []):
            found[item["Key"][len(prefix) + 1 :]] = item
    return found


def read(client: Any, bucket: str, key: str) -> bytes:
    return client.get_object(Bucket=bucket, Key=key)["Body"].read()


@pytest.fixture
def proxied_source(s3_server: Any) -> Iterator[FaultProxy]:
    """A fault proxy in front of the training bucket's server."""
    proxy = FaultProxy(s3_server.endpoint_url, seed=7).start()
    yield proxy
    proxy.stop()


@pytest.fixture
def proxied_target(s3_server_b: Any) -> Iterator[FaultProxy]:
    """A fault proxy in front of the upload bucket's server."""
    proxy = FaultProxy(s3_server_b.endpoint_url, seed=11).start()
    yield proxy
    proxy.stop()


def env_files(dr_dir: Path, source_url: str, source_profile: str, bucket: str, target_url: str, target_profile: str, target_bucket: str, extra: str = "") -> Path:
    (dr_dir / "system.env").write_text(
        f"DR_LOCAL_S3_ENDPOINT_URL={source_url}\nDR_LOCAL_S3_PROFILE={source_profile}\nDR_LOCAL_S3_BUCKET={bucket}\n"
        f"DR_UPLOAD_S3_ENDPOINT_URL={target_url}\nDR_UPLOAD_S3_PROFILE={target_profile}\nDR_UPLOAD_S3_BUCKET={target_bucket}\n"
    )
    (dr_dir / "run.env").write_text(f"DR_LOCAL_S3_MODEL_PREFIX=rl-deepracer-sagemaker\nDR_UPLOAD_S3_PREFIX={UPLOAD_PREFIX}\n{extra}")
    return dr_dir


@pytest.fixture
def streamed(tmp_path: Path, s3_server: Any, s3_server_b: Any, seeded_model: Any, bucket_b: str, proxied_source: FaultProxy, proxied_target: FaultProxy) -> Path:
    """Source read through one proxy, target written through another: a streamed upload."""
    return env_files(
        tmp_path, proxied_source.endpoint_url, s3_server.aws_profile, seeded_model.model.bucket,
        proxied_target.endpoint_url, s3_server_b.aws_profile, bucket_b,
    )


# ---------------------------------------------------------------------------- proof of bytes


def test_a_corrupted_source_read_is_read_again_and_the_copy_is_exact(streamed: Path, proxied_source: FaultProxy, s3_server: Any, s3_server_b: Any, model: Any, bucket_b: str) -> None:
    pb = f"model/model_{model.last}.pb"
    assert drtasks("upload", "-d", dr_dir=streamed).code == 0  # the model check reads the graph now, not during the copy
    proxied_source.clear()
    proxied_source.add(Rule("corrupt", op("GetObject", rf"/{pb}$"), times=1))
    result = drtasks("upload", "-f", dr_dir=streamed)
    assert result.code == 0, result.err
    assert proxied_source.count("GetObject", rf"/{pb}$") == 2  # the corrupt read, then a good one
    assert read(s3_server_b.client(), bucket_b, f"{UPLOAD_PREFIX}/{pb}") == read(s3_server.client(), model.bucket, model.key(pb))


def test_a_short_source_read_is_read_again(streamed: Path, proxied_source: FaultProxy, s3_server: Any, s3_server_b: Any, model: Any, bucket_b: str) -> None:
    data = f"model/{model.last_checkpoint.name}.data-00000-of-00001"
    proxied_source.add(Rule("truncate", op("GetObject", rf"/{data}$"), times=1))
    result = drtasks("upload", "-f", dr_dir=streamed)
    assert result.code == 0, result.err
    assert read(s3_server_b.client(), bucket_b, f"{UPLOAD_PREFIX}/{data}") == read(s3_server.client(), model.bucket, model.key(data))


def test_corruption_that_persists_fails_the_run_and_a_clean_rerun_repairs_it(streamed: Path, proxied_source: FaultProxy, s3_server_b: Any, model: Any, bucket_b: str) -> None:
    pb = f"model/model_{model.last}.pb"
    proxied_source.add(Rule("corrupt", op("GetObject", rf"/{pb}$")))
    failed = drtasks("upload", "-f", dr_dir=streamed)
    assert failed.code != 0 and "Traceback" not in failed.text
    assert "do not match the source's checksum on 3 reads" in failed.err
    assert proxied_source.endpoint_url in failed.err  # the side that failed: the source
    target = listing(s3_server_b.client(), bucket_b, UPLOAD_PREFIX)
    assert pb not in target  # never written, so never mistaken for a good copy
    assert not set(MARKERS) & set(target)  # the target does not look complete

    proxied_source.clear()
    repaired = drtasks("upload", "-f", dr_dir=streamed)
    assert repaired.code == 0, repaired.err
    assert set(MARKERS) <= set(listing(s3_server_b.client(), bucket_b, UPLOAD_PREFIX))


def test_evidence_of_a_copy_exists_only_for_proven_bytes(streamed: Path, s3_server_b: Any, model: Any, bucket_b: str) -> None:
    assert drtasks("upload", "-f", dr_dir=streamed).code == 0
    client = s3_server_b.client()
    pb_key = f"{UPLOAD_PREFIX}/model/model_{model.last}.pb"
    # An object that claims to be this source's copy but holds other bytes of the same size...
    original = read(client, bucket_b, pb_key)
    source_etag = client.head_object(Bucket=bucket_b, Key=pb_key)["Metadata"]["drtasks-source-etag"]
    client.put_object(Bucket=bucket_b, Key=pb_key, Body=bytes(len(original)), Metadata={"drtasks-source-etag": "not-" + source_etag})
    # ...is planned as a replacement, and the re-run restores the source's bytes.
    plan = json.loads(drtasks("upload", "-d", "--json", dr_dir=streamed).out)["steps"][0]
    actions = {item["key"].split("/", 1)[1]: item["action"] for item in plan["items"]}
    assert actions[f"model/model_{model.last}.pb"] == "replace"
    assert drtasks("upload", "-f", dr_dir=streamed).code == 0
    assert read(client, bucket_b, pb_key) == original


def test_the_checkpoint_index_is_proven_before_the_markers_are_made_from_it(streamed: Path, proxied_source: FaultProxy, s3_server: Any, s3_server_b: Any, model: Any, bucket_b: str) -> None:
    # Found by the fault campaign: the written deepracer_checkpoints.json is made from the source's
    # index; a flipped byte that leaves valid JSON ("avg_eval_metric" -> "a,g_eval_metric") was
    # written as the target's completion marker, and the run ended with exit 0.
    index = read(s3_server.client(), model.bucket, model.key("model/deepracer_checkpoints.json"))
    offset = index.index(b'"avg_eval_metric"', index.index(b'"last_checkpoint"')) + 2
    proxied_source.add(Rule("corrupt", op("GetObject", r"deepracer_checkpoints\.json$"), times=1, offset=offset))
    result = drtasks("upload", "-f", dr_dir=streamed)
    assert result.code == 0, result.err
    entry = json.loads(index)["last_checkpoint"]
    written = json.loads(read(s3_server_b.client(), bucket_b, f"{UPLOAD_PREFIX}/model/deepracer_checkpoints.json"))
    assert written == {"best_checkpoint": entry, "last_checkpoint": entry}


def test_a_corrupted_read_never_becomes_a_remembered_refusal(streamed: Path, proxied_source: FaultProxy, tmp_path: Path) -> None:
    # Found by the fault campaign: the model check read model_metadata.json unproven, refused the
    # corrupted bytes, and remembered that refusal under the good object's ETag: every later run,
    # without any fault, refused the model.
    fresh = {"XDG_CACHE_HOME": str(tmp_path / "cache")}  # no verdict remembered yet
    proxied_source.add(Rule("corrupt", op("GetObject", r"/model/model_metadata\.json$"), times=1, offset=0))
    first = drtasks("upload", "-f", dr_dir=streamed, env=fresh)
    proxied_source.clear()
    again = drtasks("upload", "-f", dr_dir=streamed, env=fresh)
    assert again.code == 0, again.err
    assert first.code == 0, first.err  # the corrupted read was read again


def test_car_zip_builds_the_archive_from_proven_bytes(streamed: Path, proxied_source: FaultProxy, s3_server: Any, model: Any, tmp_path: Path) -> None:
    # Found by the fault campaign: car-zip --from s3 packed the frozen graph as one unproven read
    # gave it; a corrupted read became the car's model.pb, with exit 0.
    pb = f"model/model_{model.last}.pb"
    proxied_source.add(Rule("corrupt", op("GetObject", rf"/{pb}$"), times=1))
    archive = tmp_path / "car.tar.gz"
    result = drtasks("car-zip", "--from", "s3", "-N", "-f", "-o", str(archive), dr_dir=streamed)
    assert result.code == 0, result.err
    with tarfile.open(archive) as packed:
        assert packed.extractfile("agent/model.pb").read() == read(s3_server.client(), model.bucket, model.key(pb))  # type: ignore[union-attr]

    proxied_source.add(Rule("corrupt", op("GetObject", rf"/{pb}$")))  # every read
    archive.unlink()
    failed = drtasks("car-zip", "--from", "s3", "-N", "-f", "-o", str(archive), dr_dir=streamed)
    assert failed.code != 0 and "Traceback" not in failed.text and "3 reads" in failed.err
    assert not archive.exists()


# ---------------------------------------------------------------------------- completion markers


def test_markers_go_first_when_data_changes_and_stay_away_when_the_run_fails(streamed: Path, proxied_target: FaultProxy, s3_server_b: Any, model: Any, bucket_b: str) -> None:
    assert drtasks("upload", "-f", dr_dir=streamed).code == 0  # model A: the last checkpoint
    data = rf"/{model.best_checkpoint.name}\.data"
    proxied_target.add(Rule("error", lambda r: r.operation in ("PutObject", "UploadPart") and "ckpt.data" in r.path and model.best_checkpoint.name in r.path))
    over = drtasks("upload", "-f", "--best", dr_dir=streamed)  # model B over model A, failing midway
    assert over.code != 0 and "Traceback" not in over.text
    target = listing(s3_server_b.client(), bucket_b, UPLOAD_PREFIX)
    assert not set(MARKERS) & set(target), "A's markers must not stand over B's partial data"
    assert proxied_target.count("DeleteObjects") >= 1 and data

    proxied_target.clear()
    assert drtasks("upload", "-f", "--best", dr_dir=streamed).code == 0
    index = json.loads(read(s3_server_b.client(), bucket_b, f"{UPLOAD_PREFIX}/model/deepracer_checkpoints.json"))
    assert index["last_checkpoint"]["name"] == model.best_checkpoint.name


def test_an_interrupt_stops_at_once_and_says_the_target_is_partial(streamed: Path, proxied_target: FaultProxy, s3_server_b: Any, bucket_b: str) -> None:
    proxied_target.add(Rule("hold", op("PutObject", r"hyperparameters\.json$")))
    env = {k: v for k, v in os.environ.items() if not k.startswith("DR_")}
    env.update(DR_DIR=str(streamed), PYTHONPATH=str(PROJECT_ROOT), COLUMNS="200")
    child = subprocess.Popen(
        [sys.executable, "-c", "from drtasks.cli import main; import sys; sys.argv=['drtasks','upload','-f']; main()"],
        cwd=streamed, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + 60
    while proxied_target.count("PutObject", r"hyperparameters\.json$") == 0:
        assert time.monotonic() < deadline and child.poll() is None, "the upload never reached the held write"
        time.sleep(0.05)
    child.send_signal(signal.SIGINT)
    time.sleep(0.5)
    proxied_target.release()
    out, err = child.communicate(timeout=60)
    assert child.returncode == 130, err
    assert "interrupted" in err and "partial" in err and "run the same command again" in err and "Traceback" not in err
    writes_of_markers = [r for r in proxied_target.requests if r.operation == "PutObject" and any(r.path.endswith(f"/{UPLOAD_PREFIX}/{m}") for m in MARKERS)]
    assert writes_of_markers == []
    assert not set(MARKERS) & set(listing(s3_server_b.client(), bucket_b, UPLOAD_PREFIX))

    proxied_target.clear()
    assert drtasks("upload", "-f", dr_dir=streamed).code == 0
    assert set(MARKERS) <= set(listing(s3_server_b.client(), bucket_b, UPLOAD_PREFIX))


# ---------------------------------------------------------------------------- wipe and inputs


@pytest.mark.parametrize("input_setting", ["DR_LOCAL_S3_REWARD_KEY=race-model-1/custom/reward_function.py", "DR_LOCAL_S3_METRICS_PREFIX=race-model-1/metrics-in"])
def test_a_wipe_never_deletes_what_the_upload_reads(tmp_path: Path, s3_server: Any, model: Any, input_setting: str) -> None:
    client = s3_server.client()
    key, value = input_setting.split("=")
    # The upload reads this input from inside the very prefix it writes (upload bucket == training bucket).
    source_key = value if key.endswith("REWARD_KEY") else f"{value}/TrainingMetrics.json"
    original = read(client, model.bucket, model.custom_reward_key if key.endswith("REWARD_KEY") else model.key("metrics/TrainingMetrics.json"))
    client.put_object(Bucket=model.bucket, Key=source_key, Body=original)
    dr_dir = env_files(tmp_path, s3_server.endpoint_url, s3_server.aws_profile, model.bucket, s3_server.endpoint_url, s3_server.aws_profile, model.bucket, extra=f"{input_setting}\n")

    for command in (("upload", "-f", "-w"), ("increment", "-f", "-w")):
        if command[0] == "increment":
            (dr_dir / "run.env").write_text((dr_dir / "run.env").read_text().replace(f"DR_UPLOAD_S3_PREFIX={UPLOAD_PREFIX}", "DR_UPLOAD_S3_PREFIX=race-model-0"))
        result = drtasks(*command, dr_dir=dr_dir)
        assert result.code != 0 and "Traceback" not in result.text, result.out
        assert f"s3://{model.bucket}/{source_key}" in result.err and "read by this upload" in result.err
        assert read(client, model.bucket, source_key) == original
    assert "DR_UPLOAD_S3_PREFIX=race-model-0" in (dr_dir / "run.env").read_text()  # the refusal changed nothing


@pytest.fixture(scope="module")
def other_profile_name(s3_server: Any, aws_files: Any) -> str:
    """Another AWS profile name holding the training server's own keys."""
    name = f"{s3_server.aws_profile}-by-another-name"
    aws_files.add_profile(name, s3_server.access_key, s3_server.secret_key)
    return name


@pytest.mark.parametrize("reached", ["http://localhost:{port}", "{endpoint}/", "another profile name"])
def test_the_training_bucket_is_known_however_its_endpoint_or_profile_is_spelled(tmp_path: Path, s3_server: Any, model: Any, other_profile_name: str, reached: str) -> None:
    # Found by the fault campaign's wipe property: the training bucket reached through another
    # spelling of its endpoint, or another profile name, counted as another service: -w deleted
    # the metrics the upload read, and could wipe the source model itself.
    client = s3_server.client()
    metrics = read(client, model.bucket, model.key("metrics/TrainingMetrics.json"))
    client.put_object(Bucket=model.bucket, Key="race-model-1/metrics-in/TrainingMetrics.json", Body=metrics)
    endpoint, profile = s3_server.endpoint_url, s3_server.aws_profile
    if reached == "another profile name":
        profile = other_profile_name
    else:
        endpoint = reached.format(port=endpoint.rsplit(":", 1)[1], endpoint=endpoint)
    extra = "DR_LOCAL_S3_METRICS_PREFIX=race-model-1/metrics-in\n"
    dr_dir = env_files(tmp_path, s3_server.endpoint_url, s3_server.aws_profile, model.bucket, endpoint, profile, model.bucket, extra=extra)
    before = listing(client, model.bucket, model.prefix)

    wipe = drtasks("upload", "-f", "-w", dr_dir=dr_dir)
    assert wipe.code != 0 and "Traceback" not in wipe.text, wipe.out
    assert "race-model-1/metrics-in/TrainingMetrics.json" in wipe.err and "read by this upload" in wipe.err
    assert read(client, model.bucket, "race-model-1/metrics-in/TrainingMetrics.json") == metrics

    onto_itself = drtasks("upload", "-f", "-w", "--prefix", model.prefix, dr_dir=dr_dir)
    assert onto_itself.code != 0 and "is the source itself" in onto_itself.err, onto_itself.out
    assert listing(client, model.bucket, model.prefix) == before


@pytest.mark.parametrize("prefix", ["team//race-1", "team/./race-1", "team/../race-1"])
def test_a_prefix_with_an_empty_or_dot_segment_is_refused_before_anything_is_written(tmp_path: Path, s3_server: Any, model: Any, upload_bucket: str, prefix: str) -> None:
    # Found by the fault campaign's wipe property: SeaweedFS files "team//race-1/x" as
    # "team/race-1/x" (MinIO refuses such keys, AWS keeps them): the upload wrote over another
    # upload outside its prefix, then could not prove its own listing.
    from tests.drfc import write_env_files

    client = s3_server.client()
    client.put_object(Bucket=upload_bucket, Key="team/race-1/reward_function.py", Body=b"another upload's reward function")
    dr_dir = write_env_files(tmp_path, s3_server, model, upload_bucket, upload_prefix=prefix)
    before = listing(client, upload_bucket, "team")
    for command in (("upload", "-f", "-w"), ("increment", "-f", "-w")):
        result = drtasks(*command, dr_dir=dr_dir)
        assert result.code != 0 and "Traceback" not in result.text, result.out
        assert "path segment" in result.err and len(result.err.strip().splitlines()) == 1, result.err
        assert listing(client, upload_bucket, "team") == before
    assert f"DR_UPLOAD_S3_PREFIX={prefix}" in (dr_dir / "run.env").read_text()


# ---------------------------------------------------------------------------- one writer at a time


def lease(client: Any, bucket: str, pid: int, host: str, expires_in: float) -> None:
    body = {"run_id": "f00dfeed" * 4, "host": host, "pid": pid, "command": "dr-upload-model", "started": time.time() - 5, "expires": time.time() + expires_in}
    client.put_object(Bucket=bucket, Key=f"{UPLOAD_PREFIX}/.drtasks-lease.json", Body=json.dumps(body).encode())


def test_a_live_writer_stops_a_second_one_which_names_it(streamed: Path, s3_server_b: Any, bucket_b: str) -> None:
    client = s3_server_b.client()
    lease(client, bucket_b, os.getpid(), socket.gethostname(), 60)
    result = drtasks("upload", "-f", dr_dir=streamed)
    assert result.code != 0 and "Traceback" not in result.text
    assert f"pid {os.getpid()} on {socket.gethostname()}" in result.err and "dr-upload-model" in result.err
    assert set(listing(client, bucket_b, UPLOAD_PREFIX)) == {".drtasks-lease.json"}


def test_the_lease_of_a_run_that_is_gone_is_taken_over_and_released(streamed: Path, s3_server_b: Any, bucket_b: str) -> None:
    client = s3_server_b.client()
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    lease(client, bucket_b, int(finished.stdout), socket.gethostname(), 600)  # that process has exited
    result = drtasks("upload", "-f", dr_dir=streamed)
    assert result.code == 0, result.err
    assert ".drtasks-lease.json" not in listing(client, bucket_b, UPLOAD_PREFIX)


def test_the_lease_of_a_killed_run_is_removed_even_when_nothing_else_is_left_to_do(streamed: Path, s3_server_b: Any, bucket_b: str) -> None:
    # Found by the fault campaign: a run killed after its completion markers, before it let go of
    # its lease, left the lease behind; the re-run found nothing to do and never removed it.
    assert drtasks("upload", "-f", dr_dir=streamed).code == 0
    client = s3_server_b.client()
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    lease(client, bucket_b, int(finished.stdout), socket.gethostname(), 600)  # the killed run's

    plan = json.loads(drtasks("upload", "-d", "--json", dr_dir=streamed).out)["steps"][0]
    assert plan["stale_lease"].startswith("run f00dfeed") and plan["summary"]["add"] == plan["summary"]["replace"] == 0
    assert ".drtasks-lease.json" in listing(client, bucket_b, UPLOAD_PREFIX)  # a dry run removes nothing
    result = drtasks("upload", "-f", dr_dir=streamed)
    assert result.code == 0, result.err
    assert ".drtasks-lease.json" not in listing(client, bucket_b, UPLOAD_PREFIX)


def test_two_runs_at_once_leave_a_complete_model_or_none(streamed: Path, proxied_target: FaultProxy, s3_server_b: Any, model: Any, bucket_b: str) -> None:
    proxied_target.add(Rule("delay", op("PutObject"), seconds=0.05))
    env = {k: v for k, v in os.environ.items() if not k.startswith("DR_")}
    env.update(DR_DIR=str(streamed), PYTHONPATH=str(PROJECT_ROOT), COLUMNS="200")
    runs = [
        subprocess.Popen([sys.executable, "-c", f"from drtasks.cli import main; import sys; sys.argv=['drtasks','upload','-f',{flag!r}]; main()"], cwd=streamed, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for flag in ("--best", "-w")
    ]
    outcomes = [(run.wait(timeout=120), run.communicate()[1]) for run in runs]
    assert any(code == 0 for code, _ in outcomes), outcomes
    for code, err in outcomes:
        assert code == 0 or "being written by another drtasks run" in err or "lost the lease" in err or "could not be proven" in err, err
    client = s3_server_b.client()
    target = listing(client, bucket_b, UPLOAD_PREFIX)
    named = read(client, bucket_b, f"{UPLOAD_PREFIX}/model/.coach_checkpoint").decode().strip()
    number = int(named.split("_")[0])
    # The markers name a checkpoint whose every file is in place.
    assert {f"model/{named}.data-00000-of-00001", f"model/{named}.index", f"model/{named}.meta", f"model/model_{number}.pb"} <= set(target)


# ---------------------------------------------------------------------------- unfinished uploads


def test_unfinished_uploads_under_the_target_are_shown_and_aborted(streamed: Path, s3_server_b: Any, bucket_b: str) -> None:
    client = s3_server_b.client()
    orphan = client.create_multipart_upload(Bucket=bucket_b, Key=f"{UPLOAD_PREFIX}/model/half.pb")["UploadId"]
    outside = client.create_multipart_upload(Bucket=bucket_b, Key=f"{UPLOAD_PREFIX}-2/model/other.pb")["UploadId"]
    plan = json.loads(drtasks("upload", "-d", "--json", dr_dir=streamed).out)["steps"][0]
    aborts = [item for item in plan["items"] if item["action"] == "abort"]
    assert [(a["key"], a["upload_id"]) for a in aborts] == [(f"{UPLOAD_PREFIX}/model/half.pb", orphan)]
    assert drtasks("upload", "-f", dr_dir=streamed).code == 0
    left = {u["UploadId"] for u in client.list_multipart_uploads(Bucket=bucket_b).get("Uploads", [])}
    assert orphan not in left and outside in left  # nothing outside the target prefix is touched


def test_an_interrupted_large_stream_resumes_from_its_parts(s3_server: Any, s3_server_b: Any, bucket: str, bucket_b: str, proxied_target: FaultProxy) -> None:
    from drtasks.manifest import find_pieces, upload_manifest
    from drtasks.model import SourceModel
    from drtasks.plan import Action, list_pending_uploads, plan_upload
    from drtasks.s3 import S3Location, make_client
    from drtasks.transfer import TransferConfig, apply, resumable_for

    client = s3_server.client()
    seed_model(client, bucket, "big", checkpoints=(1, 2), data_size=16 * MiB, pb_size=1 * MiB)
    source = s3_server.location(bucket, "big")
    loaded = SourceModel.load(client, source)
    checkpoint = loaded.select("last")
    pieces = find_pieces(client, loaded, checkpoint, "custom_files/reward_function.py", "big/metrics")
    manifest = upload_manifest(loaded, checkpoint, pieces, b"JOB_TYPE: 'TRAINING'\n")
    target = S3Location(bucket_b, "resumed", proxied_target.endpoint_url, s3_server_b.aws_profile)
    target_client = make_client(target)
    parts = TransferConfig(max_concurrency=1, part_size=5 * MiB)  # the 16 MiB data file: 4 parts
    data_key = f"{checkpoint.name}.data"

    proxied_target.add(Rule("error", lambda r: r.operation == "UploadPart" and data_key in r.path and r.query.get("partNumber") == ["3"]))
    first = plan_upload(manifest, source, target, target_client)
    with pytest.raises(Exception):
        apply(first, client, target_client, parts)
    sent_first = proxied_target.count("UploadPart", data_key)
    assert not set(MARKERS) & set(listing(s3_server_b.client(), bucket_b, "resumed"))

    proxied_target.clear()
    pending = list_pending_uploads(target_client, target)
    [upload] = pending
    held = s3_server_b.client().list_parts(Bucket=bucket_b, Key=upload.key, UploadId=upload.upload_id)["Parts"]
    assert 2 <= len(held) < 4 and 3 not in {part["PartNumber"] for part in held}
    again = plan_upload(manifest, source, target, target_client, pending=pending, resumable=resumable_for(target, False))
    resumed = [item for item in again.items if item.upload_id and item.action is not Action.ABORT]
    assert [item.key for item in resumed] == [f"model/{checkpoint.name}.data-00000-of-00001"]
    assert "resumes an interrupted upload" in resumed[0].reason
    checks = apply(again, client, target_client, parts)
    assert all(check.ok for check in checks)
    assert proxied_target.count("UploadPart", data_key) == 4 - len(held)  # only the parts that were missing
    assert sent_first >= 3
    assert read(s3_server_b.client(), bucket_b, f"resumed/model/{checkpoint.name}.data-00000-of-00001") == read(client, bucket, f"big/model/{checkpoint.name}.data-00000-of-00001")
    assert list_pending_uploads(target_client, target) == []


def last_checkpoint_manifest(client: Any, seeded_model: Any) -> tuple[Any, Any, list[Any]]:
    """The seeded model's location, its last checkpoint and the race layout's manifest of it."""
    from drtasks.manifest import find_pieces, upload_manifest
    from drtasks.model import SourceModel

    source = seeded_model.location
    loaded = SourceModel.load(client, source)
    checkpoint = loaded.select("last")
    pieces = find_pieces(client, loaded, checkpoint, seeded_model.model.custom_reward_key, source.key("metrics"))
    return source, checkpoint, upload_manifest(loaded, checkpoint, pieces, b"JOB_TYPE: 'TRAINING'\n")


def test_a_put_only_target_is_never_listed_read_or_headed(s3_server: Any, s3_server_b: Any, seeded_model: Any, bucket_b: str, proxied_target: FaultProxy) -> None:
    from drtasks.plan import plan_upload
    from drtasks.s3 import S3Location, make_client
    from drtasks.transfer import TransferConfig, apply

    client = s3_server.client()
    source, _checkpoint, manifest = last_checkpoint_manifest(client, seeded_model)
    target = S3Location(bucket_b, "uploads/models/fresh", proxied_target.endpoint_url, s3_server_b.aws_profile)
    target_client = make_client(target)
    plan = plan_upload(manifest, source, target, target_client, existing={}, put_only=True)
    checks = apply(plan, client, target_client, TransferConfig(part_size=5 * MiB))
    assert len(checks) == len(manifest) and all(check.ok for check in checks)
    assert {r.operation for r in proxied_target.requests} <= {"PutObject", "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload"}


# ---------------------------------------------------------------------------- files of this machine


def test_local_files_are_uploaded_proven_and_a_file_changed_after_planning_is_refused(tmp_path: Path, s3_server_b: Any, bucket_b: str, proxied_target: FaultProxy) -> None:
    from drtasks.manifest import LocalFile, ManifestItem
    from drtasks.plan import plan_upload
    from drtasks.s3 import S3Location, make_client
    from drtasks.transfer import TransferConfig, apply

    folder = tmp_path / "model-dir"
    (folder / "model").mkdir(parents=True)
    (folder / "model" / "big.data").write_bytes(os.urandom(11 * MiB + 3))
    (folder / "reward_function.py").write_text("def reward_function(params):\n    return 1.0\n")
    manifest = [ManifestItem(str(p.relative_to(folder)), local=LocalFile.of(p)) for p in sorted(folder.rglob("*")) if p.is_file()]
    target = S3Location(bucket_b, "from-dir", proxied_target.endpoint_url, s3_server_b.aws_profile)
    client = make_client(target)
    plan = plan_upload(manifest, folder, target, client)
    checks = apply(plan, None, client, TransferConfig(part_size=5 * MiB))
    assert all(check.ok for check in checks) and len(checks) == 2
    assert read(s3_server_b.client(), bucket_b, "from-dir/model/big.data") == (folder / "model" / "big.data").read_bytes()
    assert proxied_target.count("UploadPart") == 3  # 11 MiB in 5 MiB parts
    assert not plan_upload(manifest, folder, target, client).changes  # the same files: nothing to do

    planned = LocalFile.of(folder / "reward_function.py")
    (folder / "reward_function.py").write_text("def reward_function(params):\n    return 2.0\n")  # same size, after planning
    changed = plan_upload([ManifestItem("reward_function.py", local=planned)], folder, target.with_prefix("from-dir-2"), client)
    with pytest.raises(Exception, match="do not match the source's checksum"):
        apply(changed, None, client)
    assert listing(s3_server_b.client(), bucket_b, "from-dir-2") == {}  # nothing written for it


def test_a_download_is_proven_before_the_file_gets_its_name(tmp_path: Path, s3_server: Any, seeded_model: Any, proxied_source: FaultProxy) -> None:
    from drtasks.errors import DrtasksError
    from drtasks.manifest import SourceObject
    from drtasks.s3 import S3Location, make_client
    from drtasks.transfer import download_proven

    model = seeded_model.model
    key = model.key(f"model/model_{model.last}.pb")
    info = s3_server.client().head_object(Bucket=model.bucket, Key=key)
    source = SourceObject(model.bucket, key, info["ContentLength"], info["ETag"].strip('"'))
    location = S3Location(model.bucket, model.prefix, proxied_source.endpoint_url, s3_server.aws_profile)
    client = make_client(location)

    proxied_source.add(Rule("corrupt", op("GetObject", r"\.pb$"), times=1))
    proof = download_proven(client, location, source, tmp_path / "once" / "model.pb")
    assert (tmp_path / "once" / "model.pb").read_bytes() == read(s3_server.client(), model.bucket, key)
    assert proof.sha256 == model.sha256[key] and proof.size == source.size

    proxied_source.add(Rule("corrupt", op("GetObject", r"\.pb$")))
    with pytest.raises(DrtasksError, match="do not match the object's checksum on 3 reads"):
        download_proven(client, location, source, tmp_path / "never" / "model.pb")
    assert not (tmp_path / "never" / "model.pb").exists() and not (tmp_path / "never" / "model.pb.part").exists()


def test_a_server_side_copy_whose_source_changed_names_the_source(s3_server: Any, seeded_model: Any, upload_bucket: str) -> None:
    from drtasks.errors import DrtasksError
    from drtasks.plan import plan_upload
    from drtasks.transfer import apply

    client = s3_server.client()
    source, checkpoint, manifest = last_checkpoint_manifest(client, seeded_model)
    target = s3_server.location(upload_bucket, "copied")
    plan = plan_upload(manifest, source, target, client)
    pb = source.key(f"model/model_{checkpoint.number}.pb")
    client.put_object(Bucket=source.bucket, Key=pb, Body=b"rewritten after the plan")  # same key, other bytes
    with pytest.raises(DrtasksError) as refused:
        apply(plan, client, client)
    assert f"s3://{source.bucket}/{pb}" in refused.value.message and "changed since the plan was made" in refused.value.message
    assert not set(MARKERS) & set(listing(client, upload_bucket, "copied"))
