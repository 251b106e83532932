"""Naming DRoA's models and leaderboards by id or by name, the one way every task does it.

DRoA identifies both by a 15-character id (``^[A-Za-z0-9]{15}$``) and shows their names; a racer
types whichever is at hand. A reference is looked up among everything the racer can see: an id
names exactly one thing; a name may name several models (DRoA accepts a second model of the same
name), and then the candidates are listed with their ids, statuses and creation times so that the
racer can pick one by id. An unknown reference lists the closest names.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Any, Callable

from drtasks.errors import DrtasksError

RESOURCE_ID = re.compile(r"^[A-Za-z0-9]{15}$")


@dataclass(frozen=True)
class Kind:
    """What is being named: its word in messages, its id field, and how one candidate is described."""

    noun: str  # "model", "leaderboard"
    id_key: str  # "modelId", "leaderboardId"
    describe: Callable[[dict[str, Any]], str]


def _model_line(model: dict[str, Any]) -> str:
    created = str(model.get("createdAt") or "")[:16].replace("T", " ")
    return f"{model.get('modelId')} ({model.get('status', 'UNKNOWN')}{', created ' + created if created else ''})"


def _leaderboard_line(board: dict[str, Any]) -> str:
    track = (board.get("trackConfig") or {}).get("trackId", "")
    closes = str(board.get("closeTime") or "")[:16].replace("T", " ")
    return f"{board.get('leaderboardId')} ({track}{', closes ' + closes if closes else ''})"


MODEL = Kind("model", "modelId", _model_line)
LEADERBOARD = Kind("leaderboard", "leaderboardId", _leaderboard_line)


def resolve(items: list[dict[str, Any]], reference: str, kind: Kind) -> dict[str, Any]:
    """The one item ``reference`` (an id or a name) names among ``items``; else a one-line refusal."""
    wanted = reference.strip()
    if not wanted:
        raise DrtasksError(f"name a DRoA {kind.noun} by its id or its name")
    by_id = [item for item in items if item.get(kind.id_key) == wanted]
    by_name = [item for item in items if item.get("name") == wanted]
    found = by_id + [item for item in by_name if item not in by_id]
    if len(found) == 1:
        return found[0]
    if found:
        candidates = "; ".join(f"'{item.get('name')}' {kind.describe(item)}" for item in found)
        raise DrtasksError(
            f"'{wanted}' names {len(found)} DRoA {kind.noun}s: {candidates}; name the one you mean by its id"
        )
    names = sorted({str(item.get("name")) for item in items if item.get("name")})
    close = difflib.get_close_matches(wanted, names, n=3, cutoff=0.5)
    if close:
        hint = "; did you mean " + " or ".join(
            f"'{name}' ({', '.join(str(i.get(kind.id_key)) for i in items if i.get('name') == name)})" for name in close
        ) + "?"
    elif names:
        hint = f"; yours: {', '.join(names[:10])}{' ...' if len(names) > 10 else ''}"
    else:
        hint = f"; you have no {kind.noun}s there"
    shape = "id" if RESOURCE_ID.match(wanted) else "name"
    raise DrtasksError(f"no DRoA {kind.noun} has the {shape} '{wanted}'{hint}")


def resolve_model(api: Any, reference: str) -> dict[str, Any]:
    """The racer's model named by id or name (one GET /models, every page)."""
    return resolve(api.list_models(), reference, MODEL)


def resolve_leaderboard(api: Any, reference: str) -> dict[str, Any]:
    """The leaderboard named by id or name (one GET /leaderboards, every page)."""
    return resolve(api.list_leaderboards(), reference, LEADERBOARD)
