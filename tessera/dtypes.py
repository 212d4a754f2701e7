"""tessera's own dtypes, their storage per backend, and type promotion.

tessera names its dtypes (`fp32`, `bf16`, ...) rather than borrowing NumPy's because
the backends disagree on what exists: NumPy stores bf16 and fp8 through ml_dtypes,
CuPy has neither and keeps them as raw 16/8-bit words that kernels convert.
Promotion follows the Python Array API standard (no int/float cross-kind
promotion surprises, Python scalars are weak), extended to bf16 and fp8 as PyTorch
does (bf16 with fp16 gives fp32).
"""
from __future__ import annotations

import numpy as np

from .errors import DTypeError

try:  # ml_dtypes gives NumPy bf16 and fp8; without it those dtypes are unavailable on the CPU
    import ml_dtypes as _mld
except ImportError:  # pragma: no cover - ml_dtypes is a core dependency
    _mld = None


class DType:
    """A tessera dtype: a name, a kind ('b' bool, 'i' signed, 'u' unsigned,
    'f' float, 'c' complex) and a size. Compared by identity: one object per dtype."""

    __slots__ = ("name", "kind", "itemsize", "np_storage", "cuda_storage", "bits", "aliases",
                 "is_differentiable", "ctype", "storage", "compute", "short", "numpy",
                 "load", "store", "rnd")

    def __init__(self, name, kind, itemsize, np_storage, cuda_storage, aliases=(), kernel=None,
                 codec=(None, None, None)):
        self.name = name
        self.kind = kind
        self.itemsize = itemsize
        self.bits = itemsize * 8
        self.np_storage = np.dtype(np_storage) if np_storage is not None else None
        # The words a CuPy without the type stores it in (bf16: uint16; fp8 always
        # uint8, CuPy has no fp8). The CUDA backend stores bf16 natively where the
        # installed CuPy has bfloat16 arrays (backend/cuda.py, a feature probe).
        self.cuda_storage = np.dtype(cuda_storage)
        self.aliases = aliases
        # a plain attribute, not a property: the tape checks it on every op
        self.is_differentiable = kind in "fc"
        # What kernels see (None for dtypes no kernel handles, e.g. complex):
        # ctype: the storage type in compat.cuh (tiled kernels); storage: the C
        # type of a buffer element in generated (fused) code; compute: the
        # functor family it computes in (fp16/bf16/fp8 compute in f32); short:
        # its tag in kernel names; numpy: the CPU storage dtype's name.
        self.ctype, self.storage, self.compute, self.short = kernel or (None,) * 4
        self.numpy = np_storage if isinstance(np_storage, str) or np_storage is None \
            else np.dtype(np_storage).name
        # load/store/rnd: functors.cuh functions decoding storage bits to float,
        # encoding float to storage bits, rounding a float to this dtype's values
        self.load, self.store, self.rnd = codec

    @property
    def is_floating(self):
        return self.kind == "f"

    @property
    def is_complex(self):
        return self.kind == "c"

    @property
    def is_integer(self):
        return self.kind in "iu"

    @property
    def is_bool(self):
        return self.kind == "b"

    def __repr__(self):
        return f"tessera.{self.name}"

    def __str__(self):
        return self.name

    def __reduce__(self):
        return (get_dtype, (self.name,))


def _mld_type(name):
    return getattr(_mld, name) if _mld is not None else None


bool_ = DType("bool", "b", 1, np.bool_, np.bool_, ("bool", "bool_"), ("bool", "uint8_t", "b", "b"))
int8 = DType("int8", "i", 1, np.int8, np.int8, ("i1",), ("i8", "int8_t", "i8", "i8"))
int16 = DType("int16", "i", 2, np.int16, np.int16, ("i2",), ("i16", "int16_t", "i16", "i16"))
int32 = DType("int32", "i", 4, np.int32, np.int32, ("i4", "int"), ("i32", "int32_t", "i32", "i32"))
int64 = DType("int64", "i", 8, np.int64, np.int64, ("i8", "long"), ("i64", "int64_t", "i64", "i64"))
uint8 = DType("uint8", "u", 1, np.uint8, np.uint8, ("u1",), ("u8", "uint8_t", "u8", "u8"))
fp16 = DType("fp16", "f", 2, np.float16, np.float16, ("float16", "half", "f2"), ("f16", "uint16_t", "f32", "f16"),
             ("ts_f16_to_f32", "ts_f32_to_f16", "ts_round_f16"))
