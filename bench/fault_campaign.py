"""A fault campaign against drtasks' safe writes, on two real S3 servers, with a number for each promise.

Everything runs in this process tree on loopback and is removed at the end (also on Ctrl-C): two
SeaweedFS servers, a fault-injecting proxy in front of each (``tests/fault_proxy.py``), a
temporary AWS credentials file, a trained model seeded with ``drtasks.sample_model.seed_model``
(four checkpoints, data files written in parts so their ETags are not plain MD5s, real policy
graphs). drtasks runs as a child process, exactly as a user runs it, except for most wipe cases,
which call the same task functions in this process because they are many.

Phases (``--only`` picks some):

  kills    ``drtasks upload -f`` (same endpoint and across endpoints; a first upload, and checkpoint B
           over checkpoint A) slowed down by proxy delays, killed with SIGKILL or SIGINT at a
           random moment
  faults   proxy faults on the source side (corrupt, short, 500, reset, delayed reads, corrupt
           listings) and the target side (failing or reset PUT, UploadPart, Complete, Create,
           DeleteObjects, corrupt listings), two writers at once, and ``car-zip`` from a
           corrupting source
  wipe     the wipe property (``tests/wipe_property.py``): random layouts and hostile prefixes, the
           real ``upload -w`` / ``increment -w``
  bad      every case of the bad-input catalogue (``tests/test_bad_input.py``'s ``BAD_INPUTS``)

After every faulted run: (a) a target whose three completion markers are present holds every
object of the checkpoint they name with exactly the source's bytes (SHA-256); an exit code of 0
means exactly that for the checkpoint asked for; (b) nothing outside the target prefix changed and
the source is unchanged; (c) a re-run without faults succeeds, leaves an exact, complete upload, no
unfinished multipart upload and no lease. No output may hold a secret key; a failure is one line,
never a traceback.

    python bench/fault_campaign.py [--quick] [--seed N] [--json FILE] [--only kills,faults,wipe,bad]

Exit code: 0 when every trial survived, 1 when one did not (see the table), 2 when the campaign
itself could not run (a server would not start).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
sys.path.insert(0, str(REPO))  # this checkout's drtasks and its tests' helpers

from drtasks.locals3 import S3Server, ensure_bucket  # noqa: E402
from drtasks.sample_model import KIB, MIB, SeededModel, seed_model  # noqa: E402
from tests.fault_proxy import FaultProxy, Request, Rule, op  # noqa: E402

from children import AWS_ENV_REMOVED, child_env, stop_servers, write_aws_files  # noqa: E402  (this folder's)

PROFILE_A, PROFILE_B, PROFILE_ALIAS = "campaign-a", "campaign-b", "campaign-a-alias"
SOURCE_BUCKET, RACE_BUCKET = "training", "race"
MODEL_PREFIX = "rl-deepracer-sagemaker"
MARKERS = ("model/deepracer_checkpoints.json", "model/.coach_checkpoint", "model_metadata.json")
LEASE = ".drtasks-lease.json"
CHILD_TIMEOUT = 180.0  # seconds; a child still running then is killed and the trial counts as hung
PHASES = ("kills", "faults", "wipe", "bad")


class CampaignError(Exception):
    """The campaign itself cannot go on (a server, a seed, a reference upload): exit code 2."""


@dataclass(frozen=True)
class Sizes:
    data: int
    pb: int
    meta: int


@dataclass(frozen=True)
class Counts:
    kills: int
    faults: int
    wipe: int
    bad: int | None  # catalogue cases; None: the whole catalogue
    fuzz: int  # random bad inputs besides the catalogue


# Data files above the 8 MiB part size: streamed in parts (and resumable); seeded in 8 MiB parts.
FULL = (Sizes(data=20 * MIB, pb=3 * MIB, meta=512 * KIB), Counts(kills=40, faults=72, wipe=240, bad=None, fuzz=120))
QUICK = (Sizes(data=9 * MIB, pb=1 * MIB, meta=128 * KIB), Counts(kills=4, faults=8, wipe=24, bad=8, fuzz=8))


# ---------------------------------------------------------------------------- records


@dataclass
class Trial:
    phase: str
    number: int
    what: str
    outcome: str = ""  # one line: how the faulted run ended
    survived: bool = True
    data_lost: list[str] = field(default_factory=list)  # false success, loss outside, changed source, markers over wrong data
    problems: list[str] = field(default_factory=list)  # not data loss: no repair, traceback, not one line, hung
    seconds: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)

    def fail(self, text: str, lost: bool = False) -> None:
        (self.data_lost if lost else self.problems).append(text)
        self.survived = False


@dataclass
class Child:
    code: int | None  # None: still running when killed by us (the signal is in ``signalled``)
    out: str
    err: str
    seconds: float
    signalled: str = ""
    hung: bool = False

    @property
    def text(self) -> str:
        return self.out + self.err


# ---------------------------------------------------------------------------- the campaign


@dataclass
class TargetState:
    objects: dict[str, tuple[int, str]]  # relative key -> (size, ETag)
    sha: dict[str, str]  # relative key -> SHA-256 of what was read
    content: dict[str, bytes]  # the completion markers and generated files, as read


class Campaign:
    def __init__(self, root: Path, sizes: Sizes, seed: int, say: Callable[[str], None]) -> None:
        self.root = root
        self.sizes = sizes
        self.seed = seed
        self.rng = random.Random(seed)
        self.say = say
        self.servers: dict[str, S3Server] = {}
        self.proxies: dict[str, FaultProxy] = {}
        self.env: dict[str, str] = {}
        self.model: SeededModel | None = None
        self.entries: dict[str, dict[str, Any]] = {}  # checkpoint name -> its entry in the source index
        self.metrics: list[str] = []  # metrics files, relative to the model's metrics folder
        self.children: set[subprocess.Popen[str]] = set()
        self.durations: dict[str, float] = {}  # mode -> seconds a slowed-down upload takes
        self.first_writes: dict[str, float] = {}  # mode -> seconds until its first write to the target
        self._clients: dict[str, Any] = {}

    # -- setup and teardown ---------------------------------------------------------------
    def start(self) -> None:
        for name in ("a", "b"):
            self.servers[name] = S3Server().start(self.root / f"s3-{name}")
        self._write_aws_files()
        self.env = self._child_env()
        # In-process runs (most wipe cases) and tests.cli's children read the same files.
        for name in AWS_ENV_REMOVED:
            os.environ.pop(name, None)
        os.environ.update({k: v for k, v in self.env.items() if k.startswith(("AWS_", "DRTASKS_", "XDG_"))})
        for seed_index, name in enumerate(("a", "b")):
            self.proxies[name] = FaultProxy(self.servers[name].endpoint_url, seed=self.seed * 7 + seed_index).start()
        ensure_bucket(self.client("a"), SOURCE_BUCKET)
        ensure_bucket(self.client("a"), RACE_BUCKET)
        ensure_bucket(self.client("b"), RACE_BUCKET)
        self.model = seed_model(
            self.client("a"), SOURCE_BUCKET, MODEL_PREFIX,
            data_size=self.sizes.data, pb_size=self.sizes.pb, meta_size=self.sizes.meta,
            multipart_threshold=8 * MIB, seed=self.seed,
        )
        index = json.loads(self.get("a", SOURCE_BUCKET, self.model.key("model/deepracer_checkpoints.json")))
        for which in ("best_checkpoint", "last_checkpoint"):
            self.entries[index[which]["name"]] = index[which]
        folder = self.model.key("metrics/")
        self.metrics = sorted(k[len(folder):] for k in self.model.objects if k.startswith(folder))
        for server in ("a", "b"):
            for key in ("stray-at-the-root.txt", "another-model/model/model_1.pb"):
                self.client(server).put_object(Bucket=RACE_BUCKET, Key=key, Body=f"stray {key}".encode())
        self.client("a").put_object(Bucket=SOURCE_BUCKET, Key="stray-at-the-root.txt", Body=b"a stray beside the model")

    def stop(self) -> None:
        for child in list(self.children):
            if child.poll() is None:
                child.kill()
                child.wait()
        for proxy in self.proxies.values():
            proxy.stop()
        stop_servers(self.servers.values())

    def _write_aws_files(self) -> None:
        a, b = self.servers["a"], self.servers["b"]
        write_aws_files(self.root / "aws", ((PROFILE_A, a), (PROFILE_B, b), (PROFILE_ALIAS, a)))

    def _child_env(self) -> dict[str, str]:
        return child_env(self.root / "aws", self.root / "cache" / "shared")

    def client(self, server: str) -> Any:
        if server not in self._clients:
            from drtasks.s3 import disable_expect_continue

            self._clients[server] = disable_expect_continue(self.servers[server].client())
        return self._clients[server]

    def get(self, server: str, bucket: str, key: str) -> bytes:
        return self.client(server).get_object(Bucket=bucket, Key=key)["Body"].read()

    @property
    def secrets(self) -> list[str]:
        return [server.secret_key for server in self.servers.values()]

    # -- running drtasks --------------------------------------------------------------------
    def dr_dir(self, name: str, mode: str, prefix: str) -> Path:
        """Source read through proxy a; target written through proxy a (same endpoint) or b (across)."""
        directory = self.root / "dr" / name
        directory.mkdir(parents=True)
        target_proxy, target_profile = (self.proxies["a"], PROFILE_A) if mode == "same" else (self.proxies["b"], PROFILE_B)
        (directory / "system.env").write_text(
            "DR_CLOUD=local\n"
            f"DR_LOCAL_S3_ENDPOINT_URL={self.proxies['a'].endpoint_url}\nDR_LOCAL_S3_PROFILE={PROFILE_A}\nDR_LOCAL_S3_BUCKET={SOURCE_BUCKET}\n"
            f"DR_UPLOAD_S3_ENDPOINT_URL={target_proxy.endpoint_url}\nDR_UPLOAD_S3_PROFILE={target_profile}\nDR_UPLOAD_S3_BUCKET={RACE_BUCKET}\n"
        )
        (directory / "run.env").write_text(
            f"DR_LOCAL_S3_MODEL_PREFIX={MODEL_PREFIX}\nDR_UPLOAD_S3_PREFIX={prefix}\n"
            "DR_WORLD_NAME=2022_april_open\nDR_CAR_NAME=Speedy\nDR_RACE_TYPE=TIME_TRIAL\n"
        )
        return directory

    def spawn(self, args: list[str], dr_dir: Path, cache: str, log: str) -> tuple[subprocess.Popen[str], Path, Path]:
        logs = self.root / "logs"
        logs.mkdir(exist_ok=True)
        out_path, err_path = logs / f"{log}.out", logs / f"{log}.err"
        env = {**self.env, "DR_DIR": str(dr_dir), "XDG_CACHE_HOME": str(self.root / "cache" / cache)}
        # Ctrl-C as at a terminal, even when this campaign was started where SIGINT is ignored (nohup, &).
        code = "import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); sys.argv[0] = 'drtasks'; from drtasks.cli import main; main()"
        with open(out_path, "w") as out, open(err_path, "w") as err:
            child = subprocess.Popen([sys.executable, "-c", code, *args], stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env, cwd=dr_dir, text=True)
        self.children.add(child)
        return child, out_path, err_path

    def finish(self, child: subprocess.Popen[str], out_path: Path, err_path: Path, started: float, timeout: float = CHILD_TIMEOUT, signalled: str = "") -> Child:
        hung = False
        try:
            child.wait(timeout=max(1.0, timeout - (time.monotonic() - started)))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
            hung = True
        self.children.discard(child)
        return Child(
            None if hung else child.returncode,
            out_path.read_text(errors="replace"), err_path.read_text(errors="replace"),
            time.monotonic() - started, signalled, hung,
        )

    def drtasks(self, args: list[str], dr_dir: Path, cache: str, log: str) -> Child:
        started = time.monotonic()
        child, out_path, err_path = self.spawn(args, dr_dir, cache, log)
        return self.finish(child, out_path, err_path, started)

    # -- what a target holds, what is outside it --------------------------------------------
    def expected(self, name: str) -> dict[str, str | None]:
        """Relative key -> SHA-256 of the source object it copies (None: generated by drtasks)."""
        assert self.model is not None
        model, number = self.model, int(name.split("_", 1)[0])
        sha = model.sha256
        found: dict[str, str | None] = {f"model/{name}.{s}": sha[model.key(f"model/{name}.{s}")] for s in ("data-00000-of-00001", "index", "meta")}
        found[f"model/model_{number}.pb"] = sha[model.key(f"model/model_{number}.pb")]
        found["model/model_metadata.json"] = found["model_metadata.json"] = sha[model.key("model/model_metadata.json")]
        found["ip/hyperparameters.json"] = sha[model.key("ip/hyperparameters.json")]
        found["reward_function.py"] = sha[model.reward_key]
        found.update({f"metrics/{m}": sha[model.key(f"metrics/{m}")] for m in self.metrics})
        found.update({"training_params.yaml": None, "model/deepracer_checkpoints.json": None, "model/.coach_checkpoint": None})
        return found

    def listing(self, server: str, bucket: str, prefix: str = "") -> dict[str, tuple[int, str, float]]:
        found = {}
        for page in self.client(server).get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                found[item["Key"]] = (int(item["Size"]), item["ETag"].strip('"'), item["LastModified"].timestamp())
        return found

    def read_target(self, server: str, prefix: str) -> TargetState:
        listed = self.listing(server, RACE_BUCKET, prefix + "/")
        objects = {k[len(prefix) + 1:]: (size, etag) for k, (size, etag, _) in listed.items()}
        state = TargetState(objects, {}, {})
        for key in (*MARKERS, "training_params.yaml"):
            if key in objects:
                state.content[key] = self.get(server, RACE_BUCKET, f"{prefix}/{key}")
        named = state.content.get("model/.coach_checkpoint", b"").decode(errors="replace").strip()
        wanted = self.expected(named) if named in self.entries else {}
        for key in wanted:
            if key in objects:
                state.sha[key] = hashlib.sha256(self.get(server, RACE_BUCKET, f"{prefix}/{key}")).hexdigest()
        return state

    def judge(self, state: TargetState, want: str | None = None) -> tuple[bool, list[str]]:
        """(looks complete, what is wrong with it). ``want``: the checkpoint it must name."""
        if not all(marker in state.objects for marker in MARKERS):
            return False, ([f"incomplete ({', '.join(m for m in MARKERS if m not in state.objects)} missing)"] if want else [])
        named = state.content["model/.coach_checkpoint"].decode(errors="replace").strip()
        problems: list[str] = []
        if named not in self.entries:
            return True, [f"the markers name {named!r}, not a checkpoint of the model"]
        if want and named != want:
            problems.append(f"the markers name {named}, not {want}")
        for key, sha in self.expected(named).items():
            if key not in state.objects:
                problems.append(f"{key} missing under complete-looking markers")
            elif sha is not None and state.sha.get(key) != sha:
                problems.append(f"{key} holds other bytes than the source")
        try:
            index = json.loads(state.content["model/deepracer_checkpoints.json"])
        except ValueError:
            index = None
        entry = self.entries[named]
        if index != {"best_checkpoint": entry, "last_checkpoint": entry}:
            problems.append(f"model/deepracer_checkpoints.json is not the source's entry for {named}: {state.content['model/deepracer_checkpoints.json'][:160]!r}")
        if state.content["model/.coach_checkpoint"] != f"{named}\n".encode():
            problems.append("model/.coach_checkpoint is not the checkpoint's name and a newline")
        return True, problems

    def outside(self, server: str, prefix: str) -> dict[tuple[str, str, str], tuple[int, str, float]]:
        """Every object of every bucket except those under ``server``'s race/<prefix>/."""
        found = {}
        for where, bucket in (("a", SOURCE_BUCKET), ("a", RACE_BUCKET), ("b", RACE_BUCKET)):
            for key, value in self.listing(where, bucket).items():
                if not (where == server and bucket == RACE_BUCKET and key.startswith(prefix + "/")):
                    found[(where, bucket, key)] = value
        return found

    def compare_outside(self, trial: Trial, before: dict[tuple[str, str, str], Any], server: str, prefix: str) -> None:
        after = self.outside(server, prefix)
        for where, state in before.items():
            if after.get(where) != state:
                trial.fail(f"outside the target, {'deleted' if where not in after else 'rewritten'}: s3://{where[1]}/{where[2]} on {where[0]}", lost=True)
        for where in sorted(set(after) - set(before)):
            trial.fail(f"written outside the target: s3://{where[1]}/{where[2]} on {where[0]}", lost=True)

    def pending(self, server: str, prefix: str) -> list[str]:
        uploads = self.client(server).list_multipart_uploads(Bucket=RACE_BUCKET, Prefix=prefix + "/").get("Uploads", [])
        return [u["Key"] for u in uploads]

    # -- shared checks -----------------------------------------------------------------------
    def check_output(self, trial: Trial, child: Child, label: str) -> None:
        for secret in self.secrets:
            if secret in child.text:
                trial.fail(f"{label}: a secret key appears in the output")
        if "Traceback" in child.text:
            trial.fail(f"{label}: a traceback ({child.err.strip().splitlines()[-1][:200] if child.err.strip() else ''})")
        if child.hung:
            trial.fail(f"{label}: still running after {CHILD_TIMEOUT:.0f} s")
        elif child.code not in (0, None) and not child.signalled.startswith("SIGKILL"):
            lines = [line for line in child.err.splitlines() if line.startswith("drtasks: ")]
            if len(lines) != 1:
                trial.fail(f"{label}: exit {child.code} with {len(lines)} error lines: {child.err.strip()[-300:]!r}")

    def rerun(self, trial: Trial, args: list[str], dr_dir: Path, cache: str, server: str, prefix: str, want: str) -> TargetState | None:
        """(c) a clean re-run succeeds and leaves an exact, complete upload, no orphans, no lease."""
        for proxy in self.proxies.values():
            proxy.clear()
        child = self.drtasks(args, dr_dir, cache, f"{trial.phase}-{trial.number}-rerun")
        self.check_output(trial, child, "re-run")
        if child.code != 0:
            trial.fail(f"the clean re-run failed (exit {child.code}): {child.err.strip()[-300:]}")
            return None
        state = self.read_target(server, prefix)
        complete, problems = self.judge(state, want)
        if not complete or problems:
            trial.fail(f"the clean re-run exited 0 but left {'; '.join(problems) or 'no markers'}", lost=True)
        if self.pending(server, prefix):
            trial.fail(f"unfinished multipart uploads left after the re-run: {self.pending(server, prefix)[:3]}")
        if LEASE in state.objects:
            trial.fail("the lease was left after the re-run")
        return state

    def checkpoint_for(self, flag: str) -> str:
        assert self.model is not None
        return (self.model.best_checkpoint if flag == "--best" else self.model.last_checkpoint).name

    def prepare(self, trial: Trial, mode: str, prefix: str, over: str | None) -> tuple[Path, str]:
        """A DR_DIR for the trial, strays beside its prefix, and (``over``) a clean upload of A there."""
        server = "a" if mode == "same" else "b"
        dr_dir = self.dr_dir(f"{trial.phase}-{trial.number}", mode, prefix)
        for key in (f"{prefix}-2/keep.txt", f"{prefix}10/keep.txt", prefix):
            self.client(server).put_object(Bucket=RACE_BUCKET, Key=key, Body=f"stray {key}".encode())
        cache = f"{trial.phase}-{trial.number}"
        if over is not None:
            first = self.drtasks(["upload", "-f", *([over] if over else [])], dr_dir, cache, f"{trial.phase}-{trial.number}-a")
            if first.code != 0:
                raise CampaignError(f"the clean upload of model A for {trial.phase} {trial.number} failed: {first.err.strip()[-300:]}")
        return dr_dir, cache

    # -- kills ---------------------------------------------------------------------------------
    def slow_down(self, mode: str, seconds: float) -> None:
        """Delay every data-carrying request, so a kill lands while objects move."""
        source, target = self.proxies["a"], self.proxies["a" if mode == "same" else "b"]
        source.add(Rule("delay", op("GetObject", r"\.(data-|pb$|meta$)"), seconds=seconds))
        for name in ("PutObject", "UploadPart", "CompleteMultipartUpload"):
            target.add(Rule("delay", op(name), seconds=seconds))

    def calibrate(self, delay: float) -> None:
        """How long a slowed-down upload takes, per mode: the kill moments are drawn below it."""
        for number, mode in enumerate(("same", "cross")):
            dr_dir, cache = self.prepare(Trial("calibrate", number, mode), mode, f"calibrate-{mode}", None)
            self.slow_down(mode, delay)
            started = time.monotonic()
            process, out_path, err_path = self.spawn(["upload", "-f"], dr_dir, cache, f"calibrate-{mode}")
            while process.poll() is None and not self.writes_seen(mode, f"calibrate-{mode}"):
                time.sleep(0.02)
            first_write = time.monotonic() - started
            child = self.finish(process, out_path, err_path, started)
            for proxy in self.proxies.values():
                proxy.clear()
            if child.code != 0:
                raise CampaignError(f"the calibration upload ({mode}) failed: {child.err.strip()[-300:]}")
            self.durations[mode] = child.seconds
            self.first_writes[mode] = first_write
        self.say(
            "calibrated: a slowed-down upload writes first after, and ends after: "
            + ", ".join(f"{m} endpoint {self.first_writes[m]:.1f} s, {s:.1f} s" for m, s in self.durations.items())
        )

    def writes_seen(self, mode: str, prefix: str) -> int:
        target = self.proxies["a" if mode == "same" else "b"]
        return sum(1 for r in list(target.requests) if r.operation in ("PutObject", "UploadPart", "CompleteMultipartUpload", "DeleteObjects") and f"/{prefix}/" in r.path and LEASE not in r.path)

    def kill_trial(self, number: int, delay: float) -> Trial:
        rng = random.Random(self.seed * 1_000_003 + number)
        mode = rng.choice(["same", "cross"])
        scenario = rng.choice(["first upload", "B over A"])
        how = "SIGINT" if rng.random() < 0.3 else "SIGKILL"
        flags = rng.choice([("", "--best"), ("--best", "")])
        over, flag = (flags[0], flags[1]) if scenario == "B over A" else (None, rng.choice(["", "--best"]))
        wipe = rng.random() < 0.25
        prefix = f"kill-{number}"
        args = ["upload", "-f", *([flag] if flag else []), *(["-w"] if wipe else [])]
        want = self.checkpoint_for(flag)
        trial = Trial("kills", number, f"{how}, {mode} endpoint, {scenario}, {' '.join(args)}")
        server = "a" if mode == "same" else "b"
        dr_dir, cache = self.prepare(trial, mode, prefix, over)
        before = self.outside(server, prefix)
        self.slow_down(mode, delay)
        # Mostly while objects move; some during start-up and planning.
        first, end = self.first_writes[mode], self.durations[mode]
        moment = rng.uniform(0.05, first) if rng.random() < 0.2 else rng.uniform(first, 1.05 * end)
        started = time.monotonic()
        child, out_path, err_path = self.spawn(args, dr_dir, cache, f"kills-{number}")
        signalled_at = None
        try:
            child.wait(timeout=moment)
            landed = "after the run ended"
        except subprocess.TimeoutExpired:
            writes = self.writes_seen(mode, prefix)
            landed = "before any write" if writes == 0 else f"mid-transfer ({writes} writes done)"
            child.send_signal(signal.SIGINT if how == "SIGINT" else signal.SIGKILL)
            signalled_at = time.monotonic()
        result = self.finish(child, out_path, err_path, started, signalled=how if signalled_at else "")
        if signalled_at is not None and how == "SIGINT":
            # Ctrl-C stops at once: running requests end (each held up to --delay s here), nothing new starts.
            trial.details["stopped_after_seconds"] = round(time.monotonic() - signalled_at, 2)
            if time.monotonic() - signalled_at > 10:
                trial.fail(f"Ctrl-C took {time.monotonic() - signalled_at:.1f} s to stop the run")
        for proxy in self.proxies.values():
            proxy.clear()
        trial.details.update(mode=mode, scenario=scenario, signal=how, at_seconds=round(moment, 2), landed=landed, exit=result.code)
        trial.outcome = f"{how} at {moment:.1f} s, {landed}; exit {result.code}"
        self.check_output(trial, result, "the interrupted run")
        if how == "SIGINT" and result.signalled and result.code not in (0, 130):
            trial.fail(f"Ctrl-C ended the run with exit {result.code}, not 130")
        if how == "SIGINT" and result.signalled and result.code == 130 and "interrupted" not in result.err:
            trial.fail("Ctrl-C did not say the run was interrupted")
        state = self.read_target(server, prefix)
        complete, problems = self.judge(state, want if result.code == 0 else None)
        if result.code == 0 and not complete:
            trial.fail("exit 0 but the target does not look complete", lost=True)
        for problem in problems:
            trial.fail(f"{'exit 0, yet ' if result.code == 0 else 'after the kill, '}{problem}", lost=True)
        self.compare_outside(trial, before, server, prefix)
        self.rerun(trial, args, dr_dir, cache, server, prefix, want)
        return trial

    # -- proxy faults ----------------------------------------------------------------------
    def fault_rules(self, rng: random.Random, mode: str) -> list[tuple[str, Rule]]:
        """One or two faults, each on the source side or the target side."""
        assert self.model is not None
        data = r"\.data-00000-of-00001$"
        source_faults: list[Callable[[], Rule]] = [
            lambda: Rule("corrupt", op("GetObject"), probability=rng.choice([0.2, 0.5])),
            lambda: Rule("corrupt", op("GetObject", data), probability=1.0),
            lambda: Rule("corrupt", op("GetObject", r"deepracer_checkpoints\.json$"), probability=1.0),
            lambda: Rule("corrupt", op("GetObject", r"(model_metadata\.json|\.pb)$"), probability=1.0, times=rng.choice([1, 2])),
            lambda: Rule("truncate", op("GetObject"), probability=rng.choice([0.3, 0.6])),
            lambda: Rule("error", lambda r: r.operation in ("GetObject", "HeadObject"), probability=0.3),
            lambda: Rule("error", op("ListObjects"), times=rng.choice([1, 3, 10])),
            lambda: Rule("reset", op("GetObject"), probability=0.3),
            lambda: Rule("corrupt", op("ListObjects"), times=1),
            lambda: Rule("delay", op("GetObject"), seconds=0.3),
        ]
        target_faults: list[Callable[[], Rule]] = [
            lambda: Rule("error", op("PutObject"), probability=rng.choice([0.3, 1.0])),
            lambda: Rule("error", op("PutObject"), times=rng.choice([1, 3])),
            lambda: Rule("error", op("UploadPart"), probability=rng.choice([0.3, 1.0])),
            lambda: Rule("error", op("CompleteMultipartUpload"), times=rng.choice([1, 5])),
            lambda: Rule("error", op("CreateMultipartUpload"), times=rng.choice([1, 5])),
            lambda: Rule("reset", lambda r: r.operation in ("PutObject", "UploadPart"), probability=0.25),
            lambda: Rule("reset", op("CompleteMultipartUpload"), times=1),
            lambda: Rule("corrupt", op("ListObjects"), times=rng.choice([1, 2])),
            lambda: Rule("error", op("DeleteObjects"), times=rng.choice([1, 5])),
            lambda: Rule("error", lambda r: r.operation == "PutObject" and r.path.endswith((".coach_checkpoint", "deepracer_checkpoints.json")), probability=1.0),
            lambda: Rule("truncate", op("GetObject", LEASE.replace(".", r"\.")), probability=0.5),
        ]
        if mode == "same":  # server-side copies: the target side's writes are CopyObject (a PUT)
            target_faults = target_faults[:2] + target_faults[5:6] + target_faults[7:11]
        chosen = []
        for _ in range(rng.choice([1, 1, 2])):
            side = rng.choice(["source", "target"])
            make = rng.choice(source_faults if side == "source" else target_faults)
            chosen.append((side, make()))
        return chosen

    @staticmethod
    def describe_rule(side: str, rule: Rule) -> str:
        probe = {name: rule.matches(Request(*request)) for name, request in {
            "GET": ("GET", "/b/k", {}), "GET data": ("GET", "/b/x.data-00000-of-00001", {}), "GET index": ("GET", "/b/model/deepracer_checkpoints.json", {}),
            "GET pb": ("GET", "/b/model/model_1.pb", {}), "LIST": ("GET", "/b", {"list-type": ["2"]}), "PUT": ("PUT", "/b/k", {}),
            "PUT marker": ("PUT", "/b/model/.coach_checkpoint", {}), "UploadPart": ("PUT", "/b/k", {"partNumber": ["1"], "uploadId": ["u"]}),
            "Complete": ("POST", "/b/k", {"uploadId": ["u"]}), "Create": ("POST", "/b/k", {"uploads": [""]}), "DeleteObjects": ("POST", "/b", {"delete": [""]}),
            "HEAD": ("HEAD", "/b/k", {}), "GET lease": ("GET", f"/b/p/{LEASE}", {}),
        }.items()}
        hit = [name for name, matched in probe.items() if matched]
        detail = f"{rule.fault} {'/'.join(hit) or 'requests'}"
        if rule.fault == "delay":
            detail += f" {rule.seconds:g} s"
        detail += f" p={rule.probability:g}" if rule.times is None else f" {rule.times}x"
        return f"{side}: {detail}"

    def fault_trial(self, number: int) -> Trial:
        rng = random.Random(self.seed * 2_000_003 + number)
        kind = rng.choices(["upload", "two writers", "car-zip"], weights=[8, 1, 1])[0]
        if kind == "two writers":
            return self.race_trial(number, rng)
        if kind == "car-zip":
            return self.car_zip_trial(number, rng)
        mode = rng.choices(["cross", "same"], weights=[7, 3])[0]
        scenario = rng.choice(["first upload", "B over A"])
        flags = rng.choice([("", "--best"), ("--best", "")])
        over, flag = (flags[0], flags[1]) if scenario == "B over A" else (None, rng.choice(["", "--best"]))
        args = ["upload", "-f", *([flag] if flag else []), *(["-w"] if rng.random() < 0.25 else [])]
        want = self.checkpoint_for(flag)
        rules = self.fault_rules(rng, mode)
        faults = "; ".join(self.describe_rule(side, rule) for side, rule in rules)
        trial = Trial("faults", number, f"{mode} endpoint, {scenario}, {' '.join(args)} | {faults}")
        server, prefix = ("a" if mode == "same" else "b"), f"fault-{number}"
        dr_dir, cache = self.prepare(trial, mode, prefix, over)
        before = self.outside(server, prefix)
        for side, rule in rules:
            self.proxies["a" if side == "source" or mode == "same" else "b"].add(rule)
        result = self.drtasks(args, dr_dir, cache, f"faults-{number}")
        hits = sum(rule.hits for _, rule in rules)
        for proxy in self.proxies.values():
            proxy.clear()
        trial.details.update(mode=mode, scenario=scenario, faults=faults, injected=hits, exit=result.code)
        trial.outcome = f"{hits} faults injected; exit {result.code}" + (f": {result.err.strip().splitlines()[-1][:160]}" if result.code and result.err.strip() else "")
        self.check_output(trial, result, "the faulted run")
        state = self.read_target(server, prefix)
        complete, problems = self.judge(state, want if result.code == 0 else None)
        if result.code == 0 and not complete:
            trial.fail("exit 0 but the target does not look complete", lost=True)
        for problem in problems:
            trial.fail(f"{'exit 0, yet ' if result.code == 0 else 'after the failure, '}{problem}", lost=True)
        self.compare_outside(trial, before, server, prefix)
        repaired = self.rerun(trial, args, dr_dir, cache, server, prefix, want)
        if result.code == 0 and repaired is not None:
            for key in ("training_params.yaml", *MARKERS):  # generated files: as a clean run writes them
                if key in state.content and state.content[key] != repaired.content.get(key):
                    trial.fail(f"exit 0, yet {key} differs from what a clean run writes", lost=True)
        return trial

    def race_trial(self, number: int, rng: random.Random) -> Trial:
        """Two writers at once on one prefix (the lease, the re-check before the markers)."""
        mode = rng.choice(["same", "cross"])
        server, prefix = ("a" if mode == "same" else "b"), f"race-{number}"
        trial = Trial("faults", number, f"two writers at once, {mode} endpoint: upload -f and upload -f --best, delayed writes")
        dr_dir, cache = self.prepare(trial, mode, prefix, None)
        before = self.outside(server, prefix)
        self.slow_down(mode, 0.05)
        started = time.monotonic()
        runs = [self.spawn(["upload", "-f", *flag], dr_dir, cache, f"faults-{number}-{i}") for i, flag in enumerate(([], ["--best"]))]
        results = [self.finish(child, out_path, err_path, started) for child, out_path, err_path in runs]
        for proxy in self.proxies.values():
            proxy.clear()
        codes = [r.code for r in results]
        trial.details.update(mode=mode, exits=codes)
        trial.outcome = f"exits {codes}"
        for index, result in enumerate(results):
            self.check_output(trial, result, f"writer {index + 1}")
            if result.code not in (0, None) and not any(text in result.err for text in ("being written by another drtasks run", "lost the lease", "could not be proven")):
                trial.fail(f"writer {index + 1} failed for another reason: {result.err.strip()[-200:]}")
        state = self.read_target(server, prefix)
        complete, problems = self.judge(state)
        if 0 in codes and not complete:
            trial.fail("a writer exited 0 but the target does not look complete", lost=True)
        for problem in problems:
            trial.fail(problem, lost=True)
        self.compare_outside(trial, before, server, prefix)
        self.rerun(trial, ["upload", "-f", "--best"], dr_dir, cache, server, prefix, self.checkpoint_for("--best"))
        return trial

    def car_zip_trial(self, number: int, rng: random.Random) -> Trial:
        """car-zip --from s3 through a corrupting source: an archive written means the source's exact graph."""
        import tarfile

        assert self.model is not None
        flag = rng.choice(["", "--best"])
        rule = Rule("corrupt", op("GetObject", r"(model_metadata\.json|\.pb)$"), probability=rng.choice([0.5, 1.0]), times=rng.choice([None, 1]))
        trial = Trial("faults", number, f"car-zip --from s3 -N {flag} | {self.describe_rule('source', rule)}".replace("  ", " "))
        dr_dir = self.dr_dir(f"faults-{number}", "cross", f"car-{number}")
        output = dr_dir / "car.tar.gz"
        before = self.outside("b", f"car-{number}")
        self.proxies["a"].add(rule)
        args = ["car-zip", "--from", "s3", "-N", "-f", "-o", str(output), *([flag] if flag else [])]
        result = self.drtasks(args, dr_dir, f"faults-{number}", f"faults-{number}")
        for proxy in self.proxies.values():
            proxy.clear()
        trial.details.update(faults=self.describe_rule("source", rule), injected=rule.hits, exit=result.code)
        trial.outcome = f"{rule.hits} faults injected; exit {result.code}" + (f": {result.err.strip().splitlines()[-1][:160]}" if result.code and result.err.strip() else "")
        self.check_output(trial, result, "car-zip")
        checkpoint = self.model.best_checkpoint if flag else self.model.last_checkpoint
        want = {"agent/model.pb": self.model.sha256[self.model.key(checkpoint.pb_key)], "model_metadata.json": self.model.sha256[self.model.key("model/model_metadata.json")]}

        def members() -> dict[str, str]:
            with tarfile.open(output) as archive:
                return {m.name: hashlib.sha256(archive.extractfile(m).read()).hexdigest() for m in archive.getmembers() if m.isfile()}  # type: ignore[union-attr]

        if result.code == 0:
            held = members()
            for name, sha in want.items():
                if held.get(name) != sha:
                    trial.fail(f"exit 0, yet the archive's {name} is not the source's bytes", lost=True)
        elif output.exists():
            trial.fail("car-zip failed but wrote the archive")
        self.compare_outside(trial, before, "b", f"car-{number}")
        again = self.drtasks(args, dr_dir, f"faults-{number}", f"faults-{number}-rerun")
        self.check_output(trial, again, "re-run")
        if again.code != 0:
            trial.fail(f"the clean re-run failed (exit {again.code}): {again.err.strip()[-300:]}")
        else:
            held = members()
            if any(held.get(name) != sha for name, sha in want.items()):
                trial.fail("the clean re-run wrote an archive whose graph is not the source's", lost=True)
        return trial

    # -- the wipe property -------------------------------------------------------------------
    def wipe_world(self) -> Any:
        from tests import wipe_property

        a, b = self.servers["a"], self.servers["b"]
        port = a.endpoint_url.rsplit(":", 1)[1]
        storage_a = wipe_property.Storage("a", a.endpoint_url, PROFILE_A, self.client("a"), (f"http://localhost:{port}", f"{a.endpoint_url}/"), PROFILE_ALIAS)
        storage_b = wipe_property.Storage("b", b.endpoint_url, PROFILE_B, self.client("b"))
        return wipe_property.make_world(storage_a, storage_b)

    def wipe_trial(self, world: Any, number: int, child_share: float) -> Trial:
        from tests import wipe_property

        case = wipe_property.random_case(self.seed, number, child_share=child_share)
        verdict = wipe_property.run_case(world, case, self.root / "wipe")
        trial = Trial("wipe", number, case.describe())
        trial.outcome = f"exit {verdict.outcome.code}: {verdict.outcome.error or 'completed'}"
        trial.details.update(refused=verdict.refused, child=case.child, expected_refusal=sorted(verdict.expectation.refuse))
        for violation in verdict.violations:
            trial.fail(violation, lost=True)
        for mismatch in verdict.mismatches:
            trial.fail(mismatch)
        return trial


