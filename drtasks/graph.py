"""Read a TensorFlow frozen graph (``model_N.pb``) without TensorFlow.

A frozen graph is a serialized ``tensorflow.GraphDef`` protocol buffer. The message classes are
built here from TensorFlow's public field numbers (graph.proto, node_def.proto, attr_value.proto,
tensor.proto, tensor_shape.proto, versions.proto) with the ``protobuf`` package alone, in a
private descriptor pool, so they never clash with TensorFlow's own classes in the same process.
Only the fields drtasks reads or writes are declared; every other field is kept as an unknown
field and skipped. Data types are plain integers (TensorFlow's DataType numbers).

``read_graph`` walks the wire format once and keeps what the checks need: every node's name, op
and inputs, the placeholders' shapes, the constants' shapes; the weights are skipped, never read,
so a graph in a file is checked in little memory whatever its size. ``graph_message_classes``
serves ``drtasks.sample_graph``, which writes frozen graphs without TensorFlow.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, BinaryIO, Iterator

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


class _NotAGraph(Exception):
    """The bytes break the protocol buffer wire format (or a field holds the wrong kind of value)."""


class _Wire:
    """Reads protocol buffer wire format from a file or bytes, skipping fields it does not need.

    A frozen graph's weights are most of its bytes (one dense kernel can be 100 MiB): they are
    skipped with a seek, never read, so checking a graph costs memory for its nodes' names only.
    """

    def __init__(self, handle: BinaryIO, end: int) -> None:
        self.handle = handle
        self.end = end

    def tell(self) -> int:
        return self.handle.tell()

    def varint(self) -> int:
        result = shift = 0
        while True:
            byte = self.handle.read(1)
            if not byte:
                raise _NotAGraph("truncated varint")
            result |= (byte[0] & 0x7F) << shift
            if byte[0] < 0x80:
                return result
            shift += 7
            if shift > 63:
                raise _NotAGraph("varint too long")

    def fields(self, end: int) -> Iterator[tuple[int, int, int]]:
        """(field number, wire type, value): the value of a varint, else the length of the field's bytes
        (the handle then stands at them; the caller reads or skips them)."""
        while self.tell() < end:
            key = self.varint()
            number, kind = key >> 3, key & 7
            if number == 0:
                raise _NotAGraph("field number 0")
            if kind == 0:
                yield number, kind, self.varint()
            elif kind == 1 or kind == 5:
                self.skip(8 if kind == 1 else 4)
            elif kind == 2:
                length = self.varint()
                if self.tell() + length > end:
                    raise _NotAGraph("a field runs past its message")
                start = self.tell()
                yield number, kind, length
                if self.tell() == start:  # not read by the caller: skip it
                    self.skip(length)
                elif self.tell() != start + length:
                    raise _NotAGraph("a nested message ends inside its field")
            else:
                raise _NotAGraph(f"wire type {kind}")
        if self.tell() != end:
            raise _NotAGraph("a message ends inside a field")

    def skip(self, count: int) -> None:
        if self.tell() + count > self.end:
            raise _NotAGraph("truncated")
        self.handle.seek(count, 1)

    def text(self, length: int) -> str:
        data = self.handle.read(length)
        if len(data) != length:
            raise _NotAGraph("truncated")
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise _NotAGraph("a string is not UTF-8") from None


def _signed64(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _length_delimited(kind: int) -> None:
    if kind != 2:
        raise _NotAGraph("a message field holds a number")


def _read_shape(wire: _Wire, end: int) -> tuple[int, ...] | None:
    """TensorShapeProto: dim (2) -> Dim.size (1); unknown_rank (3)."""
    dims: list[int] = []
    unknown = False
    for number, kind, value in wire.fields(end):
        if number == 2:
            _length_delimited(kind)
            size = 0
            for inner, inner_kind, inner_value in wire.fields(wire.tell() + value):
                if inner == 1 and inner_kind == 0:
                    size = _signed64(inner_value)
            dims.append(size)
        elif number == 3 and kind == 0:
            unknown = bool(value)
    return None if unknown else tuple(dims)


def _read_attr_value(wire: _Wire, end: int, key: str) -> Any:
    """What the checks read of an AttrValue: b (5), shape (7), tensor (8) -> its tensor_shape (2)."""
    found: Any = None
    for number, kind, value in wire.fields(end):
        if key == "transpose_b" and number == 5 and kind == 0:
            found = bool(value)
        elif key == "shape" and number == 7:
            _length_delimited(kind)
            found = ("shape", _read_shape(wire, wire.tell() + value))
        elif key == "value" and number == 8:
            _length_delimited(kind)
            tensor_shape: Any = ("tensor", ())  # no tensor_shape: a scalar, as protobuf reads it
            for inner, inner_kind, inner_value in wire.fields(wire.tell() + value):
                if inner == 2:  # tensor_shape; tensor_content (4) and the value lists are skipped
                    _length_delimited(inner_kind)
                    tensor_shape = ("tensor", _read_shape(wire, wire.tell() + inner_value))
            found = tensor_shape
    return found


_WANTED_ATTRS = frozenset({"shape", "value", "transpose_b"})


def _read_node(wire: _Wire, end: int) -> tuple[str, str, list[str], dict[str, Any]]:
    """NodeDef: name (1), op (2), input (3), attr (5: key 1, value 2); the rest skipped."""
    name = op = ""
    inputs: list[str] = []
    attrs: dict[str, Any] = {}
    for number, kind, value in wire.fields(end):
        if number in (1, 2, 3):
            _length_delimited(kind)
            text = wire.text(value)
            if number == 1:
                name = text
            elif number == 2:
                op = text
            else:
                inputs.append(text)
        elif number == 5:
            _length_delimited(kind)
            key, attr, entry_end = "", None, wire.tell() + value
            for inner, inner_kind, inner_value in wire.fields(entry_end):
                if inner == 1:
                    _length_delimited(inner_kind)
                    key = wire.text(inner_value)
                elif inner == 2 and key in _WANTED_ATTRS:  # protobuf writes the key first
                    _length_delimited(inner_kind)
                    attr = _read_attr_value(wire, wire.tell() + inner_value, key)
            attrs[key] = attr  # a map: the last entry of a key wins, as in protobuf
    return name, op, inputs, attrs


def read_graph(data: "bytes | Path", source: str = "model.pb") -> FrozenGraph:
    """Parse a frozen graph (its bytes, or a file holding them); one-line DrtasksError naming ``source``
    when it is not one. A file is read without its weights: memory stays small whatever its size."""
    import io

    try:
        handle: BinaryIO = open(data, "rb") if isinstance(data, Path) else io.BytesIO(data)
    except OSError as error:
        raise DrtasksError(f"{source}: cannot read it ({error.strerror or error.__class__.__name__})") from None
    nodes: dict[str, Node] = {}
    placeholders: dict[str, tuple[int, ...] | None] = {}
    const_shapes: dict[str, tuple[int, ...]] = {}
    with handle:
        size = handle.seek(0, 2)
        handle.seek(0)
        wire = _Wire(handle, size)
        try:
            for number, kind, value in wire.fields(size):
                if number != 1:
                    continue  # versions, library: not needed
                _length_delimited(kind)
                name, op, inputs, attrs = _read_node(wire, wire.tell() + value)
                if not name or not op:
                    raise DrtasksError(f"{source} is not a TensorFlow frozen graph: a node has no name or op")
                references = tuple(n for n in map(_node_name, inputs) if n)
                nodes[name] = Node(name, op, references, bool(attrs.get("transpose_b")))
                if op in ("Placeholder", "PlaceholderV2"):
                    shape = attrs.get("shape")
                    placeholders[name] = shape[1] if isinstance(shape, tuple) and shape[0] == "shape" else (() if "shape" in attrs else None)
                elif op == "Const" and "value" in attrs:
                    value = attrs["value"]
                    shape = value[1] if isinstance(value, tuple) and value[0] == "tensor" else ()
                    if shape is not None:
                        const_shapes[name] = shape
        except (_NotAGraph, OSError):
            raise DrtasksError(f"{source} is not a TensorFlow frozen graph: its bytes do not parse as a GraphDef") from None
    if not nodes:
        raise DrtasksError(f"{source} is not a TensorFlow frozen graph: it holds no nodes")
    return FrozenGraph(nodes, placeholders, const_shapes)
