"""Joining, splitting, repeating and padding: concat, stack, unstack, split,
tile, repeat, flatten, ravel, atleast_1d/2d/3d, pad.

Two primitives live here, each with a slicing adjoint: `concat` (its gradient
is one slice of the output gradient per input) and constant-mode `pad` (its
gradient is the interior slice). Everything else is composed of movement ops,
`getitem` and `concat`, so it gets its gradient (and higher ones) for free:
`tile` and integer `repeat` are a broadcast of a reshaped view, array `repeat`
and the reflect/edge/wrap pads are gathers along one axis.
"""
from __future__ import annotations

import operator

import numpy as np

from .. import dtypes as _dt
from ..errors import ShapeError
from ..tensor import Tensor
from ._dispatch import apply_op, norm_axis, prod, same_device, to_tensor
from .indexing import getitem, take, take_slice
from .movement import broadcast_to, expand_dims, reshape

__all__ = ["concat", "stack", "unstack", "split", "tile", "repeat", "flatten", "ravel",
           "atleast_1d", "atleast_2d", "atleast_3d", "pad"]


def _sequence(op, arrays):
    """A non-empty list/tuple of tensors on one device (host data is put on it)."""
    if not isinstance(arrays, (list, tuple)):
        raise ShapeError(f"[{op}] expects a list or tuple of tensors, got "
                         f"{type(arrays).__name__}")
    if not arrays:
        raise ShapeError(f"[{op}] needs at least one tensor, got an empty sequence")
    dev = same_device(op, *arrays)
    return [to_tensor(op, a, device=dev) for a in arrays], dev


def _fmt(shapes):
    return ", ".join(f"#{i} {s}" for i, s in enumerate(shapes))


def concat(arrays, axis=0):
    """Join tensors along an existing axis, as the Array API `concat`
    (`numpy.concatenate`); `axis=None` flattens them first. Dtypes promote as
    `result_type`.

    >>> import tessera as ts
    >>> ts.concat([ts.ones((2, 3)), ts.zeros((1, 3))]).shape
    (3, 3)
    """
    ts_, dev = _sequence("concat", arrays)
    if axis is None:
        ts_ = [reshape(t, (-1,)) for t in ts_]
        axis = 0
    shapes = [t.shape for t in ts_]
    nd = ts_[0].ndim
    if nd == 0:
        raise ShapeError(f"[concat] zero-dimensional tensors cannot be concatenated "
                         f"(shapes {_fmt(shapes)}); use stack")
    if any(t.ndim != nd for t in ts_):
        raise ShapeError(f"[concat] along axis {axis}: tensors must have the same number "
                         f"of dimensions, got shapes {_fmt(shapes)}")
    ax = norm_axis("concat", axis, nd, allow_none=False)
    rest = [s[:ax] + s[ax + 1:] for s in shapes]
    if any(r != rest[0] for r in rest):
        raise ShapeError(f"[concat] along axis {axis}: every dimension but axis {ax} must "
                         f"match, got shapes {_fmt(shapes)}")
    dt = _dt.result_type(*(t.dtype for t in ts_))
    dts = tuple(t.dtype for t in ts_)
    b = dev.backend
    xp = b.xp

    def fwd(*bufs):
        return xp.concatenate([u if d is dt else b.cast(u, d, dt) for u, d in zip(bufs, dts)],
                              axis=ax)
    sizes = [s[ax] for s in shapes]
    starts = np.concatenate([[0], np.cumsum(sizes)]).tolist()

    def vjp(g):
        return tuple(take_slice(g, ax, starts[i], starts[i + 1]) for i in range(len(sizes)))
    shape = shapes[0][:ax] + (starts[-1],) + shapes[0][ax + 1:]
    return apply_op("concat", tuple(ts_), fwd, dt, dev, vjp, shape=shape)


def stack(arrays, axis=0):
    """Join tensors of one shape along a new axis, as the Array API `stack`."""
    ts_, _ = _sequence("stack", arrays)
    shapes = [t.shape for t in ts_]
    if any(s != shapes[0] for s in shapes):
        raise ShapeError(f"[stack] along axis {axis}: all tensors must have the same shape, "
                         f"got shapes {_fmt(shapes)}")
    ax = norm_axis("stack", axis, ts_[0].ndim + 1, allow_none=False)
    return concat([expand_dims(t, ax) for t in ts_], axis=ax)


def unstack(x, axis=0):
    """Split into views along `axis`, removing it, as the Array API `unstack`
    (a tuple)."""
    x = to_tensor("unstack", x)
    if x.ndim == 0:
        raise ShapeError("[unstack] cannot unstack a zero-dimensional tensor")
    ax = norm_axis("unstack", axis, x.ndim, allow_none=False)
    pre = (slice(None),) * ax
    return tuple(_pieces("unstack", x, [lambda t, i=i: getitem(t, pre + (i,))
                                        for i in range(x.shape[ax])],
                         lambda gs: stack(gs, axis=ax)))


