"""inv profiles and inv config: what drtasks will use, and where every value came from."""

from __future__ import annotations

import json as jsonlib
from typing import Any

from invoke import Collection

from drtasks.tasks.common import drtask


def profile_rows(dr_dir: Any) -> list[dict[str, str]]:
    from drtasks.config import profile as profiles
    from drtasks.errors import DrtasksError

    rows = []
    for name, path in profiles.available(dr_dir).items():
        try:
            chain = profiles.load_chain(name, dr_dir)
        except DrtasksError as error:
            rows.append({"name": name, "path": str(path), "description": f"invalid: {error.message}"})
            continue
        merged: dict[str, str] = {}
        for loaded in chain:
            merged.update({key: value for key, value, _ in loaded.assignments()})
        rows.append(
            {
                "name": name,
                "path": str(path),
                "description": chain[-1].profile.description,
                "extends": chain[-1].profile.extends or "",
                "upload": "s3://{}/{}".format(merged.get("DR_UPLOAD_S3_BUCKET", "<env files>"), merged.get("DR_UPLOAD_S3_PREFIX", "<env files>")),
                "checkpoint": merged.get("DR_UPLOAD_CHECKPOINT", "last"),
                "import": merged.get("DR_IMPORT_TARGET", ""),
                "steps": ", ".join(_steps(chain)),
            }
        )
    return rows


def _steps(chain: list[Any]) -> list[str]:
    for loaded in reversed(chain):
        if loaded.profile.steps is not None:
            return list(loaded.profile.steps)
    return []


@drtask(help={"json": "print the profiles as JSON"})
def profiles(c: Any, json: bool = False) -> None:
    """List the available profiles: yours in $DR_DIR/profiles first, then the shipped examples."""
    import os

    from drtasks import render
    from drtasks.config.settings import dr_dir_from

    dr_dir = dr_dir_from(os.environ)
    rows = profile_rows(dr_dir)
    if json:
        print(jsonlib.dumps(rows, indent=2))
        return
    render.console().print(profiles_table(rows, dr_dir))


def profiles_table(rows: list[dict[str, str]], dr_dir: Any) -> Any:
    """Two columns, so that words wrap whole even at 80 columns: who the profile is, what it ships."""
    from rich.table import Table

    from drtasks.config import profile as profiles

    table = Table(title="profiles", title_justify="left", caption=_found_in(profiles.search_dirs(dr_dir)), caption_justify="left")
    table.add_column("profile", no_wrap=True)
    table.add_column("what it ships", overflow="fold", ratio=1)
    for row in rows:
        who = row["name"] + (f"\n[dim]extends {row['extends']}[/dim]" if row.get("extends") else "")
        facts = [f"upload {row['upload']}", f"checkpoint {row['checkpoint']}"] if "upload" in row else []
        if row.get("import"):
            facts.append(f"import {row['import']}")
        if row.get("steps"):
            facts.append(f"steps {row['steps']}")
        table.add_row(who, "\n".join(filter(None, [row.get("description", ""), ", ".join(facts)])))
    return table


def _found_in(directories: list[Any]) -> str:
    return "found in " + " and ".join(str(d) for d in directories)


def derived_settings(settings: Any) -> dict[str, tuple[str, str]]:
    """The values drtasks computes from the DR_* settings, shown beside them."""
    from drtasks.config import targets
    from drtasks.errors import DrtasksError

    derived: dict[str, tuple[str, str]] = {}
    try:
        source = targets.source_location(settings)
        derived["source"] = (source.url, "DR_LOCAL_S3_BUCKET + DR_LOCAL_S3_MODEL_PREFIX")
        derived["source endpoint"] = (source.endpoint_url or "AWS", "DR_LOCAL_S3_ENDPOINT_URL, else DR_CLOUD")
    except DrtasksError as error:
        derived["source"] = ("(unresolved)", error.message)
    try:
        upload = targets.upload_location(settings)
        derived["upload"] = (upload.url, "DR_UPLOAD_S3_BUCKET + DR_UPLOAD_S3_PREFIX")
        derived["upload endpoint"] = (upload.endpoint_url or "AWS", "DR_UPLOAD_S3_ENDPOINT_URL")
    except DrtasksError as error:
        derived["upload"] = ("(unresolved)", error.message)
    try:
        derived["checkpoint policy"] = (str(targets.checkpoint_policy(settings)), "DR_UPLOAD_CHECKPOINT")
    except DrtasksError as error:
        derived["checkpoint policy"] = ("(invalid)", error.message)
    return derived


def droa_caches(settings: Any) -> list[Any]:
    """The DRoA credentials cache of the configured site and user, if any: its secrets stay hidden."""
    site, user = settings.get("DR_DROA_URL"), settings.get("DR_DROA_USERNAME")
    if not (site and user):
        return []
    from drtasks.importing.droa import credentials_cache_file

    return [credentials_cache_file(site, user)]


@drtask(help={"profile": "named profile to layer over the env files", "json": "print the settings as JSON"})
def config(c: Any, profile: str | None = None, json: bool = False) -> None:
    """Show every resolved setting with its value and where it came from (secrets redacted)."""
    from drtasks import render
    from drtasks.config.known_secrets import known_secrets
    from drtasks.tasks.common import settings_for

    settings = settings_for(profile)
    rows = render.settings_rows(settings, derived_settings(settings), known_secrets(settings, droa_caches(settings)))
    if json:
        print(jsonlib.dumps({"profile": settings.profile_name, "dr_dir": str(settings.dr_dir), "settings": rows}, indent=2))
        return
    title = f"settings (DR_DIR={settings.dr_dir}, profile={settings.profile_name or 'none'})"
    render.console().print(render.settings_table(rows, title))


namespace = Collection(profiles, config)
