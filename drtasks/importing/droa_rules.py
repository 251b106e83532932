"""What DeepRacer on AWS (DRoA) accepts in an import, checked locally before anything is uploaded.

The import handler of DRoA v1.2.5 answers 400 for the cases below only after the racer has uploaded
the whole model; finding them here spares the upload. Checks are pure functions over the parsed
files and return ``Problem`` values: ``blocking`` ones are what DRoA refuses, the others are what it
would silently change (a shell it does not know becomes the white deepracer car, for instance).

This module also writes the ``training_params.yaml`` DRoA reads (``training_params_for_droa``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any, Mapping

import yaml

MODEL_METADATA = "model_metadata.json"
REWARD_FUNCTION = "reward_function.py"
TRAINING_PARAMS = "training_params.yaml"
HYPERPARAMETERS = "ip/hyperparameters.json"
# DRoA reads hyperparameters under ip/, not from the root like the other three.
REQUIRED_FILES = (MODEL_METADATA, REWARD_FUNCTION, TRAINING_PARAMS, HYPERPARAMETERS)

NAME_PATTERN = re.compile(r"^[a-zA-Z0-9-]+$")
NAME_MAX = 64
DESCRIPTION_PATTERN = re.compile(r"^[a-zA-Z0-9- ]+$")
DESCRIPTION_MAX = 255

CLOCKWISE = "CLOCKWISE"
COUNTER_CLOCKWISE = "COUNTER_CLOCKWISE"
DIRECTION_SUFFIXES = {"_cw": CLOCKWISE, "_ccw": COUNTER_CLOCKWISE}

MAX_OBSTACLES = 6
FIRST_OBSTACLE_MIN = 0.07
LAST_OBSTACLE_MAX = 0.9
OBSTACLE_MIN_GAP = 0.13

DEEPRACER_SHELL = "deepracer"
# Every colour name DRoA knows (its CarColor enum); CAR_COLOR is matched upper-cased.
CAR_COLORS = frozenset(
    "BLACK BLUE BROWN GOLDEN GOLDENPINK GREEN GREY ORANGE PINK PURPLE RED SKY_BLUE TEAL WHITE YELLOW".split()
)
DEEPRACER_COLORS = ("BLACK", "BLUE", "GREY", "ORANGE", "PURPLE", "RED", "WHITE")
# The simulator's BODY_SHELL_TYPE ids DRoA maps back to one of its shells; each id fixes the colour.
SIMAPP_SHELL_IDS = frozenset(
    """
    f1_car_mercedes_08 f1_amazon_van_purple_with_wheel f1_amazon_van_white_with_wheel f1_baja_truck_05
    f1_baja_truck_03 f1_car_banana_01 f1_august_bike_02_with_wheel f1_august_bike_01_with_wheel
    f1_september_bug_01_with_wheel f1_september_bug_02_with_wheel f1_car_clown_01 f1_june_car_01
    f1_june_car_02 f1_dog_van f1_dragon f1_dune_buggy_01 f1_dune_buggy_07 f1_2021
    f1_nudie_purple_with_wheel f1_nudie_orange_with_wheel f1_nudie_white_with_wheel
    f1_october_wagon_01_with_wheel f1_october_wagon_02_with_wheel f1_december_car_01_with_wheel
    f1_december_car_02_with_wheel f1_hotrod_03 fl_hotrod_02 f1_kart f1_lorry_01 f1_lunar_rover
    f1_july_car_03_with_wheel f1_mars_rover_with_wheel f1_monster_truck_01 f1_mustang_eleanor_01
    f1_mustang_eleanor_02 f1_mustang_eleanor_03 f1_car_retro_01 f1_rogue_01 f1_snail f1_car_tron_01
    f1_car_tron_02 f1_car_tron_03 f1_car_tron_04 f1_car_tron_05 f1_car_tron_06 f1_car_tron_07
    f1_car_tron_08 f1_car_tron_09 f1_car_tron_10 f1_july_car_01_with_wheel f1_july_car_02_with_wheel
    """.split()
)

_TRUTHY = {"true", "1", "yes", "y", "on"}
MISSING = "missing: DRoA needs it to import the model"


@dataclass(frozen=True)
class Problem:
    """One finding about the files: ``file`` names where it is, ``blocking`` means DRoA refuses it."""

    file: str
    message: str
    blocking: bool = True

    def __str__(self) -> str:
        return f"{self.file}: {self.message}"


@dataclass(frozen=True)
class Track:
    track_id: str
    default_direction: str
    enabled_directions: tuple[str, ...]

    @property
    def single_direction(self) -> bool:
        return len(self.enabled_directions) == 1


@lru_cache(maxsize=1)
def droa_tracks() -> dict[str, Track]:
    """DRoA's tracks by id, from the copy of its track list shipped with drtasks."""
    text = resources.files("drtasks.data").joinpath("droa_tracks.json").read_text(encoding="utf-8")
    return {
        entry["trackId"]: Track(entry["trackId"], entry["defaultDirection"], tuple(entry["enabledDirections"]))
        for entry in json.loads(text)["tracks"]
    }


