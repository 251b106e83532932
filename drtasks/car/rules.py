"""What the car itself checks, read from its software, so drtasks can refuse before uploading.

The car answers ``success: true`` to an upload even when it then ignores the model, and it
leaves a model out of its list when the metadata has a value it does not know. Three readers
on the car matter here:

- the model loader unpacks the archive and counts its model files with a quirk: a file counts
  when its extension is contained in the *string* ``".pb"``, so besides ``*.pb`` every file
  without an extension (``checkpoint``, ``.coach_checkpoint``) counts too. Anything but exactly
  one such file and the model is silently not installed;
- the model list (``GET /api/models``) skips a model whose ``sensor``, ``training_algorithm``
  or ``action_space_type`` it does not know;
- loading (``PUT /api/models/<folder>/<name>``) also needs a usable action space (continuous:
  ``high > low`` for speed and steering) and a complete ``lidar_config`` when one is given.
"""

from __future__ import annotations

import json
import posixpath
from dataclasses import dataclass
from typing import Any

from drtasks.errors import DrtasksError

# The extensions the car's loader takes for a model file: every substring of ".pb" that
# os.path.splitext can return.
_COUNTED_EXTENSIONS = ("", ".", ".p", ".pb")

SENSOR_NAMES = {
    "observation": "Camera",
    "LIDAR": "LiDAR",
    "SECTOR_LIDAR": "LiDAR",
    "LEFT_CAMERA": "Left camera",
    "FRONT_FACING_CAMERA": "Front-facing camera",
    "STEREO_CAMERAS": "Stereo camera",
}
ALGORITHM_NAMES = {"clipped_ppo": "Clipped PPO", "sac": "Soft actor critic"}
ACTION_SPACE_NAMES = {"discrete": "Discrete", "continuous": "Continuous"}
LIDAR_CONFIG_KEYS = ("num_values", "min_angle", "max_angle", "min_distance", "max_distance", "clipping_distance", "num_sectors")

# The car installs the single model file under this name, so its list shows "model".
INSTALLED_MODEL_NAME = "model"


@dataclass(frozen=True)
class CarView:
    """How the car's model list will describe a model with this metadata."""

    training_algorithm: str
    action_space_type: str
    sensors: tuple[str, ...]

    def as_json(self) -> dict[str, Any]:
        return {"training_algorithm": self.training_algorithm, "action_space_type": self.action_space_type, "sensors": list(self.sensors)}


def counted_model_files(member_names: list[str]) -> list[str]:
    """The archive's files the car's loader takes for model files (it needs exactly one)."""
    return [name for name in member_names if posixpath.splitext(name)[1] in _COUNTED_EXTENSIONS]


def check_model_files(member_names: list[str], source: str) -> None:
    counted = counted_model_files(member_names)
    if len(counted) == 1:
        return
    extra = [name for name in counted if not name.endswith(".pb")]
    why = f"; the car also counts files without an extension: {', '.join(extra)}" if extra else ""
    raise DrtasksError(
        f"{source}: the car would ignore this archive: it installs a model only when exactly one model file is in it,"
        f" found {len(counted)} ({', '.join(counted) or 'none'}){why}"
    )


def car_view(metadata_bytes: bytes, source: str = "model_metadata.json") -> CarView:
    """Check the metadata as the car's list and loader read it; return how the list will show it.

    Raises a DrtasksError naming the first thing the car would refuse, in the car's own words.
    """
    try:
        metadata = json.loads(metadata_bytes.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise DrtasksError(f"{source}: the car cannot read it: Error while reading model_metadata.json") from None
    if not isinstance(metadata, dict):
        raise DrtasksError(f"{source}: the car needs a JSON object")

    sensors = metadata.get("sensor", ["observation"])  # the car's default when the key is missing
    if not isinstance(sensors, list) or not all(isinstance(s, str) and s in SENSOR_NAMES for s in sensors):
        raise DrtasksError(
            f"{source}: sensor {sensors!r}: the car lists only models whose sensors are {', '.join(SENSOR_NAMES)}"
            " (it says: The sensor configurations of your vehicle and trained model must match)"
        )
    algorithm = metadata.get("training_algorithm", "clipped_ppo")
    if algorithm not in ALGORITHM_NAMES:
        raise DrtasksError(f"{source}: training_algorithm {algorithm!r}: the car knows only clipped_ppo and sac")
    space_type = metadata.get("action_space_type", "discrete")
    if space_type not in ACTION_SPACE_NAMES:
        raise DrtasksError(f"{source}: action_space_type {space_type!r}: the car knows only discrete and continuous")
    if "action_space" not in metadata:
        raise DrtasksError(f"{source}: No action space value found in model_metadata.json")
    problem = _action_space_problem(metadata["action_space"], space_type)
    if problem:
        raise DrtasksError(f"{source}: the car would not load it (Incorrect values in model_metadata.json): {problem}")
    if ("LIDAR" in sensors or "SECTOR_LIDAR" in sensors) and "lidar_config" in metadata:
        config = metadata["lidar_config"]
        missing = [key for key in LIDAR_CONFIG_KEYS if not isinstance(config, dict) or key not in config]
        if missing:
            raise DrtasksError(f"{source}: lidar_config lacks {', '.join(missing)}; the car would not load it")
    names = tuple(dict.fromkeys(SENSOR_NAMES[s] for s in sensors))
    return CarView(ALGORITHM_NAMES[algorithm], ACTION_SPACE_NAMES[space_type], names)


def _action_space_problem(space: Any, space_type: str) -> str:
    if space_type == "discrete":
        if not isinstance(space, list) or not space:
            return "a discrete action space is a list of actions"
        for index, action in enumerate(space):
            if not isinstance(action, dict) or "steering_angle" not in action or "speed" not in action:
                return f"action_space[{index}] needs steering_angle and speed"
        return ""
    if not isinstance(space, dict):
        return "a continuous action space is an object with speed and steering_angle ranges"
    for key in ("steering_angle", "speed"):
        bounds = space.get(key)
        if not isinstance(bounds, dict) or "high" not in bounds or "low" not in bounds:
            return f"continuous {key} needs high and low"
        try:
            if not float(bounds["high"]) > float(bounds["low"]):
                return f"continuous {key}: high ({bounds['high']}) must be above low ({bounds['low']})"
        except (TypeError, ValueError):
            return f"continuous {key}: high and low must be numbers"
    return ""
