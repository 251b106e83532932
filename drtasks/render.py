"""Rich tables for everything drtasks shows: chains of step plans, results, settings, checks.

Tables stay readable at 80 columns: keys are shown relative to the prefix the heading names and
fold instead of being cut. Output to a pipe follows ``COLUMNS`` when it is set (else 160 columns).
"""

from __future__ import annotations

import os
import re
import sys
from typing import TYPE_CHECKING, Any, Iterable

from rich.console import Console
from rich.table import Table
from rich.text import Text

from drtasks.units import human, plural

if TYPE_CHECKING:
    from drtasks.chain import ChainPlan
    from drtasks.config.settings import Settings
    from drtasks.steps.base import Row, StepResult
    from drtasks.transfer import Check

_SECRET_NAME = re.compile(r"SECRET|TOKEN|PASSWORD|PASSWD|PRIVATE|CREDENTIAL|ACCESS_KEY", re.IGNORECASE)
REDACTED = "****"

_STYLE = {"add": "green", "replace": "yellow", "unchanged": "dim", "delete": "red", "abort": "red", "write": "green", "edit": "yellow", "call": "cyan", "pack": "dim"}
_SIGN = {"add": "+", "replace": "~", "unchanged": "=", "delete": "-", "abort": "x", "write": "+", "edit": "~", "call": ">", "pack": " "}

__all__ = ["console", "human", "plural", "is_secret", "redact"]


def console(stderr: bool = False) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    # A terminal, or a pipe whose reader said how wide it is (COLUMNS): rich measures it.
    # Otherwise a file or pipe gets 160 columns, wide enough for S3 keys.
    width = None if stream.isatty() or os.environ.get("COLUMNS", "").isdigit() else 160
    return Console(stderr=stderr, width=width, highlight=False, soft_wrap=False)


def is_secret(name: str) -> bool:
    return bool(_SECRET_NAME.search(name))


def redact(name: str, value: str, known: Iterable[str] = ()) -> str:
    """A value as shown: hidden when its name says secret or it is (or holds) a known secret."""
    from drtasks.secrets import redact_value

    return redact_value(name, value, known)


def _size(row: "Row") -> str:
    if row.action == "replace" and row.target_size is not None and row.source_size is not None and row.target_size != row.source_size:
        return f"{human(row.target_size)} -> {human(row.source_size)}"
    if row.action in ("delete", "abort"):
        return human(row.target_size)
    return human(row.source_size if row.source_size is not None else row.target_size)


def chain_table(chain: "ChainPlan", show_all: bool = False, width: int = 160) -> Table:
    """ONE table for the whole chain, a section per step, many-object folders folded unless ``show_all``."""
    from drtasks.steps.s3rows import group_rows

    who = f" (profile {chain.profile})" if chain.profile else ""
    shown = [(plan, plan.rows() if show_all else group_rows(plan.rows())) for plan in chain.plans]
    longest = max((len(row.what) for _plan, rows in shown for row in rows), default=10)
    table = Table(title=f"plan{who}: {chain.name}", title_justify="left")
    table.add_column("", width=1, no_wrap=True)
    # Keys get the room they need (up to 48 columns) before the reason does; both fold, never cut.
    table.add_column("key", overflow="fold")
    table.add_column("action", no_wrap=True)
    table.add_column("size", justify="right", no_wrap=True)
    table.add_column("reason", overflow="fold", max_width=max(12, width - 42 - min(longest, 48)))
    for number, (plan, rows) in enumerate(shown):
        if number:
            table.add_section()
        table.add_row("", Text.assemble((plan.step, "bold"), f" {plan.heading()}"), "", "", "")
        for row in rows:
            style = _STYLE.get(row.action)
            # Keys and reasons are text, never markup: an S3 key may hold "[" and "]".
            table.add_row(_SIGN.get(row.action, " "), Text(row.what), row.action, _size(row), Text(row.reason), style=style)
    return table


def chain_summary(chain: "ChainPlan") -> str:
    if len(chain.plans) == 1:
        return f"Plan: {chain.plans[0].summary_line()}"
    return "Plan: " + " ".join(f"{plan.step}: {plan.summary_line()}" for plan in chain.plans)


def print_chain(chain: "ChainPlan", out: Console | None = None, show_all: bool = False) -> None:
    out = out or console()
    out.print(chain_table(chain, show_all, out.width))
    out.print(chain_summary(chain))
    for plan in chain.plans:
        for note in [*getattr(getattr(plan, "plan", None), "notes", []), *plan.notes]:
            out.print(f"note ({plan.step}): {note}")


def results_table(results: Iterable["StepResult"], title: str) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("step", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("detail", overflow="fold")
    styles = {"done": "green", "failed": "bold red", "skipped": "dim", "not run": "yellow"}
    for result in results:
        table.add_row(result.step, result.status, result.detail, style=styles.get(result.status))
    return table


def print_checks(checks: list["Check"], where: str, out: Console) -> None:
    """A summary line of the proof; a row per object only for the ones that failed."""
    failed = [check for check in checks if not check.ok]
    if failed:
        table = Table(title=f"NOT verified at {where}", title_justify="left")
        table.add_column("key", overflow="fold")
        table.add_column("detail", overflow="fold")
        for check in failed:
            table.add_row(Text(check.key), Text(check.detail), style="bold red")
        out.print(table)
    out.print(f"Verified {plural(len(checks) - len(failed), 'object')} at {where} (size and checksum of each)" + (f"; {len(failed)} failed." if failed else "."))


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
    table.add_column("key", no_wrap=True)
    table.add_column("value", overflow="fold")
    table.add_column("source", overflow="fold")
    for row in rows:
        table.add_row(row["key"], row["value"], row["source"])
    return table
