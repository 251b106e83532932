"""Measure `inv upload` against its floor and against DRfC's download-then-sync approach.

Everything runs in this process tree: two SeaweedFS servers in a temporary directory, a temporary
AWS credentials file, a seeded model with four checkpoints. Each case runs as a child process,
timed from outside (wall clock) with its peak RSS read from wait4():

  a  drtasks upload, source and target on the same endpoint (server-side copies)
  b  drtasks upload to a second endpoint (streamed)
  c  drtasks re-upload of a model the target already holds (must move zero bytes)
  d  the floor: bench/floor_copy.py, the same copies and puts in bare boto3
  e  DRfC's approach: bench/drfc_upload.sh, AWS CLI downloads then `aws s3 sync` up

    python bench/upload_bench.py [--rounds N] [--quick]

It is a measurement: the exit code is 0 whether the targets hold or not, non-zero only on errors.
"""

from __future__ import annotations

import argparse
import json
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
REPO = BENCH_DIR.parent
sys.path.insert(0, str(REPO))  # this checkout's drtasks, installed or not

from drtasks.errors import DrtasksError  # noqa: E402
from drtasks.locals3 import S3Server, ensure_bucket  # noqa: E402
from drtasks.sample_model import KIB, MIB, seed_model  # noqa: E402

from children import child_env, stop_servers, write_aws_files  # noqa: E402  (this folder's)

PROFILE_A, PROFILE_B = "bench-a", "bench-b"
SOURCE_BUCKET, RACE_BUCKET = "training", "race"
MODEL_PREFIX = "rl-deepracer-sagemaker"
CASES = ("a", "b", "c", "d", "e")
TITLES = {
    "a": "drtasks upload, same endpoint",
    "b": "drtasks upload, cross endpoint",
    "c": "drtasks re-upload, unchanged",
    "d": "floor: bare boto3 copies",
    "e": "DRfC: aws s3 cp + sync",
}
PREFIXES = {case: f"race-{case}" for case in CASES}
DRTASKS_CASES = ("a", "b", "c")


class BenchError(Exception):
    """A failure of the bench itself (a case failed, a server would not start): exit code 1."""


@dataclass(frozen=True)
class Sizes:
    data: int
    pb: int
    meta: int
    simtrace_iterations: int


FULL = Sizes(data=45 * MIB, pb=22 * MIB, meta=1 * MIB, simtrace_iterations=20)
QUICK = Sizes(data=4 * MIB, pb=2 * MIB, meta=256 * KIB, simtrace_iterations=3)


@dataclass(frozen=True)
class Run:
    wall: float  # seconds
    peak_rss_mb: float