bf16 = DType("bf16", "f", 2, _mld_type("bfloat16"), np.uint16, ("bfloat16",), ("bf16", "uint16_t", "f32", "bf16"),
             ("ts_bf16_to_f32", "ts_f32_to_bf16", "ts_round_bf16"))
fp32 = DType("fp32", "f", 4, np.float32, np.float32, ("float32", "float", "f4", "single"), ("f32", "float", "f32", "f32"))
fp64 = DType("fp64", "f", 8, np.float64, np.float64, ("float64", "double", "f8"), ("f64", "double", "f64", "f64"))
fp8_e4m3 = DType("fp8_e4m3", "f", 1, _mld_type("float8_e4m3fn"), np.uint8, ("float8_e4m3fn", "float8_e4m3", "e4m3"),
                 ("fp8e4m3", "uint8_t", "f32", "e4m3"), ("ts_e4m3_to_f32", "ts_f32_to_e4m3", "ts_round_e4m3"))
fp8_e5m2 = DType("fp8_e5m2", "f", 1, _mld_type("float8_e5m2"), np.uint8, ("float8_e5m2", "e5m2"),
                 ("fp8e5m2", "uint8_t", "f32", "e5m2"), ("ts_e5m2_to_f32", "ts_f32_to_e5m2", "ts_round_e5m2"))
complex64 = DType("complex64", "c", 8, np.complex64, np.complex64, ("c8", "cfloat"))
complex128 = DType("complex128", "c", 16, np.complex128, np.complex128, ("c16", "cdouble"))

ALL_DTYPES = (bool_, int8, int16, int32, int64, uint8, fp16, bf16, fp32, fp64,
              fp8_e4m3, fp8_e5m2, complex64, complex128)
FLOAT_DTYPES = (fp16, bf16, fp32, fp64)
INT_DTYPES = (int8, int16, int32, int64, uint8)

_BY_NAME = {}
for _d in ALL_DTYPES:
    _BY_NAME[_d.name] = _d
    for _a in _d.aliases:
        _BY_NAME[_a] = _d
_BY_NP = {}
for _d in ALL_DTYPES:
    if _d.np_storage is not None:
        _BY_NP.setdefault(_d.np_storage, _d)
_BY_NP[np.dtype(np.uint16)] = None  # no tessera uint16: rejected with a clear message
_BY_NP[np.dtype(np.uint32)] = None
_BY_NP[np.dtype(np.uint64)] = None


def get_dtype(spec, op=None) -> DType:
    """Resolve a tessera dtype from a DType, a name or alias ("fp32", "float32",
    "bf16"), a NumPy dtype or scalar type, or a Python type (float -> fp32,
    int -> int64, bool -> bool, complex -> complex64 as the Array API defaults).
    `op` names the calling op in the error message."""
    if type(spec) is DType:
        return spec
    if isinstance(spec, str):
        d = _BY_NAME.get(spec)
        if d is None:
            raise DTypeError(f"{_tag(op)}unknown dtype {spec!r}; accepted: "
                             + ", ".join(d.name for d in ALL_DTYPES))
        return d
    if spec is float:
        return fp32
    if spec is int:
        return int64
    if spec is bool:
        return bool_
    if spec is complex:
        return complex64
    name = getattr(spec, "name", None)
    if isinstance(name, str) and name in _BY_NAME and not isinstance(spec, np.dtype):
        return _BY_NAME[name]  # e.g. torch.float32 -> "float32"? only exact names
    try:
        npd = np.dtype(spec)
    except TypeError:
        raise DTypeError(f"{_tag(op)}cannot interpret {spec!r} as a dtype; accepted: "
                         + ", ".join(d.name for d in ALL_DTYPES)) from None
    d = _BY_NP.get(npd, False)
    if d is False or d is None:
        raise DTypeError(f"{_tag(op)}dtype {npd} has no tessera equivalent; accepted: "
                         + ", ".join(d.name for d in ALL_DTYPES))
    return d


def _tag(op):
    return f"[{op}] " if op else ""


