"""Fourier layers of a Fourier Neural Operator (Li et al. 2021): `SpectralConv1d`,
`SpectralConv2d`, `SpectralConv3d`, and `spectral_conv`, the functional form.

y = irfftn( W . rfftn(x) ) over the spatial axes, where only the lowest `modes`
frequencies are kept and multiplied by complex weights mixing the channels
(W[i, o, k] per kept mode k); every other mode of y is 0. Along the last spatial
axis (the one rfftn halves) modes 0..m-1 are kept; along each other spatial axis
both ends of the spectrum, 0..m-1 and n-m..n-1 (positive and negative
frequencies), each end with its own weights (2^(d-1) corners).

The complex weights are stored as real and imaginary parts (real parameters, so
every optimizer applies unchanged); `weight(c)` returns corner c as a complex tensor.

>>> import tessera as ts
>>> conv = ts.nn.SpectralConv1d(2, 3, modes=4)
>>> conv(ts.ones((5, 2, 16))).shape
(5, 3, 16)
"""
from __future__ import annotations

import itertools

from ..errors import ShapeError
from .module import Module, Parameter

__all__ = ["SpectralConv1d", "SpectralConv2d", "SpectralConv3d", "spectral_conv"]


def _ts():
    import tessera
    return tessera


def _corners(d):
    """Low (0) / high (1) end of the spectrum on each of the first d-1 spatial axes."""
    return list(itertools.product((0, 1), repeat=d - 1))


def _check(op, x, weights, modes):
    d = len(modes)
    if x.ndim != d + 2:
        raise ShapeError(f"[{op}] input {x.shape}: expected (batch, channels) + {d} spatial axes")
    cin = weights[0].shape[0]
    if x.shape[1] != cin:
        raise ShapeError(f"[{op}] input {x.shape} has {x.shape[1]} channels; the weights take {cin}")
    sp = x.shape[2:]
    for ax, (n, m) in enumerate(zip(sp, modes)):
        limit = n // 2 + 1 if ax == d - 1 else n // 2
        if m > limit:
            raise ShapeError(f"[{op}] modes {tuple(modes)} too many for spatial shape {sp}: axis "
                             f"{ax} of size {n} holds at most {limit} "
                             f"{'rfft' if ax == d - 1 else 'positive (and as many negative)'} modes")


def spectral_conv(x, weights, modes, norm="backward"):
    """The Fourier layer: x (B, Cin, *spatial) real, `weights` a list of complex
    tensors (Cin, Cout, *modes), one per corner of `_corners(d)` order, `modes` the
    kept modes per spatial axis. Reference: numpy.fft.rfftn / irfftn with the
    same truncation."""
    ts = _ts()
    d = len(modes)
    _check("spectral_conv", x, weights, modes)
    sp = x.shape[2:]
    axes = tuple(range(2, 2 + d))
    X = ts.fft.rfftn(x, axes=axes, norm=norm)
    letters = "xyz"[:d]
    eq = f"bi{letters},io{letters}->bo{letters}"
    blocks = {}
    for c, W in zip(_corners(d), weights):
        key = [slice(None), slice(None)]
        for ax in range(d - 1):
            m, n = modes[ax], sp[ax]
            key.append(slice(0, m) if c[ax] == 0 else slice(n - m, n))
        key.append(slice(0, modes[-1]))
        blocks[c] = ts.einsum(eq, X[tuple(key)], W)
    return ts.fft.irfftn(_assemble(blocks, modes, sp, d), s=sp, axes=axes, norm=norm)


def _assemble(blocks, modes, sp, d):
    """Put the corner blocks into a zero spectrum of shape (B, Cout, *sp[:-1],
    sp[-1]//2+1), one axis at a time (concatenations, so autodiff just slices)."""
    ts = _ts()

    def rec(prefix, ax):
        if ax == d - 1:
            b = blocks[prefix]
            pad = [(0, 0)] * (b.ndim - 1) + [(0, sp[-1] // 2 + 1 - modes[-1])]
            return ts.pad(b, pad)
        lo, hi = rec(prefix + (0,), ax + 1), rec(prefix + (1,), ax + 1)
        gap = sp[ax] - 2 * modes[ax]
        parts = [lo]
        if gap:
            zshape = list(lo.shape)
            zshape[2 + ax] = gap
            parts.append(ts.zeros(tuple(zshape), dtype=lo.dtype, device=lo.device))
        return ts.concat(parts + [hi], axis=2 + ax)
    return rec((), 0)


class _SpectralConv(Module):
    d = 0

    def __init__(self, in_channels, out_channels, modes, dtype="fp32", device=None, generator=None):
        super().__init__()
        modes = (modes,) * self.d if isinstance(modes, int) else tuple(modes)
        if len(modes) != self.d or any(m < 1 for m in modes):
            raise ShapeError(f"[{type(self).__name__}] modes {modes}: need {self.d} positive integers")
        self.in_channels, self.out_channels, self.modes = in_channels, out_channels, modes
        if generator is None:
            from ..random import default_generator
            generator = default_generator(device)
        # FNO's initialisation: uniform [0, 1) / (Cin * Cout), real and imaginary parts
        scale = 1.0 / (in_channels * out_channels)
        shape = (len(_corners(self.d)), 2, in_channels, out_channels) + modes
        self.weight_parts = Parameter((generator.uniform(shape, 0.0, 1.0, dtype=dtype) * scale).to(device))

    def weight(self, c):
        """Corner c's complex weights (Cin, Cout, *modes)."""
        w = self.weight_parts[c]
        return _ts().make_complex(w[0], w[1])

    def forward(self, x):
        ws = [self.weight(c) for c in range(len(_corners(self.d)))]
        if x.shape[1:2] != (self.in_channels,):
            raise ShapeError(f"[{type(self).__name__}] input {x.shape}: expected (batch, "
                             f"{self.in_channels}) + {self.d} spatial axes")
        return spectral_conv(x, ws, self.modes)

    def extra_repr(self):
        return f"{self.in_channels}, {self.out_channels}, modes={self.modes}"


class SpectralConv1d(_SpectralConv):
    """Fourier layer on (B, Cin, n) -> (B, Cout, n), keeping `modes` rfft modes."""
    d = 1


class SpectralConv2d(_SpectralConv):
    """Fourier layer on (B, Cin, n1, n2) -> (B, Cout, n1, n2); modes=(m1, m2)."""
    d = 2


class SpectralConv3d(_SpectralConv):
    """Fourier layer on (B, Cin, n1, n2, n3) -> (B, Cout, n1, n2, n3)."""
    d = 3

