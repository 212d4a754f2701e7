"""In-place updates (`a += b`, `setitem`, optimizer steps): the rules that keep
autodiff honest and lazy values consistent.

Before a buffer is written, pending fused groups are realized (they may read
it). Each write bumps the tensor's version counter, which backward compares
against the versions saved with the tape. A leaf that requires grad cannot be
written in place while recording (its gradient would lose the old value).
"""
from __future__ import annotations

from .._config import STATE
from ..errors import DTypeError, GradError


def check_inplace(op, x):
    if x.requires_grad and x.grad_fn is None and STATE.grad_enabled:
        raise GradError(f"[{op}] a leaf tensor that requires grad (shape {x.shape}) cannot be "
                        "modified in place while gradients are recorded; wrap the update in "
                        "`with tessera.no_grad():`")
    from ..fusion.lazy import flush_pending
    flush_pending("in-place write")
    if x._buf is None:
        x.realize()
    buf = x._buf
    if any(st == 0 and n > 1 for st, n in zip(buf.strides, buf.shape)):
        # many elements share one memory location (a broadcast_to/expand view): NumPy
        # refuses the write with a bare message, CuPy would race on the GPU
        from ..errors import ShapeError
        raise ShapeError(f"[{op}] cannot write in place into a broadcast view (shape {x.shape}, "
                         f"strides {buf.strides}: elements share memory); make a copy first, "
                         "e.g. x = x.copy()")


def bump(x):
    x._version.v += 1


def assign_inplace(a, r, name):
    """Make `a` hold the value `r` (computed out of place from `a`): writes into
    `a`'s storage, so views of `a` see it, and rebases `a` on the tape."""
    if r.dtype is not a.dtype:
        from .. import dtypes as _dt
        if _dt.promote(a.dtype, r.dtype) is not a.dtype:
            raise DTypeError(f"[{name}] in place: the result dtype {r.dtype.name} cannot be "
                             f"stored in the {a.dtype.name} tensor without losing information")
    if r.shape != a.shape:
        from ..errors import ShapeError
        raise ShapeError(f"[{name}] in place: the result shape {r.shape} differs from the "
                         f"tensor's shape {a.shape}")
    check_inplace(name, a)
    b = a.device.backend
    src = r.data
    if r.dtype is not a.dtype:
        src = b.cast(src, r.dtype, a.dtype)
    a._buf[...] = src
    bump(a)
    if r.grad_fn is not None:
        a.grad_fn = r.grad_fn
        a._out_idx = r._out_idx
        a.requires_grad = True
    if STATE.event_sinks:
        # (name, tensor, write, sources): graph replay re-applies the write as
        # write(target_buffer, *source_buffers)
        rdt, adt = r.dtype, a.dtype

        def write(dst, sb):
            dst[...] = sb if rdt is adt else b.cast(sb, rdt, adt)
        for s in STATE.event_sinks:
            s("inplace", (name, a, write, (r,)))
    return a
