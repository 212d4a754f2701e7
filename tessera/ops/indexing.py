"""Indexing: `x[key]` and `x[key] = v` with ints, slices, ellipsis, None,
integer tensors and boolean masks, as NumPy defines them, plus the out-of-place
`index_put` / `index_add` that their adjoints are written in.

Basic keys give views (sharing storage and the version counter). The adjoint of
a gather is a scatter-add, so repeated indices accumulate their gradients.
"""
from __future__ import annotations

import operator

import numpy as np

from .._config import STATE
from ..errors import DeviceError, GradError, IndexingError
from ..autograd.engine import record
from ..device import CPU as _CPU
from ..tensor import Tensor, _new
from ._dispatch import apply_op, to_tensor

_BASIC = (int, slice, type(None), type(Ellipsis))


def _norm_key(op, x, key):
    """Key -> tuple of backend-native index objects, with checks that name the op."""
    if not isinstance(key, tuple):
        key = (key,)
    out, advanced, tensors = [], False, []
    dim = 0
    n_index_dims = sum(1 if not (k is None or k is Ellipsis) else 0 for k in key
                       if not (isinstance(k, Tensor) and k.dtype.kind == "b"))
    n_index_dims += sum(k.ndim for k in key if isinstance(k, Tensor) and k.dtype.kind == "b")
    if sum(1 for k in key if k is Ellipsis) > 1:
        raise IndexingError(f"[{op}] an index can only have a single ellipsis")
    if n_index_dims > x.ndim:
        raise IndexingError(f"[{op}] too many indices: {n_index_dims} for a tensor of "
                            f"{x.ndim} dimension(s) (shape {x.shape})")
    for k in key:
        if k is Ellipsis:
            out.append(k)
            dim += x.ndim - n_index_dims
            continue
        if k is None:
            out.append(k)
            continue
        if isinstance(k, slice):
            if k.step == 0:
                raise IndexingError(f"[{op}] slice step cannot be zero ({k!r} on axis {dim} of shape {x.shape})")
            out.append(k)
            dim += 1
            continue
        if isinstance(k, Tensor):
            if k.device is not x.device:
                raise DeviceError(f"[{op}] index tensor on {k.device} for a tensor on {x.device}")
            if k.dtype.kind == "b":
                if k.shape != x.shape[dim:dim + k.ndim]:
                    raise IndexingError(f"[{op}] boolean mask of shape {k.shape} does not match "
                                        f"the indexed dimensions {x.shape[dim:dim + k.ndim]} of "
                                        f"shape {x.shape}")
                out.append(_Slot(len(tensors)))
                tensors.append(k)
                dim += k.ndim
            elif k.dtype.kind in "iu":
                _check_bounds(op, k.data, x.shape[dim], dim, x.shape)
                out.append(_Slot(len(tensors)))
                tensors.append(k)
                dim += 1
            else:
                raise IndexingError(f"[{op}] index tensors must be integer or bool, got {k.dtype.name}")
            advanced = True
            continue
        if isinstance(k, (list, np.ndarray)):
            arr = np.asarray(k)
            if arr.dtype.kind not in "biu":
                raise IndexingError(f"[{op}] index arrays must be integer or bool, got {arr.dtype}")
            t = to_tensor(op, arr, device=x.device) if x.device.type == "cpu" else \
                Tensor(arr, device=x.device)
            return _norm_key(op, x, tuple(key[:len(out)]) + (t,) + tuple(key[len(out) + 1:]))
        try:
            i = operator.index(k)
        except TypeError:
            raise IndexingError(f"[{op}] unsupported index {k!r} of type {type(k).__name__}; "
                                "accepted: int, slice, None, ..., integer or bool tensors") from None
        size = x.shape[dim]
        if not -size <= i < size:
            raise IndexingError(f"[{op}] index {i} is out of range for axis {dim} with size "
                                f"{size} (shape {x.shape})")
        out.append(i)
        dim += 1
    return tuple(out), tensors


class _Slot:
    """Where an index tensor's buffer goes in a key (filled at each run, so that
    a replayed graph reads the new indices)."""
    __slots__ = ("i",)

    def __init__(self, i):
        self.i = i


