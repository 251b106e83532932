"""The wipe property: random layouts, the real `upload -w` / `increment -w`, and what must hold.

Shared by ``tests/test_wipe_property.py`` (a small fixed-seed run in the default suite) and the
fault campaign (``bench/fault_campaign.py``, hundreds of cases).

A case is drawn from a seeded ``random.Random``: a small trained model at a random source prefix;
an upload target in the same bucket, another bucket, another server, the same bucket reached
through another spelling of its endpoint or another AWS profile name, or the training bucket
itself (``-L``); a target prefix that is ordinary, decorated with slashes, hostile (``/``, ``//``,
``$UNDEFINED/``), nested in or around the source, or holding empty or dot path segments; the
upload's inputs (reward function, metrics, custom files) under the target prefix, beside it or
where DRfC keeps them; strays at the bucket root, in siblings (``<prefix>-2``, ``<prefix>10``,
``<prefix>.bak``, the object named exactly like the prefix, the parent folder) and inside the
target. Every bucket is listed before and after the run, and the property is:

- nothing outside the target folder is deleted, changed or written;
- no input of the upload is deleted or changed;
- a refused case changes nothing at all, and its one-line error names why;
- a case the rules refuse is refused, and one they allow completes (the target holds exactly the
  race layout after ``upload -w``, nothing after ``increment -w``).

The expectations are computed here from drtasks' documented rules, independently of its code.
"""

from __future__ import annotations

import io
import os
import random
import re
import uuid
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from drtasks.sample_model import KIB, seed_model

MARKERS = ("model/deepracer_checkpoints.json", "model/.coach_checkpoint", "model_metadata.json")
SOURCE_PREFIXES = ("rl-deepracer-sagemaker", "models/run-3", "m")
# Where the target lives, relative to the source (weights: how often each is drawn).
PLACEMENTS = {
    "same-bucket": 4,
    "other-bucket": 2,
    "other-server": 3,
    "same-bucket-other-endpoint-spelling": 2,
    "same-bucket-other-profile-name": 2,
    "training-bucket (-L)": 3,
}
COMMANDS = {"upload -w": 6, "upload -w --best": 2, "increment -w": 2}
HOSTILE_ROOTS = ("/", "//", "$UNDEFINED/", "${UNDEFINED}", "$UNDEFINED", "")

# Reasons a refusal may name (any one of the applicable ones).
REASONS = {
    "root": ("bucket root", "whole bucket", "not set", "not defined", "empty prefix"),
    "source": ("is the source itself", "overlaps the source", "read by this upload"),
    "input": ("read by this upload",),
    "segment": ("path segment",),
}


@dataclass(frozen=True)
class Storage:
    """One S3 server as the cases reach it: its own name for it, and two other ways to name it."""

    name: str  # "a" | "b"
    endpoint_url: str
    aws_profile: str
    client: Any
    other_spellings: tuple[str, ...] = ()  # the same server: http://localhost:PORT, a trailing slash
    alias_profile: str = ""  # another AWS profile name holding the same credentials


@dataclass
class World:
    """Two servers and three buckets, emptied before every case."""

    a: Storage
    b: Storage
    source_bucket: str
    other_bucket: str  # on a
    remote_bucket: str  # on b

    def buckets(self) -> list[tuple[Storage, str]]:
        return [(self.a, self.source_bucket), (self.a, self.other_bucket), (self.b, self.remote_bucket)]

    def empty(self) -> None:
        for storage, bucket in self.buckets():
            client = storage.client
            for upload in client.list_multipart_uploads(Bucket=bucket).get("Uploads", []):
                client.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
            for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
                keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
                if keys:
                    client.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})


def make_world(a: Storage, b: Storage) -> World:
    from drtasks.locals3 import ensure_bucket

    names = [f"wipe-{role}-{uuid.uuid4().hex[:8]}" for role in ("src", "other", "remote")]
    ensure_bucket(a.client, names[0])
    ensure_bucket(a.client, names[1])
    ensure_bucket(b.client, names[2])
    return World(a, b, *names)


