"""Dtype casts between every pair of tessera dtypes.

The rules are one table, in tessera/precision/convert.py (not ml_dtypes' or NumPy's,
which vary by version and platform): one round-to-nearest-even into bf16/fp16/fp8 from
the exact source value, float to integer truncating toward zero (NaN and out of range
by a stated rule), anything to bool as `!= 0`. The gradient of a
cast is cast back to the input's dtype, so a bf16 activation made from an fp32
parameter sends an fp32 gradient to it.
"""
from __future__ import annotations

from .._config import STATE
from ._dispatch import apply_op


def cast_tensor(x, dt):
    """Cast `x` to tessera dtype `dt` (no checks: `astype`/`op.cast` validate)."""
    src = x.dtype
    backend = x.device.backend
    if (x._buf is None or x.size >= backend.FUSE_MIN_SIZE and STATE.fusion_mode != "none") \
            and dt.kind != "c" and src.kind != "c":  # the fusion IR has no complex type
        from ..fusion.lazy import lazy_elementwise
        if STATE.event_sinks:  # deferred ops are events too (profiler, capture, numerics)
            for s in STATE.event_sinks:
                s("op_start", "cast")
        out = lazy_elementwise("cast", (x,), src, dt, x.shape, x.device, None)
        if x.requires_grad and STATE.grad_enabled and dt.is_differentiable:
            from ..autograd.engine import record
            record("cast", (x,), out, lambda g: (cast_tensor(g, src),))
        if STATE.event_sinks:
            for s in STATE.event_sinks:
                s("op", ("cast", (x,), out))
        return out
    return apply_op("cast", (x,), lambda b: backend.cast(b, src, dt), dt, x.device,
                  (lambda g: (cast_tensor(g, src),)) if dt.is_differentiable else None)
