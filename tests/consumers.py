"""The programs that load what drtasks writes, as small as they are in real life.

- ``restore_policy``: the simapp's side. TensorFlow rebuilds the graph from the checkpoint's
  ``.meta``, restores every variable from ``.data``/``.index`` and runs the policy once.
- ``car_inference``: the car's side. OpenVINO converts the frozen graph with the car's input
  names and shapes (``:0`` appended, batch 1, 120x160 frames) and output, compiles it for the
  CPU and runs one inference on blank inputs.

Written from the consumers' contracts (../shared/reference/deepracer-facts.md sections 6 and 9),
independently of drtasks' own checks, so a test using them proves the files really load.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

CAR_SENSORS = ("observation", "FRONT_FACING_CAMERA", "LEFT_CAMERA", "STEREO_CAMERAS", "LIDAR", "SECTOR_LIDAR")
HEAD = {"clipped_ppo": "main", "sac": "policy"}
POLICY = {
    "clipped_ppo": "main_level/agent/main/online/network_1/ppo_head_0/policy",
    "sac": "main_level/agent/policy/online/network_0/sac_policy_head_0/policy",
}


def sensors_of(metadata: dict[str, Any]) -> list[str]:
    return list(metadata.get("sensor") or ["observation"])


def algorithm_of(metadata: dict[str, Any]) -> str:
    return (metadata.get("training_algorithm") or "clipped_ppo").lower()


def input_name(sensor: str, metadata: dict[str, Any]) -> str:
    return f"main_level/agent/{HEAD[algorithm_of(metadata)]}/online/network_0/{sensor}/{sensor}"


def car_shape(sensor: str, metadata: dict[str, Any]) -> list[int]:
    """The shape the car feeds: [1,120,160,channels] for cameras, [1,sectors] for lidars."""
    lidar = (metadata.get("lidar_config") or {}).get("num_sectors")
    if sensor == "LIDAR":
        return [1, 64]
    if sensor == "SECTOR_LIDAR":
        return [1, int(lidar or 8)]
    return [1, 120, 160, 2 if sensor == "STEREO_CAMERAS" else 1]


def expected_outputs(metadata: dict[str, Any]) -> int:
    space = metadata["action_space"]
    return len(space) if isinstance(space, list) else 2


def restore_policy(checkpoint_prefix: Path, metadata: dict[str, Any]) -> list[float]:
    """Restore the checkpoint in TensorFlow and run the policy on blank inputs; its outputs.

    Raises when the files do not restore, or when the policy's width is not the metadata's.
    """
    import numpy as np
    import tensorflow as tf

    graph = tf.Graph()
    with graph.as_default(), tf.compat.v1.Session(graph=graph) as session:
        saver = tf.compat.v1.train.import_meta_graph(f"{checkpoint_prefix}.meta")
        saver.restore(session, str(checkpoint_prefix))
        feed = {f"{input_name(s, metadata)}:0": np.zeros(car_shape(s, metadata), np.float32) for s in sensors_of(metadata)}
        values = session.run(f"{POLICY[algorithm_of(metadata)]}:0", feed)[0]
    if len(values) != expected_outputs(metadata):
        raise AssertionError(f"the policy has {len(values)} outputs, the metadata {expected_outputs(metadata)} actions")
    return [float(v) for v in values]


def policy_head_width(checkpoint_prefix: Path, metadata: dict[str, Any]) -> int:
    """The policy head's output count, read from the checkpoint's variables (no graph needed)."""
    import tensorflow as tf

    shapes = tf.train.load_checkpoint(str(checkpoint_prefix)).get_variable_to_shape_map()
    head = "policy_fc/kernel" if isinstance(metadata["action_space"], list) else "policy_mean/kernel"
    kernels = [shape for name, shape in shapes.items() if name.startswith(f"main_level/agent/{HEAD[algorithm_of(metadata)]}/online/") and name.endswith(head)]
    if len(kernels) != 1:
        raise AssertionError(f"expected one policy kernel ending in {head}, found {len(kernels)}")
    return int(kernels[0][-1])


def car_inference(pb: bytes | Path, metadata: dict[str, Any]) -> list[float]:
    """Convert the frozen graph the way the car does and infer once on blank inputs; its outputs."""
    import numpy as np
    import openvino as ov

    sensors = sensors_of(metadata)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(pb) if isinstance(pb, Path) else Path(folder) / "model.pb"
        if not isinstance(pb, Path):
            path.write_bytes(pb)
        model = ov.convert_model(
            str(path),
            input=[(f"{input_name(s, metadata)}:0", car_shape(s, metadata)) for s in sensors],
            output=[f"{POLICY[algorithm_of(metadata)]}:0"],
        )
    compiled = ov.Core().compile_model(model, "CPU")
    feed = {}
    for sensor in sensors:
        name = f"{input_name(sensor, metadata)}:0"
        port = next(p for p in compiled.inputs if name in p.get_names() or name[:-2] in p.get_names())
        feed[port] = np.zeros(car_shape(sensor, metadata), np.float32)
    result = compiled(feed)
    values = [float(v) for v in np.asarray(next(iter(result.values()))).reshape(-1)]
    if len(values) != expected_outputs(metadata):
        raise AssertionError(f"the car's model gives {len(values)} outputs, the metadata lists {expected_outputs(metadata)} actions")
    return values


def metadata_from(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))
