"""Neural-network functions with PyTorch semantics (`torch.nn.functional`):
activations, softmax / log_softmax, layer_norm / rms_norm and dropout; the
losses (cross_entropy, nll_loss, ...) are in `ops/losses.py` and re-exported here.

Activations, rms_norm and the simple losses are composites of tessera ops and
get their gradients (of any order) from them. softmax, log_softmax, layer_norm
and cross_entropy are backed by a backend primitive (a fused kernel on the GPU)
and carry a hand-written adjoint in tessera ops, so grad-of-grad works for them
too. fp16/bf16 inputs are computed in fp32 and rounded once. `linear` lives in
`ops/linalg.py`.
"""
from __future__ import annotations

import math

from .. import dtypes as _dt
from .._config import STATE
from ..autograd.engine import needs_grad, record
from ..errors import DTypeError, IndexingError, ShapeError
from ..tensor import _new
from ._dispatch import apply_op, norm_axis, prod, same_device, to_tensor
from .elementwise import astype, erf, exp, log1p, maximum, rsqrt, sigmoid, tanh, where
from .movement import expand_dims, reshape
from .reduce import mean, sum

__all__ = ["relu", "leaky_relu", "gelu", "silu", "softplus", "mish", "softmax",
           "log_softmax", "layer_norm", "rms_norm", "cross_entropy", "nll_loss", "mse_loss",
           "binary_cross_entropy_with_logits", "dropout"]

_HALF = (_dt.fp16, _dt.bf16)


def _float(op, x):
    """A float tensor argument; ints and bools go to the default float (fp32)."""
    x = to_tensor(op, x)
    if x.dtype.kind != "f":
        if x.dtype.kind == "c":
            raise DTypeError(f"[{op}] is not defined for complex tensors ({x.dtype.name})")
        x = astype(x, _dt.default_float())
    return x


def _up(x):
    return astype(x, _dt.fp32) if x.dtype in _HALF else x


def _cast(x, dt):
    return x if x.dtype is dt else astype(x, dt)


def _in_fp32(x, f):
    """f(x) computed in fp32 for fp16/bf16 (one rounding at the end)."""
    return _cast(f(_up(x)), x.dtype)


# -- activations ---------------------------------------------------------------
def relu(x):
    """max(x, 0), as `torch.nn.functional.relu`: NaN propagates (relu(nan) is nan,
    as in PyTorch; the earlier `where(x > 0, x, 0)` form gave 0), integer tensors
    stay integer, bool and complex raise.

    The forward is the primitive `maximum(x, 0)`, so it runs as one NumPy call or
    joins a fused kernel like any elementwise op; the tape gets one "relu" node with
    its own adjoint, 0 where x <= 0 else g: 0 at x == 0 and g at NaN, as PyTorch's
    threshold_backward. maximum's adjoint would be wrong here: it splits the
    gradient between tied operands, so relu'(0) would be 0.5.

    >>> import tessera as ts
    >>> ts.relu(ts.asarray([-1.0, 0.0, 2.0, float("nan")])).tolist()
    [0.0, 0.0, 2.0, nan]
    """
    x = to_tensor("relu", x)
    if x.dtype.kind in "bc":
        raise DTypeError(f"[relu] is not defined for {x.dtype.name} tensors (shape {x.shape}); "
                         "cast to an integer or float dtype first")
    if not needs_grad(x):
        out = maximum(x, 0)
    else:
        out = maximum(x.detach(), 0)  # a detached operand: maximum records nothing
        od = out.detach()  # the adjoint reads the output (x <= 0 iff out <= 0): x can go
        record("relu", (x,), out, lambda g: (where(od <= 0, 0, g),), (od,), origins=_FROM_OUT)
    out._name = "relu"
    return out


_FROM_OUT = (("out", 0),)  # relu's saved tensor is its output (engine._origin's answer)


def leaky_relu(x, negative_slope=0.01):
    """x where x > 0, else negative_slope * x, as `torch.nn.functional.leaky_relu`."""
    x = to_tensor("leaky_relu", x)
    return where(x > 0, x, x * negative_slope)


