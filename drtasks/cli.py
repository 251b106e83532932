"""Console scripts: `drtasks` (the invoke tasks from anywhere) and DRfC's familiar commands."""

from __future__ import annotations

import getopt
import sys
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
    try:
        body()
    except DrtasksError as error:
        _fail(command, error.message, error.code)
    except KeyboardInterrupt:
        _fail(command, "interrupted", 130)
    except Exception as error:
        from drtasks.tasks.common import _first_line, _is_service_failure

        if not _is_service_failure(error):
            raise
        _fail(command, f"{error.__class__.__name__}: {_first_line(error)}", 1)


def _parse(command: str, argv: list[str], spec: str, usage: str, details: str = "") -> dict[str, str]:
    """getopt switches as DRfC's scripts take them; ``-h``/``--help`` print the usage and ``details``."""
    try:
        options, rest = getopt.getopt(argv, spec, ["help"])
    except getopt.GetoptError as error:
        _fail(command, f"{error.msg}; usage: {command} {usage}")
    if rest:
        _fail(command, f"unexpected argument {rest[0]!r}; usage: {command} {usage}")
    if any(flag in ("-h", "--help") for flag, _ in options):
        print(f"Usage: {command} {usage}" + (f"\n{details}" if details else ""))
        sys.exit(0)
    return {flag: value for flag, value in options}


UPLOAD_USAGE = "[-f] [-w] [-d] [-b | -c N] [-p PREFIX] [-i | -I NAME] [-1] [-L]"


def dr_upload_model(argv: list[str] | None = None) -> None:
    """DRfC's dr-upload-model switches, driving the same engine as `inv upload`."""
    from drtasks.tasks.upload_tasks import UploadRequest, run_upload

    pause_collection()
    command = "dr-upload-model"
    flags = _parse(command, sys.argv[1:] if argv is None else argv, "fwdbc:p:iI:1Lh", UPLOAD_USAGE)
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

    command = "dr-increment-upload-model"
    flags = _parse(command, sys.argv[1:] if argv is None else argv, "d:wfh", "[-d DELIMITER] [-w] [-f]")

    def increment() -> None:
        run_increment(None, delimiter=flags.get("-d", "-"), wipe="-w" in flags, force="-f" in flags)

    _run(command, increment)


CREATE_CAR_ZIP_USAGE = "[-b] [-p <model-prefix>] [-o <output-file>] [-f]"
CREATE_CAR_ZIP_HELP = """\
Builds the physical car's archive (agent/model.pb and model_metadata.json) from the model in the
training bucket (DR_LOCAL_S3_BUCKET), checked against its metadata before it is written.
       -b              Use best checkpoint. Default is last checkpoint.
       -p <prefix>     Model prefix. Default: DR_LOCAL_S3_MODEL_PREFIX.
       -o <output>     Output file path. Default: <DR_DIR>/data/output/<model-prefix>.tar.gz
       -f              Replace an existing, different output file without asking (drtasks)."""

UPLOAD_CAR_ZIP_USAGE = "[-b] [-f] [-L] [-p <model-prefix>]"
UPLOAD_CAR_ZIP_HELP = """\
Builds <model-prefix>.tar.gz in <DR_DIR> like dr-create-car-zip, then uploads it to
s3://<DR_UPLOAD_S3_BUCKET>/<DR_UPLOAD_S3_PREFIX>/<model-prefix>.tar.gz.
       -b              Use best checkpoint. Default is last checkpoint.
       -f              Force. Do not ask for confirmation.
       -L              Upload to local S3 bucket: s3://<DR_LOCAL_S3_BUCKET>/<model-prefix>/<model-prefix>.tar.gz
       -p <prefix>     Model prefix. Default: DR_LOCAL_S3_MODEL_PREFIX."""


def dr_create_car_zip(argv: list[str] | None = None) -> None:
    """DRfC's dr-create-car-zip: the car's archive from the last or best checkpoint in S3, as a file."""
    from drtasks.tasks.carzip_tasks import run_drfc_car_zip

    pause_collection()
    command = "dr-create-car-zip"
    flags = _parse(command, sys.argv[1:] if argv is None else argv, "bp:o:fh", CREATE_CAR_ZIP_USAGE, CREATE_CAR_ZIP_HELP)
    create = lambda: run_drfc_car_zip(upload=False, best="-b" in flags, prefix=flags.get("-p"), output=flags.get("-o"), force="-f" in flags)  # noqa: E731
    _run(command, create)


def dr_upload_car_zip(argv: list[str] | None = None) -> None:
    """DRfC's dr-upload-car-zip: dr-create-car-zip's archive, uploaded as <model-prefix>.tar.gz."""
    from drtasks.tasks.carzip_tasks import run_drfc_car_zip

    pause_collection()
    command = "dr-upload-car-zip"
    flags = _parse(command, sys.argv[1:] if argv is None else argv, "bfLp:h", UPLOAD_CAR_ZIP_USAGE, UPLOAD_CAR_ZIP_HELP)
    upload = lambda: run_drfc_car_zip(upload=True, best="-b" in flags, prefix=flags.get("-p"), local="-L" in flags, force="-f" in flags)  # noqa: E731
    _run(command, upload)
