"""Check a model before drtasks writes it anywhere: its metadata and its frozen graph agree.

What the consumers rely on (../shared/reference/deepracer-facts.md sections 6 and 9):

- ``model_metadata.json`` is one they load: known sensors (exactly one camera, at most one lidar),
  ``training_algorithm`` clipped_ppo or sac, a discrete action list or continuous ranges whose
  high is above their low. The car knows fewer sensors than the simulator
  (no DISCRETIZED_SECTOR_LIDAR), so car archives are held to the car's list.
- the frozen graph ``model_N.pb`` has one input placeholder per listed sensor, where the car
  feeds it (``main_level/agent/<main|policy>/online/network_0/<S>/<S>``, of the car's shape), and
  the policy output of the algorithm whose width is the number of actions (steering and speed for
  a continuous space).

Any disagreement is one line naming both sides, e.g. "model_metadata.json lists 6 actions,
model_13.pb's policy has 5". No TensorFlow: the graph is read by ``drtasks.graph``.

``check_checkpoint_model`` checks a checkpoint in S3 and remembers the verdict under drtasks'
cache directory, keyed by the objects' ETags and sizes, so an unchanged model is not read again.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from drtasks.errors import DrtasksError

CAMERA_SENSORS = ("observation", "FRONT_FACING_CAMERA", "LEFT_CAMERA", "STEREO_CAMERAS")
CAR_LIDARS = ("LIDAR", "SECTOR_LIDAR")
CAR_SENSORS = CAMERA_SENSORS + CAR_LIDARS
# The simulator also trains with a discretized sector lidar, which the car cannot feed.
SIMULATOR_SENSORS = CAR_SENSORS + ("DISCRETIZED_SECTOR_LIDAR",)
ALGORITHMS = ("clipped_ppo", "sac")
# The network scope that holds the inputs and the policy, per algorithm.
HEADS = {"clipped_ppo": "main", "sac": "policy"}
POLICY_OUTPUTS = {
    "clipped_ppo": "main_level/agent/main/online/network_1/ppo_head_0/policy",
    "sac": "main_level/agent/policy/online/network_0/sac_policy_head_0/policy",
}
IMAGE_HEIGHT, IMAGE_WIDTH = 120, 160
LIDAR_SAMPLES = 64  # LIDAR's input is always 64 readings
SECTOR_LIDAR_DEFAULT_SECTORS = 8
METADATA_KEY = "model/model_metadata.json"
RULES_VERSION = "1"  # part of every cached verdict's key: a change of the rules re-checks


def input_node(sensor: str, algorithm: str = "clipped_ppo") -> str:
    """The placeholder fed with ``sensor`` (without ``:0``)."""
    return f"main_level/agent/{HEADS[algorithm]}/online/network_0/{sensor}/{sensor}"


def input_shape(sensor: str, metadata: dict[str, Any] | None = None) -> list[int] | None:
    """The car's input shape for ``sensor`` with a batch of 1; None when no fixed shape is known."""
    if sensor in CAMERA_SENSORS:
        return [1, IMAGE_HEIGHT, IMAGE_WIDTH, 2 if sensor == "STEREO_CAMERAS" else 1]
    if sensor == "LIDAR":
        return [1, LIDAR_SAMPLES]
    if sensor == "SECTOR_LIDAR":
        config = (metadata or {}).get("lidar_config")
        sectors = config.get("num_sectors") if isinstance(config, dict) else None
        return [1, int(sectors) if isinstance(sectors, (int, float)) and sectors > 0 else SECTOR_LIDAR_DEFAULT_SECTORS]
    return None


