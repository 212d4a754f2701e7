"""Frequency grids and spectrum shifts of the Array API `fft` extension: fftfreq,
rfftfreq, fftshift, ifftshift (as `numpy.fft`'s, the shifts differentiable as rolls).

>>> import tessera as ts
>>> ts.fft.fftfreq(4).tolist()
[0.0, 0.25, -0.5, -0.25]
"""
from __future__ import annotations

import operator

import numpy as np

from .. import dtypes as _dt
from ..errors import DTypeError, ShapeError
from ..ops._dispatch import norm_axis, to_tensor


def _grid(op, n, d, dtype, device, full):
    try:
        n = operator.index(n)
    except TypeError:
        raise ShapeError(f"[{op}] n must be an integer, got {n!r}") from None
    if n < 1:
        raise ShapeError(f"[{op}] n must be positive, got {n}")
    dt = _dt.get_dtype(dtype, op) if dtype is not None else _dt.fp32
    if dt.kind != "f":
        raise DTypeError(f"[{op}] dtype must be a real floating dtype, got {dt.name}")
    k = np.fft.fftfreq(n, d) if full else np.fft.rfftfreq(n, d)
    from ..ops.creation import asarray
    return asarray(k, dtype=dt, device=device)


def fftfreq(n, /, *, d=1.0, dtype=None, device=None):
    """Sample frequencies of an n-point DFT with sample spacing `d`, as
    `numpy.fft.fftfreq` ([0, 1, ..., -1] / (d n)); dtype defaults to the default
    float (fp32), as the Array API says (NumPy gives float64)."""
    return _grid("fftfreq", n, d, dtype, device, True)


def rfftfreq(n, /, *, d=1.0, dtype=None, device=None):
    """Sample frequencies of `rfft` (the n // 2 + 1 non-negative ones), as
    `numpy.fft.rfftfreq`.

    >>> import tessera as ts
    >>> ts.fft.rfftfreq(4).tolist()
    [0.0, 0.25, 0.5]
    """
    return _grid("rfftfreq", n, d, dtype, device, False)


def _shift(op, x, axes, sign):
    from ..ops.movement import roll
    x = to_tensor(op, x)
    if axes is None:
        axes = tuple(range(x.ndim))
    elif isinstance(axes, (int, np.integer)):
        axes = (axes,)
    axes = tuple(norm_axis(op, a, x.ndim, False) for a in axes)
    if not axes:
        return x
    return roll(x, tuple(sign * (x.shape[a] // 2) for a in axes), axes)


def fftshift(x, /, *, axes=None):
    """Move the zero frequency to the centre, as `numpy.fft.fftshift` (all axes by
    default).

    >>> import tessera as ts
    >>> ts.fft.fftshift(ts.fft.fftfreq(5)).tolist()
    [-0.4000000059604645, -0.20000000298023224, 0.0, 0.20000000298023224, 0.4000000059604645]
    """
    return _shift("fftshift", x, axes, 1)


def ifftshift(x, /, *, axes=None):
    """Inverse of `fftshift`, as `numpy.fft.ifftshift` (they differ for odd sizes)."""
    return _shift("ifftshift", x, axes, -1)
