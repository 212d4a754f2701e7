"""Movement ops that only re-index storage: reshape, permute_dims, expand_dims,
squeeze, broadcast_to, flip, roll, moveaxis, copy. Views where NumPy/CuPy give
views (sharing the version counter with their base, so that in-place writes
through a view are seen by autodiff). Each adjoint is the inverse movement.
"""
from __future__ import annotations

import operator

from ..errors import ShapeError
from ._dispatch import apply_op, check_shape_arg, norm_axes, norm_axis, prod, to_tensor


def reshape(x, shape, *, copy=None):
    """As the Array API `reshape`; one dimension may be -1. A view when the
    layout allows it."""
    x = to_tensor("reshape", x)
    if isinstance(shape, int):
        shape = (shape,)
    try:
        shape = tuple(operator.index(d) for d in shape)
    except TypeError:
        raise ShapeError(f"[reshape] shape must be integers, got {shape!r}") from None
    if shape == x.shape and not copy:
        return x
    n = x.size
    if shape.count(-1) > 1:
        raise ShapeError(f"[reshape] only one dimension can be -1, got {shape}")
    if -1 in shape:
        known = prod(d for d in shape if d != -1)
        if known == 0 or n % known:
            raise ShapeError(f"[reshape] cannot reshape {x.shape} ({n} elements) into {shape}")
        shape = tuple(n // known if d == -1 else d for d in shape)
    if any(d < 0 for d in shape) or prod(shape) != n:
        raise ShapeError(f"[reshape] cannot reshape {x.shape} ({n} elements) into {shape} "
                         f"({prod(shape) if all(d >= 0 for d in shape) else '?'} elements)")
    src = x.shape
    if copy:
        def fwd(b):
            return b.reshape(shape).copy()
    else:
        def fwd(b):
            return b.reshape(shape)
    return apply_op("reshape", (x,), fwd, x.dtype, x.device,
                  lambda g: (reshape(g, src),), shape=shape,
                  view_of=None if copy else x)


def permute_dims(x, axes):
    """Reorder axes, as the Array API `permute_dims` (a view)."""
    x = to_tensor("permute_dims", x)
    axes = tuple(norm_axis("permute_dims", a, x.ndim, False) for a in axes)
    if sorted(axes) != list(range(x.ndim)):
        raise ShapeError(f"[permute_dims] axes {axes} are not a permutation of the "
                         f"{x.ndim} dimensions of shape {x.shape}")
    inv = tuple(sorted(range(len(axes)), key=lambda i: axes[i]))
    return apply_op("permute_dims", (x,), lambda b: b.transpose(axes), x.dtype, x.device,
                  lambda g: (permute_dims(g, inv),), view_of=x)


def moveaxis(x, source, destination):
    x = to_tensor("moveaxis", x)
    src = [norm_axis("moveaxis", a, x.ndim, False) for a in
           (source if isinstance(source, (tuple, list)) else (source,))]
    dst = [norm_axis("moveaxis", a, x.ndim, False) for a in
           (destination if isinstance(destination, (tuple, list)) else (destination,))]
    if len(src) != len(dst):
        raise ShapeError(f"[moveaxis] source {source} and destination {destination} differ in length")
    order = [a for a in range(x.ndim) if a not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return permute_dims(x, tuple(order))


def expand_dims(x, axis=0):
    x = to_tensor("expand_dims", x)
    axes = axis if isinstance(axis, (tuple, list)) else (axis,)
    nd = x.ndim + len(axes)
    axes = sorted(norm_axis("expand_dims", a, nd, False) for a in axes)
    shape = list(x.shape)
    for a in axes:
        shape.insert(a, 1)
    return reshape(x, tuple(shape))


def squeeze(x, axis=None):
    x = to_tensor("squeeze", x)
    if axis is None:
        axes = tuple(i for i, d in enumerate(x.shape) if d == 1)
    else:
        axes = norm_axes("squeeze", axis, x.ndim)
        for a in axes:
            if x.shape[a] != 1:
                raise ShapeError(f"[squeeze] axis {a} of shape {x.shape} has size "
                                 f"{x.shape[a]}, not 1")
    return reshape(x, tuple(d for i, d in enumerate(x.shape) if i not in axes))


def broadcast_to(x, shape):
    """A read-only broadcast view, as the Array API `broadcast_to`."""
    from ._dispatch import broadcast_shapes
    x = to_tensor("broadcast_to", x)
    shape = check_shape_arg("broadcast_to", shape)
    if broadcast_shapes("broadcast_to", x.shape, shape) != shape:
        raise ShapeError(f"[broadcast_to] cannot broadcast {x.shape} to {shape}")
    if shape == x.shape:
        return x
    xp = x.device.backend.xp
    # The gradient of broadcasting is the sum back to the input's shape; the
    # engine's shape fitting does exactly that.
    return apply_op("broadcast_to", (x,), lambda b: xp.broadcast_to(b, shape), x.dtype,
                    x.device, lambda g: (g,), view_of=x)


def broadcast_arrays(*arrays):
    from ._dispatch import broadcast_shapes
    ts = [to_tensor("broadcast_arrays", a) for a in arrays]
    shape = broadcast_shapes("broadcast_arrays", *(t.shape for t in ts))
    return [broadcast_to(t, shape) for t in ts]


def copy(x):
    """A contiguous copy with its own storage (gradient passes through)."""
    x = to_tensor("copy", x)
    backend = x.device.backend
    return apply_op("copy", (x,), backend.copy, x.dtype, x.device, lambda g: (g,))


def contiguous(x):
    x = to_tensor("contiguous", x)
    if x.data.flags.c_contiguous:
        return x
    return copy(x)


def flip(x, axis=None):
    x = to_tensor("flip", x)
    axes = norm_axes("flip", axis, x.ndim)
    xp = x.device.backend.xp
    return apply_op("flip", (x,), lambda b: xp.flip(b, axis=axes) if b.ndim else b, x.dtype,
                    x.device, lambda g: (flip(g, axes),), view_of=x)


def roll(x, shift, axis=None):
    x = to_tensor("roll", x)
    xp = x.device.backend.xp
    if axis is None:
        neg = -shift if isinstance(shift, int) else tuple(-s for s in shift)
        return apply_op("roll", (x,), lambda b: xp.roll(b, shift), x.dtype, x.device,
                        lambda g: (roll(g, neg),))
    axes = axis if isinstance(axis, (tuple, list)) else (axis,)
    axes = tuple(norm_axis("roll", a, x.ndim, False) for a in axes)
    shifts = shift if isinstance(shift, (tuple, list)) else (shift,) * len(axes)
    if len(shifts) != len(axes):
        raise ShapeError(f"[roll] {len(shifts)} shifts for {len(axes)} axes")
    neg = tuple(-s for s in shifts)
    return apply_op("roll", (x,), lambda b: xp.roll(b, shifts, axis=axes), x.dtype, x.device,
                    lambda g: (roll(g, neg, axes),))
