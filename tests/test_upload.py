"""inv upload / dr-upload-model against a real S3: exactly the race layout, planned, then written."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from drtasks.sample_model import seed_model
from tests.cli import drtasks, run
from tests.drfc import UPLOAD_PREFIX, write_env_files

PREFIX = "rl-deepracer-sagemaker"
MiB = 1024 * 1024


def objects(client: Any, bucket: str, prefix: str) -> dict[str, bytes]:
    """Relative key -> content of everything under ``prefix/``."""
    found: dict[str, bytes] = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{prefix}/"):
        for item in page.get("Contents", []):
            found[item["Key"][len(prefix) + 1 :]] = client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
    return found


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def upload_plan(stdout: str) -> dict[str, Any]:
    """The upload step's plan from the JSON a one-step chain prints."""
    chain = json.loads(stdout)
    assert chain["chain"] == ["upload"]
    return chain["steps"][0]




@pytest.fixture
def dr_dir(tmp_path: Path, s3_server: Any, model: Any, upload_bucket: str) -> Path:
    """A DRfC-like directory whose env files point at the seeded model and an empty upload bucket."""
    return write_env_files(tmp_path, s3_server, model, upload_bucket, run="DR_WORLD_NAME=2022_april_open\n")


def expected_keys(checkpoint_name: str, number: int, metrics: list[str]) -> set[str]:
    return {
        "ip/hyperparameters.json",
        *(f"metrics/{m}" for m in metrics),
        "model/.coach_checkpoint",
        f"model/{checkpoint_name}.data-00000-of-00001",
        f"model/{checkpoint_name}.index",
        f"model/{checkpoint_name}.meta",
        "model/deepracer_checkpoints.json",
        f"model/model_{number}.pb",
        "model/model_metadata.json",
        "model_metadata.json",
        "reward_function.py",
        "training_params.yaml",
    }


def source_metrics(model: Any) -> list[str]:
    folder = model.key("metrics/")
    return [key[len(folder) :] for key in model.objects if key.startswith(folder)]


def assert_race_layout(s3_server: Any, model: Any, upload_bucket: str, number: int, prefix: str = UPLOAD_PREFIX) -> dict[str, bytes]:
    client = s3_server.client()
    checkpoint = model.checkpoints[number]
    uploaded = objects(client, upload_bucket, prefix)
    assert set(uploaded) == expected_keys(checkpoint.name, number, source_metrics(model))
    assert sha(uploaded[f"model/model_{number}.pb"]) == checkpoint.pb_sha256
    assert uploaded["model/.coach_checkpoint"] == f"{checkpoint.name}\n".encode()
    index = json.loads(uploaded["model/deepracer_checkpoints.json"])
    assert index["last_checkpoint"]["name"] == index["best_checkpoint"]["name"] == checkpoint.name
    assert uploaded["model_metadata.json"] == uploaded["model/model_metadata.json"]
    assert sha(uploaded["reward_function.py"]) == model.sha256[model.reward_key]
    params = yaml.safe_load(uploaded["training_params.yaml"])
    assert params["SAGEMAKER_SHARED_S3_BUCKET"] == params["METRICS_S3_BUCKET"] == upload_bucket
    assert params["SAGEMAKER_SHARED_S3_PREFIX"] == prefix
    assert params["MODEL_METADATA_FILE_S3_KEY"] == f"{prefix}/model/model_metadata.json"
    assert params["REWARD_FILE_S3_KEY"] == f"{prefix}/reward_function.py"
    assert params["WORLD_NAME"] == "2022_april_open" and params["CAR_NAME"] == "Speedy"
    assert all(isinstance(value, str) for value in params.values())
    return uploaded


def test_upload_writes_exactly_the_last_checkpoint_in_the_race_layout(dr_dir: Path, s3_server: Any, model: Any, upload_bucket: str) -> None:
    result = drtasks("upload", "--force", dr_dir=dr_dir)
    assert result.code == 0, result.err
    assert "add" in result.out and "Plan:" in result.out and "verified" in result.out
    assert_race_layout(s3_server, model, upload_bucket, model.last)


def test_best_and_numbered_checkpoints(dr_dir: Path, s3_server: Any, model: Any, upload_bucket: str) -> None:
    assert model.best != model.last
    assert drtasks("upload", "-f", "--best", dr_dir=dr_dir).code == 0
    assert_race_layout(s3_server, model, upload_bucket, model.best)

    other = min(n for n in model.checkpoints if n not in (model.best, model.last))
    result = drtasks("upload", "-f", "-w", "-c", str(other), dr_dir=dr_dir)
    assert result.code == 0, result.err
    uploaded = assert_race_layout(s3_server, model, upload_bucket, other)
    entry = json.loads(uploaded["model/deepracer_checkpoints.json"])["last_checkpoint"]
    assert entry["time_stamp"] > 0


