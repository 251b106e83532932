"""A small process that starts the benchmark's children and times them from outside.

Why a separate process: on Linux a child's peak RSS (ru_maxrss) includes the memory of the
process it was forked from, up to its exec. Forked from the benchmark itself (which holds boto3
and the seeded model), every child would report the benchmark's size. Forked from this
stdlib-only loop, children report their own peak plus at most this loop's few MB.

Protocol: one JSON request per line on stdin, {"argv", "env", "cwd", "stdout", "stderr"};
one JSON answer per line on stdout, {"wall": seconds, "maxrss_kib": n, "exit_code": n} or {"error": text}.
The loop ends at end of input.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time


def run(request: dict) -> dict:
    with open(request["stdout"], "wb") as out, open(request["stderr"], "wb") as err:
        started = time.perf_counter()
        process = subprocess.Popen(
            request["argv"], stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=request["env"], cwd=request["cwd"]
        )
        try:
            _, status, usage = os.wait4(process.pid, 0)
        except BaseException:
            process.kill()
            process.wait()
            raise
        wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)  # already reaped by wait4
    # ru_maxrss of wait4 covers the child and every descendant it waited for (KiB on Linux).
    return {"wall": wall, "maxrss_kib": usage.ru_maxrss, "exit_code": process.returncode}


def main() -> int:
    for line in sys.stdin:
        try:
            answer = run(json.loads(line))
        except OSError as error:
            answer = {"error": str(error)}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    # SIGTERM (the benchmark stopping early) kills the running child before leaving, as Ctrl-C does.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
