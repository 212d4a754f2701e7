"""Reductions and statistics over any set of axes: sum, prod, mean, var, std,
max, min, argmax, argmin, all, any, logsumexp, cumulative_sum.

Accumulation is at least fp32 for floats and int64 for ints (sum of an int8 tensor
does not wrap). An elementwise producer that is still pending in the fusion
buffer is fused into the reduction (`sum(x * y)` is one kernel). Adjoints
broadcast the gradient back over the reduced axes; `max`/`min` split it evenly
between tied elements.
"""
from __future__ import annotations

import builtins

import numpy as np

from .. import dtypes as _dt
from .._config import STATE
from ..errors import DTypeError, ShapeError
from ..autograd.engine import record
from ..device import CPU as _CPU
from ..tensor import Tensor, _new
from ._dispatch import apply_op, norm_axes, norm_axis, prod as _prod, to_tensor


def _kshape(shape, axes):
    return tuple(1 if i in axes else d for i, d in enumerate(shape))


def _expand_grad(g, x_shape, axes, keepdims):
    """Gradient of a reduction, brought back to the input's shape."""
    from .movement import broadcast_to, reshape
    if not keepdims:
        g = reshape(g, _kshape(x_shape, axes))
    return broadcast_to(g, x_shape)


def _sum_dtype(op, dt, dtype):
    if dtype is not None:
        return _dt.get_dtype(dtype, op)
    if dt.kind in "bi":
        return _dt.int64
    if dt.kind == "u":
        return _dt.int64
    return dt


_GEOM = {}


def _geometry(name, shape, axis, keepdims):
    """(axes, output shape), cached: the eager hot path sees few distinct calls."""
    key = (shape, axis if not isinstance(axis, list) else tuple(axis), keepdims)
    g = _GEOM.get(key)
    if g is None:
        axes = norm_axes(name, axis, len(shape))
        oshape = _kshape(shape, axes) if keepdims else tuple(
            d for i, d in enumerate(shape) if i not in axes)
        g = (axes, oshape)
        if len(_GEOM) < 4096:
            _GEOM[key] = g
    return g


def _reduce(name, x, axis, keepdims, out_dt, vjp_factory, **kw):
    if type(x) is not Tensor:
        x = to_tensor(name, x)
    axes, oshape = _geometry(name, x.shape, axis, keepdims)
    vjp, saved = None, ()
    if vjp_factory is not None and x.requires_grad and STATE.grad_enabled:
        vjp, saved = vjp_factory(x, axes, keepdims)
    if name in ("sum", "max", "min", "prod") and (x._buf is None or (
            STATE.fusion_mode == "aggressive" and x.size >= x.device.backend.FUSE_MIN_SIZE
            and x.dtype.kind != "c")) and STATE.fusion_mode != "none":
        # The producer is still pending: the reduction joins its fusion group.
        from ..fusion.lazy import lazy_reduce
        from ..autograd.engine import record
        if STATE.event_sinks:  # deferred ops are events too (profiler, capture, numerics)
            for s in STATE.event_sinks:
                s("op_start", name)
        out = lazy_reduce(name, x, axes, out_dt, oshape)
        if vjp is not None:
            record(name, (x,), out, vjp, saved)
        if STATE.event_sinks:
            for s in STATE.event_sinks:
                s("op", (name, (x,), out))
        return out
    b = x.device.backend
    dt = x.dtype

    def fwd(buf):
        r = b.reduce(name, buf, dt, axes, keepdims, out_dt, **kw)
        return r if tuple(r.shape) == oshape else r.reshape(oshape)
    return apply_op(name, (x,), fwd, out_dt, x.device, vjp, saved, shape=oshape)



_SUM_ACC = {_dt.fp32: np.float32, _dt.fp64: np.float64}  # accum_dtype of the float dtypes
_ALL_AXES = [tuple(range(n)) for n in range(33)]


def _sum_all_cpu(x):
    """`sum(x)` of a realized fp32/fp64 CPU tensor: the same NumPy reduction and
    tape node as `_reduce`, without its geometry and closures. None: not handled."""
    acc = _SUM_ACC.get(x.dtype)
    buf = x._buf
    if acc is None or buf is None or x.device is not _CPU or STATE.event_sinks \
            or STATE.autocast is not None or STATE.fusion_mode == "aggressive":
        return None
    shape = x.shape
    axes = _ALL_AXES[len(shape)] if len(shape) < 33 else tuple(range(len(shape)))
    r = np.add.reduce(buf, axis=axes, keepdims=False, dtype=acc)
    if type(r) is not np.ndarray:
        r = np.asarray(r)
    out = _new(r, (), x.dtype, _CPU)
    out._name = "sum"
    if x.requires_grad and STATE.grad_enabled:
        record("sum", (x,), out, lambda g: (_expand_grad(g, shape, axes, False),), ())
    return out