@dataclass
class Bench:
    root: Path
    sizes: Sizes
    servers: dict[str, S3Server] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    plan_file: Path | None = None
    checkpoint: str = ""
    checkpoint_number: int = 0
    reward_key: str = ""
    spawner: subprocess.Popen[str] | None = None

    def start_spawner(self) -> None:
        """The small process that forks every measured child (see bench/spawner.py for why)."""
        self.spawner = subprocess.Popen(
            [sys.executable, str(BENCH_DIR / "spawner.py")], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )

    def stop_spawner(self) -> None:
        """End the spawner; if a child is still running (interrupted), it kills that child first."""
        spawner, self.spawner = self.spawner, None
        if spawner is None:
            return
        try:
            if spawner.stdin:
                spawner.stdin.close()  # an idle spawner ends at end of input
        except OSError:
            pass
        try:
            spawner.wait(2)
        except subprocess.TimeoutExpired:
            spawner.terminate()
            try:
                spawner.wait(10)
            except subprocess.TimeoutExpired:
                spawner.kill()
                spawner.wait()

    def close(self) -> None:
        """End the spawner, stop the servers and remove everything the benchmark wrote."""
        self.stop_spawner()
        stop_servers(self.servers.values())
        shutil.rmtree(self.root, ignore_errors=True)

    # -- setup ----------------------------------------------------------------------------
    def start(self) -> None:
        for name in ("a", "b"):
            self.servers[name] = S3Server().start(self.root / f"s3-{name}")
        self._write_aws_files()
        self.env = self._child_env()
        for bucket in (SOURCE_BUCKET, RACE_BUCKET):
            ensure_bucket(self.client("a"), bucket)
        ensure_bucket(self.client("b"), RACE_BUCKET)
        seed_model(
            self.client("a"),
            SOURCE_BUCKET,
            MODEL_PREFIX,
            data_size=self.sizes.data,
            pb_size=self.sizes.pb,
            meta_size=self.sizes.meta,
            simtrace_iterations=self.sizes.simtrace_iterations,
        )
        self._write_dr_dir("a", "a")
        self._write_dr_dir("b", "b")
        self._write_dr_dir("c", "a")

    def client(self, server: str) -> Any:
        return self.servers[server].client()

    def _write_aws_files(self) -> None:
        write_aws_files(self.root / "aws", ((PROFILE_A, self.servers["a"]), (PROFILE_B, self.servers["b"])))

    def _child_env(self) -> dict[str, str]:
        return child_env(self.root / "aws", self.root / "cache")

    def _write_dr_dir(self, case: str, target_server: str) -> None:
        """A DRfC-like directory: the model on server a, the upload target on ``target_server``."""
        directory = self.dr_dir(case)
        directory.mkdir()
        source, target = self.servers["a"], self.servers[target_server]
        target_profile = PROFILE_A if target_server == "a" else PROFILE_B
        (directory / "system.env").write_text(
            "DR_CLOUD=local\n"
            f"DR_LOCAL_S3_ENDPOINT_URL={source.endpoint_url}\n"
            f"DR_LOCAL_S3_PROFILE={PROFILE_A}\n"
            f"DR_LOCAL_S3_BUCKET={SOURCE_BUCKET}\n"
            f"DR_UPLOAD_S3_ENDPOINT_URL={target.endpoint_url}\n"
            f"DR_UPLOAD_S3_PROFILE={target_profile}\n"
            f"DR_UPLOAD_S3_BUCKET={RACE_BUCKET}\n"
        )
        (directory / "run.env").write_text(
            f"DR_LOCAL_S3_MODEL_PREFIX={MODEL_PREFIX}\n"
            f"DR_UPLOAD_S3_PREFIX={PREFIXES[case]}\n"
            "DR_WORLD_NAME=2022_april_open\nDR_CAR_NAME=Speedy\nDR_RACE_TYPE=TIME_TRIAL\n"
        )

    def dr_dir(self, case: str) -> Path:
        return self.root / f"dr-{case}"

    # -- children -------------------------------------------------------------------------
    def drtasks_command(self, *args: str) -> list[str]:
        return [sys.executable, "-c", "import sys; sys.argv[0] = 'drtasks'; from drtasks.cli import main; main()", *args]

    def run_child(self, command: list[str], *, extra_env: dict[str, str] | None = None, cwd: Path | None = None) -> tuple[Run, str]:
        """Run ``command`` to completion: (wall time and peak RSS of its process tree, stdout)."""
        assert self.spawner is not None and self.spawner.stdin is not None and self.spawner.stdout is not None
        logs = self.root / "logs"
        logs.mkdir(exist_ok=True)
        out_path, err_path = logs / "stdout", logs / "stderr"
        request = {
            "argv": command,
            "env": {**self.env, **(extra_env or {})},
            "cwd": str(cwd or self.root),
            "stdout": str(out_path),
            "stderr": str(err_path),
        }
        self.spawner.stdin.write(json.dumps(request) + "\n")
        self.spawner.stdin.flush()
        line = self.spawner.stdout.readline()
        if not line:
            raise BenchError("the spawner process ended unexpectedly")
        answer = json.loads(line)
        if "error" in answer:
            raise BenchError(f"cannot run {command[0]}: {answer['error']}")
        stdout = out_path.read_text(encoding="utf-8", errors="replace")
        if answer["exit_code"] != 0:
            tail = "\n".join(err_path.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-15:])
            raise BenchError(f"{' '.join(command[:4])}... exited with {answer['exit_code']}:\n{tail}")
        return Run(answer["wall"], answer["maxrss_kib"] / 1024), stdout

    def dry_run_plan(self, case: str) -> dict[str, Any]:
        _, stdout = self.run_child(self.drtasks_command("upload", "--dry-run", "--json"), extra_env={"DR_DIR": str(self.dr_dir(case))}, cwd=self.dr_dir(case))
        try:
            document = json.loads(stdout)
            # `upload --json` prints the chain; its one step is the upload's plan.
            return document["steps"][0] if "steps" in document else document
        except ValueError as error:
            raise BenchError(f"upload --dry-run --json did not print JSON ({error}):\n{stdout[:500]}") from None

    def run_case(self, case: str) -> Run:
        if case in DRTASKS_CASES:
            command = self.drtasks_command("upload", "-f", "-w")
            return self.run_child(command, extra_env={"DR_DIR": str(self.dr_dir(case))}, cwd=self.dr_dir(case))[0]
        if case == "d":
            assert self.plan_file is not None
            command = [
                sys.executable, str(BENCH_DIR / "floor_copy.py"), "--plan", str(self.plan_file),
                "--profile", PROFILE_A, "--endpoint-url", self.servers["a"].endpoint_url, "--prefix", PREFIXES["d"],
            ]
            return self.run_child(command)[0]
        work = self.root / "drfc-work"
        shutil.rmtree(work, ignore_errors=True)
        endpoint = self.servers["a"].endpoint_url
        settings = {
            "SRC_PROFILE": PROFILE_A, "SRC_ENDPOINT": endpoint, "SRC_BUCKET": SOURCE_BUCKET, "SRC_PREFIX": MODEL_PREFIX,
            "CKPT": self.checkpoint, "CKPT_NUM": str(self.checkpoint_number), "REWARD_KEY": self.reward_key,
            "DST_PROFILE": PROFILE_A, "DST_ENDPOINT": endpoint, "DST_BUCKET": RACE_BUCKET, "DST_PREFIX": PREFIXES["e"],
            "WORK_DIR": str(work),
        }
        try:
            return self.run_child(["bash", str(BENCH_DIR / "drfc_upload.sh")], extra_env=settings)[0]
        finally:
            shutil.rmtree(work, ignore_errors=True)

    # -- target state ---------------------------------------------------------------------
    def target_server(self, case: str) -> str:
        return "b" if case == "b" else "a"

    def target_objects(self, case: str) -> dict[str, int]:
        client, prefix = self.client(self.target_server(case)), PREFIXES[case] + "/"
        found: dict[str, int] = {}
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=RACE_BUCKET, Prefix=prefix):
            found.update({item["Key"][len(prefix):]: int(item["Size"]) for item in page.get("Contents", [])})
        return found

    def wipe(self, case: str) -> None:
        """Empty the case's target prefix so the next run really copies everything."""
        client, prefix = self.client(self.target_server(case)), PREFIXES[case] + "/"
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=RACE_BUCKET, Prefix=prefix):
            keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
            if keys:
                client.delete_objects(Bucket=RACE_BUCKET, Delete={"Objects": keys, "Quiet": True})
        if self.target_objects(case):
            raise BenchError(f"could not empty s3://{RACE_BUCKET}/{PREFIXES[case]}")

    def check_written(self, case: str, expected: dict[str, int | None]) -> None:
        """Every case must leave the same keys (and the same sizes for copied objects)."""
        found = self.target_objects(case)
        if set(found) != set(expected):
            missing, extra = sorted(set(expected) - set(found)), sorted(set(found) - set(expected))
            raise BenchError(f"case {case} wrote a different layout; missing {missing[:5]}, extra {extra[:5]}")
        wrong = [key for key, size in expected.items() if size is not None and found[key] != size]
        if wrong:
            raise BenchError(f"case {case} wrote wrong sizes for {wrong[:5]}")


