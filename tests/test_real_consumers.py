"""What drtasks writes loads in the programs that load it: TensorFlow (the simulator, DRoA's
validation) and the car's OpenVINO conversion, on a real model in real S3.

The model is the real camera network (6 actions, best != last) from tests/real_models.py, seeded
once per session into its own bucket. Every test uploads or packs it with the real commands and
hands the result to the consumers in tests/consumers.py. The last tests show those consumers
refuse what is not real, so passing them means something.
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path
from typing import Any

import pytest

from drtasks.sample_model import model_metadata, pseudo_random_bytes
from tests.cli import drtasks, run
from tests.consumers import car_inference, expected_outputs, policy_head_width, restore_policy
from tests.drfc import UPLOAD_PREFIX, write_env_files


@pytest.fixture
def dr_dir(tmp_path: Path, s3_server: Any, real_source: Any, upload_bucket: str) -> Path:
    (tmp_path / "dr").mkdir()
    return write_env_files(tmp_path / "dr", s3_server, real_source.model, upload_bucket)


def download(client: Any, bucket: str, prefix: str, into: Path) -> dict[str, Path]:
    """Every object under ``prefix/`` into the folder ``into``; relative key -> file."""
    files = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{prefix}/"):
        for item in page.get("Contents", []):
            relative = item["Key"][len(prefix) + 1 :]
            path = into / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            client.download_file(bucket, item["Key"], str(path))
            files[relative] = path
    return files


def archive_members(data: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]


@pytest.mark.parametrize("flags, which", [((), "last"), (("--best",), "best")])
def test_the_uploaded_checkpoint_restores_and_its_graph_runs_on_the_car(
    dr_dir: Path, s3_server: Any, real_source: Any, upload_bucket: str, tmp_path: Path, flags: tuple[str, ...], which: str
) -> None:
    seeded, real, _ = real_source
    number = {"last": seeded.last, "best": seeded.best}[which]
    name = seeded.checkpoints[number].name

    result = drtasks("upload", "-f", *flags, dr_dir=dr_dir)
    assert result.code == 0, result.err
    files = download(s3_server.client(), upload_bucket, UPLOAD_PREFIX, tmp_path / "uploaded")
    metadata = json.loads(files["model_metadata.json"].read_text())

    # The simulator's side: deepracer_checkpoints.json and .coach_checkpoint name the checkpoint,
    # which restores in TensorFlow with a policy head as wide as the action space.
    index = json.loads(files["model/deepracer_checkpoints.json"].read_text())
    assert index["last_checkpoint"]["name"] == index["best_checkpoint"]["name"] == name
    assert files["model/.coach_checkpoint"].read_text().strip() == name
    prefix = tmp_path / "uploaded" / "model" / name
    assert policy_head_width(prefix, metadata) == len(metadata["action_space"]) == 6
    in_tensorflow = restore_policy(prefix, metadata)

    # The car's side: model_N.pb converts as the car converts it and answers 6 probabilities.
    on_car = car_inference(files[f"model/model_{number}.pb"], metadata)
    assert len(on_car) == 6 and sum(on_car) == pytest.approx(1.0, abs=1e-4)
    assert on_car == pytest.approx(in_tensorflow, rel=2e-2, abs=1e-3)  # the same weights, frozen


def car_archive_from(result: Any, path: Path) -> dict[str, bytes]:
    assert result.code == 0, result.err
    return archive_members(path.read_bytes())


def test_every_car_archive_holds_a_graph_the_car_loads(dr_dir: Path, s3_server: Any, real_source: Any, upload_bucket: str, tmp_path: Path) -> None:
    seeded, real, _ = real_source
    archives = {
        "car-zip --from s3": car_archive_from(drtasks("car-zip", "--from", "s3", "-N", "-f", "-o", str(tmp_path / "a.tar.gz"), dr_dir=dr_dir), tmp_path / "a.tar.gz"),
        "car-zip --best": car_archive_from(drtasks("car-zip", "--from", "s3", "-b", "-N", "-f", "-o", str(tmp_path / "b.tar.gz"), dr_dir=dr_dir), tmp_path / "b.tar.gz"),
        "dr-create-car-zip": car_archive_from(run("dr-create-car-zip", "-o", str(tmp_path / "c.tar.gz"), dr_dir=dr_dir), tmp_path / "c.tar.gz"),
    }
    uploaded = run("dr-upload-car-zip", "-b", "-f", dr_dir=dr_dir)
    assert uploaded.code == 0, uploaded.err
    body = s3_server.client().get_object(Bucket=upload_bucket, Key=f"{UPLOAD_PREFIX}/{seeded.prefix}.tar.gz")["Body"].read()
    archives["dr-upload-car-zip -b"] = archive_members(body)

    for made_by, members in archives.items():
        assert set(members) == {"agent/model.pb", "model_metadata.json"}, made_by
        metadata = json.loads(members["model_metadata.json"])
        probabilities = car_inference(members["agent/model.pb"], metadata)
        assert len(probabilities) == 6 and sum(probabilities) == pytest.approx(1.0, abs=1e-4), made_by
    assert archives["car-zip --from s3"]["agent/model.pb"] == real.frozen_graph(real.last).read_bytes()
    assert archives["car-zip --best"]["agent/model.pb"] == archives["dr-upload-car-zip -b"]["agent/model.pb"] == real.frozen_graph(real.best).read_bytes()


def test_the_archive_from_the_training_container_loads_on_the_car(dr_dir: Path, s3_server: Any, real_source: Any, upload_bucket: str, clean_docker_engine: Any) -> None:
    seeded, real, _ = real_source
    files = {
        f"model_{real.best}.pb": real.frozen_graph(real.best).read_bytes(),
        "model_metadata.json": json.dumps(real.metadata).encode(),
        ".coach_checkpoint": f"{real.checkpoints[real.best]}\n".encode(),
    }
    clean_docker_engine.run_container("real_algo-1-abcd", files)

    result = drtasks("car-zip", "--from", "container", "--verify", "-f", dr_dir=dr_dir, env={"DOCKER_HOST": clean_docker_engine.base_url})

    assert result.code == 0, result.err
    assert "6 probabilities summing to 1.0000" in " ".join(result.out.split())  # drtasks' own --verify agrees
    members = archive_members(s3_server.client().get_object(Bucket=upload_bucket, Key=f"{UPLOAD_PREFIX}/carfile.tar.gz")["Body"].read())
    assert len(car_inference(members["agent/model.pb"], real.metadata)) == 6


def test_car_zip_verify_on_the_real_model_shows_its_six_probabilities(dr_dir: Path, real_source: Any, tmp_path: Path) -> None:
    result = drtasks("car-zip", "--from", "s3", "--verify", "-N", "-f", "-o", str(tmp_path) + "/", dr_dir=dr_dir)

    assert result.code == 0, result.err
    rows = [line for line in result.out.splitlines() if "on a blank frame" in line and "│ check" in line]
    assert len(rows) == 6 and sum("(the car's choice)" in row for row in rows) == 1
    assert "6 probabilities summing to 1.0000" in " ".join(result.out.split())


# -- the consumers refuse what is not real, so the tests above prove something ---------------------


def test_random_bytes_restore_in_nothing_and_convert_in_nothing(real_source: Any, tmp_path: Path) -> None:
    real = real_source.real
    fake = tmp_path / "model" / "13_Step-1.ckpt"
    fake.parent.mkdir()
    for suffix, size in (("data-00000-of-00001", 1_000_000), ("index", 1081), ("meta", 116_000)):
        Path(f"{fake}.{suffix}").write_bytes(pseudo_random_bytes(0, suffix, size))

    with pytest.raises(Exception):
        restore_policy(fake, real.metadata)
    with pytest.raises(Exception):
        car_inference(pseudo_random_bytes(0, "pb", 2_000_000), real.metadata)


def test_a_metadata_that_disagrees_with_the_model_is_refused_by_both_consumers(real_source: Any) -> None:
    real = real_source.real
    five = model_metadata(actions=5)
    assert expected_outputs(real.metadata) == 6

    with pytest.raises(AssertionError, match="6 outputs, the metadata 5 actions"):
        restore_policy(real.checkpoint_prefix(real.last), five)
    with pytest.raises(AssertionError, match="gives 6 outputs, the metadata lists 5 actions"):
        car_inference(real.frozen_graph(real.last), five)
    stereo = {**real.metadata, "sensor": ["STEREO_CAMERAS"]}
    with pytest.raises(Exception):
        car_inference(real.frozen_graph(real.last), stereo)  # no such input in the graph
