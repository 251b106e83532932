"""Taking the car's model out of the running training container, DRfC's way, through the Docker API.

The tar the engine returns is untrusted input: crafted tars pin the safe reader down, and
a real engine (podman serving the Docker API) shows the whole path works end to end.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile

import pytest

from drtasks.carzip.archive import build_car_archive, validate_car_archive
from drtasks.carzip.container import (
    ContainerModel,
    connect_docker,
    model_from_container,
    pick_model,
    read_model_tar,
)
from drtasks.errors import DrtasksError
from tests.podman import PodmanEngine

METADATA = json.dumps({"action_space": [{"steering_angle": 0, "speed": 1.0}], "version": "5"}).encode()
CHECKPOINTS = json.dumps(
    {
        "best_checkpoint": {"name": "13_Step-5137.ckpt", "avg_eval_metric": 71.5},
        "last_checkpoint": {"name": "19_Step-10822.ckpt", "avg_eval_metric": 42.0},
    }
).encode()


def training_dir(**extra: bytes) -> dict[str, bytes]:
    """A realistic /opt/ml/model during training: three frozen graphs, checkpoint files, pointers."""
    files = {
        "model_13.pb": b"graph of 13",
        "model_17.pb": b"graph of 17",
        "model_19.pb": b"graph of 19",
        "19_Step-10822.ckpt.index": b"index",
        "19_Step-10822.ckpt.data-00000-of-00001": b"\0" * 4096,
        "model_metadata.json": METADATA,
        "deepracer_checkpoints.json": CHECKPOINTS,
        ".coach_checkpoint": b"17_Step-9000.ckpt\n",
        "checkpoint": b'model_checkpoint_path: "19_Step-10822.ckpt"',
    }
    files.update(extra)
    return files


def model_tar(*members: tarfile.TarInfo | tuple[str, bytes]) -> bytes:
    """A tar shaped like the Docker API's archive of /opt/ml/model (members under ``model/``)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        root = tarfile.TarInfo("model")
        root.type = tarfile.DIRTYPE
        tar.addfile(root)
        for member in members:
            if isinstance(member, tarfile.TarInfo):
                tar.addfile(member)
            else:
                info = tarfile.TarInfo(member[0])
                info.size = len(member[1])
                tar.addfile(info, io.BytesIO(member[1]))
    return buffer.getvalue()


