"""The fake DRoA's reward-function validator: run as a child, prints DRoA's list of errors as JSON.

``python droa_reward_validator.py <reward_function.py> <track name> [seconds]``

Written from DRoA v1.2.5's validator (libs/reward-function-validation: constants.py and
test_reward_function.py), independently of drtasks' own check, so that a mistake in one shows up
against the other. Suites in DRoA's order, stopping at the first failing one:

1. syntax and imports: flake8 ``--select=E,F --ignore=E5,E226,E261`` (each finding is an error
   ``{"type": <code>, "message": <text>, "line", "lineNumber"}``), imports outside math, random,
   numpy, scipy, shapely ("The reward function contains illegal import(s): [...]"), calls whose
   dotted name is open/exec/eval/compile/input ("... contains forbidden builtins: [...]"), and the
   forbidden strings anywhere in the text ("Your code snippet contains a restricted string ...");
2. the function called with imports disabled ("Unsafe builtin function detected: ...");
3. in parallel, each joined for at most 5 s ("Timed Out"): one argument, returns a float, in
   [-1e5, 1e5] for the valid car and for the start, progress, off-track and finish cars.

The track is this file's own loop (DRoA's route files are not ours): an ellipse in the simapp's
column order (centre x/y, inner x/y, outer x/y), with the parameters built the way DRoA builds them.
"""

from __future__ import annotations

import ast
import importlib.util
import inspect
import json
import math
import subprocess
import sys
import threading
import traceback
from pathlib import Path

ALLOWLIST_IMPORTS = ["math", "random", "numpy", "scipy", "shapely"]
FORBID_ACCESS = ["open", "exec", "eval", "compile", "input"]
FORBID_STRINGS = ["__import__", "load", "fromfile", "genfromtxt", "loadtxt", "tofile", "savez", "save", "savetxt", "memmap"]
RANGE = (-1e5, 1e5)


class Refused(Exception):
    def __init__(self, error: dict) -> None:
        super().__init__(error.get("message"))
        self.error = error


def failure(message: str, kind: str = "TEST_FAILURE") -> Refused:
    return Refused({"type": kind, "message": message})


def flake8(path: Path, lines: list[str]) -> list[dict]:
    result = subprocess.run(
        [sys.executable, "-m", "flake8", "--isolated", str(path), "--format=%(code)s:%(row)d:%(text)s",
         "--select=E,F", "--ignore=E5,E226,E261"],
        capture_output=True, text=True, check=False,
    )
    errors = []
    for line in result.stdout.strip().splitlines():
        code, row, text = line.split(":", 2)
        number = int(row)
        errors.append({"type": code, "message": text, "line": lines[number - 1].strip() if number <= len(lines) else "",
                       "lineNumber": number})
    return errors


def dotted_names(tree: ast.AST) -> list[str]:
    names: list[str] = []

    def chain(node: ast.AST, tail: list[str]) -> list[str] | None:
        if isinstance(node, ast.Name):
            return [node.id, *tail]
        if isinstance(node, ast.Call):
            for argument in node.args:
                walk(argument)
            return chain(node.func, tail)
        if isinstance(node, ast.Attribute):
            return chain(node.value, [node.attr, *tail])
        return None

    def walk(node: ast.AST) -> None:
        if isinstance(node, (ast.Call, ast.Attribute)):
            found = chain(node, [])
            if found:
                names.append(".".join(found))
            return
        for child in ast.iter_child_nodes(node):
            walk(child)

    walk(tree)
    return names