@dataclass(frozen=True)
class ModelSpec:
    """What ``model_metadata.json`` promises about the network."""

    sensors: tuple[str, ...]
    algorithm: str
    continuous: bool
    outputs: int  # the policy's width: the number of actions, or 2 (steering, speed) when continuous
    metadata: dict[str, Any]

    @property
    def policy_output(self) -> str:
        return POLICY_OUTPUTS[self.algorithm]

    def input_node(self, sensor: str) -> str:
        return input_node(sensor, self.algorithm)

    def input_shape(self, sensor: str) -> list[int] | None:
        return input_shape(sensor, self.metadata)

    def describe_actions(self) -> str:
        if self.continuous:
            return "a continuous action space (2 values: steering angle and speed)"
        return f"{self.outputs} action{'s' if self.outputs != 1 else ''}"


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def read_metadata(data: bytes, source: str = "model_metadata.json") -> dict[str, Any]:
    """Parse ``model_metadata.json``: a JSON object with an action space of the right shape."""
    try:
        metadata = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise DrtasksError(f"{source}: not UTF-8 text") from None
    except json.JSONDecodeError as err:
        raise DrtasksError(f"{source}: invalid JSON at line {err.lineno} column {err.colno}: {err.msg}") from None
    if not isinstance(metadata, dict):
        raise DrtasksError(f"{source}: expected a JSON object, found {type(metadata).__name__}")
    check_action_space(metadata, source)
    return metadata


def check_action_space(metadata: dict[str, Any], source: str = "model_metadata.json") -> None:
    """A list of actions with steering angle and speed each, or an object of the two ranges."""
    if "action_space" not in metadata:
        raise DrtasksError(f"{source}: no 'action_space'; the car cannot drive without one")
    space = metadata["action_space"]
    if isinstance(space, list):
        if not space:
            raise DrtasksError(f"{source}: 'action_space' is an empty list")
        for index, action in enumerate(space):
            if not isinstance(action, dict) or "speed" not in action or "steering_angle" not in action:
                raise DrtasksError(f"{source}: action_space[{index}] needs 'speed' and 'steering_angle'")
    elif isinstance(space, dict):
        missing = [key for key in ("speed", "steering_angle") if key not in space]
        if missing:
            raise DrtasksError(f"{source}: continuous 'action_space' lacks {', '.join(repr(m) for m in missing)}")
    else:
        raise DrtasksError(
            f"{source}: 'action_space' must be a list (discrete) or an object (continuous), found {type(space).__name__}"
        )


def model_spec(metadata: dict[str, Any], source: str = "model_metadata.json", *, for_car: bool = True) -> ModelSpec:
    """Check ``metadata`` the way the car (``for_car``) or the simulator loads it; what it promises."""
    check_action_space(metadata, source)
    if "sensor" in metadata and not (isinstance(metadata["sensor"], list) and metadata["sensor"] and all(isinstance(s, str) for s in metadata["sensor"])):
        raise DrtasksError(f"{source}: 'sensor' must be a non-empty list of sensor names")
    version = _number(_as_float(metadata.get("version")))
    legacy = version is not None and version < 2
    sensors = ("observation",) if legacy or "sensor" not in metadata else tuple(metadata["sensor"])
    allowed = CAR_SENSORS if for_car else SIMULATOR_SENSORS
    for sensor in sensors:
        if sensor not in allowed:
            who = "the car loads" if for_car else "DeepRacer trains with"
            raise DrtasksError(f"{source}: sensor {sensor!r} is not one {who} ({', '.join(allowed)})")
    if sum(sensor in CAMERA_SENSORS for sensor in sensors) != 1:
        raise DrtasksError(f"{source}: sensors {', '.join(sensors)} need exactly one camera ({', '.join(CAMERA_SENSORS)})")
    if sum(sensor not in CAMERA_SENSORS for sensor in sensors) > 1:
        raise DrtasksError(f"{source}: sensors {', '.join(sensors)} hold more than one lidar")

    algorithm = metadata.get("training_algorithm", "clipped_ppo")
    if not isinstance(algorithm, str) or algorithm.lower().strip() not in ALGORITHMS:
        raise DrtasksError(f"{source}: training_algorithm {algorithm!r} is neither clipped_ppo nor sac")
    algorithm = algorithm.lower().strip()
    space = metadata["action_space"]
    kind = metadata.get("action_space_type", "discrete")
    if not isinstance(kind, str) or kind.lower().strip() not in ("discrete", "continuous"):
        raise DrtasksError(f"{source}: action_space_type {kind!r} is neither discrete nor continuous")
    continuous = kind.lower().strip() == "continuous"
    if continuous != isinstance(space, dict):
        shape = "an object of ranges" if isinstance(space, dict) else "a list of actions"
        raise DrtasksError(f"{source}: action_space_type is {kind}, but action_space is {shape}")
    if continuous:
        for name in ("steering_angle", "speed"):
            _check_range(space[name], name, source)
    elif algorithm == "sac":
        raise DrtasksError(f"{source}: training_algorithm sac needs a continuous action space, this one is discrete")
    return ModelSpec(sensors, algorithm, continuous, 2 if continuous else len(space), metadata)


