"""Importing into DRoA from a DRfC model folder of this machine (--model-dir), and DRfC's droa-import-model.

The folder has the training bucket's layout (or the pre-assembled one DRfC's --model-dir takes); it
is checked with the same rules as a model in S3, planned as files of this machine and uploaded
put-only by the standard executor, every PUT proven by its Content-MD5 and answer. Servers as in
tests/test_droa_lifecycle.py; the real camera model where DRoA must reach READY.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from drtasks.sample_model import model_metadata, seed_model
from tests.cli import Result, drtasks, run
from tests.droa_world import PASSWORD, USERNAME, Transit, cognito_env
from tests.drfc import write_env_files
from tests.fakes.droa_api import FakeDroa
from tests.fakes.s3_put_only import RACER_ALLOWED


@pytest.fixture
def site(droa_site: FakeDroa) -> FakeDroa:
    return droa_site


@pytest.fixture
def env(moto_url: str, tmp_path: Path) -> dict[str, str]:
    return {**cognito_env(moto_url, tmp_path / "cache"), "DR_DROA_PASSWORD": PASSWORD}


def droa_lines(site: FakeDroa, transit: Transit) -> str:
    return (f"DR_DROA_URL={site.url}\nDR_DROA_USERNAME={USERNAME}\nDR_DROA_S3_ENDPOINT_URL={transit.proxy.url}\n"
            "DR_IMPORT_POLL_SECONDS=0.05\nDR_IMPORT_TARGET=droa\n")


@pytest.fixture
def dr_dir(tmp_path: Path, site: FakeDroa, transit: Transit) -> Path:
    folder = tmp_path / "drfc"
    folder.mkdir()
    (folder / "system.env").write_text(droa_lines(site, transit))
    (folder / "run.env").write_text("DR_WORLD_NAME=2022_april_open_cw\n")
    return folder


def download_prefix(client: Any, bucket: str, prefix: str, folder: Path) -> Path:
    """A model prefix as DRfC keeps it on disk: every object below it, by its relative path."""
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/"):
        for item in page.get("Contents", []):
            path = folder / item["Key"][len(prefix) + 1:]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read())
    return folder


@pytest.fixture
def sample_folder(tmp_path: Path, s3_server: Any) -> Path:
    """A trained sample model's folder (graphs that match the metadata; checkpoints of random bytes)."""
    bucket = s3_server.new_bucket()
    seed_model(s3_server.client(), bucket, "rl-sample", reward_at_root=True)
    folder = download_prefix(s3_server.client(), bucket, "rl-sample", tmp_path / "rl-sample")
    (folder / "training_params.yaml").unlink()  # the DR_* settings write it
    return folder


def the_upload(transit: Transit) -> tuple[str, dict[str, bytes]]:
    uploaded = transit.objects()
    prefixes = {key.split("/")[2] for key in uploaded}
    assert len(prefixes) == 1, sorted(uploaded)
    prefix = f"uploads/models/{prefixes.pop()}"
    return prefix, {key[len(prefix) + 1:]: body for key, body in uploaded.items()}


def refused(result: Result, *words: str) -> None:
    assert result.code != 0, result.text
    assert "Traceback" not in result.text and len(result.err.strip().splitlines()) == 1, result.err
    for word in words:
        assert word in result.err, result.err


def test_a_real_model_folder_is_imported_and_ready(
    tmp_path: Path, s3_server: Any, real_models: Any, site: FakeDroa, transit: Transit, dr_dir: Path, env: dict[str, str]
) -> None:
    bucket = s3_server.new_bucket()
    model = real_models.seed(s3_server.client(), bucket, "rl-camera", reward_at_root=True)
    folder = download_prefix(s3_server.client(), bucket, "rl-camera", tmp_path / "camera-run-3")

    result = drtasks("import-model", "--model-dir", str(folder), "--wait", "-f", dr_dir=dr_dir, env=env)

    assert result.code == 0, result.text
    assert "READY" in result.out
    [imported] = site.models.values()
    assert (imported.name, imported.status) == ("camera-run-3", "READY")  # named after the folder, as DRfC does
    _, files = the_upload(transit)
    last = model.checkpoints[model.last].name
    for name in (f"model/{last}.data-00000-of-00001", f"model/{last}.index", f"model/model_{model.last}.pb", "reward_function.py"):
        assert files[name] == (folder / name).read_bytes(), name
    assert files["ip/hyperparameters.json"] == (folder / "ip" / "hyperparameters.json").read_bytes()
    assert any(key.startswith("metrics/training/training-") for key in files)
    # Put-only: only writes reached the bucket, each proven by its answer.
    assert {seen.operation for seen in transit.proxy.racer_requests()} <= RACER_ALLOWED
    assert "Verified" in result.text


