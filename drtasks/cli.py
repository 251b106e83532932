"""Console scripts: `drtasks` (the invoke tasks from anywhere) and DRfC's familiar commands."""

from __future__ import annotations

import getopt
import sys
from dataclasses import dataclass
from typing import Callable, NoReturn

from drtasks import __version__
from drtasks.errors import DrtasksError
from drtasks.startup import pause_collection


def main() -> None:
    pause_collection()
    from invoke import Program

    from drtasks.tasks.namespace import build

    Program(namespace=build(), name="drtasks", binary="drtasks", version=__version__).run()


def _fail(command: str, message: str, code: int = 2) -> NoReturn:
    print(f"{command}: {message}", file=sys.stderr)
    sys.exit(code)


def _run(command: str, body: Callable[[], None]) -> None:
    from drtasks.secrets import install_log_redaction, redact

    install_log_redaction()
    try:
        body()
    except DrtasksError as error:
        _fail(command, redact(error.message), error.code)
    except KeyboardInterrupt:
        _fail(command, "interrupted", 130)
    except Exception as error:
        from drtasks.tasks.common import first_line, is_service_failure

        if not is_service_failure(error):
            raise
        _fail(command, f"{error.__class__.__name__}: {first_line(error)}", 1)


@dataclass(frozen=True)
class Switch:
    flag: str  # "-c", or a long option "--asset-type"
    argument: str | None  # "N" when the switch takes a value
    text: str
    aliases: tuple[str, ...] = ()  # other spellings of the same switch: ("--output",) for "-o"

    @property
    def names(self) -> tuple[str, ...]:
        return (self.flag, *self.aliases)

    def shown(self) -> str:
        return ", ".join(self.names) + (f" {self.argument}" if self.argument else "")


@dataclass(frozen=True)
class Operand:
    name: str  # "ID"
    text: str


@dataclass(frozen=True)
class DropIn:
    """A DRfC command as drtasks provides it: its switches and operands, explained by -h / --help.

    Short switches combine as DRfC's getopts allows (``-bf``); long ones take their value after a
    space or ``=``; switches may come before or after the operands, as with argparse.
    """

    name: str
    summary: str
    switches: tuple[Switch, ...]
    operands: tuple[Operand, ...] = ()
    synopsis: str | None = None  # the usage line after the name, when the switches alone do not tell it

    @property
    def usage(self) -> str:
        if self.synopsis:
            return self.synopsis
        words = [o.name for o in self.operands]
        words += [f"[{s.flag}{' ' + s.argument if s.argument else ''}]" for s in self.switches]
        return " ".join(words)

    def help(self) -> str:
        rows = [(o.name, o.text) for o in self.operands]
        switches = [(s.shown(), s.text) for s in self.switches] + [("-h, --help", "show this help and exit")]
        width = max(len(left) for left, _ in rows + switches)
        lines = [f"Usage: {self.name} {self.usage}", "", self.summary]
        if rows:
            lines += ["", "Arguments:", *(f"  {left.ljust(width)}  {text}" for left, text in rows)]
        lines += ["", "Options:", *(f"  {left.ljust(width)}  {text}" for left, text in switches)]
        return "\n".join(lines)

    def parse(self, argv: list[str]) -> dict[str, str]:
        """{primary flag: value ('' for a plain switch)} plus {operand name: value}."""
        primary = {name: s.flag for s in self.switches for name in s.names}
        takes = {name: bool(s.argument) for s in self.switches for name in s.names}
        shorts = "".join(n[1] + (":" if takes[n] else "") for n in primary if len(n) == 2 and n[1] != "-") + "h"
        longs = [n[2:] + ("=" if takes[n] else "") for n in primary if n.startswith("--")] + ["help"]
        try:
            options, rest = getopt.gnu_getopt(argv, shorts, longs)
        except getopt.GetoptError as error:
            _fail(self.name, f"{error.msg}; usage: {self.name} {self.usage} (see --help)")
        if any(flag in ("-h", "--help") for flag, _ in options):
            print(self.help())
            sys.exit(0)
        if len(rest) > len(self.operands):
            # The value is not repeated: a stray word may be a password typed without its switch.
            _fail(self.name, f"unexpected argument number {len(self.operands) + 1}; usage: {self.name} {self.usage} (see --help)")
        if len(rest) < len(self.operands):
            _fail(self.name, f"missing {self.operands[len(rest)].name}; usage: {self.name} {self.usage} (see --help)")
        parsed = {primary[flag]: value for flag, value in options}
        parsed.update({operand.name: value for operand, value in zip(self.operands, rest)})
        return parsed


