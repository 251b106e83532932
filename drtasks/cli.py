"""Console scripts: `drtasks` (the invoke tasks from anywhere) and DRfC's familiar commands."""

from __future__ import annotations

import getopt
import sys
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
        from drtasks.tasks.common import _first_line, _is_service_failure

        if not _is_service_failure(error):
            raise
        _fail(command, f"{error.__class__.__name__}: {_first_line(error)}", 1)


def _parse(command: str, argv: list[str], spec: str, usage: str) -> dict[str, str]:
    try:
        options, rest = getopt.getopt(argv, spec)
    except getopt.GetoptError as error:
        _fail(command, f"{error.msg}; usage: {command} {usage}")
    if rest:
        _fail(command, f"unexpected argument {shorten(rest[0])}; usage: {command} {usage}")
    if any(flag == "-h" for flag, _ in options):
        print(f"usage: {command} {usage}")
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


def dr_upload_car_zip(argv: list[str] | None = None) -> None:
    from drtasks.tasks.carzip_tasks import CarZipRequest, run_car_zip

    pause_collection()
    command = "dr-upload-car-zip"
    flags = _parse(command, sys.argv[1:] if argv is None else argv, "Lfh", "[-L] [-f]")
    # DRfC's command copies out of the running container; drtasks falls back to S3 when none runs.
    _run(command, lambda: run_car_zip(CarZipRequest(local="-L" in flags, force="-f" in flags)))