def _pieces(name, x, views, join):
    """Views of `x` made by `views` (each one an ordinary, capturable getitem),
    put on the tape as ONE node whose vjp joins their gradients (zeros for the
    unused ones): n pieces cost O(size) in backward, not O(n * size) as n
    separate getitem adjoints (a scatter into a full-size zero tensor each) would."""
    from ..autograd.engine import needs_grad, record
    from ..autograd.grad_mode import no_grad
    with no_grad():
        out = [v(x) for v in views]
    if out and needs_grad(x) and x.dtype.is_differentiable:
        record(name, (x,), tuple(out), lambda *gs: (join(list(gs)),))
    return out


def _int_list(op, what, v):
    if isinstance(v, Tensor):
        v = v.tolist()
    elif isinstance(v, np.ndarray):
        v = v.tolist()
    try:
        return [operator.index(e) for e in v]
    except TypeError:
        raise ShapeError(f"[{op}] {what} must be integers, got {v!r}") from None


def split(x, indices_or_sections, axis=0):
    """Split into a list of views along `axis`, as `numpy.split`: an int N gives N
    equal pieces (the axis must divide evenly), a sequence of indices gives the
    pieces between them."""
    x = to_tensor("split", x)
    if x.ndim == 0:
        raise ShapeError("[split] cannot split a zero-dimensional tensor")
    ax = norm_axis("split", axis, x.ndim, allow_none=False)
    n = x.shape[ax]
    if isinstance(indices_or_sections, (int, np.integer)) and \
            not isinstance(indices_or_sections, bool):
        k = int(indices_or_sections)
        if k <= 0 or n % k:
            raise ShapeError(f"[split] axis {ax} of size {n} (shape {x.shape}) cannot be split "
                             f"into {k} equal sections")
        bounds = [n // k * i for i in range(k + 1)]
    else:
        bounds = [0] + _int_list("split", "split indices", indices_or_sections) + [n]
    last = len(bounds) - 2
    return _pieces("split", x, [lambda t, i=i: take_slice(t, ax, bounds[i],
                                                          bounds[i + 1] if i < last else None)
                                for i in range(last + 1)],
                   lambda gs: concat(gs, axis=ax))


def tile(x, reps):
    """Repeat the whole tensor `reps` times per axis, as `numpy.tile`."""
    x = to_tensor("tile", x)
    reps = _int_list("tile", "reps", (reps,) if not isinstance(reps, (tuple, list, Tensor,
                                                                       np.ndarray)) else reps)
    if any(r < 0 for r in reps):
        raise ShapeError(f"[tile] reps must be non-negative, got {tuple(reps)}")
    nd = max(len(reps), x.ndim)
    reps = [1] * (nd - len(reps)) + reps
    shape = (1,) * (nd - x.ndim) + x.shape
    inter = sum(((1, d) for d in shape), ())
    wide = sum(((r, d) for r, d in zip(reps, shape)), ())
    y = broadcast_to(reshape(x, inter), wide)
    return reshape(y, tuple(r * d for r, d in zip(reps, shape)))


def repeat(x, repeats, axis=None):
    """Repeat each element, as the Array API `repeat`: `repeats` is an int or a
    1-D integer sequence/tensor (one count per element along `axis`, or one
    count for all); `axis=None` works on the flattened tensor."""
    x = to_tensor("repeat", x)
    if axis is None:
        x = reshape(x, (-1,))
        axis = 0
    if x.ndim == 0:
        x = reshape(x, (1,))
    ax = norm_axis("repeat", axis, x.ndim, allow_none=False)
    n = x.shape[ax]
    if isinstance(repeats, (int, np.integer)) and not isinstance(repeats, bool):
        reps = [int(repeats)]
    else:
        rshape = repeats.shape if isinstance(repeats, Tensor) else np.shape(repeats)
        if len(rshape) != 1:
            raise ShapeError(f"[repeat] repeats must be an int or 1-D, got shape {rshape}")
        reps = _int_list("repeat", "repeats", repeats)
    if any(r < 0 for r in reps):
        raise ShapeError(f"[repeat] repeats must be non-negative, got {reps}")
    if len(reps) == 1:
        r = reps[0]
        y = broadcast_to(expand_dims(x, ax + 1), x.shape[:ax + 1] + (r,) + x.shape[ax + 1:])
        return reshape(y, x.shape[:ax] + (n * r,) + x.shape[ax + 1:])
    if len(reps) != n:
        raise ShapeError(f"[repeat] {len(reps)} repeats for axis {ax} of size {n} "
                         f"(shape {x.shape}); give one count or one per element")
    from .creation import asarray
    idx = asarray(np.repeat(np.arange(n, dtype=np.int64), reps), device=x.device)
    return take(x, idx, axis=ax)


def ravel(x):
    """The flattened tensor (a view when the layout allows), as `numpy.ravel`."""
    return reshape(to_tensor("ravel", x), (-1,))


def flatten(x, start_axis=0, end_axis=-1):
    """Merge axes `start_axis..end_axis` (inclusive) into one, as `torch.flatten`;
    with the defaults it is `numpy.ndarray.flatten` (a 0-d tensor gives shape (1,))."""
    x = to_tensor("flatten", x)
    if x.ndim == 0:
        return reshape(x, (1,))
    s = norm_axis("flatten", start_axis, x.ndim, allow_none=False)
    e = norm_axis("flatten", end_axis, x.ndim, allow_none=False)
    if s > e:
        raise ShapeError(f"[flatten] start_axis {start_axis} comes after end_axis {end_axis} "
                         f"for shape {x.shape}")
    return reshape(x, x.shape[:s] + (prod(x.shape[s:e + 1]),) + x.shape[e + 1:])


def _atleast(op, arrays, nd, place):
    out = []
    for a in arrays:
        t = to_tensor(op, a)
        if t.ndim < nd:
            t = reshape(t, place(t.shape))
        out.append(t)
    return out[0] if len(out) == 1 else out


def atleast_1d(*arrays):
    """Tensors with at least one dimension, as `numpy.atleast_1d`."""
    return _atleast("atleast_1d", arrays, 1, lambda s: (1,))


def atleast_2d(*arrays):
    """Tensors with at least two dimensions (1-D (N,) -> (1, N)), as `numpy.atleast_2d`."""
    return _atleast("atleast_2d", arrays, 2, lambda s: (1,) * (2 - len(s)) + s)


def atleast_3d(*arrays):
    """At least three dimensions: (N,) -> (1, N, 1), (M, N) -> (M, N, 1), as
    `numpy.atleast_3d`."""
    return _atleast("atleast_3d", arrays, 3,
                    lambda s: {0: (1, 1, 1), 1: (1,) + s + (1,), 2: s + (1,)}[len(s)])


_PAD_MODES = ("constant", "edge", "reflect", "symmetric", "wrap")


def pad(x, pad_width, mode="constant", value=0):
    """Pad with `numpy.pad` semantics: `pad_width` is an int, a (before, after)
    pair or one pair per axis. Modes: "constant" (filled with `value`), "edge",
    "reflect", "symmetric", "wrap"; the non-constant modes are gathers, so their
    gradient accumulates over the copied elements.

    >>> import tessera as ts
    >>> ts.pad(ts.ones((2, 2)), 1).shape
    (4, 4)
    """
    x = to_tensor("pad", x)
    if mode not in _PAD_MODES:
        raise ValueError(f"[pad] unknown mode {mode!r}; accepted: {', '.join(_PAD_MODES)}")
    try:
        pw = np.asarray(pad_width.tolist() if isinstance(pad_width, Tensor) else pad_width)
        if pw.dtype.kind not in "iu":
            raise TypeError
        pw = np.broadcast_to(pw, (x.ndim, 2)).tolist()
    except (TypeError, ValueError):
        raise ShapeError(f"[pad] pad_width {pad_width!r} is not an int, a (before, after) pair "
                         f"or one pair per axis of shape {x.shape}") from None
    if any(p < 0 for pair in pw for p in pair):
        raise ShapeError(f"[pad] pad widths must be non-negative, got {pw}")
    if mode != "constant":
        for ax, (lo, hi) in enumerate(pw):
            if lo or hi:
                n = x.shape[ax]
                if n == 0:
                    raise ShapeError(f"[pad] cannot extend empty axis {ax} (shape {x.shape}) "
                                     f"in mode {mode!r}; only 'constant' can")
                from .creation import asarray
                idx = np.pad(np.arange(n, dtype=np.int64), (lo, hi), mode=mode)
                x = take(x, asarray(idx, device=x.device), axis=ax)
        return x
    if isinstance(value, Tensor):
        value = value.item()
    inner = tuple(slice(lo, lo + d) for (lo, _), d in zip(pw, x.shape))
    shape = tuple(lo + d + hi for (lo, hi), d in zip(pw, x.shape))
    b, dt = x.device.backend, x.dtype

    def fwd(buf):
        out = b.full(shape, value, dt)
        out[inner] = buf
        return out
    return apply_op("pad", (x,), fwd, dt, x.device, lambda g: (getitem(g, inner),),
                    shape=shape)
