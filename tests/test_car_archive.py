"""The car's model archive: what we build is what the car installs, and what it would ignore we refuse."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from typing import Any

import pytest

from drtasks.carzip import archive as archive_module
from drtasks.carzip.archive import (
    CAR_UPLOAD_LIMIT_BYTES,
    FIXED_MTIME,
    archive_file_name,
    archive_members,
    build_car_archive,
    car_model_name,
    validate_car_archive,
    validate_metadata,
    write_car_archive,
)
from drtasks.errors import DrtasksError

PB = b"\x08\x01frozen graph bytes" * 100
DISCRETE = json.dumps(
    {
        "action_space": [{"steering_angle": -30, "speed": 0.6}, {"steering_angle": 30, "speed": 0.6}],
        "sensor": ["FRONT_FACING_CAMERA"],
        "neural_network": "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW",
        "training_algorithm": "clipped_ppo",
        "action_space_type": "discrete",
        "version": "5",
    }
).encode()
CONTINUOUS = json.dumps(
    {
        "action_space": {"speed": {"low": 0.5, "high": 2.0}, "steering_angle": {"low": -30, "high": 30}},
        "action_space_type": "continuous",
        "training_algorithm": "sac",
    }
).encode()


def tar_gz(*members: tuple[tarfile.TarInfo, bytes | None]) -> bytes:
    """A hand-made archive, to present the validator with what we would never build."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for info, content in members:
            if content is not None:
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
            else:
                tar.addfile(info)
    return buffer.getvalue()


def regular(name: str, content: bytes) -> tuple[tarfile.TarInfo, bytes]:
    return tarfile.TarInfo(name), content


# ---------------------------------------------------------------- building


def test_archive_holds_exactly_the_graph_as_agent_model_pb_and_metadata_at_the_root() -> None:
    data = build_car_archive(PB, DISCRETE)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        names = sorted(m.name for m in tar.getmembers())
        assert names == ["agent/model.pb", "model_metadata.json"]
        assert tar.extractfile("agent/model.pb").read() == PB
        assert tar.extractfile("model_metadata.json").read() == DISCRETE
        assert all(m.isfile() and m.mtime == FIXED_MTIME and m.uid == 0 for m in tar.getmembers())


def test_same_model_gives_byte_identical_archives_with_no_timestamp_in_gzip_header() -> None:
    first = build_car_archive(PB, DISCRETE)
    assert first == build_car_archive(PB, DISCRETE)
    assert first[4:8] == b"\x00\x00\x00\x00"  # gzip MTIME field
    assert gzip.decompress(first)  # and it is a plain gzip stream


def test_continuous_action_space_is_accepted() -> None:
    rows = validate_car_archive(build_car_archive(PB, CONTINUOUS))
    assert [row.name for row in rows] == ["agent/model.pb", "model_metadata.json"]


def test_member_rows_give_sizes_and_sha256_of_each_file() -> None:
    rows = {row.name: row for row in archive_members(build_car_archive(PB, DISCRETE))}
    assert rows["agent/model.pb"].size == len(PB)
    assert rows["agent/model.pb"].sha256 == hashlib.sha256(PB).hexdigest()
    assert rows["model_metadata.json"].sha256 == hashlib.sha256(DISCRETE).hexdigest()


def test_empty_graph_is_refused() -> None:
    with pytest.raises(DrtasksError, match="empty"):
        build_car_archive(b"", DISCRETE)


# ---------------------------------------------------------------- metadata


@pytest.mark.parametrize(
    ("metadata", "complaint"),
    [
        (b'{"action_space": [', "invalid JSON at line 1"),
        (b"[1, 2]", "expected a JSON object"),
        (b'{"sensor": ["FRONT_FACING_CAMERA"]}', "no 'action_space'"),
        (b'{"action_space": []}', "empty list"),
        (b'{"action_space": [{"speed": 1}]}', r"action_space\[0\] needs"),
        (b'{"action_space": {"speed": {"low": 1, "high": 2}}}', "lacks 'steering_angle'"),
        (b'{"action_space": "discrete"}', "must be a list"),
        (b"\xff\xfe", "not UTF-8"),
    ],
)
def test_metadata_without_a_usable_action_space_is_refused_before_building(metadata: bytes, complaint: str) -> None:
    with pytest.raises(DrtasksError, match=complaint):
        build_car_archive(PB, metadata)