UPLOAD_MODEL = DropIn(
    "dr-upload-model",
    "Upload the trained model's chosen checkpoint to the upload bucket in the race layout (plan, ask, copy, verify).",
    (
        Switch("-f", None, "force: do not ask before writing"),
        Switch("-w", None, "wipe: also delete target objects that are not part of the upload"),
        Switch("-d", None, "dry run: show the plan, write nothing"),
        Switch("-b", None, "upload the best checkpoint instead of the last"),
        Switch("-c", "N", "upload checkpoint number N"),
        Switch("-p", "PREFIX", "use PREFIX as both the model prefix and the upload prefix"),
        Switch("-i", None, "import the uploaded model, named after the upload prefix"),
        Switch("-I", "NAME", "import the uploaded model as NAME"),
        Switch("-1", None, "increment the upload prefix first (dr-increment-upload-model)"),
        Switch("-L", None, "upload into the local training bucket (refused when it is the source itself)"),
    ),
)
INCREMENT = DropIn(
    "dr-increment-upload-model",
    "Bump the trailing number of DR_UPLOAD_S3_PREFIX where it is written (run.env or a profile); a .bak is kept.",
    (
        Switch("-d", "DELIMITER", "the character before the number (default '-')"),
        Switch("-w", None, "wipe: also delete whatever the new prefix holds (asks first)"),
        Switch("-f", None, "force: do not ask before wiping"),
    ),
)
CREATE_CAR_ZIP = DropIn(
    "dr-create-car-zip",
    "Build the physical car's archive (agent/model.pb + model_metadata.json) from the model in the training bucket,"
    " checked against its metadata, as <model-prefix>.tar.gz. A new file is written without asking, like DRfC's.",
    (
        Switch("-b", None, "use the best checkpoint (default: the last)"),
        Switch("-p", "PREFIX", "the model prefix (default: DR_LOCAL_S3_MODEL_PREFIX); also names the archive"),
        Switch("-o", "FILE", "the output file (default: $DR_DIR/data/output/<model-prefix>.tar.gz)"),
        Switch("-f", None, "force: replace an existing, different output file without asking (drtasks)"),
    ),
)
UPLOAD_CAR_ZIP = DropIn(
    "dr-upload-car-zip",
    "Build <model-prefix>.tar.gz in $DR_DIR like dr-create-car-zip and upload it to"
    " s3://<DR_UPLOAD_S3_BUCKET>/<DR_UPLOAD_S3_PREFIX>/<model-prefix>.tar.gz (plan, ask, write, verify).",
    (
        Switch("-b", None, "use the best checkpoint (default: the last)"),
        Switch("-f", None, "force: do not ask before writing"),
        Switch("-L", None, "upload into the local training bucket instead: s3://<DR_LOCAL_S3_BUCKET>/<model-prefix>/<model-prefix>.tar.gz"),
        Switch("-p", "PREFIX", "the model prefix (default: DR_LOCAL_S3_MODEL_PREFIX); also names the archive"),
    ),
)
DOWNLOAD_MODEL = DropIn(
    "dr-download-model",
    "Copy a model from any S3 location (reached as the upload bucket is) into the training bucket as PREFIX: a drtasks"
    " backup is checked against its drtasks-backup.json first; any other model is copied whole, as DRfC's sync does."
    " A model already at PREFIX is refused unless -w (DRfC would merge into it).",
    (
        Switch("-s", "URL", "the model to download: s3://bucket/prefix"),
        Switch("-t", "PREFIX", "the model prefix to download into, in DR_LOCAL_S3_BUCKET"),
        Switch("-f", None, "force: do not ask before writing"),
        Switch("-w", None, "wipe: replace a model already at PREFIX (what the download does not hold is deleted)"),
        Switch("-d", None, "dry run: show the plan, write nothing"),
        Switch("-c", None, "also copy the model's config (reward_function.py, model_metadata.json, hyperparameters.json) into $DR_DIR/custom_files"),
    ),
)


