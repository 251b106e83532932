"""Measure drtasks at scale against rclone, s5cmd, DRfC's scripts and bare boto3 scripts.

Everything runs in this process tree: two SeaweedFS servers in a temporary directory, temporary AWS
credentials, seeded models. Each contender runs as a child process started by ``spawner.py``,
timed from outside, its peak RSS read from wait4(). Every case runs its contenders once per round,
the starting contender shifting by one each round; one warm-up round is not counted.

  plan     `upload --dry-run --json` of a model prefix holding 20,000 simtrace files vs the same
           model without them
  many-x   5,000 metrics objects between two endpoints: drtasks upload vs rclone copy vs s5cmd
           (down and up) vs DRfC's `aws s3 cp --recursive` + `aws s3 sync`
  many-1   the same upload on one endpoint (server-side copies) vs a bare boto3 copy loop
  render   the plan of 5,000 keys shown as a table, with --all, as JSON, and 5,000 checks (in-process)
  wipe     `upload -f -w` into a target holding the model plus 10,000 strays vs a bare list +
           DeleteObjects script
  noop     re-upload of an unchanged realistic model (68 MiB) and its `--dry-run` vs rclone's
           no-op `copy --checksum` of the same layout and `python -c 'import boto3'`
  carzip   `car-zip --from s3` of a 150 MiB frozen graph vs a bare get + tar + put script and
           DRfC's `aws s3 cp` + `tar czf` + `aws s3 cp`

    python bench/scale_bench.py [--rounds N] [--quick] [--cases plan,many-x,...]

It is a measurement: the exit code is 0 whether the targets hold or not, non-zero only on errors.
"""

from __future__ import annotations

import argparse
from abc import ABC, abstractmethod
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))
sys.path.insert(1, str(BENCH_DIR.parent))

from children import AWS_ENV_REMOVED  # noqa: E402
from upload_bench import PROFILE_A, PROFILE_B, Bench, BenchError, Run  # noqa: E402

from drtasks.errors import DrtasksError  # noqa: E402
from drtasks.locals3 import S3Server, ensure_bucket  # noqa: E402
from drtasks.sample_model import KIB, MIB, seed_model  # noqa: E402

SOURCE_BUCKET, RACE_BUCKET = "training", "race"


@dataclass(frozen=True)
class Scale:
    simtraces: int  # extra objects beside the crowded model
    metrics: int  # metrics objects of the many-keys model
    strays: int  # objects the wipe deletes
    realistic_data: int  # checkpoint data of the no-op model (4 checkpoints)
    realistic_pb: int
    realistic_meta: int
    car_pb: int  # the car-zip model's frozen graph
    render_keys: int


FULL = Scale(20_000, 5_000, 10_000, 45 * MIB, 22 * MIB, 1 * MIB, 150 * MIB, 5_000)
QUICK = Scale(2_000, 500, 1_000, 4 * MIB, 2 * MIB, 256 * KIB, 16 * MIB, 5_000)

# Model prefixes in the training bucket (server a).
PLAIN, CROWDED, MANY, REALISTIC, CAR = "plain-model", "crowded-model", "many-model", "realistic-model", "car-model"
# contender -> title, per case; the first contender is drtasks' (or the one the targets are about).
CASES: dict[str, dict[str, str]] = {
    "plan": {"crowded": "drtasks plan, + simtraces", "plain": "drtasks plan, same model alone"},
    "many-x": {
        "drtasks": "drtasks upload, 2 endpoints",
        "rclone": "rclone copy (metrics folder)",
        "s5cmd": "s5cmd down + up (metrics folder)",
        "drfc": "DRfC: aws s3 cp + sync (metrics)",
    },
    "many-1": {"drtasks": "drtasks upload, 1 endpoint", "floor": "bare boto3 copy loop (8 threads)"},
    "render": {"render": "render_time.py (in-process)"},
    "wipe": {"drtasks": "drtasks upload -w (strays deleted)", "floor": "bare list + delete_objects"},
    "noop": {
        "reupload": "drtasks re-upload, unchanged",
        "dryrun": "drtasks upload --dry-run",
        "rclone": "rclone copy --checksum, no-op",
        "boto3": "python -c 'import boto3'",
    },
    "carzip": {"drtasks": "drtasks car-zip --from s3", "floor": "bare get + tar + put", "drfc": "DRfC: aws s3 cp + tar + cp"},
}


