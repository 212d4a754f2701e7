"""Creation functions (`asarray`, `zeros`, `arange`, `eye`, ...) as the Array API
standard names them, each taking `dtype=` and `device=`, plus device transfer.

Nested Python lists are validated (ragged lists raise a ShapeError that says at
which depth), dtypes are inferred as the standard says: bool -> bool, int ->
int64, float -> fp32 (the default float), complex -> complex64.
"""
from __future__ import annotations

import numpy as np

from .. import dtypes as _dt
from ..device import get_device
from ..errors import DTypeError, ShapeError
from ..tensor import Tensor, _new
from ._dispatch import check_shape_arg, norm_axis


def _infer_scalar_dtype(flat_types):
    if complex in flat_types:
        return _dt.complex64
    if float in flat_types:
        return _dt.fp32
    if int in flat_types:
        return _dt.int64
    return _dt.bool_


def _nested_shape(obj, depth=0):
    """Shape of a nested list, raising on ragged input; also collects leaf types."""
    if isinstance(obj, (list, tuple)):
        if not obj:
            return (0,), set()
        shapes, types = [], set()
        for e in obj:
            s, ty = _nested_shape(e, depth + 1)
            shapes.append(s)
            types |= ty
        first = shapes[0]
        for i, s in enumerate(shapes):
            if s != first:
                raise ShapeError(f"[asarray] ragged nested sequence at depth {depth}: element 0 "
                                 f"has shape {first} but element {i} has shape {s}")
        return (len(obj),) + first, types
    if isinstance(obj, Tensor):
        return obj.shape, {float if obj.dtype.is_floating else int}
    if isinstance(obj, (bool, np.bool_)):
        return (), {bool}
    if isinstance(obj, (int, np.integer)):
        return (), {int}
    if isinstance(obj, (float, np.floating)):
        return (), {float}
    if isinstance(obj, (complex, np.complexfloating)):
        return (), {complex}
    raise DTypeError(f"[asarray] cannot make a tensor element from {type(obj).__name__} {obj!r}")


def asarray(obj, dtype=None, device=None, copy=None, requires_grad=False):
    """Convert `obj` (Tensor, NumPy/CuPy array, DLPack producer, nested list,
    scalar) to a Tensor, as the Array API `asarray`.

    >>> import tessera as ts
    >>> ts.asarray([[1, 2], [3, 4]]).shape
    (2, 2)
    """
    dt = _dt.get_dtype(dtype, "asarray") if dtype is not None else None
    if type(obj) is Tensor:
        out = obj
        if device is not None and get_device(device) is not obj.device:
            out = to_device(out, get_device(device))
        if dt is not None and dt is not out.dtype:
            from .elementwise import astype
            out = astype(out, dt)
        elif copy:
            from .movement import copy as _copy
            out = _copy(out)
    else:
        dev = get_device(device)
        backend = dev.backend
        from ..backend.cupy_source import is_cupy_array
        if is_cupy_array(obj):
            if dev.type == "cpu":
                from ..errors import DeviceError
                raise DeviceError("[asarray] got a CuPy (GPU) array for device cpu; use "
                                  "tessera.from_dlpack or .get() to copy it explicitly")
            arr = obj
            src = _dt.get_dtype(arr.dtype) if dt is None else dt
            if dt is not None and arr.dtype != backend.storage_dtype(dt):
                arr = arr.astype(backend.storage_dtype(dt))
            elif copy:
                arr = arr.copy()
            out = _new(arr, tuple(arr.shape), src, dev)
        else:
            if isinstance(obj, (str, bytes)):
                raise DTypeError(f"[asarray] cannot make a tensor from the {type(obj).__name__} {obj!r}: "
                                 "tensor data is numbers or booleans")
            if isinstance(obj, float) and dt is not None and dt.kind in "iu" and obj != obj:
                raise DTypeError(f"[asarray] NaN cannot be stored in {dt.name}")  # NumPy's bare error
            if isinstance(obj, np.ndarray) or np.isscalar(obj) and not isinstance(obj, (bool, int, float, complex)):
                arr = np.asarray(obj)
                # ml_dtypes' bfloat16/float8 report kind "V": let get_dtype decide those
                if arr.dtype.kind in "OUS" or arr.dtype.kind == "V" and arr.dtype.names:
                    raise DTypeError(f"[asarray] NumPy dtype {arr.dtype} has no tessera equivalent")
                src_dt = _dt.get_dtype(arr.dtype) if arr.dtype != np.uint16 or dt is not None else None
                if src_dt is None:
                    raise DTypeError("[asarray] NumPy dtype uint16 has no tessera equivalent; "
                                     "pass dtype=")
                target = dt or src_dt
                if copy and dt is None:
                    arr = arr.copy()
            elif hasattr(obj, "__dlpack__") and not isinstance(obj, (list, tuple)):
                from ..interop.dlpack import from_dlpack
                t = from_dlpack(obj)
                return asarray(t, dtype=dtype, device=device, copy=copy, requires_grad=requires_grad)
            else:
                shape, types = _nested_shape(obj)
                target = dt or _infer_scalar_dtype(types)
                if any(isinstance(e, Tensor) for e in (obj if isinstance(obj, (list, tuple)) else ())):
                    from .manipulation import stack
                    t = stack([asarray(e, dtype=target) for e in obj])
                    return asarray(t, device=device, requires_grad=requires_grad)
                st = target.np_storage
                arr = np.array(obj, dtype=st if st is not None and target.kind != "f" or target is _dt.fp64
                               else np.float64)
                arr = arr.reshape(shape)
            if target.np_storage is None:
                raise DTypeError(f"[asarray] {target.name} needs ml_dtypes on the CPU: pip install ml_dtypes")
            if arr.dtype != target.np_storage:
                if target.kind in "iu" and arr.dtype.kind == "f" and dt is not None and not np.isscalar(obj):
                    pass  # explicit int dtype from floats truncates, as NumPy does
                from ..precision.convert import cast_numpy  # the cast table, not NumPy's/ml_dtypes'
                arr = cast_numpy(arr, target)
            buf = backend.from_numpy(arr, target)
            out = _new(buf, tuple(arr.shape), target, dev)
    if requires_grad:
        if out is obj:
            out = out.detach()
        out.requires_grad_(True)
    return out