# ---------------------------------------------------------------------------- a random case


@dataclass(frozen=True)
class Case:
    number: int
    seed: int
    command: str  # a key of COMMANDS
    placement: str  # a key of PLACEMENTS
    source_prefix: str
    target_raw: str  # DR_UPLOAD_S3_PREFIX exactly as run.env holds it
    target_kind: str  # ordinary | decorated | hostile-root | around-source | segments
    reward: str  # default | model-root | under-target | beside-target | bucket-root
    metrics: str  # default | under-target | beside-target | target-metrics
    custom: str  # default | under-target
    previous_upload: bool  # the target already holds an older upload
    endpoint_spelling: str = ""  # for same-bucket-other-endpoint-spelling: which spelling
    child: bool = False  # run as a child process instead of in this process

    def describe(self) -> str:
        extra = f" ({self.endpoint_spelling})" if self.endpoint_spelling else ""
        return (
            f"#{self.number} {self.command}, target {self.placement}{extra} prefix {self.target_raw!r} ({self.target_kind}); "
            f"source {self.source_prefix!r}; reward {self.reward}, metrics {self.metrics}, custom files {self.custom}"
            f"{', over an older upload' if self.previous_upload else ''}{', child process' if self.child else ''}"
        )


def _choose(rng: random.Random, weights: dict[str, int]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def _target_raw(rng: random.Random, source: str, n: int) -> tuple[str, str]:
    kind = rng.choices(["ordinary", "decorated", "hostile-root", "around-source", "segments"], weights=[4, 3, 2, 3, 1])[0]
    ordinary = rng.choice([f"race-{n}", "race-model-1", f"uploads/race-{n}", f"{source}-2", f"{source}10", f"team/race-{n}"])
    if kind == "ordinary":
        return ordinary, kind
    if kind == "decorated":
        return rng.choice([f"{ordinary}/", f"/{ordinary}", f"{ordinary}//", f"/{ordinary}/"]), kind
    if kind == "hostile-root":
        return rng.choice(HOSTILE_ROOTS), kind
    if kind == "around-source":
        parent = source.rsplit("/", 1)[0] if "/" in source else source
        return rng.choice([source, f"{source}/", f"{source}/sub", f"/{source}/upload", parent]), kind
    return rng.choice([f"team//race-{n}", f"uploads//{ordinary}", f"team/./race-{n}", f"team/../race-{n}"]), kind


def random_case(seed: int, number: int, child_share: float = 0.0) -> Case:
    rng = random.Random(seed * 100_003 + number)
    source = rng.choice(SOURCE_PREFIXES)
    command = _choose(rng, COMMANDS)
    placement = _choose(rng, PLACEMENTS)
    if command.startswith("increment") and placement == "training-bucket (-L)":
        placement = "same-bucket"  # increment has no -L; the training bucket is then named as the upload bucket
    raw, kind = _target_raw(rng, source, number)
    return Case(
        number=number,
        seed=seed,
        command=command,
        placement=placement,
        source_prefix=source,
        target_raw=raw,
        target_kind=kind,
        reward=rng.choices(["default", "model-root", "under-target", "beside-target", "bucket-root"], weights=[3, 1, 3, 1, 1])[0],
        metrics=rng.choices(["default", "under-target", "beside-target", "target-metrics"], weights=[3, 3, 1, 1])[0],
        custom=rng.choices(["default", "under-target"], weights=[3, 1])[0],
        previous_upload=rng.random() < 0.3,
        endpoint_spelling=rng.choice(["localhost", "trailing slash"]) if placement == "same-bucket-other-endpoint-spelling" else "",
        child=rng.random() < child_share,
    )


# ---------------------------------------------------------------------------- what the rules say


def _expand(raw: str) -> str:
    """The env file's expansion of an undefined variable: nothing (as in the shell)."""
    return re.sub(r"\$\{?UNDEFINED\}?", "", raw)


def _bump(prefix: str) -> str:
    """`name-7` -> `name-8`, none -> `name-1` (the increment's documented rule, '-' delimiter)."""
    match = re.match(r"^(.*-)(\d+)$", prefix)
    if not match:
        return f"{prefix}-1"
    head, digits = match.groups()
    return f"{head}{int(digits) + 1:0{len(digits)}d}"


def normal(prefix: str) -> str:
    """How a path-based S3 server files a key: empty segments dropped (SeaweedFS does this)."""
    return "/".join(part for part in prefix.split("/") if part)


def has_bad_segment(prefix: str) -> bool:
    return any(part in ("", ".", "..") for part in prefix.split("/"))


@dataclass
class Layout:
    """The case made concrete: settings, the effective target, the inputs, what to seed."""

    case: Case
    target_storage: Storage
    target_bucket: str
    target: str  # the effective target prefix ('' = the bucket root)
    settings: dict[str, str]  # DR_* lines of the env files
    inputs: list[tuple[str, bool]]  # (key or folder, is a folder) in the source bucket on server a
    seeds: dict[tuple[str, str, str], bytes] = field(default_factory=dict)  # (server, bucket, key) -> body
    reward_source: str = ""  # the key the upload reads the reward function from
    metrics_folder: str = ""
    same_storage: bool = False  # the target is the source's bucket, however it is reached


def layout(world: World, case: Case) -> Layout:
    a, b = world.a, world.b
    source_bucket = world.source_bucket
    upload = {"endpoint": a.endpoint_url, "profile": a.aws_profile, "bucket": source_bucket}
    target_storage, target_bucket = a, source_bucket
    if case.placement == "other-bucket":
        upload["bucket"] = target_bucket = world.other_bucket
    elif case.placement == "other-server":
        upload = {"endpoint": b.endpoint_url, "profile": b.aws_profile, "bucket": world.remote_bucket}
        target_storage, target_bucket = b, world.remote_bucket
    elif case.placement == "same-bucket-other-endpoint-spelling":
        upload["endpoint"] = a.other_spellings[0 if case.endpoint_spelling == "localhost" else 1]
    elif case.placement == "same-bucket-other-profile-name":
        upload["profile"] = a.alias_profile
    elif case.placement == "training-bucket (-L)":
        upload["bucket"] = world.other_bucket  # -L ignores it: the target is the training bucket

    expanded = _expand(case.target_raw).strip("/")
    # The increment bumps the prefix without its slashes ('/race-7/' -> 'race-8'); never the bucket root.
    target = _bump(expanded) if case.command.startswith("increment") and expanded else expanded
    base = "/".join(p for p in target.split("/") if p not in ("", ".", "..")) or "t"  # where inputs and strays go
    source = case.source_prefix
    settings = {
        "DR_LOCAL_S3_ENDPOINT_URL": a.endpoint_url,
        "DR_LOCAL_S3_PROFILE": a.aws_profile,
        "DR_LOCAL_S3_BUCKET": source_bucket,
        "DR_UPLOAD_S3_ENDPOINT_URL": upload["endpoint"],
        "DR_UPLOAD_S3_PROFILE": upload["profile"],
        "DR_UPLOAD_S3_BUCKET": upload["bucket"],
        "DR_LOCAL_S3_MODEL_PREFIX": source,
        "DR_UPLOAD_S3_PREFIX": case.target_raw,
    }
    out = Layout(case, target_storage, target_bucket, target, settings, inputs=[(source, True)])

    reward = {
        "default": "custom_files/reward_function.py",
        "model-root": "custom_files/reward_function.py",
        "under-target": f"{base}/custom/reward_function.py",
        "beside-target": f"{base}-inputs/reward_function.py",
        "bucket-root": "reward_function.py",
    }[case.reward]
    if case.reward != "default":
        settings["DR_LOCAL_S3_REWARD_KEY"] = reward
    out.reward_source = f"{source}/reward_function.py" if case.reward == "model-root" else reward
    out.inputs.append((reward, False))
    metrics = {
        "default": f"{source}/metrics",
        "under-target": f"{base}/metrics-in",
        "beside-target": f"{base}-metrics",
        "target-metrics": f"{base}/metrics",
    }[case.metrics]
    if case.metrics != "default":
        settings["DR_LOCAL_S3_METRICS_PREFIX"] = metrics
    out.metrics_folder = metrics
    out.inputs.append((metrics, True))
    custom = "custom_files" if case.custom == "default" else f"{base}/custom-files"
    if case.custom != "default":
        settings["DR_LOCAL_S3_CUSTOM_FILES_PREFIX"] = custom
    out.inputs.append((custom, True))
    out.same_storage = target_storage is a and target_bucket == source_bucket
    if case.placement == "training-bucket (-L)":
        out.same_storage = True

    # Strays in every bucket: the root, siblings, the object named like the prefix, the parent.
    for storage, bucket in world.buckets():
        for key in ("stray-root.txt", f"{base}-2/keep.txt", f"{base}10/keep.txt", f"{base}.bak/keep.txt", base, f"{source}-2/keep.txt"):
            out.seeds[(storage.name, bucket, key)] = f"stray {key}".encode()
        if "/" in base:
            out.seeds[(storage.name, bucket, f"{base.rsplit('/', 1)[0]}/other.txt")] = b"a sibling in the parent folder"
    # Inside the target (a wipe may delete these), and an older upload.
    inside = {f"{base}/old/stale.txt": b"stale", f"{base}/model/model_999.pb": b"not part of the upload"}
    if case.previous_upload:
        inside[f"{base}/model/deepracer_checkpoints.json"] = b'{"last_checkpoint": {"name": "9_Step-1.ckpt"}}'
        inside[f"{base}/reward_function.py"] = b"def reward_function(params):\n    return 0.5\n"
    for key, body in inside.items():
        out.seeds[(target_storage.name, target_bucket, key)] = body
    custom_key = f"{custom}/notes.txt"
    out.seeds[("a", source_bucket, custom_key)] = b"a custom file the simulation reads"
    return out


@dataclass
class Seeded:
    model: Any
    metrics_keys: list[str]  # relative to the metrics folder


def seed(world: World, plan: Layout) -> Seeded:
    case, client = plan.case, world.a.client
    reward_key = plan.reward_source if plan.case.reward != "model-root" else "custom_files/reward_function.py"
    model = seed_model(
        client,
        world.source_bucket,
        case.source_prefix,
        checkpoints=(1, 2),
        data_size=4 * KIB,
        pb_size=8 * KIB,
        meta_size=2 * KIB,
        simtrace_iterations=1,
        reward_key=reward_key,
        reward_at_root=case.reward == "model-root",
        seed=case.number,
    )
    default_metrics = f"{case.source_prefix}/metrics/"
    metrics = [key[len(default_metrics) :] for key in model.objects if key.startswith(default_metrics)]
    if plan.metrics_folder != case.source_prefix + "/metrics":
        for name in metrics:
            client.copy_object(Bucket=world.source_bucket, Key=f"{plan.metrics_folder}/{name}", CopySource={"Bucket": world.source_bucket, "Key": default_metrics + name})
    by_name = {storage.name: storage for storage, _ in world.buckets()}
    for (server, bucket, key), body in plan.seeds.items():
        if (server, bucket) == ("a", world.source_bucket) and key in model.objects:
            continue  # the target is the source's own folder: the model stays as trained
        by_name[server].client.put_object(Bucket=bucket, Key=key, Body=body)
    return Seeded(model, metrics)


# ---------------------------------------------------------------------------- the expectation


@dataclass
class Expectation:
    refuse: set[str]  # reasons that must refuse the case (empty: it must complete)
    layout: set[str]  # relative keys the target holds after a completed run


def manifest_keys(case: Case, seeded: Seeded) -> set[str]:
    model = seeded.model
    checkpoint = model.best_checkpoint if "--best" in case.command else model.last_checkpoint
    return {
        *(f"model/{checkpoint.name}.{suffix}" for suffix in ("data-00000-of-00001", "index", "meta")),
        f"model/model_{checkpoint.number}.pb",
        "model/model_metadata.json",
        "ip/hyperparameters.json",
        "reward_function.py",
        "training_params.yaml",
        *(f"metrics/{name}" for name in seeded.metrics_keys),
        *MARKERS,
    }


def is_input(plan: Layout, server: str, bucket: str, key: str) -> bool:
    if server != "a" or bucket != plan.settings["DR_LOCAL_S3_BUCKET"]:
        return False
    for where, folder in plan.inputs:
        where = normal(where)
        if (folder and key.startswith(where + "/")) or key == where:
            return True
    return False


def inside_target(plan: Layout, server: str, bucket: str, key: str) -> bool:
    return bool(plan.target) and (server, bucket) == (plan.target_storage.name, plan.target_bucket) and key.startswith(plan.target + "/")


def expect(plan: Layout, seeded: Seeded, before: dict[tuple[str, str, str], tuple[str, int, float]]) -> Expectation:
    case, target, source = plan.case, plan.target, plan.case.source_prefix
    upload = case.command.startswith("upload")
    refuse: set[str] = set()
    if not target:
        refuse.add("root")
        return Expectation(refuse, set())
    if has_bad_segment(target):
        refuse.add("segment")
        return Expectation(refuse, set())
    if plan.same_storage and upload:
        nested = target == source or target.startswith(source + "/") or source.startswith(target + "/")
        if nested:
            refuse.add("source")
    wanted = manifest_keys(case, seeded) if upload else set()
    strays = [k for (server, bucket, k) in before if inside_target(plan, server, bucket, k) and k[len(target) + 1 :] not in wanted]
    if any(is_input(plan, "a", plan.target_bucket, k) for k in strays) and plan.same_storage:
        refuse.add("input")
    return Expectation(refuse, wanted)


# ---------------------------------------------------------------------------- running it


def write_dr_dir(dr_dir: Path, plan: Layout) -> Path:
    dr_dir.mkdir(parents=True, exist_ok=True)
    system = [k for k in plan.settings if not k.endswith(("MODEL_PREFIX", "S3_PREFIX", "REWARD_KEY", "METRICS_PREFIX", "CUSTOM_FILES_PREFIX"))]
    run = [k for k in plan.settings if k not in system]
    (dr_dir / "system.env").write_text("DR_CLOUD=local\n" + "".join(f"{k}={plan.settings[k]}\n" for k in system))
    (dr_dir / "run.env").write_text("".join(f"{k}={plan.settings[k]}\n" for k in run) + "DR_CAR_NAME=Speedy\n")
    return dr_dir


@dataclass
class Outcome:
    code: int
    error: str  # the one error line ('' on success)
    lines: int  # error lines on stderr (child) or in the message (in process)
    traceback: bool = False


def run_in_process(case: Case, dr_dir: Path) -> Outcome:
    """The real task functions in this process: plan, (no question: -f), apply."""
    from drtasks.errors import DrtasksError
    from drtasks.tasks.upload_tasks import UploadRequest, run_increment, run_upload

    saved = {k: v for k, v in os.environ.items() if k.startswith("DR_")}
    for name in saved:
        del os.environ[name]
    os.environ["DR_DIR"] = str(dr_dir)
    try:
        with redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()):
            if case.command.startswith("increment"):
                run_increment(None, wipe=True, force=True)
            else:
                run_upload(UploadRequest(force=True, wipe=True, best="--best" in case.command, local=case.placement.endswith("(-L)")))
        return Outcome(0, "", 0)
    except DrtasksError as error:
        return Outcome(error.code or 1, error.message, len(error.message.splitlines()))
    finally:
        del os.environ["DR_DIR"]
        os.environ.update(saved)


