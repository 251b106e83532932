"""Bad input, tried as a user would, through the real commands on a real S3 (SeaweedFS).

Every case must end in one line on stderr naming what was wrong and where, a non-zero exit, no
traceback, and nothing written or deleted: stray objects seeded in both buckets (at the bucket root,
in a sibling prefix, under the target prefix) survive, the source model is unchanged, and so are
the files in DR_DIR.

``BAD_INPUTS`` is the catalogue. The fault campaign reuses it as its list of bad inputs tried:
``from tests.test_bad_input import BAD_INPUTS, BadInput``; each case says how to set it up
(``system``/``run`` lines, ``files``, ``env``, ``source`` objects, ``fifo``) and what to run.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping

import pytest

from drtasks.sample_model import seed_model
from tests.cli import Result, run
from tests.conftest import MODEL_PREFIX
from tests.drfc import UPLOAD_PREFIX, write_env_files
from tests.test_import_tasks import droa_dir, droa_env, site  # noqa: F401 - DRoA fixtures (moto and the transit bucket: tests.droa_world)

CHECKPOINTS_JSON_LIST = b"[]"
CHECKPOINTS_JSON_NUMBER_NAME = b'{"last_checkpoint": {"name": 19}, "best_checkpoint": {"name": 19}}'
NOT_JSON = b"{this is not json"
NO_ACTION_SPACE = b'{"sensor": ["FRONT_FACING_CAMERA"], "training_algorithm": "clipped_ppo"}'
BAD_ACTION = b'{"action_space": [{"steering_angle": 0}], "training_algorithm": "clipped_ppo"}'


def nested_profile(levels: int) -> str:
    """A profile nested ``levels`` deep in flow style: a few bytes per level."""
    return "env: " + "{a: " * levels + "1" + "}" * levels + "\n"


ALIAS_BOMB = (
    'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
    "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
    "f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\ng: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n"
    "h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\ni: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]\n"
    "checkpoint: *i\n"
)


@dataclass(frozen=True)
class BadInput:
    """One bad input and the command that meets it."""

    id: str
    args: tuple[str, ...]  # console script and its arguments: ("drtasks", "upload", "-f")
    expect: tuple[str, ...]  # what the one error line must name
    system: str = ""  # lines appended to system.env (a later line wins)
    run: str = ""  # lines appended to run.env
    files: Mapping[str, str] = field(default_factory=dict)  # more files below DR_DIR
    env: Mapping[str, str] = field(default_factory=dict)  # process environment ("{dr_dir}" is replaced)
    source: Mapping[str, bytes] = field(default_factory=dict)  # source model objects replaced ("{last}": its checkpoint name)
    fifo: str | None = None  # a path below DR_DIR made a FIFO


ROOT = "an empty prefix means the whole bucket"
BAD_INPUTS: list[BadInput] = [
    # -- 1. never the bucket root ---------------------------------------------------------------
    BadInput("upload-wipe-prefix-undefined-variable", ("drtasks", "upload", "-w", "-f"), ("run.env:5", "DR_UPLOAD_S3_PREFIX", "$DR_UNDEFINED", "not defined"), run="DR_UPLOAD_S3_PREFIX=$DR_UNDEFINED/\n"),
    BadInput("upload-wipe-prefix-braced-undefined", ("drtasks", "upload", "-w", "-f"), ("run.env:5", "$DR_UNDEFINED"), run="DR_UPLOAD_S3_PREFIX=${DR_UNDEFINED}\n"),
    BadInput("upload-wipe-prefix-slash", ("drtasks", "upload", "-w", "-f"), ("DR_UPLOAD_S3_PREFIX is '/'", "run.env:5", ROOT), run="DR_UPLOAD_S3_PREFIX=/\n"),
    BadInput("upload-wipe-prefix-slashes", ("drtasks", "upload", "-w", "-f"), ("DR_UPLOAD_S3_PREFIX is '//'", "run.env:5", ROOT), run="DR_UPLOAD_S3_PREFIX=//\n"),
    BadInput("upload-wipe-prefix-empty", ("drtasks", "upload", "-w", "-f"), ("DR_UPLOAD_S3_PREFIX is ''", "run.env:5", ROOT), run="DR_UPLOAD_S3_PREFIX=\n"),
    BadInput("upload-wipe-prefix-empty-from-empty-variable", ("drtasks", "upload", "-w", "-f"), ("DR_UPLOAD_S3_PREFIX is '/'", "run.env:5", ROOT), run="DR_UPLOAD_S3_PREFIX=$DR_EMPTY/\n", env={"DR_EMPTY": ""}),
    BadInput("upload-wipe-profile-prefix-slash", ("drtasks", "upload", "-w", "-f", "--profile", "root"), ("DR_UPLOAD_S3_PREFIX", "profile", "root.yaml:2", ROOT), files={"profiles/root.yaml": 'upload:\n  prefix: "/"\n'}),
    BadInput("upload-wipe-profile-env-prefix-empty", ("drtasks", "upload", "-w", "-f", "--profile", "root"), ("DR_UPLOAD_S3_PREFIX", "root.yaml:2", ROOT), files={"profiles/root.yaml": 'env:\n  DR_UPLOAD_S3_PREFIX: ""\n'}),
    BadInput("upload-wipe-environment-prefix-slash", ("drtasks", "upload", "-w", "-f"), ("DR_UPLOAD_S3_PREFIX", "env ($DR_UPLOAD_S3_PREFIX)", ROOT), env={"DR_UPLOAD_S3_PREFIX": "/"}),
    BadInput("upload-wipe-flag-prefix-slash", ("drtasks", "upload", "-w", "-f", "--prefix", "/"), ("--prefix", "bucket root")),
    BadInput("upload-wipe-flag-prefix-empty", ("drtasks", "upload", "-w", "-f", "-P", ""), ("--prefix", "bucket root")),
    BadInput("dr-upload-model-wipe-prefix-slash", ("dr-upload-model", "-wf"), ("DR_UPLOAD_S3_PREFIX is '/'", "run.env:5"), run="DR_UPLOAD_S3_PREFIX=/\n"),
    BadInput("dr-upload-model-flag-prefix-empty", ("dr-upload-model", "-wf", "-p", ""), ("--prefix", "bucket root")),
    BadInput("upload-local-wipe-prefix-slash", ("drtasks", "upload", "-L", "-w", "-f"), ("DR_UPLOAD_S3_PREFIX is '/'", ROOT), run="DR_UPLOAD_S3_PREFIX=/\n"),
    BadInput("upload-source-prefix-slash", ("drtasks", "upload", "-f"), ("DR_LOCAL_S3_MODEL_PREFIX is '/'", "run.env:5", ROOT), run="DR_LOCAL_S3_MODEL_PREFIX=/\n"),
    BadInput("upload-source-prefix-undefined", ("drtasks", "upload", "-f"), ("DR_LOCAL_S3_MODEL_PREFIX", "$DR_UNDEFINED"), run="DR_LOCAL_S3_MODEL_PREFIX=$DR_UNDEFINED\n"),
    BadInput("upload-metrics-prefix-slash", ("drtasks", "upload", "-f"), ("DR_LOCAL_S3_METRICS_PREFIX is '/'", ROOT), run="DR_LOCAL_S3_METRICS_PREFIX=/\n"),
    BadInput("upload-reward-key-undefined", ("drtasks", "upload", "-f"), ("DR_LOCAL_S3_REWARD_KEY", "$DR_UNDEFINED"), run="DR_LOCAL_S3_REWARD_KEY=$DR_UNDEFINED/reward_function.py\n"),
    BadInput("upload-bucket-undefined", ("drtasks", "upload", "-f"), ("system.env:8", "DR_UPLOAD_S3_BUCKET", "$DR_UNDEFINED"), system="DR_UPLOAD_S3_BUCKET=$DR_UNDEFINED\n"),
    BadInput("increment-wipe-prefix-undefined", ("drtasks", "increment", "-w", "-f"), ("DR_UPLOAD_S3_PREFIX", "$DR_UNDEFINED"), run="DR_UPLOAD_S3_PREFIX=$DR_UNDEFINED/\n"),
    BadInput("dr-increment-wipe-prefix-slash", ("dr-increment-upload-model", "-w", "-f"), ("DR_UPLOAD_S3_PREFIX is '/'",), run="DR_UPLOAD_S3_PREFIX=/\n"),
    BadInput("increment-wipe-without-upload-bucket", ("drtasks", "increment", "--profile", "only", "-w", "-f"), ("DR_UPLOAD_S3_BUCKET is not set",), run="DR_UPLOAD_S3_BUCKET=\n", files={"profiles/only.yaml": "upload:\n  prefix: only-prefix-3\n"}),
    BadInput("car-zip-prefix-slash", ("drtasks", "car-zip", "--from", "s3", "-f"), ("DR_UPLOAD_S3_PREFIX is '/'", ROOT), run="DR_UPLOAD_S3_PREFIX=/\n"),
    BadInput("car-zip-prefix-undefined", ("drtasks", "car-zip", "--from", "s3", "-f"), ("DR_UPLOAD_S3_PREFIX", "$DR_UNDEFINED"), run="DR_UPLOAD_S3_PREFIX=$DR_UNDEFINED\n"),
    BadInput("dr-upload-car-zip-prefix-slash", ("dr-upload-car-zip", "-f"), ("DR_UPLOAD_S3_PREFIX is '/'",), run="DR_UPLOAD_S3_PREFIX=/\nDR_CAR_ZIP_SOURCE=s3\n"),
    # -- 6. bounded resources ------------------------------------------------------------------
    BadInput("profile-yaml-alias-bomb", ("drtasks", "upload", "-f", "--profile", "bomb"), ("bomb.yaml:2", "aliases"), files={"profiles/bomb.yaml": ALIAS_BOMB}),
    BadInput("profile-nested-10000-levels", ("drtasks", "upload", "-f", "--profile", "deep"), ("deep.yaml:1", "nested more than"), files={"profiles/deep.yaml": nested_profile(10_000)}),
    BadInput("profile-larger-than-1-mib", ("drtasks", "upload", "-f", "--profile", "huge"), ("huge.yaml", "at most 1,048,576"), files={"profiles/huge.yaml": "description: " + "x" * (1024 * 1024) + "\n"}),
    BadInput("profile-wrong-type-huge-value", ("drtasks", "upload", "-f", "--profile", "list"), ("list.yaml:1", "checkpoint"), files={"profiles/list.yaml": "checkpoint: [" + ", ".join(["123456789"] * 20000) + "]\n"}),
    BadInput("env-file-fifo", ("drtasks", "upload", "-f"), ("fifo.env", "FIFO"), env={"DR_CONFIG": "{dr_dir}/fifo.env"}, fifo="fifo.env"),
    BadInput("env-file-device", ("drtasks", "upload", "-f"), ("/dev/zero", "device"), env={"DR_CONFIG": "/dev/zero"}),
    BadInput("env-file-directory", ("drtasks", "upload", "-f"), ("profiles", "directory"), env={"DR_CONFIG": "{dr_dir}/profiles"}),
    BadInput("profile-fifo", ("drtasks", "upload", "-f", "--profile", "pipe"), ("pipe.yaml", "FIFO"), fifo="profiles/pipe.yaml"),
    BadInput("env-file-huge-garbage-line", ("drtasks", "upload", "-f"), ("run.env:5", "not a KEY=VALUE line"), run="x" * 200_000 + "\n"),
    BadInput("timeout-not-a-number", ("drtasks", "upload", "-f"), ("DRTASKS_TIMEOUT",), env={"DRTASKS_TIMEOUT": "soon"}),
    # -- 9. one line, never a traceback ------------------------------------------------------------
    BadInput("car-zip-output-in-proc", ("drtasks", "car-zip", "--from", "s3", "-f", "-o", "/proc/nope/x.tar.gz"), ("--output /proc/nope/x.tar.gz",)),
    BadInput("car-zip-output-below-a-file", ("drtasks", "car-zip", "--from", "s3", "-f", "-o", "{dr_dir}/system.env/x.tar.gz"), ("--output", "is not a folder")),
    BadInput("checkpoints-json-empty-list", ("drtasks", "upload", "-f"), ("deepracer_checkpoints.json is a JSON list",), source={"model/deepracer_checkpoints.json": CHECKPOINTS_JSON_LIST}),
    BadInput("checkpoints-json-number-name", ("drtasks", "upload", "-f"), ("last_checkpoint.name is 19", "not a checkpoint name"), source={"model/deepracer_checkpoints.json": CHECKPOINTS_JSON_NUMBER_NAME}),
    BadInput("car-zip-checkpoints-json-empty-list", ("drtasks", "car-zip", "--from", "s3", "-f"), ("is a JSON list",), source={"model/deepracer_checkpoints.json": CHECKPOINTS_JSON_LIST}),
    BadInput("source-endpoint-not-a-url", ("drtasks", "upload", "-f"), ("DR_LOCAL_S3_ENDPOINT_URL is 'not a url'", "system.env:8", "expected an endpoint URL"), system="DR_LOCAL_S3_ENDPOINT_URL=not a url\n"),
    BadInput("source-endpoint-without-scheme", ("drtasks", "upload", "-f"), ("DR_LOCAL_S3_ENDPOINT_URL", "expected an endpoint URL"), system="DR_LOCAL_S3_ENDPOINT_URL=localhost:9000\n"),
    BadInput("upload-endpoint-not-http", ("drtasks", "upload", "-f"), ("DR_UPLOAD_S3_ENDPOINT_URL", "expected an endpoint URL"), env={"DR_UPLOAD_S3_ENDPOINT_URL": "ftp://example.com"}),
    BadInput("endpoint-with-bad-port", ("drtasks", "upload", "-f"), ("DR_LOCAL_S3_ENDPOINT_URL",), system="DR_LOCAL_S3_ENDPOINT_URL=http://localhost:port\n"),
    # -- 10. broken models are refused before anything is written --------------------------------
    BadInput("metadata-not-json", ("drtasks", "upload", "-f"), ("model_metadata.json", "invalid JSON"), source={"model/model_metadata.json": NOT_JSON}),
    BadInput("metadata-without-action-space", ("drtasks", "upload", "-f"), ("model_metadata.json", "no 'action_space'"), source={"model/model_metadata.json": NO_ACTION_SPACE}),
    BadInput("metadata-action-without-speed", ("drtasks", "upload", "-f"), ("action_space[0] needs 'speed'",), source={"model/model_metadata.json": BAD_ACTION}),
    BadInput("car-zip-metadata-not-json", ("drtasks", "car-zip", "--from", "s3", "-f"), ("model_metadata.json", "invalid JSON"), source={"model/model_metadata.json": NOT_JSON}),
    BadInput("zero-byte-frozen-graph", ("drtasks", "upload", "-f"), ("zero-byte", "model/model_19.pb"), source={"model/model_19.pb": b""}),
    BadInput("zero-byte-checkpoint-data", ("drtasks", "upload", "-f"), ("zero-byte", ".data-00000-of-00001"), source={"model/{last}.data-00000-of-00001": b""}),
    BadInput("zero-byte-checkpoint-index", ("drtasks", "upload", "-f"), ("zero-byte", ".index"), source={"model/{last}.index": b""}),
    BadInput("zero-byte-metadata", ("drtasks", "upload", "-f"), ("zero-byte", "model/model_metadata.json"), source={"model/model_metadata.json": b""}),
    BadInput("zero-byte-checkpoint-meta", ("dr-upload-model", "-f"), ("zero-byte", ".meta"), source={"model/{last}.meta": b""}),
    BadInput("car-zip-zero-byte-graph", ("drtasks", "car-zip", "--from", "s3", "-f"), ("model_19.pb", "not a TensorFlow frozen graph"), source={"model/model_19.pb": b""}),
    BadInput("training-param-newline-from-profile", ("drtasks", "upload", "-f", "--profile", "nl"), ("DR_CAR_NAME", "nl.yaml:2", "a newline"), files={"profiles/nl.yaml": 'env:\n  DR_CAR_NAME: "Fast\\nCar"\n'}),
    BadInput("training-param-nul-from-profile", ("drtasks", "upload", "-f", "--profile", "nul"), ("DR_WORLD_NAME", "nul.yaml:2", "a NUL byte"), files={"profiles/nul.yaml": 'env:\n  DR_WORLD_NAME: "reInvent2019\\0track"\n'}),
    BadInput("training-param-carriage-return-from-environment", ("drtasks", "upload", "-f"), ("DR_DISPLAY_NAME", "$DR_DISPLAY_NAME", "a carriage return"), env={"DR_DISPLAY_NAME": "Fast\rCar"}),
    BadInput("upload-prefix-newline-from-profile", ("drtasks", "upload", "-f", "--profile", "nlp"), ("DR_UPLOAD_S3_PREFIX", "control characters"), files={"profiles/nlp.yaml": 'upload:\n  prefix: "race\\nmodel"\n'}),
]


# ---------------------------------------------------------------------------- the runner


STRAYS = ("stray-at-the-root.txt", "another-model/model/model_1.pb", f"{UPLOAD_PREFIX}-2/keep.txt", f"{UPLOAD_PREFIX}/keep-me.txt")


def listing(client: Any, bucket: str) -> dict[str, str]:
    """Every key in ``bucket`` with its ETag."""
    found: dict[str, str] = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            found[item["Key"]] = item["ETag"]
    return found


def files_of(root: Path) -> dict[str, str]:
    """Relative path -> sha256 of every regular file below ``root`` (FIFOs are named, never opened)."""
    found: dict[str, str] = {}
    for path in sorted(root.rglob("*")):
        if path.is_fifo():
            found[str(path.relative_to(root))] = "fifo"
        elif path.is_file():
            found[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def error_lines(result: Result) -> list[str]:
    return [line for line in result.err.splitlines() if line.strip() and not line.startswith("warning: ")]


def assert_clean_refusal(result: Result, expect: tuple[str, ...]) -> None:
    assert result.code != 0, result.text
    assert "Traceback" not in result.text, result.err[-3000:]
    lines = error_lines(result)
    assert len(lines) == 1, result.err[-3000:]
    assert len(lines[0]) <= 1100, lines[0][:200]
    for word in expect:
        assert word in lines[0], lines[0]


@pytest.fixture(scope="module")
def client(s3_server: Any) -> Any:
    return s3_server.client()


@pytest.fixture(scope="module")
def shared_model(client: Any) -> Any:
    """One seeded model for the whole catalogue (each case restores what it replaces), strays beside it."""
    bucket = f"bad-input-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket)
    model = seed_model(client, bucket, MODEL_PREFIX)
    for key in STRAYS:
        client.put_object(Bucket=model.bucket, Key=key, Body=b"must survive")
    return model


@pytest.fixture
def world(tmp_path: Path, s3_server: Any, client: Any, shared_model: Any) -> dict[str, Any]:
    """A DRfC directory over the seeded model, and an upload bucket with strays too."""
    upload_bucket = f"bad-input-up-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=upload_bucket)
    for key in STRAYS:
        client.put_object(Bucket=upload_bucket, Key=key, Body=b"must survive")
    dr_dir = tmp_path / "dr"
    (dr_dir / "profiles").mkdir(parents=True)
    return {"dr_dir": dr_dir, "client": client, "model": shared_model, "upload_bucket": upload_bucket, "s3": s3_server}


def prepare(case: BadInput, world: dict[str, Any]) -> dict[str, str]:
    """Set the case up in ``world``; the process environment the command runs with."""
    dr_dir: Path = world["dr_dir"]
    write_env_files(dr_dir, world["s3"], world["model"], world["upload_bucket"], system=case.system, run=case.run)
    for relative, text in case.files.items():
        (dr_dir / relative).parent.mkdir(parents=True, exist_ok=True)
        (dr_dir / relative).write_text(text)
    if case.fifo:
        os.mkfifo(dr_dir / case.fifo)
    return {name: value.format(dr_dir=dr_dir) for name, value in case.env.items()}


@contextmanager
def replaced_source_objects(case: BadInput, world: dict[str, Any]) -> Iterator[None]:
    """The case's source objects in place of the model's own for the duration."""
    client, model = world["client"], world["model"]
    keys = {model.key(relative.format(last=model.last_checkpoint.name)): body for relative, body in case.source.items()}
    originals = {key: client.get_object(Bucket=model.bucket, Key=key)["Body"].read() for key in keys}
    try:
        for key, body in keys.items():
            client.put_object(Bucket=model.bucket, Key=key, Body=body)
        yield
    finally:
        for key, body in originals.items():
            client.put_object(Bucket=model.bucket, Key=key, Body=body)


@pytest.mark.parametrize("case", BAD_INPUTS, ids=[case.id for case in BAD_INPUTS])
def test_bad_input_is_one_line_and_nothing_is_written(case: BadInput, world: dict[str, Any]) -> None:
    env = prepare(case, world)
    client, model = world["client"], world["model"]
    with replaced_source_objects(case, world):
        before = (listing(client, world["upload_bucket"]), listing(client, model.bucket), files_of(world["dr_dir"]))

        args = tuple(arg.format(dr_dir=world["dr_dir"]) for arg in case.args[1:])
        result = run(case.args[0], *args, dr_dir=world["dr_dir"], env=env, timeout=90)

        assert_clean_refusal(result, case.expect)
        after = (listing(client, world["upload_bucket"]), listing(client, model.bucket), files_of(world["dr_dir"]))
        assert after == before


def test_the_catalogue_names_each_case_once() -> None:
    ids = [case.id for case in BAD_INPUTS]
    assert len(ids) == len(set(ids))


def test_profiles_lists_hostile_profiles_as_invalid_without_hanging(tmp_path: Path) -> None:
    """`inv profiles` reads every profile: a bomb, a deep one and a FIFO are rows, not a hang."""
    import json
    import time

    profiles = tmp_path / "profiles"
    profiles.mkdir()
    (profiles / "bomb.yaml").write_text(ALIAS_BOMB)
    (profiles / "deep.yaml").write_text(nested_profile(10_000))
    os.mkfifo(profiles / "pipe.yaml")
    (profiles / "fine.yaml").write_text("description: a good one\n")

    start = time.monotonic()
    result = run("drtasks", "profiles", "--json", dr_dir=tmp_path, timeout=60)
    assert time.monotonic() - start < 15
    assert result.code == 0, result.err
    rows = {row["name"]: row for row in json.loads(result.out)}
    assert "aliases (*name) are not allowed" in rows["bomb"]["description"]
    assert "nested more than 16 levels deep" in rows["deep"]["description"]
    assert "is a FIFO, not a regular file" in rows["pipe"]["description"]
    assert rows["fine"]["description"] == "a good one"


# ---------------------------------------------------------------------------- DRoA import of a broken model



@pytest.mark.parametrize(
    ("objects", "expect"),
    [
        ({"model/model_metadata.json": NOT_JSON}, ("model_metadata.json", "invalid JSON")),
        ({"model/model_metadata.json": BAD_ACTION}, ("action_space[0] needs 'speed'",)),
        ({"model/model_19.pb": b""}, ("zero-byte", "model/model_19.pb")),
        ({"model/{last}.index": b""}, ("zero-byte", ".index")),
    ],
    ids=["metadata-not-json", "metadata-bad-action", "zero-byte-graph", "zero-byte-index"],
)
def test_droa_import_refuses_a_broken_model_before_writing(
    objects: dict[str, bytes], expect: tuple[str, ...], droa_dir: Path, site: Any, transit: Any,  # noqa: F811
    moto_url: str, tmp_path: Path, s3_server: Any, model: Any,
) -> None:
    client = s3_server.client()
    for relative, body in objects.items():
        client.put_object(Bucket=model.bucket, Key=model.key(relative.format(last=model.last_checkpoint.name)), Body=body)
    result = run("drtasks", "import-model", "--target", "droa", "-f", dr_dir=droa_dir, env=droa_env(moto_url, tmp_path))
    assert_clean_refusal(result, expect)
    assert transit.objects() == {}
    assert site.models == {}


def test_droa_import_refuses_a_control_character_in_training_params(
    droa_dir: Path, site: Any, transit: Any, moto_url: str, tmp_path: Path,  # noqa: F811
) -> None:
    env = {**droa_env(moto_url, tmp_path), "DR_CAR_NAME": "Fast\nCar"}
    result = run("drtasks", "import-model", "--target", "droa", "-f", dr_dir=droa_dir, env=env)
    assert_clean_refusal(result, ("DR_CAR_NAME (env ($DR_CAR_NAME))", "a newline"))
    assert transit.objects() == {}
