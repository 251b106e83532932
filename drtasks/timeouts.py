"""How long drtasks waits on a network endpoint before it gives up.

An endpoint that accepts connections and then never answers would otherwise hold a command for
minutes (botocore's default is 60 s per read, retried). Every S3, Cognito, console and DRoA call
uses the values here: each connect and each read waits at most ``DRTASKS_TIMEOUT`` seconds
(default 10), and a request is tried ``ATTEMPTS`` times, so a silent endpoint fails after about
3 x 10 s plus at most 3 s of back-off. DRoA's API gets three times the timeout for one attempt
(its gateway itself gives up after 29 s).
"""

from __future__ import annotations

import math
import os
from typing import Any

from drtasks.errors import DrtasksError, shorten

TIMEOUT_ENV = "DRTASKS_TIMEOUT"
DEFAULT_TIMEOUT = 10.0
ATTEMPTS = 3  # the first try and two retries
MAX_BACKOFF = 3.0  # botocore's standard mode waits at most 1 s, then 2 s, between those tries


def seconds() -> float:
    """The connect and read timeout, from DRTASKS_TIMEOUT (seconds) or the default."""
    text = os.environ.get(TIMEOUT_ENV, "").strip()
    if not text:
        return DEFAULT_TIMEOUT
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (0 < value <= 3600):
        raise DrtasksError(f"{TIMEOUT_ENV} is {shorten(text)}; expected seconds, more than 0 and at most 3600")
    return value


def botocore_options() -> dict[str, Any]:
    """Keyword arguments for botocore's Config: timeouts and a bounded number of attempts."""
    timeout = seconds()
    return {
        "connect_timeout": timeout,
        "read_timeout": timeout,
        "retries": {"total_max_attempts": ATTEMPTS, "mode": "standard"},
    }


def api_seconds() -> float:
    """One attempt at a DRoA API call (not retried: an import must not be sent twice)."""
    return 3 * seconds()


def worst_case() -> float:
    """About how long a silent S3 or Cognito endpoint holds a request before it fails."""
    return ATTEMPTS * seconds() + MAX_BACKOFF
