"""``inv car-zip --verify``: load the archive's model exactly as the car does, before it travels.

The car converts ``agent/model.pb`` with OpenVINO, feeding each sensor's placeholder by name with
``:0`` at the car's shape (batch 1, 120x160 frames with 1 channel or 2 for stereo, 64 LIDAR
readings, the sector lidar's sectors) and asking for the algorithm's policy output, compiles it
for the CPU and runs it. We do the same and run one inference on blank inputs: a discrete policy
must give one probability per action, summing to 1; a continuous one its steering and speed.

OpenVINO is an optional extra (``pip install 'drtasks[verify]'``), imported only here.
"""

from __future__ import annotations

import math
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from drtasks.carzip.archive import METADATA_MEMBER, PB_MEMBER, read_member, validate_metadata
from drtasks.errors import DrtasksError
from drtasks.model_check import ModelSpec, model_spec

INSTALL_HINT = "pip install 'drtasks[verify]'"


@dataclass(frozen=True)
class CarRun:
    """One inference of the converted model on blank inputs."""

    outputs: list[float]  # one probability per action, or (steering, speed) when continuous
    inputs: list[tuple[str, list[int]]]  # (tensor name, shape) as fed
    output: str  # the tensor read
    openvino: str  # OpenVINO's version
    seconds: float  # conversion, compilation and inference
    spec: ModelSpec

    def as_dict(self) -> dict[str, Any]:
        return {"openvino": self.openvino, "inputs": [{"name": n, "shape": s} for n, s in self.inputs], "output": self.output, "outputs": self.outputs}


def _first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    # OpenVINO's messages start with source locations; the reason is the most specific line.
    useful = [line for line in lines if not line.startswith(("Check ", "Exception from", "FrontEnd API failed"))]
    text = (useful or lines or [type(error).__name__])[0]
    return text if len(text) <= 240 else text[:237] + "..."


@contextmanager
def _native_logs_kept_aside() -> Iterator[None]:
    """OpenVINO's TensorFlow reader logs parse attempts straight to file descriptor 2 (C++, not
    Python): keep them off the user's screen while it runs; its verdict comes back as an exception."""
    import os
    import sys

    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as aside:
        os.dup2(aside.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def run_like_the_car(archive: bytes) -> CarRun:
    """Convert and run the archive's graph as the car does; one-line DrtasksError when it cannot."""
    try:
        import numpy as np
        import openvino as ov
    except ImportError:
        raise DrtasksError(f"car-zip --verify needs OpenVINO: {INSTALL_HINT}") from None

    spec = model_spec(validate_metadata(read_member(archive, METADATA_MEMBER), METADATA_MEMBER), METADATA_MEMBER, for_car=True)
    inputs = [(f"{spec.input_node(sensor)}:0", list(spec.input_shape(sensor) or [])) for sensor in spec.sensors]
    output = f"{spec.policy_output}:0"
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="drtasks-verify-") as folder:
        path = Path(folder) / "model.pb"
        path.write_bytes(read_member(archive, PB_MEMBER))
        try:
            with _native_logs_kept_aside():
                model = ov.convert_model(str(path), input=inputs, output=[output])
        except Exception as error:  # OpenVINO raises several types for a graph it cannot read
            raise DrtasksError(f"the car could not load {PB_MEMBER}: OpenVINO cannot convert it: {_first_line(error)}") from None
    try:
        compiled = ov.Core().compile_model(model, "CPU")
        feed: dict[Any, Any] = {}
        for name, shape in inputs:
            port = next((p for p in compiled.inputs if name in p.get_names() or name[:-2] in p.get_names()), None)
            if port is None:
                raise DrtasksError(f"the car could not load {PB_MEMBER}: the converted model has no input {name}")
            feed[port] = np.zeros(shape, dtype=np.float32)
        result = compiled(feed)
        values = [float(v) for v in np.asarray(next(iter(result.values()))).reshape(-1)]
    except DrtasksError:
        raise
    except Exception as error:
        raise DrtasksError(f"the car could not run {PB_MEMBER}: {_first_line(error)}") from None
    seconds = time.perf_counter() - began

    if len(values) != spec.outputs:
        raise DrtasksError(f"{METADATA_MEMBER} lists {spec.describe_actions()}, the car's {PB_MEMBER} gives {len(values)} values")
    if not all(math.isfinite(v) for v in values):
        raise DrtasksError(f"the car's {PB_MEMBER} gives values that are not finite numbers on a blank frame: {values}")
    if not spec.continuous and abs(sum(values) - 1.0) > 1e-3:
        raise DrtasksError(f"the car's {PB_MEMBER} gives {len(values)} values summing to {sum(values):.4f}, not probabilities")
    return CarRun(values, inputs, output, ov.get_version(), seconds, spec)


def verify_rows(run: CarRun) -> list[tuple[str, str]]:
    """(what, reason) rows: the action space beside what the car's model answered on a blank frame."""
    space = run.spec.metadata["action_space"]
    if run.spec.continuous:
        return [
            (f"{name} ({space[name]['low']:g} to {space[name]['high']:g})", f"policy mean {value:+.4f} on a blank frame")
            for name, value in zip(("steering_angle", "speed"), run.outputs)
        ]
    chosen = max(range(len(run.outputs)), key=run.outputs.__getitem__)
    return [
        (
            f"action {action.get('index', index)}: steering {action['steering_angle']:g}, speed {action['speed']:g}",
            f"probability {probability:.4f} on a blank frame" + (" (the car's choice)" if index == chosen else ""),
        )
        for index, (action, probability) in enumerate(zip(space, run.outputs))
    ]


def verified_line(run: CarRun) -> str:
    fed = ", ".join(f"{name} {shape}" for name, shape in run.inputs)
    answer = "steering and speed" if run.spec.continuous else f"{len(run.outputs)} probabilities summing to {sum(run.outputs):.4f}"
    return (
        f"Verified as the car loads it: OpenVINO {run.openvino} converted {PB_MEMBER} (input {fed}, output {run.output}); "
        f"one inference on a blank frame gave {answer} ({run.seconds:.1f} s)."
    )