def dr_upload_model(argv: list[str] | None = None) -> None:
    """DRfC's dr-upload-model switches, driving the same engine as `inv upload`."""
    from drtasks.tasks.upload_tasks import UploadRequest, run_upload

    pause_collection()
    command = UPLOAD_MODEL.name
    flags = UPLOAD_MODEL.parse(sys.argv[1:] if argv is None else argv)
    if "-i" in flags and "-I" in flags:
        _fail(command, "-i and -I exclude each other")
    import_name = flags.get("-I") if "-I" in flags else ("" if "-i" in flags else None)
    request = UploadRequest(
        force="-f" in flags,
        wipe="-w" in flags,
        dry_run="-d" in flags,
        best="-b" in flags,
        checkpoint=flags.get("-c"),
        prefix=flags.get("-p"),
        local="-L" in flags,
        import_name=import_name,
        increment="-1" in flags,
    )
    _run(command, lambda: run_upload(request))


def dr_increment_upload_model(argv: list[str] | None = None) -> None:
    from drtasks.tasks.upload_tasks import run_increment

    command = INCREMENT.name
    flags = INCREMENT.parse(sys.argv[1:] if argv is None else argv)

    def increment() -> None:
        run_increment(None, delimiter=flags.get("-d", "-"), wipe="-w" in flags, force="-f" in flags)

    _run(command, increment)


def dr_create_car_zip(argv: list[str] | None = None) -> None:
    """DRfC's dr-create-car-zip: the car's archive from the last or best checkpoint in S3, as a file."""
    from drtasks.tasks.carzip_tasks import run_drfc_car_zip

    pause_collection()
    command = CREATE_CAR_ZIP.name
    flags = CREATE_CAR_ZIP.parse(sys.argv[1:] if argv is None else argv)
    create = lambda: run_drfc_car_zip(upload=False, best="-b" in flags, prefix=flags.get("-p"), output=flags.get("-o"), force="-f" in flags)  # noqa: E731
    _run(command, create)


def dr_upload_car_zip(argv: list[str] | None = None) -> None:
    """DRfC's dr-upload-car-zip: dr-create-car-zip's archive, uploaded as <model-prefix>.tar.gz."""
    from drtasks.tasks.carzip_tasks import run_drfc_car_zip

    pause_collection()
    command = UPLOAD_CAR_ZIP.name
    flags = UPLOAD_CAR_ZIP.parse(sys.argv[1:] if argv is None else argv)
    upload = lambda: run_drfc_car_zip(upload=True, best="-b" in flags, prefix=flags.get("-p"), local="-L" in flags, force="-f" in flags)  # noqa: E731
    _run(command, upload)


def dr_download_model(argv: list[str] | None = None) -> None:
    """DRfC's dr-download-model: a model (or a drtasks backup) from S3 into the training bucket."""
    from drtasks.tasks.backup_tasks import RestoreRequest, run_restore

    pause_collection()
    command = DOWNLOAD_MODEL.name
    flags = DOWNLOAD_MODEL.parse(sys.argv[1:] if argv is None else argv)
    if not flags.get("-s"):
        _fail(command, f"no source URL to download the model from: -s s3://bucket/prefix; usage: {command} {DOWNLOAD_MODEL.usage}")
    if not flags.get("-t"):
        _fail(command, f"no target prefix: -t PREFIX; usage: {command} {DOWNLOAD_MODEL.usage}")
    request = RestoreRequest(
        flags["-s"], prefix=flags["-t"], wipe="-w" in flags, config="-c" in flags, force="-f" in flags, dry_run="-d" in flags, drfc=True
    )
    _run(command, lambda: run_restore(request))


# ---------------------------------------------------------------------------- DRfC's droa-* commands
# Each takes DRfC's --url, --username and --password (DR_DROA_URL, DR_DROA_USERNAME; the password is
# better given as DR_DROA_PASSWORD or typed when asked: a command line is visible to other users).

DROA_COMMON = (
    Switch("--url", "URL", "the DeepRacer on AWS site (default: DR_DROA_URL)"),
    Switch("--username", "NAME", "your DRoA user (default: DR_DROA_USERNAME)"),
    Switch("--password", "PASSWORD", "your DRoA password (better: DR_DROA_PASSWORD, or type it when asked); never printed or stored"),
)
MODEL_ID = Operand("ID", "the model's id (or its name)")

