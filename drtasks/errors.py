"""The one exception type a user ever sees: a short message, no traceback."""

from __future__ import annotations

import re
from typing import Any

# A message is one line of bounded length whatever input it quotes: a hostile value (a huge
# YAML structure, a line with control characters) must not flood or break the terminal.
MAX_MESSAGE = 1000
QUOTE_LIMIT = 80
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _escape(match: re.Match[str]) -> str:
    return {"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(match.group(), f"\\x{ord(match.group()):02x}")


def one_line(text: str, limit: int = MAX_MESSAGE) -> str:
    """``text`` with control characters escaped, cut to ``limit`` characters."""
    text = _CONTROL.sub(_escape, text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def shorten(value: Any, limit: int = QUOTE_LIMIT) -> str:
    """A quoted rendering of user input for messages: a repr of at most ``limit`` characters.

    reprlib stops at a few levels and items, so quoting a hostile structure costs nothing.
    """
    import reprlib

    bounded = reprlib.Repr()
    bounded.maxlevel, bounded.maxdict = 3, 4
    bounded.maxlist = bounded.maxtuple = bounded.maxset = bounded.maxfrozenset = 6
    bounded.maxstring = bounded.maxother = limit
    text = bounded.repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class DrtasksError(Exception):
    """A failure caused by input or environment, reported as one line on stderr.

    Tasks turn it into invoke's ``Exit`` so the process ends with ``code`` and the
    message, never a traceback.
    """

    def __init__(self, message: str, code: int = 1) -> None:
        message = one_line(message)
        super().__init__(message)
        self.message = message
        self.code = code

    def __str__(self) -> str:
        return self.message
