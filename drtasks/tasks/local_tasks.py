"""inv local-s3 and inv demo: the embedded S3 server, and the main job run on it."""

from __future__ import annotations

import json as jsonlib
from typing import Any

from invoke import Collection

from drtasks.tasks.common import drtask


@drtask(
    short={"port": "P"},
    help={
        "stop": "stop the embedded S3 server",
        "status": "only tell whether it runs, and where",
        "port": "S3 port to use when starting (default: a free one, kept across restarts)",
        "json": "print the server's details as JSON",
    }
)
def local_s3(c: Any, stop: bool = False, status: bool = False, port: int = 0, json: bool = False) -> None:
    """Start the embedded S3 (SeaweedFS) on loopback and print the settings that point drtasks at it."""
    from drtasks import locals3, render

    out = render.console()
    if stop:
        out.print("Stopped the embedded S3." if locals3.stop() else "The embedded S3 was not running.")
        return
    info = locals3.status() if status else locals3.ensure_running(port or None)
    if info is None:
        out.print("The embedded S3 is not running (start it with: inv local-s3).")
        return
    if json:
        print(jsonlib.dumps(locals3.describe(info), indent=2))
        return
    verb = "Started" if info.started else "Running"
    out.print(f"{verb}: embedded S3 at {info.endpoint_url} (pid {info.pid}), data in {info.data_dir}")
    out.print(f"Credentials are in {info.credentials_file} as AWS profile '{info.profile}'. For system.env:")
    for line in locals3.env_lines(info):
        out.print(f"  {line}")


@drtask(help={"keep": "keep the embedded S3 running afterwards (default: it keeps running; --no-keep stops it)"})
def demo(c: Any, keep: bool = True) -> None:
    """Run the main job on the embedded S3: seed a sample model, upload it, re-upload it, pack it for the car."""
    from drtasks import demo as sample, locals3, render
    from drtasks.config.settings import dr_dir_from
    from drtasks.chain import ChainRequest, StepSpec
    from drtasks.steps.carzip import CarZipOptions
    from drtasks.steps.upload import UploadOptions
    from drtasks.tasks.runner import RunOptions, run_chains
    import os

    out = render.console()
    info = locals3.ensure_running(buckets=[sample.SOURCE_BUCKET, sample.UPLOAD_BUCKET])
    out.print(f"Embedded S3 at {info.endpoint_url} ({'started' if info.started else 'already running'}).")
    if sample.seed_if_missing(info):
        out.print(f"Seeded a sample trained model at s3://{sample.SOURCE_BUCKET}/{sample.MODEL_PREFIX}/ (4 checkpoints, best != last).")
    profile, written = sample.write_profile(dr_dir_from(os.environ), info)
    if written:
        out.print(f"Wrote the profile {profile} for your own runs (inv upload --profile demo ...).")
    else:
        out.print(f"Kept your edited profile {profile} as it is (the demo itself does not read it).")

    # The demo's locations go in above every layer, so DR_* variables of a real DRfC install
    # in the environment can never send the demo to a real bucket.
    overrides = {key: (value, "inv demo") for key, value in sample.demo_settings(info).items()}
    out.rule("1. upload the last checkpoint (plan, then copy server-side, then verify)")
    forced = RunOptions(force=True)
    run_chains([ChainRequest(None, [StepSpec("upload", UploadOptions(wipe=True))], overrides)], forced)
    out.rule("2. upload again: every object is unchanged, nothing moves")
    run_chains([ChainRequest(None, [StepSpec("upload", UploadOptions())], overrides)], forced)
    out.rule("3. car-zip of the best checkpoint from S3")
    best = {**overrides, "DR_UPLOAD_CHECKPOINT": ("best", "inv demo")}
    run_chains([ChainRequest(None, [StepSpec("car-zip", CarZipOptions(source="s3"))], best)], forced)
    out.rule("done")
    out.print("Next: inv config --profile demo | inv upload --profile demo --best --dry-run | inv car-zip --profile demo -c 16 -o models/")
    if not keep:
        locals3.stop()
        out.print("Stopped the embedded S3.")


namespace = Collection(local_s3, demo)
