"""Configuration: DRfC env files, YAML profiles, precedence, provenance, and bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from drtasks.config.settings import resolve
from drtasks.errors import DrtasksError
from tests.cli import drtasks

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def dr_dir(tmp_path: Path) -> Path:
    write(tmp_path / "system.env", "DR_CLOUD=local\nDR_UPLOAD_S3_BUCKET=upload-bucket\nDR_LOCAL_S3_BUCKET=bucket\n")
    write(
        tmp_path / "run.env",
        "# a run\nDR_LOCAL_S3_MODEL_PREFIX=my-model\nDR_UPLOAD_S3_PREFIX=$DR_LOCAL_S3_MODEL_PREFIX-1\n"
        "DR_LOCAL_S3_METRICS_PREFIX=${DR_LOCAL_S3_MODEL_PREFIX}/metrics\nDR_CAR_NAME=Speedy\n",
    )
    return tmp_path


def env_for(dr_dir: Path, **extra: str) -> dict[str, str]:
    return {"DR_DIR": str(dr_dir), **extra}


# -- env files ------------------------------------------------------------------------


@pytest.mark.skipif(not REFERENCE.is_dir(), reason="the shared reference templates are beside the repository in CI")
def test_drfc_templates_parse_with_run_values_after_system_values(tmp_path: Path) -> None:
    shutil.copy(REFERENCE / "drfc-template-system.env", tmp_path / "system.env")
    shutil.copy(REFERENCE / "drfc-template-run.env", tmp_path / "run.env")
    settings = resolve(environ=env_for(tmp_path), warn=lambda _m: None)
    assert settings.get("DR_UPLOAD_S3_PREFIX") == "rl-deepracer-sagemaker-1"
    assert settings.get("DR_LOCAL_S3_REWARD_KEY") == "custom_files/reward_function.py"
    assert settings.get("DR_DISPLAY_NAME") == "FastCar"
    assert str(settings.origin("DR_WORLD_NAME")) == "run file (run.env:2)"
    assert str(settings.origin("DR_LOCAL_S3_BUCKET")) == "system.env (system.env:5)"


def test_references_expand_from_earlier_values_then_the_process_environment(tmp_path: Path) -> None:
    write(tmp_path / "system.env", "DR_A=one\n")
    write(tmp_path / "run.env", "DR_B=$DR_A-${DR_A}\nDR_C=$HOME_LIKE/x\nDR_D='$DR_A'\nDR_E=\"quoted value\"  \n")
    settings = resolve(environ=env_for(tmp_path, HOME_LIKE="/home/racer"), warn=lambda _m: None)
    assert settings.get("DR_B") == "one-one"
    assert settings.get("DR_C") == "/home/racer/x"
    assert settings.get("DR_D") == "$DR_A"  # single quotes keep it literal, as bash does
    assert settings.get("DR_E") == "quoted value"


def test_an_undefined_reference_warns_with_file_and_line_and_expands_to_empty(tmp_path: Path) -> None:
    write(tmp_path / "run.env", "DR_A=1\nDR_DISPLAY_NAME=$DR_NOPE-car\n")
    warnings: list[str] = []
    settings = resolve(environ=env_for(tmp_path), warn=warnings.append)
    assert settings.get("DR_DISPLAY_NAME") == "-car"
    assert warnings == [f"{tmp_path / 'run.env'}:2: $DR_NOPE is not defined; it expands to an empty string"]


@pytest.mark.parametrize(
    "line",
    [
        "DR_UPLOAD_S3_PREFIX=$DR_UNDEFINED/",
        "DR_UPLOAD_S3_BUCKET=${DR_UNDEFINED}",
        "DR_LOCAL_S3_MODEL_PREFIX=models/$DR_UNDEFINED",
        "DR_LOCAL_S3_REWARD_KEY=$DR_UNDEFINED/reward_function.py",
        "DR_LOCAL_S3_METRICS_PREFIX=$DR_UNDEFINED/metrics",
        "DR_UPLOAD_S3_ENDPOINT_URL=http://$DR_UNDEFINED:9000",
        "DR_UPLOAD_S3_PROFILE=$DR_UNDEFINED",
        "DR_DROA_URL=https://$DR_UNDEFINED",
    ],
)
def test_an_undefined_reference_in_a_bucket_prefix_key_or_endpoint_is_an_error_naming_file_line_and_variable(tmp_path: Path, line: str) -> None:
    write(tmp_path / "run.env", f"DR_A=1\n{line}\n")
    with pytest.raises(DrtasksError) as refused:
        resolve(environ=env_for(tmp_path), warn=lambda _m: None)
    key = line.split("=", 1)[0]
    assert str(refused.value).startswith(f"{tmp_path / 'run.env'}:2: {key} refers to $DR_UNDEFINED, which is not defined")


def test_an_undefined_reference_a_higher_layer_defines_is_neither_error_nor_warning(tmp_path: Path) -> None:
    write(tmp_path / "run.env", "DR_UPLOAD_S3_PREFIX=$DR_LOCAL_S3_MODEL_PREFIX-1\n")
    warnings: list[str] = []
    settings = resolve(environ=env_for(tmp_path, DR_LOCAL_S3_MODEL_PREFIX="from-env"), warn=warnings.append)
    assert settings.get("DR_UPLOAD_S3_PREFIX") == "from-env-1" and warnings == []


def test_an_undefined_reference_in_a_line_a_higher_layer_overrides_is_harmless(tmp_path: Path) -> None:
    write(tmp_path / "run.env", "DR_UPLOAD_S3_PREFIX=$DR_UNDEFINED/\n")
    settings = resolve(environ=env_for(tmp_path, DR_UPLOAD_S3_PREFIX="from-env"), warn=lambda _m: None)
    assert settings.get("DR_UPLOAD_S3_PREFIX") == "from-env"


def test_run_file_is_dr_config_then_the_experiment_then_run_env(dr_dir: Path) -> None:
    write(dr_dir / "experiments" / "exp1" / "run.env", "DR_CAR_NAME=FromExperiment\n")
    write(dr_dir / "other.env", "DR_CAR_NAME=FromConfig\n")
    assert resolve(environ=env_for(dr_dir)).get("DR_CAR_NAME") == "Speedy"
    assert resolve(environ=env_for(dr_dir, DR_EXPERIMENT_NAME="exp1")).get("DR_CAR_NAME") == "FromExperiment"
    both = env_for(dr_dir, DR_EXPERIMENT_NAME="exp1", DR_CONFIG=str(dr_dir / "other.env"))
    assert resolve(environ=both).get("DR_CAR_NAME") == "FromConfig"


def test_a_named_run_file_that_does_not_exist_is_an_error(dr_dir: Path) -> None:
    with pytest.raises(DrtasksError, match="env file not found"):
        resolve(environ=env_for(dr_dir, DR_CONFIG="missing.env"))


def test_a_line_that_is_not_an_assignment_names_file_and_line(dr_dir: Path) -> None:
    write(dr_dir / "run.env", "DR_A=1\nthis is not right\n")
    with pytest.raises(DrtasksError, match=r"run.env:2: not a KEY=VALUE line"):
        resolve(environ=env_for(dr_dir))


# -- precedence and provenance ---------------------------------------------------------


def test_each_layer_overrides_the_one_below_and_remembers_where_it_came_from(dr_dir: Path) -> None:
    write(dr_dir / "profiles" / "base.yaml", "upload:\n  bucket: base-bucket\n  prefix: base-prefix\ncheckpoint: best\n")
    write(dr_dir / "profiles" / "race.yaml", "extends: base\nupload:\n  prefix: race-prefix\n")
    settings = resolve("race", environ=env_for(dr_dir))
    assert settings.get("DR_UPLOAD_S3_BUCKET") == "base-bucket"
    assert str(settings.origin("DR_UPLOAD_S3_BUCKET")) == "profile (base: profiles/base.yaml:2)"
    assert settings.get("DR_UPLOAD_S3_PREFIX") == "race-prefix"
    assert str(settings.origin("DR_UPLOAD_S3_PREFIX")) == "profile (race: profiles/race.yaml:3)"
    assert settings.get("DR_UPLOAD_CHECKPOINT") == "best"
    assert str(settings.origin("DR_CLOUD")) == "system.env (system.env:1)"
    assert str(settings.origin("DR_RACE_TYPE")) == "default"

    from_env = resolve("race", environ=env_for(dr_dir, DR_UPLOAD_S3_PREFIX="env-prefix"))
    assert from_env.get("DR_UPLOAD_S3_PREFIX") == "env-prefix"
    assert str(from_env.origin("DR_UPLOAD_S3_PREFIX")) == "env ($DR_UPLOAD_S3_PREFIX)"

    from_flag = resolve("race", {"DR_UPLOAD_S3_PREFIX": ("flag-prefix", "--prefix")}, environ=env_for(dr_dir, DR_UPLOAD_S3_PREFIX="env-prefix"))
    assert from_flag.get("DR_UPLOAD_S3_PREFIX") == "flag-prefix"
    assert str(from_flag.origin("DR_UPLOAD_S3_PREFIX")) == "flag (--prefix)"


def test_a_file_value_follows_a_reference_that_a_profile_overrides(dr_dir: Path) -> None:
    write(dr_dir / "profiles" / "other.yaml", "source:\n  prefix: other-model\n")
    settings = resolve("other", environ=env_for(dr_dir))
    assert settings.get("DR_UPLOAD_S3_PREFIX") == "other-model-1"
    assert settings.get("DR_LOCAL_S3_METRICS_PREFIX") == "other-model/metrics"
    assert "follows DR_LOCAL_S3_MODEL_PREFIX" in str(settings.origin("DR_UPLOAD_S3_PREFIX"))


def test_profile_env_section_sets_raw_dr_variables(dr_dir: Path) -> None:
    write(dr_dir / "profiles" / "raw.yaml", "env:\n  DR_WORLD_NAME: 2022_april_open\n  DR_TRAIN_MIN_EVAL_TRIALS: 7\n")
    settings = resolve("raw", environ=env_for(dr_dir))
    assert settings.get("DR_WORLD_NAME") == "2022_april_open"
    assert settings.get("DR_TRAIN_MIN_EVAL_TRIALS") == "7"


def test_user_profiles_shadow_the_shipped_examples(dr_dir: Path) -> None:
    write(dr_dir / "profiles" / "summit.yaml", "description: mine\n")
    settings = resolve("summit", environ=env_for(dr_dir))
    assert settings.get("DR_IMPORT_TARGET") is None
    assert resolve("console", environ=env_for(dr_dir)).get("DR_IMPORT_TARGET") == "console"  # shipped one


def test_endpoints_follow_dr_cloud_unless_set_explicitly(dr_dir: Path) -> None:
    from drtasks.config import targets

    settings = resolve(environ=env_for(dr_dir))
    assert targets.source_location(settings).endpoint_url == "http://localhost:9000"
    assert targets.upload_location(settings).endpoint_url is None
    remote = resolve(environ=env_for(dr_dir, DR_CLOUD="remote", DR_REMOTE_MINIO_URL="http://nas:9000"))
    assert targets.source_location(remote).endpoint_url == "http://nas:9000"
    explicit = resolve(environ=env_for(dr_dir, DR_LOCAL_S3_ENDPOINT_URL="http://127.0.0.1:8333"))
    assert targets.source_location(explicit).endpoint_url == "http://127.0.0.1:8333"
    template = resolve(environ=env_for(dr_dir, DR_CLOUD="<CLOUD_REPLACE>"))
    with pytest.raises(DrtasksError, match=r"DR_CLOUD is '<CLOUD_REPLACE>' \(env \(\$DR_CLOUD\)\); expected aws, local, remote or azure"):
        targets.source_location(template)


# -- bad input: one clear line, non-zero exit, no traceback ------------------------------


def assert_one_line_failure(result: object, *fragments: str) -> None:
    assert result.code != 0  # type: ignore[attr-defined]
    assert "Traceback" not in result.text  # type: ignore[attr-defined]
    lines = [line for line in result.err.strip().splitlines() if line]  # type: ignore[attr-defined]
    assert len(lines) == 1, result.err  # type: ignore[attr-defined]
    for fragment in fragments:
        assert fragment in lines[0]


def test_unknown_profile_lists_the_available_ones(dr_dir: Path) -> None:
    write(dr_dir / "profiles" / "mine.yaml", "description: mine\n")
    result = drtasks("config", "--profile", "mien", dr_dir=dr_dir)
    assert_one_line_failure(result, "unknown profile 'mien'", "did you mean 'mine'?", "mine", "summit")


def test_yaml_syntax_error_names_file_and_line(dr_dir: Path) -> None:
    write(dr_dir / "profiles" / "broken.yaml", "description: ok\nupload:\n  bucket: [unclosed\n  prefix: x\n")
    result = drtasks("config", "--profile", "broken", dr_dir=dr_dir)
    assert_one_line_failure(result, "profiles/broken.yaml:", "YAML syntax error")


def test_unknown_profile_key_is_named_with_its_line_and_the_closest_key(dr_dir: Path) -> None:
    write(dr_dir / "profiles" / "typo.yaml", "description: ok\nupload:\n  bucket: b\n  prefx: p\n")
    result = drtasks("config", "--profile", "typo", dr_dir=dr_dir)
    assert_one_line_failure(result, "typo.yaml:4", "unknown key 'upload.prefx'", "did you mean 'prefix'?")


def test_a_value_of_the_wrong_type_is_refused(dr_dir: Path) -> None:
    write(dr_dir / "profiles" / "wrong.yaml", "checkpoint: bestest\n")
    result = drtasks("config", "--profile", "wrong", dr_dir=dr_dir)
    assert_one_line_failure(result, "wrong.yaml:1", "checkpoint: must be 'last', 'best', a checkpoint number or 'best-by:progress|reward|laptime'")
    write(dr_dir / "profiles" / "wrong2.yaml", "upload:\n  bucket: [a, b]\n")
    result = drtasks("config", "--profile", "wrong2", dr_dir=dr_dir)
    assert_one_line_failure(result, "wrong2.yaml:2", "upload.bucket")


def test_an_extends_cycle_is_refused(dr_dir: Path) -> None:
    write(dr_dir / "profiles" / "a.yaml", "extends: b\n")
    write(dr_dir / "profiles" / "b.yaml", "extends: a\n")
    result = drtasks("config", "--profile", "a", dr_dir=dr_dir)
    assert_one_line_failure(result, "extends cycle: a -> b -> a")


@pytest.mark.parametrize("name", ["../etc/passwd", "sub/dir", "..", "a..b"])
def test_a_profile_name_that_is_a_path_is_refused(dr_dir: Path, name: str) -> None:
    result = drtasks("config", "--profile", name, dr_dir=dr_dir)
    assert_one_line_failure(result, "a profile name is a plain file name")


def test_an_unreadable_env_file_is_a_clear_error(dr_dir: Path) -> None:
    (dr_dir / "run.env").write_bytes(b"DR_A=\xff\xfe\n")
    result = drtasks("config", dr_dir=dr_dir)
    assert_one_line_failure(result, "run.env: cannot read env file")


def test_an_undefined_reference_is_a_warning_not_a_failure(dr_dir: Path) -> None:
    write(dr_dir / "run.env", "DR_UPLOAD_S3_PREFIX=race\nDR_DISPLAY_NAME=$DR_UNSET_THING-x\n")
    result = drtasks("config", dr_dir=dr_dir)
    assert result.code == 0
    assert "run.env:2: $DR_UNSET_THING is not defined" in result.err


# -- the tasks' output ---------------------------------------------------------------------


def test_config_shows_values_with_sources_and_redacts_secrets(dr_dir: Path) -> None:
    write(dr_dir / "profiles" / "p.yaml", "env:\n  DR_DROA_PASSWORD: hunter2-secret\n  DR_SOME_SECRET_KEY: abc123xyz\n")
    result = drtasks("config", "--profile", "p", "--json", dr_dir=dr_dir)
    assert result.code == 0, result.err
    assert "hunter2-secret" not in result.text and "abc123xyz" not in result.text
    rows = {row["key"]: row for row in json.loads(result.out)["settings"]}
    assert rows["DR_DROA_PASSWORD"]["value"] == "****"
    assert rows["DR_CAR_NAME"] == {"key": "DR_CAR_NAME", "value": "Speedy", "source": "run file (run.env:5)"}
    assert rows["upload"]["value"] == "s3://upload-bucket/my-model-1"
    table = drtasks("config", "--profile", "p", dr_dir=dr_dir)
    assert "hunter2-secret" not in table.text and "DR_CAR_NAME" in table.out and "run.env:5" in table.out


def test_profiles_lists_name_description_target_checkpoint_and_import(dr_dir: Path) -> None:
    write(dr_dir / "profiles" / "weekend.yaml", "description: Weekend race\ncheckpoint: 12\nupload:\n  bucket: ub\n  prefix: wk\nimport:\n  target: droa\n")
    result = drtasks("profiles", "--json", dr_dir=dr_dir)
    assert result.code == 0, result.err
    rows = {row["name"]: row for row in json.loads(result.out)}
    assert rows["weekend"]["description"] == "Weekend race"
    assert rows["weekend"]["upload"] == "s3://ub/wk"
    assert rows["weekend"]["checkpoint"] == "12"
    assert rows["weekend"]["import"] == "droa"
    assert "summit" in rows  # shipped examples are listed after the user's
    table = drtasks("profiles", dr_dir=dr_dir)
    assert "Weekend race" in table.out


def test_every_task_is_listed_with_help(dr_dir: Path) -> None:
    result = drtasks("--list", dr_dir=dr_dir)
    for task in ("config", "profiles", "local-s3", "demo", "upload", "increment", "car-zip", "import-model", "models"):
        assert f"  {task} " in result.out
    help_text = drtasks("--help", "upload", dr_dir=dr_dir).out
    for flag in ("--force", "--wipe", "--dry-run", "--best", "--checkpoint", "--prefix", "-L, --local", "--import", "-I", "--json"):
        assert flag in help_text