def run_child(case: Case, dr_dir: Path) -> Outcome:
    from tests.cli import run

    if case.command.startswith("increment"):
        args = ("drtasks", "increment", "-w", "-f")
    else:
        args = ("dr-upload-model", "-wf" + ("b" if "--best" in case.command else "") + ("L" if case.placement.endswith("(-L)") else ""))
    result = run(*args, dr_dir=dr_dir, timeout=180)
    errors = [line for line in result.err.splitlines() if re.match(r"^(drtasks|dr-[a-z-]+): ", line)]
    return Outcome(result.code, errors[-1] if errors else result.err.strip()[-300:], len(errors), "Traceback" in result.text)


def snapshot(world: World) -> dict[tuple[str, str, str], tuple[str, int, float]]:
    found = {}
    for storage, bucket in world.buckets():
        for page in storage.client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for item in page.get("Contents", []):
                found[(storage.name, bucket, item["Key"])] = (item["ETag"], int(item["Size"]), item["LastModified"].timestamp())
    return found


@dataclass
class Verdict:
    case: Case
    outcome: Outcome
    expectation: Expectation
    violations: list[str]  # safety: anything here is data lost or written where it must not be
    mismatches: list[str]  # behaviour: refused when it should complete, or the other way round

    @property
    def held(self) -> bool:
        return not self.violations and not self.mismatches

    @property
    def refused(self) -> bool:
        return self.outcome.code != 0

    def report(self) -> str:
        lines = [self.case.describe(), f"  exit {self.outcome.code}: {self.outcome.error or 'completed'}"]
        lines += [f"  VIOLATION {v}" for v in self.violations] + [f"  MISMATCH {m}" for m in self.mismatches]
        return "\n".join(lines)