@dataclass
class ScaleBench(Bench):
    scale: Scale = QUICK
    tools: dict[str, str] = field(default_factory=dict)
    plans: dict[str, dict[str, Any]] = field(default_factory=dict)
    car: dict[str, str] = field(default_factory=dict)

    # -- setup ----------------------------------------------------------------------------
    def _child_env(self) -> dict[str, str]:
        """As upload_bench's, with Python's bytecode cache on: an installed drtasks has its bytecode,
        a machine that sets PYTHONDONTWRITEBYTECODE would compile every module of every run."""
        env = super()._child_env()
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        return env

    def start(self) -> None:  # type: ignore[override]
        for name in ("a", "b"):
            self.servers[name] = S3Server().start(self.root / f"s3-{name}")
        self._write_aws_files()
        self.env = self._child_env()
        for bucket in (SOURCE_BUCKET, RACE_BUCKET):
            ensure_bucket(self.client("a"), bucket)
        ensure_bucket(self.client("b"), RACE_BUCKET)

    def seed(self, cases: list[str], say: Callable[[str], None]) -> None:
        client, s = self.client("a"), self.scale
        tiny = dict(data_size=64 * KIB, pb_size=256 * KIB, meta_size=16 * KIB, simtrace_iterations=3)
        if {"plan", "wipe"} & set(cases):
            seed_model(client, SOURCE_BUCKET, PLAIN, **tiny)
        if "plan" in cases:
            seed_model(client, SOURCE_BUCKET, CROWDED, **tiny)
            say(f"seeding {s.simtraces:,} simtrace files beside {CROWDED}...")
            self.bulk_put("a", SOURCE_BUCKET, f"{CROWDED}/training-simtrace/", s.simtraces, 4 * KIB, "{n}-iteration.csv")
        if {"many-x", "many-1"} & set(cases):
            seed_model(client, SOURCE_BUCKET, MANY, **tiny)
            say(f"seeding {s.metrics:,} metrics objects in {MANY}...")
            self.bulk_put("a", SOURCE_BUCKET, f"{MANY}/metrics/evaluation/", s.metrics, 2 * KIB, "evaluation-{n}.json")
        if "noop" in cases:
            say("seeding the realistic model...")
            seed_model(client, SOURCE_BUCKET, REALISTIC, data_size=s.realistic_data, pb_size=s.realistic_pb, meta_size=s.realistic_meta, simtrace_iterations=20)
        if "carzip" in cases:
            say(f"seeding a model with a {s.car_pb / MIB:g} MiB frozen graph...")
            model = seed_model(client, SOURCE_BUCKET, CAR, checkpoints=(7,), data_size=64 * KIB, pb_size=s.car_pb, meta_size=16 * KIB)
            self.car = {"pb": model.key(f"model/model_{model.last}.pb"), "metadata": model.key("model/model_metadata.json")}
        layouts = {
            "plain": (PLAIN, "a", "race-plain"), "crowded": (CROWDED, "a", "race-crowded"),
            "many-x": (MANY, "b", "race-many-x"), "many-1": (MANY, "a", "race-many-1"), "wipe": (PLAIN, "a", "race-wipe"),
            "noop": (REALISTIC, "a", "race-noop"), "carzip": (CAR, "a", "race-car-drtasks"),
        }
        for name, (model, server, prefix) in layouts.items():
            self.write_dr_dir(name, model, server, prefix)

    def bulk_put(self, server: str, bucket: str, folder: str, count: int, size: int, name: str) -> None:
        """``count`` objects of ``size`` bytes under ``folder`` (s5cmd from a local folder: quick)."""
        local = self.root / "bulk" / f"{count}-{size}-{name.replace('{n}', 'N')}"
        if not local.is_dir():
            local.mkdir(parents=True)
            for n in range(count):
                (local / name.format(n=f"{n:06d}")).write_bytes(os.urandom(size))
        self.s5cmd(server, "cp", f"{local}/", f"s3://{bucket}/{folder}")

    def s5cmd(self, server: str, *args: str) -> None:
        profile = PROFILE_A if server == "a" else PROFILE_B
        command = ["s5cmd", "--credentials-file", str(self.root / "aws" / "credentials"), "--profile", profile, "--endpoint-url", self.servers[server].endpoint_url, *args]
        answer = subprocess.run(command, capture_output=True, text=True, env=self.env)
        if answer.returncode != 0:
            raise BenchError(f"s5cmd {' '.join(args[:2])} failed: {answer.stderr.strip()[-400:]}")

    def write_dr_dir(self, name: str, model: str, target_server: str, target_prefix: str) -> None:
        directory = self.root / f"dr-{name}"
        directory.mkdir(exist_ok=True)
        source, target = self.servers["a"], self.servers[target_server]
        (directory / "system.env").write_text(
            "DR_CLOUD=local\n"
            f"DR_LOCAL_S3_ENDPOINT_URL={source.endpoint_url}\nDR_LOCAL_S3_PROFILE={PROFILE_A}\nDR_LOCAL_S3_BUCKET={SOURCE_BUCKET}\n"
            f"DR_UPLOAD_S3_ENDPOINT_URL={target.endpoint_url}\nDR_UPLOAD_S3_PROFILE={PROFILE_A if target_server == 'a' else PROFILE_B}\n"
            f"DR_UPLOAD_S3_BUCKET={RACE_BUCKET}\n"
        )
        (directory / "run.env").write_text(
            f"DR_LOCAL_S3_MODEL_PREFIX={model}\nDR_UPLOAD_S3_PREFIX={target_prefix}\n"
            "DR_WORLD_NAME=2022_april_open\nDR_CAR_NAME=Speedy\nDR_RACE_TYPE=TIME_TRIAL\n"
        )

    def target_prefix(self, name: str) -> str:
        return (self.root / f"dr-{name}" / "run.env").read_text().split("DR_UPLOAD_S3_PREFIX=")[1].split("\n")[0]

    # -- children -------------------------------------------------------------------------
    def drtasks(self, name: str, *args: str) -> tuple[Run, str]:
        directory = self.root / f"dr-{name}"
        return self.run_child(self.drtasks_command(*args), extra_env={"DR_DIR": str(directory)}, cwd=directory)

    def competitor_env(self) -> dict[str, str]:
        """rclone fails on this kind of machine when AWS_CA_BUNDLE names a bundle it cannot use."""
        env = {"AWS_CA_BUNDLE": ""}
        for name, server in (("SRC", "a"), ("DST", "b")):
            s = self.servers[server]
            env.update({
                f"RCLONE_CONFIG_{name}_TYPE": "s3", f"RCLONE_CONFIG_{name}_PROVIDER": "Other",
                f"RCLONE_CONFIG_{name}_ACCESS_KEY_ID": s.access_key, f"RCLONE_CONFIG_{name}_SECRET_ACCESS_KEY": s.secret_key,
                f"RCLONE_CONFIG_{name}_ENDPOINT": s.endpoint_url, f"RCLONE_CONFIG_{name}_FORCE_PATH_STYLE": "true",
                f"RCLONE_CONFIG_{name}_REGION": "us-east-1",
            })
        env["RCLONE_CONFIG"] = str(self.root / "rclone.conf")
        return env

    def run_tool(self, command: list[str], extra: dict[str, str] | None = None) -> Run:
        env = {**self.competitor_env(), **(extra or {})}
        run, _ = self.run_child_env(command, env)
        return run

    def run_child_env(self, command: list[str], extra: dict[str, str]) -> tuple[Run, str]:
        """Like run_child, with variables the child must not see removed (empty value = removed)."""
        saved = self.env
        self.env = {k: v for k, v in {**self.env, **extra}.items() if not (k in extra and v == "")}
        try:
            return self.run_child(command)
        finally:
            self.env = saved

    # -- S3 state -------------------------------------------------------------------------
    def keys(self, server: str, bucket: str, prefix: str) -> dict[str, int]:
        found: dict[str, int] = {}
        for page in self.client(server).get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix.rstrip("/") + "/"):
            found.update({item["Key"]: int(item["Size"]) for item in page.get("Contents", [])})
        return found

    def empty(self, server: str, bucket: str, prefix: str) -> None:
        client = self.client(server)
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix.rstrip("/") + "/"):
            keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
            if keys:
                client.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
        if self.keys(server, bucket, prefix):
            raise BenchError(f"could not empty s3://{bucket}/{prefix}")

    def plan_of(self, name: str) -> dict[str, Any]:
        _, stdout = self.drtasks(name, "upload", "--dry-run", "--json")
        document = json.loads(stdout)
        return document["steps"][0] if "steps" in document else document