@dataclass(frozen=True)
class DroaModelFiles:
    """The four files DRoA reads, parsed; ``None`` for a file that is not there."""

    training_params: dict[str, Any] | None
    model_metadata: dict[str, Any] | None
    hyperparameters: dict[str, Any] | None
    reward_function: str | None


def parse_model_files(texts: Mapping[str, bytes | str | None]) -> tuple[DroaModelFiles, list[Problem]]:
    """Parse the files given by relative key (see REQUIRED_FILES); missing or unreadable ones are problems."""
    problems: list[Problem] = []

    def text_of(name: str) -> str | None:
        raw = texts.get(name)
        if raw is None:
            problems.append(Problem(name, MISSING))
            return None
        return raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw

    def mapping(name: str, loader: Any) -> dict[str, Any] | None:
        text = text_of(name)
        if text is None:
            return None
        try:
            value = loader(text)
        except (ValueError, yaml.YAMLError) as exc:
            problems.append(Problem(name, f"cannot be parsed: {str(exc).splitlines()[0]}"))
            return None
        if not isinstance(value, dict):
            problems.append(Problem(name, "must hold a mapping of keys to values"))
            return None
        return value

    files = DroaModelFiles(
        training_params=mapping(TRAINING_PARAMS, yaml.safe_load),
        model_metadata=mapping(MODEL_METADATA, json.loads),
        hyperparameters=mapping(HYPERPARAMETERS, json.loads),
        reward_function=text_of(REWARD_FUNCTION),
    )
    return files, problems


def check_names(name: str, description: str | None = None) -> list[Problem]:
    """The model name and description rules of DRoA's import request."""
    problems = []
    if not NAME_PATTERN.match(name or "") or len(name) > NAME_MAX:
        problems.append(
            Problem("model name", f"'{name}' must be 1-{NAME_MAX} letters, digits or hyphens")
        )
    if description and (not DESCRIPTION_PATTERN.match(description) or len(description) > DESCRIPTION_MAX):
        problems.append(
            Problem(
                "model description",
                f"must be at most {DESCRIPTION_MAX} letters, digits, spaces or hyphens",
            )
        )
    return problems


def check_model_files(files: DroaModelFiles) -> list[Problem]:
    """Every rule DRoA applies to the files before it accepts an import."""
    problems: list[Problem] = []
    if files.training_params is None:
        problems.append(Problem(TRAINING_PARAMS, MISSING))
    else:
        problems += check_car(files.training_params)
        problems += check_track(files.training_params)
        problems += check_object_avoidance(files.training_params)
    if files.model_metadata is None:
        problems.append(Problem(MODEL_METADATA, MISSING))
    else:
        problems += check_algorithm(files.model_metadata, files.hyperparameters)
        problems += check_action_space(files.model_metadata)
    if files.hyperparameters is None:
        problems.append(Problem(HYPERPARAMETERS, MISSING))
    if files.reward_function is None:
        problems.append(Problem(REWARD_FUNCTION, MISSING))
    return problems