def sum(x, axis=None, *, dtype=None, keepdims=False):
    """Sum over `axis` (None: all), as the Array API `sum`. Integer inputs
    accumulate and return int64.

    >>> import tessera as ts
    >>> int(ts.sum(ts.asarray([1, 2, 3])))
    6
    """
    if axis is None and dtype is None and not keepdims and type(x) is Tensor:
        out = _sum_all_cpu(x)
        if out is not None:
            return out
    x = to_tensor("sum", x)
    if STATE.autocast is not None:  # tessera.precision.autocast policy
        (x,) = STATE.autocast.cast_inputs("sum", (x,))
    out_dt = _sum_dtype("sum", x.dtype, dtype)

    def vjp(x, axes, keepdims):
        shape = x.shape
        return (lambda g: (_expand_grad(g, shape, axes, keepdims),)), ()
    return _reduce("sum", x, axis, keepdims, out_dt, vjp)


def prod(x, axis=None, *, dtype=None, keepdims=False):
    x = to_tensor("prod", x)
    if STATE.autocast is not None:  # tessera.precision.autocast policy
        (x,) = STATE.autocast.cast_inputs("prod", (x,))
    out_dt = _sum_dtype("prod", x.dtype, dtype)

    def vjp(x, axes, keepdims):
        xd = x.detach()

        def f(g):
            from .elementwise import where
            # Exact with zeros: d/dx_i prod = product of the others. With one zero
            # in a slice only that element gets a gradient; with two, none does.
            zero = xd == 0
            nz = where(zero, 1.0, xd)
            p_nz = prod(nz, axis=axes, keepdims=True)
            nzero = sum(zero, axis=axes, keepdims=True)
            ge = _expand_grad(g, xd.shape, axes, keepdims)
            others = where(zero, where(nzero == 1, p_nz, 0.0), where(nzero == 0, p_nz / nz, 0.0))
            if others.dtype.kind == "c":  # holomorphic: g * conj(d prod / dx)
                from .complex import conj
                others = conj(others)
            return (ge * others,)
        return f, (xd,)
    return _reduce("prod", x, axis, keepdims, out_dt, vjp)


def mean(x, axis=None, *, keepdims=False):
    """Arithmetic mean, as the Array API `mean`; integer inputs give fp32."""
    x = to_tensor("mean", x)
    axes = norm_axes("mean", axis, x.ndim)
    n = _prod(x.shape[a] for a in axes)
    s = sum(x if x.dtype.kind in "fc" else x.astype(_dt.fp32), axis=axes, keepdims=keepdims)
    return s / n if n else s * float("nan")


def var(x, axis=None, *, correction=0.0, keepdims=False):
    """Variance with `correction` (ddof), as the Array API `var`."""
    x = to_tensor("var", x)
    if x.dtype.kind not in "fc":
        x = x.astype(_dt.fp32)
    axes = norm_axes("var", axis, x.ndim)
    n = _prod(x.shape[a] for a in axes)

    def vjp(x, axes, keepdims):
        xd = x.detach()

        def f(g):
            m = mean(xd, axis=axes, keepdims=True)
            return (_expand_grad(g, xd.shape, axes, keepdims) * (xd - m) * (2.0 / builtins.max(n - correction, 0)),)
        return f, (xd,)
    return _reduce("var", x, axes, keepdims, x.dtype, vjp, correction=correction)


def std(x, axis=None, *, correction=0.0, keepdims=False):
    """Standard deviation, as the Array API `std`. Where it is 0 (a constant
    slice) the gradient is 0, as in PyTorch: sqrt's adjoint there is 0 * inf = NaN."""
    from ..autograd.engine import needs_grad, record
    v = var(x, axis, correction=correction, keepdims=keepdims)
    be, dt = v.device.backend, v.dtype
    out = apply_op("std", (v,), lambda b: be.elementwise("sqrt", [be.compute(b, dt)], dt),
                   dt, v.device)
    if needs_grad(v):
        od = out.detach()

        def vjp(g):
            from .elementwise import where
            return (where(od == 0, 0.0, g / (od * 2.0)),)
        record("std", (v,), out, vjp, (od,))
    return out