def median(values: list[float]) -> float:
    return statistics.median(values)


# ---------------------------------------------------------------------------- cases
class Case(ABC):
    """One case: set-up before its rounds, a run per contender (with untimed preparation), checks."""

    name = ""

    def __init__(self, bench: ScaleBench) -> None:
        self.bench = bench
        self.contenders = list(CASES[self.name])

    def prepare(self) -> None: ...
    def before(self, contender: str) -> None: ...
    @abstractmethod
    def run(self, contender: str) -> Run: ...
    def after(self, contender: str) -> None: ...


class PlanCase(Case):
    name = "plan"

    def prepare(self) -> None:
        for model in ("plain", "crowded"):
            plan = self.bench.plan_of(model)
            if any("simtrace" in str(item["source"]) for item in plan["items"]):
                raise BenchError("the plan copies simtraces")

    def run(self, contender: str) -> Run:
        return self.bench.drtasks(contender, "upload", "--dry-run", "--json")[0]


class ManyCrossCase(Case):
    name = "many-x"

    def prepare(self) -> None:
        b = self.bench
        self.prefix = b.target_prefix("many-x")
        plan = b.plan_of("many-x")
        self.expected = {item["key"]: item["source_size"] for item in plan["items"]}
        self.metrics = {k: v for k, v in b.keys("a", SOURCE_BUCKET, f"{MANY}/metrics").items()}
        if len(self.metrics) < b.scale.metrics:
            raise BenchError(f"{MANY}/metrics holds {len(self.metrics)} objects")

    def target(self, contender: str) -> str:
        return self.prefix if contender == "drtasks" else f"{self.prefix}-{contender}"

    def before(self, contender: str) -> None:
        self.bench.empty("b", RACE_BUCKET, self.target(contender))
        shutil.rmtree(self.bench.root / "work", ignore_errors=True)

    def run(self, contender: str) -> Run:
        b = self.bench
        src_url = f"s3://{SOURCE_BUCKET}/{MANY}/metrics/"
        dst_url = f"s3://{RACE_BUCKET}/{self.target(contender)}/metrics/"
        if contender == "drtasks":
            return b.drtasks("many-x", "upload", "-f", "-w")[0]
        if contender == "rclone":
            return b.run_tool(["rclone", "copy", f"SRC:{SOURCE_BUCKET}/{MANY}/metrics", f"DST:{RACE_BUCKET}/{self.target(contender)}/metrics"])
        work = str(b.root / "work")
        common = {"SRC_PROFILE": PROFILE_A, "SRC_ENDPOINT": b.servers["a"].endpoint_url, "SRC_URL": src_url,
                  "DST_PROFILE": PROFILE_B, "DST_ENDPOINT": b.servers["b"].endpoint_url, "DST_URL": dst_url, "WORK_DIR": work,
                  "CREDENTIALS": str(b.root / "aws" / "credentials")}
        script = "s5cmd_metrics.sh" if contender == "s5cmd" else "drfc_metrics.sh"
        return b.run_tool(["bash", str(BENCH_DIR / script)], common)

    def after(self, contender: str) -> None:
        found = self.bench.keys("b", RACE_BUCKET, self.target(contender))
        metrics = [k for k in found if "/metrics/" in k]
        if len(metrics) != len(self.metrics):
            raise BenchError(f"{contender} left {len(metrics)} metrics objects, the source holds {len(self.metrics)}")
        shutil.rmtree(self.bench.root / "work", ignore_errors=True)


