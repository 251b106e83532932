"""Read a TensorFlow frozen graph (``model_N.pb``) without TensorFlow.

A frozen graph is a serialized ``tensorflow.GraphDef`` protocol buffer. The message classes are
built here from TensorFlow's public field numbers (graph.proto, node_def.proto, attr_value.proto,
tensor.proto, tensor_shape.proto, versions.proto) with the ``protobuf`` package alone, in a
private descriptor pool, so they never clash with TensorFlow's own classes in the same process.
Only the fields drtasks reads or writes are declared; every other field is kept as an unknown
field and skipped. Data types are plain integers (TensorFlow's DataType numbers).

``read_graph`` parses the bytes once and keeps what the checks need: every node's name, op and
inputs, the placeholders' shapes, the constants' shapes. ``graph_message_classes`` also serves
``drtasks.sample_graph``, which writes frozen graphs without TensorFlow.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from drtasks.errors import DrtasksError

DT_FLOAT = 1
DT_INT32 = 3
_PACKAGE = "drtasks_tensorflow"
# Ops that hand their first input through unchanged, between a variable's value and its use.
_PASS_THROUGH = frozenset({"Identity", "ReadVariableOp", "Enter", "StopGradient", "Snapshot"})


@lru_cache(maxsize=1)
def graph_message_classes() -> dict[str, Any]:
    """GraphDef and the messages it holds, as protobuf classes: name -> class."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    F = descriptor_pb2.FieldDescriptorProto
    proto = descriptor_pb2.FileDescriptorProto(name="drtasks_tensorflow_graph.proto", package=_PACKAGE, syntax="proto3")

    def message(name: str, fields: list[tuple[str, int, int, int, str]], parent: Any = None) -> Any:
        target = (parent.nested_type if parent is not None else proto.message_type).add(name=name)
        for field_name, number, label, kind, type_name in fields:
            added = target.field.add(name=field_name, number=number, label=label, type=kind)
            if type_name:
                added.type_name = f".{_PACKAGE}.{type_name}"
        return target

    one, many = F.LABEL_OPTIONAL, F.LABEL_REPEATED
    message("TensorShapeProto", [("dim", 2, many, F.TYPE_MESSAGE, "TensorShapeProto.Dim"), ("unknown_rank", 3, one, F.TYPE_BOOL, "")])
    message("Dim", [("size", 1, one, F.TYPE_INT64, ""), ("name", 2, one, F.TYPE_STRING, "")], proto.message_type[0])
    message("TensorProto", [
        ("dtype", 1, one, F.TYPE_INT32, ""),
        ("tensor_shape", 2, one, F.TYPE_MESSAGE, "TensorShapeProto"),
        ("version_number", 3, one, F.TYPE_INT32, ""),
        ("tensor_content", 4, one, F.TYPE_BYTES, ""),
        ("float_val", 5, many, F.TYPE_FLOAT, ""),
        ("int_val", 7, many, F.TYPE_INT32, ""),
        ("string_val", 8, many, F.TYPE_BYTES, ""),
        ("int64_val", 10, many, F.TYPE_INT64, ""),
        ("bool_val", 11, many, F.TYPE_BOOL, ""),
    ])
    attr = message("AttrValue", [
        ("list", 1, one, F.TYPE_MESSAGE, "AttrValue.ListValue"),
        ("s", 2, one, F.TYPE_BYTES, ""),
        ("i", 3, one, F.TYPE_INT64, ""),
        ("f", 4, one, F.TYPE_FLOAT, ""),
        ("b", 5, one, F.TYPE_BOOL, ""),
        ("type", 6, one, F.TYPE_INT32, ""),
        ("shape", 7, one, F.TYPE_MESSAGE, "TensorShapeProto"),
        ("tensor", 8, one, F.TYPE_MESSAGE, "TensorProto"),
        ("placeholder", 9, one, F.TYPE_STRING, ""),
    ])
    attr.oneof_decl.add(name="value")
    for declared in attr.field:  # every AttrValue field belongs to the oneof "value"
        declared.oneof_index = 0
    message("ListValue", [
        ("s", 2, many, F.TYPE_BYTES, ""),
        ("i", 3, many, F.TYPE_INT64, ""),
        ("f", 4, many, F.TYPE_FLOAT, ""),
        ("b", 5, many, F.TYPE_BOOL, ""),
        ("type", 6, many, F.TYPE_INT32, ""),
        ("shape", 7, many, F.TYPE_MESSAGE, "TensorShapeProto"),
        ("tensor", 8, many, F.TYPE_MESSAGE, "TensorProto"),
    ], attr)
    node = message("NodeDef", [
        ("name", 1, one, F.TYPE_STRING, ""),
        ("op", 2, one, F.TYPE_STRING, ""),
        ("input", 3, many, F.TYPE_STRING, ""),
        ("device", 4, one, F.TYPE_STRING, ""),
        ("attr", 5, many, F.TYPE_MESSAGE, "NodeDef.AttrEntry"),
    ])
    entry = message("AttrEntry", [("key", 1, one, F.TYPE_STRING, ""), ("value", 2, one, F.TYPE_MESSAGE, "AttrValue")], node)
    entry.options.map_entry = True
    message("VersionDef", [("producer", 1, one, F.TYPE_INT32, ""), ("min_consumer", 2, one, F.TYPE_INT32, ""), ("bad_consumers", 3, many, F.TYPE_INT32, "")])
    message("GraphDef", [("node", 1, many, F.TYPE_MESSAGE, "NodeDef"), ("versions", 4, one, F.TYPE_MESSAGE, "VersionDef")])

    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    names = ("GraphDef", "NodeDef", "AttrValue", "TensorProto", "TensorShapeProto", "VersionDef")
    return {name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{_PACKAGE}.{name}")) for name in names}


@dataclass(frozen=True)
class Node:
    name: str
    op: str
    inputs: tuple[str, ...]  # data inputs by node name (output index and control inputs left out)
    transpose_b: bool = False


@dataclass
class FrozenGraph:
    """What the checks need from a frozen graph."""

    nodes: dict[str, Node]
    placeholders: dict[str, tuple[int, ...] | None]  # name -> shape (-1 unknown) or None (no shape)
    const_shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)

    def output_width(self, name: str) -> int | None:
        """How many values ``name`` gives per example: the width of the dense layer feeding it.

        Walks back from ``name`` through its inputs to the nearest MatMul, then through
        Identity-like ops to the constant kernel; its last dimension (first when transposed).
        """
        seen: set[str] = set()
        pending = [name]
        while pending:
            current = self.nodes.get(pending.pop(0))
            if current is None or current.name in seen:
                continue
            seen.add(current.name)
            if current.op == "MatMul" and len(current.inputs) == 2:
                shape = self._constant_shape(current.inputs[1])
                if shape is not None and len(shape) == 2:
                    return shape[0] if current.transpose_b else shape[1]
            pending.extend(current.inputs)
        return None

    def _constant_shape(self, name: str) -> tuple[int, ...] | None:
        for _ in range(16):
            node = self.nodes.get(name)
            if node is None:
                return None
            if node.op == "Const":
                return self.const_shapes.get(name)
            if node.op not in _PASS_THROUGH or not node.inputs:
                return None
            name = node.inputs[0]
        return None