def _fill(key, idx_bufs):
    if not idx_bufs:
        return key
    return tuple(idx_bufs[k.i] if type(k) is _Slot else k for k in key)


def _check_bounds(op, idx, size, dim, shape):
    if idx.size == 0:
        return
    lo, hi = int(idx.min()), int(idx.max())
    if lo < -size or hi >= size:
        bad = hi if hi >= size else lo
        raise IndexingError(f"[{op}] index {bad} is out of range for axis {dim} with size "
                            f"{size} (shape {shape})")


def getitem(x, key):
    """`x[key]`, as NumPy indexing: basic keys (ints, slices, None, ...) give a
    view sharing x's storage and version counter; integer/bool tensors gather.

    >>> import tessera as ts
    >>> float(ts.asarray([1.0, 2.0, 3.0])[-1])
    3.0
    """
    if type(x) is Tensor and x.device is _CPU and not STATE.event_sinks:
        tk = type(key)
        if tk is int or tk is slice or tk is tuple:
            out = _basic_cpu(x, key, tk)
            if out is not None:
                return out
    x = to_tensor("getitem", x)
    k, idx = _norm_key("getitem", x, key)
    if not idx and Ellipsis not in k:
        # NumPy gives a scalar copy for a full integer key; with a trailing
        # ellipsis it gives a 0-d view, which is what view_of=x promises
        k = k + (Ellipsis,)
    xp = x.device.backend.xp

    def fwd(b, *ib):
        r = b[_fill(k, ib)]
        return r if type(r) is not np.generic and hasattr(r, "shape") and not \
            isinstance(r, np.generic) else xp.asarray(r)
    shape = x.shape

    def vjp(g):
        return (index_add(zeros_of(shape, g), key, g),) + (None,) * len(idx)
    return apply_op("getitem", (x, *idx), fwd, x.dtype, x.device, vjp,
                    view_of=None if idx else x)


def _basic_cpu(x, key, tk):
    """The fast path of `getitem` for a realized CPU tensor and an int, a slice or
    a tuple of ints and slices (no more than x.ndim of them): the same view and
    tape node as the general path, without building a key. None: not handled."""
    buf = x._buf
    shape = x.shape
    if buf is None:
        return None
    if tk is int:
        if not shape or not -shape[0] <= key < shape[0]:
            return None  # the general path raises the IndexingError
        k = (key, Ellipsis)
    elif tk is slice:
        if not shape or key.step == 0:
            return None  # the general path raises the IndexingError
        k = (key, Ellipsis)
    else:
        if len(key) > len(shape):
            return None
        for d, e in enumerate(key):
            te = type(e)
            if te is int:
                if not -shape[d] <= e < shape[d]:
                    return None
            elif te is not slice or e.step == 0:
                return None
        k = key + (Ellipsis,)
    out = _new(buf[k], None, x.dtype, _CPU)
    out.shape = out._buf.shape
    out._name = "getitem"
    out._version = x._version  # a view: in-place writes to either are seen by both
    if x.requires_grad and STATE.grad_enabled and x.dtype.is_differentiable:
        def vjp(g):
            return (index_add(zeros_of(shape, g), key, g),)
        record("getitem", (x,), out, vjp, ())
    return out


def zeros_of(shape, like):
    from .creation import zeros
    return zeros(shape, dtype=like.dtype, device=like.device)


def index_add(x, key, v):
    """Out of place: a copy of `x` with `v` added at `key`; repeated indices
    accumulate (the adjoint of gathering)."""
    return _index_update("index_add", x, key, v, accumulate=True)


def index_put(x, key, v):
    """Out of place: a copy of `x` with `x[key] = v` (the functional setitem)."""
    return _index_update("index_put", x, key, v, accumulate=False)


