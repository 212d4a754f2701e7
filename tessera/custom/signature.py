"""MLIR type signatures of custom operators: parsing `"(tensor<1024xf32>) -> tensor<1024xf32>"`
and checking the tensors of each call against it.

A signature is a function type over ranked tensor types (MLIR builtin syntax):
`(tensor<?x64xbf16>, tensor<64xf32>) -> tensor<?x64xf32>`; `?` is a dynamic size
and each `?` stands alone (as in MLIR, equal extents across `?`s are not required).
Element types are MLIR's spellings of tessera dtypes (the mapping of
`tessera.graph.mlir`), so the signature reads the same as the Graph IR.

    >>> s = parse("(tensor<?x4xf32>) -> tensor<?xf32>", "f")
    >>> s.inputs[0].shape, s.inputs[0].dtype, str(s)
    ((None, 4), 'fp32', '(tensor<?x4xf32>) -> tensor<?xf32>')
"""
from __future__ import annotations

import re

from ..errors import DTypeError, ShapeError
from ..graph.mlir import _ELEM

# MLIR element type -> tessera dtype name (the inverse of the Graph IR's table)
_DTYPE = {v: k for k, v in _ELEM.items()}
_TENSOR = re.compile(r"^tensor<((?:(?:\d+|\?)x)*)([A-Za-z_!.<>0-9]+)>$")


class TensorType:
    """One `tensor<...>`: shape (None for `?`) and tessera dtype name."""
    __slots__ = ("shape", "dtype", "text")

    def __init__(self, shape, dtype, text):
        self.shape, self.dtype, self.text = shape, dtype, text

    def matches(self, shape, dtype) -> bool:
        return (dtype == self.dtype and len(shape) == len(self.shape)
                and all(w is None or w == d for w, d in zip(self.shape, shape)))

    def __str__(self):
        return self.text


class Signature:
    __slots__ = ("inputs", "outputs", "text")

    def __init__(self, inputs, outputs, text):
        self.inputs, self.outputs, self.text = inputs, outputs, text

    def __str__(self):
        return self.text

    def check_inputs(self, op, tensors):
        """Raise ShapeError/DTypeError unless the call's tensors match the input types."""
        if len(tensors) != len(self.inputs):
            raise ShapeError(f"[{op}] signature {self.text} takes {len(self.inputs)} tensor(s), "
                             f"got {len(tensors)}")
        for i, (t, ty) in enumerate(zip(tensors, self.inputs)):
            _check(op, self.text, f"input {i}", t, ty)

    def check_output(self, op, t):
        _check(op, self.text, "the output", t, self.outputs[0])


def _check(op, sig, what, t, ty):
    if ty.matches(t.shape, t.dtype.name):
        return
    got = f"shape {tuple(t.shape)} {t.dtype.name}"
    if t.dtype.name != ty.dtype:
        raise DTypeError(f"[{op}] {what} has {got}, the signature {sig} expects {ty} "
                         f"(dtype {ty.dtype})")
    raise ShapeError(f"[{op}] {what} has {got}, the signature {sig} expects {ty} "
                     f"(shape {tuple('?' if d is None else d for d in ty.shape)})")


def _split_top(s):
    """Split on commas outside <...>."""
    out, depth, cur = [], 0, []
    for ch in s:
        if ch == "<":
            depth += 1
        elif ch == ">":
            depth -= 1
        if ch == "," and depth == 0:
            out.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
    if "".join(cur).strip():
        out.append("".join(cur).strip())
    return out


def _tensor_type(op, text, full):
    m = _TENSOR.match(text)
    if m is None:
        raise ValueError(f"[{op}] signature {full!r}: {text!r} is not a ranked tensor type "
                         "like tensor<1024xf32> or tensor<?x64xbf16>")
    dims = [None if d == "?" else int(d) for d in m.group(1).split("x")[:-1]]
    elem = m.group(2)
    if elem not in _DTYPE:
        raise ValueError(f"[{op}] signature {full!r}: element type {elem!r} has no tessera "
                         f"dtype; accepted: {', '.join(sorted(_DTYPE))}")
    return TensorType(tuple(dims), _DTYPE[elem], text)


def parse(text: str, op: str = "custom") -> Signature:
    """A Signature from an MLIR function type with one result; ValueError naming the op otherwise."""
    s = " ".join(str(text).split())
    m = re.match(r"^\((.*)\)\s*->\s*(.+)$", s)
    if m is None:
        raise ValueError(f"[{op}] signature {text!r} is not an MLIR function type "
                         "'(tensor<...>, ...) -> tensor<...>'")
    ins = [_tensor_type(op, p, text) for p in _split_top(m.group(1))]
    res = m.group(2).strip()
    if res.startswith("(") and res.endswith(")"):
        res = res[1:-1]
    outs = [_tensor_type(op, p, text) for p in _split_top(res)]
    if len(outs) != 1:
        raise ValueError(f"[{op}] signature {text!r}: custom operators have one result, "
                         f"the signature lists {len(outs)}")
    canon = "(" + ", ".join(map(str, ins)) + ") -> " + str(outs[0])
    return Signature(tuple(ins), tuple(outs), canon)
