"""training_params.yaml for an uploaded model, generated from the DR_* settings.

Unlike DRfC's generator, the S3 fields name the real target bucket and prefix.
"""

from __future__ import annotations

from drtasks.config.settings import Settings
from drtasks.errors import DrtasksError, shorten
from drtasks.s3 import S3Location

# training_params key -> DR_* variable. Values stay strings, as the simapp reads them.
_FROM_SETTINGS = {
    "AWS_REGION": "DR_AWS_APP_REGION",
    "BODY_SHELL_TYPE": "DR_CAR_BODY_SHELL_TYPE",
    "CAR_NAME": "DR_CAR_NAME",
    "RACE_TYPE": "DR_RACE_TYPE",
    "WORLD_NAME": "DR_WORLD_NAME",
    "DISPLAY_NAME": "DR_DISPLAY_NAME",
    "RACER_NAME": "DR_RACER_NAME",
    "REVERSE_DIR": "DR_TRAIN_REVERSE_DIRECTION",
    "ALTERNATE_DRIVING_DIRECTION": "DR_TRAIN_ALTERNATE_DRIVING_DIRECTION",
    "CHANGE_START_POSITION": "DR_TRAIN_CHANGE_START_POSITION",
    "ROUND_ROBIN_ADVANCE_DIST": "DR_TRAIN_ROUND_ROBIN_ADVANCE_DIST",
    "START_POSITION_OFFSET": "DR_TRAIN_START_POSITION_OFFSET",
    "ENABLE_DOMAIN_RANDOMIZATION": "DR_ENABLE_DOMAIN_RANDOMIZATION",
    "MIN_EVAL_TRIALS": "DR_TRAIN_MIN_EVAL_TRIALS",
}
_OBJECT_AVOIDANCE = {
    "NUMBER_OF_OBSTACLES": "DR_OA_NUMBER_OF_OBSTACLES",
    "MIN_DISTANCE_BETWEEN_OBSTACLES": "DR_OA_MIN_DISTANCE_BETWEEN_OBSTACLES",
    "RANDOMIZE_OBSTACLE_LOCATIONS": "DR_OA_RANDOMIZE_OBSTACLE_LOCATIONS",
    "IS_OBSTACLE_BOT_CAR": "DR_OA_IS_OBSTACLE_BOT_CAR",
    "OBSTACLE_TYPE": "DR_OA_OBSTACLE_TYPE",
    "OBJECT_POSITIONS": "DR_OA_OBJECT_POSITIONS",
}
_HEAD_TO_BOT = {
    "IS_LANE_CHANGE": "DR_H2B_IS_LANE_CHANGE",
    "LOWER_LANE_CHANGE_TIME": "DR_H2B_LOWER_LANE_CHANGE_TIME",
    "UPPER_LANE_CHANGE_TIME": "DR_H2B_UPPER_LANE_CHANGE_TIME",
    "LANE_CHANGE_DISTANCE": "DR_H2B_LANE_CHANGE_DISTANCE",
    "NUMBER_OF_BOT_CARS": "DR_H2B_NUMBER_OF_BOT_CARS",
    "MIN_DISTANCE_BETWEEN_BOT_CARS": "DR_H2B_MIN_DISTANCE_BETWEEN_BOT_CARS",
    "RANDOMIZE_BOT_CAR_LOCATIONS": "DR_H2B_RANDOMIZE_BOT_CAR_LOCATIONS",
    "BOT_CAR_SPEED": "DR_H2B_BOT_CAR_SPEED",
    "PENALTY_SECONDS": "DR_H2B_BOT_CAR_PENALTY",
}


def training_params(settings: Settings, target: S3Location, metrics_key: str = "metrics/TrainingMetrics.json") -> dict[str, str]:
    """The parameters as a mapping; ``metrics_key`` is where the metrics file lands below the target."""
    params: dict[str, str] = {
        "JOB_TYPE": "TRAINING",
        "METRICS_S3_BUCKET": target.bucket,
        "METRICS_S3_OBJECT_KEY": target.key(metrics_key),
        "MODEL_METADATA_FILE_S3_KEY": target.key("model/model_metadata.json"),
        "REWARD_FILE_S3_KEY": target.key("reward_function.py"),
        "SAGEMAKER_SHARED_S3_BUCKET": target.bucket,
        "SAGEMAKER_SHARED_S3_PREFIX": target.prefix,
    }
    for name, variable in _FROM_SETTINGS.items():
        value = _one_line_setting(settings, variable)
        if value is not None:
            params[name] = value
    params.setdefault("DISPLAY_NAME", params.get("CAR_NAME", ""))
    params.setdefault("RACER_NAME", params.get("CAR_NAME", ""))
    if params.get("BODY_SHELL_TYPE", "deepracer") == "deepracer" and settings.get("DR_CAR_COLOR"):
        params["CAR_COLOR"] = _one_line_setting(settings, "DR_CAR_COLOR") or ""
    race_type = params.get("RACE_TYPE", "TIME_TRIAL")
    extra = _OBJECT_AVOIDANCE if race_type == "OBJECT_AVOIDANCE" else _HEAD_TO_BOT if race_type == "HEAD_TO_BOT" else {}
    for name, variable in extra.items():
        value = _one_line_setting(settings, variable)
        if value is not None:
            params[name] = value
    return {key: str(value) for key, value in params.items()}


def _control_character(value: str) -> str | None:
    found = next((ch for ch in value if ord(ch) < 32 or ord(ch) == 127), None)
    if found is None:
        return None
    return {"\n": "a newline", "\r": "a carriage return", "\t": "a tab", "\0": "a NUL byte"}.get(found, f"the control character {found!r}")


def _one_line_setting(settings: Settings, variable: str) -> str | None:
    """The setting, refused (naming it and where it came from) when it would break the YAML line."""
    value = settings.get(variable)
    if value is not None and (what := _control_character(value)):
        origin = settings.origin(variable)
        where = f" ({origin})" if origin else ""
        raise DrtasksError(f"{variable}{where} contains {what}; training_params.yaml takes one-line values")
    return value


def _quoted(value: str) -> str:
    """A YAML single-quoted scalar: always a string (never a bool or number), '' escapes a quote."""
    if what := _control_character(value):
        raise DrtasksError(f"a training parameter contains {what}: {shorten(value)}")
    return "'" + value.replace("'", "''") + "'"


def to_yaml(params: dict[str, str]) -> bytes:
    # Quote every value: the simapp expects strings, and YAML would otherwise turn True into a bool.
    return "".join(f"{key}: {_quoted(value)}\n" for key, value in params.items()).encode()