def test_checkpoint_policy_comes_from_the_profile_and_a_flag_overrides_it(dr_dir: Path, s3_server: Any, model: Any, upload_bucket: str) -> None:
    (dr_dir / "profiles").mkdir()
    (dr_dir / "profiles" / "bestie.yaml").write_text("checkpoint: best\n")
    assert drtasks("upload", "-f", "--profile", "bestie", dr_dir=dr_dir).code == 0
    assert_race_layout(s3_server, model, upload_bucket, model.best)
    assert drtasks("upload", "-f", "-w", "--profile", "bestie", "-c", str(model.last), dr_dir=dr_dir).code == 0
    assert_race_layout(s3_server, model, upload_bucket, model.last)


def test_an_unknown_checkpoint_number_lists_the_available_ones(dr_dir: Path, upload_bucket: str, s3_server: Any) -> None:
    result = drtasks("upload", "-f", "-c", "999", dr_dir=dr_dir)
    assert result.code != 0 and "Traceback" not in result.text
    assert "checkpoint 999 is not in" in result.err and "available: 10, 13, 16, 19" in result.err
    assert objects(s3_server.client(), upload_bucket, UPLOAD_PREFIX) == {}


def test_dry_run_shows_the_plan_and_writes_nothing(dr_dir: Path, s3_server: Any, upload_bucket: str) -> None:
    result = drtasks("upload", "--dry-run", dr_dir=dr_dir)
    assert result.code == 0, result.err
    assert "add" in result.out and "Dry run: nothing was written." in result.err
    assert objects(s3_server.client(), upload_bucket, UPLOAD_PREFIX) == {}


def test_json_plan_lists_every_key_with_action_and_sizes(dr_dir: Path, model: Any) -> None:
    result = drtasks("upload", "--dry-run", "--json", dr_dir=dr_dir)
    assert result.code == 0, result.err
    plan = upload_plan(result.out)
    assert plan["transfer"] == "server-side copy"
    assert {item["action"] for item in plan["items"]} == {"add"}
    keys = {item["key"] for item in plan["items"]}
    assert f"{UPLOAD_PREFIX}/model/model_{model.last}.pb" in keys
    assert plan["summary"]["bytes_to_move"] < plan["summary"]["bytes_copied_server_side"]
    assert [item["key"].split("/", 1)[1] for item in plan["items"]][-3:] == [
        "model/deepracer_checkpoints.json", "model/.coach_checkpoint", "model_metadata.json"
    ]


def test_re_upload_of_an_unchanged_model_skips_everything(dr_dir: Path) -> None:
    assert drtasks("upload", "-f", dr_dir=dr_dir).code == 0
    again = drtasks("upload", "--dry-run", "--json", dr_dir=dr_dir)
    plan = upload_plan(again.out)
    assert {item["action"] for item in plan["items"]} == {"unchanged"}
    assert plan["summary"]["bytes_to_move"] == plan["summary"]["bytes_copied_server_side"] == 0
    forced = drtasks("upload", "-f", dr_dir=dr_dir)
    assert forced.code == 0 and "Nothing to do" in forced.out


def test_a_changed_object_is_replaced_and_the_reason_is_given(dr_dir: Path, s3_server: Any, upload_bucket: str) -> None:
    assert drtasks("upload", "-f", dr_dir=dr_dir).code == 0
    client = s3_server.client()
    client.put_object(Bucket=upload_bucket, Key=f"{UPLOAD_PREFIX}/reward_function.py", Body=b"x")
    original = client.get_object(Bucket=upload_bucket, Key=f"{UPLOAD_PREFIX}/ip/hyperparameters.json")["Body"].read()
    client.put_object(Bucket=upload_bucket, Key=f"{UPLOAD_PREFIX}/ip/hyperparameters.json", Body=original[:-1] + b"X")
    plan = upload_plan(drtasks("upload", "--dry-run", "--json", dr_dir=dr_dir).out)
    reasons = {item["key"].split("/", 1)[1]: (item["action"], item["reason"]) for item in plan["items"] if item["action"] != "unchanged"}
    assert reasons["reward_function.py"][0] == "replace" and "size differs" in reasons["reward_function.py"][1]
    assert reasons["ip/hyperparameters.json"] == ("replace", "checksum differs")
    # Data changes: the completion markers go first and come back last, and the plan says so.
    markers = {item["key"].split("/", 1)[1] for item in plan["items"] if item.get("removed_first")}
    assert markers == {"model/deepracer_checkpoints.json", "model/.coach_checkpoint", "model_metadata.json"}
    assert all("removed before the data changes, written" in reasons[key][1] for key in markers)
    assert len(reasons) == 5


