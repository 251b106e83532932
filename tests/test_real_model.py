"""The real model generator writes what DeepRacer's own programs load, in seconds."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pytest

from drtasks.model_check import input_node, input_shape
from drtasks.real_model import design, write_real_model
from drtasks.sample_model import model_metadata
from tests.consumers import car_inference, expected_outputs, policy_head_width, restore_policy
from tests.real_models import VARIANTS

MB = 1000 * 1000


def test_the_camera_model_has_the_real_names_shapes_and_sizes(real_models: Any) -> None:
    real = real_models.model("camera")
    files = {path.name: path.stat().st_size for path in real.model_dir.iterdir()}

    assert real.best != real.last and len(real.checkpoints) == 3
    for number, name in real.checkpoints.items():
        assert re.fullmatch(rf"{number}_Step-\d+\.ckpt", name)
        assert abs(files[f"{name}.data-00000-of-00001"] / MB - 46.7) < 0.5  # the simapp's ~46.7 MB
        assert 0.5 < files[f"{name}.index"] / 1000 < 2
        assert abs(files[f"model_{number}.pb"] / MB - 23.4) < 0.5  # the frozen graph's ~23.4 MB
    graphs = {real.frozen_graph(n).read_bytes() for n in real.checkpoints}
    assert len(graphs) == 3  # every checkpoint has its own weights

    import tensorflow as tf

    shapes = tf.train.load_checkpoint(str(real.checkpoint_prefix(real.best))).get_variable_to_shape_map()
    online = {name.split("online/", 1)[1]: shape for name, shape in shapes.items() if "/online/" in name}
    assert len(online) == 20
    for network in ("network_0", "network_1"):
        assert online[f"{network}/FRONT_FACING_CAMERA/Conv2d_0/kernel"] == [8, 8, 1, 32]
        assert online[f"{network}/FRONT_FACING_CAMERA/Conv2d_2/kernel"] == [4, 4, 32, 64]
        assert online[f"{network}/FRONT_FACING_CAMERA/Conv2d_4/kernel"] == [3, 3, 64, 64]
        assert online[f"{network}/middleware_fc_embedder/Dense_0/kernel"] == [11264, 512]
    assert online["network_0/v_values_head_0/output/kernel"] == [512, 1]
    assert online["network_1/ppo_head_0/policy_fc/kernel"] == [512, 6]


def test_the_model_folder_names_best_and_last_as_the_simapp_does(real_models: Any) -> None:
    real = real_models.model("camera")
    index = json.loads((real.model_dir / "deepracer_checkpoints.json").read_text())

    assert index["best_checkpoint"]["name"] == real.checkpoints[real.best]
    assert index["last_checkpoint"]["name"] == real.checkpoints[real.last]
    assert (real.model_dir / ".coach_checkpoint").read_text() == f"{real.checkpoints[real.last]}\n"
    assert json.loads((real.model_dir / "model_metadata.json").read_text()) == real.metadata


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_variant_restores_in_tensorflow_and_converts_for_the_car(real_models: Any, variant: str) -> None:
    real = real_models.model(variant)
    metadata = real.metadata
    number = real.last

    outputs = restore_policy(real.checkpoint_prefix(number), metadata)
    assert policy_head_width(real.checkpoint_prefix(number), metadata) == expected_outputs(metadata) == len(outputs)
    on_car = car_inference(real.frozen_graph(number), metadata)
    assert on_car == pytest.approx(outputs, rel=2e-2, abs=1e-3)  # TF and the car's OpenVINO agree
    if metadata["action_space_type"] == "discrete":
        assert sum(on_car) == pytest.approx(1.0, abs=1e-4)


def test_placeholders_are_where_the_car_feeds_them() -> None:
    assert input_node("FRONT_FACING_CAMERA") == "main_level/agent/main/online/network_0/FRONT_FACING_CAMERA/FRONT_FACING_CAMERA"
    assert input_node("STEREO_CAMERAS", "sac") == "main_level/agent/policy/online/network_0/STEREO_CAMERAS/STEREO_CAMERAS"
    assert input_shape("FRONT_FACING_CAMERA") == [1, 120, 160, 1]
    assert input_shape("STEREO_CAMERAS") == [1, 120, 160, 2]
    assert input_shape("LIDAR") == [1, 64] and input_shape("SECTOR_LIDAR") == [1, 8]


@pytest.mark.parametrize(
    "metadata, refused",
    [
        ({**model_metadata(), "sensor": ["THERMAL_CAMERA"]}, "THERMAL_CAMERA"),
        ({**model_metadata(), "sensor": ["FRONT_FACING_CAMERA", "STEREO_CAMERAS"]}, "exactly one camera"),
        (model_metadata(algorithm="sac"), "continuous"),
        ({**model_metadata(), "training_algorithm": "dqn"}, "dqn"),
        ({**model_metadata(), "neural_network": "DEEP_CONVOLUTIONAL_NETWORK_DEEP"}, "DEEP_CONVOLUTIONAL_NETWORK_DEEP"),
    ],
)
def test_metadata_the_generator_cannot_build_is_refused_by_name(metadata: dict[str, Any], refused: str) -> None:
    with pytest.raises(ValueError, match=refused):
        design(metadata)


def test_generation_is_seconds_and_deterministic_per_seed(tmp_path: Path, real_models: Any) -> None:
    real_models.model("camera")  # TensorFlow is loaded: time the generation alone
    metadata = model_metadata(actions=4)
    began = time.perf_counter()
    one = write_real_model(tmp_path / "one", metadata, checkpoints=(1, 2), seed=3)
    elapsed = time.perf_counter() - began
    two = write_real_model(tmp_path / "two", metadata, checkpoints=(1, 2), seed=3)
    other = write_real_model(tmp_path / "other", metadata, checkpoints=(1, 2), seed=4)

    assert elapsed < 30  # about 1 s per checkpoint here; generous for a shared CI machine
    assert one.frozen_graph(2).read_bytes() == two.frozen_graph(2).read_bytes()
    assert one.frozen_graph(2).read_bytes() != other.frozen_graph(2).read_bytes()


def test_a_real_model_seeds_into_s3_with_the_trained_model_layout(real_source: Any, s3_server: Any) -> None:
    seeded, real, location = real_source
    listed = {o["Key"][len(location.prefix) + 1:]: o["Size"] for o in s3_server.client().list_objects_v2(Bucket=location.bucket, Prefix=location.prefix + "/")["Contents"]}

    for number, name in real.checkpoints.items():
        assert listed[f"model/{name}.data-00000-of-00001"] == real.sizes[f"model/{name}.data-00000-of-00001"]
        assert listed[f"model/model_{number}.pb"] == real.sizes[f"model/model_{number}.pb"]
    assert (seeded.best, seeded.last) == (real.best, real.last)
    assert {"model/deepracer_checkpoints.json", "model/.coach_checkpoint", "ip/hyperparameters.json", "training_params.yaml"} <= set(listed)
    metadata = s3_server.client().get_object(Bucket=location.bucket, Key=location.key("model/model_metadata.json"))["Body"].read()
    assert json.loads(metadata) == real.metadata
