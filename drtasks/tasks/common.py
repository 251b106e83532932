"""What every task shares: flag spelling, settings from flags, errors as one line, asking."""

from __future__ import annotations

import functools
import sys
from typing import Any, Callable, Mapping

from invoke import Exit, Task

from drtasks.errors import DrtasksError


class DrTask(Task):  # type: ignore[misc]
    """A Task whose flags can have chosen short names (-L, -I) and whose errors are one line."""

    def __init__(self, body: Callable[..., Any], short: Mapping[str, str] | None = None, **kwargs: Any) -> None:
        self._short = dict(short or {})
        super().__init__(_one_line_errors(body), **kwargs)

    def arg_opts(self, name: str, default: Any, taken_names: set[str]) -> dict[str, Any]:
        taken_names.update(v for v in self._short.values() if v)  # automatic short flags must not take chosen ones
        opts = super().arg_opts(name, default, taken_names)
        if name in self._short:
            # An empty short name means: the long flag only.
            opts["names"] = [*(n for n in opts["names"] if len(n) > 1), *filter(None, [self._short[name]])]
        return opts


def _one_line_errors(body: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(body)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return body(*args, **kwargs)
        except DrtasksError as error:
            from drtasks.secrets import redact

            raise Exit(f"drtasks: {redact(error.message)}", code=error.code) from None
        except KeyboardInterrupt:
            raise Exit("drtasks: interrupted", code=130) from None
        except Exception as error:
            # A failure of the network or of a service that no step turned into a message: still
            # one line, naming what failed, never a traceback.
            if not is_service_failure(error):
                raise
            raise Exit(f"drtasks: {error.__class__.__name__}: {first_line(error)}", code=1) from None

    return wrapper


def is_service_failure(error: BaseException) -> bool:
    module = type(error).__module__
    return module.startswith(("botocore", "urllib3", "requests", "docker")) or isinstance(error, (ConnectionError, TimeoutError))


def first_line(error: BaseException) -> str:
    from drtasks.secrets import redact

    text = redact(" ".join(str(error).split()))
    return text[:300] + ("..." if len(text) > 300 else "")


def drtask(short: Mapping[str, str] | None = None, **kwargs: Any) -> Callable[[Callable[..., Any]], DrTask]:
    def decorate(body: Callable[..., Any]) -> DrTask:
        return DrTask(body, short=short, **kwargs)

    return decorate


def confirm(question: str, force: bool) -> None:
    """Ask before writing unless forced; refuse to guess when nobody can answer."""
    if force:
        return
    if not sys.stdin.isatty():
        raise DrtasksError(f"{question} needs an answer, and standard input is not a terminal: pass --force")
    answer = input(f"{question} [y/N] ").strip().lower()
    if answer not in ("y", "yes"):
        raise DrtasksError("nothing was written: not confirmed", code=1)


def settings_for(profile: str | None, flags: Mapping[str, tuple[str, str]] | None = None) -> Any:
    from drtasks.config.settings import resolve

    return resolve(profile or None, flags)


def checkpoint_flags(best: bool, checkpoint: str | None, best_by: str | None = None) -> dict[str, tuple[str, str]]:
    from drtasks.config.targets import parse_best_by, parse_checkpoint

    chosen = [flag for flag, value in (("--best", best), ("--checkpoint", checkpoint), ("--best-by", best_by)) if value]
    if len(chosen) > 1:
        raise DrtasksError(f"{' and '.join(chosen)} exclude each other")
    if best:
        return {"DR_UPLOAD_CHECKPOINT": ("best", "--best")}
    if checkpoint:
        parse_checkpoint(str(checkpoint), "--checkpoint")
        return {"DR_UPLOAD_CHECKPOINT": (str(checkpoint), "--checkpoint")}
    if best_by:
        return {"DR_UPLOAD_CHECKPOINT": (str(parse_best_by(best_by, "--best-by")), "--best-by")}
    return {}
