"""Resolve every DR_* setting through the layers, remembering where each value came from.

Precedence, lowest to highest: built-in defaults < system.env < run file < profile (its
`extends` chain first) < process environment DR_* variables < task flags.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

from drtasks.config import envfile
from drtasks.errors import DrtasksError, one_line

LAYERS = ("default", "system.env", "run file", "profile", "env", "flag")

DEFAULTS: dict[str, str] = {
    "DR_CLOUD": "aws",
    "DR_AWS_APP_REGION": "us-east-1",
    "DR_LOCAL_S3_BUCKET": "bucket",
    "DR_LOCAL_S3_MODEL_PREFIX": "rl-deepracer-sagemaker",
    "DR_LOCAL_S3_CUSTOM_FILES_PREFIX": "custom_files",
    "DR_LOCAL_S3_REWARD_KEY": "custom_files/reward_function.py",
    "DR_UPLOAD_CHECKPOINT": "last",
    "DR_WORLD_NAME": "reInvent2019_track",
    "DR_RACE_TYPE": "TIME_TRIAL",
    "DR_CAR_NAME": "FastCar",
    "DR_CAR_BODY_SHELL_TYPE": "deepracer",
    "DR_CAR_COLOR": "Red",
    "DR_CAR_ZIP_SOURCE": "auto",
}


@dataclass(frozen=True)
class Origin:
    layer: str
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.layer} ({self.detail})" if self.detail else self.layer


@dataclass(frozen=True)
class Setting:
    key: str
    value: str
    origin: Origin


@dataclass
class Settings:
    """The resolved DR_* namespace, plus the profile chain it was built from."""

    values: dict[str, Setting] = field(default_factory=dict)
    profile_name: str | None = None
    dr_dir: Path = Path(".")
    warnings: list[str] = field(default_factory=list)
    files_read: list[Path] = field(default_factory=list)  # the env files the values came from

    def get(self, key: str, default: str | None = None) -> str | None:
        setting = self.values.get(key)
        if setting is None or setting.value == "":
            return default
        return setting.value

    def origin(self, key: str) -> Origin | None:
        setting = self.values.get(key)
        return setting.origin if setting else None

    def set(self, key: str, value: str, origin: Origin) -> None:
        self.values[key] = Setting(key, value, origin)

    def require(self, key: str, hint: str) -> str:
        value = self.get(key)
        if value is None:
            raise DrtasksError(f"{key} is not set; {hint} ({self.where_read()})")
        return value

    def where_read(self) -> str:
        """Which DR_DIR and which files were read: what a "not set" error should point the user at."""
        if not self.dr_dir.exists():
            return f"DR_DIR={self.dr_dir} does not exist"
        if not self.dr_dir.is_dir():
            return f"DR_DIR={self.dr_dir} is a file, not a folder"
        read = ", ".join(path.name if path.parent == self.dr_dir else str(path) for path in self.files_read)
        profile = f", profile {self.profile_name}" if self.profile_name else ""
        return f"DR_DIR={self.dr_dir}; read: {read or 'no env file (neither system.env nor run.env is there)'}{profile}"


def run_file(dr_dir: Path, environ: Mapping[str, str]) -> Path:
    """DRfC's choice of run file: DR_CONFIG, else the experiment's run.env, else run.env."""
    if environ.get("DR_CONFIG"):
        configured = Path(environ["DR_CONFIG"])
        return configured if configured.is_absolute() else dr_dir / configured
    if environ.get("DR_EXPERIMENT_NAME"):
        return dr_dir / "experiments" / environ["DR_EXPERIMENT_NAME"] / "run.env"
    return dr_dir / "run.env"


def dr_dir_from(environ: Mapping[str, str]) -> Path:
    return Path(environ.get("DR_DIR") or os.getcwd())


def _stderr_warning(message: str) -> None:
    print(f"warning: {one_line(message)}", file=sys.stderr)


def resolve(
    profile: str | None = None,
    flags: Mapping[str, tuple[str, str]] | None = None,
    environ: Mapping[str, str] | None = None,
    warn: Callable[[str], None] = _stderr_warning,
) -> Settings:
    """Build Settings. ``flags`` maps DR_* keys to (value, flag name) for provenance."""
    environ = dict(os.environ if environ is None else environ)
    dr_dir = dr_dir_from(environ)
    settings = Settings(dr_dir=dr_dir)

    def warn_once(message: str) -> None:
        settings.warnings.append(message)
        warn(message)

    for key, value in DEFAULTS.items():
        settings.set(key, value, Origin("default"))

    file_entries: list[tuple[str, envfile.EnvEntry]] = []
    known: dict[str, str] = {}
    chosen_run = run_file(dr_dir, environ)
    for layer, path, required in (
        ("system.env", dr_dir / "system.env", False),
        ("run file", chosen_run, bool(environ.get("DR_CONFIG") or environ.get("DR_EXPERIMENT_NAME"))),
    ):
        if not path.exists() and not required:
            continue
        # Undefined references are judged once every layer is in: a higher layer may define them.
        settings.files_read.append(path)
        for entry in envfile.read_env_file(path, known, environ, lambda _message: None):
            known[entry.key] = entry.value
            settings.set(entry.key, entry.value, Origin(layer, f"{_short(path, dr_dir)}:{entry.line}"))
            file_entries.append((layer, entry))

    profile_name = profile or environ.get("DRTASKS_PROFILE") or None
    if profile_name:
        from drtasks.config import profile as profiles  # pydantic: paid only when a profile is named

        for loaded in profiles.load_chain(profile_name, dr_dir):
            where = _short(loaded.path, dr_dir)
            for key, value, line in loaded.assignments():
                settings.set(key, value, Origin("profile", f"{loaded.name}: {where}:{line}"))
        settings.profile_name = profile_name

    for key, value in environ.items():
        if key.startswith("DR_") and key not in ("DR_DIR", "DR_CONFIG"):
            settings.set(key, value, Origin("env", f"${key}"))

    for key, (value, flag) in (flags or {}).items():
        settings.set(key, value, Origin("flag", flag))

    undefined = _follow_overridden_references(settings, file_entries, environ)
    _judge_undefined(settings, file_entries, undefined, warn_once)
    return settings


# Variables that name where data is read or written: buckets, prefixes, keys, endpoints and the
# profiles that hold their credentials. A reference to an undefined variable in one of them is an
# error, never a silent empty string: `DR_UPLOAD_S3_PREFIX=$TYPO/` would otherwise be the bucket root.
_LOCATION_VARIABLE = re.compile(
    r"^DR_\w*(_S3_BUCKET|_S3_\w*PREFIX|_S3_\w*_KEY|ENDPOINT_URL|_S3_PROFILE)$|^DR_(DROA_URL|REMOTE_MINIO_URL)$"
)


def is_location_variable(key: str) -> bool:
    return bool(_LOCATION_VARIABLE.match(key))


def _in_effect(settings: Settings, layer: str, entry: envfile.EnvEntry) -> bool:
    current = settings.values.get(entry.key)
    if current is None or current.origin.layer != layer:
        return False
    return current.origin.detail.split(", follows")[0].endswith(f":{entry.line}")


def _judge_undefined(
    settings: Settings,
    file_entries: list[tuple[str, envfile.EnvEntry]],
    undefined: dict[int, tuple[str, ...]],
    warn: Callable[[str], None],
) -> None:
    """Refuse an undefined reference in a location variable; warn about the others still in effect."""
    for index, (layer, entry) in enumerate(file_entries):
        names = undefined.get(index, entry.undefined)
        if not names or not _in_effect(settings, layer, entry):
            continue
        where = f"{entry.path}:{entry.line}"
        if is_location_variable(entry.key):
            listed = ", ".join(f"${name}" for name in names)
            raise DrtasksError(
                f"{where}: {entry.key} refers to {listed}, which is not defined; "
                "an S3 bucket, prefix, key or endpoint is never guessed"
            )
        for name in names:
            warn(f"{where}: ${name} is not defined; it expands to an empty string")


def _follow_overridden_references(
    settings: Settings, file_entries: list[tuple[str, envfile.EnvEntry]], environ: Mapping[str, str]
) -> dict[int, tuple[str, ...]]:
    """Re-expand file values whose references a higher layer changed.

    `DR_UPLOAD_S3_PREFIX=$DR_LOCAL_S3_MODEL_PREFIX-1` in run.env should follow a profile that sets
    another model prefix, as it would had the profile's value been in run.env. Returns, by index in
    ``file_entries``, the references still undefined after re-expansion.
    """
    file_layers = {"system.env", "run file"}
    still_undefined: dict[int, tuple[str, ...]] = {}
    for index, (layer, entry) in enumerate(file_entries):
        current = settings.values.get(entry.key)
        if current is None or current.origin.layer != layer or not entry.refs:
            continue
        if not current.origin.detail.endswith(f":{entry.line}"):
            continue  # a later line of the same file won
        moved = [ref for ref in entry.refs if (o := settings.origin(ref)) and o.layer not in file_layers | {"default"}]
        if not moved:
            continue

        def lookup(name: str) -> str | None:
            setting = settings.values.get(name)
            return setting.value if setting else environ.get(name)

        missing: list[str] = []
        value = envfile.expand(entry.raw, lookup, missing.append)
        still_undefined[index] = tuple(dict.fromkeys(missing))
        detail = f"{current.origin.detail}, follows {', '.join(moved)}"
        settings.set(entry.key, value, Origin(layer, detail))
    return still_undefined


def _short(path: Path, base: Path) -> str:
    try:
        return str(path.resolve().relative_to(base.resolve()))
    except ValueError:
        return str(path)
