"""Convolution operators: x -> k * x over every axis of x, in modes "full",
"same" and "valid" (as `scipy.signal.convolve`), applied directly (a sum of
shifted copies in tessera ops: small kernels, gradients for x and k from
autodiff) or through FFTs (large kernels).

FFT path: `fft_conv_full` is irfftn(rfftn(x) rfftn(k)) in `tessera.fft`, so its
gradients in x and k come from tessera.fft's adjoints; the operator's adjoint
is the correlation, a convolution with the flipped kernel, cropped. When
tessera.fft is absent (it was written concurrently, issue 10), a FALLBACK runs
the FFTs on the backend's array module (`numpy.fft` / `cupy.fft`) inside two
ops with hand-written adjoints, `_xp_fft_conv_full` and `_xp_fft_corr` (each
the other's VJP).

>>> import tessera as ts
>>> from tessera import linop
>>> C = linop.convolve(ts.asarray([1.0, 1.0]), (3,), mode="full")
>>> C.matvec(ts.asarray([1.0, 2.0, 3.0])).tolist()
[1.0, 3.0, 5.0, 3.0]
"""
from __future__ import annotations

import itertools

from ..errors import ShapeError
from ..ops._dispatch import apply_op
from .base import LinearOperator, _promote

__all__ = ["Convolution", "convolve", "conv_full_direct", "corr_valid_direct",
           "fft_conv_full", "fft_corr"]


def conv_full_direct(x, k):
    """Full n-D convolution in tessera ops: sum over taps j of k[j] * (x shifted by j)."""
    from ..ops.manipulation import pad
    m = k.shape
    out = None
    for j in itertools.product(*(range(d) for d in m)):
        t = k[j] * pad(x, [(a, d - 1 - a) for a, d in zip(j, m)])
        out = t if out is None else out + t
    return out


def corr_valid_direct(g, k, n):
    """The adjoint of `conv_full_direct` in x: x[i] = sum_j k[j] g[i + j]."""
    out = None
    for j in itertools.product(*(range(d) for d in k.shape)):
        t = k[j] * g[tuple(slice(a, a + d) for a, d in zip(j, n))]
        out = t if out is None else out + t
    return out


def _fft_shapes(a, b):
    return tuple(p + q - 1 for p, q in zip(a, b))


def _tessera_fft():
    try:
        from .. import fft
        return fft
    except ImportError:  # pragma: no cover - tessera.fft is part of the package now
        return None


def fft_conv_full(x, k):
    """Full convolution by FFT: irfftn(rfftn(x) * rfftn(k)) at size n + m - 1."""
    F = _tessera_fft()
    if F is None:
        return _xp_fft_conv_full(x, k)
    s = _fft_shapes(x.shape, k.shape)
    return F.irfftn(F.rfftn(x, s=s) * F.rfftn(k, s=s), s=s)


def fft_corr(g, a, n):
    """out[i] = sum_j a[j] g[i + j] for i < n: the full convolution of g with the
    flipped a, from offset len(a) - 1."""
    if _tessera_fft() is None:
        return _xp_fft_corr(g, a, n)
    from ..ops.movement import flip
    full = fft_conv_full(g, flip(a))
    return full[tuple(slice(m - 1, m - 1 + d) for m, d in zip(a.shape, n))]


def _xp_fft_conv_full(x, k):
    """FALLBACK without tessera.fft: the backend's FFT in one op, hand adjoint."""
    xp = x.device.backend.xp
    s = _fft_shapes(x.shape, k.shape)
    dt = _promote(x.dtype, k.dtype)
    axes = tuple(range(x.ndim))

    def fwd(xb, kb):
        X = xp.fft.rfftn(xb, s, axes=axes)
        K = xp.fft.rfftn(kb, s, axes=axes)
        return xp.fft.irfftn(X * K, s, axes=axes).astype(xb.dtype, copy=False)
    return apply_op("linop.fft_conv", (x, k), fwd, dt, x.device,
                    lambda g: (_xp_fft_corr(g, k, x.shape), _xp_fft_corr(g, x, k.shape)))


def _xp_fft_corr(g, a, n):
    """FALLBACK: out[i] = sum_j a[j] g[i + j], i < n (no wrap: len(g) = n + len(a) - 1)."""
    xp = g.device.backend.xp
    s = g.shape
    axes = tuple(range(g.ndim))

    def fwd(gb, ab):
        G = xp.fft.rfftn(gb, s, axes=axes)
        A = xp.fft.rfftn(ab, s, axes=axes)
        full = xp.fft.irfftn(G * xp.conj(A), s, axes=axes)
        return full[tuple(slice(0, d) for d in n)].astype(gb.dtype, copy=False)
    return apply_op("linop.fft_corr", (g, a), fwd, _promote(g.dtype, a.dtype), g.device,
                    lambda w: (_xp_fft_conv_full(w, a), _xp_fft_corr(g, w, a.shape)))


class Convolution(LinearOperator):
    """x -> convolve(x, kernel, mode) over all axes of x (kernel.ndim == x.ndim)."""
    _tensor_attrs = ("k",)

    def __init__(self, k, domain_shape, mode="same", method="direct", name=None):
        n, m = tuple(domain_shape), k.shape
        if len(n) != len(m):
            raise ShapeError(f"[linop.convolve] kernel shape {m} and domain shape {n} have "
                             "different numbers of axes")
        if mode not in ("full", "same", "valid"):
            raise ValueError(f"[linop.convolve] unknown mode {mode!r}; accepted: full, same, valid")
        if method not in ("direct", "fft"):
            raise ValueError(f"[linop.convolve] unknown method {method!r}; accepted: direct, fft")
        if mode == "valid" and any(b > a for a, b in zip(n, m)):
            raise ShapeError(f"[linop.convolve] mode 'valid' needs the kernel {m} to fit in "
                             f"the domain {n}")
        full = _fft_shapes(n, m)
        if mode == "full":
            self.crop = tuple((0, d) for d in full)
        elif mode == "same":
            self.crop = tuple(((b - 1) // 2, (b - 1) // 2 + a) for a, b in zip(n, m))
        else:
            self.crop = tuple((b - 1, a) for a, b in zip(n, m))
        rng = tuple(hi - lo for lo, hi in self.crop)
        super().__init__(n, rng, k.dtype, name)
        self.k, self.mode, self.method, self.full = k, mode, method, full

    def _matvec(self, x):
        y = fft_conv_full(x, self.k) if self.method == "fft" else conv_full_direct(x, self.k)
        if self.mode == "full":
            return y
        return y[tuple(slice(lo, hi) for lo, hi in self.crop)]

    def _rmatvec(self, y):
        from ..ops.manipulation import pad
        if self.mode != "full":  # the crop's adjoint is zero padding
            y = pad(y, [(lo, f - hi) for (lo, hi), f in zip(self.crop, self.full)])
        if self.method == "fft":
            return fft_corr(y, self.k, self.domain_shape)
        return corr_valid_direct(y, self.k, self.domain_shape)

    def _default_name(self):
        return f"Conv{self.k.shape}[{self.mode}, {self.method}]"


def convolve(kernel, domain_shape, mode="same", method="direct", name=None):
    """The convolution operator x -> scipy.signal.convolve(x, kernel, mode) for x of
    `domain_shape`; `method="fft"` for large kernels."""
    from .builtins import _tensor
    ds = (domain_shape,) if isinstance(domain_shape, int) else tuple(domain_shape)
    return Convolution(_tensor("linop.convolve", kernel), ds, mode, method, name)