def check(plan: Layout, seeded: Seeded, before: dict, after: dict, outcome: Outcome, expectation: Expectation) -> Verdict:
    violations: list[str] = []
    mismatches: list[str] = []
    for where, state in before.items():
        server, bucket, key = where
        now = after.get(where)
        if is_input(plan, server, bucket, key) and (now is None or now[0] != state[0]):
            violations.append(f"input {'deleted' if now is None else 'changed'}: s3://{bucket}/{key} (server {server})")
        elif not inside_target(plan, server, bucket, key) and now != state:
            violations.append(f"outside the target, {'deleted' if now is None else 'rewritten'}: s3://{bucket}/{key} (server {server})")
    for where in sorted(set(after) - set(before)):
        if not inside_target(plan, *where):
            violations.append(f"written outside the target: s3://{where[1]}/{where[2]} (server {where[0]})")
    for key, size in seeded.model.objects.items():
        if ("a", plan.settings["DR_LOCAL_S3_BUCKET"], key) not in after:
            violations.append(f"source object gone: {key}")

    reasons = expectation.refuse
    if outcome.code != 0:
        if after != before:
            changed = sorted({w[2] for w in set(before) ^ set(after)} | {w[2] for w in before if w in after and before[w] != after[w]})
            violations.append(f"refused, but changed {changed[:4]}")
        if outcome.traceback or outcome.lines != 1:
            mismatches.append(f"the error is not one line ({outcome.lines} lines{', a traceback' if outcome.traceback else ''})")
        if not reasons:
            mismatches.append("refused a case the rules allow")
        elif not any(word in outcome.error for reason in reasons for word in REASONS[reason]):
            mismatches.append(f"the error does not name why (expected one of {sorted(reasons)})")
    else:
        if expectation.refuse:
            mismatches.append(f"completed a case the rules refuse ({', '.join(sorted(expectation.refuse))})")
        held = {w[2][len(plan.target) + 1 :] for w in after if inside_target(plan, *w)}
        if not expectation.refuse and held != expectation.layout:
            missing, extra = sorted(expectation.layout - held), sorted(held - expectation.layout)
            mismatches.append(f"the target holds the wrong layout (missing {missing[:3]}, extra {extra[:3]})")
    return Verdict(plan.case, outcome, expectation, violations, mismatches)


def run_case(world: World, case: Case, work: Path, runner: Callable[[Case, Path], Outcome] | None = None) -> Verdict:
    """Lay out, seed, run the real command, and judge."""
    world.empty()
    plan = layout(world, case)
    seeded = seed(world, plan)
    before = snapshot(world)
    expectation = expect(plan, seeded, before)
    dr_dir = write_dr_dir(work / f"case-{case.seed}-{case.number}", plan)
    outcome = (runner or (run_child if case.child else run_in_process))(case, dr_dir)
    return check(plan, seeded, before, snapshot(world), outcome, expectation)
