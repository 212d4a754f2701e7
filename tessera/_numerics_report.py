"""What `tessera.numerics` (check_numerics) reports and how it looks: scanning a
value for NaN/Inf (and for values beyond fp16/bf16 range), counting them,
re-running a fused group op by op to find the first op that made them, and
formatting the `NumericsError`. The mode and its event sink live in
`tessera.numerics`; this module holds no state.

    >>> import numpy as np
    >>> finite_fast(np.ones(4, np.float32)), finite_fast(np.array([1.0, np.inf]))
    (True, False)
    >>> report(np.array([1.0, np.nan, -np.inf]), None)["first"]
    (1,)
"""
from __future__ import annotations

from math import isfinite as _isfinite

import numpy as np

from ._srcloc import fmt_site, source_text
from .errors import NumericsError

LIMITS = {"fp16": 65504.0, "bf16": 3.3895313892515355e38}
# lazy reductions are LazyOps named after their kernel op; users wrote these names
LAZY_NAMES = {"reduce_sum": "sum", "reduce_prod": "prod", "reduce_max": "max",
              "reduce_min": "min"}


# -- scanning one value ----------------------------------------------------------
def finite_fast(x):
    """True when every element of the float NumPy array `x` is finite, in one BLAS
    pass: the dot product of x with itself (a sum of squares, so Inf never
    cancels and NaN always propagates). It costs ~1.5 us on small arrays against
    ~4 us for `x.sum()` and ~6 us for `isfinite(x).all()` (two ufunc calls and a
    temporary). A False can be a false alarm (squares beyond the dtype's range):
    callers confirm with `is_bad`."""
    if x.ndim != 1:
        if not x.flags.c_contiguous:
            with np.errstate(all="ignore"):
                return _isfinite(x.sum())
        x = x.reshape(-1)
    return _isfinite(x.dot(x))  # BLAS raises no floating-point warnings


def host_view(buf, dtype, device):
    """An array xp math accepts, at least fp32 (16-bit sums overflow, bf16 has no ufuncs)."""
    b = device.backend
    x = b.compute(buf, dtype)
    if dtype.kind == "f" and x.dtype.itemsize < 4:
        x = x.astype(np.float32)
    return x


def xp_of(x):
    if isinstance(x, (np.ndarray, np.generic)):
        return np
    from .backend.cupy_source import cupy  # only reached for CuPy arrays
    return cupy()


def is_bad(x, limit):
    """Exact test: any non-finite (or, with `limit`, any |v| > limit) element?"""
    xp = xp_of(x)
    with np.errstate(all="ignore"):
        if limit is not None:
            lo, hi = x.min(), x.max()
            return not (xp.isfinite(lo) and xp.isfinite(hi)) or max(-lo, hi) > limit
        if xp is np and x.dtype.kind == "f" and finite_fast(x):
            return False
        return not bool(xp.isfinite(x).all())


def report(x, limit):
    """{nan, posinf, neginf, over, first, n, largest} for a value known (or suspected)
    bad, or None when it is clean after all."""
    xp = xp_of(x)
    with np.errstate(all="ignore"):
        r = x.real if x.dtype.kind == "c" else x
        nan = xp.isnan(x) if x.dtype.kind == "c" else xp.isnan(r)
        bad = ~xp.isfinite(x)
        over = (xp.abs(r) > limit) & ~bad if limit is not None else None
        anyb = bad | over if over is not None else bad
        if not bool(anyb.any()):
            return None
        first = int(xp.argmax(anyb.ravel()))
        return {"nan": int(nan.sum()), "posinf": int(xp.isposinf(r).sum()),
                "neginf": int(xp.isneginf(r).sum()), "over": int(over.sum()) if over is not None
                else 0, "first": tuple(int(i) for i in np.unravel_index(first, x.shape)),
                "n": int(x.size), "largest": float(xp.abs(r[xp.isfinite(r)]).max())
                if over is not None and bool(over.any()) else None}


def limit_for(dtype, opts):
    """The overflow limit to test an output of `dtype` against, or None."""
    if not opts or dtype.kind != "f" or dtype.itemsize < 4:
        return None
    lims = [LIMITS[n] for n in opts if n in LIMITS]
    return min(lims) if lims else None


