"""A DeepRacer frozen graph written without TensorFlow, for sample models of any size.

``sample_model`` seeds these where a model needs a frozen graph but no checkpoint is ever restored
(the tests of moving models around, the benchmark, ``inv demo``). Each is a genuine frozen graph
of the DeepRacer policy network for the metadata: the car's input placeholders, the camera's
convolutions, lidar dense layers, the 512-unit middleware and the algorithm's policy head, with
the simapp's node names and TensorFlow's op attributes, so TensorFlow imports it and OpenVINO
converts and runs it like a trained one. Only the weights are pseudo-random (small finite floats)
and, to reach a requested file size, the layer widths are scaled: the real network's widths
give the real ~23 MB; smaller targets get fewer filters and a narrower middleware.
"""

from __future__ import annotations

import hashlib
import random
import struct
from typing import Any

from drtasks.model_check import CAMERA_SENSORS, ModelSpec, input_shape, model_spec

# A TensorFlow graph producer version this format has always been read by.
_PRODUCER = 1087
_REAL_FILTERS = (32, 64, 64)
_SMALL_FILTERS = (4, 8, 8)
_CONVOLUTIONS = ((8, 4), (4, 2), (3, 1))  # (kernel, stride) of the shallow network
_LIDAR_UNITS = (256, 256)
_SAC_HIDDEN = 256
# High byte of a little-endian float32: keep the sign, force the exponent near 2**-7, so every
# weight is finite and small (|w| < 0.032) and inference never overflows.
_SMALL_FLOAT_HIGH_BYTE = bytes((b & 0x80) | 0x3C for b in range(256))


def _weights(seed: int, label: str, count: int) -> bytes:
    digest = hashlib.sha256(f"{seed}:{label}".encode()).digest()
    raw = bytearray(random.Random(int.from_bytes(digest[:8], "big")).randbytes(4 * count))
    raw[3::4] = raw[3::4].translate(_SMALL_FLOAT_HIGH_BYTE)
    return bytes(raw)


class _Builder:
    def __init__(self, seed: int, label: str) -> None:
        from drtasks.graph import DT_FLOAT, DT_INT32, graph_message_classes

        self.classes = graph_message_classes()
        self.graph = self.classes["GraphDef"]()
        self.graph.versions.producer = _PRODUCER
        self.seed, self.label = seed, label
        self.float, self.int32 = DT_FLOAT, DT_INT32

    def node(self, name: str, op: str, inputs: list[str], **attrs: Any) -> str:
        node = self.graph.node.add(name=name, op=op)
        node.input.extend(inputs)
        for key, value in attrs.items():
            target = node.attr[key]
            if isinstance(value, bool):
                target.b = value
            elif isinstance(value, bytes):
                target.s = value
            elif isinstance(value, tuple) and value and value[0] == "type":
                target.type = value[1]
            elif isinstance(value, list):
                target.list.i.extend(value)
            elif isinstance(value, int):
                target.i = value
            else:
                raise TypeError(f"attribute {key}: {value!r}")
        return name

    def const(self, name: str, shape: list[int], content: bytes | float | int, dtype: int) -> str:
        """A constant; scalars are written as values (as TensorFlow does), tensors as raw bytes."""
        node = self.graph.node.add(name=name, op="Const")
        node.attr["dtype"].type = dtype
        tensor = node.attr["value"].tensor
        tensor.dtype = dtype
        for size in shape:
            tensor.tensor_shape.dim.add(size=size)
        if isinstance(content, bytes):
            tensor.tensor_content = content
        elif dtype == self.float:
            tensor.float_val.append(float(content))
        else:
            tensor.int_val.append(int(content))
        return name

    def variable(self, name: str, shape: list[int]) -> str:
        """A frozen variable: its value as a Const, read through an Identity as TF1 freezes it."""
        count = 1
        for size in shape:
            count *= size
        self.const(name, shape, _weights(self.seed, f"{self.label}:{name}", count), self.float)
        return self.node(f"{name}/read", "Identity", [name], T=("type", self.float))

    def placeholder(self, name: str, shape: list[int]) -> str:
        node = self.graph.node.add(name=name, op="Placeholder")
        node.attr["dtype"].type = self.float
        for size in shape:
            node.attr["shape"].shape.dim.add(size=size)
        return name

    def dense(self, scope: str, tensor: str, width: int, units: int, activation: str | None) -> str:
        kernel = self.variable(f"{scope}/kernel", [width, units])
        bias = self.variable(f"{scope}/bias", [units])
        product = self.node(f"{scope}/MatMul", "MatMul", [tensor, kernel], T=("type", self.float), transpose_a=False, transpose_b=False)
        out = self.node(f"{scope}/BiasAdd", "BiasAdd", [product, bias], T=("type", self.float), data_format=b"NHWC")
        return self.node(f"{scope}/{activation}", activation, [out], T=("type", self.float)) if activation else out

    def camera(self, scope: str, placeholder: str, channels: int, filters: tuple[int, ...]) -> tuple[str, int]:
        divisor = self.const(f"{scope}/truediv/y", [], 255.0, self.float)
        layer = self.node(f"{scope}/truediv", "RealDiv", [placeholder, divisor], T=("type", self.float))
        height, width = input_shape("FRONT_FACING_CAMERA")[1:3]  # type: ignore[index]
        for index, ((kernel, stride), count) in enumerate(zip(_CONVOLUTIONS, filters)):
            name = f"{scope}/Conv2d_{2 * index}"
            weights = self.variable(f"{name}/kernel", [kernel, kernel, channels, count])
            bias = self.variable(f"{name}/bias", [count])
            conv = self.node(
                f"{name}/Conv2D", "Conv2D", [layer, weights], T=("type", self.float), strides=[1, stride, stride, 1],
                padding=b"VALID", data_format=b"NHWC", dilations=[1, 1, 1, 1], use_cudnn_on_gpu=True,
            )
            added = self.node(f"{name}/BiasAdd", "BiasAdd", [conv, bias], T=("type", self.float), data_format=b"NHWC")
            layer = self.node(f"{name}/Relu", "Relu", [added], T=("type", self.float))
            height, width, channels = (height - kernel) // stride + 1, (width - kernel) // stride + 1, count
        flat = height * width * channels
        shape = self.const(f"{scope}/Reshape/shape", [2], struct.pack("<2i", -1, flat), self.int32)
        return self.node(f"{scope}/Reshape", "Reshape", [layer, shape], T=("type", self.float), Tshape=("type", self.int32)), flat