def _as_float(value: Any) -> Any:
    try:
        return float(value) if isinstance(value, str) else value
    except ValueError:
        return None


def _check_range(bounds: Any, name: str, source: str) -> None:
    low, high = (_number(bounds.get(key)) if isinstance(bounds, dict) else None for key in ("low", "high"))
    if low is None or high is None:
        raise DrtasksError(f"{source}: the continuous {name} needs numeric 'low' and 'high'")
    if not high > low:
        raise DrtasksError(f"{source}: the continuous {name} range needs high above low, it has low {low:g} and high {high:g}")


def _sensor_of(node: str) -> str:
    return node.rsplit("/", 1)[-1]


def check_graph(spec: ModelSpec, graph: Any, graph_name: str = "model.pb", metadata_name: str = "model_metadata.json") -> None:
    """The frozen graph has the inputs and the policy ``spec`` promises; one line naming both sides."""
    policy = spec.policy_output
    if policy not in graph.nodes:
        other = next((a for a, name in POLICY_OUTPUTS.items() if a != spec.algorithm and name in graph.nodes), None)
        if other:
            raise DrtasksError(f"{metadata_name} says training_algorithm {spec.algorithm}, {graph_name} holds a {other} policy ({POLICY_OUTPUTS[other]})")
        raise DrtasksError(f"{graph_name} has no policy output {policy}, which {metadata_name}'s {spec.algorithm} needs")

    network = f"main_level/agent/{HEADS[spec.algorithm]}/online/network_0/"
    present = {name for name in graph.placeholders if name.startswith(network)}
    expected = {spec.input_node(sensor) for sensor in spec.sensors}
    listed = ", ".join(spec.sensors)
    has = ", ".join(sorted(_sensor_of(name) for name in present)) or "none"
    missing = sorted(expected - present)
    if missing:
        raise DrtasksError(f"{metadata_name} lists sensors {listed}, {graph_name} has no input for {', '.join(map(_sensor_of, missing))} (its inputs: {has})")
    extra = sorted(present - expected)
    if extra:
        raise DrtasksError(f"{graph_name} also needs input {', '.join(map(_sensor_of, extra))}, which {metadata_name} does not list (sensors: {listed})")
    for sensor in spec.sensors:
        wanted, found = spec.input_shape(sensor), graph.placeholders.get(spec.input_node(sensor))
        if wanted is None or found is None or len(found) != len(wanted):
            if wanted is not None and found is not None:
                raise DrtasksError(f"{metadata_name}'s {sensor} input has shape {_dims(wanted)}, {graph_name}'s has {_dims(found)}")
            continue
        if any(have > 0 and have != want for have, want in zip(found[1:], wanted[1:])):
            raise DrtasksError(f"{metadata_name}'s {sensor} input has shape {_dims(wanted)}, {graph_name}'s has {_dims(found)}")

    width = graph.output_width(policy)
    if width is None:
        raise DrtasksError(f"{graph_name}: no dense layer feeds the policy output {policy}, so its width is unknown")
    if width != spec.outputs:
        raise DrtasksError(f"{metadata_name} lists {spec.describe_actions()}, {graph_name}'s policy has {width}")