def check_import(name: str, description: str | None, texts: Mapping[str, bytes | str | None]) -> list[Problem]:
    """Names plus files, from the raw file contents: the one call to make before uploading."""
    files, parse_problems = parse_model_files(texts)
    # A file the parser already reported (missing or unreadable) is not reported again as missing.
    reported = {p.file for p in parse_problems}
    rules = [p for p in check_model_files(files) if not (p.file in reported and p.message.startswith(MISSING))]
    return check_names(name, description) + parse_problems + rules


def check_car(params: Mapping[str, Any]) -> list[Problem]:
    """BODY_SHELL_TYPE/CAR_COLOR as DRoA reads them: unknown values silently become a white deepracer."""
    shell = params.get("BODY_SHELL_TYPE")
    if not shell:
        return []
    shell = str(shell)
    if shell == DEEPRACER_SHELL:
        color = params.get("CAR_COLOR")
        if not color:
            return []
        upper = str(color).upper()
        if upper in DEEPRACER_COLORS:
            return []
        if upper in CAR_COLORS:
            offered = ", ".join(c.capitalize() for c in DEEPRACER_COLORS)
            return [Problem(TRAINING_PARAMS, f"CAR_COLOR '{color}' is not available for the deepracer shell ({offered})")]
        return [Problem(TRAINING_PARAMS, f"CAR_COLOR '{color}' is unknown to DRoA: the car will be White", blocking=False)]
    if shell in SIMAPP_SHELL_IDS:
        return []
    return [
        Problem(
            TRAINING_PARAMS,
            f"BODY_SHELL_TYPE '{shell}' is unknown to DRoA: the car will be the White deepracer shell",
            blocking=False,
        )
    ]


def split_world_name(world_name: str) -> tuple[str, str | None]:
    """``reInvent2019_track_cw`` -> (``reInvent2019_track``, CLOCKWISE); no suffix -> (name, None)."""
    for suffix, direction in DIRECTION_SUFFIXES.items():
        if world_name.endswith(suffix):
            return world_name[: -len(suffix)], direction
    return world_name, None


def check_track(params: Mapping[str, Any]) -> list[Problem]:
    world = params.get("WORLD_NAME")
    if not world:
        return [Problem(TRAINING_PARAMS, "WORLD_NAME is missing")]
    world = str(world)
    tracks = droa_tracks()
    track = tracks.get(world)
    if track is None:
        bare, suffix_direction = split_world_name(world)
        if suffix_direction and bare in tracks:
            return [
                Problem(
                    TRAINING_PARAMS,
                    f"WORLD_NAME '{world}' carries a direction suffix: DRoA wants '{bare}' "
                    "with TRACK_DIRECTION_CLOCKWISE",
                )
            ]
        return [Problem(TRAINING_PARAMS, f"WORLD_NAME '{world}' is not a track of DRoA")]
    if track.single_direction:
        # DRoA ignores TRACK_DIRECTION_CLOCKWISE here and drives the track's only direction.
        return []
    flag = params.get("TRACK_DIRECTION_CLOCKWISE")
    if flag is None:
        return [
            Problem(
                TRAINING_PARAMS,
                f"TRACK_DIRECTION_CLOCKWISE is missing: DRoA will drive {world} counter-clockwise",
                blocking=False,
            )
        ]
    if not isinstance(flag, bool):
        return [
            Problem(
                TRAINING_PARAMS,
                f"TRACK_DIRECTION_CLOCKWISE is {flag!r}, not a YAML boolean: DRoA reads only an unquoted "
                "true as clockwise",
            )
        ]
    direction = CLOCKWISE if flag else COUNTER_CLOCKWISE
    if direction not in track.enabled_directions:
        return [Problem(TRAINING_PARAMS, f"track {world} is not available in direction {direction}")]
    return []