# ---------------------------------------------------------------------------- bad inputs


def bad_input_catalogue() -> list[Any] | None:
    try:
        from tests.test_bad_input import BAD_INPUTS
    except ImportError:
        return None
    return list(BAD_INPUTS)


class BadInputs:
    """The catalogue's world: a model with strays beside it, an upload bucket with strays, a DR_DIR per case."""

    def __init__(self, campaign: "Campaign") -> None:
        from types import SimpleNamespace

        from tests.test_bad_input import STRAYS

        self.campaign = campaign
        self.client = campaign.client("a")
        ensure_bucket(self.client, "bad-input")
        ensure_bucket(self.client, "bad-input-upload")
        self.model = seed_model(self.client, "bad-input", MODEL_PREFIX, seed=campaign.seed)
        for bucket in ("bad-input", "bad-input-upload"):
            for key in STRAYS:
                self.client.put_object(Bucket=bucket, Key=key, Body=b"must survive")
        self.s3 = SimpleNamespace(endpoint_url=campaign.servers["a"].endpoint_url, aws_profile=PROFILE_A)

    def trial(self, number: int, case: Any) -> Trial:
        """One catalogue case through the real command: one line, non-zero, no traceback, nothing written."""
        from tests.cli import run
        from tests.test_bad_input import error_lines, files_of, listing, prepare, replaced_source_objects

        dr_dir = self.campaign.root / "bad" / f"case-{number}" / "dr"
        (dr_dir / "profiles").mkdir(parents=True)
        world = {"dr_dir": dr_dir, "client": self.client, "model": self.model, "upload_bucket": "bad-input-upload", "s3": self.s3}
        trial = Trial("bad", number, f"{case.id}: {' '.join(case.args)}")
        env = prepare(case, world)
        with replaced_source_objects(case, world):
            before = (listing(self.client, "bad-input-upload"), listing(self.client, "bad-input"), files_of(dr_dir))
            args = tuple(arg.format(dr_dir=dr_dir) for arg in case.args[1:])
            result = run(case.args[0], *args, dr_dir=dr_dir, env=env, timeout=90)
            after = (listing(self.client, "bad-input-upload"), listing(self.client, "bad-input"), files_of(dr_dir))
        lines = error_lines(result)
        trial.outcome = f"exit {result.code}: {lines[0][:200] if lines else result.err.strip()[-200:]}"
        if result.code == 0:
            trial.fail("exit 0")
        if "Traceback" in result.text:
            trial.fail("a traceback")
        if len(lines) != 1:
            trial.fail(f"{len(lines)} error lines on stderr")
        elif len(lines[0]) > 1100:
            trial.fail("the error line is longer than 1100 characters")
        missing = [word for word in case.expect if not lines or word not in lines[0]]
        if missing:
            trial.fail(f"the line does not name {missing}")
        if any(secret in result.text for secret in self.campaign.secrets):
            trial.fail("a secret key appears in the output")
        if after[:2] != before[:2]:
            trial.fail("an object was written or deleted", lost=True)
        if after[2] != before[2]:
            trial.fail("a file of DR_DIR was written")
        return trial