tensor_ = asarray


def _make(shape, dtype, device, fill, op):
    shape = check_shape_arg(op, shape)
    dt = _dt.get_dtype(dtype, op) if dtype is not None else _dt.fp32
    dev = get_device(device)
    b = dev.backend
    if fill is None:
        buf = b.empty(shape, dt)
    elif fill == 0:
        buf = b.zeros(shape, dt)
    else:
        buf = b.full(shape, fill, dt)
    return _new(buf, shape, dt, dev)


def _grad(t, requires_grad):
    return t.requires_grad_(True) if requires_grad else t


def zeros(shape, *, dtype=None, device=None, requires_grad=False):
    """A tensor of zeros, as `numpy.zeros` (default dtype fp32)."""
    return _grad(_make(shape, dtype, device, 0, "zeros"), requires_grad)


def ones(shape, *, dtype=None, device=None, requires_grad=False):
    return _grad(_make(shape, dtype, device, 1, "ones"), requires_grad)


def empty(shape, *, dtype=None, device=None, requires_grad=False):
    return _grad(_make(shape, dtype, device, None, "empty"), requires_grad)


def full(shape, fill_value, *, dtype=None, device=None, requires_grad=False):
    """A tensor of `shape` filled with the scalar `fill_value`, as the Array API's
    `full` (dtype from the scalar: bool, int64, fp32 or complex64)."""
    v = fill_value.item() if isinstance(fill_value, np.generic) else fill_value
    if not isinstance(v, (bool, int, float, complex)):
        # a str, None or a list is not a fill value (NumPy made them [True, True])
        raise DTypeError(f"[full] fill_value must be a bool, int, float or complex scalar, got "
                         f"{type(fill_value).__name__} {fill_value!r}; for tensor data use tessera.asarray")
    if dtype is None:
        dtype = _infer_scalar_dtype({type(v)})
    return _grad(_make(shape, dtype, device, v, "full"), requires_grad)


def _like(x, dtype, device):
    return (dtype if dtype is not None else x.dtype), (device if device is not None else x.device)


def zeros_like(x, *, dtype=None, device=None, requires_grad=False):
    d, v = _like(x, dtype, device)
    return zeros(x.shape, dtype=d, device=v, requires_grad=requires_grad)


def ones_like(x, *, dtype=None, device=None, requires_grad=False):
    d, v = _like(x, dtype, device)
    return ones(x.shape, dtype=d, device=v, requires_grad=requires_grad)


def empty_like(x, *, dtype=None, device=None, requires_grad=False):
    d, v = _like(x, dtype, device)
    return empty(x.shape, dtype=d, device=v, requires_grad=requires_grad)