def test_wipe_deletes_only_stray_keys_under_the_upload_prefix(dr_dir: Path, s3_server: Any, model: Any, upload_bucket: str) -> None:
    client = s3_server.client()
    for key in (f"{UPLOAD_PREFIX}/model/old.pb", f"{UPLOAD_PREFIX}/stray.txt", f"{UPLOAD_PREFIX}-2/keep.txt", "race-model-10/keep.txt"):
        client.put_object(Bucket=upload_bucket, Key=key, Body=b"old")
    source_before = objects(client, model.bucket, model.prefix)

    kept = drtasks("upload", "-f", dr_dir=dr_dir)
    assert kept.code == 0 and "2 other target objects kept" in kept.out
    assert "stray.txt" in objects(client, upload_bucket, UPLOAD_PREFIX)

    result = drtasks("upload", "-f", "--wipe", dr_dir=dr_dir)
    assert result.code == 0, result.err
    assert "delete" in result.out and "stray.txt" in result.out and f"-> s3://{upload_bucket}/{UPLOAD_PREFIX} " in result.out
    assert_race_layout(s3_server, model, upload_bucket, model.last)
    assert objects(client, upload_bucket, f"{UPLOAD_PREFIX}-2") == {"keep.txt": b"old"}
    assert objects(client, upload_bucket, "race-model-10") == {"keep.txt": b"old"}
    assert objects(client, model.bucket, model.prefix) == source_before


def test_prefix_flag_sets_both_source_and_target_prefix(dr_dir: Path, s3_server: Any, model: Any, upload_bucket: str) -> None:
    other = seed_model(s3_server.client(), model.bucket, "another-model", checkpoints=(3, 5), seed=7)
    result = drtasks("upload", "-f", "-P", "another-model", dr_dir=dr_dir)
    assert result.code == 0, result.err
    assert_race_layout(s3_server, other, upload_bucket, 5, prefix="another-model")
    assert objects(s3_server.client(), upload_bucket, UPLOAD_PREFIX) == {}


def test_local_uploads_into_the_training_bucket_and_refuses_the_source_itself(dr_dir: Path, s3_server: Any, model: Any) -> None:
    result = drtasks("upload", "-f", "-L", dr_dir=dr_dir)
    assert result.code == 0, result.err
    uploaded = objects(s3_server.client(), model.bucket, UPLOAD_PREFIX)
    assert f"model/model_{model.last}.pb" in uploaded

    same = drtasks("upload", "-f", "-L", "-P", model.prefix, dr_dir=dr_dir)
    assert same.code != 0 and "is the source itself" in same.err and "Traceback" not in same.text


def test_cross_endpoint_upload_streams_between_two_servers(dr_dir: Path, s3_server: Any, s3_server_b: Any, model: Any) -> None:
    client_b = s3_server_b.client()
    client_b.create_bucket(Bucket="remote-uploads")
    with open(dr_dir / "run.env", "a") as env:
        env.write(f"DR_UPLOAD_S3_ENDPOINT_URL={s3_server_b.endpoint_url}\nDR_UPLOAD_S3_PROFILE={s3_server_b.aws_profile}\nDR_UPLOAD_S3_BUCKET=remote-uploads\n")
    plan = upload_plan(drtasks("upload", "-d", "--json", dr_dir=dr_dir).out)
    assert plan["transfer"] == "stream" and plan["summary"]["bytes_copied_server_side"] == 0
    result = drtasks("upload", "-f", dr_dir=dr_dir)
    assert result.code == 0, result.err
    assert_race_layout(s3_server_b, model, "remote-uploads", model.last)
    again = upload_plan(drtasks("upload", "-d", "--json", dr_dir=dr_dir).out)
    assert {item["action"] for item in again["items"]} == {"unchanged"}


