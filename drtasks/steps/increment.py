"""The increment step (dr-increment-upload-model): bump the upload prefix where it is written down.

The plan names the file, the line and old -> new; later steps plan against the new prefix.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drtasks.config import targets
from drtasks.config.settings import Settings
from drtasks.errors import DrtasksError
from drtasks.steps.base import Row, Runtime, StepContext, StepPlan, StepResult

KEY = "DR_UPLOAD_S3_PREFIX"


@dataclass(frozen=True)
class IncrementOptions:
    delimiter: str = "-"


def next_prefix(prefix: str, delimiter: str = "-") -> str:
    """`name-7` -> `name-8` (zero padding kept); no trailing number -> `name-1`."""
    if not delimiter:
        raise DrtasksError("--delimiter must not be empty")
    match = re.match(rf"^(.*{re.escape(delimiter)})(\d+)$", prefix)
    if not match:
        return f"{prefix}{delimiter}1"
    head, number = match.groups()
    return f"{head}{int(number) + 1:0{len(number)}d}"


def origin_line(settings: Settings) -> tuple[str, Path, int]:
    """(layer, file, line) of the line that set the upload prefix."""
    origin = settings.origin(KEY)
    if origin is None or settings.get(KEY) is None:
        raise DrtasksError(f"{KEY} is not set: nothing to increment; set it in run.env or the profile's upload.prefix")
    if origin.layer in ("env", "flag", "default"):
        raise DrtasksError(f"{KEY} comes from {origin}; only a value written in run.env, system.env or a profile can be bumped")
    location = origin.detail.split(", follows")[0]
    if origin.layer == "profile":
        location = location.split(": ", 1)[1]
    path_text, _, line = location.rpartition(":")
    path = Path(path_text)
    if not path.is_absolute():
        path = settings.dr_dir / path
    if not line.isdigit() or int(line) < 1:
        raise DrtasksError(f"{KEY} comes from {origin}: cannot tell which line of {path} to change")
    return origin.layer, path, int(line)


def rewrite_line(path: Path, number: int, layer: str, new: str) -> None:
    try:
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    except OSError as error:
        raise DrtasksError(f"{path}: cannot read it to bump {KEY} ({error.strerror or error.__class__.__name__})") from None
    if number > len(lines):
        raise DrtasksError(f"{path}:{number}: the line that set {KEY} is gone; the file changed since it was read")
    old = lines[number - 1]
    ending = "\n" if old.endswith("\n") else ""
    if layer == "profile":
        from drtasks.config.profile import rewrite_scalar

        # Through the YAML nodes: flow style (`upload: {prefix: a}`), quoted keys and `env:` work too.
        text = rewrite_scalar(path, number, ("prefix", KEY), new)
    else:
        lines[number - 1] = f"{KEY}={new}{ending}"
        text = "".join(lines)
    try:
        shutil.copy2(path, path.with_name(path.name + ".bak"))
        path.write_text(text, encoding="utf-8")
    except OSError as error:
        raise DrtasksError(f"{path}: cannot write it ({error.strerror or error.__class__.__name__})") from None


@dataclass
class IncrementPlan(StepPlan):
    step = "increment"
    layer: str
    path: Path
    line: int
    old: str
    new: str
    notes: list[str] = field(default_factory=list)

    def heading(self) -> str:
        return f"{KEY} in {self.path}"

    def rows(self) -> list[Row]:
        return [Row("edit", f"{self.path}:{self.line}", reason=f"{KEY}: {self.old} -> {self.new} (previous file kept as {self.path.name}.bak)")]

    def summary(self) -> dict[str, Any]:
        return {"file": str(self.path), "line": self.line, "old": self.old, "new": self.new}

    def summary_line(self) -> str:
        return f"{KEY} {self.old} -> {self.new}; the steps after this one use the new prefix."

    def as_dict(self) -> dict[str, Any]:
        return {"step": self.step, "key": KEY, **self.summary(), "file": str(self.path)}

    @property
    def changes(self) -> bool:
        return True

    def overrides_after(self) -> dict[str, tuple[str, str]]:
        return {KEY: (self.new, f"increment ({self.old} -> {self.new})")}

    def apply(self, runtime: Runtime) -> StepResult:
        rewrite_line(self.path, self.line, self.layer, self.new)
        return StepResult(self.step, "done", f"{KEY}: {self.old} -> {self.new} in {self.path} (previous kept as {self.path.name}.bak)")


def plan_increment_step(context: StepContext) -> IncrementPlan:
    options: IncrementOptions = context.options or IncrementOptions()
    settings = context.settings
    old = targets.prefix(settings, KEY, "set it in run.env or the profile's upload.prefix")  # never the bucket root
    layer, path, line = origin_line(settings)
    return IncrementPlan(layer, path, line, old, next_prefix(old, options.delimiter))
