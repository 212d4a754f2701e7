"""The fusion expression IR: immutable, hash-consed `Node`s, plus the dtype and op tables.

A `Node(op, dtype, srcs, arg)` is interned: building a structurally equal node
returns the same object, so a DAG *is* its cache key and CSE is free.

    >>> x = Node("input", "fp32", (), 0)
    >>> y = Node("exp", "fp32", (x,), None)
    >>> y is Node("exp", "fp32", (Node("input", "fp32", (), 0),), None)
    True
"""
from __future__ import annotations

import math
import threading
import weakref
from dataclasses import dataclass
from typing import Hashable

from .._graphwalk import postorder

# ----------------------------------------------------------------------- dtypes
# The dtype facts generated code needs (C storage type, functor family, the
# codec functors of narrow floats, the tag in kernel names) live in the one
# dtype table, tessera/dtypes.py; `DTYPES` is its view for the dtypes that
# fused kernels handle. fp16/bf16/fp8 are computed in float32 and only rounded
# to their storage type when stored (or by an explicit cast), which is why a
# fused result differs from op-by-op NumPy only by the intermediate roundings
# of the narrow dtypes involved.
from .. import dtypes as _dt  # noqa: E402

DTYPES: dict = {d.name: d for d in _dt.ALL_DTYPES if d.storage is not None}

# C type of each compute family.
COMPUTE_CTYPE = {"f64": "double", "f32": "float", "i8": "int8_t", "i16": "int16_t",
                 "i32": "int32_t", "i64": "int64_t", "u8": "uint8_t", "b": "uint8_t"}


def numpy_dtype(name: str):
    """The NumPy (or ml_dtypes) storage dtype of a tessera dtype name."""
    return DTYPES[name].np_storage


def dtype_of_numpy(dt) -> str:
    """Inverse of `numpy_dtype`."""
    for name, d in DTYPES.items():
        if d.np_storage == dt:
            return name
    raise TypeError(f"[fusion] numpy dtype {dt} has no tessera dtype")

# ----------------------------------------------------------------------- ops

FLOAT, SINT, UINT, BOOL = "f", "i", "u", "b"
INT = SINT + UINT
NUM = FLOAT + INT
ANY = NUM + BOOL


@dataclass(frozen=True)
class OpInfo:
    name: str
    arity: int           # -1 for leaves
    kinds: str           # dtype kinds of the (main) srcs this op accepts
    result: str = "same"  # "same" (node dtype = src dtype), "bool", "cast", "reduce"


def _ops(arity, kinds, names, result="same"):
    return [OpInfo(n, arity, kinds, result) for n in names.split()]


OPS: dict[str, OpInfo] = {o.name: o for o in [
    OpInfo("input", -1, ANY), OpInfo("const", -1, ANY), OpInfo("cast", 1, ANY, "cast"),
    *_ops(1, NUM, "negative positive square sign"), *_ops(1, ANY, "abs"),
    *_ops(1, NUM, "floor ceil trunc round"),
    *_ops(1, FLOAT, "reciprocal sqrt rsqrt exp exp2 expm1 log log1p log2 log10 sin cos tan "
                    "asin acos atan sinh cosh tanh asinh acosh atanh erf sigmoid"),
    *_ops(1, BOOL, "logical_not"), *_ops(1, INT + BOOL, "bitwise_invert"),
    *_ops(1, FLOAT, "isnan isinf isfinite signbit", "bool"),
    *_ops(2, ANY, "add multiply maximum minimum"), *_ops(2, NUM, "subtract floor_divide remainder pow"),
    *_ops(2, FLOAT, "divide atan2 hypot copysign logaddexp"),
    *_ops(2, ANY, "equal not_equal less less_equal greater greater_equal", "bool"),
    *_ops(2, BOOL, "logical_and logical_or logical_xor"),
    *_ops(2, INT + BOOL, "bitwise_and bitwise_or bitwise_xor"),
    *_ops(2, INT, "bitwise_left_shift bitwise_right_shift"),
    OpInfo("where", 3, ANY),
    *_ops(1, ANY, "reduce_sum reduce_prod reduce_max reduce_min", "reduce"),
]}

REDUCE_OPS = ("reduce_sum", "reduce_prod", "reduce_max", "reduce_min")
LEAF_OPS = ("input", "const")

# ----------------------------------------------------------------------- nodes


def _arg_key(arg):
    # Python says 0 == 0.0 == False == -0.0 and nan != nan: key on type and exact bits.
    if isinstance(arg, float):
        return ("f", arg.hex() if not math.isnan(arg) else "nan")
    if isinstance(arg, tuple):
        return ("t",) + tuple(_arg_key(a) for a in arg)
    return (type(arg).__name__, arg)


_intern: "weakref.WeakValueDictionary[tuple, Node]" = weakref.WeakValueDictionary()
_lock = threading.Lock()


