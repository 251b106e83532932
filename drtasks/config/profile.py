"""YAML profiles: schema, discovery, line-aware errors and the `extends` chain."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from drtasks.config.files import read_config_text
from drtasks.errors import DrtasksError, shorten

PROJECT_PROFILES = Path(__file__).resolve().parents[2] / "profiles"
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
_ENV_KEY = re.compile(r"^DR_[A-Z0-9_]+$")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class S3Section(_Section):
    bucket: str | None = None
    prefix: str | None = None
    endpoint_url: str | None = None
    aws_profile: str | None = None
    region: str | None = None


class SourceSection(S3Section):
    reward_key: str | None = None
    metrics_prefix: str | None = None


class ImportSection(_Section):
    target: Literal["console", "droa"] | None = None
    name: str | None = None
    description: str | None = None
    endpoint_url: str | None = None
    droa_url: str | None = None
    droa_username: str | None = None
    droa_s3_endpoint_url: str | None = None
    poll_seconds: Union[int, float, None] = None


class CarZipSection(_Section):
    source: Literal["auto", "container", "s3"] | None = None
    container: str | None = None
    output: str | None = None
    upload: bool | None = None
    cars: list[str] | None = None  # car consoles for inv car-push, https://HOST[:PORT]


class BackupSection(_Section):
    to: str | None = None  # s3://bucket/prefix or a folder; each model's backup is <to>/<model prefix>/
    endpoint_url: str | None = None
    aws_profile: str | None = None
    region: str | None = None
    simtraces: bool | None = None  # also back up training-simtrace/ and evaluation-simtrace/
    videos: bool | None = None  # also back up the camera-* video folders


# 'last', 'best', a number, or best-by as 'best-by:laptime' or the mapping {best-by: laptime};
# the validator below turns every best-by into the string form DR_UPLOAD_CHECKPOINT holds.
Checkpoint = Union[Literal["last", "best"], int, str]
# What `inv ship` may run, in the order it runs them.
StepName = Literal["increment", "upload", "import", "submit", "car-zip", "car-push", "backup"]


class Profile(_Section):
    """One file under profiles/. Every key is optional; unset keys fall through to lower layers."""

    description: str = ""
    extends: str | None = None
    source: SourceSection = Field(default_factory=SourceSection)
    upload: S3Section = Field(default_factory=S3Section)
    role: str | None = None
    checkpoint: Checkpoint | None = None
    import_: ImportSection = Field(default_factory=ImportSection, alias="import")
    car_zip: CarZipSection = Field(default_factory=CarZipSection)
    backup: BackupSection = Field(default_factory=BackupSection)
    steps: list[StepName] | None = None  # what `inv ship` runs for this profile (default: upload)
    env: dict[str, Union[str, int, float, bool]] = Field(default_factory=dict)

    @field_validator("checkpoint", mode="before")
    @classmethod
    def _policy(cls, value: Any) -> Any:
        from drtasks.config.targets import POLICY_FORMS, parse_best_by

        if isinstance(value, dict):
            if list(value) != ["best-by"]:
                raise ValueError(f"a checkpoint mapping has the one key best-by (e.g. best-by: laptime), not {', '.join(map(str, value))}")
            value = f"best-by:{value['best-by']}"
        if isinstance(value, str) and value.strip().lower().startswith("best-by"):
            try:
                return str(parse_best_by(value.strip()[len("best-by") :].lstrip(" :"), "checkpoint"))
            except DrtasksError as error:
                raise ValueError(error.message.removeprefix("checkpoint: ")) from None
        if isinstance(value, bool) or not (isinstance(value, int) or value in ("last", "best")):
            raise ValueError(f"must be {POLICY_FORMS}")
        if isinstance(value, int) and value < 0:
            raise ValueError("a checkpoint number is 0 or more")
        return value

    @field_validator("steps")
    @classmethod
    def _each_once(cls, value: list[str] | None) -> list[str] | None:
        if value is not None:
            if not value:
                raise ValueError("list at least one step")
            repeated = sorted({step for step in value if value.count(step) > 1})
            if repeated:
                raise ValueError(f"{', '.join(repeated)} listed twice")
        return value

    @field_validator("env")
    @classmethod
    def _dr_keys(cls, value: dict[str, Any]) -> dict[str, Any]:
        for key in value:
            if not _ENV_KEY.match(key):
                raise ValueError(f"env key {shorten(key)} is not a DR_* variable name")
        return value


# Profile key -> the DRfC (or drtasks) variable it sets. One namespace keeps precedence simple:
# every layer, from system.env to flags, speaks in DR_* variables.
PROFILE_VARIABLES: dict[tuple[str, ...], str] = {
    ("source", "bucket"): "DR_LOCAL_S3_BUCKET",
    ("source", "prefix"): "DR_LOCAL_S3_MODEL_PREFIX",
    ("source", "endpoint_url"): "DR_LOCAL_S3_ENDPOINT_URL",
    ("source", "aws_profile"): "DR_LOCAL_S3_PROFILE",
    ("source", "region"): "DR_LOCAL_S3_REGION",
    ("source", "reward_key"): "DR_LOCAL_S3_REWARD_KEY",
    ("source", "metrics_prefix"): "DR_LOCAL_S3_METRICS_PREFIX",
    ("upload", "bucket"): "DR_UPLOAD_S3_BUCKET",
    ("upload", "prefix"): "DR_UPLOAD_S3_PREFIX",
    ("upload", "endpoint_url"): "DR_UPLOAD_S3_ENDPOINT_URL",
    ("upload", "aws_profile"): "DR_UPLOAD_S3_PROFILE",
    ("upload", "region"): "DR_UPLOAD_S3_REGION",
    ("role",): "DR_UPLOAD_S3_ROLE",
    ("checkpoint",): "DR_UPLOAD_CHECKPOINT",
    ("import", "target"): "DR_IMPORT_TARGET",
    ("import", "name"): "DR_IMPORT_NAME",
    ("import", "description"): "DR_IMPORT_DESCRIPTION",
    ("import", "endpoint_url"): "DR_IMPORT_ENDPOINT_URL",
    ("import", "droa_url"): "DR_DROA_URL",
    ("import", "droa_username"): "DR_DROA_USERNAME",
    ("import", "droa_s3_endpoint_url"): "DR_DROA_S3_ENDPOINT_URL",
    ("import", "poll_seconds"): "DR_IMPORT_POLL_SECONDS",
    ("car_zip", "source"): "DR_CAR_ZIP_SOURCE",
    ("car_zip", "container"): "DR_CAR_ZIP_CONTAINER",
    ("car_zip", "output"): "DR_CAR_ZIP_OUTPUT",
    ("car_zip", "upload"): "DR_CAR_ZIP_UPLOAD",
    ("car_zip", "cars"): "DR_CAR_ZIP_CARS",
    ("backup", "to"): "DR_BACKUP_TO",
    ("backup", "endpoint_url"): "DR_BACKUP_S3_ENDPOINT_URL",
    ("backup", "aws_profile"): "DR_BACKUP_S3_PROFILE",
    ("backup", "region"): "DR_BACKUP_S3_REGION",
    ("backup", "simtraces"): "DR_BACKUP_SIMTRACES",
    ("backup", "videos"): "DR_BACKUP_VIDEOS",
}


@dataclass(frozen=True)
class LoadedProfile:
    name: str
    path: Path
    profile: Profile
    lines: dict[tuple[str, ...], int]  # key path -> line in the file, for provenance and errors

    def assignments(self) -> list[tuple[str, str, int]]:
        """(DR variable, value, line) for every key this profile sets, in a stable order."""
        data = self.profile.model_dump(by_alias=True, exclude_none=True)
        result: list[tuple[str, str, int]] = []
        for path, variable in PROFILE_VARIABLES.items():
            value: Any = data
            for part in path:
                value = value.get(part) if isinstance(value, dict) else None
            if value is not None:
                result.append((variable, _as_text(value), self.lines.get(path, 0)))
        for key, value in self.profile.env.items():
            result.append((key, _as_text(value), self.lines.get(("env", key), 0)))
        return result


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "True" if value else "False"  # DRfC writes booleans capitalised
    if isinstance(value, list):
        return ",".join(str(item) for item in value)  # DR_* variables are strings: a comma-separated list
    return str(value)


def search_dirs(dr_dir: Path) -> list[Path]:
    """The user's profiles first, then the examples shipped with drtasks."""
    dirs = [dr_dir / "profiles"]
    if PROJECT_PROFILES.resolve() != dirs[0].resolve():
        dirs.append(PROJECT_PROFILES)
    return dirs