def special(name: str, kind: bytes, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info


# ---------------------------------------------------------------- the safe reader (crafted tars)


def test_reader_keeps_the_chosen_graph_metadata_and_pointers_and_skips_checkpoint_data() -> None:
    contents = read_model_tar(model_tar(*(("model/" + name, content) for name, content in training_dir().items())))
    assert set(contents.files) == {"model_17.pb", "model_metadata.json", "deepracer_checkpoints.json", ".coach_checkpoint"}
    assert contents.files["model_17.pb"] == b"graph of 17"  # named in .coach_checkpoint
    assert contents.graphs_seen == 3


def order(first: list[str], files: dict[str, bytes]) -> list[tuple[str, bytes]]:
    """Members of ``files`` under model/, the ``first`` ones first (the engine's order is the directory's)."""
    names = first + [name for name in files if name not in first]
    return [("model/" + name, files[name]) for name in names]


@pytest.mark.parametrize(
    "first",
    [
        [".coach_checkpoint", "deepracer_checkpoints.json"],  # pointers before the graphs
        ["model_13.pb", "model_19.pb", "model_17.pb"],  # graphs before the pointers
        ["model_19.pb", ".coach_checkpoint", "model_13.pb"],
    ],
)
def test_the_reader_chooses_what_pick_model_would_choose_whatever_the_member_order(first: list[str]) -> None:
    files = training_dir()
    contents = read_model_tar(model_tar(*order(first, files)))
    graphs = [name for name in contents.files if name.endswith(".pb")]
    assert graphs == ["model_17.pb"]
    assert pick_model(contents.files, "c", contents.graphs_seen) == pick_model(files, "c")


def test_the_reader_falls_back_to_the_highest_graph_and_says_how_many_it_saw() -> None:
    files = training_dir(**{"model_101.pb": b"graph of 101", "deepracer_checkpoints.json": b"{half written"})
    del files[".coach_checkpoint"]
    contents = read_model_tar(model_tar(*order([], files)))
    model = pick_model(contents.files, "c", contents.graphs_seen)
    assert (model.pb_name, model.pb_bytes) == ("model_101.pb", b"graph of 101")
    assert "highest of 4" in model.reason


def test_graphs_that_can_no_longer_be_chosen_are_dropped_while_reading(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pointers first: the reader holds at most the pointed graph and the fallback, never all of them."""
    from drtasks.carzip import container

    graph = b"g" * 1000
    files = {
        ".coach_checkpoint": b"30_Step-1.ckpt\n",
        "deepracer_checkpoints.json": json.dumps({"last_checkpoint": {"name": "30_Step-1.ckpt"}}).encode(),
        "model_metadata.json": METADATA,
        **{f"model_{n}.pb": graph for n in range(20, 31)},
    }
    monkeypatch.setattr(container, "MAX_HELD_BYTES", 2 * len(graph))  # room for two graphs only
    contents = read_model_tar(model_tar(*order([".coach_checkpoint", "deepracer_checkpoints.json"], files)))
    assert [name for name in contents.files if name.endswith(".pb")] == ["model_30.pb"]


def test_more_graphs_than_the_reader_may_hold_before_the_pointers_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from drtasks.carzip import container

    files = {**{f"model_{n}.pb": b"g" * 1000 for n in range(1, 6)}, ".coach_checkpoint": b"1_Step-1.ckpt", "model_metadata.json": METADATA}
    monkeypatch.setattr(container, "MAX_HELD_BYTES", 2500)
    with pytest.raises(DrtasksError, match=r"more than .* of frozen graphs before its checkpoint pointers; use --from s3"):
        read_model_tar(model_tar(*order([], files)))


def test_a_chosen_graph_over_the_car_limit_is_refused_without_being_read(monkeypatch: pytest.MonkeyPatch) -> None:
    from drtasks.carzip import container

    monkeypatch.setattr(container, "MAX_GRAPH_BYTES", 100)
    files = {"model_1.pb": b"small", "model_2.pb": b"x" * 101, "model_metadata.json": METADATA}
    with pytest.raises(DrtasksError, match=r"model_2\.pb in the container's /opt/ml/model is 101 bytes; the car accepts uploads under"):
        read_model_tar(model_tar(*order([], files)))
    # Not chosen (the pointer names another graph): skipped, not refused.
    files[".coach_checkpoint"] = b"1_Step-1.ckpt"
    assert read_model_tar(model_tar(*order([], files))).files["model_1.pb"] == b"small"


def test_an_oversized_pointer_or_metadata_file_is_refused() -> None:
    crafted = model_tar(("model/model_metadata.json", b" " * (1024 * 1024 + 1)))
    with pytest.raises(DrtasksError, match=r"refusing model_metadata.json of 1,048,577 bytes"):
        read_model_tar(crafted)


def _checksum(header: bytearray) -> None:
    header[148:156] = b" " * 8
    header[148:156] = b"%06o\0 " % sum(header)


def gnu_sparse_bomb(name: str = "model/model_19.pb", real_size: int = 8 * 1024**3) -> bytes:
    """An old-GNU sparse member: one byte of data that reads back as ``real_size`` bytes."""
    info = tarfile.TarInfo(name)
    info.size = 512
    header = bytearray(info.tobuf(format=tarfile.GNU_FORMAT))
    header[156:157] = tarfile.GNUTYPE_SPARSE
    header[386:398] = b"%011o\0" % (real_size - 1)  # one region at the very end...
    header[398:410] = b"%011o\0" % 1  # ...one byte long
    header[483:495] = b"%011o\0" % real_size
    _checksum(header)
    root = tarfile.TarInfo("model")
    root.type = tarfile.DIRTYPE
    return root.tobuf(format=tarfile.GNU_FORMAT) + bytes(header) + b"x" + b"\0" * 511 + b"\0" * 1024


def pax_sparse_bomb(name: str = "model/model_19.pb", real_size: int = 8 * 1024**3) -> bytes:
    """A PAX 1.0 sparse member: the map in the data, the real size in the PAX header."""
    sparse_map = f"1\n{real_size - 1}\n1\n".encode().ljust(512, b"\0")
    info = tarfile.TarInfo("model/GNUSparseFile.0/model_19.pb")
    info.size = len(sparse_map) + 1
    info.pax_headers = {"GNU.sparse.major": "1", "GNU.sparse.minor": "0", "GNU.sparse.name": name, "GNU.sparse.realsize": str(real_size)}
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        root = tarfile.TarInfo("model")
        root.type = tarfile.DIRTYPE
        tar.addfile(root)
        tar.addfile(info, io.BytesIO(sparse_map + b"x"))
    return buffer.getvalue()


@pytest.mark.parametrize("bomb", [gnu_sparse_bomb, pax_sparse_bomb])
def test_a_sparse_member_is_refused(bomb) -> None:
    crafted = bomb()
    assert len(crafted) <= 10240  # one tar record
    with tarfile.open(fileobj=io.BytesIO(crafted), mode="r|") as tar:  # a real bomb: 8 GiB when read
        member = [m for m in tar if m.name == "model/model_19.pb"][0]
        assert member.issparse() and member.size == 8 * 1024**3
    with pytest.raises(DrtasksError, match=r"refusing sparse file 'model/model_19\.pb'"):
        read_model_tar(crafted)


@pytest.mark.parametrize("bomb", ["gnu_sparse_bomb", "pax_sparse_bomb"])
def test_a_sparse_bomb_is_refused_at_once_in_little_memory(bomb: str) -> None:
    """Measured in a child process: its peak memory barely moves and the refusal is immediate."""
    import subprocess
    import sys

    from tests.cli import PROJECT_ROOT

    script = f"""
import resource, time
from drtasks.errors import DrtasksError
from drtasks.carzip.container import read_model_tar
from tests.test_car_container import {bomb}
crafted = {bomb}()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.monotonic()
try:
    read_model_tar(crafted)
except DrtasksError:
    pass
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before, time.monotonic() - start)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=60)
    assert done.returncode == 0, done.stderr
    grown_kib, seconds = done.stdout.split()
    assert int(grown_kib) < 20 * 1024  # under 20 MiB more than before
    assert float(seconds) < 1.0


