"""The reward function checked the way DRoA's asynchronous validator checks it, before uploading.

DRoA v1.2.5 accepts an import, then validates ``reward_function.py`` in the background and turns a
failure into status ERROR (facts section 7). Its rules, checked here in the same order:

1. the file parses (a syntax error names its line);
2. ``flake8 --select=E,F --ignore=E5,E226,E261`` finds nothing (pycodestyle errors such as
   "expected 2 blank lines", pyflakes findings such as an unused import): run when flake8 is
   installed, otherwise a warning says these rules were not checked;
3. every import is one of math, random, numpy, scipy, shapely;
4. no call of open, eval, input, exec or compile;
5. none of the strings ``__import__``, ``load``, ``fromfile``, ``genfromtxt``, ``loadtxt``,
   ``tofile``, ``savez``, ``save``, ``savetxt``, ``memmap`` appears anywhere in the file, comments
   and names included (``payload`` contains ``load``);
6. ``reward_function`` takes one argument and, called in a separate process with imports disabled,
   returns within 5 s a float in [-1e5, 1e5] for each of the validator's five situations (an int
   or a bool is refused, as DRoA refuses it), on a sample track (``drtasks.importing.sample_track``).

A module the function may import (numpy, scipy, shapely) that is missing on this machine is a
warning, not a refusal: the call is then skipped. Every finding names ``reward_function.py``.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from drtasks.importing.droa_rules import REWARD_FUNCTION, Problem

ALLOWED_IMPORTS = ("math", "random", "numpy", "scipy", "shapely")
FORBIDDEN_CALLS = ("open", "eval", "input", "exec", "compile")
FORBIDDEN_STRINGS = ("__import__", "load", "fromfile", "genfromtxt", "loadtxt", "tofile", "savez", "save", "savetxt", "memmap")
FLAKE8_ARGS = ("--select=E,F", "--ignore=E5,E226,E261")
CALL_SECONDS = 5.0
REWARD_RANGE = (-1e5, 1e5)
_RUNNER = Path(__file__).with_name("reward_runner.py")


def _problem(message: str, line: int | None = None, blocking: bool = True) -> Problem:
    where = f"line {line}: " if line else ""
    return Problem(REWARD_FUNCTION, where + message, blocking)


def check_syntax(source: str) -> tuple[ast.Module | None, list[Problem]]:
    try:
        return ast.parse(source, filename=REWARD_FUNCTION), []
    except SyntaxError as error:
        return None, [_problem(f"syntax error: {error.msg}", error.lineno)]


def check_imports(tree: ast.Module) -> list[Problem]:
    problems = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = ["." * node.level + (node.module or "")] if node.level or not node.module else [node.module]
        else:
            continue
        for name in names:
            if name.split(".")[0] not in ALLOWED_IMPORTS:
                problems.append(_problem(f"imports {name}: DRoA allows only {', '.join(ALLOWED_IMPORTS)}", node.lineno))
    return problems


def _dotted(node: ast.AST) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Call):
        node = node.func
        inner = _dotted(node)
        return ".".join([inner, *reversed(parts)]) if inner else None
    if isinstance(node, ast.Name):
        return ".".join([node.id, *reversed(parts)])
    return None


def check_forbidden_calls(tree: ast.Module) -> list[Problem]:
    problems = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _dotted(node.func) in FORBIDDEN_CALLS:
            problems.append(_problem(f"calls {_dotted(node.func)}(): DRoA forbids {', '.join(FORBIDDEN_CALLS)}", node.lineno))
    return problems


def check_forbidden_strings(source: str) -> list[Problem]:
    """DRoA refuses the first forbidden string it finds, wherever it is (comments and names too)."""
    for forbidden in FORBIDDEN_STRINGS:
        for number, line in enumerate(source.splitlines(), start=1):
            if forbidden in line:
                return [_problem(f'contains the string "{forbidden}", which DRoA refuses anywhere in the file '
                                 "(comments and names included)", number)]
    return []


def check_style(source: str) -> list[Problem]:
    """flake8 with DRoA's selection, when flake8 is installed."""
    if importlib.util.find_spec("flake8") is None:
        return [_problem("flake8 is not installed, so the flake8 rules DRoA applies (--select=E,F) were not "
                         "checked; pip install flake8", blocking=False)]
    with tempfile.TemporaryDirectory(prefix="drtasks-reward-") as folder:
        path = Path(folder) / REWARD_FUNCTION
        path.write_text(source, encoding="utf-8")
        result = subprocess.run(
            [sys.executable, "-m", "flake8", "--isolated", "--format=%(row)d:%(code)s:%(text)s", *FLAKE8_ARGS, str(path)],
            capture_output=True, text=True, timeout=60, check=False,
        )
    problems = []
    for line in result.stdout.splitlines():
        row, _, rest = line.partition(":")
        code, _, text = rest.partition(":")
        if row.isdigit():
            problems.append(_problem(f"{code} {text} (DRoA runs flake8 {' '.join(FLAKE8_ARGS)})", int(row)))
    return problems


