"""Child process of drtasks.importing.reward_check: import a reward function and call it.

Run as ``python -I reward_runner.py <folder holding reward_function.py> <situations.json> <seconds>``.
It imports nothing from drtasks (the child is isolated from the caller's paths) and prints one JSON
object per line: ``{"event": "missing-module", "module": ...}``, ``{"event": "error", ...}`` or one
``{"event": "called", "situation": ..., "reward": ...}`` per situation.

As in DRoA's validator, the function is called with imports disabled (an import inside the function
fails) and each call gets its own time limit.
"""

import builtins
import inspect
import json
import math
import signal
import sys
import traceback

ALLOWED_MODULES = ("math", "random", "numpy", "scipy", "shapely")


class TimedOut(Exception):
    pass


def _emit(**event):
    print(json.dumps(event), flush=True)


def _where(error):
    """(line, text) inside reward_function.py where ``error`` was raised, if it was."""
    for frame in reversed(traceback.extract_tb(error.__traceback__)):
        if frame.filename.endswith("reward_function.py"):
            return frame.lineno, (frame.line or "").strip()
    return None, ""


def _no_import(name, *args, **kwargs):
    raise ImportError(f"import of {name} inside the function (imports belong at the top of the file)")


def _on_alarm(signum, frame):
    raise TimedOut()


def main(folder, situations_file, seconds):
    sys.path.insert(0, folder)
    try:
        import reward_function  # noqa: the file under test
    except ModuleNotFoundError as error:
        top = (error.name or "").split(".")[0]
        if top in ALLOWED_MODULES:
            _emit(event="missing-module", module=top)
            return
        line, text = _where(error)
        _emit(event="error", stage="import", message=f"{type(error).__name__}: {error}", line=line, text=text)
        return
    except BaseException as error:  # noqa: BLE001 - anything the file does at import is reported
        line, text = _where(error)
        _emit(event="error", stage="import", message=f"{type(error).__name__}: {error}", line=line, text=text)
        return
    function = getattr(reward_function, "reward_function", None)
    if not callable(function):
        _emit(event="error", stage="signature", message="defines no function reward_function(params)")
        return
    try:
        count = len(inspect.signature(function).parameters)
    except (TypeError, ValueError):
        count = -1
    if count != 1:
        _emit(event="error", stage="signature", message="reward_function must take exactly one argument: def reward_function(params)")
        return
    with open(situations_file, encoding="utf-8") as handle:
        situations = json.load(handle)
    signal.signal(signal.SIGALRM, _on_alarm)
    real_import = builtins.__import__
    for name, params in situations.items():
        builtins.__import__ = _no_import
        signal.setitimer(signal.ITIMER_REAL, seconds)
        try:
            reward = function(params)
        except TimedOut:
            _emit(event="error", stage="call", situation=name, message=f"did not return within {seconds:g} s")
            return
        except BaseException as error:  # noqa: BLE001 - the function's own failure is the finding
            line, text = _where(error)
            _emit(event="error", stage="call", situation=name, message=f"{type(error).__name__}: {error}", line=line, text=text)
            return
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            builtins.__import__ = real_import
        is_float = isinstance(reward, float)
        _emit(event="called", situation=name, type=type(reward).__name__,
              reward=float(reward) if is_float and math.isfinite(reward) else repr(reward), float=is_float,
              finite=bool(is_float and math.isfinite(reward)))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], float(sys.argv[3]))