class ManySameCase(Case):
    name = "many-1"

    def prepare(self) -> None:
        b = self.bench
        self.prefix = b.target_prefix("many-1")
        b.empty("a", RACE_BUCKET, self.prefix)
        plan = b.plan_of("many-1")
        if plan["transfer"] != "server-side copy":
            raise BenchError(f"many-1 plans {plan['transfer']}")
        self.plan_file = b.root / "many-1-plan.json"
        self.plan_file.write_text(json.dumps(plan), encoding="utf-8")
        self.count = plan["summary"]["objects"]

    def target(self, contender: str) -> str:
        return self.prefix if contender == "drtasks" else f"{self.prefix}-floor"

    def before(self, contender: str) -> None:
        self.bench.empty("a", RACE_BUCKET, self.target(contender))

    def run(self, contender: str) -> Run:
        b = self.bench
        if contender == "drtasks":
            return b.drtasks("many-1", "upload", "-f", "-w")[0]
        command = [sys.executable, str(BENCH_DIR / "floor_copy.py"), "--plan", str(self.plan_file), "--profile", PROFILE_A,
                   "--endpoint-url", b.servers["a"].endpoint_url, "--prefix", self.target(contender)]
        return b.run_child(command)[0]

    def after(self, contender: str) -> None:
        found = self.bench.keys("a", RACE_BUCKET, self.target(contender))
        if len(found) != self.count:
            raise BenchError(f"many-1 {contender} wrote {len(found)} objects, the plan has {self.count}")


