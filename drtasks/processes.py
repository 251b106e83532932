"""Whether a process still runs: for the embedded S3 server's state and for a dead run's lease."""

from __future__ import annotations

import os


def process_alive(pid: int) -> bool:
    """True while ``pid`` runs (a process of another user counts as running)."""
    if pid <= 0:
        return False
    try:
        # Reap it if it is our own exited child, so a zombie doesn't count as alive.
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    except OSError:  # not our child (ChildProcessError) or not waitable
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