@pytest.mark.parametrize(
    ("member", "complaint"),
    [
        (("model/../../etc/cron.d/x", b"evil"), "unsafe path 'model/../../etc/cron.d/x'"),
        (("/model/model_1.pb", b"evil"), "unsafe path '/model/model_1.pb'"),
        (("elsewhere/model_1.pb", b"evil"), "outside 'model/'"),
        (special("model/model_1.pb", tarfile.SYMTYPE, "/etc/shadow"), "refusing link 'model/model_1.pb' -> '/etc/shadow'"),
        (special("model/model_2.pb", tarfile.LNKTYPE, "model/model_1.pb"), "refusing link"),
        (special("model/tty", tarfile.CHRTYPE), "refusing special file 'model/tty'"),
        (special("model/disk", tarfile.BLKTYPE), "refusing special file"),
        (special("model/pipe", tarfile.FIFOTYPE), "refusing special file"),
    ],
)
def test_reader_refuses_members_that_could_escape_or_are_not_plain_files(member, complaint: str) -> None:
    crafted = model_tar(("model/model_metadata.json", METADATA), member)
    with pytest.raises(DrtasksError, match=complaint.replace(".", r"\.")):
        read_model_tar(crafted)


def test_reader_refuses_a_link_even_in_a_file_it_would_not_keep() -> None:
    crafted = model_tar(special("model/notes.txt", tarfile.SYMTYPE, "/etc/passwd"))
    with pytest.raises(DrtasksError, match="refusing link"):
        read_model_tar(crafted)


