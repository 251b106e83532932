"""Measure `inv car-push` against the least a script must do to put a model on a car.

Everything runs in this process tree: a SeaweedFS server holding a trained model whose frozen
graph is 23 MiB, and a fake car (tests/fakes/car_server.py: HTTPS, Flask-WTF CSRF, the car's
model loader) serving from a thread of this process. Each case is a child process, timed from
outside with its peak RSS read from wait4():

  a  drtasks car-push --from s3: build the archive from S3, check it, push, read back the car's list
  b  drtasks car-push --archive: push the archive a built, check it, read back
  c  the floor for b: bench/floor_car_push.py, bare requests: login page, login, upload
  d  the floor for a: the same, after fetching the graph and metadata with boto3 and packing them

    python bench/car_push_bench.py [--rounds N] [--quick]

Before every run the car is reset to its sample model (not timed), so every run installs the
model afresh; after every run the car must hold exactly the seeded graph. Verifying the graph
with OpenVINO (`inv car-zip --verify`) is not part of these runs.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
sys.path.insert(0, str(REPO))  # this checkout's drtasks and its test fakes

from drtasks.car.pins import show_fingerprint  # noqa: E402
from drtasks.errors import DrtasksError  # noqa: E402
from drtasks.locals3 import S3Server, ensure_bucket  # noqa: E402
from drtasks.sample_model import KIB, MIB, seed_model  # noqa: E402
from tests.fakes.car_server import FakeCar  # noqa: E402

from children import child_env, write_aws_files  # noqa: E402  (this folder's)

PROFILE = "bench-car"
BUCKET, MODEL_PREFIX, NAME = "training", "rl-deepracer-sagemaker", "bench-model"
PASSWORD_ENV, PASSWORD = "DR_CAR_PASSWORD", "bench-car-password"
CASES = ("a", "b", "c", "d", "e")
TITLES = {
    "a": "drtasks car-push --from s3 (build+push)",
    "e": "drtasks car-push --from s3 --verify",
    "b": "drtasks car-push --archive (push)",
    "c": "floor: requests login+upload",
    "d": "floor: boto3 get + tar.gz + upload",
}


class BenchError(Exception):
    pass


@dataclass(frozen=True)
class Run:
    wall: float
    peak_rss_mb: float


class Bench:
    def __init__(self, root: Path, pb_size: int) -> None:
        self.root = root
        self.pb_size = pb_size
        self.server = S3Server()
        self.car: FakeCar | None = None
        self.spawner: subprocess.Popen[str] | None = None
        self.env: dict[str, str] = {}
        self.pb_key = ""
        self.pb_sha256 = ""
        self.archive = root / f"{NAME}.tar.gz"

    # -- setup ----------------------------------------------------------------------------
    def start(self) -> None:
        self.server.start(self.root / "s3")
        aws = self.root / "aws"
        write_aws_files(aws, [(PROFILE, self.server)])
        client = self.server.client()
        ensure_bucket(client, BUCKET)
        model = seed_model(client, BUCKET, MODEL_PREFIX, checkpoints=(1, 2), data_size=64 * KIB, pb_size=self.pb_size, meta_size=16 * KIB, simtrace_iterations=1)
        self.pb_key = model.last_checkpoint.pb_key
        self.pb_sha256 = model.last_checkpoint.pb_sha256
        self.car = FakeCar(self.root / "car", PASSWORD).start()
        self.car.reset()
        known = self.root / "known_cars"
        known.write_text(f"{self.car.url} {show_fingerprint(self.car.fingerprint)}\n")
        known.chmod(0o600)
        dr_dir = self.root / "dr"
        dr_dir.mkdir()
        (dr_dir / "system.env").write_text(
            f"DR_CLOUD=local\nDR_LOCAL_S3_ENDPOINT_URL={self.server.endpoint_url}\nDR_LOCAL_S3_PROFILE={PROFILE}\nDR_LOCAL_S3_BUCKET={BUCKET}\n"
        )
        (dr_dir / "run.env").write_text(f"DR_LOCAL_S3_MODEL_PREFIX={MODEL_PREFIX}\nDR_UPLOAD_S3_PREFIX={NAME}\n")
        self.env = child_env(aws, self.root / "cache", DRTASKS_KNOWN_CARS=str(known), DR_DIR=str(dr_dir))
        self.env[PASSWORD_ENV] = PASSWORD
        self.spawner = subprocess.Popen([sys.executable, str(BENCH_DIR / "spawner.py")], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def stop(self) -> None:
        if self.spawner is not None:
            try:
                if self.spawner.stdin:
                    self.spawner.stdin.close()
                self.spawner.wait(10)
            except (OSError, subprocess.TimeoutExpired):
                self.spawner.kill()
        if self.car is not None:
            self.car.stop()
        self.server.stop()

    # -- children -------------------------------------------------------------------------
    def run_child(self, argv: list[str]) -> Run:
        assert self.spawner is not None and self.spawner.stdin is not None and self.spawner.stdout is not None
        out, err = self.root / "stdout", self.root / "stderr"
        request = {"argv": argv, "env": self.env, "cwd": self.env["DR_DIR"], "stdout": str(out), "stderr": str(err)}
        self.spawner.stdin.write(json.dumps(request) + "\n")
        self.spawner.stdin.flush()
        answer = json.loads(self.spawner.stdout.readline() or '{"error": "the spawner ended"}')
        if "error" in answer:
            raise BenchError(answer["error"])
        if answer["exit_code"] != 0:
            raise BenchError(f"{' '.join(argv[:4])}... exited with {answer['exit_code']}:\n{err.read_text()[-1500:]}")
        return Run(answer["wall"], answer["maxrss_kib"] / 1024)

    def command(self, case: str) -> list[str]:
        assert self.car is not None
        drtasks = [sys.executable, "-c", "import sys; sys.argv[0] = 'drtasks'; from drtasks.cli import main; main()"]
        floor = [sys.executable, str(BENCH_DIR / "floor_car_push.py"), "--url", self.car.url, "--password-env", PASSWORD_ENV]
        if case == "a":
            return [*drtasks, "car-push", "--car", self.car.url, "--from", "s3", "-f"]
        if case == "e":  # build, convert and run as the car does (OpenVINO), push
            return [*drtasks, "car-push", "--car", self.car.url, "--from", "s3", "--verify", "-f"]
        if case == "b":
            return [*drtasks, "car-push", "--car", self.car.url, "--archive", str(self.archive), "-f"]
        if case == "c":
            return [*floor, "--archive", str(self.archive)]
        return [
            *floor, "--from-s3", "--endpoint-url", self.server.endpoint_url, "--profile", PROFILE,
            "--bucket", BUCKET, "--prefix", MODEL_PREFIX, "--pb", self.pb_key, "--name", NAME,
        ]

    def run_case(self, case: str) -> Run:
        assert self.car is not None
        self.car.reset()
        run = self.run_child(self.command(case))
        installed = self.car.installed(NAME)
        if hashlib.sha256(installed.get("model.pb", b"")).hexdigest() != self.pb_sha256 or "model_metadata.json" not in installed:
            raise BenchError(f"case {case}: the car does not hold the seeded graph afterwards ({sorted(installed)})")
        return run

    def build_archive(self) -> None:
        """Case b pushes exactly what case a builds: drtasks builds it once, untimed."""
        from drtasks.carzip import flow
        from drtasks.config.settings import resolve

        os.environ.update({k: v for k, v in self.env.items() if k.startswith(("AWS_", "DR_DIR", "XDG_"))})
        built = flow.build(flow.gather(resolve(None), "s3", None))
        try:
            self.archive.write_bytes(built.read_bytes())
        finally:
            built.close()


def measure(bench: Bench, rounds: int, say: Callable[[str], None]) -> dict[str, list[Run]]:
    bench.build_archive()
    say(f"archive: {bench.archive.stat().st_size / MIB:.1f} MiB")
    results: dict[str, list[Run]] = {case: [] for case in CASES}
    for number in range(rounds + 1):  # round 0 warms caches and is not counted
        order = CASES[number % len(CASES):] + CASES[: number % len(CASES)]
        line = []
        for case in order:
            run = bench.run_case(case)
            if number:
                results[case].append(run)
            line.append(f"{case} {run.wall:.2f}s")
        say(f"{'warm-up' if number == 0 else f'round {number}'}: " + ", ".join(line))
    return results


def report(results: dict[str, list[Run]], pb_size: int) -> None:
    rounds = len(results["a"])
    print(f"\nFrozen graph {pb_size / MIB:g} MiB; fake car on loopback (HTTPS, CSRF, unpack + install); {rounds} rounds\n")
    header = f"{'case':<4} {'what':<42} {'median s':>9} {'min s':>7} {'max s':>7} {'RSS MB':>7}"
    print(header)
    print("-" * len(header))
    for case in CASES:
        walls = [run.wall for run in results[case]]
        rss = statistics.median(run.peak_rss_mb for run in results[case])
        print(f"{case:<4} {TITLES[case]:<42} {statistics.median(walls):>9.2f} {min(walls):>7.2f} {max(walls):>7.2f} {rss:>7.0f}")

    def ratio(top: str, bottom: str) -> float:
        return statistics.median(t.wall / b.wall for t, b in zip(results[top], results[bottom]))

    print(f"\nRatios (median of per-round ratios): a/d = {ratio('a', 'd'):.2f}x (build+push)  b/c = {ratio('b', 'c'):.2f}x (push)  e/a = {ratio('e', 'a'):.2f}x (what --verify adds)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Measure `inv car-push` against a bare requests floor.")
    parser.add_argument("--rounds", type=int, help="measured rounds (default 5; 2 with --quick)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: a 2 MiB graph, 2 rounds")
    args = parser.parse_args(argv)
    rounds = args.rounds if args.rounds is not None else (2 if args.quick else 5)
    if rounds < 1:
        parser.error("--rounds must be at least 1")
    pb_size = 2 * MIB if args.quick else 23 * MIB
    began = time.perf_counter()

    def say(text: str) -> None:
        print(f"[{time.perf_counter() - began:6.1f}s] {text}", file=sys.stderr, flush=True)

    signal.signal(signal.SIGTERM, signal.default_int_handler)
    root = Path(tempfile.mkdtemp(prefix="drtasks-car-bench-"))
    bench = Bench(root, pb_size)
    try:
        say("starting SeaweedFS and the fake car, seeding the model...")
        bench.start()
        report(measure(bench, rounds, say), pb_size)
        return 0
    except (BenchError, DrtasksError) as error:
        say(f"car_push_bench: {error}")
        return 1
    except KeyboardInterrupt:
        say("car_push_bench: interrupted")
        return 130
    finally:
        bench.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