def test_a_drfc_pre_assembled_folder_gets_hyperparameters_where_droa_reads_them(
    sample_folder: Path, site: FakeDroa, transit: Transit, dr_dir: Path, env: dict[str, str]
) -> None:
    # DRfC's droa-import-model --model-dir checks for hyperparameters.json at the root; DRoA reads ip/.
    (sample_folder / "hyperparameters.json").write_bytes((sample_folder / "ip" / "hyperparameters.json").read_bytes())
    (sample_folder / "ip" / "hyperparameters.json").unlink()
    (sample_folder / "model_metadata.json").write_bytes((sample_folder / "model" / "model_metadata.json").read_bytes())
    (sample_folder / "model" / "model_metadata.json").unlink()

    result = drtasks("import-model", "--model-dir", str(sample_folder), "--name", "assembled", "--json", "-d", dr_dir=dr_dir, env=env)

    assert result.code == 0, result.text
    plan = json.loads(result.out)["steps"][0]
    keys = {item["key"].split("/", 3)[3]: item for item in plan["items"]}  # below uploads/models/<uuid>/
    assert keys["ip/hyperparameters.json"]["source"] == str(sample_folder.resolve() / "hyperparameters.json")
    assert keys["model/model_metadata.json"]["source"] == str(sample_folder.resolve() / "model_metadata.json")
    assert plan["model"] == str(sample_folder.resolve())
    assert any("the folder's root hyperparameters.json" in note for note in plan["notes"])
    assert transit.objects() == {} and site.models == {}


def test_a_folder_whose_graph_disagrees_with_its_metadata_is_refused_before_upload(
    sample_folder: Path, site: FakeDroa, transit: Transit, dr_dir: Path, env: dict[str, str]
) -> None:
    (sample_folder / "model" / "model_metadata.json").write_text(json.dumps(model_metadata(actions=5)))

    result = drtasks("import-model", "--model-dir", str(sample_folder), "-f", dr_dir=dr_dir, env=env)

    refused(result, "model_metadata.json lists 5 actions", "policy has 15")
    assert transit.objects() == {} and site.models == {}


def test_a_folder_without_a_reward_function_is_refused_naming_it(
    sample_folder: Path, site: FakeDroa, transit: Transit, dr_dir: Path, env: dict[str, str]
) -> None:
    (sample_folder / "reward_function.py").unlink()

    refused(drtasks("import-model", "--model-dir", str(sample_folder), "-f", dr_dir=dr_dir, env=env),
            "nothing was written", f"{sample_folder.resolve()}/reward_function.py")
    assert transit.objects() == {}


def test_a_folder_checkpoint_is_chosen_like_one_in_s3(sample_folder: Path, site: FakeDroa, transit: Transit, dr_dir: Path, env: dict[str, str]) -> None:
    best = json.loads((sample_folder / "model" / "deepracer_checkpoints.json").read_text())["best_checkpoint"]["name"]

    result = run("droa-import-model", "--model-dir", str(sample_folder), "--model-name", "from-folder", "--best", dr_dir=dr_dir, env=env)

    assert result.code == 0, result.text  # DRfC's command does not ask: it replaces nothing
    _, files = the_upload(transit)
    assert f"model/{best}.index" in files and json.loads(files["model/deepracer_checkpoints.json"])["last_checkpoint"]["name"] == best
    assert [m.name for m in site.models.values()] == ["from-folder"]


def test_best_by_needs_the_metrics_in_s3_so_a_folder_refuses_it(sample_folder: Path, transit: Transit, dr_dir: Path, env: dict[str, str]) -> None:
    with (dr_dir / "run.env").open("a") as run_env:
        run_env.write("DR_UPLOAD_CHECKPOINT=best-by:laptime\n")

    refused(drtasks("import-model", "--model-dir", str(sample_folder), "-f", dr_dir=dr_dir, env=env),
            "best-by:laptime reads the training metrics from S3", "last, best or a checkpoint number")
    assert transit.objects() == {}


def test_droa_import_model_from_the_training_bucket_is_named_after_the_prefix(
    tmp_path: Path, s3_server: Any, model: Any, upload_bucket: str, site: FakeDroa, transit: Transit, env: dict[str, str]
) -> None:
    dr_dir = write_env_files(tmp_path, s3_server, model, upload_bucket, system=droa_lines(site, transit), run="DR_WORLD_NAME=2022_april_open_cw\n")

    result = run("droa-import-model", "--model-prefix", model.prefix, "--checkpoint", str(model.best), dr_dir=dr_dir, env=env)

    assert result.code == 0, result.text
    assert [m.name for m in site.models.values()] == [model.prefix]
    _, files = the_upload(transit)
    assert f"model/model_{model.best}.pb" in files and f"model/model_{model.last}.pb" not in files


def test_a_model_folder_goes_only_to_droa(sample_folder: Path, dr_dir: Path, env: dict[str, str]) -> None:
    result = drtasks("import-model", "--model-dir", str(sample_folder), "--target", "console", "-f", dr_dir=dr_dir, env=env)

    refused(result, "--model-dir imports a model folder into DRoA")


def test_a_folder_with_an_empty_checkpoint_file_is_refused_as_broken(
    sample_folder: Path, site: FakeDroa, transit: Transit, dr_dir: Path, env: dict[str, str]
) -> None:
    last = json.loads((sample_folder / "model" / "deepracer_checkpoints.json").read_text())["last_checkpoint"]["name"]
    (sample_folder / "model" / f"{last}.index").write_bytes(b"")

    refused(drtasks("import-model", "--model-dir", str(sample_folder), "-f", dr_dir=dr_dir, env=env),
            "the model is broken, nothing was written: zero-byte", f"model/{last}.index")
    assert transit.objects() == {} and site.models == {}
