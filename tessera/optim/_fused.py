"""The fused fast path of the optimizers: a parameter's whole update run directly on
the backend buffers, in place, as a short run of ufunc calls with `out=` (the role
of torch's `foreach`/`fused` optimizers). No tessera op is dispatched, nothing goes
through the lazy fusion buffer, no parameter-sized temporary is allocated: the
work happens in one scratch buffer per parameter (two where the gradient itself
must be rewritten, for `maximize` or L2 weight decay, and Nesterov or Adam still
need it after a product), kept across steps by a `Scratch` cache.

It must give the same bits as the per-op path in `sgd_adam.py`, so each function
here performs the same operations in the same order, each rounded to the
parameter's dtype, with every Python hyperparameter taken as a scalar of that
dtype (tessera's weak-scalar rule: `x_fp32 * 0.9` multiplies by float32(0.9)).
Only a few identities IEEE arithmetic guarantees exactly are used: `a + b == b + a`,
`a * b == b * a` and `a + (-b) == a - b`. `tests/optim/test_fused.py` checks the
two paths bit for bit.

On the CPU the contiguous case runs each update in one pass instead
(`tessera/kernels/cpu/sgd_step.c`, `adam_step.c`: the same sequence element by
element, compiled without FMA contraction, so the same bits); the NumPy sequence
is the fallback (no C compiler, strided buffers, CuPy).

This module owns when that holds (`allowed`, `supports`, `ready`) and the update kernels
(`sgd`, `adam`); `sgd_adam.py` owns the state (creation, first-step rules) and the
bias-correction factors, shared by both paths.
"""
from __future__ import annotations

import ctypes

import numpy as np

from .. import dtypes as _dt
from .._config import STATE
from ..fusion.lazy import flush_pending

__all__ = ["SUPPORTED", "allowed", "supports", "ready", "Scratch", "sgd", "adam"]

# Devices where the per-op path rounds every op separately: the CPU's generated C
# is built with -ffp-contract=off. NVRTC contracts a*b+c into an FMA by default,
# so on CUDA the per-op path's fused kernels round differently from one ufunc per
# op, and the fast path stays off there until that is pinned down.
_DEVICES = frozenset({"cpu"})
# fp16/bf16 are computed in fp32 inside a fused group and rounded once at its end,
# but op by op (rounding after each) below the fusion size: no single ufunc sequence
# matches both, so narrow floats keep the per-op path.
_DTYPES = frozenset({_dt.fp32, _dt.fp64})
SUPPORTED = "fp32 and fp64 parameters on the CPU"


def allowed():
    """Whether the fast path may run now (checked once per `step`): it emits no op
    events, so graph capture, the profiler and `check_numerics` (which all listen
    to them) need the per-op path, as does an autocast policy (it may recast ops)."""
    return not STATE.event_sinks and not STATE.check_numerics and STATE.autocast is None \
        and STATE.capture is None


def supports(p):
    """Whether `p`'s device and dtype can take the fast path at all."""
    return p.device.type in _DEVICES and p.dtype in _DTYPES


def ready(p, g, like_p=(), zero_d=()):
    """Whether the fast path can update `p` from gradient `g`: `like_p` are state
    tensors that must have p's shape, dtype and device (None entries skipped),
    `zero_d` (tensor, dtype) pairs of 0-d state. Pending lazy groups are realized
    first (they may read what the update writes), as an in-place write does, and
    so are lazy operands."""
    if not supports(p):
        return False
    flush_pending("in-place write")
    dt, shape, dev = p.dtype, p.shape, p.device
    for t in (p, g) + tuple(like_p):
        if t is not None and (t.dtype is not dt or t.shape != shape or t.device is not dev):
            return False
    for t, tdt in zero_d:
        if t.dtype is not tdt or t.shape != () or t.device is not dev:
            return False
    for t in (p, g) + tuple(like_p) + tuple(t for t, _ in zero_d):
        if t is not None and t._buf is None:
            t.realize()
    return True


class Scratch:
    """Per-parameter scratch buffers, reused from step to step. Kept by the
    optimizer beside its state, never in it: they are not part of `state_dict`."""

    def __init__(self):
        self._bufs = {}  # parameter (hashed by identity) -> list of buffers

    def get(self, p, n):
        """`n` buffers of `p`'s shape and storage dtype (their contents are garbage)."""
        bufs = self._bufs.get(p)
        buf = p._buf
        if bufs is None or bufs[0].shape != buf.shape or bufs[0].dtype != buf.dtype:
            bufs = self._bufs[p] = []
        while len(bufs) < n:
            bufs.append(p.device.backend.xp.empty(buf.shape, buf.dtype))
        return bufs


def _grad(xp, g, p, wd, maximize, out):
    """The gradient the update uses, `(-g if maximize else g) + wd * p`, in `out`
    (`g` itself when neither applies). `-g + x` is computed as `x - g`, exactly."""
    if wd:
        xp.multiply(p, wd, out=out)
        return (xp.subtract if maximize else xp.add)(out, g, out=out)
    return xp.negative(g, out=out) if maximize else g