@dataclass(frozen=True, eq=False, slots=True, weakref_slot=True)
class Node:
    """One immutable IR node; equality is identity because nodes are interned."""
    op: str
    dtype: str
    srcs: tuple = ()
    arg: Hashable = None

    def __new__(cls, op: str, dtype: str, srcs: tuple = (), arg: Hashable = None):
        srcs = tuple(srcs)
        key = (op, dtype, srcs, _arg_key(arg))
        node = _intern.get(key)
        if node is None:
            with _lock:
                node = _intern.get(key)
                if node is None:
                    node = object.__new__(cls)
                    object.__setattr__(node, "op", op)
                    object.__setattr__(node, "dtype", dtype)
                    object.__setattr__(node, "srcs", srcs)
                    object.__setattr__(node, "arg", arg)
                    _validate(node)
                    _intern[key] = node
        return node

    def __init__(self, op, dtype, srcs=(), arg=None):
        pass  # all fields are set once, in __new__

    def __reduce__(self):
        return (Node, (self.op, self.dtype, self.srcs, self.arg))

    def __repr__(self):
        if self.op == "input":
            return f"in{self.arg}:{self.dtype}"
        if self.op == "const":
            return f"{self.arg!r}:{self.dtype}"
        a = "" if self.arg is None else f", arg={self.arg!r}"
        return f"{self.op}:{self.dtype}({', '.join(map(repr, self.srcs))}{a})"


def _validate(n: Node) -> None:
    info = OPS.get(n.op)
    if info is None:
        raise ValueError(f"[fusion] unknown op {n.op!r}; known: {sorted(OPS)}")
    if n.dtype not in DTYPES:
        raise TypeError(f"[fusion] {n.op}: unknown dtype {n.dtype!r}; known: {sorted(DTYPES)}")
    if info.arity == -1:
        if n.srcs:
            raise ValueError(f"[fusion] {n.op} is a leaf and takes no srcs")
        if n.op == "input" and not (isinstance(n.arg, int) and n.arg >= 0):
            raise ValueError(f"[fusion] input needs a slot index arg, got {n.arg!r}")
        if n.op == "const" and not isinstance(n.arg, (bool, int, float)):
            raise TypeError(f"[fusion] const needs a bool/int/float arg, got {n.arg!r}")
        return
    if len(n.srcs) != info.arity or not all(isinstance(s, Node) for s in n.srcs):
        raise ValueError(f"[fusion] {n.op} takes {info.arity} Node srcs, got {n.srcs!r}")
    main = n.srcs[1:] if n.op == "where" else n.srcs
    sdt = {s.dtype for s in main}
    if n.op == "where" and n.srcs[0].dtype != "bool":
        raise TypeError(f"[fusion] where: condition must be bool, got {n.srcs[0].dtype}")
    if info.result != "cast" and len(sdt) != 1:
        raise TypeError(f"[fusion] {n.op}: srcs must share one dtype, got {sorted(sdt)}")
    src_dt = next(iter(sdt))
    if DTYPES[src_dt].kind not in info.kinds:
        raise TypeError(f"[fusion] {n.op} does not support dtype {src_dt}")
    want = {"same": src_dt, "bool": "bool", "reduce": n.dtype, "cast": n.dtype}[info.result]
    if n.dtype != want:
        raise TypeError(f"[fusion] {n.op}: node dtype {n.dtype} but srcs are {src_dt}")
    if info.result == "reduce":
        if n.dtype != src_dt:
            raise TypeError(f"[fusion] {n.op}: src dtype {src_dt} must equal node dtype {n.dtype}")
        if not (isinstance(n.arg, tuple) and all(isinstance(a, int) for a in n.arg)
                and list(n.arg) == sorted(set(n.arg))):
            raise ValueError(f"[fusion] {n.op}: arg must be a sorted tuple of axes, got {n.arg!r}")

# ----------------------------------------------------------------------- builders


def inp(slot: int, dtype: str) -> Node:
    """The input array in slot `slot`."""
    return Node("input", dtype, (), slot)


def const(value, dtype: str) -> Node:
    """A scalar constant (inf/nan allowed); its value is a kernel argument, not baked in."""
    kind = DTYPES[dtype].kind
    value = bool(value) if kind == "b" else (int(value) if kind in "iu" else float(value))
    return Node("const", dtype, (), value)


def alu(op: str, *srcs: Node, arg: Hashable = None, dtype: str | None = None) -> Node:
    """Build an op node, inferring its dtype from OPS (`dtype` is needed for cast)."""
    info = OPS[op]
    if dtype is None:
        if info.result == "bool":
            dtype = "bool"
        else:
            dtype = srcs[-1].dtype
    return Node(op, dtype, tuple(srcs), arg)


def toposort(roots) -> list[Node]:
    """All nodes reachable from `roots`, each after its srcs (deterministic order)."""
    return postorder(roots, lambda n: n.srcs)