def expected_layout(plan: dict[str, Any]) -> dict[str, int | None]:
    """Relative key -> size for copied objects (None for generated ones, whose content may differ)."""
    prefix = plan["target"].removeprefix("s3://").partition("/")[2]
    return {
        item["key"][len(prefix) + 1:]: (item["source_size"] if str(item["source"]).startswith("s3://") else None)
        for item in plan["items"]
        if item["action"] != "delete"
    }


def checkpoint_of(plan: dict[str, Any]) -> tuple[str, int, str]:
    """(checkpoint name, number, reward source key) as the plan names them."""
    name = number = reward = None
    for item in plan["items"]:
        key, source = item["key"], str(item["source"])
        if key.endswith(".data-00000-of-00001"):
            name = key.rsplit("/", 1)[1].removesuffix(".data-00000-of-00001")
        elif key.rsplit("/", 1)[-1].startswith("model_") and key.endswith(".pb"):
            number = int(key.rsplit("/", 1)[1].removeprefix("model_").removesuffix(".pb"))
        elif key.endswith("/reward_function.py"):
            reward = source.removeprefix("s3://").partition("/")[2]
    if name is None or number is None or reward is None:
        raise BenchError("the dry-run plan names no checkpoint data, frozen graph or reward function")
    return name, number, reward