def _obstacle_percentages(positions: list[Any]) -> list[float] | None:
    """Track percentages of "percentage,lane" entries; None when one cannot be read."""
    percentages = []
    for entry in positions:
        try:
            percentages.append(float(str(entry).split(",")[0].strip()))
        except ValueError:
            return None
    return percentages


def check_object_avoidance(params: Mapping[str, Any]) -> list[Problem]:
    if params.get("RACE_TYPE") != "OBJECT_AVOIDANCE":
        return []
    count = params.get("NUMBER_OF_OBSTACLES")
    # DRoA compares the count with the number of positions as a number: a quoted '3' never matches.
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_OBSTACLES:
        return [
            Problem(
                TRAINING_PARAMS,
                f"NUMBER_OF_OBSTACLES is {count!r}: it must be a YAML integer from 1 to {MAX_OBSTACLES}",
            )
        ]
    positions = params.get("OBJECT_POSITIONS") or []
    if params.get("RANDOMIZE_OBSTACLE_LOCATIONS") is True or not positions:
        return []
    if not isinstance(positions, list):
        return [Problem(TRAINING_PARAMS, "OBJECT_POSITIONS must be a list of 'percentage,lane' entries")]
    if len(positions) != count:
        return [
            Problem(
                TRAINING_PARAMS,
                f"OBJECT_POSITIONS has {len(positions)} entries but NUMBER_OF_OBSTACLES is {count}",
            )
        ]
    percentages = _obstacle_percentages(positions)
    if percentages is None:
        return [Problem(TRAINING_PARAMS, "OBJECT_POSITIONS entries must read 'percentage,lane'")]
    percentages.sort()
    problems = []
    if percentages[0] < FIRST_OBSTACLE_MIN:
        problems.append(Problem(TRAINING_PARAMS, f"the first obstacle is before {FIRST_OBSTACLE_MIN} of the lap"))
    if percentages[-1] > LAST_OBSTACLE_MAX:
        problems.append(Problem(TRAINING_PARAMS, f"the last obstacle is after {LAST_OBSTACLE_MAX} of the lap"))
    # Same arithmetic as DRoA (no tolerance), so the verdict matches its verdict.
    if any(b - a < OBSTACLE_MIN_GAP for a, b in zip(percentages, percentages[1:])):
        problems.append(Problem(TRAINING_PARAMS, f"obstacles must be at least {OBSTACLE_MIN_GAP} of the lap apart"))
    return problems


def check_algorithm(metadata: Mapping[str, Any], hyperparameters: Mapping[str, Any] | None) -> list[Problem]:
    if metadata.get("training_algorithm") != "sac":
        return []
    problems = []
    if metadata.get("action_space_type") == "discrete":
        problems.append(Problem(MODEL_METADATA, "SAC does not work with a discrete action space"))
    episodes = (hyperparameters or {}).get("num_episodes_between_training")
    if hyperparameters is not None and (isinstance(episodes, bool) or episodes != 1):
        problems.append(
            Problem(HYPERPARAMETERS, f"num_episodes_between_training is {episodes!r}: SAC needs 1")
        )
    return problems


def check_action_space(metadata: Mapping[str, Any]) -> list[Problem]:
    if metadata.get("action_space_type") != "continuous":
        return []
    space = metadata.get("action_space")
    try:
        speed, angle = space["speed"], space["steering_angle"]  # type: ignore[index]
        ranges = {"speed": (float(speed["low"]), float(speed["high"])),
                  "steering_angle": (float(angle["low"]), float(angle["high"]))}
    except (TypeError, KeyError, ValueError):
        return [Problem(MODEL_METADATA, "a continuous action_space needs speed and steering_angle with low and high")]
    return [
        Problem(MODEL_METADATA, f"continuous {key}: low {low} must be below high {high}")
        for key, (low, high) in ranges.items()
        if low >= high
    ]


