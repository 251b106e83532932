"""A real DeepRacer-shaped TensorFlow model: checkpoints and frozen graphs that TensorFlow restores
and the car's converter loads, written in seconds for any ``model_metadata.json``.

The network is the one the simapp builds with Coach for the metadata's sensors, network topology,
action space and algorithm, with the same variable and node names:

- one input placeholder per sensor, ``main_level/agent/<main|policy>/online/network_0/<S>/<S>``
  (cameras [-1,120,160,1], stereo [-1,120,160,2], LIDAR [-1,64], SECTOR_LIDAR [-1,8]);
- per sensor an embedder (``Conv2d_0/2/4`` for cameras, ``Dense_0/2`` for lidars), the embeddings
  concatenated, the middleware ``middleware_fc_embedder/Dense_0`` (512 units);
- clipped PPO: ``network_0`` ends in the value head ``v_values_head_0/output``, ``network_1``
  (sharing network_0's placeholders) in ``ppo_head_0``: ``policy_fc`` then Softmax ``policy`` for a
  discrete action space, ``policy_mean`` then Identity ``policy`` (steering, speed) when continuous;
- SAC: the ``policy`` network ends in ``sac_policy_head_0`` (Identity ``policy`` of
  ``policy_mean``), and a ``q`` network scores state and action.

Checkpoints are TF1-style (``N_Step-M.ckpt.data-00000-of-00001/.index/.meta``, written by a
``tf.compat.v1`` Saver); ``model_N.pb`` is the graph frozen at the policy output, as the simapp's
``convert_variables_to_constants`` writes it. Weights are random (seeded), so a shallow camera
model has the real sizes: data ~46.7 MB, frozen graph ~23.4 MB.

TensorFlow (the ``test`` extra's ``tensorflow-cpu``) is imported only inside the functions here.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from drtasks.errors import DrtasksError
from drtasks.model_check import CAR_LIDARS, POLICY_OUTPUTS, input_shape, model_spec
from drtasks.sample_model import CHECKPOINT_SUFFIXES, EPOCH, Body, checkpoint_names, model_metadata, tf_checkpoint_state

# (filters, kernel, stride) per convolution, by topology; stereo has its own deeper stack.
CONVOLUTIONS = {
    "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW": ((32, 8, 4), (64, 4, 2), (64, 3, 1)),
    "DEEP_CONVOLUTIONAL_NETWORK": ((32, 5, 2), (32, 3, 1), (64, 3, 2), (64, 3, 1)),
}
STEREO_CONVOLUTIONS = {
    "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW": ((32, 8, 4), (64, 4, 2), (64, 3, 1)),
    "DEEP_CONVOLUTIONAL_NETWORK": ((32, 3, 1), (64, 3, 2), (64, 3, 1), (128, 3, 2), (128, 3, 1)),
}
CAMERA_DENSE = {"DEEP_CONVOLUTIONAL_NETWORK_SHALLOW": (), "DEEP_CONVOLUTIONAL_NETWORK": (64,)}
LIDAR_DENSE = (256, 256)
MIDDLEWARE_UNITS = 512
SAC_HIDDEN_UNITS = 256


@dataclass(frozen=True)
class Design:
    """What the metadata asks of the network."""

    sensors: tuple[str, ...]
    network: str
    algorithm: str
    continuous: bool
    outputs: int
    metadata: dict[str, Any]


def design(metadata: dict[str, Any]) -> Design:
    """Read the network's design from ``metadata``; ValueError for what the generator cannot build.

    Any metadata the car loads can be built (drtasks.model_check's rules), in the shallow or the
    middle topology; the deep one (batch norm) is not.
    """
    try:
        spec = model_spec(metadata, for_car=True)
    except DrtasksError as error:
        raise ValueError(error.message) from None
    network = metadata.get("neural_network") or "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW"
    if network not in CONVOLUTIONS:
        raise ValueError(f"the generator builds {', '.join(CONVOLUTIONS)}, not {network}")
    return Design(spec.sensors, network, spec.algorithm, spec.continuous, spec.outputs, metadata)


# ---------------------------------------------------------------- the TensorFlow graph


def _variable(tf: Any, name: str, shape: list[int], fan_in: int) -> Any:
    # Glorot-like scale keeps activations finite, so one inference gives usable numbers.
    scale = (6.0 / (fan_in + shape[-1])) ** 0.5
    initializer = tf.compat.v1.random_uniform_initializer(-scale, scale)
    return tf.compat.v1.get_variable(name, shape, tf.float32, initializer=initializer, use_resource=False)


def _bias(tf: Any, name: str, size: int) -> Any:
    # Small random biases (not zeros): every checkpoint, and so every frozen graph, differs.
    initializer = tf.compat.v1.random_uniform_initializer(-0.01, 0.01)
    return tf.compat.v1.get_variable(name, [size], tf.float32, initializer=initializer, use_resource=False)


def _dense(tf: Any, scope: str, tensor: Any, units: int, activation: Any = None) -> Any:
    width = int(tensor.shape[-1])
    with tf.compat.v1.variable_scope(scope):
        out = tf.compat.v1.nn.bias_add(tf.linalg.matmul(tensor, _variable(tf, "kernel", [width, units], width)), _bias(tf, "bias", units))
    return activation(out) if activation is not None else out


def _camera_embedder(tf: Any, sensor: str, tensor: Any, network: str) -> Any:
    convolutions = (STEREO_CONVOLUTIONS if sensor == "STEREO_CAMERAS" else CONVOLUTIONS)[network]
    layer = tensor / 255.0  # Coach's image embedder rescales pixels
    index = 0
    for filters, kernel, stride in convolutions:
        channels = int(layer.shape[-1])
        with tf.compat.v1.variable_scope(f"Conv2d_{index}"):
            weights = _variable(tf, "kernel", [kernel, kernel, channels, filters], kernel * kernel * channels)
            layer = tf.nn.relu(tf.compat.v1.nn.bias_add(tf.nn.conv2d(layer, weights, stride, "VALID"), _bias(tf, "bias", filters)))
        index += 2  # Coach numbers the activation layer in between
    layer = tf.reshape(layer, [-1, int(layer.shape[1]) * int(layer.shape[2]) * int(layer.shape[3])])
    for units in CAMERA_DENSE[network]:
        layer = _dense(tf, f"Dense_{index}", layer, units, tf.nn.tanh)
        index += 2
    return layer


def _lidar_embedder(tf: Any, tensor: Any) -> Any:
    layer = tensor
    for index, units in enumerate(LIDAR_DENSE):
        layer = _dense(tf, f"Dense_{2 * index}", layer, units, tf.nn.relu)
    return layer


def _trunk(tf: Any, spec: Design, placeholders: dict[str, Any]) -> Any:
    """Embedders (inputs in name order, as Coach merges them) and the middleware.

    The first network creates the input placeholders into ``placeholders``; later ones reuse them.
    """
    embeddings = []
    for sensor in sorted(spec.sensors):
        with tf.compat.v1.variable_scope(sensor):
            if sensor not in placeholders:
                shape = [None, *(input_shape(sensor, spec.metadata) or [])[1:]]
                placeholders[sensor] = tf.compat.v1.placeholder(tf.float32, shape, name=sensor)
            if sensor in CAR_LIDARS:
                embeddings.append(_lidar_embedder(tf, placeholders[sensor]))
            else:
                embeddings.append(_camera_embedder(tf, sensor, placeholders[sensor], spec.network))
    merged = embeddings[0] if len(embeddings) == 1 else tf.concat(embeddings, axis=-1, name="merger")
    with tf.compat.v1.variable_scope("middleware_fc_embedder"):
        return _dense(tf, "Dense_0", merged, MIDDLEWARE_UNITS, tf.nn.relu)


def build_network(tf: Any, spec: Design) -> str:
    """Build the network in the default graph; the policy output's node name."""
    tf.compat.v1.train.get_or_create_global_step()
    if spec.algorithm == "clipped_ppo":
        with tf.compat.v1.variable_scope("main_level/agent/main/online"):
            placeholders: dict[str, Any] = {}
            with tf.compat.v1.variable_scope("network_0"):
                trunk = _trunk(tf, spec, placeholders)
                with tf.compat.v1.variable_scope("v_values_head_0"):
                    _dense(tf, "output", trunk, 1)
            with tf.compat.v1.variable_scope("network_1"):
                trunk = _trunk(tf, spec, placeholders)  # network_1 reads network_0's placeholders
                with tf.compat.v1.variable_scope("ppo_head_0"):
                    if spec.continuous:
                        tf.identity(_dense(tf, "policy_mean", trunk, spec.outputs), name="policy")
                        tf.compat.v1.get_variable("policy_log_std", [1, spec.outputs], tf.float32, tf.compat.v1.zeros_initializer(), use_resource=False)
                    else:
                        tf.nn.softmax(_dense(tf, "policy_fc", trunk, spec.outputs), name="policy")
    else:
        with tf.compat.v1.variable_scope("main_level/agent/policy/online/network_0"):
            trunk = _trunk(tf, spec, {})
            with tf.compat.v1.variable_scope("sac_policy_head_0"):
                hidden = _dense(tf, "Dense_0", trunk, SAC_HIDDEN_UNITS, tf.nn.relu)
                tf.identity(_dense(tf, "policy_mean", hidden, spec.outputs), name="policy")
                _dense(tf, "policy_log_std", hidden, spec.outputs)
        with tf.compat.v1.variable_scope("main_level/agent/q/online/network_0"):
            action = tf.compat.v1.placeholder(tf.float32, [None, spec.outputs], name="action")
            state = _trunk(tf, spec, {})
            with tf.compat.v1.variable_scope("sac_q_head_0"):
                _dense(tf, "q1", tf.concat([state, action], axis=-1), 1)
    return POLICY_OUTPUTS[spec.algorithm]


# ---------------------------------------------------------------- writing a model folder


@dataclass(frozen=True)
class RealModel:
    """A model folder as the simapp leaves it: ``<directory>/model/...``."""

    directory: Path
    metadata: dict[str, Any]
    checkpoints: dict[int, str]  # number -> "N_Step-M.ckpt"
    best: int
    last: int
    policy_output: str
    sizes: dict[str, int] = field(default_factory=dict)  # relative path -> bytes

    @property
    def model_dir(self) -> Path:
        return self.directory / "model"

    def checkpoint_prefix(self, number: int) -> Path:
        """The prefix TensorFlow restores (``.../model/N_Step-M.ckpt``)."""
        return self.model_dir / self.checkpoints[number]

    def frozen_graph(self, number: int) -> Path:
        return self.model_dir / f"model_{number}.pb"

    @property
    def files(self) -> "RealModelFiles":
        """This model as a ``sample_model.ModelFiles`` provider, to seed it into S3."""
        return RealModelFiles(self)


@dataclass(frozen=True)
class RealModelFiles:
    """Seeds a ``RealModel``'s files (read from disk, never held in memory) with ``seed_model``."""

    model: RealModel

    def metadata(self) -> dict[str, Any]:
        return self.model.metadata

    def checkpoint_files(self, number: int, name: str) -> dict[str, Body]:
        # TensorFlow finds a checkpoint's files by prefix; renaming all three together is safe.
        prefix = self.model.checkpoint_prefix(number)
        return {suffix: Path(f"{prefix}.{suffix}") for suffix in CHECKPOINT_SUFFIXES}

    def frozen_graph(self, number: int) -> Body:
        return self.model.frozen_graph(number)


def quiet_tensorflow() -> None:
    """Keep TensorFlow's C++ start-up chatter off the terminal (must precede its import)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def write_real_model(
    directory: Path,
    metadata: dict[str, Any] | None = None,
    *,
    checkpoints: Iterable[int] = (10, 13, 16),
    best: int | None = None,
    seed: int = 0,
) -> RealModel:
    """Write a trained model's ``model/`` folder for ``metadata`` (default: 15 discrete actions, camera, PPO).

    Every checkpoint gets its own random weights (seeded: the same call writes the same tensors),
    its TF1 checkpoint files and its frozen graph. ``best`` defaults to the second checkpoint, so
    best != last when more than one is kept. Names follow ``sample_model.checkpoint_names``.
    """
    quiet_tensorflow()
    import tensorflow as tf

    metadata = metadata or model_metadata()
    spec = design(metadata)
    numbers = sorted(set(checkpoints))
    if not numbers:
        raise ValueError("write_real_model needs at least one checkpoint")
    last = numbers[-1]
    best = best if best is not None else (numbers[1] if len(numbers) > 1 else last)
    if best not in numbers:
        raise ValueError(f"best checkpoint {best} is not among {numbers}")
    names = checkpoint_names(numbers, seed)
    model_dir = Path(directory) / "model"
    model_dir.mkdir(parents=True, exist_ok=True)

    logger = tf.get_logger()
    level = logger.level
    logger.setLevel("ERROR")  # the TF1 APIs used here would each print a deprecation notice
    graph = tf.Graph()
    try:
        _write_checkpoints(tf, graph, spec, model_dir, numbers, names, seed)
    finally:
        logger.setLevel(level)

    (model_dir / "model_metadata.json").write_text(json.dumps(metadata, indent=4), encoding="utf-8")
    index = {f"{which}_checkpoint": _entry(names[n], 71.5 if n == best else 42.0) for which, n in (("best", best), ("last", last))}
    (model_dir / "deepracer_checkpoints.json").write_text(json.dumps(index), encoding="utf-8")
    (model_dir / ".coach_checkpoint").write_text(f"{names[last]}\n", encoding="utf-8")
    (model_dir / "checkpoint").write_text(tf_checkpoint_state([names[n] for n in numbers], names[last]), encoding="utf-8")
    sizes = {str(p.relative_to(directory)): p.stat().st_size for p in sorted(model_dir.iterdir())}
    return RealModel(Path(directory), metadata, names, best, last, POLICY_OUTPUTS[spec.algorithm], sizes)


def _entry(name: str, metric: float) -> dict[str, Any]:
    step = int(name.split("_Step-", 1)[1].removesuffix(".ckpt"))
    return {"name": name, "avg_eval_metric": metric, "time_stamp": EPOCH + step}


def _write_checkpoints(tf: Any, graph: Any, spec: Design, model_dir: Path, numbers: list[int], names: dict[int, str], seed: int) -> None:
    from tensorflow.compat.v1 import graph_util

    with graph.as_default():
        tf.compat.v1.set_random_seed(seed)
        output = build_network(tf, spec)
        saver = tf.compat.v1.train.Saver(max_to_keep=None)
        initialize = tf.compat.v1.global_variables_initializer()
        with tf.compat.v1.Session(graph=graph) as session:
            for number in numbers:
                session.run(initialize)  # the random initializers draw new weights on every run
                saver.save(session, str(model_dir / names[number]), write_state=False)
                frozen = graph_util.convert_variables_to_constants(session, graph.as_graph_def(), [output])
                # Sorted map fields: the same weights always give the same bytes.
                (model_dir / f"model_{number}.pb").write_bytes(frozen.SerializeToString(deterministic=True))