def test_metadata_messages_name_the_file_they_come_from() -> None:
    with pytest.raises(DrtasksError, match=r"^s3://b/m/model_metadata.json: "):
        validate_metadata(b"{}", "s3://b/m/model_metadata.json")


def test_valid_metadata_is_returned_parsed() -> None:
    assert validate_metadata(DISCRETE)["action_space_type"] == "discrete"


# ---------------------------------------------------------------- validating what the car would ignore


def test_two_frozen_graphs_are_refused_because_the_car_ignores_such_archives() -> None:
    data = tar_gz(regular("agent/model.pb", PB), regular("extra/model_2.pb", PB), regular("model_metadata.json", DISCRETE))
    with pytest.raises(DrtasksError, match=r"exactly one \.pb file, found 2 \(agent/model.pb, extra/model_2.pb\)"):
        validate_car_archive(data, "carfile.tar.gz")


def test_archive_without_a_frozen_graph_is_refused() -> None:
    with pytest.raises(DrtasksError, match="found 0 \\(none\\)"):
        validate_car_archive(tar_gz(regular("model_metadata.json", DISCRETE)))


def test_metadata_below_the_root_does_not_count() -> None:
    data = tar_gz(regular("agent/model.pb", PB), regular("agent/model_metadata.json", DISCRETE))
    with pytest.raises(DrtasksError, match="no model_metadata.json at the archive root"):
        validate_car_archive(data)


def test_invalid_metadata_inside_an_archive_is_refused_naming_archive_and_member() -> None:
    data = tar_gz(regular("agent/model.pb", PB), regular("model_metadata.json", b'{"speed": 1}'))
    with pytest.raises(DrtasksError, match=r"^car.tar.gz: model_metadata.json: no 'action_space'"):
        validate_car_archive(data, "car.tar.gz")


def test_archive_at_or_over_the_car_upload_limit_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    assert CAR_UPLOAD_LIMIT_BYTES <= 200 * 1000 * 1000
    data = build_car_archive(PB, DISCRETE)
    monkeypatch.setattr(archive_module, "CAR_UPLOAD_LIMIT_BYTES", len(data))
    with pytest.raises(DrtasksError, match="the car accepts uploads under"):
        validate_car_archive(data)
    monkeypatch.setattr(archive_module, "CAR_UPLOAD_LIMIT_BYTES", len(data) + 1)
    assert validate_car_archive(data)


def test_path_traversal_member_is_refused() -> None:
    data = tar_gz(regular("../agent/model.pb", PB), regular("model_metadata.json", DISCRETE))
    with pytest.raises(DrtasksError, match="unsafe member path '../agent/model.pb'"):
        validate_car_archive(data)


def test_absolute_member_is_refused() -> None:
    data = tar_gz(regular("/agent/model.pb", PB), regular("model_metadata.json", DISCRETE))
    with pytest.raises(DrtasksError, match="unsafe member path"):
        validate_car_archive(data)


def test_link_member_is_refused() -> None:
    link = tarfile.TarInfo("agent/model.pb")
    link.type = tarfile.SYMTYPE
    link.linkname = "/etc/passwd"
    data = tar_gz((link, None), regular("model_metadata.json", DISCRETE))
    with pytest.raises(DrtasksError, match="not a regular file"):
        validate_car_archive(data)


def test_duplicate_member_is_refused() -> None:
    data = tar_gz(regular("agent/model.pb", PB), regular("model_metadata.json", b"{}"), regular("model_metadata.json", DISCRETE))
    with pytest.raises(DrtasksError, match="appears twice"):
        validate_car_archive(data)


def test_bytes_that_are_not_a_tar_gz_are_refused() -> None:
    with pytest.raises(DrtasksError, match="^x.tar.gz: not a readable .tar.gz"):
        validate_car_archive(b"PK\x03\x04 a zip file", "x.tar.gz")