def sgd(xp, p, g, buf, coef, scratch, lr, momentum, wd, maximize, nesterov):
    """SGD on buffers, as `SGD._update`: `buf = buf * momentum + g * coef` (`coef`
    a 0-d buffer, or None for no dampening); `g = g + momentum * buf` (nesterov)
    or `buf`; `p -= lr * g`. Scalars are already of the parameter's dtype; `buf`
    is None without momentum. `scratch(n)` returns n scratch buffers."""
    rewrite = bool(wd) or maximize
    s = scratch(2 if rewrite and nesterov else 1)
    d = _grad(xp, g, p, wd, maximize, s[0])
    if _one_pass(xp, "sgd_step", (p, d, buf if momentum else None),
                 (momentum or 0, lr, 0 if coef is None else coef, coef is not None, nesterov)):
        return  # the sequence below in one pass (tessera/kernels/cpu/sgd_step.c)
    if momentum:
        xp.multiply(buf, momentum, out=buf)
        xp.add(buf, d if coef is None else xp.multiply(d, coef, out=s[0]), out=buf)
        if nesterov:
            t = s[1] if rewrite else s[0]
            d = xp.add(d, xp.multiply(buf, momentum, out=t), out=t)
        else:
            d = buf
    xp.subtract(p, xp.multiply(d, lr, out=s[0]), out=p)


def adam(xp, p, g, m, v, vmax, scratch, c1, b2, c2, eps, wd, decay, maximize, step_size,
         bc2_sqrt):
    """Adam on buffers, as `Adam._update` after its step count was incremented:
    `p *= decay` (AdamW's decoupled weight decay, None otherwise; `wd` is then the
    L2 coefficient or 0); `m += (g - m) * c1`; `v = v * b2 + g * g * c2`; `vmax =
    max(vmax, v)` (amsgrad; None otherwise); `p -= step_size * (m / (sqrt(v) /
    bc2_sqrt + eps))` with the bias-correction factors as 0-d buffers. `c1`, `c2`
    are `1 - b1`, `1 - b2`; scalars are already of the parameter's dtype."""
    rewrite = bool(wd) or maximize
    s = scratch(2 if rewrite else 1)
    if decay is not None:
        xp.multiply(p, decay, out=p)
    d = _grad(xp, g, p, wd, maximize, s[1]) if rewrite else g
    if _one_pass(xp, "adam_step", (p, d, m, v, vmax), (c1, b2, c2, bc2_sqrt, eps, step_size)):
        return  # the sequence below in one pass (tessera/kernels/cpu/adam_step.c)
    w = s[0]
    xp.add(m, xp.multiply(xp.subtract(d, m, out=w), c1, out=w), out=m)
    xp.multiply(v, b2, out=v)
    xp.add(v, xp.multiply(xp.multiply(d, d, out=w), c2, out=w), out=v)
    if vmax is not None:
        v = xp.maximum(vmax, v, out=vmax)
    xp.sqrt(v, out=w)
    xp.divide(w, bc2_sqrt, out=w)
    xp.add(w, eps, out=w)
    xp.divide(m, w, out=w)
    xp.subtract(p, xp.multiply(w, step_size, out=w), out=p)


# -- the updates in one pass on the CPU (tessera/kernels/cpu/*_step.c): the NumPy
# sequences above element by element, same roundings, so the same bits; one read of
# each array instead of a dozen passes (MLP of benchmarks/autodiff.py: Adam's step
# 0.46 -> 0.19 ms, SGD's 0.125 -> 0.10 ms on 2 cores).
_NATIVE = {}  # (kernel, dtype) -> ctypes function, or None when unavailable


def _native(kernel, dtype, nargs):
    """`ts_<kernel>_f32/_f64` of tessera/kernels/cpu/<kernel>.c for a NumPy dtype."""
    key = (kernel, dtype)
    if key not in _NATIVE:
        from ..backend.cpu_native import library
        suffix = {np.dtype(np.float32): "f32", np.dtype(np.float64): "f64"}.get(dtype)
        lib = library(kernel, "", f"ts_{kernel}_f32") if suffix else None
        fn = None
        if lib is not None:
            fn = getattr(lib, f"ts_{kernel}_{suffix}")
            fn.argtypes = [ctypes.c_void_p] * nargs
            fn.restype = None
        _NATIVE[key] = fn
    return _NATIVE[key]


def _one_pass(xp, kernel, arrays, scalars):
    """Run `ts_<kernel>_f32/_f64` of tessera/kernels/cpu/<kernel>.c as
    `kernel(&n, *arrays, scalars)` when it applies: NumPy C-contiguous arrays of
    the first one's dtype (None: an absent optional operand, passed as NULL), a C
    compiler. False: the caller runs its NumPy sequence."""
    if xp is not np:
        return False
    p = arrays[0]
    fn = _native(kernel, p.dtype, len(arrays) + 2)
    if fn is None:
        return False
    for a in arrays:
        if a is not None and (a.dtype != p.dtype or not a.flags.c_contiguous):
            return False
    n = np.array([p.size], np.int64)  # named: they must outlive the call
    sc = np.array(scalars, p.dtype)
    fn(n.ctypes.data, *[None if a is None else a.ctypes.data for a in arrays], sc.ctypes.data)
    return True
