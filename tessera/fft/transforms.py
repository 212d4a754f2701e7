"""The transforms of the Array API `fft` extension: fft, ifft, fftn, ifftn, rfft,
irfft, rfftn, irfftn, hfft, ihfft — same arguments (`n`, `axis`, `s`, `axes`,
`norm`) and results as `numpy.fft`, differentiable (see `tessera.fft._core`).

Dtypes: complex64 and fp32 (and fp16/bf16, computed in fp32) give complex64 /
fp32; fp64 and complex128 give complex128 / fp64; integer and bool inputs promote
to complex128 / fp64 as NumPy's FFTs do (the Array API asks for floating input;
tessera follows NumPy instead of refusing).

>>> import tessera as ts
>>> ts.real(ts.fft.fft(ts.asarray([1.0, 0.0, 0.0, 0.0]))).tolist()
[1.0, 1.0, 1.0, 1.0]
"""
from __future__ import annotations

from . import _core
from ._core import axes_and_sizes, c2c, c2r, check_norm, prepare, r2c


def _one_axis(op, x, n, axis, last_from_half=False):
    axes = (axis,)
    return axes_and_sizes(op, x, None if n is None else (n,), axes, last_from_half)


def fft(x, /, *, n=None, axis=-1, norm="backward"):
    """One-dimensional discrete Fourier transform, as `numpy.fft.fft`: `x` is
    zero-padded or cropped to `n` points along `axis`.

    >>> import tessera as ts
    >>> ts.fft.fft(ts.asarray([1.0, 2.0]), n=4).shape
    (4,)
    """
    norm = check_norm("fft", norm)
    x = prepare("fft", x)
    axes, s = _one_axis("fft", x, n, axis)
    return c2c("fft", x, s, axes, norm, False)


def ifft(x, /, *, n=None, axis=-1, norm="backward"):
    """Inverse of `fft`, as `numpy.fft.ifft` (scaled by 1/n with norm="backward")."""
    norm = check_norm("ifft", norm)
    x = prepare("ifft", x)
    axes, s = _one_axis("ifft", x, n, axis)
    return c2c("ifft", x, s, axes, norm, True)


def fftn(x, /, *, s=None, axes=None, norm="backward"):
    """N-dimensional DFT over `axes` (all by default), as `numpy.fft.fftn`.

    >>> import tessera as ts
    >>> float(ts.real(ts.fft.fftn(ts.ones((2, 3))))[0, 0])
    6.0
    """
    norm = check_norm("fftn", norm)
    x = prepare("fftn", x)
    axes, s = axes_and_sizes("fftn", x, s, axes)
    return c2c("fftn", x, s, axes, norm, False)


def ifftn(x, /, *, s=None, axes=None, norm="backward"):
    """Inverse of `fftn`, as `numpy.fft.ifftn`."""
    norm = check_norm("ifftn", norm)
    x = prepare("ifftn", x)
    axes, s = axes_and_sizes("ifftn", x, s, axes)
    return c2c("ifftn", x, s, axes, norm, True)


def rfft(x, /, *, n=None, axis=-1, norm="backward"):
    """DFT of real input, keeping the n // 2 + 1 non-negative frequencies, as
    `numpy.fft.rfft`. Complex input is an error (use `fft`).

    >>> import tessera as ts
    >>> ts.abs(ts.fft.rfft(ts.asarray([1.0, 1.0, 1.0, 1.0]))).tolist()
    [4.0, 0.0, 0.0]
    """
    norm = check_norm("rfft", norm)
    x = prepare("rfft", x, real_input=True)
    axes, s = _one_axis("rfft", x, n, axis)
    return r2c("rfft", x, s, axes, norm)


def irfft(x, /, *, n=None, axis=-1, norm="backward"):
    """Inverse of `rfft`: real output of `n` points (default 2 * (m - 1) for m input
    points), as `numpy.fft.irfft`. The imaginary parts of the zero-frequency (and,
    for even n, Nyquist) bins are ignored, as NumPy does; their gradient is 0."""
    norm = check_norm("irfft", norm)
    x = prepare("irfft", x)
    axes, s = _one_axis("irfft", x, n, axis, last_from_half=True)
    return c2r("irfft", x, s, axes, norm)


def rfftn(x, /, *, s=None, axes=None, norm="backward"):
    """N-dimensional DFT of real input, the last of `axes` halved, as
    `numpy.fft.rfftn`."""
    norm = check_norm("rfftn", norm)
    x = prepare("rfftn", x, real_input=True)
    axes, s = axes_and_sizes("rfftn", x, s, axes)
    return r2c("rfftn", x, s, axes, norm)


def irfftn(x, /, *, s=None, axes=None, norm="backward"):
    """Inverse of `rfftn`, as `numpy.fft.irfftn` (the last output size defaults to
    2 * (m - 1))."""
    norm = check_norm("irfftn", norm)
    x = prepare("irfftn", x)
    axes, s = axes_and_sizes("irfftn", x, s, axes, last_from_half=True)
    return c2r("irfftn", x, s, axes, norm)


def hfft(x, /, *, n=None, axis=-1, norm="backward"):
    """DFT of a Hermitian-symmetric signal given by its first half, real output of
    `n` points, as `numpy.fft.hfft`: irfft(conj(x)) with the dual normalization
    (written that way, so its gradient is the composite's)."""
    from ..ops.complex import conj
    norm = check_norm("hfft", norm)
    x = prepare("hfft", x)
    axes, s = _one_axis("hfft", x, n, axis, last_from_half=True)
    return c2r("hfft", conj(x), s, axes, _core._DUAL[norm])


def ihfft(x, /, *, n=None, axis=-1, norm="backward"):
    """Inverse of `hfft` for real input, as `numpy.fft.ihfft`: conj(rfft(x)) with the
    dual normalization."""
    from ..ops.complex import conj
    norm = check_norm("ihfft", norm)
    x = prepare("ihfft", x, real_input=True)
    axes, s = _one_axis("ihfft", x, n, axis)
    return conj(r2c("ihfft", x, s, axes, _core._DUAL[norm]))
