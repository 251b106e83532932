"""Reading DRfC's env files (system.env, run.env) the way `source` in bash would."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

from drtasks.config.files import read_config_text
from drtasks.errors import DrtasksError, shorten

_ASSIGNMENT = re.compile(r"^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$")
_REFERENCE = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")


@dataclass(frozen=True)
class EnvEntry:
    key: str
    value: str
    path: Path
    line: int
    raw: str = ""  # the value before expansion, kept so it can follow an overridden reference
    refs: tuple[str, ...] = ()
    undefined: tuple[str, ...] = ()  # references that expanded to nothing

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"


def _unquote(raw: str) -> str:
    value = raw.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    # An unquoted trailing " # comment" is a comment to the shell, not part of the value.
    return re.split(r"\s+#", value, maxsplit=1)[0]


def expand(value: str, lookup: Callable[[str], str | None], on_undefined: Callable[[str], None]) -> str:
    """Expand $VAR and ${VAR}; undefined names expand to '' as in the shell, after a warning."""

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        found = lookup(name)
        if found is None:
            on_undefined(name)
            return ""
        return found

    return _REFERENCE.sub(substitute, value)


def references(value: str) -> tuple[str, ...]:
    return tuple(m.group(1) or m.group(2) for m in _REFERENCE.finditer(value))


def read_env_file(
    path: Path,
    known: Mapping[str, str],
    environ: Mapping[str, str],
    warn: Callable[[str], None],
) -> list[EnvEntry]:
    """Parse ``path``; references resolve against earlier assignments, then ``environ``.

    ``known`` holds assignments from files read before this one (system.env before run.env).
    ``warn`` hears of every reference that is not defined (it expands to nothing, as in bash).
    """
    text = read_config_text(path, "env file")

    assigned = dict(known)
    entries: list[EnvEntry] = []
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        match = _ASSIGNMENT.match(stripped)
        if not match:
            raise DrtasksError(f"{path}:{number}: not a KEY=VALUE line: {_quote_line(stripped)}")
        key, raw = match.groups()

        def lookup(name: str) -> str | None:
            return assigned[name] if name in assigned else environ.get(name)

        missing: list[str] = []
        unquoted = _unquote(raw)
        literal = raw.strip().startswith("'")  # single quotes keep $ literal, as in bash
        value = unquoted if literal else expand(unquoted, lookup, missing.append)
        refs = () if literal else references(unquoted)
        for name in missing:
            warn(f"{path}:{number}: ${name} is not defined; it expands to an empty string")
        assigned[key] = value
        entries.append(EnvEntry(key, value, path, number, unquoted, refs, tuple(dict.fromkeys(missing))))
    return entries


_SECRET_WORD = re.compile(r"SECRET|TOKEN|PASSWORD|PASSWD|PRIVATE|CREDENTIAL|ACCESS_KEY", re.IGNORECASE)


def _quote_line(line: str) -> str:
    """A bad line as it may be shown: never the value of what looks like a secret."""
    if _SECRET_WORD.search(line):
        return shorten(re.split(r"[=:\s]", line, maxsplit=1)[0] + " ...")
    return shorten(line)
