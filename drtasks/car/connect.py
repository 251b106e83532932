"""Reach cars: decide whether to trust each one's certificate, then log in once per car and run.

Order matters for safety: the certificate is fingerprinted by a bare handshake, compared with
the pin (or approved), and only then does a session pinned to that fingerprint send the password.
"""

from __future__ import annotations

import getpass
import os
import sys
from dataclasses import dataclass, field
from typing import Callable

from drtasks.car.client import CarClient
from drtasks.car.pins import KnownCars, changed_message, presented_fingerprint, show_fingerprint
from drtasks.errors import DrtasksError

PASSWORD_ENV = "DR_CAR_PASSWORD"


@dataclass(frozen=True)
class Trusted:
    url: str
    fingerprint: str
    how: str  # "pinned" | "new, accepted" | "new, --trust-fingerprint"
    saved: bool


def ask_on_terminal(url: str, fingerprint: str) -> bool:
    """Show a new car's fingerprint and ask, on the terminal (stderr, so --json output stays clean)."""
    print(f"{url} is not a known car. Its certificate's SHA-256 fingerprint is\n  {show_fingerprint(fingerprint)}", file=sys.stderr)
    print("Compare it with the one your browser shows for the car's console.", file=sys.stderr)
    print("Trust this certificate? [y/N] ", end="", file=sys.stderr, flush=True)
    return sys.stdin.readline().strip().lower() in ("y", "yes")


@dataclass
class TrustPolicy:
    """``accepted``: fingerprints given with --trust-fingerprint; ``ask``: None when nobody can answer."""

    known: KnownCars
    accepted: frozenset[str] = frozenset()
    ask: Callable[[str, str], bool] | None = None
    save: bool = True  # a dry run pins nothing

    def trust(self, url: str) -> Trusted:
        pinned = self.known.get(url)
        if pinned is not None:
            # No probe needed: the session's every handshake checks the pin, and a changed
            # certificate is refused there, before anything is sent.
            return Trusted(url, pinned, "pinned", False)
        presented = presented_fingerprint(url)
        if presented in self.accepted:
            how = "new, --trust-fingerprint"
        elif self.accepted and self.ask is None:
            raise DrtasksError(
                f"{url}: its certificate's fingerprint is {show_fingerprint(presented)}, which no --trust-fingerprint names; refusing"
            )
        elif self.ask is None:
            raise DrtasksError(
                f"{url} is not a known car; its certificate's fingerprint is {show_fingerprint(presented)}:"
                " confirm it with --trust-fingerprint, or run in a terminal to be asked"
            )
        elif self.ask(url, presented):
            how = "new, accepted"
        else:
            raise DrtasksError(f"{url}: certificate not trusted; nothing was sent to it")
        if self.save:
            self.known.add(url, presented)
        else:
            how += " (dry run: not pinned)"
        return Trusted(url, presented, how, self.save)


def password_from_env_or_terminal() -> Callable[[], str]:
    """DR_CAR_PASSWORD when set, else asked once on the terminal; kept in memory for this run only."""
    remembered: list[str] = []

    def provide() -> str:
        if remembered:
            return remembered[0]
        value = os.environ.get(PASSWORD_ENV)
        if not value:
            if not sys.stdin.isatty():
                raise DrtasksError(f"the car's password is needed: set {PASSWORD_ENV}, or run in a terminal to be asked")
            value = getpass.getpass("Car console password: ")
            if not value:
                raise DrtasksError("no password given")
        remembered.append(value)
        return value

    return provide


@dataclass
class CarConnector:
    """Logged-in sessions by car URL, opened on first use and reused by planning and applying."""

    trust: TrustPolicy
    password: Callable[[], str]
    _open: dict[str, tuple[CarClient, Trusted]] = field(default_factory=dict)

    def open(self, url: str, expected_fingerprint: str | None = None) -> tuple[CarClient, Trusted]:
        if url in self._open:
            client, trusted = self._open[url]
        else:
            trusted = self.trust.trust(url)
            client = CarClient(url, trusted.fingerprint, self.trust.known.path)
            client.login(self.password())
            self._open[url] = (client, trusted)
        if expected_fingerprint is not None and trusted.fingerprint != expected_fingerprint:
            # The plan was approved for another certificate: never act on a different car.
            raise DrtasksError(changed_message(url, expected_fingerprint, trusted.fingerprint, self.trust.known.path))
        return client, trusted

    def close(self) -> None:
        for client, _ in self._open.values():
            client.close()
        self._open.clear()