def _dims(shape: Any) -> str:
    return "x".join("?" if int(d) < 0 else str(int(d)) for d in list(shape)[1:])


def check_model(
    metadata: bytes,
    graph: bytes,
    *,
    metadata_name: str = "model_metadata.json",
    graph_name: str = "model.pb",
    for_car: bool = True,
) -> ModelSpec:
    """Check the metadata, then the frozen graph against it; what the metadata promises."""
    from drtasks.graph import read_graph

    spec = model_spec(read_metadata(metadata, metadata_name), metadata_name, for_car=for_car)
    check_graph(spec, read_graph(graph, graph_name), graph_name, metadata_name)
    return spec


# ---------------------------------------------------------------- a checkpoint in S3, remembered


def _verdict_path(parts: list[str]) -> Any:
    from drtasks.s3 import cache_dir

    digest = hashlib.sha256("\n".join([RULES_VERSION, *parts]).encode()).hexdigest()
    return cache_dir() / "model-checks" / f"{digest}.json"


def _remembered(path: Any) -> str | None:
    """The cached verdict: "" (the model passed) or the refusal; None when not known."""
    try:
        verdict = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    refused = verdict.get("refused") if isinstance(verdict, dict) else None
    return refused if isinstance(refused, str) else None


def _remember(path: Any, refused: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".part")
        partial.write_text(json.dumps({"refused": refused}), encoding="utf-8")
        partial.replace(path)
    except OSError:
        pass  # a cache that cannot be written only costs a re-check next time


def empty_checkpoint_files(model: Any, checkpoint: Any) -> list[str]:
    """The checkpoint's data, index and meta files and frozen graph that exist but hold no byte.

    They would copy and verify (the bytes match the source) and then fail where the model is loaded.
    """
    keys = [*checkpoint.data_files, checkpoint.frozen_graph, METADATA_KEY]
    return [key for key in keys if key in model.objects and model.objects[key].size == 0]


def check_checkpoint_model(client: Any, model: Any, checkpoint: Any, *, for_car: bool = False) -> None:
    """Check ``checkpoint``'s frozen graph against the model's metadata, both in S3.

    ``model`` is a ``drtasks.model.SourceModel`` (its listing gives the ETags and sizes). The
    verdict is cached under drtasks' cache directory, keyed by both objects' ETags and sizes: an
    unchanged model is checked without reading it again. Raises DrtasksError with one line.
    """
    from drtasks.s3 import s3_errors

    location = model.location
    pb_key = checkpoint.frozen_graph
    missing = [location.key(key) for key in model.missing([pb_key, METADATA_KEY])]
    if missing:
        raise DrtasksError("cannot check the model, missing: " + ", ".join(missing))
    empty = empty_checkpoint_files(model, checkpoint)
    if empty:
        raise DrtasksError("the model is broken, nothing was written: zero-byte " + ", ".join(location.key(key) for key in empty))
    pb, metadata = model.objects[pb_key], model.objects[METADATA_KEY]
    graph_name = pb_key.rsplit("/", 1)[-1]
    identities = [f"{info.etag}:{info.size}" for info in (pb, metadata)]
    path = _verdict_path(["car" if for_car else "simulator", graph_name, *identities]) if pb.etag and metadata.etag else None
    refused = _remembered(path) if path is not None else None
    if refused is None:
        with s3_errors(location):
            metadata_bytes = client.get_object(Bucket=location.bucket, Key=metadata.key)["Body"].read()
            graph_bytes = client.get_object(Bucket=location.bucket, Key=pb.key)["Body"].read()
        try:
            check_model(metadata_bytes, graph_bytes, graph_name=graph_name, for_car=for_car)
            refused = ""
        except DrtasksError as error:
            refused = error.message
        if path is not None:
            _remember(path, refused)
    if refused:
        raise DrtasksError(refused)
