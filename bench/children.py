"""What every benchmark's children share: temporary AWS files holding only the benchmark's servers,
and an environment in which those files are the only credentials there are."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any, Iterable

REPO = Path(__file__).resolve().parent.parent
# Credentials reach every child only through the temporary files; the user's setup is never read.
AWS_ENV_REMOVED = (
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3",
)


def write_aws_files(folder: Path, profiles: Iterable[tuple[str, Any]]) -> None:
    """``credentials`` and ``config`` (0600) in ``folder`` for each (profile, server with its keys):
    path-style addressing in us-east-1, as a local S3 server wants."""
    profiles = list(profiles)
    credentials = "".join(f"[{name}]\naws_access_key_id = {server.access_key}\naws_secret_access_key = {server.secret_key}\n\n" for name, server in profiles)
    config = "".join(f"[profile {name}]\nregion = us-east-1\ns3 =\n    addressing_style = path\n\n" for name, _server in profiles)
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in (("credentials", credentials), ("config", config)):
        path = folder / name
        path.touch(mode=0o600)
        path.write_text(text, encoding="utf-8")


def child_env(aws: Path, cache: Path, **extra: str) -> dict[str, str]:
    """This process's environment without DR_* and AWS credentials, pointed at ``aws``'s files, with
    its own cache folder and this checkout first on the path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DR_") and k not in AWS_ENV_REMOVED}
    env.update(
        AWS_SHARED_CREDENTIALS_FILE=str(aws / "credentials"),
        AWS_CONFIG_FILE=str(aws / "config"),
        AWS_DEFAULT_REGION="us-east-1",
        DRTASKS_CREDENTIALS_FILE=str(aws / "drtasks-credentials"),
        XDG_CACHE_HOME=str(cache),
        COLUMNS="200",
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        **extra,
    )
    return env


def stop_servers(servers: Iterable[Any]) -> None:
    """Stop every server side by side: each takes seconds to stop after SIGTERM."""
    stoppers = [threading.Thread(target=server.stop) for server in servers]
    for stopper in stoppers:
        stopper.start()
    for stopper in stoppers:
        stopper.join()
