"""inv car-zip / dr-upload-car-zip: the car's archive from S3 or the training container, then uploaded."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest

from drtasks.carzip import archive as car_archive
from drtasks.sample_model import model_metadata, pseudo_random_bytes, seed_model
from tests.cli import PROJECT_ROOT, drtasks, run
from tests.drfc import UPLOAD_PREFIX, write_env_files
from tests.fault_proxy import FaultProxy, Rule, op

def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def members(data: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]


@pytest.fixture
def dr_dir(tmp_path: Path, s3_server: Any, model: Any, upload_bucket: str) -> Path:
    return write_env_files(tmp_path, s3_server, model, upload_bucket)


def upload_bucket_of(dr_dir: Path) -> str:
    line = next(l for l in (dr_dir / "system.env").read_text().splitlines() if l.startswith("DR_UPLOAD_S3_BUCKET="))
    return line.split("=", 1)[1]


def car_file(s3_server: Any, bucket: str, key: str = f"{UPLOAD_PREFIX}/carfile.tar.gz") -> bytes | None:
    client = s3_server.client()
    try:
        return client.get_object(Bucket=bucket, Key=key)["Body"].read()
    except client.exceptions.NoSuchKey:
        return None


def metadata_of(s3_server: Any, model: Any) -> bytes:
    return s3_server.client().get_object(Bucket=model.bucket, Key=model.key("model/model_metadata.json"))["Body"].read()


@pytest.mark.parametrize("flags, which", [((), "last"), (("--best",), "best"), (("-c", "16"), 16)])
def test_from_s3_the_archive_holds_the_chosen_graph_and_the_metadata(dr_dir: Path, s3_server: Any, model: Any, flags: tuple[str, ...], which: Any) -> None:
    result = drtasks("car-zip", "--from", "s3", "-f", *flags, dr_dir=dr_dir)
    assert result.code == 0, result.err
    number = {"last": model.last, "best": model.best}.get(which, which)
    data = car_file(s3_server, upload_bucket_of(dr_dir))
    assert data is not None
    content = members(data)
    assert set(content) == {"agent/model.pb", "model_metadata.json"}
    assert sha(content["agent/model.pb"]) == model.pb_sha256[number]
    assert content["model_metadata.json"] == metadata_of(s3_server, model)
    assert "agent/model.pb" in result.out and sha(content["agent/model.pb"]) in result.out  # the members table


def test_without_a_running_container_auto_builds_from_s3(dr_dir: Path, s3_server: Any, model: Any) -> None:
    result = drtasks("car-zip", "-f", dr_dir=dr_dir, env={"DOCKER_HOST": f"unix://{dr_dir}/no-engine.sock"})
    assert result.code == 0, result.err
    assert f"model_{model.last}.pb" in result.out
    assert car_file(s3_server, upload_bucket_of(dr_dir)) is not None


def test_dry_run_writes_nothing_and_rerun_is_a_no_op(dr_dir: Path, s3_server: Any, tmp_path: Path) -> None:
    dry = drtasks("car-zip", "--from", "s3", "-d", "-o", str(tmp_path / "out") + "/", dr_dir=dr_dir)
    assert dry.code == 0, dry.err
    assert "Dry run: nothing was written." in dry.err and "carfile.tar.gz" in dry.out
    assert car_file(s3_server, upload_bucket_of(dr_dir)) is None and not (tmp_path / "out").exists()
    assert drtasks("car-zip", "--from", "s3", "-f", dr_dir=dr_dir).code == 0
    again = drtasks("car-zip", "--from", "s3", "-f", dr_dir=dr_dir)
    assert again.code == 0 and "Nothing to do" in again.out


def test_asks_before_writing_and_refuses_without_an_answer(dr_dir: Path, s3_server: Any) -> None:
    result = drtasks("car-zip", "--from", "s3", dr_dir=dr_dir, stdin="")
    assert result.code != 0 and "pass --force" in result.err
    assert car_file(s3_server, upload_bucket_of(dr_dir)) is None


def test_output_folder_names_the_file_after_the_model_and_no_upload_keeps_it_local(dr_dir: Path, s3_server: Any, tmp_path: Path) -> None:
    out = tmp_path / "cars"
    result = drtasks("car-zip", "--from", "s3", "-f", "-N", "-o", f"{out}/", "--name", "Summit Final v2", dr_dir=dr_dir)
    assert result.code == 0, result.err
    written = out / "Summit_Final_v2.tar.gz"
    assert written.is_file() and set(members(written.read_bytes())) == {"agent/model.pb", "model_metadata.json"}
    assert "the car will name the model 'Summit_Final_v2'" in result.out
    assert car_file(s3_server, upload_bucket_of(dr_dir)) is None
    refused = drtasks("car-zip", "--from", "s3", "-f", "-o", str(tmp_path / "model.zip"), dr_dir=dr_dir)
    assert refused.code != 0 and "--output" in refused.err and "Traceback" not in refused.text


def test_missing_metadata_is_refused_and_nothing_uploaded(dr_dir: Path, s3_server: Any, model: Any) -> None:
    s3_server.client().delete_object(Bucket=model.bucket, Key=model.key("model/model_metadata.json"))
    result = drtasks("car-zip", "--from", "s3", "-f", dr_dir=dr_dir)
    assert result.code != 0 and "model/model_metadata.json" in result.err and "Traceback" not in result.text
    assert car_file(s3_server, upload_bucket_of(dr_dir)) is None


def test_metadata_without_an_action_space_is_refused(dr_dir: Path, s3_server: Any, model: Any) -> None:
    s3_server.client().put_object(Bucket=model.bucket, Key=model.key("model/model_metadata.json"), Body=json.dumps({"sensor": ["FRONT_FACING_CAMERA"]}).encode())
    result = drtasks("car-zip", "--from", "s3", "-f", dr_dir=dr_dir)
    assert result.code != 0 and "action" in result.err and "Traceback" not in result.text
    assert car_file(s3_server, upload_bucket_of(dr_dir)) is None


def in_process(dr_dir: Path, monkeypatch: pytest.MonkeyPatch, **request: Any) -> None:
    from drtasks.tasks.carzip_tasks import CarZipRequest, run_car_zip

    monkeypatch.setenv("DR_DIR", str(dr_dir))
    run_car_zip(CarZipRequest(source="s3", force=True, **request))


def test_an_archive_over_the_car_limit_is_refused_before_upload(dr_dir: Path, s3_server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from drtasks.errors import DrtasksError

    monkeypatch.setattr(car_archive, "CAR_UPLOAD_LIMIT_BYTES", 1000)
    with pytest.raises(DrtasksError, match="the car accepts uploads under"):
        in_process(dr_dir, monkeypatch)
    assert car_file(s3_server, upload_bucket_of(dr_dir)) is None


def test_an_archive_with_two_graphs_is_refused_before_upload(dr_dir: Path, s3_server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from drtasks.carzip import flow
    from drtasks.errors import DrtasksError

    members = flow.car_members

    def two_graphs(model: Any, graph: Any) -> list[tuple[str, Any, int]]:
        return [*members(model, graph), ("agent/other.pb", b"another graph", 13)]

    monkeypatch.setattr(flow, "car_members", two_graphs)
    with pytest.raises(DrtasksError, match=r"exactly one \.pb file, found 2 \(agent/model\.pb, agent/other\.pb\)"):
        in_process(dr_dir, monkeypatch)
    assert car_file(s3_server, upload_bucket_of(dr_dir)) is None


# -- from the running training container, on a real container engine ------------------------


def container_files(model: Any, s3_server: Any, number: int) -> dict[str, bytes]:
    client = s3_server.client()
    checkpoint = model.checkpoints[number]
    pb = client.get_object(Bucket=model.bucket, Key=model.key(f"model/model_{number}.pb"))["Body"].read()
    return {
        f"model_{number}.pb": pb,
        "model_metadata.json": metadata_of(s3_server, model),
        ".coach_checkpoint": f"{checkpoint.name}\n".encode(),
        f"{checkpoint.name}.index": b"index",
    }


def test_from_the_running_container_like_drfc(dr_dir: Path, s3_server: Any, model: Any, clean_docker_engine: Any) -> None:
    clean_docker_engine.run_container("dr_algo-1-abcd", container_files(model, s3_server, 16))
    env = {"DOCKER_HOST": clean_docker_engine.base_url}
    result = drtasks("car-zip", "-f", dr_dir=dr_dir, env=env)  # auto: the container wins when it runs
    assert result.code == 0, result.err
    assert "container dr_algo-1-abcd" in result.out
    content = members(car_file(s3_server, upload_bucket_of(dr_dir)) or b"")
    assert sha(content["agent/model.pb"]) == model.pb_sha256[16]


def test_two_training_containers_need_a_name(dr_dir: Path, s3_server: Any, model: Any, clean_docker_engine: Any) -> None:
    clean_docker_engine.run_container("dr_algo-1-aaaa", container_files(model, s3_server, 13))
    clean_docker_engine.run_container("dr_algo-1-bbbb", container_files(model, s3_server, 16))
    env = {"DOCKER_HOST": clean_docker_engine.base_url}
    result = drtasks("car-zip", "--from", "container", "-f", dr_dir=dr_dir, env=env)
    assert result.code != 0 and "dr_algo-1-aaaa" in result.err and "dr_algo-1-bbbb" in result.err and "--container" in result.err
    assert car_file(s3_server, upload_bucket_of(dr_dir)) is None
    chosen = drtasks("car-zip", "--from", "container", "--container", "dr_algo-1-aaaa", "-f", dr_dir=dr_dir, env=env)
    assert chosen.code == 0, chosen.err
    assert sha(members(car_file(s3_server, upload_bucket_of(dr_dir)) or b"")["agent/model.pb"]) == model.pb_sha256[13]


def test_from_container_when_none_runs_suggests_s3(dr_dir: Path, clean_docker_engine: Any) -> None:
    result = drtasks("car-zip", "--from", "container", "-f", dr_dir=dr_dir, env={"DOCKER_HOST": clean_docker_engine.base_url})
    assert result.code != 0 and "--from s3" in result.err and "Traceback" not in result.text


def test_a_hostile_model_folder_in_the_container_is_refused(dr_dir: Path, s3_server: Any, model: Any, clean_docker_engine: Any) -> None:
    files = container_files(model, s3_server, 16)
    clean_docker_engine.run_container("dr_algo-1-evil", files, symlinks={"escape.pb": "/etc/passwd"})
    result = drtasks("car-zip", "--from", "container", "-f", dr_dir=dr_dir, env={"DOCKER_HOST": clean_docker_engine.base_url})
    assert result.code != 0 and "link" in result.err and "Traceback" not in result.text
    assert car_file(s3_server, upload_bucket_of(dr_dir)) is None


def test_a_container_graph_that_disagrees_with_its_metadata_is_refused(dr_dir: Path, s3_server: Any, model: Any, clean_docker_engine: Any) -> None:
    files = container_files(model, s3_server, 16)
    files["model_metadata.json"] = json.dumps(model_metadata(actions=6)).encode()
    clean_docker_engine.run_container("dr_algo-1-mism", files)
    result = drtasks("car-zip", "--from", "container", "-f", dr_dir=dr_dir, env={"DOCKER_HOST": clean_docker_engine.base_url})
    assert result.code != 0 and "Traceback" not in result.text
    assert "model_metadata.json lists 6 actions, model_16.pb's policy has 15" in result.err
    assert car_file(s3_server, upload_bucket_of(dr_dir)) is None


# -- the graph is checked against the metadata before anything is written ------------------------


def test_a_graph_that_disagrees_with_the_metadata_is_refused_naming_both(dr_dir: Path, s3_server: Any, model: Any, tmp_path: Path) -> None:
    s3_server.client().put_object(Bucket=model.bucket, Key=model.key("model/model_metadata.json"), Body=json.dumps(model_metadata(actions=6)).encode())
    result = drtasks("car-zip", "--from", "s3", "-f", "-o", str(tmp_path / "out") + "/", dr_dir=dr_dir)
    assert result.code != 0 and result.err.count("\n") == 1
    assert f"model_metadata.json lists 6 actions, model_{model.last}.pb's policy has 15" in result.err
    assert car_file(s3_server, upload_bucket_of(dr_dir)) is None and not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "metadata, named",
    [
        ({**model_metadata(), "training_algorithm": "ppo2"}, "training_algorithm 'ppo2' is neither clipped_ppo nor sac"),
        ({**model_metadata(), "sensor": ["FRONT_FACING_CAMERA", "DISCRETIZED_SECTOR_LIDAR"]}, "sensor 'DISCRETIZED_SECTOR_LIDAR' is not one the car loads"),
        ({**model_metadata(continuous=True), "action_space": {"steering_angle": {"low": -20, "high": 20}, "speed": {"low": 2, "high": 1}}}, "speed range needs high above low"),
    ],
)
def test_metadata_the_car_would_not_load_is_refused(dr_dir: Path, s3_server: Any, model: Any, metadata: dict[str, Any], named: str) -> None:
    s3_server.client().put_object(Bucket=model.bucket, Key=model.key("model/model_metadata.json"), Body=json.dumps(metadata).encode())
    result = drtasks("car-zip", "--from", "s3", "-f", dr_dir=dr_dir)
    assert result.code != 0 and named in result.err and "Traceback" not in result.text
    assert car_file(s3_server, upload_bucket_of(dr_dir)) is None


def test_random_bytes_for_a_frozen_graph_are_refused(dr_dir: Path, s3_server: Any, model: Any) -> None:
    s3_server.client().put_object(Bucket=model.bucket, Key=model.key(f"model/model_{model.best}.pb"), Body=pseudo_random_bytes(0, "x", 100_000))
    result = drtasks("car-zip", "--from", "s3", "-b", "-f", dr_dir=dr_dir)
    assert result.code != 0 and f"model_{model.best}.pb is not a TensorFlow frozen graph" in result.err
    assert car_file(s3_server, upload_bucket_of(dr_dir)) is None


# -- --verify: the car's own conversion, before the archive travels ---------------------------------


def test_verify_runs_the_model_as_the_car_does_and_shows_the_action_probabilities(dr_dir: Path, s3_server: Any, model: Any, tmp_path: Path) -> None:
    result = drtasks("car-zip", "--from", "s3", "--verify", "-N", "-f", "-o", str(tmp_path) + "/", dr_dir=dr_dir)

    assert result.code == 0, result.err
    text = " ".join(result.out.split())  # the summary wraps at the terminal's width
    assert "Verified as the car loads it: OpenVINO" in text
    assert "(input main_level/agent/main/online/network_0/FRONT_FACING_CAMERA/FRONT_FACING_CAMERA:0 [1, 120, 160, 1]" in text
    assert "15 probabilities summing to 1.0000" in text
    rows = [line for line in result.out.splitlines() if "on a blank frame" in line and "│ check" in line]
    assert len(rows) == 15 and sum("(the car's choice)" in row for row in rows) == 1
    assert "action 12: steering 0, speed 3" in result.out
    assert (tmp_path / f"{UPLOAD_PREFIX}.tar.gz").is_file()


def unconvertible_graph(metadata: dict[str, Any]) -> bytes:
    """A sample graph with an op no converter knows inside the camera embedder.

    drtasks' own check still passes it (inputs, policy and its width are all there); only the
    car's conversion can tell.
    """
    from drtasks.graph import graph_message_classes
    from drtasks.sample_graph import sample_frozen_graph

    graph = graph_message_classes()["GraphDef"]()
    graph.ParseFromString(sample_frozen_graph(metadata, 200_000))
    relu = next(node for node in graph.node if node.name.endswith("Conv2d_2/Relu"))
    relu.op = "DrtasksNoSuchOp"
    return graph.SerializeToString()


def test_verify_fails_in_one_line_when_the_car_could_not_load_the_graph(dr_dir: Path, s3_server: Any, model: Any, tmp_path: Path) -> None:
    key = model.key(f"model/model_{model.last}.pb")
    s3_server.client().put_object(Bucket=model.bucket, Key=key, Body=unconvertible_graph(model_metadata()))

    refused = drtasks("car-zip", "--from", "s3", "--verify", "-f", "-o", str(tmp_path / "a") + "/", dr_dir=dr_dir)
    assert refused.code != 0 and refused.err.count("\n") == 1 and "Traceback" not in refused.text
    assert "the car could not load agent/model.pb: OpenVINO cannot convert it" in refused.err
    assert car_file(s3_server, upload_bucket_of(dr_dir)) is None and not (tmp_path / "a").exists()
    assert drtasks("car-zip", "--from", "s3", "-f", "-N", "-o", str(tmp_path / "b") + "/", dr_dir=dr_dir).code == 0  # only --verify can tell


def test_verify_without_openvino_names_the_extra_to_install(dr_dir: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "no-openvino" / "openvino"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('OpenVINO is not installed here')\n")
    env = {"PYTHONPATH": f"{blocker.parent}{os.pathsep}{PROJECT_ROOT}"}
    result = drtasks("car-zip", "--from", "s3", "--verify", "-f", dr_dir=dr_dir, env=env)
    assert result.code != 0 and result.err.count("\n") == 1
    assert "car-zip --verify needs OpenVINO: pip install 'drtasks[verify]'" in result.err


# -- DRfC's dr-create-car-zip and dr-upload-car-zip -------------------------------------------------


def test_dr_create_car_zip_writes_model_prefix_tar_gz_in_data_output_without_uploading(dr_dir: Path, s3_server: Any, model: Any) -> None:
    result = run("dr-create-car-zip", dr_dir=dr_dir, stdin="")  # a new file: DRfC does not ask, neither do we
    assert result.code == 0, result.err
    written = dr_dir / "data" / "output" / f"{model.prefix}.tar.gz"
    content = members(written.read_bytes())
    assert sha(content["agent/model.pb"]) == model.pb_sha256[model.last]
    assert content["model_metadata.json"] == metadata_of(s3_server, model)
    assert car_file(s3_server, upload_bucket_of(dr_dir)) is None
    assert run("dr-create-car-zip", dr_dir=dr_dir, stdin="").out.count("Nothing to do") == 1


def test_dr_create_car_zip_best_prefix_and_output_switches(dr_dir: Path, s3_server: Any, model: Any, tmp_path: Path) -> None:
    other = seed_model(s3_server.client(), model.bucket, "other-model", checkpoints=(3, 5), seed=4)
    out = tmp_path / "cars" / "mine.tar.gz"
    result = run("dr-create-car-zip", "-b", "-p", "other-model", "-o", str(out), dr_dir=dr_dir)
    assert result.code == 0, result.err
    assert sha(members(out.read_bytes())["agent/model.pb"]) == other.pb_sha256[other.best]
    assert "the car will name the model 'mine'" in result.out

    best = run("dr-create-car-zip", "-b", dr_dir=dr_dir)
    assert best.code == 0, best.err
    written = dr_dir / "data" / "output" / f"{model.prefix}.tar.gz"
    assert sha(members(written.read_bytes())["agent/model.pb"]) == model.pb_sha256[model.best]
    replaced = run("dr-create-car-zip", dr_dir=dr_dir, stdin="")  # another checkpoint: replacing asks
    assert replaced.code != 0 and "pass --force" in replaced.err
    assert run("dr-create-car-zip", "-f", dr_dir=dr_dir).code == 0
    assert sha(members(written.read_bytes())["agent/model.pb"]) == model.pb_sha256[model.last]


def test_dr_upload_car_zip_uploads_model_prefix_tar_gz_below_the_upload_prefix(dr_dir: Path, s3_server: Any, model: Any) -> None:
    refused = run("dr-upload-car-zip", dr_dir=dr_dir, stdin="")
    assert refused.code != 0 and "pass --force" in refused.err
    assert not (dr_dir / f"{model.prefix}.tar.gz").exists()

    result = run("dr-upload-car-zip", "-f", dr_dir=dr_dir)
    assert result.code == 0, result.err
    uploaded = car_file(s3_server, upload_bucket_of(dr_dir), f"{UPLOAD_PREFIX}/{model.prefix}.tar.gz")
    assert uploaded is not None and uploaded == (dr_dir / f"{model.prefix}.tar.gz").read_bytes()
    assert sha(members(uploaded)["agent/model.pb"]) == model.pb_sha256[model.last]
    assert car_file(s3_server, upload_bucket_of(dr_dir)) is None  # not carfile.tar.gz


def test_dr_upload_car_zip_local_best_goes_into_the_model_prefix_of_the_training_bucket(dr_dir: Path, s3_server: Any, model: Any) -> None:
    result = run("dr-upload-car-zip", "-L", "-b", "-f", dr_dir=dr_dir)
    assert result.code == 0, result.err
    uploaded = car_file(s3_server, model.bucket, f"{model.prefix}/{model.prefix}.tar.gz")
    assert uploaded is not None and sha(members(uploaded)["agent/model.pb"]) == model.pb_sha256[model.best]
    assert car_file(s3_server, upload_bucket_of(dr_dir), f"{UPLOAD_PREFIX}/{model.prefix}.tar.gz") is None


def test_dr_upload_car_zip_prefix_switch_names_and_builds_the_other_model(dr_dir: Path, s3_server: Any, model: Any) -> None:
    other = seed_model(s3_server.client(), model.bucket, "second-model", checkpoints=(6, 8), seed=5)
    result = run("dr-upload-car-zip", "-p", "second-model", "-f", dr_dir=dr_dir)
    assert result.code == 0, result.err
    uploaded = car_file(s3_server, upload_bucket_of(dr_dir), f"{UPLOAD_PREFIX}/second-model.tar.gz")
    assert uploaded is not None and sha(members(uploaded)["agent/model.pb"]) == other.pb_sha256[other.last]


@pytest.mark.parametrize("command", ["dr-create-car-zip", "dr-upload-car-zip"])
def test_drfc_car_commands_refuse_unknown_switches_in_one_line(dr_dir: Path, command: str) -> None:
    # Every switch is explained by -h / --help: tests/test_new_user.py.
    wrong = run(command, "-x", dr_dir=dr_dir)
    assert wrong.code == 2 and wrong.err.count("\n") == 1 and "option -x not recognized" in wrong.err


# -- the graph is read once from S3, straight into the archive, proven against its ETag --------------


@dataclass(frozen=True)
class Proxied:
    endpoint_url: str
    aws_profile: str


@pytest.fixture
def proxy(s3_server: Any) -> Iterator[FaultProxy]:
    proxy = FaultProxy(s3_server.endpoint_url, seed=5).start()
    yield proxy
    proxy.stop()


@pytest.fixture
def proxied_dir(tmp_path: Path, s3_server: Any, model: Any, upload_bucket: str, proxy: FaultProxy) -> Path:
    return write_env_files(tmp_path, Proxied(proxy.endpoint_url, s3_server.aws_profile), model, upload_bucket)


@pytest.mark.parametrize("fault", ["corrupt", "truncate"])
def test_a_bad_read_of_the_graph_is_read_again_and_the_archive_is_exact(proxied_dir: Path, proxy: FaultProxy, s3_server: Any, model: Any, fault: str) -> None:
    graph = rf"/model/model_{model.last}\.pb$"
    proxy.add(Rule(fault, op("GetObject", graph), times=1))
    result = drtasks("car-zip", "--from", "s3", "-f", dr_dir=proxied_dir)
    assert result.code == 0, result.err
    assert proxy.count("GetObject", graph) == 2  # the bad read, then a good one; nothing read back
    content = members(car_file(s3_server, upload_bucket_of(proxied_dir)) or b"")
    assert sha(content["agent/model.pb"]) == model.pb_sha256[model.last]


def test_a_graph_that_never_reads_right_stops_before_anything_is_written(proxied_dir: Path, proxy: FaultProxy, s3_server: Any, model: Any) -> None:
    proxy.add(Rule("corrupt", op("GetObject", rf"/model/model_{model.last}\.pb$")))
    output = proxied_dir / "out" / "model.tar.gz"
    result = drtasks("car-zip", "--from", "s3", "-f", "-o", str(output), dr_dir=proxied_dir)
    assert result.code != 0 and "Traceback" not in result.text
    assert f"model_{model.last}.pb at {proxy.endpoint_url}: the bytes read do not match the object's checksum on 3 reads" in result.err
    assert car_file(s3_server, upload_bucket_of(proxied_dir)) is None
    assert not output.parent.exists() or not list(output.parent.iterdir())