def test_reader_reports_a_truncated_tar_as_unreadable() -> None:
    crafted = model_tar(("model/model_1.pb", b"x" * 5000))
    with pytest.raises(DrtasksError, match="unreadable archive"):
        read_model_tar(crafted[:1024])


# ---------------------------------------------------------------- choosing the graph


def test_graph_of_the_checkpoint_in_coach_checkpoint_wins() -> None:
    model = pick_model(training_dir(), "dr_algo-1-abcd")
    assert (model.pb_name, model.pb_bytes, model.checkpoint) == ("model_17.pb", b"graph of 17", "17_Step-9000.ckpt")
    assert model.metadata_bytes == METADATA
    assert ".coach_checkpoint" in model.reason and "model_17.pb" in model.reason


def test_without_coach_checkpoint_the_last_checkpoint_of_deepracer_checkpoints_wins() -> None:
    files = training_dir()
    del files[".coach_checkpoint"]
    model = pick_model(files, "c")
    assert (model.pb_name, model.checkpoint) == ("model_19.pb", "19_Step-10822.ckpt")
    assert "last_checkpoint of deepracer_checkpoints.json" in model.reason


def test_pointer_to_a_graph_not_written_yet_falls_back_to_the_next_pointer() -> None:
    model = pick_model(training_dir(**{".coach_checkpoint": b"23_Step-12000.ckpt"}), "c")
    assert model.pb_name == "model_19.pb"


def test_without_usable_pointers_the_highest_checkpoint_number_wins() -> None:
    files = training_dir(**{"deepracer_checkpoints.json": b"{half written"})
    del files[".coach_checkpoint"]
    files["model_101.pb"] = b"graph of 101"  # numerically, not alphabetically, highest
    model = pick_model(files, "c")
    assert (model.pb_name, model.checkpoint) == ("model_101.pb", None)
    assert "highest of 4" in model.reason


def test_container_without_any_graph_suggests_s3() -> None:
    with pytest.raises(DrtasksError, match="container c: /opt/ml/model holds no model_N.pb.*--from s3"):
        pick_model({"model_metadata.json": METADATA}, "c")


def test_container_without_metadata_is_refused() -> None:
    with pytest.raises(DrtasksError, match="has no model_metadata.json"):
        pick_model({"model_3.pb": b"g"}, "c")


# ---------------------------------------------------------------- engine not reachable


