"""Searching and sorting: argsort, sort, topk, take_along_axis, nonzero,
searchsorted, unique_values / unique_counts / unique_inverse / unique_all.

`argsort` is the primitive (no gradient: it returns indices). `sort` and `topk`
are `take_along_axis` of the input with those indices, so their gradient is the
adjoint of that gather: a scatter-add of the output gradient back through the
permutation (`_scatter_along_axis`, whose own adjoint is the gather again, so
higher derivatives work).

Order: NaN sorts last, in both directions (descending negates float keys rather
than reversing, which keeps NaN last and ties in their original order). The
unique functions treat every NaN as distinct, as the Array API standard says.
"""
from __future__ import annotations

from collections import namedtuple

import numpy as np

from .. import dtypes as _dt
from ..errors import DTypeError, IndexingError, ShapeError
from ._dispatch import apply_op, broadcast_shapes, norm_axis, same_device, to_tensor
from .indexing import _check_bounds, getitem, take_slice
from .movement import broadcast_to, reshape

__all__ = ["argsort", "sort", "topk", "take_along_axis", "nonzero", "searchsorted",
           "unique_values", "unique_counts", "unique_inverse", "unique_all"]

TopKResult = namedtuple("TopKResult", ["values", "indices"])
UniqueAllResult = namedtuple("UniqueAllResult", ["values", "indices", "inverse_indices", "counts"])
UniqueCountsResult = namedtuple("UniqueCountsResult", ["values", "counts"])
UniqueInverseResult = namedtuple("UniqueInverseResult", ["values", "inverse_indices"])


def _keys(b, buf, dt):
    """Sort keys: the computed values, except that ml_dtypes floats (bf16, fp8 on
    the CPU; NumPy kind 'V') are widened to fp32, because NumPy's sort of those
    does not order NaN (it leaves them in place and splits runs of equal values)."""
    k = b.compute(buf, dt)
    return k.astype(np.float32) if k.dtype.kind == "V" else k


def _argsort_buf(b, buf, dt, ax, descending):
    xp = b.xp
    k = _keys(b, buf, dt)
    if not descending:
        return xp.argsort(k, axis=ax, kind="stable").astype(np.int64, copy=False)
    if dt.kind in "fc":
        # Negating keeps NaN last and ties in order (a reversal would do neither).
        return xp.argsort(-k, axis=ax, kind="stable").astype(np.int64, copy=False)
    # Integers cannot be negated safely (int8 -128, unsigned): sort the reversed
    # axis ascending, reverse the result and map indices back; ties keep order.
    r = xp.flip(xp.argsort(xp.flip(k, ax), axis=ax, kind="stable"), ax)
    return (k.shape[ax] - 1 - r).astype(np.int64, copy=False)


def argsort(x, axis=-1, *, descending=False, stable=True):
    """Indices that sort `x` along `axis`, as the Array API `argsort` (always
    stable; NaN last in both directions)."""
    x = to_tensor("argsort", x)
    if x.ndim == 0:
        from .creation import zeros
        return zeros((), dtype=_dt.int64, device=x.device)
    ax = norm_axis("argsort", axis, x.ndim, allow_none=False)
    b, dt = x.device.backend, x.dtype
    return apply_op("argsort", (x,), lambda buf: _argsort_buf(b, buf, dt, ax, descending),
                    _dt.int64, x.device, shape=x.shape)


def sort(x, axis=-1, *, descending=False, stable=True):
    """Sorted copy along `axis`, as the Array API `sort` (stable, NaN last). The
    gradient flows back through the sorting permutation.

    >>> import tessera as ts
    >>> ts.sort(ts.asarray([3.0, 1.0, 2.0])).tolist()
    [1.0, 2.0, 3.0]
    """
    x = to_tensor("sort", x)
    if x.ndim == 0:
        return x
    ax = norm_axis("sort", axis, x.ndim, allow_none=False)
    return take_along_axis(x, argsort(x, ax, descending=descending), axis=ax)


def topk(x, k, axis=-1, *, largest=True):
    """The `k` largest (or smallest) elements along `axis` and their indices,
    sorted, as `torch.topk`; ties keep their original order and NaN ranks after
    every number either way. Returns (values, indices)."""
    x = to_tensor("topk", x)
    if x.ndim == 0:
        raise ShapeError("[topk] needs at least one dimension, got a 0-d tensor")
    ax = norm_axis("topk", axis, x.ndim, allow_none=False)
    n = x.shape[ax]
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or not 0 <= k <= n:
        raise ShapeError(f"[topk] k={k!r} must be an integer in 0..{n} (axis {ax} of "
                         f"shape {x.shape})")
    idx = take_slice(argsort(x, ax, descending=largest), ax, 0, int(k))
    return TopKResult(take_along_axis(x, idx, axis=ax), idx)


