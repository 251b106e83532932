"""dr-increment-upload-model: bump the upload prefix where it is written down."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from drtasks.config.settings import Settings
from drtasks.errors import DrtasksError

KEY = "DR_UPLOAD_S3_PREFIX"


def next_prefix(prefix: str, delimiter: str = "-") -> str:
    """`name-7` -> `name-8` (zero padding kept); no trailing number -> `name-1`."""
    if not delimiter:
        raise DrtasksError("--delimiter must not be empty")
    match = re.match(rf"^(.*{re.escape(delimiter)})(\d+)$", prefix)
    if not match:
        return f"{prefix}{delimiter}1"
    head, number = match.groups()
    return f"{head}{int(number) + 1:0{len(number)}d}"


def _origin_file(settings: Settings) -> tuple[str, Path, int]:
    origin = settings.origin(KEY)
    if origin is None:
        raise DrtasksError(f"{KEY} is not set: nothing to increment")
    if origin.layer in ("env", "flag", "default"):
        raise DrtasksError(f"{KEY} comes from {origin}; only a value written in run.env, system.env or a profile can be bumped")
    location = origin.detail.split(", follows")[0]
    if origin.layer == "profile":
        location = location.split(": ", 1)[1]
    path_text, _, line = location.rpartition(":")
    path = Path(path_text)
    if not path.is_absolute():
        path = settings.dr_dir / path
    return origin.layer, path, int(line)


def _rewrite_line(path: Path, number: int, layer: str, new: str) -> None:
    if layer == "profile":
        from drtasks.config.profile import rewrite_scalar

        text = rewrite_scalar(path, number, ("prefix", KEY), new)
    else:
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        old = lines[number - 1]
        ending = "\n" if old.endswith("\n") else ""
        lines[number - 1] = f"{KEY}={new}{ending}"
        text = "".join(lines)
    shutil.copy2(path, path.with_name(path.name + ".bak"))
    path.write_text(text, encoding="utf-8")


def increment_prefix(settings: Settings, delimiter: str = "-", write: bool = True) -> tuple[str, str, Path]:
    """(old, new, file): the file line that set the prefix now holds the new value."""
    old = settings.require(KEY, "set it in run.env or the profile's upload.prefix")
    layer, path, line = _origin_file(settings)
    new = next_prefix(old, delimiter)
    if write:
        _rewrite_line(path, line, layer, new)
    return old, new, path


def run_increment(profile: str | None, delimiter: str = "-", wipe: bool = False, force: bool = False, dry_run: bool = False) -> str:
    from drtasks import render
    from drtasks.tasks.common import settings_for

    settings = settings_for(profile)
    if wipe:  # the wipe's target must resolve before the prefix is rewritten
        from drtasks.config import targets

        targets.upload_location(settings)
    out = render.console()
    old, new, path = increment_prefix(settings, delimiter, write=not dry_run)
    verb = "would change" if dry_run else "changed"
    out.print(f"{KEY}: {old} -> {new} ({verb} in {path}{'' if dry_run else ', previous kept as ' + path.name + '.bak'})")
    if wipe:
        from drtasks.wipe import run_wipe

        run_wipe(settings_for(profile), force=force, dry_run=dry_run, prefix=new)
    return new
