"""tessera's conversion rules between real dtypes: the one table, and its NumPy side.

Every cast in tessera follows this table, whatever NumPy, ml_dtypes or the C compiler
would do by themselves (ml_dtypes 0.5 and 0.7 disagree on bf16 -> uint8 and on
fp64 -> bf16; C leaves float -> int overflow undefined). It is implemented three
times, kept equal by tests/precision/test_cast_rules.py against an independent
reference (Python integers and fractions):
  here, in NumPy        the CPU backend's casts, `asarray(..., dtype=)`, `op.cast`
  kernels/cast.cu       the eager GPU cast
  kernels/functors.cuh  fused kernels, C and CUDA (`ts_f2i32`, `ts_f2i64`, `ts_f64_to_f32_odd`)

  source          destination            rule
  any             bool                   x != 0 (NaN is true)
  float           int8, int16, int32,    t = trunc(x) (toward zero); w = t if -2**31 <= t < 2**31,
                  uint8                  else -2**31 (NaN and +-inf too); the result is w modulo
                                         2**bits (two's complement): uint8(-1.0) = 255,
                                         uint8(300.0) = 44, uint8(NaN) = 0, int32(NaN) = -2**31
  float           int64                  t if -2**63 <= t < 2**63, else -2**63
  any real        fp16, bf16, fp8_e4m3,  one rounding, to nearest even, of the exact source
                  fp8_e5m2               value (never through fp32 first); overflow gives +-inf
                                         (fp16, bf16, e5m2) or NaN (e4m3fn, which has no inf);
                                         NaN stays NaN
  any real        fp32, fp64             one rounding to nearest even (IEEE)
  int, bool       int                    two's complement wrap (C and NumPy)
  complex         real                   the real part, then the rules above

Narrow floats (fp16, bf16, fp8) are first widened to fp32, which is exact. The float ->
int rule is what NumPy gives on x86 (a conversion through int32/int64, made defined):
it keeps `astype` equal to NumPy there and on the fused path. `op.cast(...,
saturate=True)` is the other rule: clamp to the range, NaN -> 0.

Rounding once: an fp64 (or int32/int64) value is first rounded to fp32 *to odd*
(truncate, then set the last bit if anything was dropped), and that fp32 is rounded
to nearest even into the narrow format. Round-to-odd into a format with at least two
more bits than the target keeps every tie and near-tie distinguishable, so the two
steps give exactly the single rounding (Boldo & Melquiond, "Emulation of FMA and
correctly rounded sums: proved algorithms using rounding to odd", 2008).
"""
from __future__ import annotations

import numpy as np

from .. import dtypes as _dt

__all__ = ["cast_array", "cast_numpy", "float_to_int", "to_narrow", "f64_to_f32_odd", "i64_to_f64_odd"]

# destinations whose NumPy / ml_dtypes conversion from a wide source rounds twice or
# is version-dependent (NumPy's own fp64 -> fp16 already rounds once)
_NARROW = frozenset(d for d in (_dt.bf16, _dt.fp8_e4m3, _dt.fp8_e5m2) if d.np_storage is not None)
_ONE_STEP = frozenset((_dt.fp32,))  # fp32 -> narrow is a single rounding already
_F32_F64 = (np.dtype(np.float32), np.dtype(np.float64))
_WIDE_INT = {False: (np.dtype(np.int32), -2.0 ** 31), True: (np.dtype(np.int64), -2.0 ** 63)}


def f64_to_f32_odd(v):
    """float64 array -> float32 rounded to odd (see the module docstring)."""
    with np.errstate(over="ignore", invalid="ignore"):
        f = v.astype(np.float32)  # nearest even; beyond fp32's range: inf
        b = f.view(np.uint32).copy()
        f64 = f.astype(np.float64)
        # rounded away from zero (inf included): step back one code toward zero
        b -= (np.abs(f64) > np.abs(v)).astype(np.uint32)
        t = b.view(np.float32).astype(np.float64)
        b |= ((t != v) & (v == v)).astype(np.uint32)  # sticky bit; NaN keeps its pattern
    return b.view(np.float32)


def i64_to_f64_odd(n):
    """int64 array -> float64 rounded to odd (exact below 2**53 in magnitude)."""
    f = n.astype(np.float64)
    big = f >= 2.0 ** 63  # the one rounding result outside int64: above every n
    fi = np.where(big, 0.0, f).astype(np.int64)
    over = big | (fi > n)
    under = ~big & (fi < n)
    b = f.view(np.uint64).copy()
    b -= np.where(n >= 0, over, under).astype(np.uint64)  # toward zero
    b |= (over | under).astype(np.uint64)
    return b.view(np.float64)


def to_narrow(x, src, dst):
    """NumPy array `x` of tessera dtype `src` (real) rounded once into `dst`
    (bf16/fp8, or fp16): ml_dtypes' storage type of `dst`."""
    x = np.asarray(x)
    if src is _dt.fp64:
        f = f64_to_f32_odd(x)
    elif src is _dt.int64:
        f = f64_to_f32_odd(i64_to_f64_odd(x))
    elif src is _dt.int32:
        f = f64_to_f32_odd(x.astype(np.float64))  # exact
    elif src is _dt.fp32:
        f = x
    else:  # bool, int8/16, uint8 and the narrow floats: exact in fp32
        f = x.astype(np.float32)
    with np.errstate(over="ignore", invalid="ignore"):
        return f.astype(dst.np_storage)


def float_to_int(x, src, dst):
    """NumPy array `x` of float dtype `src` converted to integer dtype `dst` by the
    table's rule (truncate; NaN and out of range as stated there)."""
    x = np.asarray(x)
    if x.dtype not in _F32_F64:
        x = x.astype(np.float32)  # fp16, bf16, fp8: exact
    wide, lo = _WIDE_INT[dst is _dt.int64]
    # the common case, every value in range, is NumPy's own truncating conversion; NaN
    # fails both comparisons (min/max propagate it)
    if x.size and not (lo <= x.min() and x.max() < -lo):
        t = np.trunc(x)
        x = np.where((t >= lo) & (t < -lo), t, lo)  # now every value converts defined
    w = x.astype(wide)
    return w if dst is _dt.int32 or dst is _dt.int64 else w.astype(dst.np_storage)  # int -> int wraps


def cast_array(x, src, dst):
    """NumPy array `x` (storage of real tessera dtype `src`) cast to `dst`'s NumPy
    storage by the table above (complex sources: pass `x.real` and its real dtype)."""
    if dst.kind == "b":
        return x != 0
    if dst.kind in "iu" and src.kind == "f":
        return float_to_int(x, src, dst)
    if dst in _NARROW and src is not dst and src not in _ONE_STEP:
        return to_narrow(x, src, dst)
    return x.astype(dst.np_storage)


def cast_numpy(arr, dst):
    """Any NumPy array (a user's, in `asarray(..., dtype=)`) cast to `dst`'s storage by
    the table; NumPy dtypes without a tessera equivalent (uint16/32/64) and complex
    sources keep NumPy's astype."""
    from ..errors import DTypeError
    if arr.dtype.kind in "fiubV":
        try:
            src = _dt.get_dtype(arr.dtype)
        except DTypeError:
            src = None
        if src is not None and dst.kind != "c":
            return cast_array(arr, src, dst)
    return arr.astype(dst.np_storage)