def test_leading_dot_slash_is_the_same_root() -> None:
    data = tar_gz(regular("./agent/model.pb", PB), regular("./model_metadata.json", DISCRETE))
    assert [row.name for row in validate_car_archive(data)] == ["agent/model.pb", "model_metadata.json"]


# ---------------------------------------------------------------- naming


@pytest.mark.parametrize(
    ("wanted", "file_name"),
    [
        ("my-model", "my-model.tar.gz"),
        ("Fast Lap v1.2", "Fast_Lap_v1_2.tar.gz"),
        ("team/model", "team_model.tar.gz"),
        ("  spaced  ", "spaced.tar.gz"),
        ("a\\b:c", "a_b_c.tar.gz"),
    ],
)
def test_archive_file_name_replaces_what_the_car_or_a_key_would_mangle(wanted: str, file_name: str) -> None:
    assert archive_file_name(wanted) == file_name


@pytest.mark.parametrize("wanted", ["my-model", "Fast Lap v1.2", "team/model", "émile"])
def test_car_shows_the_name_encoded_in_the_archive_file_name(wanted: str) -> None:
    file_name = archive_file_name(wanted)
    assert car_model_name(file_name) == file_name.removesuffix(".tar.gz")
    assert "." not in car_model_name(file_name)


@pytest.mark.parametrize(
    ("file_name", "shown"),
    [
        ("carfile.tar.gz", "carfile"),
        ("My Model.v2.tar.gz", "My_Model"),
        ("uploads/prefix/fast lap.tar.gz", "fast_lap"),
        ("noextension", "noextension"),
    ],
)
def test_car_model_name_is_the_file_name_up_to_the_first_dot_with_spaces_as_underscores(file_name: str, shown: str) -> None:
    assert car_model_name(file_name) == shown


def test_names_the_car_would_show_as_empty_are_refused() -> None:
    with pytest.raises(DrtasksError, match="empty model name"):
        car_model_name(".tar.gz")
    with pytest.raises(DrtasksError, match="nothing usable"):
        archive_file_name("...")


def test_an_archive_is_written_from_a_stream_in_little_memory_and_describes_itself(tmp_path: Any) -> None:
    import os
    import tracemalloc
    from pathlib import Path

    peaks = {}
    for megabytes in (10, 40):
        graph = Path(tmp_path) / f"graph-{megabytes}.pb"
        graph.write_bytes(os.urandom(megabytes * 1_000_000))  # random: the archive is as large as the graph
        out_path = Path(tmp_path) / f"car-{megabytes}.tar.gz"
        tracemalloc.start()
        try:
            with graph.open("rb") as source, out_path.open("wb") as out:
                built = write_car_archive([("agent/model.pb", source, graph.stat().st_size), ("model_metadata.json", DISCRETE, len(DISCRETE))], out)
            peaks[megabytes] = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        data = out_path.read_bytes()
        assert data == build_car_archive(graph.read_bytes(), DISCRETE)  # the same bytes, streamed or not
        assert built.size == len(data) and built.sha256 == hashlib.sha256(data).hexdigest()
        parts = [hashlib.md5(data[i : i + built.part_size]).digest() for i in range(0, len(data), built.part_size)]
        assert built.etag == f"{hashlib.md5(b''.join(parts)).hexdigest()}-{len(parts)}"  # what S3 answers for it in parts
        assert built.members == archive_members(data)
    assert peaks[40] - peaks[10] < 10_000_000  # 30 MB more member, the same few blocks in memory: it streams
    assert peaks[40] < 45_000_000


def test_a_member_that_gives_fewer_or_more_bytes_than_announced_is_refused() -> None:
    for size in (len(PB) + 1, len(PB) - 1):
        with pytest.raises(DrtasksError, match="agent/model.pb"):
            write_car_archive([("agent/model.pb", io.BytesIO(PB), size), ("model_metadata.json", DISCRETE, len(DISCRETE))], io.BytesIO())