def _flat_width(spec: ModelSpec, filters: tuple[int, ...]) -> int:
    height, width = 120, 160
    for kernel, stride in _CONVOLUTIONS:
        height, width = (height - kernel) // stride + 1, (width - kernel) // stride + 1
    lidars = sum(_LIDAR_UNITS[-1] for sensor in spec.sensors if sensor not in CAMERA_SENSORS)
    return height * width * filters[-1] + lidars


def _middleware_units(spec: ModelSpec, size: int, filters: tuple[int, ...]) -> int:
    """The middleware width that brings the graph near ``size`` bytes (its kernel dominates)."""
    channels = 2 if "STEREO_CAMERAS" in spec.sensors else 1
    convolutions = sum(k * k * c_in * c_out for (k, _), c_in, c_out in zip(_CONVOLUTIONS, (channels, *filters[:-1]), filters))
    return max(8, (size // 4 - convolutions) // (_flat_width(spec, filters) + spec.outputs + 1))


def sample_frozen_graph(metadata: dict[str, Any], size: int = 23_400_000, *, seed: int = 0, label: str = "") -> bytes:
    """A frozen graph for ``metadata`` of about ``size`` bytes; ``seed`` and ``label`` pick its weights."""
    spec = model_spec(metadata, for_car=False)
    filters = _REAL_FILTERS if size >= 4 * 1024 * 1024 else _SMALL_FILTERS
    units = _middleware_units(spec, size, filters)
    head = f"main_level/agent/{'main' if spec.algorithm == 'clipped_ppo' else 'policy'}/online"
    policy_network = f"{head}/network_1" if spec.algorithm == "clipped_ppo" else f"{head}/network_0"
    build = _Builder(seed, label)

    embeddings, width = [], 0
    for sensor in sorted(spec.sensors):  # Coach merges the inputs in name order
        shape = [-1, *(input_shape(sensor, metadata) or [1, 8])[1:]]
        placeholder = build.placeholder(spec.input_node(sensor), shape)
        scope = f"{policy_network}/{sensor}"
        if sensor in CAMERA_SENSORS:
            tensor, flat = build.camera(scope, placeholder, shape[-1], filters)
        else:
            tensor, flat = placeholder, shape[-1]
            for index, units_out in enumerate(_LIDAR_UNITS):
                tensor, flat = build.dense(f"{scope}/Dense_{2 * index}", tensor, flat, units_out, "Relu"), units_out
        embeddings.append(tensor)
        width += flat
    merged = embeddings[0]
    if len(embeddings) > 1:
        axis = build.const(f"{policy_network}/merger/axis", [], -1, build.int32)
        merged = build.node(f"{policy_network}/merger", "ConcatV2", [*embeddings, axis], N=len(embeddings), T=("type", build.float), Tidx=("type", build.int32))
    trunk = build.dense(f"{policy_network}/middleware_fc_embedder/Dense_0", merged, width, units, "Relu")

    if spec.algorithm == "clipped_ppo" and not spec.continuous:
        logits = build.dense(f"{policy_network}/ppo_head_0/policy_fc", trunk, units, spec.outputs, None)
        build.node(spec.policy_output, "Softmax", [logits], T=("type", build.float))
    else:
        scope = f"{policy_network}/{'ppo_head_0' if spec.algorithm == 'clipped_ppo' else 'sac_policy_head_0'}"
        if spec.algorithm == "sac":
            trunk, units = build.dense(f"{scope}/Dense_0", trunk, units, _SAC_HIDDEN, "Relu"), _SAC_HIDDEN
        mean = build.dense(f"{scope}/policy_mean", trunk, units, spec.outputs, None)
        build.node(spec.policy_output, "Identity", [mean], T=("type", build.float))
    return build.graph.SerializeToString(deterministic=True)