def run_reward_function(source: str, track_id: str, clockwise: bool, seconds: float = CALL_SECONDS) -> list[Problem]:
    """Call the function in a child process, once per situation, each call limited to ``seconds``."""
    from drtasks.importing.sample_track import sample_track, situations

    track = sample_track(track_id, clockwise)
    cases = situations(track)
    with tempfile.TemporaryDirectory(prefix="drtasks-reward-") as folder:
        (Path(folder) / REWARD_FUNCTION).write_text(source, encoding="utf-8")
        params = Path(folder) / "situations.json"
        params.write_text(json.dumps(cases), encoding="utf-8")
        try:
            # -I: the child sees neither this process's paths nor the user's site customisation.
            result = subprocess.run(
                [sys.executable, "-I", str(_RUNNER), folder, str(params), str(seconds)],
                capture_output=True, text=True, timeout=seconds * len(cases) + 20, check=False, cwd=folder,
            )
        except subprocess.TimeoutExpired:
            return [_problem(f"the call with sample params on {track_id} did not finish: each call must return "
                             f"within {seconds:g} s")]
    events = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    problems: list[Problem] = []
    for event in events:
        if event["event"] == "missing-module":
            return [_problem(f"{event['module']} is not installed here, so the function was not called "
                             "(DRoA has it); only the static rules were checked", blocking=False)]
        if event["event"] == "error":
            where = f" for the {event['situation']}" if event.get("situation") else ""
            text = f" ({event['text']})" if event.get("text") else ""
            problems.append(_problem(f"the call with sample params on {track_id}{where} failed: "
                                     f"{event['message']}{text}", event.get("line")))
            return problems
        low, high = REWARD_RANGE
        if not event["float"]:
            problems.append(_problem(f"reward_function returned {event['reward']} ({event['type']}) for the "
                                     f"{event['situation']}: DRoA requires a float (return float(reward))"))
        elif not event["finite"] or not low <= event["reward"] <= high:
            problems.append(_problem(f"reward_function returned {event['reward']} for the {event['situation']}: "
                                     f"DRoA requires a number in [{low:g}, {high:g}]"))
        if problems:
            return problems
    if len(events) < len(cases):
        detail = (result.stderr.strip().splitlines() or ["no output"])[-1]
        problems.append(_problem(f"the call with sample params on {track_id} stopped early: {detail}"))
    return problems


def check_reward_function(source: str, track_id: str = "sample", clockwise: bool = False, *,
                          seconds: float = CALL_SECONDS) -> list[Problem]:
    """Every finding DRoA's validator would make (blocking), plus warnings for what could not be checked."""
    tree, problems = check_syntax(source)
    if tree is None:
        return problems
    problems += check_style(source)
    problems += check_imports(tree)
    problems += check_forbidden_calls(tree)
    problems += check_forbidden_strings(source)
    if any(p.blocking for p in problems):
        return problems  # DRoA stops at the static suite; running refused code proves nothing more
    return problems + run_reward_function(source, track_id, clockwise, seconds)
