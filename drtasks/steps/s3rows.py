"""How an S3 plan reads as table rows and one summary line (shared by every step that writes S3)."""

from __future__ import annotations

from pathlib import Path

from drtasks.plan import LEASE_NAME, Action, Plan, location_url
from drtasks.steps.base import Row
from drtasks.units import human, plural


def plan_heading(plan: Plan) -> str:
    if plan.source == plan.target or all(i.item is None or (i.item.source is None and i.item.local is None) for i in plan.items):
        return plan.target.url
    mode = "server-side copy" if plan.server_side else "uploaded from this machine" if isinstance(plan.source, Path) else "streamed between endpoints"
    return f"{location_url(plan.source)} -> {plan.target.url} ({mode})"


def plan_rows(plan: Plan) -> list[Row]:
    """One row per key, keys relative to the target prefix (the heading names the prefix)."""
    rows = [Row(i.action.value, i.key, i.source_size, i.target_size, i.reason) for i in plan.items]
    if plan.stale_lease:
        rows.append(Row(Action.DELETE.value, LEASE_NAME, reason=f"left by {plan.stale_lease}, which is gone: taken over and removed"))
    return rows


def plan_summary_line(plan: Plan) -> str:
    s = plan.summary()
    parts = [
        f"{plural(s['objects'], 'object')}: {s['add']:,} to add, {s['replace']:,} to replace, {s['unchanged']:,} unchanged",
        f"{s['delete']:,} to delete",
    ]
    if s["abort"]:
        parts.append(f"{plural(s['abort'], 'unfinished upload')} to abort")
    if s["markers_removed_first"]:
        parts.append(f"{plural(s['markers_removed_first'], 'completion marker')} removed first and written last")
    parts += [f"{human(s['bytes_to_move'])} to move through this machine", f"{human(s['bytes_copied_server_side'])} copied server-side"]
    if s["kept"]:
        parts.append(f"{plural(s['kept'], 'other target object')} kept (use --wipe to delete {'it' if s['kept'] == 1 else 'them'})")
    return ", ".join(parts) + "."


def group_rows(rows: list[Row], threshold: int = 10) -> list[Row]:
    """Fold the rows of one folder and one action into a single row when there are many.

    A folder holding ``threshold`` or more objects of one action becomes "folder/ (N objects)";
    everything else keeps its own row, in the original order.
    """
    from collections import Counter

    def folder(what: str) -> str:
        return what.rsplit("/", 1)[0] + "/" if "/" in what else ""

    counts = Counter((folder(r.what), r.action) for r in rows if r.count == 1)
    grouped: list[Row] = []
    seen: dict[tuple[str, str], int] = {}
    for row in rows:
        group = (folder(row.what), row.action)
        if row.count != 1 or counts[group] < threshold or not group[0]:
            grouped.append(row)
            continue
        if group in seen:
            index = seen[group]
            old = grouped[index]
            grouped[index] = Row(
                old.action,
                old.what,
                (old.source_size or 0) + (row.source_size or 0) if old.source_size is not None or row.source_size is not None else None,
                (old.target_size or 0) + (row.target_size or 0) if old.target_size is not None or row.target_size is not None else None,
                old.reason if old.reason == row.reason else "various reasons",
                old.count + 1,
            )
            continue
        seen[group] = len(grouped)
        grouped.append(Row(row.action, f"{group[0]}", row.source_size, row.target_size, row.reason, 1))
    return [Row(r.action, f"{r.what} ({plural(r.count, 'object')})", r.source_size, r.target_size, r.reason, r.count) if r.count > 1 else r for r in grouped]
