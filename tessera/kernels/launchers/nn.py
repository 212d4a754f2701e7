"""Launchers for softmax.cu, layernorm.cu and cross_entropy.cu (rows of a 2-D array).

All take contiguous (rows, cols) CuPy arrays; the op layer reshapes the leading
axes into rows. Saved statistics (mean, rstd, logsumexp) are in the accumulation
dtype (fp32 for fp16/bf16/fp32 inputs, fp64 for fp64).
"""
from __future__ import annotations

from . import _runtime as rt
from .geometry import layer_norm_params_geometry, rows_geometry
from .registry import CTYPE, FLOATS, acc_dtype, reduce_name
from .geometry import cols_geometry


def _rows(op, x, dtype):
    dt = rt.dtype_name(x, dtype)
    if dt not in FLOATS:
        raise TypeError(f"[{op}] needs a floating dtype ({', '.join(FLOATS)}), got {dt}")
    if x.ndim != 2:
        raise ValueError(f"[{op}] expects a 2-D (rows, cols) array, got shape {x.shape}")
    rt.require_contiguous(op, x)
    return dt, x.shape[0], x.shape[1]


def _geom(rows, cols):
    return rows_geometry(rows, cols, rt.device_facts()["warp_size"])


def softmax(x, log: bool = False, *, dtype: str | None = None):
    """softmax (or log_softmax) over the last axis."""
    dt, rows, cols = _rows("softmax", x, dtype)
    y = rt.empty(x.shape, dt)
    if x.size:
        rt.launch("softmax.cu", f"softmax_fwd<{CTYPE[dt]},{'true' if log else 'false'}>", *_geom(rows, cols),
                  (x, y, rt.i64(rows), rt.i64(cols)))
    return y


def softmax_backward(y, dy, log: bool = False, *, dtype: str | None = None):
    """dx from the forward output y and the incoming gradient dy."""
    dt, rows, cols = _rows("softmax_backward", y, dtype)
    if dy.shape != y.shape or dy.dtype != y.dtype:
        raise ValueError(f"[softmax_backward] dy {dy.shape} {dy.dtype} must match y {y.shape} {y.dtype}")
    rt.require_contiguous("softmax_backward", dy)
    dx = rt.empty(y.shape, dt)
    if y.size:
        rt.launch("softmax.cu", f"softmax_bwd<{CTYPE[dt]},{'true' if log else 'false'}>", *_geom(rows, cols),
                  (y, dy, dx, rt.i64(rows), rt.i64(cols)))
    return dx


def layer_norm_forward(x, gamma=None, beta=None, eps: float = 1e-5, *, dtype: str | None = None):
    """(y, mean, rstd) normalising over the last axis; gamma/beta are (cols,) or None."""
    dt, rows, cols = _rows("layer_norm", x, dtype)
    for name, p in (("gamma", gamma), ("beta", beta)):
        if p is not None and (p.shape != (cols,) or p.dtype != x.dtype):
            raise ValueError(f"[layer_norm] {name} must be ({cols},) {x.dtype}, got {p.shape} {p.dtype}")
    y = rt.empty(x.shape, dt)
    mean, rstd = rt.empty((rows,), acc_dtype(dt)), rt.empty((rows,), acc_dtype(dt))
    if rows:
        rt.launch("layernorm.cu", f"layer_norm_fwd<{CTYPE[dt]}>", *_geom(rows, cols),
                  (x, rt.NULL if gamma is None else gamma, rt.NULL if beta is None else beta,
                   y, mean, rstd, rt.i64(rows), rt.i64(cols), float(eps)))
    return y, mean, rstd


def layer_norm_backward(dy, x, mean, rstd, gamma=None, *, need_params: bool = True,
                        dtype: str | None = None):
    """(dx, dgamma, dbeta); dgamma/dbeta are None unless need_params."""
    dt, rows, cols = _rows("layer_norm_backward", x, dtype)
    rt.require_contiguous("layer_norm_backward", dy)
    dx = rt.empty(x.shape, dt)
    if x.size:
        rt.launch("layernorm.cu", f"layer_norm_bwd_dx<{CTYPE[dt]}>", *_geom(rows, cols),
                  (x, dy, rt.NULL if gamma is None else gamma, mean, rstd, dx, rt.i64(rows), rt.i64(cols)))
    if not need_params:
        return dx, None, None
    c = rt.cp()
    if rows == 0 or cols == 0:
        z = c.zeros((cols,), dtype=x.dtype)
        return dx, z, z.copy()
    chunks, rpc, grid, block = layer_norm_params_geometry(rows, cols)
    ad = acc_dtype(dt)
    pg, pb = rt.empty((chunks, cols), ad), rt.empty((chunks, cols), ad)
    rt.launch("layernorm.cu", f"layer_norm_bwd_params<{CTYPE[dt]}>", grid, block,
              (x, dy, mean, rstd, pg, pb, rt.i64(rows), rt.i64(cols), rt.i64(rpc)))
    name = reduce_name("cols", "sum", ad, dt)  # partials (accumulation dtype) -> parameter dtype
    outs = []
    for part in (pg, pb):
        res = rt.empty((cols,), dt)
        rt.launch("reduce.cu", name, *cols_geometry(1, chunks, cols),
                  (part, res, rt.i64(1), rt.i64(chunks), rt.i64(cols), 0.0))
        outs.append(res)
    return dx, outs[0], outs[1]


def cross_entropy_forward(logits, targets, ignore_index: int = -100, *, dtype: str | None = None):
    """(loss per row, logsumexp per row) for logits (N, C) and int64 targets (N,)."""
    dt, rows, C = _rows("cross_entropy", logits, dtype)
    if targets.shape != (rows,) or str(targets.dtype) != "int64":
        raise ValueError(f"[cross_entropy] targets must be ({rows},) int64, got {targets.shape} {targets.dtype}")
    loss, lse = rt.empty((rows,), acc_dtype(dt)), rt.empty((rows,), acc_dtype(dt))
    if rows:
        rt.launch("cross_entropy.cu", f"ce_fwd<{CTYPE[dt]}>", *_geom(rows, C),
                  (logits, targets, loss, lse, rt.i64(rows), rt.i64(C), rt.i64(ignore_index)))
    return loss, lse


def cross_entropy_backward(logits, targets, lse, dloss, ignore_index: int = -100, *,
                           dtype: str | None = None):
    """d logits given the per-row upstream gradient dloss (accumulation dtype)."""
    dt, rows, C = _rows("cross_entropy_backward", logits, dtype)
    dx = rt.empty(logits.shape, dt)
    if logits.size:
        rt.launch("cross_entropy.cu", f"ce_bwd<{CTYPE[dt]}>", *_geom(rows, C),
                  (logits, targets, lse, dloss, dx, rt.i64(rows), rt.i64(C), rt.i64(ignore_index)))
    return dx
