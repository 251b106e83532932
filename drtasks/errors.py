"""The one exception type a user ever sees: a short message, no traceback."""

from __future__ import annotations


class DrtasksError(Exception):
    """A failure caused by input or environment, reported as one line on stderr.

    Tasks turn it into invoke's ``Exit`` so the process ends with ``code`` and the
    message, never a traceback.
    """

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.code = code

    def __str__(self) -> str:
        return self.message