def gelu(x, approximate="none"):
    """Gaussian error linear unit, as `torch.nn.functional.gelu`: the exact erf form
    x * (1 + erf(x / sqrt 2)) / 2, or the tanh approximation with approximate="tanh"."""
    x = _float("gelu", x)
    if approximate == "none":
        return _in_fp32(x, lambda v: v * (erf(v * 0.7071067811865476) + 1) * 0.5)
    if approximate == "tanh":
        k = math.sqrt(2 / math.pi)
        return _in_fp32(x, lambda v: v * (tanh((v + v * v * v * 0.044715) * k) + 1) * 0.5)
    raise ValueError(f"[gelu] approximate must be 'none' or 'tanh', got {approximate!r}")


def silu(x):
    """x * sigmoid(x), as `torch.nn.functional.silu`."""
    return _in_fp32(_float("silu", x), lambda v: v * sigmoid(v))


def _softplus(v):
    # log(1 + e^v) = max(v, 0) + log1p(e^-|v|) never overflows. -|v| is written as a
    # `where` that takes the v branch at 0, so the gradient at 0 is sigmoid(0) = 1/2
    # (with abs, sign(0) = 0 would drop the log1p term's share of it).
    return where(v > 0, v, 0) + log1p(exp(where(v > 0, -v, v)))


def softplus(x, beta=1.0, threshold=20.0):
    """log(1 + exp(beta x)) / beta, and x itself where beta x > threshold, as
    `torch.nn.functional.softplus`; computed without overflow."""
    x = _float("softplus", x)

    def f(v):
        bv = v * beta if beta != 1 else v
        s = _softplus(bv)
        return where(bv > threshold, v, s / beta if beta != 1 else s)
    return _in_fp32(x, f)


def mish(x):
    """x * tanh(softplus(x)), as `torch.nn.functional.mish`."""
    return _in_fp32(_float("mish", x), lambda v: v * tanh(_softplus(v)))


# -- softmax (backend primitive, hand-written adjoint) ----------------------------
def _softmax(op, x, axis, log):
    x = _float(op, x)
    if STATE.autocast is not None:  # tessera.precision.autocast policy
        (x,) = STATE.autocast.cast_inputs(op, (x,))
    if x.ndim == 0:
        return reshape(_softmax(op, reshape(x, (1,)), 0, log), ())
    ax = norm_axis(op, axis, x.ndim, allow_none=False)
    b, dt = x.device.backend, x.dtype
    y = apply_op(op, (x,), lambda buf: b.softmax(buf, dt, ax, log), dt, x.device)
    if needs_grad(x):
        yd = y.detach()
        if log:  # d log_softmax: g - softmax * sum(g)
            def vjp(g):
                g, yu = _up(g), _up(yd)
                return (g - exp(yu) * sum(g, axis=ax, keepdims=True),)
        else:    # d softmax: y * (g - sum(g * y))
            def vjp(g):
                g, yu = _up(g), _up(yd)
                return (yu * (g - sum(g * yu, axis=ax, keepdims=True)),)
        record(op, (x,), y, vjp, saved=(yd,))
    return y


def softmax(x, axis=-1):
    """exp(x) / sum(exp(x)) along `axis`, as `torch.nn.functional.softmax(x, dim=axis)`
    (max-subtracted; fp16/bf16 in fp32). A row of all -inf gives NaN, as in PyTorch.

    >>> import tessera as ts
    >>> ts.softmax(ts.asarray([0.0, 0.0])).tolist()
    [0.5, 0.5]
    """
    return _softmax("softmax", x, axis, False)


def log_softmax(x, axis=-1):
    """x - logsumexp(x) along `axis`, as `torch.nn.functional.log_softmax`."""
    return _softmax("log_softmax", x, axis, True)


# -- normalisation -----------------------------------------------------------------
def _norm_shape(op, x, normalized_shape):
    ns = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    k = len(ns)
    if k == 0 or k > x.ndim or tuple(x.shape[x.ndim - k:]) != ns:
        raise ShapeError(f"[{op}] normalized_shape {ns} must be a non-empty suffix of the "
                         f"input's shape {x.shape}")
    return ns, tuple(range(x.ndim - k, x.ndim))


def _param(op, what, p, ns, device):
    if p is None:
        return None
    p = to_tensor(op, p, device=device)
    if p.shape != ns:
        raise ShapeError(f"[{op}] {what} has shape {p.shape}; expected normalized_shape {ns}")
    return p


