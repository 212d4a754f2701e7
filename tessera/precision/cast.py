"""`op.cast` beyond round-to-nearest: stochastic rounding and saturation.

`tessera.op.cast(x, dtype)` with the default rounding is the core cast
(`tessera.ops.cast`, fused; its rules are the table in tessera/precision/convert.py).
This module adds
  rounding="stochastic"  round |x| up with probability (|x| - lo) / ulp, where lo is
                         the representable value below |x| (toward zero) and ulp the
                         gap above it, so E[cast(x)] = x: small gradient updates to
                         bf16 weights survive instead of being rounded away;
  saturate=True          finite overflow and +-inf clamp to the destination's largest
                         finite value (fp8 and fp16/bf16) or integer range; NaN stays
                         NaN for floats and becomes 0 for integers (CUDA's rule).
The uniform draws come from a `tessera.random.Generator` (the device's default one
when none is given) and are an input of the op, so graph capture replays it.
The gradient flows back in the input's dtype, as for every cast.

    >>> import tessera as ts
    >>> from tessera.random import Generator
    >>> x = ts.full((10000,), 1.0 + 2 ** -10)          # between two bf16 values
    >>> y = ts.op.cast(x, "bf16", rounding="stochastic", generator=Generator(0))
    >>> abs(float(ts.mean(y.astype("fp32"))) - (1 + 2 ** -10)) < 1e-3
    True
"""
from __future__ import annotations

import numpy as np

from .. import dtypes as _dt
from ..errors import DTypeError
from ..ops._dispatch import apply_op, to_tensor
from ..ops.cast import cast_tensor

__all__ = ["cast", "stochastic_round", "saturate_bounds"]

# (min exponent of a normal number, mantissa bits) of the float targets
_FORMAT = {"fp64": (-1022, 52), "fp32": (-126, 23), "bf16": (-126, 7), "fp16": (-14, 10),
           "fp8_e4m3": (-6, 3), "fp8_e5m2": (-14, 2)}


def saturate_bounds(dt):
    """(lowest, highest) finite value of a float dtype or the range of an integer one."""
    if dt.kind == "f":
        m = float(_dt.finfo(dt).max)
        return -m, m
    if dt.kind in "iu":
        i = _dt.iinfo(dt)
        return int(i.min), int(i.max)
    return None


def stochastic_round(xp, v, u, dst):
    """Round float64/float32 array `v` to the grid of `dst` using uniforms `u` in [0, 1).
    Returns float64 values that lie on the grid (the caller casts them exactly)."""
    v = v.astype(np.float64)
    a = xp.abs(v)
    if dst.kind in "iu":
        lo = xp.floor(a)
        r = lo + (u < (a - lo))
    else:
        emin, man = _FORMAT[dst.name]
        _, e = xp.frexp(a)  # a = m * 2**e with m in [0.5, 1): the leading bit is 2**(e-1)
        ulp = xp.ldexp(1.0, xp.maximum(e - 1, emin) - man)
        lo = xp.floor(a / ulp) * ulp  # exact: a / ulp is below 2**(man+1) and ulp a power of 2
        r = lo + ulp * (u < (a - lo) / ulp)
    r = xp.where(xp.isfinite(a), r, a)  # inf and NaN are not rounded
    return xp.copysign(r, v)


def cast(x, dtype, rounding="nearest", saturate=None, generator=None):
    """Cast `x` to `dtype` with `rounding` ("nearest" (even) or "stochastic") and
    optional saturation (see the module docstring). As `op.cast`.

    >>> import tessera as ts
    >>> ts.op.cast(ts.asarray([1000.0, -1e9]), "fp8_e4m3", saturate=True).astype("fp32").tolist()
    [448.0, -448.0]
    """
    x = to_tensor("cast", x)
    dst = _dt.get_dtype(dtype)
    if rounding not in ("nearest", "stochastic"):
        raise ValueError(f"[cast] rounding must be 'nearest' or 'stochastic', got {rounding!r}")
    src = x.dtype
    if src.kind == "c" or dst.kind == "c":
        if rounding == "stochastic" or saturate:
            raise DTypeError(f"[cast] stochastic rounding / saturate are not defined for complex "
                             f"({src.name} -> {dst.name}, shape {x.shape})")
        return cast_tensor(x, dst)
    narrowing = src.kind == "f" and (dst.kind in "iu" or (dst.kind == "f" and _FORMAT[dst.name][1]
                                                           < _FORMAT[src.name][1]))
    stoch = rounding == "stochastic" and narrowing
    bounds = saturate_bounds(dst) if saturate and src.kind in "fiu" and dst.kind in "fiu" else None
    if bounds is not None and src.kind in "iu":  # clip's bounds within the source's range:
        i = _dt.iinfo(src)                        # CuPy converts them to its dtype (OverflowError)
        bounds = (int(max(bounds[0], i.min)), int(min(bounds[1], i.max)))
    if not stoch and bounds is None:
        return cast_tensor(x, dst)
    backend = x.device.backend
    xp = backend.xp
    inputs = (x,)
    if stoch:
        from ..random import default_generator
        gen = generator if generator is not None else default_generator(x.device)
        inputs = (x, gen.uniform(x.shape, dtype="fp64"))

    def fwd(b, ub=None):
        v = backend.compute(b, src)
        if src.kind == "f":
            v = v.astype(np.float64)
        if bounds is not None:
            lo, hi = bounds
            if dst.kind in "iu" and src.kind == "f":
                v = xp.where(xp.isnan(v), 0.0, xp.trunc(v))
            v = xp.where(xp.isnan(v), v, xp.clip(v, lo, hi)) if src.kind == "f" else xp.clip(v, lo, hi)
        if ub is not None:
            v = stochastic_round(xp, v, ub, dst)
            if bounds is not None:  # rounding up from just below the max may step past it
                v = xp.where(xp.isnan(v), v, xp.clip(v, *bounds))
        # the core cast's rules from v's exact values (fp64 for float sources; ints may
        # have been widened by clip): one rounding, the float -> int rule
        return backend.cast(v, _dt.fp64 if src.kind == "f" else _dt.get_dtype(v.dtype), dst)
    vjp = (lambda g: (cast_tensor(g, src), None)) if dst.is_differentiable else None
    return apply_op("cast", inputs, fwd, dst, x.device, vjp)