# Random bad input: hostile lines, values, flags and mutated profiles, each planned with a dry run.
HOSTILE_VALUES = (
    "", "/", "//", "$UNDEFINED/", "${UNDEFINED", "$(rm -rf /)", "`id`", "x" * 5000, "race\tmodel", "..", "../../etc",
    "s3://bucket/prefix", "\u00e9t\u00e9-\u2603", "-1", "99999999999999999999999", "1e309", "nan", "best-by:", "best-by:speed",
    "'quoted", '"double', "a b", "%2F", "\\", "*", "?", "#comment", "=", "yes", "null", "[1, 2]", "{a: 1}",
)
HOSTILE_LINES = (
    "DR_UPLOAD_S3_PREFIX=${", "=value", "JUST_A_WORD", "export DR_UPLOAD_S3_PREFIX=race-x", "DR_A='unterminated",
    'DR_A="unterminated', "DR_UPLOAD_CHECKPOINT=best-by:", "DR_LOCAL_S3_BUCKET=", "DR_UPLOAD_S3_ENDPOINT_URL=http://[::1",
    "DR_LOCAL_S3_PROFILE=no-such-profile", "DR_CLOUD=mars", "DR_UPLOAD_S3_BUCKET=UPPER_case..bucket", "\x00\x00",
    "DR_LOCAL_S3_MODEL_PREFIX=" + "deep/" * 300, "DR_UPLOAD_S3_PREFIX=" + "p" * 2000,
)
SETTINGS = (
    "DR_UPLOAD_S3_PREFIX", "DR_LOCAL_S3_MODEL_PREFIX", "DR_LOCAL_S3_BUCKET", "DR_UPLOAD_S3_BUCKET", "DR_UPLOAD_CHECKPOINT",
    "DR_LOCAL_S3_REWARD_KEY", "DR_LOCAL_S3_METRICS_PREFIX", "DR_CLOUD", "DR_UPLOAD_S3_ENDPOINT_URL", "DR_LOCAL_S3_PROFILE",
    "DR_CAR_NAME", "DR_WORLD_NAME", "DR_LOCAL_S3_CUSTOM_FILES_PREFIX", "DRTASKS_TIMEOUT", "DR_IMPORT_TARGET",
)
PROFILE_TEXT = (
    "description: fuzzed\ncheckpoint: best\nupload:\n  prefix: fuzz-2026\n  bucket: {bucket}\nsource:\n  prefix: {prefix}\n"
    "car_zip:\n  source: s3\nsteps: [upload, car-zip]\nenv:\n  DR_WORLD_NAME: reInvent2019_track\n"
)
COMMANDS = (
    ("drtasks", "upload", "-d"), ("drtasks", "upload", "-d", "--json"), ("drtasks", "increment", "-d"),
    ("drtasks", "car-zip", "--from", "s3", "-d"), ("drtasks", "config"), ("drtasks", "ship", "-d"), ("dr-upload-model", "-d"),
)