def test_large_objects_are_streamed_in_parts_and_verified(s3_server: Any, s3_server_b: Any, bucket: str) -> None:
    """Multipart paths of the engine (streamed parts and server-side part copies) with small parts."""
    from drtasks.manifest import find_pieces, upload_manifest
    from drtasks.model import SourceModel
    from drtasks.plan import plan_upload
    from drtasks.transfer import TransferConfig, apply, verify

    client = s3_server.client()
    model = seed_model(client, bucket, "big", checkpoints=(1, 2), data_size=11 * MiB, pb_size=6 * MiB + 5)
    source = s3_server.location(bucket, "big")
    loaded = SourceModel.load(client, source)
    checkpoint = loaded.select("last")
    pieces = find_pieces(client, loaded, checkpoint, model.custom_reward_key, "big/metrics")
    manifest = upload_manifest(loaded, checkpoint, pieces, b"JOB_TYPE: 'TRAINING'\n")
    # S3's smallest part is 5 MiB: these objects go in 2 and 3 parts, copied or streamed.
    small_parts = TransferConfig(max_concurrency=4, part_size=5 * MiB, copy_threshold=5 * MiB, copy_part_size=5 * MiB)

    s3_server_b.client().create_bucket(Bucket="parts")
    for target, target_client in ((s3_server_b.location("parts", "streamed"), s3_server_b.client()), (s3_server.location(bucket, "copied"), client)):
        plan = plan_upload(manifest, source, target, target_client)
        apply(plan, client, target_client, small_parts)
        checks = verify(plan, target_client)
        assert checks and all(check.ok for check in checks), [c for c in checks if not c.ok]
        pb = target_client.get_object(Bucket=target.bucket, Key=target.key("model/model_2.pb"))["Body"].read()
        assert sha(pb) == model.checkpoints[2].pb_sha256
        replanned = plan_upload(manifest, source, target, target_client)
        assert not replanned.changes


def test_dr_upload_model_with_combined_switches_equals_inv_upload(dr_dir: Path, s3_server: Any, model: Any, upload_bucket: str) -> None:
    via_drfc = run("dr-upload-model", "-bf", dr_dir=dr_dir)
    assert via_drfc.code == 0, via_drfc.err
    first = objects(s3_server.client(), upload_bucket, UPLOAD_PREFIX)
    via_inv = upload_plan(drtasks("upload", "-b", "-f", "-d", "--json", dr_dir=dr_dir).out)
    assert {item["action"] for item in via_inv["items"]} == {"unchanged"}
    assert_race_layout(s3_server, model, upload_bucket, model.best)
    assert len(first) == len(via_inv["items"])


def test_dr_upload_model_rejects_unknown_switches_in_one_line(dr_dir: Path) -> None:
    result = run("dr-upload-model", "-x", dr_dir=dr_dir)
    assert result.code == 2 and result.err.count("\n") == 1 and "option -x not recognized" in result.err


def test_without_a_terminal_or_force_nothing_is_written(dr_dir: Path, s3_server: Any, upload_bucket: str) -> None:
    result = drtasks("upload", dr_dir=dr_dir, stdin="")
    assert result.code != 0 and "pass --force" in result.err
    assert objects(s3_server.client(), upload_bucket, UPLOAD_PREFIX) == {}


@pytest.mark.parametrize(
    "remove, named",
    [
        ("model/deepracer_checkpoints.json", "deepracer_checkpoints.json"),
        ("model/model_metadata.json", "model/model_metadata.json"),
        ("ip/hyperparameters.json", "ip/hyperparameters.json"),
        ("PB", "model/model_{last}.pb"),
        ("INDEX", ".ckpt.index"),
        ("REWARD", "reward_function.py"),
        ("METRICS", "metrics/"),
    ],
)
def test_each_missing_piece_stops_the_upload_before_anything_is_written(
    dr_dir: Path, s3_server: Any, model: Any, upload_bucket: str, remove: str, named: str
) -> None:
    client = s3_server.client()
    last = model.last_checkpoint
    keys = {
        "PB": [model.key(f"model/model_{model.last}.pb")],
        "INDEX": [model.key(f"model/{last.name}.index")],
        "REWARD": [model.custom_reward_key],
        "METRICS": [k for k in model.objects if k.startswith(model.key("metrics/"))],
    }.get(remove, [model.key(remove)])
    for key in keys:
        client.delete_object(Bucket=model.bucket, Key=key)
    result = drtasks("upload", "-f", dr_dir=dr_dir)
    assert result.code != 0 and "Traceback" not in result.text
    assert named.format(last=model.last) in result.err
    assert objects(client, upload_bucket, UPLOAD_PREFIX) == {}


