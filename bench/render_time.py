"""How long drtasks takes to show a plan of many keys, without any S3: timed inside one process.

Builds the upload plan of a model whose metrics folder holds ``--keys`` objects (the plan value
drtasks shows, made by ``drtasks.plan.plan_upload`` against an empty target), then times, each
once, to a console that writes to /dev/null at 160 columns:

  table      the plan as ``inv upload`` shows it (folders of many objects folded)
  table_all  the same with ``--all`` (a row per key)
  json       the plan as ``--json`` prints it
  checks     the proof of as many objects after a transfer (``render.print_checks``)

and prints one JSON line of seconds. Imports (rich among them) are timed apart as ``imports``.

    python bench/render_time.py [--keys 5000]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=5000)
    args = parser.parse_args(argv)

    started = time.perf_counter()
    from drtasks import render
    from drtasks.chain import ChainPlan
    from drtasks.manifest import ManifestItem, SourceObject
    from drtasks.model import Checkpoint
    from drtasks.plan import plan_upload
    from drtasks.s3 import S3Location
    from drtasks.steps.upload import UploadPlan
    from drtasks.transfer import Check

    imports = time.perf_counter() - started
    source = S3Location("training", "rl-deepracer-sagemaker", "http://127.0.0.1:1")
    target = S3Location("race", "race-model-1", "http://127.0.0.1:2")
    checkpoint = Checkpoint(19, "19_Step-10822.ckpt", {"name": "19_Step-10822.ckpt"})

    def copied(key: str, size: int) -> ManifestItem:
        return ManifestItem(key, SourceObject(source.bucket, source.key(key), size, f"{hash(key) & (2**128 - 1):032x}"))

    manifest = [copied(f"model/{checkpoint.name}.{s}", 45 << 20) for s in ("data-00000-of-00001", "index", "meta")]
    manifest += [copied("model/model_19.pb", 22 << 20), copied("model/model_metadata.json", 2000), copied("ip/hyperparameters.json", 900)]
    manifest += [copied("reward_function.py", 1500), ManifestItem("training_params.yaml", content=b"x" * 800)]
    manifest += [copied(f"metrics/evaluation/evaluation-{1_700_000_000_000 + n * 97}.json", 2048) for n in range(args.keys)]
    manifest += [ManifestItem("model/deepracer_checkpoints.json", content=b"{}"), ManifestItem("model/.coach_checkpoint", content=b"x\n")]
    plan = plan_upload(manifest, source, target, None, existing={})
    chain = ChainPlan(None, [UploadPlan(plan, checkpoint, None, None, [])], None)  # type: ignore[arg-type]
    checks = [Check(item.key, True, "streamed, source checksum and target MD5 confirmed") for item in manifest]

    times = {"imports": imports}
    with open(os.devnull, "w", encoding="utf-8") as sink:
        out = render.Console(file=sink, width=160, highlight=False, soft_wrap=False)
        for name, show in (
            ("table", lambda: render.print_chain(chain, out)),
            ("table_all", lambda: render.print_chain(chain, out, show_all=True)),
            ("json", lambda: sink.write(json.dumps(chain.as_dict(), indent=2))),
            ("checks", lambda: render.print_checks(checks, target.url, out)),
        ):
            began = time.perf_counter()
            show()
            times[name] = time.perf_counter() - began
    print(json.dumps(times))
    return 0


if __name__ == "__main__":
    sys.exit(main())