def _index_update(op, x, key, v, accumulate):
    x = to_tensor(op, x)
    if not isinstance(v, (bool, int, float, complex)):
        v = to_tensor(op, v, device=x.device)
    k, idx = _norm_key(op, x, key)
    b = x.device.backend
    vt = isinstance(v, Tensor)
    if vt and v.device is not x.device:
        raise DeviceError(f"[{op}] value on {v.device} for a tensor on {x.device}")
    xdt, vdt = x.dtype, (v.dtype if vt else None)

    def fwd(xb, *rest):
        out = b.copy(xb)
        vv = rest[0] if vt else v
        if vt and vdt is not xdt:
            vv = b.cast(vv, vdt, xdt)
        kk = _fill(k, rest[1:] if vt else rest)
        if not accumulate:
            out[kk] = vv
        elif idx:
            b.scatter_add(out, kk, vv)  # repeated indices accumulate
        else:
            out[kk] += vv
        return out

    def vjp(g):
        gx = g if accumulate else index_put(g, key, 0.0)
        return (gx, getitem(g, key) if vt else None) + (None,) * len(idx)
    return apply_op(op, (x, v if vt else None, *idx), fwd, x.dtype, x.device, vjp)


def setitem(x, key, value):
    """`x[key] = value`, in place, as NumPy. On a tensor that requires grad the
    tape records it (a leaf that requires grad cannot be written in place)."""
    from .inplace import check_inplace, bump
    check_inplace("setitem", x)
    k0, idx = _norm_key("setitem", x, key)
    k = _fill(k0, [t.data for t in idx])
    vt = isinstance(value, Tensor)
    if not vt and not isinstance(value, (bool, int, float, complex)):
        value = to_tensor("setitem", value, device=x.device)
        vt = True
    b = x.device.backend
    if vt:
        if value.device is not x.device:
            raise DeviceError(f"[setitem] value on {value.device} for a tensor on {x.device}")
        vv = value.data if value.dtype is x.dtype else b.cast(value.data, value.dtype, x.dtype)
    else:
        vv = value
    buf = x.data
    try:
        buf[k] = vv
    except ValueError as e:
        from ..errors import ShapeError
        raise ShapeError(f"[setitem] cannot assign a value of shape "
                         f"{getattr(value, 'shape', ())} to x{list(key) if isinstance(key, tuple) else [key]} "
                         f"of a tensor with shape {x.shape}: {e}") from None
    bump(x)
    if STATE.grad_enabled and (x.requires_grad or (vt and value.requires_grad)):
        from ..autograd.engine import record
        old = _autograd_shell(x)

        def vjp(g):
            return index_put(g, key, 0.0), (getitem(g, key) if vt else None)
        record("setitem", (old, value if vt else None), x, vjp)
    if STATE.event_sinks:
        # (name, tensor, write, sources): graph replay re-applies the write as
        # write(x_buffer, *index_buffers[, value_buffer]) with new indices
        n_idx, vdt, xdt = len(idx), (value.dtype if vt else None), x.dtype

        def write(xb, *bufs):
            v = (bufs[n_idx] if vdt is xdt else b.cast(bufs[n_idx], vdt, xdt)) if vt else value
            xb[_fill(k0, bufs[:n_idx])] = v
        srcs = tuple(idx) + ((value,) if vt else ())
        for s in STATE.event_sinks:
            s("inplace", ("setitem", x, write, srcs))


def _autograd_shell(x):
    """A stand-in carrying x's current place on the tape (before it is rebased)."""
    from ..tensor import _new
    t = _new(None, x.shape, x.dtype, x.device)
    t.requires_grad = x.requires_grad
    t.grad_fn = x.grad_fn
    t._out_idx = x._out_idx
    if x.grad_fn is None and x.requires_grad:
        from ..autograd.engine import _edge
        _edge(x)
        t._accum = x._accum
    return t


def take_slice(x, axis, start, stop, step=None):
    """x[..., start:stop:step, ...] along one axis."""
    key = [slice(None)] * x.ndim
    key[axis] = slice(start, stop, step)
    return getitem(x, tuple(key))


def take(x, indices, axis=None):
    """Gather along an axis, as the Array API `take`."""
    from .movement import reshape
    x = to_tensor("take", x)
    if axis is None:
        if x.ndim != 1:
            x = reshape(x, (-1,))
        axis = 0
    key = [slice(None)] * x.ndim
    key[axis % x.ndim] = to_tensor("take", indices, device=x.device)
    return getitem(x, tuple(key))