DROA_LIST_MODELS = DropIn(
    "droa-list-models",
    "List your models in DeepRacer on AWS, newest first: name, status, training status, created, id.",
    (Switch("--json", None, "print DRoA's model records as JSON (presigned URLs without their signatures)"), *DROA_COMMON),
)
DROA_GET_MODEL = DropIn(
    "droa-get-model",
    "Show one DRoA model: identity, car, track, agent and hyperparameters.",
    (
        Switch("-v", None, "also the whole action space and the reward function", aliases=("--verbose",)),
        Switch("--summary", None, "also the training per iteration, from the metrics DRoA imported"),
        Switch("--json", None, "print DRoA's model record as JSON"),
        *DROA_COMMON,
    ),
    operands=(MODEL_ID,),
)
DROA_DOWNLOAD_LOGS = DropIn(
    "droa-download-logs",
    "Download an asset of a DRoA model (default TRAINING_LOGS): waits up to 5 minutes while DRoA packages a VIRTUAL_MODEL,"
    " writes <file>.part and renames it once its size and checksum are proven. A new file is written without asking, like DRfC's.",
    (
        Switch("--asset-type", "T", "TRAINING_LOGS (default), EVALUATION_LOGS, PHYSICAL_CAR_MODEL, VIRTUAL_MODEL or VIDEOS"),
        Switch("--evaluation-id", "E", "the evaluation, for EVALUATION_LOGS"),
        Switch("-o", "FILE", "the output file (default: DRoA's name for it, in the current folder)", aliases=("--output",)),
        Switch("--summary", None, "after downloading TRAINING_LOGS: the simulation's step timing and the training per iteration"),
        Switch("-f", None, "force: replace an existing file without asking (drtasks)"),
        *DROA_COMMON,
    ),
    operands=(MODEL_ID,),
)
DROA_DELETE_MODEL = DropIn(
    "droa-delete-model",
    "Delete a DRoA model (only READY or ERROR models can be); without -y you type the model's name to confirm.",
    (Switch("-y", None, "do not ask for the model's name", aliases=("--yes",)), *DROA_COMMON),
    operands=(MODEL_ID,),
)
DROA_IMPORT_MODEL = DropIn(
    "droa-import-model",
    "Import a DRfC model into DeepRacer on AWS: from the training bucket (--model-prefix) or a model folder of this machine"
    " (--model-dir), checked with DRoA's rules, uploaded put-only and proven, then imported. Nothing existing is replaced, so it does"
    " not ask, like DRfC's.",
    (
        Switch("--model-prefix", "P", "the model prefix in the training bucket (DR_LOCAL_S3_BUCKET); also the default model name"),
        Switch("--model-dir", "DIR", "a DRfC model folder (model/, ip/, metrics/, reward_function.py, training_params*.yaml); its name is the default model name"),
        Switch("--model-name", "NAME", "the name in DRoA (letters, digits, '-'; at most 64)"),
        Switch("--model-description", "TEXT", "the description in DRoA (letters, digits, spaces, '-')"),
        Switch("--best", None, "the best checkpoint instead of the last"),
        Switch("--checkpoint", "N", "checkpoint number N"),
        *DROA_COMMON,
    ),
    synopsis="(--model-prefix P | --model-dir DIR) [--model-name NAME] [--model-description TEXT] [--best | --checkpoint N]"
    " [--url URL] [--username NAME] [--password PASSWORD]",
)


def _droa_flags(command: str, flags: dict[str, str]) -> dict[str, tuple[str, str]]:
    """--url/--username as DR_* settings; --password goes to the sign-in, and nowhere else."""
    from drtasks.importing.droa import use_password

    if "--password" in flags:
        password = flags.pop("--password")
        if not password:
            _fail(command, "--password is empty")
        use_password(password)
    settings: dict[str, tuple[str, str]] = {}
    if flags.get("--url"):
        settings["DR_DROA_URL"] = (flags["--url"], "--url")
    if flags.get("--username"):
        settings["DR_DROA_USERNAME"] = (flags["--username"], "--username")
    return settings