def test_unreachable_engine_from_docker_host_is_one_clear_line(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/nothing.sock")
    with pytest.raises(DrtasksError, match=r"^cannot reach the Docker engine at unix://.*nothing\.sock .*--from s3$") as caught:
        model_from_container()
    assert "\n" not in str(caught.value)


def test_unreachable_engine_from_base_url_is_one_clear_line(tmp_path) -> None:
    with pytest.raises(DrtasksError, match="cannot reach the Docker engine") as caught:
        connect_docker(f"unix://{tmp_path}/nothing.sock")
    assert "\n" not in str(caught.value)


# ---------------------------------------------------------------- a real engine (podman, Docker API)


def test_model_comes_out_of_the_one_running_training_container(clean_docker_engine: PodmanEngine) -> None:
    clean_docker_engine.run_container("dr_algo-1-abcd", training_dir())
    clean_docker_engine.run_container("dr_rl_coach", {"model_99.pb": b"not a training container"})
    model = model_from_container(docker_client=clean_docker_engine.client())
    assert model == ContainerModel(
        container_name="dr_algo-1-abcd",
        pb_name="model_17.pb",
        pb_bytes=b"graph of 17",
        metadata_bytes=METADATA,
        checkpoint="17_Step-9000.ckpt",
        reason=model.reason,
    )


def test_engine_is_found_through_docker_host_like_the_docker_cli(
    clean_docker_engine: PodmanEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    clean_docker_engine.run_container("dr_algo-1-abcd", training_dir())
    monkeypatch.setenv("DOCKER_HOST", clean_docker_engine.base_url)
    assert model_from_container().pb_name == "model_17.pb"


def test_engine_is_found_through_an_explicit_base_url(clean_docker_engine: PodmanEngine) -> None:
    clean_docker_engine.run_container("dr_algo-1-abcd", training_dir())
    assert model_from_container(base_url=clean_docker_engine.base_url).container_name == "dr_algo-1-abcd"


def test_container_model_becomes_a_valid_car_archive(clean_docker_engine: PodmanEngine) -> None:
    big_graph = bytes(range(256)) * 8192  # 2 MiB: more than one API chunk
    clean_docker_engine.run_container("dr_algo-1-abcd", {"model_5.pb": big_graph, "model_metadata.json": METADATA})
    model = model_from_container(docker_client=clean_docker_engine.client())
    rows = {row.name: row for row in validate_car_archive(build_car_archive(model.pb_bytes, model.metadata_bytes))}
    assert rows["agent/model.pb"].sha256 == hashlib.sha256(big_graph).hexdigest()
    assert model.reason == "model_5.pb: the only frozen graph"


def test_no_running_training_container_suggests_building_from_s3(clean_docker_engine: PodmanEngine) -> None:
    clean_docker_engine.run_container("dr_minio", {"model_1.pb": b"g", "model_metadata.json": METADATA})
    with pytest.raises(DrtasksError, match=r"no running training container .*--from s3"):
        model_from_container(docker_client=clean_docker_engine.client())


def test_several_training_containers_are_listed_and_one_must_be_named(clean_docker_engine: PodmanEngine) -> None:
    clean_docker_engine.run_container("a_algo-1-aaaa", {"model_1.pb": b"graph a", "model_metadata.json": METADATA})
    clean_docker_engine.run_container("b_algo-1-bbbb", {"model_2.pb": b"graph b", "model_metadata.json": METADATA})
    client = clean_docker_engine.client()
    with pytest.raises(DrtasksError, match=r"2 training containers are running \(a_algo-1-aaaa, b_algo-1-bbbb\); choose one with --container NAME"):
        model_from_container(docker_client=client)
    chosen = model_from_container("b_algo-1-bbbb", docker_client=client)
    assert (chosen.container_name, chosen.pb_bytes) == ("b_algo-1-bbbb", b"graph b")


def test_named_container_that_does_not_exist_is_reported(clean_docker_engine: PodmanEngine) -> None:
    with pytest.raises(DrtasksError, match="^--container dr_algo-9-zzzz: no such container$"):
        model_from_container("dr_algo-9-zzzz", docker_client=clean_docker_engine.client())


def test_named_container_that_stopped_is_reported(clean_docker_engine: PodmanEngine) -> None:
    clean_docker_engine.run_container("dr_algo-1-done", training_dir())
    clean_docker_engine.podman("stop", "-t", "0", "dr_algo-1-done")
    with pytest.raises(DrtasksError, match="^--container dr_algo-1-done: container is exited, not running$"):
        model_from_container("dr_algo-1-done", docker_client=clean_docker_engine.client())


def test_container_without_opt_ml_model_is_reported(clean_docker_engine: PodmanEngine) -> None:
    clean_docker_engine.run_container("dr_algo-1-abcd", {})
    clean_docker_engine.podman("exec", "dr_algo-1-abcd", "/bin/busybox", "rm", "-rf", "/opt/ml/model")
    with pytest.raises(DrtasksError, match="^container dr_algo-1-abcd has no /opt/ml/model$"):
        model_from_container(docker_client=clean_docker_engine.client())


def test_symlink_inside_the_container_model_dir_is_refused(clean_docker_engine: PodmanEngine) -> None:
    clean_docker_engine.run_container(
        "dr_algo-1-evil", training_dir(), symlinks={"model_20.pb": "/etc/shadow"}
    )
    with pytest.raises(DrtasksError, match="refusing link 'model/model_20.pb' -> '/etc/shadow'"):
        model_from_container(docker_client=clean_docker_engine.client())