def check_zero_bytes(plan: dict[str, Any], when: str) -> dict[str, int]:
    summary = plan["summary"]
    if summary["bytes_to_move"] != 0 or summary["bytes_copied_server_side"] != 0:
        raise BenchError(f"re-upload ({when}) would move bytes: {summary}")
    return summary


# -- report ------------------------------------------------------------------------------
def fmt_ratio(value: float) -> str:
    return f"{value:.2f}x"


def report(results: dict[str, list[Run]], zero_summary: dict[str, int], sizes: Sizes) -> None:
    rounds = len(results["a"])
    print()
    print(f"Model: 4 checkpoints, data {sizes.data / MIB:g} MiB, pb {sizes.pb / MIB:g} MiB, meta {sizes.meta / MIB:g} MiB; {rounds} rounds")
    print()
    header = f"{'case':<4} {'what':<34} {'median s':>9} {'min s':>8} {'max s':>8} {'RSS MB (median)':>16} {'RSS MB (max)':>13}"
    print(header)
    print("-" * len(header))
    for case in CASES:
        walls = [run.wall for run in results[case]]
        rss = [run.peak_rss_mb for run in results[case]]
        print(
            f"{case:<4} {TITLES[case]:<34} {statistics.median(walls):>9.2f} {min(walls):>8.2f} {max(walls):>8.2f}"
            f" {statistics.median(rss):>16.0f} {max(rss):>13.0f}"
        )

    def ratio(top: str, bottom: str) -> float:
        return statistics.median(t.wall / b.wall for t, b in zip(results[top], results[bottom]))

    ratios = {"a/d": ratio("a", "d"), "e/a": ratio("e", "a"), "b/d": ratio("b", "d"), "c/a": ratio("c", "a")}
    print()
    print("Ratios (median of per-round ratios): " + "  ".join(f"{name} = {fmt_ratio(value)}" for name, value in ratios.items()))

    drtasks_peak = max(run.peak_rss_mb for case in DRTASKS_CASES for run in results[case])
    drtasks_median = max(statistics.median(run.peak_rss_mb for run in results[case]) for case in DRTASKS_CASES)
    targets = [
        ("(a) within 1.3x of the floor (d)", ratios["a/d"] <= 1.3, f"a/d = {fmt_ratio(ratios['a/d'])}"),
        ("(a) at least 8x faster than DRfC (e)", ratios["e/a"] >= 8, f"e/a = {fmt_ratio(ratios['e/a'])}"),
        (
            "(c) re-upload moves zero object bytes",
            True,  # checked before and after the rounds; a failure stops the bench
            f"bytes_to_move = {zero_summary['bytes_to_move']}, bytes_copied_server_side = {zero_summary['bytes_copied_server_side']}",
        ),
        ("peak RSS of drtasks runs under 150 MB", drtasks_peak < 150, f"max {drtasks_peak:.0f} MB (worst case median {drtasks_median:.0f} MB)"),
    ]
    print()
    print("Targets:")
    for name, holds, detail in targets:
        print(f"  [{'OK  ' if holds else 'MISS'}] {name:<40} {detail}")


