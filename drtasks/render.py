"""Rich tables for everything drtasks shows: plans, settings, profiles, checks."""

from __future__ import annotations

import re
import sys
from typing import TYPE_CHECKING, Any, Iterable

from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from drtasks.config.settings import Settings
    from drtasks.plan import Plan
    from drtasks.transfer import Check

_SECRET_NAME = re.compile(r"SECRET|TOKEN|PASSWORD|PASSWD|PRIVATE|CREDENTIAL|ACCESS_KEY", re.IGNORECASE)
REDACTED = "****"

_STYLE = {"add": "green", "replace": "yellow", "unchanged": "dim", "delete": "red"}
_SIGN = {"add": "+", "replace": "~", "unchanged": "=", "delete": "-"}


def console(stderr: bool = False) -> Console:
    # Wide enough for S3 keys when output goes to a file or a pipe.
    return Console(stderr=stderr, width=None if sys.stdout.isatty() else 160, highlight=False, soft_wrap=True)


def is_secret(name: str) -> bool:
    return bool(_SECRET_NAME.search(name))


def redact(name: str, value: str, known: Iterable[str] = ()) -> str:
    """A value as shown: hidden when its name says secret or it is (or holds) a known secret."""
    from drtasks.secrets import redact_value

    return redact_value(name, value, known)


def human(size: int | None) -> str:
    if size is None:
        return ""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def plan_table(plan: "Plan", show_unchanged: bool = True) -> Table:
    if plan.source == plan.target:  # nothing is copied from elsewhere (wipe, generated files)
        heading = f"{plan.title}: {plan.target.url}"
    else:
        mode = "server-side copy" if plan.server_side else "streamed between endpoints"
        heading = f"{plan.title}: {plan.source.url} -> {plan.target.url} ({mode})"
    table = Table(title=heading, title_justify="left")
    table.add_column("", width=1)
    table.add_column("key")
    table.add_column("action")
    table.add_column("source size", justify="right")
    table.add_column("target size", justify="right")
    table.add_column("reason")
    for item in plan.items:
        if not show_unchanged and item.action.value == "unchanged":
            continue
        style = _STYLE[item.action.value]
        table.add_row(
            _SIGN[item.action.value],
            plan.target.key(item.key),
            item.action.value,
            human(item.source_size),
            human(item.target_size),
            item.reason,
            style=style,
        )
    return table


def plan_summary(plan: "Plan") -> str:
    s = plan.summary()
    parts = [
        f"{s['objects']} object{'s' if s['objects'] != 1 else ''}: {s['add']} to add, {s['replace']} to replace, {s['unchanged']} unchanged",
        f"{s['delete']} to delete",
        f"{human(s['bytes_to_move'])} to move through this machine",
        f"{human(s['bytes_copied_server_side'])} copied server-side",
    ]
    if s["kept"]:
        parts.append(f"{s['kept']} other target objects kept (use --wipe to delete them)")
    return "Plan: " + ", ".join(parts) + "."


def print_plan(plan: "Plan", out: Console | None = None) -> None:
    out = out or console()
    out.print(plan_table(plan))
    out.print(plan_summary(plan))
    for note in plan.notes:
        out.print(f"note: {note}")


def checks_table(checks: Iterable["Check"], title: str) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("key")
    table.add_column("verified")
    table.add_column("detail")
    for check in checks:
        table.add_row(check.key, "yes" if check.ok else "NO", check.detail, style=None if check.ok else "bold red")
    return table


def settings_rows(
    settings: "Settings", derived: dict[str, tuple[str, str]] | None = None, known: Iterable[str] = ()
) -> list[dict[str, Any]]:
    """Rows of `inv config`; ``known``: secret values to hide whatever the variable's name."""
    known = set(known)
    rows = [
        {"key": key, "value": redact(key, s.value, known), "source": str(s.origin)}
        for key, s in sorted(settings.values.items())
    ]
    for key, (value, source) in (derived or {}).items():
        rows.append({"key": key, "value": redact(key, value, known), "source": source})
    return rows


def settings_table(rows: list[dict[str, Any]], title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for column in ("key", "value", "source"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(row["key"], row["value"], row["source"])
    return table
