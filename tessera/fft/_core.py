"""The three FFT primitives of `tessera.fft` (complex-to-complex, real-to-complex,
complex-to-real over any set of axes), their argument checks and their adjoints.
The public functions in `tessera.fft.transforms` are thin wrappers over these.

Library: scipy.fft (pocketfft, multithreaded over batches with `workers`) on the
CPU when SciPy is importable, else numpy.fft; cupy.fft (cuFFT) on the GPU. All of
them keep single precision (complex64 in, complex64 out).

Adjoints (PyTorch's convention for complex gradients, see `tessera.ops.complex`):
a transform with norm N has as adjoint the opposite-direction transform with the
dual norm (backward <-> forward, ortho <-> ortho), followed by undoing the zero
padding / cropping that `s` (or `n`) did. The real transforms add one twist each:
rfft keeps half of a Hermitian spectrum, so its adjoint is irfft of the cotangent
with the interior bins halved (irfft counts them twice); irfft reads each interior
bin twice, so its adjoint is rfft of the cotangent with interior bins doubled.
"""
from __future__ import annotations

import os

import numpy as np

from .. import dtypes as _dt
from ..errors import DTypeError, ShapeError
from ..ops._dispatch import apply_op, norm_axis, to_tensor

_NORMS = ("backward", "ortho", "forward")
_DUAL = {"backward": "forward", "forward": "backward", "ortho": "ortho"}
_WORKERS = os.cpu_count() or 1


def _lib(backend):
    """(module, extra kwargs) doing the FFTs for this backend's array module."""
    xp = backend.xp
    if xp is np:
        try:
            import scipy.fft as sfft
            return sfft, {"workers": _WORKERS}
        except ImportError:  # scipy is optional: numpy.fft is the same pocketfft, 1 thread
            return np.fft, {}
    return xp.fft, {}


def check_norm(op, norm):
    if norm is None:
        return "backward"
    if norm not in _NORMS:
        raise ValueError(f"[{op}] norm must be one of {', '.join(map(repr, _NORMS))}, "
                         f"got {norm!r}")
    return norm


def prepare(op, x, real_input=False):
    """`x` as a tensor in a dtype the FFT libraries take. Integers and bools promote
    to fp64 (NumPy's behaviour: its FFTs return complex128 for them); fp16, bf16 and
    fp8 compute in fp32 (NumPy keeps fp16 -> complex64 too). `real_input`: the
    transform needs real data (rfft family), so complex input is an error."""
    x = to_tensor(op, x)
    k = x.dtype.kind
    if k == "c":
        if real_input:
            raise DTypeError(f"[{op}] expects real input, got {x.dtype.name} (shape {x.shape}); "
                             "use fft/fftn for complex data, or take real() first")
        return x
    if k in "biu":
        return x.astype(_dt.fp64)
    if x.dtype not in (_dt.fp32, _dt.fp64):
        return x.astype(_dt.fp32)
    return x


def complex_of(dt):
    return _dt.complex128 if dt in (_dt.fp64, _dt.complex128) else _dt.complex64


def real_of(dt):
    return _dt.fp64 if dt in (_dt.fp64, _dt.complex128) else _dt.fp32


def axes_and_sizes(op, x, s, axes, last_from_half=False):
    """Normalized (axes, s) for an n-D transform, in the caller's order (it matters:
    the last axis is the real one in rfftn/irfftn). Defaults as the Array API: axes
    None -> the last len(s) axes, or all axes when s is None too; s None -> the
    input's sizes (2 * (m - 1) along the last axis of a c2r transform)."""
    if axes is None:
        axes = tuple(range(x.ndim - len(s), x.ndim)) if s is not None else tuple(range(x.ndim))
    elif isinstance(axes, (int, np.integer)):
        axes = (axes,)
    axes = tuple(norm_axis(op, a, x.ndim, False) for a in axes)
    if len(set(axes)) != len(axes):
        raise ShapeError(f"[{op}] repeated axis in axes={axes}")
    if not axes:
        raise ShapeError(f"[{op}] needs at least one axis to transform (input shape {x.shape})")
    if s is None:
        s = [x.shape[a] for a in axes]
        if last_from_half:
            s[-1] = 2 * (x.shape[axes[-1]] - 1)
    else:
        s = list(s)
        if len(s) != len(axes):
            raise ShapeError(f"[{op}] s={tuple(s)} and axes={axes} differ in length")
    for a, n in zip(axes, s):
        if not isinstance(n, (int, np.integer)) or n < 1:
            raise ShapeError(f"[{op}] invalid number of points {n} along axis {a} (input shape "
                             f"{x.shape}); it must be a positive integer"
                             + (" (n defaults to 2 * (m - 1), m the input length)"
                                if last_from_half else ""))
    return axes, tuple(int(n) for n in s)