class RenderCase(Case):
    name = "render"

    def __init__(self, bench: ScaleBench) -> None:
        super().__init__(bench)
        self.parts: dict[str, list[float]] = {}

    def run(self, contender: str) -> Run:
        run, stdout = self.bench.run_child([sys.executable, str(BENCH_DIR / "render_time.py"), "--keys", str(self.bench.scale.render_keys)])
        for name, seconds in json.loads(stdout.strip().splitlines()[-1]).items():
            self.parts.setdefault(name, []).append(seconds)
        return run


class WipeCase(Case):
    name = "wipe"

    def prepare(self) -> None:
        b = self.bench
        self.prefix = b.target_prefix("wipe")
        b.empty("a", RACE_BUCKET, self.prefix)
        b.drtasks("wipe", "upload", "-f")  # the target holds the model; the strays come before each run
        self.model_keys = b.keys("a", RACE_BUCKET, self.prefix)

    def before(self, contender: str) -> None:
        b = self.bench
        b.bulk_put("a", RACE_BUCKET, f"{self.prefix}/strays/", b.scale.strays, 0, "stray-{n}")
        if len(b.keys("a", RACE_BUCKET, f"{self.prefix}/strays")) != b.scale.strays:
            raise BenchError("the strays were not all written")

    def run(self, contender: str) -> Run:
        b = self.bench
        if contender == "drtasks":
            return b.drtasks("wipe", "upload", "-f", "-w")[0]
        command = [sys.executable, str(BENCH_DIR / "floor_wipe.py"), "--profile", PROFILE_A, "--endpoint-url", b.servers["a"].endpoint_url,
                   "--bucket", RACE_BUCKET, "--prefix", f"{self.prefix}/strays"]
        return b.run_child(command)[0]

    def after(self, contender: str) -> None:
        if self.bench.keys("a", RACE_BUCKET, self.prefix) != self.model_keys:
            raise BenchError(f"wipe by {contender} left a different target")