def layer_norm(x, normalized_shape, weight=None, bias=None, eps=1e-5):
    """Normalise over the trailing `normalized_shape` axes, then scale and shift,
    as `torch.nn.functional.layer_norm` (biased variance, eps inside the sqrt).

    The backend primitive returns the per-row mean and 1/std, which the adjoint
    reuses. Under `create_graph` the adjoint recomputes them in tessera ops
    instead, so that it can itself be differentiated.
    """
    x = _float("layer_norm", x)
    ns, axes = _norm_shape("layer_norm", x, normalized_shape)
    w = _param("layer_norm", "weight", weight, ns, x.device)
    bb = _param("layer_norm", "bias", bias, ns, x.device)
    if STATE.autocast is not None:  # tessera.precision.autocast policy
        x, w, bb = STATE.autocast.cast_inputs("layer_norm", (x, w, bb))
    same_device("layer_norm", x, w, bb)
    dt = _dt.result_type(*(t.dtype for t in (x, w, bb) if t is not None))
    x, w, bb = (None if t is None else _cast(t, dt) for t in (x, w, bb))
    backend, has_w, has_b, k = x.device.backend, w is not None, bb is not None, len(ns)
    stats = []

    def fwd(xb, *pb):
        y, m, r = backend.layer_norm_forward(xb, pb[0] if has_w else None,
                                             pb[-1] if has_b else None, dt, k, eps)
        stats[:] = (m, r)
        return y
    y = apply_op("layer_norm", (x, w, bb), fwd, dt, x.device)
    if needs_grad(x, w, bb):
        sdt = _dt.fp64 if dt is _dt.fp64 else _dt.fp32
        kshape = stats[0].shape
        mu0, rs0 = (_new(s, kshape, sdt, x.device) for s in stats)
        xd, wd = x.detach(), (w.detach() if has_w else None)

        def vjp(g):
            g, xf = _up(g), _up(xd)
            if STATE.grad_enabled:  # create_graph: stats as differentiable functions of x
                mu = mean(xf, axis=axes, keepdims=True)
                rs = rsqrt(mean((xf - mu) * (xf - mu), axis=axes, keepdims=True) + eps)
            else:
                mu, rs = mu0, rs0
            xhat = (xf - mu) * rs
            gy = g * _up(wd) if has_w else g
            dx = rs * (gy - mean(gy, axis=axes, keepdims=True)
                       - xhat * mean(gy * xhat, axis=axes, keepdims=True))
            return (dx, g * xhat if has_w else None, g if has_b else None)
        record("layer_norm", (x, w, bb), y, vjp,
               saved=tuple(t for t in (xd, wd, mu0, rs0) if t is not None))
    return y


def rms_norm(x, normalized_shape, weight=None, eps=None):
    """x / sqrt(mean(x^2) + eps) * weight over the trailing `normalized_shape` axes,
    as `torch.nn.functional.rms_norm` (eps=None: the dtype's machine epsilon)."""
    x = _float("rms_norm", x)
    ns, axes = _norm_shape("rms_norm", x, normalized_shape)
    w = _param("rms_norm", "weight", weight, ns, x.device)
    e = float(_dt.finfo(x.dtype).eps) if eps is None else eps
    xf = _up(x)
    y = xf * rsqrt(mean(xf * xf, axis=axes, keepdims=True) + e)
    y = _cast(y, x.dtype)
    return y * w if w is not None else y


# -- dropout ---------------------------------------------------------------------------
def dropout(x, p=0.5, training=True, generator=None):
    """Inverted dropout, as `torch.nn.functional.dropout`: each element is zeroed
    with probability p and the others scaled by 1 / (1 - p), so the expectation is
    unchanged. The mask comes from `generator` (default: the device's default
    generator, see `tessera.random.manual_seed`) and is kept for backward."""
    x = to_tensor("dropout", x)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"[dropout] p must be in [0, 1], got {p}")
    if x.dtype.kind != "f":
        raise DTypeError(f"[dropout] expects a floating-point tensor, got {x.dtype.name}")
    if not training or p == 0:
        return x
    from ..random import default_generator
    gen = generator if generator is not None else default_generator(x.device)
    if gen.device is not x.device:
        from ..errors import DeviceError
        raise DeviceError(f"[dropout] generator is on {gen.device}, the tensor on {x.device}")
    keep = gen.bernoulli(1.0 - p, x.shape)
    if p == 1:
        return where(keep, x, 0)  # all dropped; the gradient is zero, not NaN
    return where(keep, x * (1.0 / (1.0 - p)), 0)


# The losses live in their own module (this one would pass 400 lines); they are
# part of this family's public API, so they are re-exported here.
from .losses import (binary_cross_entropy_with_logits, cross_entropy,  # noqa: E402
                     mse_loss, nll_loss)