def _fit(g, shape, axes):
    """Undo the zero padding / cropping of the input to the transform sizes: crop
    `g` or zero-pad it along `axes` to `shape`."""
    from ..ops.manipulation import pad
    idx, widths, need_pad = [slice(None)] * g.ndim, [(0, 0)] * g.ndim, False
    for a in axes:
        have, want = g.shape[a], shape[a]
        if have > want:
            idx[a] = slice(0, want)
        elif have < want:
            widths[a], need_pad = (0, want - have), True
    if any(i != slice(None) for i in idx):
        g = g[tuple(idx)]
    if need_pad:
        g = pad(g, widths)
    return g


def _half_weights(m, n, device, dtype, interior):
    """Weights along a half-spectrum axis of length m for a real transform of n points:
    1 at the zero frequency and (n even) at Nyquist, `interior` elsewhere."""
    w = np.full(m, interior)
    w[0] = 1.0
    if n % 2 == 0 and m == n // 2 + 1:
        w[-1] = 1.0
    import tessera as ts
    return ts.asarray(w, dtype=real_of(dtype), device=device)


def _bcast_along(w, ndim, axis):
    from ..ops.movement import reshape
    shape = [1] * ndim
    shape[axis] = w.shape[0]
    return reshape(w, tuple(shape))


def c2c(op, x, s, axes, norm, inverse):
    """fftn / ifftn of `x` (real or complex, already `prepare`d) over `axes`, padded or
    cropped to sizes `s`."""
    backend = x.device.backend
    lib, kw = _lib(backend)
    fn = lib.ifftn if inverse else lib.fftn
    out_dt = complex_of(x.dtype)
    sd = backend.storage_dtype(out_dt)
    shape = list(x.shape)
    for a, n in zip(axes, s):
        shape[a] = n
    in_shape = x.shape

    def fwd(b):
        return fn(b, s=s, axes=axes, norm=norm, **kw).astype(sd, copy=False)

    def vjp(g):
        return (_fit(c2c(op, g, s, axes, _DUAL[norm], not inverse), in_shape, axes),)
    return apply_op(op, (x,), fwd, out_dt, x.device, vjp, shape=tuple(shape))


def r2c(op, x, s, axes, norm):
    """rfftn of real `x` over `axes` (the last one halved), sizes `s`."""
    backend = x.device.backend
    lib, kw = _lib(backend)
    out_dt = complex_of(x.dtype)
    sd = backend.storage_dtype(out_dt)
    shape = list(x.shape)
    for a, n in zip(axes, s):
        shape[a] = n
    last, n_last = axes[-1], s[-1]
    shape[last] = n_last // 2 + 1
    in_shape = x.shape

    def fwd(b):
        return lib.rfftn(b, s=s, axes=axes, norm=norm, **kw).astype(sd, copy=False)

    def vjp(g):
        w = _half_weights(shape[last], n_last, g.device, g.dtype, 0.5)
        h = g * _bcast_along(w, g.ndim, last)
        return (_fit(c2r(op, h, s, axes, _DUAL[norm]), in_shape, axes),)
    return apply_op(op, (x,), fwd, out_dt, x.device, vjp, shape=tuple(shape))


def c2r(op, x, s, axes, norm):
    """irfftn of `x` (complex or real, a half spectrum along the last axis) over
    `axes`, to real output of sizes `s`."""
    backend = x.device.backend
    lib, kw = _lib(backend)
    out_dt = real_of(x.dtype)
    sd = backend.storage_dtype(out_dt)
    shape = list(x.shape)
    for a, n in zip(axes, s):
        shape[a] = n
    last, n_last = axes[-1], s[-1]
    in_shape = x.shape

    def fwd(b):
        return lib.irfftn(b, s=s, axes=axes, norm=norm, **kw).astype(sd, copy=False)

    def vjp(g):
        spec = r2c(op, g, s, axes, _DUAL[norm])
        w = _half_weights(spec.shape[last], n_last, g.device, g.dtype, 2.0)
        return (_fit(spec * _bcast_along(w, spec.ndim, last), in_shape, axes),)
    return apply_op(op, (x,), fwd, out_dt, x.device, vjp, shape=tuple(shape))