class NoopCase(Case):
    name = "noop"

    def prepare(self) -> None:
        b = self.bench
        self.prefix = b.target_prefix("noop")
        b.drtasks("noop", "upload", "-f", "-w")
        plan = b.plan_of("noop")
        if plan["summary"]["bytes_to_move"] or plan["summary"]["bytes_copied_server_side"] or plan["summary"]["add"]:
            raise BenchError(f"the re-upload would move bytes: {plan['summary']}")
        # rclone's no-op: the same layout on both sides of a `copy --checksum`.
        b.run_tool(["rclone", "copy", f"SRC:{RACE_BUCKET}/{self.prefix}", f"SRC:{RACE_BUCKET}/{self.prefix}-rclone"])
        self.objects = plan["summary"]["objects"]

    def run(self, contender: str) -> Run:
        b = self.bench
        if contender == "reupload":
            return b.drtasks("noop", "upload", "-f")[0]
        if contender == "dryrun":
            return b.drtasks("noop", "upload", "--dry-run")[0]
        if contender == "rclone":
            return b.run_tool(["rclone", "copy", "--checksum", f"SRC:{RACE_BUCKET}/{self.prefix}", f"SRC:{RACE_BUCKET}/{self.prefix}-rclone"])
        return b.run_child([sys.executable, "-c", "import boto3"])[0]


class CarZipCase(Case):
    name = "carzip"

    def key(self, contender: str) -> str:
        return f"race-car-{contender}/carfile.tar.gz"

    def before(self, contender: str) -> None:
        self.bench.empty("a", RACE_BUCKET, self.key(contender).rsplit("/", 1)[0])
        shutil.rmtree(self.bench.root / "work", ignore_errors=True)

    def run(self, contender: str) -> Run:
        b = self.bench
        if contender == "drtasks":
            return b.drtasks("carzip", "car-zip", "--from", "s3", "-f")[0]
        if contender == "floor":
            return b.run_child([sys.executable, str(BENCH_DIR / "floor_carzip.py"), "--profile", PROFILE_A, "--endpoint-url", b.servers["a"].endpoint_url,
                                "--bucket", SOURCE_BUCKET, "--pb", b.car["pb"], "--metadata", b.car["metadata"],
                                "--target-bucket", RACE_BUCKET, "--target-key", self.key(contender)])[0]
        settings = {"PROFILE": PROFILE_A, "ENDPOINT": b.servers["a"].endpoint_url, "BUCKET": SOURCE_BUCKET, "PB_KEY": b.car["pb"],
                    "METADATA_KEY": b.car["metadata"], "TARGET_BUCKET": RACE_BUCKET, "TARGET_KEY": self.key(contender), "WORK_DIR": str(b.root / "work")}
        return b.run_tool(["bash", str(BENCH_DIR / "drfc_carzip.sh")], settings)

    def after(self, contender: str) -> None:
        found = self.bench.keys("a", RACE_BUCKET, self.key(contender).rsplit("/", 1)[0])
        if list(found) != [self.key(contender)] or found[self.key(contender)] < self.bench.scale.car_pb // 2:
            raise BenchError(f"car-zip by {contender} left {found}")
        shutil.rmtree(self.bench.root / "work", ignore_errors=True)


CASE_CLASSES: dict[str, type[Case]] = {c.name: c for c in (PlanCase, ManyCrossCase, ManySameCase, RenderCase, WipeCase, NoopCase, CarZipCase)}


# ---------------------------------------------------------------------------- report
def ratio(results: dict[str, list[Run]], top: str, bottom: str) -> float:
    return median([t.wall / b.wall for t, b in zip(results[top], results[bottom])])


