"""Losses with PyTorch semantics (`torch.nn.functional`): cross_entropy (a backend
primitive over log_softmax with a hand-written adjoint), and the composites
nll_loss, mse_loss and binary_cross_entropy_with_logits.

Class-index targets are int tensors with the logits' shape minus the class axis;
probability targets are float tensors of the logits' shape. Targets and class
weights are *inputs* of the op, never closed over, so a captured graph replays
with new targets. Re-exported by `ops/nn.py`.
"""
from __future__ import annotations

import numpy as np

from .. import dtypes as _dt
from .._config import STATE
from ..errors import DTypeError, IndexingError, ShapeError
from ._dispatch import apply_op, norm_axis, prod, same_device, to_tensor
from .creation import arange
from .elementwise import where
from .movement import expand_dims, reshape
from .nn import _cast, _float, _softplus, _up, log_softmax, softmax
from .reduce import mean, sum

__all__ = ["cross_entropy", "nll_loss", "mse_loss", "binary_cross_entropy_with_logits"]


def _reduce(op, loss, reduction):
    if reduction == "mean":
        return mean(loss)
    if reduction == "sum":
        return sum(loss)
    if reduction == "none":
        return loss
    raise ValueError(f"[{op}] reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _class_axis(op, x, axis):
    if x.ndim == 0:
        raise ShapeError(f"[{op}] input must have a class axis; got a 0-d tensor")
    if axis is None:  # PyTorch: (C,), (N, C) or (N, C, d1, ...)
        return 1 if x.ndim >= 2 else 0
    return norm_axis(op, axis, x.ndim, allow_none=False)


def _targets(op, x, cax, target, weight, allow_probs):
    """Validated (target, weight, is_probability_target)."""
    t = to_tensor(op, target, device=x.device)
    C = x.shape[cax]
    rows = x.shape[:cax] + x.shape[cax + 1:]
    w = None if weight is None else to_tensor(op, weight, device=x.device)
    same_device(op, x, t, w)
    if w is not None and w.shape != (C,):
        raise ShapeError(f"[{op}] weight must have shape ({C},) (one per class), got {w.shape}")
    if t.dtype.kind == "f" and allow_probs:
        if t.shape != x.shape:
            raise ShapeError(
                f"[{op}] a float target holds class probabilities and must have the input's "
                f"shape {x.shape}, got {t.shape}; for class indices of shape {rows} pass an "
                "integer tensor")
        return t, w, True
    if t.dtype.kind not in "iu":
        raise DTypeError(f"[{op}] target must be an integer tensor of class indices"
                         + (" or a float tensor of probabilities" if allow_probs else "")
                         + f", got {t.dtype.name} (shape {t.shape})")
    if t.shape != rows:
        raise ShapeError(f"[{op}] class-index target must have the input's shape without the "
                         f"class axis {cax}: expected {rows}, got {t.shape} (input {x.shape})")
    return t, w, False


def _check_range(op, xp, ti, C, ignore_index, xshape):
    """Raise on a class index outside [0, C) that is not ignore_index (this reads the
    targets on the host: one synchronisation, as PyTorch's device-side assert)."""
    if ti.size and 0 <= ti.min() and ti.max() < C:
        return  # the common case, in two reductions
    bad = (ti != ignore_index) & ((ti < 0) | (ti >= C))
    if bool(bad.any()):
        v = int(ti[bad].reshape(-1)[0])
        raise IndexingError(f"[{op}] target {v} is out of range for {C} classes (input shape "
                            f"{xshape}, target shape {tuple(ti.shape)}); expected 0..{C - 1} "
                            f"or ignore_index={ignore_index}")


def _class_dist(t, C, cax, ndim, w, eps, ignore_index, dt):
    """In tessera ops: q with loss_i = -sum_c q_ic log p_ic for class-index targets
    (label smoothing and class weights included, 0 for ignored rows), and the
    'mean' denominator: the summed weight of the target classes of kept rows."""
    cshape = (C,) + (1,) * (ndim - cax - 1)
    te = expand_dims(t, cax)
    valid = te != ignore_index
    hit = (te == reshape(arange(C, device=t.device), cshape)) & valid
    # where() of two Python floats is fp32: build 0/1 masks (exact) and scale in dt.
    q = _cast(where(hit, 1.0, 0.0), dt)
    if eps:
        q = q * (1.0 - eps) + _cast(where(valid, 1.0, 0.0), dt) * (eps / C)
    if w is None:
        return q, sum(_cast(where(hit, 1.0, 0.0), dt))
    wb = reshape(_cast(w, dt), cshape)
    return q * wb, sum(where(hit, wb, 0.0))


def _prob_dist(t, C, cax, ndim, w, eps, dt):
    q = _cast(t, dt)
    if eps:
        q = q * (1.0 - eps) + eps / C
    if w is not None:
        q = q * reshape(_cast(w, dt), (C,) + (1,) * (ndim - cax - 1))
    return q


def cross_entropy(input, target, weight=None, *, ignore_index=-100, reduction="mean",
                  label_smoothing=0.0, axis=None):
    """Softmax cross-entropy of logits, as `torch.nn.functional.cross_entropy`.

    `input`: logits (C,), (N, C) or (N, C, d1, ...); the class axis is 1 (0 for 1-D
    input) unless `axis` says otherwise (e.g. axis=-1 for (B, T, C) logits).
    `target`: class indices (int, the input's shape without the class axis; those
    equal to `ignore_index` are skipped) or class probabilities (float, the input's
    shape). `weight`: per-class weights (C,) (no gradient flows into them). 'mean'
    divides by the summed weight of the kept targets (index targets) or by the
    number of rows (probability targets), as PyTorch does.

    >>> import tessera as ts
    >>> round(float(ts.cross_entropy(ts.zeros((2, 4)), ts.asarray([0, 3]))), 4)
    1.3863
    """
    op = "cross_entropy"
    x = _float(op, input)
    if STATE.autocast is not None:  # tessera.precision.autocast policy
        (x,) = STATE.autocast.cast_inputs(op, (x,))
    cax = _class_axis(op, x, axis)
    t, w, probs = _targets(op, x, cax, target, weight, True)
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"[{op}] reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    eps = float(label_smoothing)
    if not 0.0 <= eps <= 1.0:
        raise ValueError(f"[{op}] label_smoothing must be in [0, 1], got {label_smoothing}")
    C, ndim, dt, b = x.shape[cax], x.ndim, x.dtype, x.device.backend
    xp, acc = b.xp, (_dt.fp64 if x.dtype is _dt.fp64 else _dt.fp32)
    anp = np.float64 if acc is _dt.fp64 else np.float32
    tdt, wdt, has_w, xshape = t.dtype, (w.dtype if w is not None else None), w is not None, x.shape

    def fwd(xb, tb, *wb):
        xa = xb if dt is acc else b.cast(xb, dt, acc)
        lsm = xp.moveaxis(b.compute(b.softmax(xa, acc, cax, True), acc), cax, -1)
        wv = b.compute(wb[0], wdt).astype(anp) if has_w else None
        if probs:
            q = xp.moveaxis(b.compute(tb, tdt).astype(anp), cax, -1)
            if eps:
                q = q * anp(1 - eps) + anp(eps / C)
            loss = -((q * wv if has_w else q) * lsm).sum(-1)
            denom = anp(loss.size)
        else:
            ti = tb.astype(np.int64)
            _check_range(op, xp, ti, C, ignore_index, xshape)
            valid = ti != ignore_index
            ts_ = xp.where(valid, ti, 0)
            loss = -xp.take_along_axis(lsm, ts_[..., None], axis=-1)[..., 0]
            wt = wv[ts_] if has_w else xp.ones_like(loss)
            loss = loss * wt
            if eps:
                smooth = -(lsm * wv if has_w else lsm).sum(-1)
                loss = loss * anp(1 - eps) + smooth * anp(eps / C)
            loss = xp.where(valid, loss, anp(0))
            denom = xp.where(valid, wt, anp(0)).sum()
        if reduction == "sum":
            loss = loss.sum()
        elif reduction == "mean":
            with np.errstate(invalid="ignore", divide="ignore"):  # all ignored: NaN, as torch
                loss = loss.sum() / denom
        return b.store(xp.asarray(loss, dtype=anp), dt)

    rows_fast = (not probs and not has_w and not eps and reduction != "none" and ndim == 2
                 and cax == 1 and dt is acc and x.device.type == "cpu")
    if rows_fast:
        stash = []  # (logits buffer, log_softmax, target validity, targets) of the last forward
        fwd = _ce_rows_fwd(op, C, ignore_index, reduction, b, anp, xshape, stash)
    xd, td, wd = x.detach(), t.detach(), (w.detach() if has_w else None)
    t_grad = probs and t.requires_grad

    def vjp(g):
        g, xf = _up(g), _up(xd)
        cd = xf.dtype
        if probs:
            q = _prob_dist(td, C, cax, ndim, wd, eps, cd)
            denom = prod(x.shape) // max(C, 1)
        else:
            q, denom = _class_dist(td, C, cax, ndim, wd, eps, ignore_index, cd)
        if reduction == "mean" and not probs:
            # every row ignored: the loss is NaN (0 / 0) but the gradient 0, as torch's
            # (the bracket below is 0 on ignored rows; g / 0 would make it NaN)
            denom = where(denom == 0, 1.0, denom)
        gi = expand_dims(g, cax) if reduction == "none" else g / denom if reduction == "mean" else g
        dx = gi * (softmax(xf, axis=cax) * sum(q, axis=cax, keepdims=True) - q)
        dt_ = None
        if t_grad:  # d/dt of -sum(w t' lsm), t' = t (1 - eps) + eps / C
            dt_ = -gi * log_softmax(xf, axis=cax) * (1.0 - eps)
            if has_w:
                dt_ = dt_ * reshape(_cast(wd, cd), (C,) + (1,) * (ndim - cax - 1))
        return dx, dt_, None
    if rows_fast:
        vjp = _ce_rows_adjoint(vjp, xd, td, ignore_index, reduction, b, dt, stash)
    return apply_op(op, (x, t, w), fwd, dt, x.device, vjp,
                    saved=tuple(s for s in (xd, td, wd) if s is not None),
                    shape=(x.shape[:cax] + x.shape[cax + 1:]) if reduction == "none" else ())


# -- the common case on the CPU: (N, C) fp32/fp64 logits, class indices, no class
# weights or smoothing, 'mean' or 'sum'. The forward gives the general path's
# numbers (same NumPy operations on the same values, in the same order) with a
# dozen fewer array passes; the adjoint works on the buffers and reuses the
# forward's log_softmax, as torch's does. Measured on a (64, 10) batch: forward
# 50 -> 36 us, adjoint 50 -> ~20 us.
def _ce_rows_fwd(op, C, ignore_index, reduction, b, anp, xshape, stash):
    def ce_rows_fwd(xb, tb):
        lsm = b.softmax(xb, _ACC[anp], 1, True)
        ti = tb.astype(np.int64, copy=False)
        _check_range(op, np, ti, C, ignore_index, xshape)
        valid = ti != ignore_index
        stash[:] = (xb, lsm, valid, ti)
        picked = lsm[np.arange(ti.shape[0]), np.where(valid, ti, 0)]
        loss = np.where(valid, -picked, anp(0)).sum()
        if reduction == "mean":
            kept = np.count_nonzero(valid)
            loss = loss / anp(kept) if kept else anp(np.nan)  # all ignored: NaN, as torch
        return np.asarray(loss, dtype=anp)
    return ce_rows_fwd


_ACC = {np.float32: _dt.fp32, np.float64: _dt.fp64}


def _ce_rows_adjoint(general, xd, td, ignore_index, reduction, b, dt, stash):
    """The adjoint of `ce_rows_fwd`: g (softmax(x) - onehot(t)) / denom, on the
    buffers. The general adjoint (tessera ops) when a graph of the backward is being
    built (create_graph: higher derivatives), when ops are being recorded (graph
    capture, profiler, check_numerics must see them), or g is not a realized CPU tensor."""
    from ..tensor import Tensor, _new

    def vjp(g):
        gb = g._buf
        if STATE.grad_enabled or STATE.event_sinks or gb is None or type(g) is not Tensor \
                or g.device is not xd.device:
            return general(g)
        if stash and stash[0] is xd._buf:  # this op's forward (not a replay's) ran last
            _, lsm, valid, ti = stash
            p = np.exp(lsm)
        else:
            ti = td.data.astype(np.int64, copy=False)
            valid = ti != ignore_index
            p = b.softmax(xd.data, dt, 1, False)
        stash.clear()
        p[np.arange(ti.shape[0]), np.where(valid, ti, 0)] -= valid.astype(p.dtype)
        gi = gb
        if reduction == "mean":
            with np.errstate(invalid="ignore", divide="ignore"):
                gi = gb / gb.dtype.type(np.count_nonzero(valid))
        with np.errstate(invalid="ignore"):
            np.multiply(p, gi, out=p)
        p[~valid] = 0  # after the scaling: all rows ignored gives 0, not NaN (as torch)
        return _new(p, xd.shape, dt, xd.device), None, None
    return vjp


def nll_loss(input, target, weight=None, *, ignore_index=-100, reduction="mean", axis=None):
    """Negative log-likelihood of log-probabilities `input` at class-index `target`,
    as `torch.nn.functional.nll_loss` (shapes and 'mean' as in `cross_entropy`)."""
    op = "nll_loss"
    x = _float(op, input)
    cax = _class_axis(op, x, axis)
    t, w, _ = _targets(op, x, cax, target, weight, False)
    _check_range(op, t.device.backend.xp, t.data, x.shape[cax], ignore_index, x.shape)
    q, denom = _class_dist(t, x.shape[cax], cax, x.ndim, w, 0.0, ignore_index, x.dtype)
    loss = -sum(q * x, axis=cax)
    if reduction == "mean":
        return sum(loss) / denom
    return _reduce(op, loss, reduction)


def mse_loss(input, target, reduction="mean"):
    """Mean squared error, as `torch.nn.functional.mse_loss` (same shapes required)."""
    x, t = _float("mse_loss", input), to_tensor("mse_loss", target)
    if x.shape != t.shape:
        raise ShapeError(f"[mse_loss] input {x.shape} and target {t.shape} must have the same "
                         "shape")
    d = x - t
    return _reduce("mse_loss", d * d, reduction)


def binary_cross_entropy_with_logits(input, target, weight=None, reduction="mean",
                                     pos_weight=None):
    """Sigmoid + binary cross-entropy in one stable expression, as
    `torch.nn.functional.binary_cross_entropy_with_logits`:
    loss = (1 - t) x + (1 + (pos_weight - 1) t) log(1 + exp(-x)), times `weight`."""
    op = "binary_cross_entropy_with_logits"
    x = _float(op, input)
    t = to_tensor(op, target, device=x.device)
    if t.shape != x.shape:
        raise ShapeError(f"[{op}] target shape {t.shape} must equal the input's shape {x.shape}")
    sp = _softplus(-x)  # log(1 + exp(-x)) = -log sigmoid(x), without overflow
    if pos_weight is None:
        loss = (1 - t) * x + sp
    else:
        loss = (1 - t) * x + (1 + (pos_weight - 1) * t) * sp
    if weight is not None:
        loss = loss * weight
    return _reduce(op, loss, reduction)