def test_increment_bumps_the_prefix_in_the_file_it_came_from(dr_dir: Path) -> None:
    result = drtasks("increment", dr_dir=dr_dir)
    assert result.code == 0, result.err
    assert "DR_UPLOAD_S3_PREFIX=race-model-2\n" in (dr_dir / "run.env").read_text()
    assert "DR_UPLOAD_S3_PREFIX=race-model-1\n" in (dr_dir / "run.env.bak").read_text()
    assert run("dr-increment-upload-model", "-d", "_", dr_dir=dr_dir).code == 0
    assert "DR_UPLOAD_S3_PREFIX=race-model-2_1\n" in (dr_dir / "run.env").read_text()

    (dr_dir / "profiles").mkdir()
    (dr_dir / "profiles" / "race.yaml").write_text("description: r\nupload:\n  prefix: league-7  # the race\n")
    assert drtasks("increment", "--profile", "race", dr_dir=dr_dir).code == 0
    assert "  prefix: league-8  # the race\n" in (dr_dir / "profiles" / "race.yaml").read_text()


@pytest.mark.parametrize(
    ("profile", "bumped"),
    [
        ("upload: {prefix: league-7}\n", "upload: {prefix: league-8}\n"),  # flow style, prefix only
        ("upload: {bucket: b, prefix: 'league-7'}\n", "upload: {bucket: b, prefix: league-8}\n"),
        ('"upload":\n  "prefix": league-7\n', '"upload":\n  "prefix": league-8\n'),  # quoted keys
        ("env:\n  DR_UPLOAD_S3_PREFIX: league-7\n", "env:\n  DR_UPLOAD_S3_PREFIX: league-8\n"),
        ("upload:\n  prefix: 'm-007'\n", "upload:\n  prefix: m-008\n"),  # zero padding kept
        ("upload:\n  prefix: model\n", "upload:\n  prefix: model-1\n"),
    ],
)
def test_increment_rewrites_the_profile_value_however_it_is_written(dr_dir: Path, profile: str, bumped: str) -> None:
    (dr_dir / "profiles").mkdir()
    (dr_dir / "profiles" / "race.yaml").write_text(profile)
    result = drtasks("increment", "--profile", "race", dr_dir=dr_dir)
    assert result.code == 0, result.err
    assert (dr_dir / "profiles" / "race.yaml").read_text() == bumped
    assert (dr_dir / "profiles" / "race.yaml.bak").read_text() == profile


def test_increment_with_wipe_empties_the_new_prefix(dr_dir: Path, s3_server: Any, upload_bucket: str) -> None:
    s3_server.client().put_object(Bucket=upload_bucket, Key="race-model-2/leftover", Body=b"x")
    result = drtasks("increment", "--wipe", "--force", dr_dir=dr_dir)
    assert result.code == 0, result.err
    assert objects(s3_server.client(), upload_bucket, "race-model-2") == {}


def test_upload_with_increment_switch_uses_the_new_prefix(dr_dir: Path, s3_server: Any, model: Any, upload_bucket: str) -> None:
    result = run("dr-upload-model", "-1", "-f", dr_dir=dr_dir)
    assert result.code == 0, result.err
    assert_race_layout(s3_server, model, upload_bucket, model.last, prefix="race-model-2")


def test_a_frozen_graph_that_disagrees_with_the_metadata_stops_the_upload_naming_both(dr_dir: Path, s3_server: Any, model: Any, upload_bucket: str) -> None:
    from drtasks.sample_model import model_metadata

    client = s3_server.client()
    client.put_object(Bucket=model.bucket, Key=model.key("model/model_metadata.json"), Body=json.dumps(model_metadata(actions=6)).encode())
    for command in (("upload", "-f"), ("upload", "--dry-run")):
        result = drtasks(*command, dr_dir=dr_dir)
        assert result.code != 0 and "Traceback" not in result.text
        assert result.err.count("\n") == 1 and f"model_metadata.json lists 6 actions, model_{model.last}.pb's policy has 15" in result.err
    assert objects(client, upload_bucket, UPLOAD_PREFIX) == {}


def test_random_bytes_where_the_frozen_graph_should_be_stop_the_upload(dr_dir: Path, s3_server: Any, model: Any, upload_bucket: str) -> None:
    from drtasks.sample_model import pseudo_random_bytes

    client = s3_server.client()
    client.put_object(Bucket=model.bucket, Key=model.key(f"model/model_{model.last}.pb"), Body=pseudo_random_bytes(1, "fake", 300_000))
    result = drtasks("upload", "-f", dr_dir=dr_dir)
    assert result.code != 0 and f"model_{model.last}.pb is not a TensorFlow frozen graph" in result.err
    assert objects(client, upload_bucket, UPLOAD_PREFIX) == {}
    assert drtasks("upload", "-f", "--best", dr_dir=dr_dir).code == 0  # another checkpoint's graph is fine