def report(bench: ScaleBench, cases: dict[str, Case], results: dict[str, dict[str, list[Run]]]) -> None:
    s = bench.scale
    print()
    print("Versions: " + "; ".join(f"{name} {version}" for name, version in bench.tools.items()))
    print(f"Scale: {s.simtraces:,} simtraces, {s.metrics:,} metrics objects, {s.strays:,} strays, realistic model "
          f"{s.realistic_data / MIB:g}+{s.realistic_pb / MIB:g}+{s.realistic_meta / MIB:g} MiB x 4 checkpoints, car graph {s.car_pb / MIB:g} MiB")
    header = f"{'case':<7} {'contender':<36} {'rounds':>6} {'median s':>9} {'min s':>7} {'max s':>7} {'RSS MB':>7} {'max RSS':>8}"
    print()
    print(header)
    print("-" * len(header))
    for case, runs in results.items():
        for contender, title in CASES[case].items():
            walls = [r.wall for r in runs[contender]]
            rss = [r.peak_rss_mb for r in runs[contender]]
            print(f"{case:<7} {title:<36} {len(walls):>6} {median(walls):>9.2f} {min(walls):>7.2f} {max(walls):>7.2f} {median(rss):>7.0f} {max(rss):>8.0f}")
    targets: list[tuple[str, bool, str]] = []
    ratios: list[str] = []

    def add_ratio(case: str, top: str, bottom: str) -> float:
        value = ratio(results[case], top, bottom)
        ratios.append(f"{case} {top}/{bottom} = {value:.2f}x")
        return value

    if "plan" in results:
        value = add_ratio("plan", "crowded", "plain")
        targets.append((f"1. plan with {s.simtraces:,} extra objects within 1.2x of the model alone", value <= 1.2, f"{value:.2f}x"))
    if "many-x" in results:
        value = add_ratio("many-x", "drtasks", "rclone")
        add_ratio("many-x", "drtasks", "s5cmd")
        add_ratio("many-x", "drfc", "drtasks")
        targets.append((f"2. {s.metrics:,} metrics objects across endpoints at or below rclone's time", value <= 1.0, f"{value:.2f}x rclone"))
    if "many-1" in results:
        value = add_ratio("many-1", "drtasks", "floor")
        targets.append(("2. same endpoint within 1.1x of the bare copy loop", value <= 1.1, f"{value:.2f}x"))
    if "render" in results:
        parts = cases["render"].parts  # type: ignore[attr-defined]
        shown = {name: median(values) for name, values in parts.items()}
        print()
        print(f"Render of a {s.render_keys:,}-key plan (medians, seconds): " + ", ".join(f"{k} {v:.3f}" for k, v in shown.items()))
        targets.append((f"3. a {s.render_keys:,}-key plan renders in under 0.3 s", shown["table"] < 0.3, f"table {shown['table']:.3f} s, --all {shown['table_all']:.3f} s, json {shown['json']:.3f} s, checks {shown['checks']:.3f} s"))
    if "wipe" in results:
        value = add_ratio("wipe", "drtasks", "floor")
        targets.append((f"4. wipe of {s.strays:,} strays within 1.2x of list + delete", value <= 1.2, f"{value:.2f}x"))
    if "noop" in results:
        reupload = add_ratio("noop", "reupload", "rclone")
        dryrun = add_ratio("noop", "dryrun", "rclone")
        add_ratio("noop", "dryrun", "boto3")
        targets.append(("5. no-op re-upload within 1.5x of rclone's no-op", reupload <= 1.5, f"{reupload:.2f}x"))
        targets.append(("5. upload --dry-run within 1.5x of rclone's no-op", dryrun <= 1.5, f"{dryrun:.2f}x"))
    if "carzip" in results:
        value = add_ratio("carzip", "drtasks", "floor")
        add_ratio("carzip", "drfc", "drtasks")
        peak = max(r.peak_rss_mb for r in results["carzip"]["drtasks"])
        targets.append((f"6. car-zip of a {s.car_pb / MIB:g} MiB graph: peak RSS under 200 MB", peak < 200, f"max {peak:.0f} MB"))
        targets.append(("6. car-zip within 1.1x of the bare script", value <= 1.1, f"{value:.2f}x"))
    print()
    print("Ratios (medians of per-round ratios):")
    for line in ratios:
        print(f"  {line}")
    print()
    print("Targets:")
    for name, holds, detail in targets:
        print(f"  [{'OK  ' if holds else 'MISS'}] {name:<70} {detail}")