def droa_list_models(argv: list[str] | None = None) -> None:
    """DRfC's droa-list-models: `inv models --target droa`; --json prints DRoA's records."""
    from drtasks.tasks.import_tasks import run_models

    pause_collection()
    flags = DROA_LIST_MODELS.parse(sys.argv[1:] if argv is None else argv)
    settings = {**_droa_flags(DROA_LIST_MODELS.name, flags), "DR_IMPORT_TARGET": ("droa", DROA_LIST_MODELS.name)}
    _run(DROA_LIST_MODELS.name, lambda: run_models(None, settings, json="--json" in flags, raw="--json" in flags))


def droa_get_model(argv: list[str] | None = None) -> None:
    """DRfC's droa-get-model: `inv model-info`."""
    from drtasks.tasks.droa_tasks import run_model_info

    pause_collection()
    flags = DROA_GET_MODEL.parse(sys.argv[1:] if argv is None else argv)
    settings = _droa_flags(DROA_GET_MODEL.name, flags)
    _run(DROA_GET_MODEL.name, lambda: run_model_info(None, flags["ID"], "-v" in flags, "--summary" in flags, "--json" in flags, settings))


def droa_download_logs(argv: list[str] | None = None) -> None:
    """DRfC's droa-download-logs: `inv download-asset`; a new file is written without asking, as DRfC's does."""
    from drtasks.importing.droa_assets import DEFAULT_ASSET
    from drtasks.tasks.droa_tasks import run_download

    pause_collection()
    command = DROA_DOWNLOAD_LOGS.name
    flags = DROA_DOWNLOAD_LOGS.parse(sys.argv[1:] if argv is None else argv)
    settings = _droa_flags(command, flags)

    def download() -> None:
        # DRfC's command never asks; drtasks asks only before replacing a file (-f: not even then).
        run_download(None, flags["ID"], flags.get("--asset-type", DEFAULT_ASSET), flags.get("--evaluation-id"), flags.get("-o"),
                     "--summary" in flags, force="-f" in flags, flags=settings, ask_only_to_replace=True)

    _run(command, download)


def droa_delete_model(argv: list[str] | None = None) -> None:
    """DRfC's droa-delete-model: `inv delete-model`; -y does not ask for the name."""
    from drtasks.tasks.droa_tasks import run_delete

    pause_collection()
    flags = DROA_DELETE_MODEL.parse(sys.argv[1:] if argv is None else argv)
    settings = _droa_flags(DROA_DELETE_MODEL.name, flags)
    _run(DROA_DELETE_MODEL.name, lambda: run_delete(None, flags["ID"], force="-y" in flags, flags=settings))


def droa_import_model(argv: list[str] | None = None) -> None:
    """DRfC's droa-import-model: `inv import-model --target droa` from --model-prefix or --model-dir."""
    from drtasks.tasks.common import checkpoint_flags
    from drtasks.tasks.import_tasks import run_import

    pause_collection()
    command = DROA_IMPORT_MODEL.name
    flags = DROA_IMPORT_MODEL.parse(sys.argv[1:] if argv is None else argv)
    if ("--model-prefix" in flags) == ("--model-dir" in flags):
        _fail(command, f"give one of --model-prefix P and --model-dir DIR; usage: {command} {DROA_IMPORT_MODEL.usage}")
    settings = _droa_flags(command, flags)
    settings["DR_IMPORT_TARGET"] = ("droa", command)

    def import_() -> None:
        settings.update(checkpoint_flags("--best" in flags, flags.get("--checkpoint")))
        prefix = flags.get("--model-prefix", "").strip("/")
        if "--model-prefix" in flags:
            if not prefix:
                raise DrtasksError("--model-prefix: an empty prefix names no model")
            settings["DR_LOCAL_S3_MODEL_PREFIX"] = (prefix, "--model-prefix")
        name = flags.get("--model-name") or prefix or None
        if name:
            settings["DR_IMPORT_NAME"] = (name, "--model-name" if "--model-name" in flags else "--model-prefix")
        if "--model-description" in flags:
            settings["DR_IMPORT_DESCRIPTION"] = (flags["--model-description"], "--model-description")
        run_import(None, settings, model_dir=flags.get("--model-dir"), force=True)

    _run(command, import_)