def take_along_axis(x, indices, axis=-1):
    """Gather `x[..., indices[..., j, ...], ...]` along `axis`, as the Array API
    (2024.12) `take_along_axis` / `numpy.take_along_axis`: `indices` has x's
    number of dimensions and broadcasts with x on the other axes. The gradient
    is a scatter-add, so repeated indices accumulate."""
    x = to_tensor("take_along_axis", x)
    idx = to_tensor("take_along_axis", indices, device=x.device)
    same_device("take_along_axis", x, idx)
    if idx.dtype.kind not in "iu":
        raise IndexingError(f"[take_along_axis] indices must be integers, got {idx.dtype.name}")
    if x.ndim == 0 or x.ndim != idx.ndim:
        raise ShapeError(f"[take_along_axis] x (shape {x.shape}) and indices (shape "
                         f"{idx.shape}) must have the same number (>= 1) of dimensions")
    ax = norm_axis("take_along_axis", axis, x.ndim, allow_none=False)
    rest = broadcast_shapes("take_along_axis", x.shape[:ax] + x.shape[ax + 1:],
                            idx.shape[:ax] + idx.shape[ax + 1:])
    xs = rest[:ax] + (x.shape[ax],) + rest[ax:]
    x = broadcast_to(x, xs)
    idx = broadcast_to(idx, rest[:ax] + (idx.shape[ax],) + rest[ax:])
    _check_bounds("take_along_axis", idx.data, xs[ax], ax, xs)
    xp = x.device.backend.xp
    idd = idx.detach()
    return apply_op("take_along_axis", (x, idx),
                    lambda xb, ib: xp.take_along_axis(xb, ib, axis=ax), x.dtype, x.device,
                    lambda g: (_scatter_along_axis(g, idd, ax, xs), None), saved=(idd,),
                    shape=idx.shape)


def _scatter_along_axis(g, idx, ax, shape):
    """zeros(shape) with `g` added at `indices` along `ax` (repeats accumulate):
    the adjoint of `take_along_axis`, whose adjoint is that gather again."""
    b, dt = g.device.backend, g.dtype
    xp = b.xp

    def fwd(gb, ib):
        out = b.zeros(shape, dt)
        key = tuple(ib if d == ax else
                    xp.arange(n).reshape((1,) * d + (n,) + (1,) * (len(shape) - d - 1))
                    for d, n in enumerate(shape))
        b.scatter_add(out, key, gb)
        return out
    idd = idx.detach()
    return apply_op("scatter_along_axis", (g, idx), fwd, dt, g.device,
                    lambda gg: (take_along_axis(gg, idd, axis=ax), None), saved=(idd,),
                    shape=shape)


def nonzero(x):
    """Indices of the non-zero elements, one int64 tensor per axis, in row-major
    order, as the Array API `nonzero` (a 0-d input is an error)."""
    x = to_tensor("nonzero", x)
    if x.ndim == 0:
        raise ShapeError("[nonzero] is not defined for a 0-d tensor; use "
                         "nonzero(atleast_1d(x))")
    b, dt = x.device.backend, x.dtype
    xp = b.xp

    def fwd(buf):
        return xp.stack(xp.nonzero(b.compute(buf, dt))).astype(np.int64, copy=False)
    rows = apply_op("nonzero", (x,), fwd, _dt.int64, x.device)
    return tuple(getitem(rows, i) for i in range(x.ndim))