def value_range(v):
    """"[lo, hi]" of an input (finite values only), for the message."""
    if isinstance(v, (bool, int, float, complex)):
        return repr(v)
    with np.errstate(all="ignore"):
        a = v.real if v.dtype.kind == "c" else v
        if a.size == 0:
            return "empty"
        if a.dtype.kind in "biu":
            return f"[{a.min()}, {a.max()}]"
        fin = a[xp_of(a).isfinite(a)]
        bad = " (holds NaN/Inf)" if fin.size != a.size else ""
        return (f"[{float(fin.min()):.4g}, {float(fin.max()):.4g}]{bad}" if fin.size
                else "no finite values")


def _limit_name(limit):
    return " / ".join(k for k, v in LIMITS.items() if v == limit) or "a narrower dtype"


def make_error(op, dtype, shape, rep, limit, site, extra=(), message="", **attrs):
    """The NumericsError: counts, first index, the user's line and source text, the
    extra lines (input ranges, kernel, backward context); `attrs` become attributes."""
    counts = (f"{rep['nan']} NaN, {rep['posinf']} +Inf, {rep['neginf']} -Inf")
    if rep["over"]:
        counts += (f", {rep['over']} finite values beyond {limit:.6g} (largest "
                   f"{rep['largest']:.6g}) that a cast to {_limit_name(limit)} would make Inf")
    lines = [f"[check_numerics] {op} produced {counts} in a {dtype.name} tensor of shape "
             f"{tuple(shape)} ({rep['n']} elements); first bad element at index {rep['first']}"]
    if message:
        lines.append(f"  message: {message}")
    src = source_text(site)
    lines.append(f"  at {fmt_site(site)}" + (f":  {src}" if src else ""))
    lines.extend("  " + e for e in extra if e)
    err = NumericsError("\n".join(lines))
    err.op, err.site, err.counts, err.index = op, site, rep, rep["first"]
    err.dtype, err.shape = dtype, tuple(shape)
    for k, v in attrs.items():
        setattr(err, k, v)
    return err


# -- the unfused re-run of a fused group -----------------------------------------------
def rerun_unfused(ev, order, reduces, opts):
    """Re-run a fused group op by op from its inputs (`order`: [(LazyOp, srcs)],
    `reduces`: its reductions) and return the first op whose inputs are finite and
    whose output is not, as (lop, name, args, host value, limit, clean); when every
    bad op had a bad input already, the first bad op with clean=False; else None."""
    from . import dtypes as _dt
    from .fusion.execute import _REDUCE_NAMES
    from .fusion.lazy import LazyOp
    from .tensor import Tensor
    backend = ev["device"].backend
    vals = {}

    def value(s, want):
        if type(s) is LazyOp and id(s) in vals:
            v, dt = vals[id(s)], s.dtype
        elif type(s) is LazyOp or type(s) is Tensor:
            dt = s.dtype
            v = backend.compute(s.buf if type(s) is LazyOp else s.data, dt)
        else:
            return s
        if dt is not want:
            v = backend.compute(backend.cast(backend.store(v, dt), dt, want), want)
        return v

    steps = []
    for lop, srcs in order:
        want = [_dt.bool_ if lop.op == "where" and i == 0 else lop.in_dtype
                for i in range(len(srcs))]
        args = [value(s, w) for s, w in zip(srcs, want)]
        with np.errstate(all="ignore"):
            if lop.op == "cast":
                out = backend.cast(backend.store(args[0], lop.in_dtype), lop.in_dtype,
                                   lop.dtype)
            else:
                out = backend.elementwise(lop.op, args, lop.dtype)
        vals[id(lop)] = backend.compute(out, lop.dtype)
        steps.append((lop, lop.op, args, out))
    for o, srcs in reduces:
        args = [value(srcs[0], o.dtype)]
        with np.errstate(all="ignore"):
            r = backend.reduce(_REDUCE_NAMES[o.op], backend.store(args[0], o.dtype), o.dtype,
                               o.axes, True, o.dtype)
        steps.append((o, LAZY_NAMES.get(o.op, o.op), args, r))
    first_bad = None
    for lop, name, args, out in steps:
        if lop.dtype.kind not in "fc":
            continue
        limit = limit_for(lop.dtype, opts)
        x = host_view(out, lop.dtype, lop.device)
        if not is_bad(x, limit):
            continue
        arrays = [a for a in args if not isinstance(a, (bool, int, float, complex))]
        clean = not any(a.dtype.kind in "fc" and is_bad(a, None) for a in arrays)
        if clean or first_bad is None:
            first_bad = (lop, name, args, x, limit, clean)
        if clean:
            break
    return first_bad
