"""What `inv config` must hide whatever the variable's name: every secret value in play.

Read from the files only: no credential process runs and no service is asked.
"""

from __future__ import annotations

import configparser
import json
import os
from pathlib import Path
from typing import Iterable

from drtasks import secrets
from drtasks.config.files import read_config_text
from drtasks.config.settings import Settings
from drtasks.errors import DrtasksError
from drtasks.s3 import drtasks_credentials_file


def _ini(path: Path) -> configparser.ConfigParser | None:
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(read_config_text(path, "credentials file"))
    except (DrtasksError, configparser.Error):
        return None
    return parser


def profile_secrets(names: Iterable[str]) -> set[str]:
    """The secret keys and session tokens of these AWS profiles, from the AWS and drtasks files."""
    home = Path.home() / ".aws"
    files = [
        (Path(os.environ.get("AWS_SHARED_CREDENTIALS_FILE") or home / "credentials"), "{}"),
        (Path(os.environ.get("AWS_CONFIG_FILE") or home / "config"), "profile {}"),
        (drtasks_credentials_file(), "{}"),
    ]
    wanted = [name for name in names if name]
    found: set[str] = set()
    for path, section in files:
        parser = _ini(path)
        if parser is None:
            continue
        for name in wanted:
            for candidate in {section.format(name), name}:
                if parser.has_section(candidate):
                    found |= {v for k, v in parser[candidate].items() if secrets.is_secret_name(k) and "key_id" not in k}
    return found


def cached_credentials(path: Path) -> set[str]:
    """The secret values of a cached credentials file (DRoA's temporary credentials), expired or not."""
    try:
        data = json.loads(read_config_text(path, "credentials cache"))
    except (DrtasksError, ValueError):
        return set()
    if not isinstance(data, dict):
        return set()
    return {v for k, v in data.items() if isinstance(v, str) and secrets.is_secret_name(k)}


def known_secrets(settings: Settings, caches: Iterable[Path] = ()) -> set[str]:
    """Values of secret-named settings and environment variables, the secrets of the AWS profiles in
    use (and the default one), and of the credential ``caches`` given; all remembered for redaction."""
    found = {s.value for key, s in settings.values.items() if secrets.is_secret_name(key) and s.value}
    found |= {value for name, value in os.environ.items() if secrets.is_secret_name(name) and value}
    profiles = {settings.get("DR_LOCAL_S3_PROFILE"), settings.get("DR_UPLOAD_S3_PROFILE"), os.environ.get("AWS_PROFILE") or "default"}
    found |= profile_secrets(p for p in profiles if p)
    for cache in caches:
        found |= cached_credentials(cache)
    found = {value for value in found if value.strip()}
    secrets.remember(*found)
    return found