def searchsorted(x1, x2, *, side="left", sorter=None):
    """Insertion points of `x2` into the sorted 1-D `x1`, as the Array API
    `searchsorted`; `sorter` is an index tensor that sorts `x1`. Returns int64
    of x2's shape."""
    x1 = to_tensor("searchsorted", x1)
    dev = same_device("searchsorted", x1, x2, sorter)
    x2 = to_tensor("searchsorted", x2, device=dev)
    if x1.ndim != 1:
        raise ShapeError(f"[searchsorted] x1 must be 1-D, got shape {x1.shape}")
    if side not in ("left", "right"):
        raise ValueError(f"[searchsorted] side must be 'left' or 'right', got {side!r}")
    if sorter is not None:
        sorter = to_tensor("searchsorted", sorter, device=dev)
        if sorter.dtype.kind not in "iu":
            raise IndexingError(f"[searchsorted] sorter must be integers, got "
                                f"{sorter.dtype.name}")
        if sorter.shape != x1.shape:
            raise ShapeError(f"[searchsorted] sorter (shape {sorter.shape}) must have x1's "
                             f"shape {x1.shape}")
        _check_bounds("searchsorted", sorter.data, x1.shape[0], 0, x1.shape)
    dt = _dt.promote(x1.dtype, x2.dtype)
    if dt.kind == "c":
        raise DTypeError(f"[searchsorted] complex inputs have no order ({x1.dtype.name}, "
                         f"{x2.dtype.name})")
    b = x1.device.backend
    d1, d2 = x1.dtype, x2.dtype

    def fwd(b1, b2, *bs):
        a1 = _keys(b, b1 if d1 is dt else b.cast(b1, d1, dt), dt)
        a2 = _keys(b, b2 if d2 is dt else b.cast(b2, d2, dt), dt)
        r = b.xp.searchsorted(a1, a2, side=side, sorter=bs[0] if bs else None)
        return b.xp.asarray(r).astype(np.int64, copy=False)
    return apply_op("searchsorted", (x1, x2, sorter), fwd, _dt.int64, x1.device,
                    shape=x2.shape)


# ---- unique ----------------------------------------------------------------
def _unique_plan(x):
    """One pass over the flattened input: an int64 (2, n) tensor whose rows are
    the stable sorting permutation and a 0/1 flag marking the first element of
    each run of equal values in sorted order (NaN != NaN, so each NaN starts one)."""
    b, dt = x.device.backend, x.dtype
    xp = b.xp

    def fwd(buf):
        k = _keys(b, buf, dt).reshape(-1)
        perm = xp.argsort(k, kind="stable")
        s = k[perm]
        plan = xp.zeros((2, k.shape[0]), dtype=np.int64)
        plan[0] = perm
        if k.shape[0]:
            plan[1, 0] = 1
            plan[1, 1:] = s[1:] != s[:-1]
        return plan
    return apply_op("unique", (x,), fwd, _dt.int64, x.device)


def _unique(x, parts):
    x = to_tensor("unique", x)
    xp = x.device.backend.xp
    plan = _unique_plan(x)
    out = {}

    def firsts(p):
        return p[0][p[1].astype(bool)]
    if "values" in parts:
        out["values"] = apply_op("unique", (x, plan), lambda xb, p: xb.reshape(-1)[firsts(p)],
                                 x.dtype, x.device)
    if "indices" in parts:
        out["indices"] = apply_op("unique", (plan,), firsts, _dt.int64, x.device)
    if "inverse_indices" in parts:
        shape = x.shape

        def inverse(p):
            inv = xp.empty(p.shape[1], dtype=np.int64)
            inv[p[0]] = xp.cumsum(p[1]) - 1
            return inv.reshape(shape)
        out["inverse_indices"] = apply_op("unique", (plan,), inverse, _dt.int64, x.device)
    if "counts" in parts:
        def counts(p):
            starts = xp.flatnonzero(p[1])
            return xp.diff(xp.concatenate([starts, xp.asarray([p.shape[1]])])).astype(np.int64)
        out["counts"] = apply_op("unique", (plan,), counts, _dt.int64, x.device)
    return out


def unique_values(x):
    """The sorted distinct values of `x` (flattened), as the Array API
    `unique_values`; every NaN is distinct and they come last."""
    return _unique(x, ("values",))["values"]


def unique_counts(x):
    """(values, counts), as the Array API `unique_counts`."""
    return UniqueCountsResult(**_unique(x, ("values", "counts")))


def unique_inverse(x):
    """(values, inverse_indices) with `values[inverse_indices] == x` (inverse has
    x's shape), as the Array API `unique_inverse`."""
    return UniqueInverseResult(**_unique(x, ("values", "inverse_indices")))


def unique_all(x):
    """(values, indices, inverse_indices, counts), as the Array API `unique_all`;
    `indices` are the first occurrences in the flattened input.

    >>> import tessera as ts
    >>> ts.unique_all(ts.asarray([2, 1, 2])).counts.tolist()
    [1, 2]
    """
    return UniqueAllResult(**_unique(x, ("values", "indices", "inverse_indices", "counts")))