# -- main ----------------------------------------------------------------------------------
def check_aws_cli(env: dict[str, str]) -> str:
    try:
        answer = subprocess.run(["aws", "--version"], capture_output=True, text=True, env=env, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise BenchError(f"the AWS CLI does not run ({error}); install it with 'pip install awscli'") from None
    if answer.returncode != 0:
        raise BenchError(f"'aws --version' failed: {answer.stderr.strip()[:300]}")
    return (answer.stdout or answer.stderr).strip()


def measure(bench: Bench, rounds: int, say: Callable[[str], None]) -> tuple[dict[str, list[Run]], dict[str, int]]:
    plan = bench.dry_run_plan("a")
    if plan["summary"]["add"] != plan["summary"]["objects"] or plan["transfer"] != "server-side copy":
        raise BenchError(f"unexpected plan for the empty same-endpoint target: {plan['summary']}, {plan['transfer']}")
    bench.plan_file = bench.root / "plan.json"
    bench.plan_file.write_text(json.dumps(plan), encoding="utf-8")
    bench.checkpoint, bench.checkpoint_number, bench.reward_key = checkpoint_of(plan)
    layout = expected_layout(plan)
    say(f"plan: {plan['summary']['objects']} objects, {plan['summary']['bytes_copied_server_side'] / MIB:.1f} MiB copied server-side, checkpoint {bench.checkpoint}")

    # The re-upload target holds the model before any timing; its dry run must plan no bytes.
    bench.run_case("c")
    zero_summary = check_zero_bytes(bench.dry_run_plan("c"), "before the rounds")

    results: dict[str, list[Run]] = {case: [] for case in CASES}
    for number in range(rounds + 1):  # round 0 warms caches and is not counted
        # Each round starts with the next case, so no case always follows the same neighbour.
        order = CASES[number % len(CASES):] + CASES[: number % len(CASES)]
        line = []
        for case in order:
            if case != "c":
                bench.wipe(case)
            run = bench.run_case(case)
            bench.check_written(case, layout)
            if number:
                results[case].append(run)
            line.append(f"{case} {run.wall:.2f}s")
        say(f"{'warm-up' if number == 0 else f'round {number}'}: " + ", ".join(line))

    zero_summary = check_zero_bytes(bench.dry_run_plan("c"), "after the rounds")
    return results, zero_summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Measure `inv upload` against a bare boto3 floor and DRfC's approach.")
    parser.add_argument("--rounds", type=int, help="measured rounds (default 5; 2 with --quick)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: small model, 2 rounds")
    args = parser.parse_args(argv)
    rounds = args.rounds if args.rounds is not None else (2 if args.quick else 5)
    if rounds < 1:
        parser.error("--rounds must be at least 1")
    sizes = QUICK if args.quick else FULL

    began = time.perf_counter()

    def say(text: str) -> None:
        print(f"[{time.perf_counter() - began:6.1f}s] {text}", file=sys.stderr, flush=True)

    # SIGTERM ends the bench like Ctrl-C does, so the clean-up below always runs.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    root = Path(tempfile.mkdtemp(prefix="drtasks-bench-"))
    bench = Bench(root, sizes)
    try:
        say(check_aws_cli(bench._child_env()))
        bench.start_spawner()
        say("starting two SeaweedFS servers and seeding the model...")
        bench.start()
        results, zero_summary = measure(bench, rounds, say)
        report(results, zero_summary, sizes)
        say("stopping the servers...")
        return 0
    except (BenchError, DrtasksError) as error:
        say(f"upload_bench: {error}")
        return 1
    except KeyboardInterrupt:
        say("upload_bench: interrupted")
        return 130
    finally:
        bench.close()


if __name__ == "__main__":
    sys.exit(main())