def _minmax(name, x, axis, keepdims):
    x = to_tensor(name, x)
    axes = norm_axes(name, axis, x.ndim)
    if builtins.any(x.shape[a] == 0 for a in axes) or (x.size == 0 and not axes):
        raise ShapeError(f"[{name}] zero-size reduction over axes {axes} of shape {x.shape} "
                         "has no identity")

    def vjp(x, axes, keepdims):
        xd = x.detach()

        def f(g):
            from .elementwise import where
            o = _reduce(name, xd, axes, True, xd.dtype, None)
            tie = xd == o
            cnt = sum(tie, axis=axes, keepdims=True)
            return (where(tie, _expand_grad(g, xd.shape, axes, keepdims) / cnt, 0.0),)
        return f, (xd,)
    return _reduce(name, x, axes, keepdims, x.dtype, vjp)


def max(x, axis=None, *, keepdims=False):
    """Maximum, as the Array API `max`; NaN propagates. The gradient is split
    evenly between elements that tie for the maximum."""
    return _minmax("max", x, axis, keepdims)


def min(x, axis=None, *, keepdims=False):
    """Minimum, as the Array API `min`; NaN propagates; ties split the gradient."""
    return _minmax("min", x, axis, keepdims)


def _arg(name, x, axis, keepdims):
    x = to_tensor(name, x)
    ax = norm_axis(name, axis, x.ndim)
    if x.size == 0:
        raise ShapeError(f"[{name}] of an empty tensor (shape {x.shape})")
    b, dt = x.device.backend, x.dtype
    return apply_op(name, (x,), lambda buf: b.arg_reduce(name, buf, dt, ax, keepdims),
                    _dt.int64, x.device)


def argmax(x, axis=None, *, keepdims=False):
    """Index of the maximum (first on ties; a NaN counts as the maximum)."""
    return _arg("argmax", x, axis, keepdims)


def argmin(x, axis=None, *, keepdims=False):
    return _arg("argmin", x, axis, keepdims)


def all(x, axis=None, *, keepdims=False):
    return _reduce("all", to_tensor("all", x), axis, keepdims, _dt.bool_, None)


def any(x, axis=None, *, keepdims=False):
    return _reduce("any", to_tensor("any", x), axis, keepdims, _dt.bool_, None)


def logsumexp(x, axis=None, *, keepdims=False):
    """log(sum(exp(x))) computed stably (the maximum is subtracted first)."""
    x = to_tensor("logsumexp", x)
    if STATE.autocast is not None:  # tessera.precision.autocast policy
        (x,) = STATE.autocast.cast_inputs("logsumexp", (x,))
    if x.dtype.kind not in "fc":
        x = x.astype(_dt.fp32)

    def vjp(x, axes, keepdims):
        xd = x.detach()

        def f(g):
            from .elementwise import exp
            o = logsumexp(xd, axis=axes, keepdims=True)
            return (_expand_grad(g, xd.shape, axes, keepdims) * exp(xd - o),)
        return f, (xd,)
    return _reduce("logsumexp", x, axis, keepdims, x.dtype, vjp)


def cumulative_sum(x, axis=None, *, dtype=None, include_initial=False):
    """Running sum along `axis`, as the Array API `cumulative_sum` (axis may be
    omitted for 1-D input)."""
    x = to_tensor("cumulative_sum", x)
    if axis is None:
        if x.ndim != 1:
            raise ShapeError(f"[cumulative_sum] axis is required for {x.ndim}-D input "
                             f"(shape {x.shape})")
        axis = 0
    ax = norm_axis("cumulative_sum", axis, x.ndim)
    out_dt = _sum_dtype("cumulative_sum", x.dtype, dtype)
    b = x.device.backend
    xp = b.xp
    dt = x.dtype

    def fwd(buf):
        c = b.cumsum(buf, dt, ax, out_dt)
        if include_initial:
            pad = [(0, 0)] * c.ndim
            pad[ax] = (1, 0)
            c = xp.pad(c, pad)
        return b.store(c, out_dt)

    def vjp(g):
        from .movement import flip
        from .indexing import take_slice
        if include_initial:
            g = take_slice(g, ax, 1, None)
        return (flip(cumulative_sum(flip(g, ax), axis=ax), ax),)
    return apply_op("cumulative_sum", (x,), fwd, out_dt, x.device, vjp)


def count_nonzero(x, axis=None, *, keepdims=False):
    from .elementwise import not_equal
    return sum(not_equal(x, 0), axis=axis, keepdims=keepdims)