# ---------------------------------------------------------------------------- main
def tool_versions(env: dict[str, str]) -> dict[str, str]:
    found = {}
    for name, command in (("rclone", ["rclone", "version"]), ("s5cmd", ["s5cmd", "version"]), ("aws", ["aws", "--version"])):
        try:
            answer = subprocess.run(command, capture_output=True, text=True, env={**env, "AWS_CA_BUNDLE": ""}, timeout=60)
        except (OSError, subprocess.TimeoutExpired) as error:
            raise BenchError(f"{name} does not run ({error})") from None
        if answer.returncode != 0:
            raise BenchError(f"{' '.join(command)} failed: {answer.stderr.strip()[:300]}")
        found[name] = (answer.stdout or answer.stderr).strip().splitlines()[0]
    import boto3

    found["boto3"] = boto3.__version__
    return found


def measure(bench: ScaleBench, names: list[str], rounds: int, say: Callable[[str], None]) -> tuple[dict[str, Case], dict[str, dict[str, list[Run]]]]:
    cases = {name: CASE_CLASSES[name](bench) for name in names}
    results: dict[str, dict[str, list[Run]]] = {}
    for name, case in cases.items():
        say(f"{name}: preparing...")
        case.prepare()
        results[name] = {contender: [] for contender in case.contenders}
        for number in range(rounds + 1):  # round 0 warms caches and is not counted
            shift = number % len(case.contenders)
            order = case.contenders[shift:] + case.contenders[:shift]
            line = []
            for contender in order:
                case.before(contender)
                run = case.run(contender)
                case.after(contender)
                if number:
                    results[name][contender].append(run)
                line.append(f"{contender} {run.wall:.2f}s {run.peak_rss_mb:.0f}MB")
            say(f"{name} {'warm-up' if number == 0 else f'round {number}'}: " + ", ".join(line))
    return cases, results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Measure drtasks at scale against rclone, s5cmd, DRfC and bare scripts.")
    parser.add_argument("--rounds", type=int, help="measured rounds per case (default 5; 2 with --quick)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: a tenth of the objects, small models, 2 rounds")
    parser.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, from {', '.join(CASES)}")
    args = parser.parse_args(argv)
    rounds = args.rounds if args.rounds is not None else (2 if args.quick else 5)
    names = [n.strip() for n in args.cases.split(",") if n.strip()]
    unknown = [n for n in names if n not in CASES]
    if unknown or rounds < 1:
        parser.error(f"unknown case {unknown[0]}" if unknown else "--rounds must be at least 1")

    began = time.perf_counter()

    def say(text: str) -> None:
        print(f"[{time.perf_counter() - began:6.1f}s] {text}", file=sys.stderr, flush=True)

    signal.signal(signal.SIGTERM, signal.default_int_handler)
    root = Path(tempfile.mkdtemp(prefix="drtasks-scale-"))
    bench = ScaleBench(root, None, scale=QUICK if args.quick else FULL)  # type: ignore[arg-type]
    try:
        bench.tools = tool_versions({k: v for k, v in os.environ.items() if k not in AWS_ENV_REMOVED})
        say("; ".join(f"{k} {v}" for k, v in bench.tools.items()))
        bench.start_spawner()
        say("starting two SeaweedFS servers...")
        bench.start()
        bench.seed(names, say)
        cases, results = measure(bench, names, rounds, say)
        report(bench, cases, results)
        return 0
    except (BenchError, DrtasksError) as error:
        say(f"scale_bench: {error}")
        return 1
    except KeyboardInterrupt:
        say("scale_bench: interrupted")
        return 130
    finally:
        bench.close()


if __name__ == "__main__":
    sys.exit(main())
