"""Shared argument handling for ops: turning arguments into tensors, checking
devices, broadcasting shapes, normalizing axes. Every check raises a tessera
error that names the op and the shapes/dtypes/devices involved.

Results are cached where the inputs repeat (broadcast shapes, promotion), so the
eager hot path is dictionary lookups, not Python loops.
"""
from __future__ import annotations

import operator

import numpy as np

from .. import dtypes as _dt
from .._config import STATE
from ..autograd.engine import record
from ..errors import DeviceError, DTypeError, ShapeError, fmt_shapes_aligned
from ..tensor import Tensor, _new

_SCALARS = (bool, int, float, complex)
_VALUES = _SCALARS + (np.generic,)  # what to_tensor puts on any device: a scalar, not host data
_BCAST = {}


def broadcast_shapes(op, *shapes):
    key = shapes
    r = _BCAST.get(key)
    if r is not None:
        return r
    n = max(len(s) for s in shapes)
    out = []
    for i in range(n):
        d = 1
        for s in shapes:
            k = i - (n - len(s))
            if k < 0:
                continue
            e = s[k]
            if e == 1 or e == d:
                continue
            if d == 1:
                d = e
            else:
                raise ShapeError(f"[{op}] shapes do not broadcast (dimension {i - n} is "
                                 f"{d} in one and {e} in another):\n" + fmt_shapes_aligned(*shapes))
        out.append(d)
    r = tuple(out)
    if len(_BCAST) < 4096:
        _BCAST[key] = r
    return r


def same_device(op, *tensors):
    dev = None
    for t in tensors:
        if type(t) is Tensor:
            if dev is None:
                dev = t.device
            elif t.device is not dev:
                raise DeviceError(f"[{op}] tensors are on different devices: {dev} and "
                                  f"{t.device}; move one with .to(device) (tessera never copies "
                                  "between devices silently)")
    return dev


def to_tensor(op, x, device=None, dtype=None):
    """A tensor argument from a Tensor, NumPy array, list or scalar. Host data (arrays,
    lists) is accepted only for a CPU op: putting it on a GPU would be a hidden copy. A
    NumPy scalar is a value, as a Python scalar is, and goes to the op's device (a strong
    0-d tensor, as NEP 50 types it). What is no tensor data at all (a str, an object())
    raises the error it raises on the CPU: the error type never depends on the device."""
    if type(x) is Tensor:
        return x
    from .creation import asarray
    from ..device import CPU, get_device
    dev = get_device(device) if device is not None else None
    try:
        if dev is not None and dev.type != "cpu" and not isinstance(x, _VALUES):
            from ..backend.cupy_source import is_cupy_array
            if not is_cupy_array(x):  # CuPy's arrays (the simulator's too) are device data
                if not isinstance(x, np.ndarray):
                    asarray(x, dtype=dtype, device=CPU)  # raises for what no device could take
                raise DeviceError(f"[{op}] got host data ({type(x).__name__}) for an op on {dev}; "
                                  f"convert it with tessera.asarray(x, device='{dev}') first")
        return asarray(x, dtype=dtype, device=dev)
    except DTypeError as e:
        if op == "asarray":
            raise
        # name the op the user called, not the conversion inside it
        raise DTypeError(str(e).replace("[asarray]", f"[{op}]", 1)) from None


def norm_axis(op, axis, ndim, allow_none=True):
    """One axis -> non-negative int, with a clear error when out of range."""
    if axis is None and allow_none:
        return None
    try:
        a = operator.index(axis)
    except TypeError:
        raise ShapeError(f"[{op}] axis must be an integer, got {axis!r}") from None
    # a 0-d tensor accepts 0 and -1, as PyTorch does
    if not (-ndim <= a < ndim if ndim else a in (0, -1)):
        raise ShapeError(f"[{op}] axis {axis} is out of range for a tensor of {ndim} "
                         f"dimension(s); accepted: "
                         + (f"{-ndim}..{ndim - 1}" if ndim else "0 or -1"))
    return a % ndim if ndim else 0


def norm_axes(op, axis, ndim):
    """None/int/tuple -> sorted tuple of distinct non-negative axes."""
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, (tuple, list)):
        axes = tuple(norm_axis(op, a, ndim, False) for a in axis)
        if len(set(axes)) != len(axes):
            raise ShapeError(f"[{op}] repeated axis in {tuple(axis)}")
        return tuple(sorted(axes)) if ndim else ()
    a = norm_axis(op, axis, ndim, False)
    # a 0-d tensor accepts axis 0 / -1 (as PyTorch) and has no axis to act on
    return (a,) if ndim else ()


def check_shape_arg(op, shape):
    """A shape argument -> tuple of non-negative ints (an int means (n,))."""
    if isinstance(shape, Tensor):
        shape = shape.tolist()
    if isinstance(shape, (int,)) and not isinstance(shape, bool):
        shape = (shape,)
    try:
        out = tuple(operator.index(d) for d in shape)
    except TypeError:
        raise ShapeError(f"[{op}] shape must be a tuple of integers, got {shape!r}") from None
    n = 1
    for d in out:
        if d < 0:
            raise ShapeError(f"[{op}] negative dimension in shape {out}")
        n *= d
    if n >= 1 << 62:  # NumPy: "array is too big; `arr.size * arr.dtype.itemsize` is larger..."
        raise ShapeError(f"[{op}] shape {out} has {n} elements, more than any device can address")
    return out


def require_dtype(op, t, kinds, what):
    if t.dtype.kind not in kinds:
        raise DTypeError(f"[{op}] expects {what}, got {t.dtype.name} (shape {t.shape})")


def prod(shape):
    n = 1
    for d in shape:
        n *= d
    return n


def apply_op(name, inputs, fwd, dtype, device, vjp=None, saved=(), shape=None, view_of=None):
    """The single dispatch point of non-elementwise ops. `fwd(*buffers)` computes
    the output buffer from the input tensors' buffers (None inputs are skipped);
    keeping it a function of buffers lets graph capture replay it without the
    Python front end. Then: wrap as a Tensor, put the op on the tape when an
    input requires grad, and tell the event sinks (profiler, capture, numerics).
    `view_of`: the input whose storage (and version counter) the output shares."""
    one = None
    if len(inputs) == 1 and inputs[0] is not None:  # most ops: no list, no .data call
        t = inputs[0]
        one = t._buf
        if one is None:
            one = t.data
    else:
        bufs = [t.data for t in inputs if t is not None]
    sinks = STATE.event_sinks
    if sinks:  # a begin mark, so the profiler times the compute itself
        for s in sinks:
            s("op_start", name)
    buf = fwd(one) if one is not None else fwd(*bufs)
    out = _new(buf, tuple(buf.shape) if shape is None else shape, dtype, device)
    out._name = name  # the producer, for check_numerics and error messages
    if view_of is not None:
        out._version = view_of._version
    if vjp is not None and STATE.grad_enabled and dtype.is_differentiable:
        for t in inputs:
            if t is not None and t.requires_grad:
                record(name, inputs, out, vjp, saved)
                break
    sinks = STATE.event_sinks
    if sinks:
        for s in sinks:
            s("op", (name, inputs, out, fwd))
    return out