def available(dr_dir: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for directory in search_dirs(dr_dir):
        if directory.is_dir():
            for path in sorted(directory.glob("*.yaml")):
                found.setdefault(path.stem, path)
    return found


def check_name(name: str) -> None:
    if "/" in name or "\\" in name or ".." in name or not _NAME.match(name):
        raise DrtasksError(f"--profile {shorten(name)}: a profile name is a plain file name (letters, digits, '-', '_', '.'), no path")


def find(name: str, dr_dir: Path) -> Path:
    check_name(name)
    profiles = available(dr_dir)
    if name not in profiles:
        names = ", ".join(sorted(profiles)) or "none"
        close = difflib.get_close_matches(name, profiles, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise DrtasksError(f"unknown profile {shorten(name)}{hint}; available: {names}")
    return profiles[name]


def _key_lines(node: yaml.Node, path: tuple[str, ...] = ()) -> dict[tuple[str, ...], int]:
    lines: dict[tuple[str, ...], int] = {}
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = (*path, str(key_node.value))
            lines[key] = key_node.start_mark.line + 1
            lines.update(_key_lines(value_node, key))
    return lines


def _section_fields(path: tuple[str | int, ...]) -> list[str]:
    model: type[BaseModel] = Profile
    for part in path:
        field = next((f for n, f in model.model_fields.items() if part in (n, f.alias)), None)
        annotation = getattr(field, "annotation", None)
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return [field.alias or name for name, field in model.model_fields.items()]


def _explain(error: dict[str, Any]) -> str:
    loc = tuple(str(part) for part in error["loc"] if not str(part).startswith(("literal[", "int", "str", "bool", "float", "function-")))
    dotted = ".".join(loc)
    if error["type"] == "extra_forbidden":
        choices = _section_fields(loc[:-1])
        close = difflib.get_close_matches(loc[-1], choices, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else f"; known keys: {', '.join(choices)}"
        return f"unknown key {shorten(dotted)}{hint}"
    if loc and loc[0] == "checkpoint":
        return f"checkpoint: {error['msg'].removeprefix('Value error, ')} (got {shorten(error.get('input'))})"
    message = error["msg"].removeprefix("Value error, ")
    return f"{shorten(dotted)}: {message} (got {shorten(error.get('input'))})"


# A profile is a few sections of scalars: nothing real nests deeper than `env: {KEY: value}`.
MAX_DEPTH = 16


class _ProfileLoader(yaml.SafeLoader):
    """SafeLoader without aliases and with bounded nesting.

    An alias shares a node, so a few hundred bytes of nested aliases stand for billions of values
    (the "billion laughs"); every walk over them (validation, error messages) would never end.
    `extends` is how profiles share values. Deep nesting would exhaust the composer's recursion.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise _ProfileShapeError(event.start_mark, "aliases (*name) are not allowed in a profile; use extends")
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise _ProfileShapeError(self.peek_event().start_mark, f"nested more than {MAX_DEPTH} levels deep")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


class _ProfileShapeError(yaml.YAMLError):
    def __init__(self, mark: Any, problem: str) -> None:
        super().__init__(problem)
        self.mark = mark
        self.problem = problem


def _compose(text: str, path: Path) -> yaml.Node | None:
    loader = _ProfileLoader(text)
    try:
        return loader.get_single_node()
    except _ProfileShapeError as error:
        raise DrtasksError(f"{path}:{error.mark.line + 1}: {error.problem}") from None
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = f":{mark.line + 1}" if mark else ""
        raise DrtasksError(f"{path}{line}: YAML syntax error: {error.problem or error.context}") from None
    except yaml.YAMLError as error:
        raise DrtasksError(f"{path}: YAML error: {error}") from None
    except RecursionError:  # a last resort: the depth limit above stops real input first
        raise DrtasksError(f"{path}: nested too deeply to be a profile") from None
    finally:
        loader.dispose()


def _construct(node: yaml.Node, path: Path) -> Any:
    loader = _ProfileLoader("")
    try:
        return loader.construct_document(node)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = f":{mark.line + 1}" if mark else ""
        raise DrtasksError(f"{path}{line}: YAML error: {error.problem or error.context}") from None
    except (yaml.YAMLError, TypeError, ValueError) as error:
        raise DrtasksError(f"{path}: YAML error: {shorten(str(error))}") from None
    finally:
        loader.dispose()


def load_file(name: str, path: Path) -> LoadedProfile:
    text = read_config_text(path, "profile")
    node = _compose(text, path)
    data = _construct(node, path) if node is not None else None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise DrtasksError(f"{path}:1: a profile is a mapping of keys, not {type(data).__name__}")
    lines = _key_lines(node) if node is not None else {}
    try:
        profile = Profile.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        loc = tuple(str(p) for p in first["loc"])
        if loc == ("checkpoint",) and ("checkpoint", "best-by") in lines:
            loc = ("checkpoint", "best-by")  # the mapping form: point at the metric's line
        line = next((lines[loc[:n]] for n in range(len(loc), 0, -1) if loc[:n] in lines), 1)
        raise DrtasksError(f"{path}:{line}: {_explain(first)}") from None
    return LoadedProfile(name, path, profile, lines)


def steps_of(name: str, dr_dir: Path) -> list[str] | None:
    """The steps the profile (or the nearest profile it extends) lists for `inv ship`."""
    for loaded in reversed(load_chain(name, dr_dir)):
        if loaded.profile.steps is not None:
            return list(loaded.profile.steps)
    return None


def load_chain(name: str, dr_dir: Path) -> list[LoadedProfile]:
    """The profile and its ancestors, the farthest ancestor first (lowest precedence)."""
    chain: list[LoadedProfile] = []
    seen: list[str] = []
    current: str | None = name
    while current is not None:
        if current in seen:
            cycle = " -> ".join([*seen, current])
            raise DrtasksError(f"profile '{name}': extends cycle: {cycle}")
        seen.append(current)
        loaded = load_file(current, find(current, dr_dir))
        chain.append(loaded)
        current = loaded.profile.extends
    return list(reversed(chain))


def rewrite_scalar(path: Path, line: int, keys: tuple[str, ...], new: str) -> str:
    """The text of profile ``path`` with the value of the key named one of ``keys`` on ``line`` set to ``new``.

    Found through the YAML nodes, so flow style (`upload: {prefix: a}`) and quoted keys work too.
    """
    text = read_config_text(path, "profile")
    node = _compose(text, path)
    pending = [node] if node is not None else []
    while pending:
        current = pending.pop()
        if not isinstance(current, yaml.MappingNode):
            continue
        for key_node, value_node in current.value:
            if (
                isinstance(value_node, yaml.ScalarNode)
                and key_node.start_mark.line + 1 == line
                and str(key_node.value) in keys
            ):
                start, end = value_node.start_mark.index, value_node.end_mark.index
                kept_newline = "\n" if text[start:end].endswith("\n") else ""
                return text[:start] + _yaml_scalar(new) + kept_newline + text[end:]
            pending.append(value_node)
    raise DrtasksError(f"{path}:{line}: no {' or '.join(keys)} value on this line to rewrite")


def _yaml_scalar(value: str) -> str:
    """``value`` as a YAML scalar that reads back as the same string (quoted only when needed)."""
    try:
        plain = yaml.safe_load(value) == value and "#" not in value and ": " not in value
    except yaml.YAMLError:
        plain = False
    return value if plain and value.strip() == value and value else "'" + value.replace("'", "''") + "'"