def fuzz_case(rng: random.Random, bucket: str, upload_bucket: str) -> tuple[str, dict[str, str], dict[str, bytes], dict[str, str], tuple[str, ...]]:
    """(what, extra run.env lines or profile, files, environment, argv) of one random bad input."""
    kind = rng.choice(["env line", "setting", "environment", "flag", "profile"])
    files: dict[str, bytes] = {}
    env: dict[str, str] = {}
    command = rng.choice(COMMANDS)
    lines = ""
    if kind == "env line":
        picked = rng.sample(HOSTILE_LINES, rng.randint(1, 3))
        lines = "".join(f"{line}\n" for line in picked)
        what = f"run.env gains {[line[:40] for line in picked]}"
    elif kind == "setting":
        key, value = rng.choice(SETTINGS), rng.choice(HOSTILE_VALUES)
        lines = f"{key}={value}\n"
        what = f"run.env {key}={value[:40]!r}"
    elif kind == "environment":
        key, value = rng.choice(SETTINGS), rng.choice(HOSTILE_VALUES)
        env[key] = value.replace("\x00", "")
        what = f"environment {key}={value[:40]!r}"
    elif kind == "flag":
        flag = rng.choice(["-c", "--best-by", "-P", "--profile", "-p"])
        value = rng.choice(HOSTILE_VALUES)
        command = ("drtasks", "upload", "-d", flag, value)
        what = f"flag {flag} {value[:40]!r}"
    else:
        text = bytearray(PROFILE_TEXT.format(bucket=upload_bucket, prefix=MODEL_PREFIX).encode())
        mutation = rng.choice(["flip", "delete line", "duplicate", "wrong type", "truncate", "tag", "tabs"])
        if mutation == "flip":
            for _ in range(rng.randint(1, 4)):
                index = rng.randrange(len(text))
                text[index] ^= 1 << rng.randrange(8)
        elif mutation == "delete line":
            parts = bytes(text).split(b"\n")
            del parts[rng.randrange(len(parts))]
            text = bytearray(b"\n".join(parts))
        elif mutation == "duplicate":
            text += b"checkpoint: last\n"
        elif mutation == "wrong type":
            text += rng.choice([b"steps: upload\n", b"upload: [1, 2]\n", b"checkpoint: {}\n", b"env: []\n", b"extends: 7\n", b"car_zip:\n  cars: 5\n"])
        elif mutation == "truncate":
            text = text[: rng.randrange(len(text))]
        elif mutation == "tag":
            text += b"role: !!python/object/apply:os.system ['true']\n"
        else:
            text = bytearray(bytes(text).replace(b"  ", b"\t"))
        files["profiles/fuzz.yaml"] = bytes(text)
        command = (*command, "--profile", "fuzz") if command[0] == "drtasks" and command[1] not in ("config",) else ("drtasks", "upload", "-d", "--profile", "fuzz")
        what = f"profile fuzz.yaml, {mutation}"
    return f"{kind}: {what}", {"run": lines}, files, env, command


