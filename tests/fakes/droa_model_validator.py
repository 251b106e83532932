"""The fake DRoA's model validation: a long-lived child that restores checkpoints with TensorFlow.

DRoA's import workflow runs the simapp's validation worker on the upload (facts section 7): it reads
``model/model_metadata.json``, takes the checkpoint named by ``model/deepracer_checkpoints.json``
(else ``model/.coach_checkpoint``), builds the agent for the metadata's sensors and action space and
restores the checkpoint into it. What this fake keeps of that, with TensorFlow's own reader:

- an unsupported sensor list: "Sensor not supported: [...]!";
- no checkpoint named: the worker would wait for one until the Lambda times out, which DRoA reports
  with its generic "Unexpected error ..." message (``{"timeout": true}`` here);
- a checkpoint TensorFlow cannot read (random bytes): "Validation worker exited with exception: ...";
- a policy head whose width is not the metadata's action count (discrete: one output per action;
  continuous: steering and speed): "User modified model: Cannot feed value of shape ... for Tensor
  ..., which has shape ...", as TensorFlow words the failed assignment.

Protocol: one JSON object per line on stdin (``{"folder": ...}``, a folder holding ``model/``), one
JSON answer per line on stdout: ``{"valid": true}`` or ``{"valid": false, "message": ...}``.
TensorFlow is imported once, when the process starts.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

SINGLE_CAMERA = {"observation", "FRONT_FACING_CAMERA", "LEFT_CAMERA"}
STEREO = {"STEREO_CAMERAS"}


def checkpoint_name(model: Path) -> str | None:
    index = model / "deepracer_checkpoints.json"
    if index.is_file():
        try:
            entry = json.loads(index.read_text()).get("last_checkpoint") or {}
            if entry.get("name"):
                return str(entry["name"])
        except ValueError:
            pass
    coach = model / ".coach_checkpoint"
    if coach.is_file() and coach.read_text().strip():
        return coach.read_text().strip()
    return None


def policy_kernels(shapes: dict[str, list[int]]) -> list[tuple[str, list[int]]]:
    found = []
    for name, shape in sorted(shapes.items()):
        lowered = name.lower()
        if len(shape) != 2 or "adam" in lowered or "value" in lowered:
            continue
        parts = lowered.split("/")
        # The policy's output layers (policy_fc, policy_mean, policy_log_std), not the hidden ones.
        if len(parts) >= 2 and "policy" in parts[-2] and parts[-1] in ("kernel", "weights", "w"):
            found.append((name, shape))
    return found


def validate(folder: Path, tf) -> dict:
    model = folder / "model"
    try:
        metadata = json.loads((model / "model_metadata.json").read_text())
    except (OSError, ValueError) as error:
        return {"valid": False, "message": f"Failed to parse model_metadata file: {error}"}
    sensors = metadata.get("sensor") or ["observation"]
    if not (set(sensors) & (SINGLE_CAMERA | STEREO)):
        return {"valid": False, "message": f"Sensor not supported: {sensors}!"}
    name = checkpoint_name(model)
    if not name:
        return {"valid": False, "timeout": True}
    try:
        reader = tf.train.load_checkpoint(str(model / name))
        shapes = reader.get_variable_to_shape_map()
    except Exception as error:  # noqa: BLE001 - TensorFlow's own words are the finding
        return {"valid": False, "message": f"Validation worker exited with exception: {str(error).splitlines()[0]}"}
    space = metadata.get("action_space")
    expected = len(space) if metadata.get("action_space_type", "discrete") == "discrete" and isinstance(space, list) else 2
    kernels = policy_kernels(shapes)
    if not kernels:
        return {"valid": False, "message": "User modified model: Key main_level/agent/main/online/network_1/ppo_head_0/"
                                           "policy_fc/kernel not found in checkpoint"}
    for variable, shape in kernels:
        if shape[-1] != expected:
            return {"valid": False, "message": f"User modified model: Cannot feed value of shape ({shape[0]}, {shape[1]}) "
                                               f"for Tensor {variable}:0, which has shape ({shape[0]}, {expected})"}
    return {"valid": True}


def main() -> None:
    import tensorflow as tf

    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        print(json.dumps(validate(Path(request["folder"]), tf)), flush=True)


if __name__ == "__main__":
    main()