def static_suite(path: Path, source: str) -> list[dict]:
    lines = source.splitlines()
    if importlib.util.find_spec("flake8") is not None:
        errors = flake8(path, lines)
        if errors:
            return errors[:1]  # failfast: the first finding ends the suite
    try:
        tree = ast.parse(source)
    except SyntaxError as error:
        return [{"type": "SYNTAX_ERROR", "message": error.msg, "line": (error.text or "").strip(), "lineNumber": error.lineno}]
    modules = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            modules.append(node.module or "")
    illegal = sorted({m.split(".")[0] for m in modules if m.split(".")[0] not in ALLOWLIST_IMPORTS})
    if illegal:
        return [{"type": "TEST_FAILURE", "message": f"The reward function contains illegal import(s): {illegal}"}]
    called = [name for name in dotted_names(tree) if name in FORBID_ACCESS]
    if called:
        return [{"type": "TEST_FAILURE", "message": f"The reward function contains forbidden builtins: {called}"}]
    for forbidden in FORBID_STRINGS:
        if forbidden in source:
            return [{"type": "TEST_FAILURE", "message": f'Your code snippet contains a restricted string "{forbidden}" '
                     "that is not allowed. Please remove or replace the string and try again."}]
    return []


def route(points: int = 100) -> list[list[float]]:
    """Rows of (centre x, centre y, inner x, inner y, outer x, outer y), as the simapp's route files."""
    rows = []
    for i in range(points):
        t = 2 * math.pi * i / points
        cos, sin = math.cos(t), math.sin(t)
        rows.append([5 * cos, 3 * sin, 4.6 * cos, 2.6 * sin, 5.4 * cos, 3.4 * sin])
    return rows


def cars(rows: list[list[float]]) -> dict[str, dict]:
    width = math.hypot(rows[0][4] - rows[0][2], rows[0][5] - rows[0][3])
    length = sum(math.hypot(b[2] - a[2], b[3] - a[3]) for a, b in zip(rows, rows[1:]))
    waypoints = [[row[2], row[3]] for row in rows]
    objects = {
        "closest_objects": [0, 1], "objects_location": [[4.5, 1.3], [6.5, 1.4], [4.8, 3.1], [3.1, 4.1], [0.7, 4.2], [1.6, 1.7]],
        "objects_left_of_center": [True, True, False, True, False, True], "object_in_camera": True,
        "objects_speed": [0.2] * 6, "objects_heading": [2.7, 2.4, -1.9, -1.4, 0.0, 0.6],
        "objects_distance": [1.9, 4.1, 8.0, 10.0, 12.6, 15.1], "is_crashed": False,
    }
    common = {"track_width": width, "waypoints": waypoints, "is_reversed": True, "track_length": length,
              "is_left_of_center": True, **objects}
    half, last = len(rows) // 2, len(rows) - 1
    return {
        "valid": {**common, "all_wheels_on_track": True, "x": (rows[0][2] + rows[0][0]) / 2, "y": (rows[0][3] + rows[0][1]) / 2,
                  "distance_from_center": 0, "heading": 0, "progress": 0, "steps": 1, "speed": 0.5, "steering_angle": 6,
                  "closest_waypoints": [0, 1], "is_offtrack": False},
        "start": {**common, "all_wheels_on_track": True, "x": rows[0][2], "y": rows[0][3], "distance_from_center": 0,
                  "heading": 0, "progress": 0, "steps": 1, "speed": 0.1, "steering_angle": 0.2,
                  "closest_waypoints": [0, 1], "is_offtrack": False},
        "progress": {**common, "all_wheels_on_track": True, "x": rows[half][2], "y": rows[half][3], "distance_from_center": 0,
                     "heading": 359.9, "progress": 50, "steps": 100, "speed": 1.0, "steering_angle": 6,
                     "closest_waypoints": [3, 4], "is_offtrack": False},
        "off_track": {**common, "all_wheels_on_track": False, "x": rows[0][0] * 1.3, "y": rows[0][1] * 1.3,
                      "distance_from_center": width, "heading": 359.9, "progress": 0, "steps": 1, "speed": 1,
                      "steering_angle": 15, "closest_waypoints": [0, 1], "is_offtrack": True},
        "finish": {**common, "all_wheels_on_track": True, "x": rows[last][2], "y": rows[last][3], "distance_from_center": 0,
                   "heading": 359.9, "progress": 100, "steps": 10000, "speed": 5.0, "steering_angle": 0,
                   "closest_waypoints": [last - 1, last], "is_offtrack": False},
    }