def _node_name(reference: str) -> str | None:
    """``name:1`` and ``name`` -> ``name``; control inputs (``^name``) -> None."""
    if reference.startswith("^"):
        return None
    return reference.split(":", 1)[0]


def _shape(message: Any) -> tuple[int, ...] | None:
    if message.unknown_rank:
        return None
    return tuple(int(dim.size) for dim in message.dim)


def read_graph(data: bytes, source: str = "model.pb") -> FrozenGraph:
    """Parse a frozen graph; one-line DrtasksError naming ``source`` when it is not one."""
    from google.protobuf.message import DecodeError

    classes = graph_message_classes()
    graph = classes["GraphDef"]()
    try:
        graph.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError):
        raise DrtasksError(f"{source} is not a TensorFlow frozen graph: its bytes do not parse as a GraphDef") from None
    nodes: dict[str, Node] = {}
    placeholders: dict[str, tuple[int, ...] | None] = {}
    const_shapes: dict[str, tuple[int, ...]] = {}
    for node in graph.node:
        if not node.name or not node.op:
            raise DrtasksError(f"{source} is not a TensorFlow frozen graph: a node has no name or op")
        inputs = tuple(name for name in map(_node_name, node.input) if name)
        nodes[node.name] = Node(node.name, node.op, inputs, bool(node.attr["transpose_b"].b) if "transpose_b" in node.attr else False)
        if node.op in ("Placeholder", "PlaceholderV2"):
            placeholders[node.name] = _shape(node.attr["shape"].shape) if "shape" in node.attr else None
        elif node.op == "Const" and "value" in node.attr:
            shape = _shape(node.attr["value"].tensor.tensor_shape)
            if shape is not None:
                const_shapes[node.name] = shape
    if not nodes:
        raise DrtasksError(f"{source} is not a TensorFlow frozen graph: it holds no nodes")
    return FrozenGraph(nodes, placeholders, const_shapes)
