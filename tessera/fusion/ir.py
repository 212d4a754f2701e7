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


@dataclass(frozen=True)
class DType:
    """How one tessera dtype is stored and computed in generated code.

    `compute` names the functor family (suffix in functors.cuh): fp16/bf16/fp8 are
    computed in float32 and only rounded to their storage type when stored (or by
    an explicit cast), which is why a fused result differs from op-by-op NumPy only
    by the intermediate roundings of the narrow dtypes involved.
    """
    name: str
    kind: str            # "f" float, "i" signed, "u" unsigned, "b" bool (, "c" complex later)
    itemsize: int
    storage: str         # C type of the buffer element
    compute: str         # functor suffix: f64 f32 i8 i16 i32 i64 u8 b
    short: str           # used in kernel names
    numpy: str           # numpy / ml_dtypes name of the CPU storage dtype
    load: str | None = None   # functor decoding storage bits to float
    store: str | None = None  # functor encoding float to storage bits
    rnd: str | None = None    # functor rounding a float to this dtype's values


DTYPES: dict[str, DType] = {d.name: d for d in (
    DType("fp64", "f", 8, "double", "f64", "f64", "float64"),
    DType("fp32", "f", 4, "float", "f32", "f32", "float32"),
    DType("fp16", "f", 2, "uint16_t", "f32", "f16", "float16",
          "ts_f16_to_f32", "ts_f32_to_f16", "ts_round_f16"),
    DType("bf16", "f", 2, "uint16_t", "f32", "bf16", "bfloat16",
          "ts_bf16_to_f32", "ts_f32_to_bf16", "ts_round_bf16"),
    DType("fp8_e4m3", "f", 1, "uint8_t", "f32", "e4m3", "float8_e4m3fn",
          "ts_e4m3_to_f32", "ts_f32_to_e4m3", "ts_round_e4m3"),
    DType("fp8_e5m2", "f", 1, "uint8_t", "f32", "e5m2", "float8_e5m2",
          "ts_e5m2_to_f32", "ts_f32_to_e5m2", "ts_round_e5m2"),
    DType("int8", "i", 1, "int8_t", "i8", "i8", "int8"),
    DType("int16", "i", 2, "int16_t", "i16", "i16", "int16"),
    DType("int32", "i", 4, "int32_t", "i32", "i32", "int32"),
    DType("int64", "i", 8, "int64_t", "i64", "i64", "int64"),
    DType("uint8", "u", 1, "uint8_t", "u8", "u8", "uint8"),
    DType("bool", "b", 1, "uint8_t", "b", "b", "bool"),
)}

# C type of each compute family.
COMPUTE_CTYPE = {"f64": "double", "f32": "float", "i8": "int8_t", "i16": "int16_t",
                 "i32": "int32_t", "i64": "int64_t", "u8": "uint8_t", "b": "uint8_t"}

_np_cache: dict[str, object] = {}


def numpy_dtype(name: str):
    """The NumPy (or ml_dtypes) storage dtype of a tessera dtype name."""
    dt = _np_cache.get(name)
    if dt is None:
        import numpy as np
        spec = DTYPES[name].numpy
        if spec in ("bfloat16", "float8_e4m3fn", "float8_e5m2"):
            import ml_dtypes
            dt = np.dtype(getattr(ml_dtypes, spec))
        else:
            dt = np.dtype(spec)
        _np_cache[name] = dt
    return dt


def dtype_of_numpy(dt) -> str:
    """Inverse of `numpy_dtype`."""
    for name in DTYPES:
        if numpy_dtype(name) == dt:
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
