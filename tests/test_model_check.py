"""drtasks reads a frozen graph without TensorFlow and refuses a model whose graph and metadata disagree."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from drtasks.errors import DrtasksError
from drtasks.graph import read_graph
from drtasks.model_check import check_checkpoint_model, check_model, model_spec
from drtasks.sample_graph import sample_frozen_graph
from drtasks.sample_model import model_metadata, seed_model


def graph_of(real_models: Any, variant: str) -> tuple[bytes, dict[str, Any], str]:
    real = real_models.model(variant)
    return real.frozen_graph(real.last).read_bytes(), real.metadata, f"model_{real.last}.pb"


def check(metadata: dict[str, Any], graph: bytes, name: str, *, for_car: bool = True) -> Any:
    return check_model(json.dumps(metadata).encode(), graph, graph_name=name, for_car=for_car)


# -- the graph, read without TensorFlow ----------------------------------------------------


def test_a_real_frozen_graph_is_read_with_its_input_and_policy_width(real_models: Any) -> None:
    graph, metadata, name = graph_of(real_models, "camera")

    read = read_graph(graph, name)

    assert read.placeholders == {"main_level/agent/main/online/network_0/FRONT_FACING_CAMERA/FRONT_FACING_CAMERA": (-1, 120, 160, 1)}
    assert read.output_width("main_level/agent/main/online/network_1/ppo_head_0/policy") == 6
    assert read.nodes["main_level/agent/main/online/network_1/ppo_head_0/policy"].op == "Softmax"


@pytest.mark.parametrize("variant", ["camera", "stereo-lidar", "camera-sector-lidar", "continuous", "sac", "legacy-observation"])
def test_every_real_variant_passes_the_check_with_its_own_metadata(real_models: Any, variant: str) -> None:
    graph, metadata, name = graph_of(real_models, variant)

    spec = check(metadata, graph, name)

    assert spec.outputs == (len(metadata["action_space"]) if isinstance(metadata["action_space"], list) else 2)
    assert set(spec.sensors) == set(metadata["sensor"])


@pytest.mark.parametrize("data", [os.urandom(200_000), b"", b"not a graph at all"])
def test_bytes_that_are_not_a_frozen_graph_are_refused(data: bytes) -> None:
    with pytest.raises(DrtasksError, match=r"^model_13\.pb is not a TensorFlow frozen graph"):
        check(model_metadata(), data, "model_13.pb")


# -- metadata and graph disagree: one line naming both sides -------------------------------------


def test_more_actions_in_the_metadata_than_in_the_policy(real_models: Any) -> None:
    graph, metadata, name = graph_of(real_models, "stereo-lidar")  # a 5-action policy
    six = model_metadata(metadata["sensor"], actions=6)

    with pytest.raises(DrtasksError) as refused:
        check(six, graph, name)

    assert refused.value.message == f"model_metadata.json lists 6 actions, {name}'s policy has 5"


def test_fewer_actions_in_the_metadata_than_in_the_policy(real_models: Any) -> None:
    graph, _, name = graph_of(real_models, "camera")  # a 6-action policy

    with pytest.raises(DrtasksError, match=rf"^model_metadata.json lists 5 actions, {name}'s policy has 6$"):
        check(model_metadata(actions=5), graph, name)


def test_a_continuous_space_against_a_discrete_policy(real_models: Any) -> None:
    graph, _, name = graph_of(real_models, "camera")

    with pytest.raises(DrtasksError, match=r"continuous action space \(2 values: steering angle and speed\), model_16.pb's policy has 6"):
        check(model_metadata(continuous=True), graph, name)


@pytest.mark.parametrize(
    "variant, sensors, message",
    [
        ("camera", ["STEREO_CAMERAS"], "lists sensors STEREO_CAMERAS, {name} has no input for STEREO_CAMERAS (its inputs: FRONT_FACING_CAMERA)"),
        ("camera", ["FRONT_FACING_CAMERA", "LIDAR"], "has no input for LIDAR (its inputs: FRONT_FACING_CAMERA)"),
        ("camera-sector-lidar", ["FRONT_FACING_CAMERA"], "{name} also needs input SECTOR_LIDAR, which model_metadata.json does not list"),
        ("stereo-lidar", ["STEREO_CAMERAS", "SECTOR_LIDAR"], "has no input for SECTOR_LIDAR (its inputs: LIDAR, STEREO_CAMERAS)"),
    ],
)
def test_a_sensor_the_graph_has_no_input_for_or_an_input_the_metadata_lacks(real_models: Any, variant: str, sensors: list[str], message: str) -> None:
    graph, metadata, name = graph_of(real_models, variant)
    wrong = {**metadata, "sensor": sensors}

    with pytest.raises(DrtasksError) as refused:
        check(wrong, graph, name)

    assert message.format(name=name) in refused.value.message


def test_a_sector_lidar_with_other_sectors_than_the_graph_is_refused(real_models: Any) -> None:
    graph, metadata, name = graph_of(real_models, "camera-sector-lidar")

    with pytest.raises(DrtasksError, match=rf"model_metadata.json's SECTOR_LIDAR input has shape 16, {name}'s has 8"):
        check({**metadata, "lidar_config": {"num_sectors": 16}}, graph, name)


def test_an_algorithm_other_than_the_graphs_is_named(real_models: Any) -> None:
    graph, _, name = graph_of(real_models, "continuous")  # a clipped PPO policy

    with pytest.raises(DrtasksError, match=rf"says training_algorithm sac, {name} holds a clipped_ppo policy"):
        check(model_metadata(continuous=True, algorithm="sac"), graph, name)


# -- metadata the car cannot load -------------------------------------------------------------


@pytest.mark.parametrize(
    "change, message",
    [
        ({"training_algorithm": "dqn"}, "training_algorithm 'dqn' is neither clipped_ppo nor sac"),
        ({"sensor": ["THERMAL"]}, "sensor 'THERMAL' is not one the car loads"),
        ({"sensor": ["FRONT_FACING_CAMERA", "DISCRETIZED_SECTOR_LIDAR"]}, "sensor 'DISCRETIZED_SECTOR_LIDAR' is not one the car loads"),
        ({"sensor": ["LIDAR"]}, "need exactly one camera"),
        ({"sensor": ["FRONT_FACING_CAMERA", "LIDAR", "SECTOR_LIDAR"]}, "more than one lidar"),
        ({"action_space_type": "hybrid"}, "action_space_type 'hybrid' is neither discrete nor continuous"),
        ({"action_space_type": "continuous"}, "action_space_type is continuous, but action_space is a list of actions"),
    ],
)
def test_metadata_the_car_does_not_load_is_refused_before_the_graph_is_read(change: dict[str, Any], message: str) -> None:
    with pytest.raises(DrtasksError, match=f"^model_metadata.json: .*{message}"):
        check({**model_metadata(), **change}, b"never read", "model_13.pb")


@pytest.mark.parametrize(
    "ranges, message",
    [
        ({"steering_angle": {"low": -30, "high": 30}, "speed": {"low": 1.0, "high": 1.0}}, "the continuous speed range needs high above low, it has low 1 and high 1"),
        ({"steering_angle": {"low": 30, "high": -30}, "speed": {"low": 1, "high": 4}}, "the continuous steering_angle range needs high above low"),
        ({"steering_angle": {"low": -30}, "speed": {"low": 1, "high": 4}}, "steering_angle needs numeric 'low' and 'high'"),
    ],
)
def test_a_continuous_range_whose_high_is_not_above_its_low_is_refused(ranges: dict[str, Any], message: str) -> None:
    metadata = {**model_metadata(continuous=True), "action_space": ranges}

    with pytest.raises(DrtasksError, match=message):
        check(metadata, b"never read", "model_13.pb")


def test_the_simulator_trains_a_sensor_the_car_cannot_feed() -> None:
    metadata = {**model_metadata(), "sensor": ["FRONT_FACING_CAMERA", "DISCRETIZED_SECTOR_LIDAR"]}

    assert model_spec(metadata, for_car=False).sensors == ("FRONT_FACING_CAMERA", "DISCRETIZED_SECTOR_LIDAR")
    with pytest.raises(DrtasksError, match="not one the car loads"):
        model_spec(metadata, for_car=True)


def test_sac_with_a_discrete_space_is_refused() -> None:
    with pytest.raises(DrtasksError, match="training_algorithm sac needs a continuous action space"):
        model_spec({**model_metadata(), "training_algorithm": "sac"})


def test_metadata_without_sensors_or_before_version_2_is_a_single_camera_model() -> None:
    legacy = {k: v for k, v in model_metadata().items() if k not in ("sensor", "version")}

    assert model_spec(legacy).sensors == ("observation",)
    assert model_spec({**model_metadata(), "version": "1"}).sensors == ("observation",)


# -- the sample graphs drtasks seeds without TensorFlow are real graphs too -------------------------


@pytest.mark.parametrize("variant", ["camera", "stereo-lidar", "camera-sector-lidar", "continuous", "sac", "legacy-observation"])
def test_sample_graphs_pass_the_check_and_the_cars_converter(variant: str) -> None:
    from tests.consumers import car_inference
    from tests.real_models import VARIANTS

    metadata = VARIANTS[variant].metadata
    graph = sample_frozen_graph(metadata, 300_000, seed=1)

    assert check(metadata, graph, "model_1.pb").outputs == len(car_inference(graph, metadata))
    other_sensors = ["STEREO_CAMERAS"] if "STEREO_CAMERAS" not in metadata["sensor"] else ["FRONT_FACING_CAMERA"]
    with pytest.raises(DrtasksError, match="has no input for"):
        check({**metadata, "sensor": other_sensors}, graph, "model_1.pb")


@pytest.mark.parametrize("size", [128 * 1024, 3 * 1024 * 1024, 22 * 1024 * 1024])
def test_sample_graphs_come_near_the_requested_size(size: int) -> None:
    graph = sample_frozen_graph(model_metadata(), size)

    assert 0.9 * size < len(graph) < 1.15 * size


# -- a checkpoint in S3: checked once, remembered by ETag and size ------------------------------------


def counting_gets(client: Any) -> list[str]:
    keys: list[str] = []
    client.meta.events.register("before-parameter-build.s3.GetObject", lambda params, **_: keys.append(params["Key"]))
    return keys


def test_a_checked_checkpoint_is_not_read_again_until_it_changes(s3_server: Any, bucket: str) -> None:
    from drtasks.model import SourceModel

    client = s3_server.client()
    seeded = seed_model(client, bucket, "m", checkpoints=(1, 2))
    location = s3_server.location(bucket, "m")
    reads = counting_gets(client)

    model = SourceModel.load(client, location)
    check_checkpoint_model(client, model, model.select("last"))
    first = [key for key in reads if not key.endswith("deepracer_checkpoints.json")]
    assert sorted(first) == ["m/model/model_2.pb", "m/model/model_metadata.json"]

    reads.clear()
    model = SourceModel.load(client, location)
    check_checkpoint_model(client, model, model.select("last"))
    assert [key for key in reads if key.endswith((".pb", "model_metadata.json"))] == []

    client.put_object(Bucket=bucket, Key="m/model/model_metadata.json", Body=json.dumps(model_metadata(actions=4)).encode())
    model = SourceModel.load(client, location)
    with pytest.raises(DrtasksError, match=f"lists 4 actions, model_{seeded.last}.pb's policy has 15"):
        check_checkpoint_model(client, model, model.select("last"))
    reads.clear()
    with pytest.raises(DrtasksError, match="lists 4 actions"):  # the refusal is remembered too
        check_checkpoint_model(client, model, model.select("last"))
    assert [key for key in reads if key.endswith((".pb", "model_metadata.json"))] == []


def test_a_graph_in_a_file_is_checked_without_reading_its_weights(tmp_path: Any) -> None:
    import tracemalloc
    from pathlib import Path

    metadata = model_metadata()
    data = sample_frozen_graph(metadata, 24_000_000)
    path = Path(tmp_path) / "model_7.pb"
    path.write_bytes(data)
    expected = read_graph(data, "model_7.pb")
    del data
    tracemalloc.start()
    try:
        found = read_graph(path, "model_7.pb")
        spec = check_model(json.dumps(metadata).encode(), path, graph_name="model_7.pb")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert found == expected and spec.outputs == len(metadata["action_space"])
    assert peak < 2_000_000  # the graph's 24 MB of weights were skipped, never read


def test_a_graph_file_cut_short_or_garbled_is_refused_in_one_line(tmp_path: Any) -> None:
    from pathlib import Path

    data = sample_frozen_graph(model_metadata(), 200_000)
    for name, content in (("cut.pb", data[: len(data) // 2]), ("garbled.pb", b"\xff" * 64 + data[64:])):
        path = Path(tmp_path) / name
        path.write_bytes(content)
        with pytest.raises(DrtasksError, match=rf"^{name} is not a TensorFlow frozen graph"):
            read_graph(path, name)