class Fuzz:
    """Random bad input against the real commands (dry runs): a clean error, or accepted; never a traceback."""

    def __init__(self, bad: BadInputs) -> None:
        self.bad = bad

    def trial(self, number: int, seed: int) -> Trial:
        from tests.cli import run
        from tests.drfc import write_env_files
        from tests.test_bad_input import error_lines, files_of, listing

        bad = self.bad
        rng = random.Random(seed * 3_000_017 + number)
        what, extra, files, env, command = fuzz_case(rng, bad.model.bucket, "bad-input-upload")
        trial = Trial("bad", number, f"random {what}: {' '.join(command)[:80]}")
        dr_dir = bad.campaign.root / "fuzz" / f"case-{number}"
        (dr_dir / "profiles").mkdir(parents=True)
        write_env_files(dr_dir, bad.s3, bad.model, "bad-input-upload", run=extra["run"])
        for relative, body in files.items():
            (dr_dir / relative).write_bytes(body)
        before = (listing(bad.client, "bad-input-upload"), listing(bad.client, "bad-input"), files_of(dr_dir))
        try:
            result = run(command[0], *command[1:], dr_dir=dr_dir, env=env, timeout=90)
        except subprocess.TimeoutExpired:
            trial.fail("still running after 90 s")
            return trial
        after = (listing(bad.client, "bad-input-upload"), listing(bad.client, "bad-input"), files_of(dr_dir))
        lines = error_lines(result)
        trial.details.update(accepted=result.code == 0, fuzz=what)
        trial.outcome = "accepted (exit 0)" if result.code == 0 else f"exit {result.code}: {lines[0][:200] if lines else result.err.strip()[-200:]}"
        if "Traceback" in result.text:
            trial.fail(f"a traceback: {result.err.strip().splitlines()[-1][:200]}")
        if result.code != 0 and len(lines) != 1:
            trial.fail(f"exit {result.code} with {len(lines)} error lines: {result.err.strip()[-300:]!r}")
        if any(secret in result.text for secret in bad.campaign.secrets):
            trial.fail("a secret key appears in the output")
        if after[:2] != before[:2]:
            trial.fail("a dry run wrote or deleted an object", lost=True)
        if after[2] != before[2]:
            trial.fail("a dry run changed a file of DR_DIR")
        return trial