def from_numpy_dtype(npd) -> DType:
    return get_dtype(npd)


# ---- promotion -------------------------------------------------------------
# Lattice per the Array API standard: within a kind the wider wins; signed with
# unsigned goes to the signed type that holds both; int with float is not
# specified by the standard, tessera follows NumPy/PyTorch and takes the float.
_SIGNED = (int8, int16, int32, int64)
_FLOAT_ORDER = {fp8_e4m3: 0, fp8_e5m2: 0, fp16: 1, bf16: 1, fp32: 2, fp64: 3}


def _promote_uncached(a: DType, b: DType) -> DType:
    if a is b:
        return a
    ka, kb = a.kind, b.kind
    if ka == "b":
        return b
    if kb == "b":
        return a
    if ka == "c" or kb == "c":
        wide = (a.kind == "c" and a is complex128) or (b.kind == "c" and b is complex128) \
            or a is fp64 or b is fp64
        return complex128 if wide else complex64
    if ka == "f" and kb == "f":
        ra, rb = _FLOAT_ORDER[a], _FLOAT_ORDER[b]
        if ra != rb:
            return a if ra > rb else b
        # same rank, different type: fp16 with bf16, e4m3 with e5m2
        return fp32 if ra == 1 else fp16
    if ka == "f":
        return a
    if kb == "f":
        return b
    if ka == kb:  # both signed or both unsigned
        return a if a.itemsize >= b.itemsize else b
    s, u = (a, b) if ka == "i" else (b, a)
    if s.itemsize > u.itemsize:
        return s
    for cand in _SIGNED:
        if cand.itemsize > u.itemsize and cand.itemsize >= s.itemsize:
            return cand
    return int64


_PROMOTE = {(a, b): _promote_uncached(a, b) for a in ALL_DTYPES for b in ALL_DTYPES}


def promote(a: DType, b: DType) -> DType:
    return _PROMOTE[(a, b)]


def result_type(*dts) -> DType:
    out = dts[0]
    for d in dts[1:]:
        out = _PROMOTE[(out, d)]
    return out


def scalar_result(t: DType, value) -> DType:
    """Dtype of `tensor op python_scalar`: the scalar is weak, so the tensor's dtype
    wins within a kind; a float scalar with an int/bool tensor gives the default
    float, a complex scalar gives complex, a bool scalar never widens."""
    tv = type(value)
    if tv is bool:
        return t
    if tv is int:
        return int64 if t.kind == "b" else t
    if tv is float:
        return t if t.kind in "fc" else fp32
    if tv is complex:
        if t.kind == "c":
            return t
        return complex128 if t is fp64 else complex64
    raise DTypeError(f"unsupported scalar {value!r} of type {tv.__name__}")


def default_float():
    return fp32


def finfo(dtype):
    """Limits of a float dtype, as `numpy.finfo` (bf16 and fp8 via ml_dtypes)."""
    d = get_dtype(dtype)
    if d.kind not in "fc":
        raise DTypeError(f"[finfo] {d.name} is not a floating dtype")
    if d.np_storage is not None and d.kind == "f" and d.itemsize <= 2 and _mld is not None:
        return _mld.finfo(d.np_storage)
    return np.finfo(d.np_storage)


def iinfo(dtype):
    d = get_dtype(dtype)
    if d.kind not in "iu":
        raise DTypeError(f"[iinfo] {d.name} is not an integer dtype")
    return np.iinfo(d.np_storage)


def isdtype(dtype, kind) -> bool:
    """Array API `isdtype`: kind is a dtype, a kind name or a tuple of either."""
    d = get_dtype(dtype)
    if isinstance(kind, tuple):
        return any(isdtype(d, k) for k in kind)
    if isinstance(kind, DType):
        return d is kind
    table = {
        "bool": d.kind == "b",
        "signed integer": d.kind == "i",
        "unsigned integer": d.kind == "u",
        "integral": d.kind in "iu",
        "real floating": d.kind == "f",
        "complex floating": d.kind == "c",
        "numeric": d.kind in "iufc",
    }
    if kind not in table:
        raise DTypeError(f"[isdtype] unknown kind {kind!r}; accepted: " + ", ".join(table))
    return table[kind]
