"""Console scripts: `drtasks` (the invoke tasks from anywhere) and DRfC's familiar commands."""

from __future__ import annotations

import getopt
import sys
from dataclasses import dataclass
from typing import Callable, NoReturn

from drtasks import __version__
from drtasks.errors import DrtasksError, shorten
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
    flag: str  # "-c"
    argument: str | None  # "N" when the switch takes a value
    text: str


@dataclass(frozen=True)
class DropIn:
    """A DRfC command as drtasks provides it: its switches, explained by -h / --help."""

    name: str
    summary: str
    switches: tuple[Switch, ...]

    @property
    def usage(self) -> str:
        return " ".join(f"[{s.flag}{' ' + s.argument if s.argument else ''}]" for s in self.switches)

    def help(self) -> str:
        width = max(len("-h, --help"), *(len(s.flag) + len(s.argument or "") + 1 for s in self.switches))
        lines = [f"Usage: {self.name} {self.usage}", "", self.summary, "", "Options:"]
        lines += [f"  {(s.flag + ' ' + (s.argument or '')).ljust(width)}  {s.text}" for s in self.switches]
        lines.append(f"  {'-h, --help'.ljust(width)}  show this help and exit")
        return "\n".join(lines)

    def parse(self, argv: list[str]) -> dict[str, str]:
        spec = "".join(s.flag[1] + (":" if s.argument else "") for s in self.switches) + "h"
        try:
            options, rest = getopt.getopt(argv, spec, ["help"])
        except getopt.GetoptError as error:
            _fail(self.name, f"{error.msg}; usage: {self.name} {self.usage} (see --help)")
        if any(flag in ("-h", "--help") for flag, _ in options):
            print(self.help())
            sys.exit(0)
        if rest:
            _fail(self.name, f"unexpected argument {shorten(rest[0])}; usage: {self.name} {self.usage} (see --help)")
        return {flag: value for flag, value in options}


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