def _as_error(error: BaseException) -> dict:
    if isinstance(error, Refused):
        return error.error
    frames = traceback.extract_tb(error.__traceback__)
    frame = next((f for f in reversed(frames) if f.filename.endswith("reward_function.py")), frames[-1] if frames else None)
    kind = "SYNTAX_ERROR" if isinstance(error, SyntaxError) else "IMPORT_ERROR" if isinstance(error, ImportError) else "TEST_FAILURE"
    found = {"type": kind, "message": str(error), "line": (frame.line or "").strip() if frame else ""}
    if frame and frame.filename.endswith("reward_function.py"):
        found["lineNumber"] = frame.lineno
    return found


def runtime_suites(folder: Path, seconds: float) -> list[dict]:
    import builtins

    sys.path.insert(0, str(folder))
    try:
        import reward_function  # noqa: the function under validation
        function = reward_function.reward_function
    except BaseException as error:  # noqa: BLE001
        return [_as_error(error)]
    situations = cars(route())

    def no_import(name: str, *args: object, **kwargs: object) -> None:
        raise Refused({"type": "IMPORT_ERROR", "message": "Import should be put at the top of file, module: " + name})

    real_import = builtins.__import__
    builtins.__import__ = no_import
    try:
        function(situations["valid"])
    except BaseException as error:  # noqa: BLE001
        return [{"type": "TEST_FAILURE", "message": f'Unsafe builtin function detected: "{json.dumps(_as_error(error))}".'}]
    finally:
        builtins.__import__ = real_import

    def in_range(value: object) -> bool:
        return isinstance(value, float) and RANGE[0] <= value <= RANGE[1]

    def signature() -> None:
        if len(inspect.signature(function).parameters) != 1:
            raise failure("Invalid reward function signature. Should be def reward_function(params)")

    def returns_float() -> None:
        reward = function(situations["valid"])
        if not isinstance(reward, float):
            raise failure(f"Method returned non-floating type value: {reward}")

    def reward_range() -> None:
        reward = function(situations["valid"])
        if not in_range(reward):
            raise failure(f"Reward score out of range. Reward: {reward}, range: [-1e5, 1e5]")

    def car(name: str, text: str):
        def test() -> None:
            reward = function(situations[name])
            if not in_range(reward):
                raise failure(f"{text} Reward: {reward}")
        return test

    tests = [signature, lambda: function(situations["valid"]), returns_float, reward_range,
             car("start", "Vehicle failed at start position."), car("progress", "Vehicle failed to make progress."),
             car("off_track", "Off-track vehicle failed to make progress."),
             car("finish", "Vehicle failed to make it to end of track.")]
    results: dict[int, dict] = {}

    def run(number: int, test) -> None:
        try:
            test()
        except BaseException as error:  # noqa: BLE001
            results[number] = _as_error(error)

    threads = [threading.Thread(target=run, args=(n, t), daemon=True) for n, t in enumerate(tests)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds)
        if thread.is_alive():
            return [{"type": "TEST_FAILURE", "message": "Timed Out"}]
    return [results[n] for n in sorted(results)][:1]


def validate(path: Path, seconds: float = 5.0) -> list[dict]:
    source = path.read_text(encoding="utf-8")
    return static_suite(path, source) or runtime_suites(path.parent, seconds)


if __name__ == "__main__":
    errors = validate(Path(sys.argv[1]), float(sys.argv[3]) if len(sys.argv) > 3 else 5.0)
    print(json.dumps(errors, default=str))
    sys.stdout.flush()
    import os

    os._exit(0)  # a timed-out function keeps its daemon thread busy; leave without waiting for it