def full_like(x, fill_value, *, dtype=None, device=None, requires_grad=False):
    d, v = _like(x, dtype, device)
    return full(x.shape, fill_value, dtype=d, device=v, requires_grad=requires_grad)


def arange(start, stop=None, step=1, *, dtype=None, device=None):
    """Evenly spaced values in [start, stop), as the Array API `arange`."""
    if stop is None:
        start, stop = 0, start
    if step == 0:
        raise ValueError("[arange] step must not be zero")
    if dtype is None:
        isf = any(isinstance(v, float) for v in (start, stop, step))
        dt = _dt.fp32 if isf else _dt.int64
    else:
        dt = _dt.get_dtype(dtype, "arange")
    ref = np.arange(start, stop, step, dtype=np.float64 if dt.kind in "fc" else np.int64)
    return asarray(ref, dtype=dt, device=device)


def linspace(start, stop, num, *, dtype=None, device=None, endpoint=True):
    if num < 0:
        raise ShapeError(f"[linspace] num must be non-negative, got {num}")
    ref = np.linspace(start, stop, num, endpoint=endpoint)
    return asarray(ref, dtype=dtype or _dt.fp32, device=device)


def eye(n_rows, n_cols=None, *, k=0, dtype=None, device=None):
    """Ones on the k-th diagonal, as the Array API's `eye` (default dtype fp32)."""
    check_shape_arg("eye", (n_rows, n_rows if n_cols is None else n_cols))
    ref = np.eye(n_rows, n_cols, k=k, dtype=np.float64)
    return asarray(ref, dtype=dtype or _dt.fp32, device=device)


def tensor(shape, dtype="fp32", device=None, fill=0.0, requires_grad=False):
    """The seed's `op.tensor(shape, dtype=...)`: a new tensor of `shape` filled
    with `fill` (zeros by default). For data, use `asarray`."""
    if isinstance(shape, (list, tuple)) and shape and not all(
            isinstance(d, (int, np.integer)) and not isinstance(d, bool) for d in shape):
        return asarray(shape, dtype=dtype, device=device, requires_grad=requires_grad)
    return full(shape, fill, dtype=dtype, device=device, requires_grad=requires_grad)


def to_device(x, dev):
    """Copy `x` to device `dev` (the explicit, visible cross-device copy)."""
    src_b = x.device.backend
    from .._config import STATE
    if STATE.event_sinks:
        for s in STATE.event_sinks:
            s("copy_start", x)
    host = src_b.to_numpy(x.data, x.dtype)
    buf = dev.backend.from_numpy(np.ascontiguousarray(host), x.dtype)
    out = _new(buf, x.shape, x.dtype, dev)
    from .._config import STATE
    if STATE.event_sinks:
        for s in STATE.event_sinks:
            s("copy", (x, out))
    if x.requires_grad and STATE.grad_enabled:
        from ..autograd.engine import record
        src = x.device
        record("to_device", (x,), out, lambda g: (to_device(g, src),))
    return out


def from_numpy(arr):
    """Zero-copy on the CPU: the tensor shares memory with `arr`."""
    return asarray(np.asarray(arr), device="cpu")


def meshgrid(*arrays, indexing="xy"):
    from .movement import broadcast_to
    from .movement import reshape
    if indexing not in ("xy", "ij"):
        raise ValueError(f"[meshgrid] indexing must be 'xy' or 'ij', got {indexing!r}")
    n = len(arrays)
    shape = [a.size for a in arrays]
    if indexing == "xy" and n >= 2:
        shape[0], shape[1] = shape[1], shape[0]
    outs = []
    for i, a in enumerate(arrays):
        s = [1] * n
        j = i
        if indexing == "xy" and n >= 2 and i < 2:
            j = 1 - i
        s[j] = a.size
        outs.append(broadcast_to(reshape(a, tuple(s)), tuple(shape)))
    return outs


def tril(x, k=0):
    from .elementwise import where
    r = arange(x.shape[-2], device=x.device)
    c = arange(x.shape[-1], device=x.device)
    from .movement import reshape
    mask = reshape(r, (-1, 1)) + k >= reshape(c, (1, -1))
    return where(mask, x, 0)


def triu(x, k=0):
    from .elementwise import where
    from .movement import reshape
    r = arange(x.shape[-2], device=x.device)
    c = arange(x.shape[-1], device=x.device)
    mask = reshape(r, (-1, 1)) + k <= reshape(c, (1, -1))
    return where(mask, x, 0)