# ---------------------------------------------------------------------------- report


PHASE_TITLES = {"kills": "kills at random moments", "faults": "proxy faults, two writers, car-zip", "wipe": "wipe property cases", "bad": "bad inputs"}


def summarize(trials: list[Trial], planned: dict[str, int]) -> dict[str, dict[str, int]]:
    summary = {}
    for phase in PHASES:
        mine = [t for t in trials if t.phase == phase]
        if not planned.get(phase):
            continue
        summary[phase] = {
            "planned": planned[phase],
            "tried": len(mine),
            "survived": sum(t.survived for t in mine),
            "data_lost": sum(bool(t.data_lost) for t in mine),
            "other_problems": sum(bool(t.problems) and not t.data_lost for t in mine),
        }
    return summary


def print_report(trials: list[Trial], summary: dict[str, dict[str, int]], seed: int, seconds: float) -> None:
    print()
    print(f"Fault campaign, seed {seed}, {seconds / 60:.1f} min")
    print()
    header = f"{'phase':<36} {'tried':>6} {'survived':>9} {'data lost':>10} {'other':>6}"
    print(header)
    print("-" * len(header))
    for phase, row in summary.items():
        tried = f"{row['tried']}" + ("" if row["tried"] == row["planned"] else f"/{row['planned']}")
        print(f"{PHASE_TITLES[phase]:<36} {tried:>6} {row['survived']:>9} {row['data_lost']:>10} {row['other_problems']:>6}")
    faulted = [s for p, s in summary.items() if p in ("kills", "faults")]
    if faulted:
        print("-" * len(header))
        print(f"{'faults (kills + proxy faults)':<36} {sum(s['tried'] for s in faulted):>6} {sum(s['survived'] for s in faulted):>9} {sum(s['data_lost'] for s in faulted):>10} {sum(s['other_problems'] for s in faulted):>6}")
    kills = [t for t in trials if t.phase == "kills"]
    if kills:
        landed: dict[str, int] = {}
        for t in kills:
            key = t.details.get("landed", "").split(" (")[0]
            landed[key] = landed.get(key, 0) + 1
        print()
        print("kills landed: " + ", ".join(f"{n} {k}" for k, n in sorted(landed.items())))
        stops = [t.details["stopped_after_seconds"] for t in kills if "stopped_after_seconds" in t.details]
        if stops:
            print(f"Ctrl-C (SIGINT) to exit: {len(stops)} runs, at most {max(stops):.1f} s, median {sorted(stops)[len(stops) // 2]:.1f} s")
    faults = [t for t in trials if t.phase == "faults"]
    if faults:
        failed = sum(1 for t in faults if t.details.get("exit") not in (0, None) or any(e not in (0, None) for e in t.details.get("exits", [])))
        print(f"faulted runs that failed visibly (then repaired by a clean re-run): {failed} of {len(faults)}; injected faults: {sum(t.details.get('injected', 0) for t in faults)}")
    bad = [t for t in trials if t.phase == "bad" and "accepted" not in t.details]
    fuzzed = [t for t in trials if t.phase == "bad" and "accepted" in t.details]
    if bad:
        print(f"bad inputs of the catalogue: {len(bad)} tried, {sum(t.survived for t in bad)} clean errors (one line naming it, non-zero exit, no traceback, nothing written)")
    if fuzzed:
        accepted = sum(bool(t.details["accepted"]) for t in fuzzed)
        clean = sum(t.survived and not t.details["accepted"] for t in fuzzed)
        print(f"random bad inputs (dry runs): {len(fuzzed)} tried, {clean} refused with a clean error, {accepted} harmless and accepted, {len(fuzzed) - sum(t.survived for t in fuzzed)} failed")
    wipes = [t for t in trials if t.phase == "wipe"]
    if wipes:
        refused = sum(bool(t.details.get("refused")) for t in wipes)
        print(f"wipe cases: {len(wipes)} tried ({refused} refused as the rules say, {len(wipes) - refused} completed; {sum(bool(t.details.get('child')) for t in wipes)} as child processes), {sum(t.survived for t in wipes)} held")
    broken = [t for t in trials if not t.survived]
    if broken:
        print()
        print(f"{len(broken)} trial(s) did not survive:")
        for t in broken[:40]:
            print(f"  [{t.phase} {t.number}] {t.what}")
            print(f"      {t.outcome}")
            for text in t.data_lost:
                print(f"      DATA LOST: {text}")
            for text in t.problems:
                print(f"      problem: {text}")