def _truthy(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.strip().lower() in _TRUTHY)


def droa_direction(params: Mapping[str, Any]) -> str:
    """The direction the model was trained in, decided from DRfC's training params.

    Rule: a ``_cw``/``_ccw`` suffix of WORLD_NAME names the direction; without one the track's default
    direction in DRoA's list (counter-clockwise for an unknown track). A truthy REVERSE_DIR (what
    DR_TRAIN_REVERSE_DIRECTION becomes), REVERSE_DIRECTION or DR_TRAIN_REVERSE_DIRECTION then flips it,
    as it flips the simulator. An existing boolean TRACK_DIRECTION_CLOCKWISE wins over all of this.
    """
    existing = params.get("TRACK_DIRECTION_CLOCKWISE")
    if isinstance(existing, bool):
        return CLOCKWISE if existing else COUNTER_CLOCKWISE
    bare, direction = split_world_name(str(params.get("WORLD_NAME") or ""))
    if direction is None:
        track = droa_tracks().get(bare)
        direction = track.default_direction if track else COUNTER_CLOCKWISE
    if any(_truthy(params.get(key)) for key in ("REVERSE_DIR", "REVERSE_DIRECTION", "DR_TRAIN_REVERSE_DIRECTION")):
        direction = COUNTER_CLOCKWISE if direction == CLOCKWISE else CLOCKWISE
    return direction


def _as_int(value: Any) -> Any:
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return value


def training_params_for_droa(base_params: Mapping[str, Any], bucket: str, prefix: str) -> dict[str, Any]:
    """DRfC's training params rewritten for DRoA's upload bucket and its reading rules.

    S3 fields point at ``bucket``/``prefix``; WORLD_NAME loses its direction suffix and
    TRACK_DIRECTION_CLOCKWISE becomes a YAML boolean (see ``droa_direction``); the object avoidance
    values DRoA compares as numbers/booleans lose DRfC's quotes. Everything else is kept as is.
    """
    prefix = prefix.strip("/")
    params = dict(base_params)
    params["TRACK_DIRECTION_CLOCKWISE"] = droa_direction(base_params) == CLOCKWISE
    params["WORLD_NAME"] = split_world_name(str(base_params.get("WORLD_NAME") or ""))[0]
    params["SAGEMAKER_SHARED_S3_BUCKET"] = bucket
    params["SAGEMAKER_SHARED_S3_PREFIX"] = prefix
    params["METRICS_S3_BUCKET"] = bucket
    params["METRICS_S3_OBJECT_KEY"] = f"{prefix}/TrainingMetrics.json"
    params["MODEL_METADATA_FILE_S3_KEY"] = f"{prefix}/model/model_metadata.json"
    params["REWARD_FILE_S3_KEY"] = f"{prefix}/reward_function.py"
    if params.get("RACE_TYPE") == "OBJECT_AVOIDANCE":
        if "NUMBER_OF_OBSTACLES" in params:
            params["NUMBER_OF_OBSTACLES"] = _as_int(params["NUMBER_OF_OBSTACLES"])
        if isinstance(params.get("RANDOMIZE_OBSTACLE_LOCATIONS"), str):
            params["RANDOMIZE_OBSTACLE_LOCATIONS"] = _truthy(params["RANDOMIZE_OBSTACLE_LOCATIONS"])
        positions = params.get("OBJECT_POSITIONS")
        if isinstance(positions, str):
            params["OBJECT_POSITIONS"] = [p.strip() for p in positions.split(";") if p.strip()]
    return params


def dump_training_params(params: Mapping[str, Any]) -> str:
    """YAML text in which booleans and numbers stay unquoted, as DRoA needs."""
    return yaml.safe_dump(dict(params), default_flow_style=False, sort_keys=False)
