"""The seeded model has the layout of a DRfC-trained model in its training bucket."""

from __future__ import annotations

import hashlib
import json
import re

import yaml

from drtasks import s3
from drtasks.sample_model import seed_model


def _read(client, bucket: str, key: str) -> bytes:
    return client.get_object(Bucket=bucket, Key=key)["Body"].read()


def test_layout_matches_a_trained_model(s3_server, seeded_model):
    model, location = seeded_model
    client = s3_server.client()
    listed = {o.key: o.size for o in s3.list_objects(client, location.bucket, location.prefix)}
    relative = {location.relative(key) for key in listed}

    expected = {
        "model/deepracer_checkpoints.json",
        "model/.coach_checkpoint",
        "model/checkpoint",
        "model/model_metadata.json",
        "ip/hyperparameters.json",
        "ip/ip.json",
        "ip/done",
        "metrics/TrainingMetrics.json",
        "training_params.yaml",
        "training-simtrace/0-iteration.csv",
        "training-simtrace/1-iteration.csv",
        "training-simtrace/2-iteration.csv",
    }
    for name in ("10_Step-", "13_Step-", "16_Step-", "19_Step-"):
        files = sorted(r for r in relative if r.startswith(f"model/{name}"))
        assert [f.rsplit(".", 1)[1] for f in files] == ["data-00000-of-00001", "index", "meta"]
        assert all(re.fullmatch(r"model/\d+_Step-\d+\.ckpt\.[\w-]+", f) for f in files)
    assert expected | {f"model/model_{n}.pb" for n in (10, 13, 16, 19)} <= relative
    assert listed == {k: v for k, v in model.objects.items() if k.startswith(f"{location.prefix}/")}


def test_best_and_last_checkpoints_differ_and_are_recorded(s3_server, seeded_model):
    model, location = seeded_model
    client = s3_server.client()
    pointers = json.loads(_read(client, location.bucket, location.key("model/deepracer_checkpoints.json")))

    assert model.best == 13 and model.last == 19
    # The simapp records the mean evaluation progress of each; best is the highest of any iteration.
    assert pointers["best_checkpoint"]["avg_eval_metric"] == 99.2 and pointers["last_checkpoint"]["avg_eval_metric"] == 87.6
    means = {n: sum(e["completion_percentage"] for e in entries) / len(entries) for n, entries in model.evaluations.items()}
    assert sorted(means) == list(range(0, 20)) and max(means, key=means.__getitem__) == 13
    assert pointers["best_checkpoint"]["name"] == model.best_checkpoint.name
    assert pointers["last_checkpoint"]["name"] == model.last_checkpoint.name
    assert pointers["best_checkpoint"]["name"].startswith("13_Step-")
    assert {"avg_eval_metric", "time_stamp"} <= set(pointers["last_checkpoint"])
    coach = _read(client, location.bucket, location.key("model/.coach_checkpoint")).decode()
    assert coach.strip() == model.last_checkpoint.name


def test_frozen_graph_hashes_are_those_of_the_stored_files(s3_server, seeded_model):
    model, location = seeded_model
    client = s3_server.client()

    for number, checkpoint in model.checkpoints.items():
        body = _read(client, location.bucket, location.key(f"model/model_{number}.pb"))
        assert hashlib.sha256(body).hexdigest() == checkpoint.pb_sha256 == model.pb_sha256[number]
    assert len(set(model.pb_sha256.values())) == len(model.checkpoints)


def test_text_files_are_what_the_simapp_and_drfc_write(s3_server, seeded_model):
    model, location = seeded_model
    client = s3_server.client()

    metadata = json.loads(_read(client, location.bucket, location.key("model/model_metadata.json")))
    assert metadata["action_space_type"] == "discrete" and len(metadata["action_space"]) > 1
    assert json.loads(_read(client, location.bucket, location.key("ip/hyperparameters.json")))["batch_size"] == 64
    params = yaml.safe_load(_read(client, location.bucket, location.key("training_params.yaml")))
    assert params["SAGEMAKER_SHARED_S3_PREFIX"] == location.prefix
    assert all(isinstance(v, str) for v in params.values())
    metrics = json.loads(_read(client, location.bucket, location.key("metrics/TrainingMetrics.json")))
    assert {"training", "evaluation"} <= {m["phase"] for m in metrics["metrics"]}
    header = _read(client, location.bucket, location.key("training-simtrace/0-iteration.csv")).split(b"\n")[0]
    assert header.startswith(b"episode,steps,X,Y,yaw,steer,throttle,action,reward,done")


def test_reward_function_and_custom_files_live_beside_the_model(s3_server, seeded_model):
    model, location = seeded_model
    client = s3_server.client()

    assert model.reward_key == "custom_files/reward_function.py"
    assert b"def reward_function(params)" in _read(client, location.bucket, model.reward_key)
    for name in ("model_metadata.json", "hyperparameters.json"):
        assert _read(client, location.bucket, f"custom_files/{name}")


def test_reward_at_root_takes_the_model_prefix_and_differs(s3_server, bucket):
    client = s3_server.client()

    model = seed_model(client, bucket, "other-model", reward_at_root=True, checkpoints=(3, 4))

    root = _read(client, bucket, "other-model/reward_function.py")
    assert model.reward_key == "other-model/reward_function.py"
    assert root != _read(client, bucket, model.custom_reward_key)
    assert (model.best, model.last) == (4, 4) or model.best != model.last


def test_seeding_is_deterministic_per_seed(s3_server, bucket):
    client = s3_server.client()

    one = seed_model(client, bucket, "m1", seed=7, with_metrics=False, simtrace_iterations=0)
    two = seed_model(client, bucket, "m2", seed=7, with_metrics=False, simtrace_iterations=0)
    other = seed_model(client, bucket, "m3", seed=8, with_metrics=False, simtrace_iterations=0)

    assert one.pb_sha256 == two.pb_sha256
    assert one.pb_sha256 != other.pb_sha256
    assert not any("/metrics/" in k or "simtrace" in k for k in one.objects)


def test_multi_worker_models_have_one_params_and_metrics_file_per_worker(s3_server, bucket):
    model = seed_model(s3_server.client(), bucket, "multi", workers=2, markers=(".ready",))
    relative = {k.removeprefix("multi/") for k in model.objects}

    assert {"training_params_1.yaml", "training_params_2.yaml"} <= relative
    # The simapp: worker 0 writes TrainingMetrics.json, worker n > 0 TrainingMetrics_<n>.json.
    assert {k for k in relative if k.startswith("metrics/")} == {"metrics/TrainingMetrics.json", "metrics/TrainingMetrics_1.json"}
    assert "training_params.yaml" not in relative and "model/.ready" in relative