# ---------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Kill, corrupt and wipe drtasks' uploads on two real S3 servers; count what survives.")
    parser.add_argument("--quick", action="store_true", help="a smoke run: a small model and a few trials of each kind")
    parser.add_argument("--seed", type=int, default=1, help="the seed of every random choice (default 1)")
    parser.add_argument("--json", metavar="FILE", help="also write the summary and every trial as JSON")
    parser.add_argument("--only", default=",".join(PHASES), help=f"comma-separated phases to run (default: {','.join(PHASES)})")
    parser.add_argument("--kills", type=int, help="number of kill trials")
    parser.add_argument("--faults", type=int, help="number of proxy-fault trials")
    parser.add_argument("--wipe", type=int, help="number of wipe cases")
    parser.add_argument("--bad", type=int, help="number of catalogue bad-input cases (default: the whole catalogue)")
    parser.add_argument("--fuzz", type=int, help="number of random bad inputs besides the catalogue")
    parser.add_argument("--budget", type=float, help="minutes after which no new trial starts (default 90; 10 with --quick)")
    parser.add_argument("--delay", type=float, default=0.4, help="seconds each data request is held in kill trials (default 0.4)")
    args = parser.parse_args(argv)
    phases = [p.strip() for p in args.only.split(",") if p.strip()]
    unknown = sorted(set(phases) - set(PHASES))
    if unknown:
        parser.error(f"--only: unknown phase(s) {', '.join(unknown)}; choose from {', '.join(PHASES)}")
    sizes, counts = QUICK if args.quick else FULL
    budget = 60 * (args.budget if args.budget is not None else (10 if args.quick else 90))

    began = time.monotonic()

    def say(text: str) -> None:
        print(f"[{time.monotonic() - began:7.1f}s] {text}", file=sys.stderr, flush=True)

    def in_budget() -> bool:
        return time.monotonic() - began < budget

    signal.signal(signal.SIGTERM, signal.default_int_handler)  # SIGTERM cleans up as Ctrl-C does
    signal.signal(signal.SIGINT, signal.default_int_handler)  # also when started with SIGINT ignored (nohup, &)
    root = Path(tempfile.mkdtemp(prefix="drtasks-faults-"))
    campaign = Campaign(root, sizes, args.seed, say)
    trials: list[Trial] = []
    catalogue = bad_input_catalogue() if "bad" in phases else None
    planned = {
        "kills": (args.kills if args.kills is not None else counts.kills) if "kills" in phases else 0,
        "faults": (args.faults if args.faults is not None else counts.faults) if "faults" in phases else 0,
        "wipe": (args.wipe if args.wipe is not None else counts.wipe) if "wipe" in phases else 0,
        "bad": 0,
    }
    fuzz = 0
    if "bad" in phases:
        fuzz = args.fuzz if args.fuzz is not None else counts.fuzz
        if catalogue is None:
            say("bad inputs: tests/test_bad_input.py (BAD_INPUTS) is not in this checkout; only random bad inputs are tried")
            catalogue = []
        wanted = args.bad if args.bad is not None else counts.bad
        planned["bad"] = (len(catalogue) if wanted is None else min(wanted, len(catalogue))) + fuzz

    def record(trial: Trial, started: float) -> None:
        trial.seconds = round(time.monotonic() - started, 2)
        trials.append(trial)
        mark = "ok " if trial.survived else ("LOST" if trial.data_lost else "BAD ")
        say(f"{mark} {trial.phase} {trial.number}: {trial.what[:110]} -> {trial.outcome[:90]}")
        for text in trial.data_lost + trial.problems:
            say(f"       {text[:220]}")

    code = 0
    try:
        say("starting two SeaweedFS servers and their fault proxies, seeding the model...")
        campaign.start()
        if planned["wipe"]:
            world = campaign.wipe_world()
            child_share = 0.1
            for number in range(planned["wipe"]):
                if not in_budget():
                    break
                started = time.monotonic()
                record(campaign.wipe_trial(world, number, child_share), started)
        if planned["kills"]:
            campaign.calibrate(args.delay)
            for number in range(planned["kills"]):
                if not in_budget():
                    break
                started = time.monotonic()
                record(campaign.kill_trial(number, args.delay), started)
        if planned["faults"]:
            for number in range(planned["faults"]):
                if not in_budget():
                    break
                started = time.monotonic()
                record(campaign.fault_trial(number), started)
        if planned["bad"] and catalogue is not None:
            bad = BadInputs(campaign)
            cases = catalogue[: planned["bad"] - fuzz]
            for number, case in enumerate(cases):
                if not in_budget():
                    break
                started = time.monotonic()
                record(bad.trial(number, case), started)
            fuzzer = Fuzz(bad)
            for number in range(len(cases), len(cases) + fuzz):
                if not in_budget():
                    break
                started = time.monotonic()
                record(fuzzer.trial(number, args.seed), started)
        summary = summarize(trials, planned)
        print_report(trials, summary, args.seed, time.monotonic() - began)
        if args.json:
            document = {
                "seed": args.seed, "quick": args.quick, "minutes": round((time.monotonic() - began) / 60, 1),
                "model": asdict(sizes), "calibrated_seconds": {"first_write": campaign.first_writes, "whole_run": campaign.durations}, "summary": summary,
                "trials": [asdict(t) for t in trials],
            }
            Path(args.json).write_text(json.dumps(document, indent=1), encoding="utf-8")
            say(f"wrote {args.json}")
        code = 0 if all(t.survived for t in trials) else 1
    except CampaignError as error:
        say(f"fault_campaign: {error}")
        code = 2
    except KeyboardInterrupt:
        say("fault_campaign: interrupted")
        code = 130
    finally:
        say("stopping the servers...")
        campaign.stop()
        shutil.rmtree(root, ignore_errors=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
