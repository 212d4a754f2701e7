"""`Butterfly`: the FFT's recursive structure with learnable factors.

B_n x = M_n [B_{n/2} x_top ; B'_{n/2} x_bot]: two independent half-size butterflies,
then a level of 2x2 mixings (y0[k] = a[k] top[k] + b[k] bot[k], y1[k] = c[k] top[k] +
d[k] bot[k]) -- the radix-2 decimation-in-time FFT when a = c = 1, b = -d = w^k
(input in bit-reversed order), the Walsh-Hadamard transform when all blocks are
[[1, 1], [1, -1]] / sqrt(2). The adjoint follows from the recursion:
B^H = diag(B^H_{n/2}, B'^H_{n/2}) M^H, each 2x2 block conjugate-transposed.
All levels' factors live in one tensor `factors` of shape (log2 n, 4, n/2); level l
(block size n/2^l) reads it as (4, 2^l, n/2^(l+1)). O(n log n) work per vector.

>>> import numpy as np, tessera as ts
>>> from tessera.recursive import Butterfly, bit_reversal
>>> F = Butterfly(8, init="fft").to_dense().numpy()[:, bit_reversal(8)]
>>> bool(np.allclose(F, np.fft.fft(np.eye(8), axis=0)))
True
"""
from __future__ import annotations

import math

import numpy as np

from ..errors import DTypeError, ShapeError
from ..linop.base import LinearOperator

__all__ = ["Butterfly", "bit_reversal"]


def _ts():
    import tessera
    return tessera


def bit_reversal(n):
    """The bit-reversal permutation of range(n) (n a power of 2), as a NumPy array."""
    L = int(n).bit_length() - 1
    return np.array([int(format(i, f"0{L}b")[::-1], 2) if L else 0 for i in range(n)])


def _init_factors(n, init, rng):
    L, h = int(math.log2(n)), n // 2
    f = np.zeros((L, 4, h), dtype=np.complex128 if init == "fft" else np.float64)
    for lvl in range(L):
        half = n >> (lvl + 1)            # half the block size at this level
        k = np.tile(np.arange(half), 1 << lvl)
        if init == "hadamard":
            f[lvl] = np.array([1.0, 1.0, 1.0, -1.0])[:, None] / math.sqrt(2.0)
        elif init == "identity":
            f[lvl, 0], f[lvl, 3] = 1.0, 1.0
        elif init == "fft":
            w = np.exp(-2j * np.pi * k / (2 * half))
            f[lvl] = np.stack([np.ones(h), w, np.ones(h), -w])
        elif init == "random":           # random rotations: B is orthogonal
            t = rng.uniform(0, 2 * np.pi, h)
            f[lvl] = np.stack([np.cos(t), -np.sin(t), np.sin(t), np.cos(t)])
        else:
            raise ShapeError(f"[Butterfly] init={init!r}; accepted: 'random', 'hadamard', "
                             "'identity', 'fft'")
    return f


class Butterfly(LinearOperator):
    """A learnable butterfly operator on vectors of length n = 2^L (see the module
    docstring); `factors` is a tensor that requires grad, so `B.matvec(x)` trains.
    `apply(x)` maps a batch (..., n) along the last axis.

    init: "random" (orthogonal rotations), "hadamard", "identity" or "fft"
    (complex; B @ x[bit_reversal(n)] = numpy.fft.fft(x))."""

    _tensor_attrs = ("factors",)

    def __init__(self, n, init="random", dtype=None, device=None, seed=0, factors=None):
        ts = _ts()
        if not isinstance(n, int) or n < 2 or n & (n - 1):
            raise ShapeError(f"[Butterfly] n={n!r} must be a power of 2 (>= 2)")
        if factors is None:
            f = _init_factors(n, init, np.random.default_rng(seed))
            dt = dtype or ("complex128" if init == "fft" else "fp32")
            if np.iscomplexobj(f) and not ts.dtypes.get_dtype(dt).kind == "c":
                raise DTypeError(f"[Butterfly] init='fft' needs a complex dtype, got {dt}")
            factors = ts.asarray(f, dtype=dt, device=device, requires_grad=True)
        elif factors.shape != (int(math.log2(n)), 4, n // 2):
            raise ShapeError(f"[Butterfly] factors {factors.shape}: need (log2 n, 4, n/2) = "
                             f"({int(math.log2(n))}, 4, {n // 2})")
        super().__init__((n,), (n,), factors.dtype, name=None)
        self.n, self.levels, self.factors = n, int(math.log2(n)), factors

    def _level(self, x, lvl, adjoint):
        ts = _ts()
        n, lead = self.n, x.shape[:-1]
        nb, h = 1 << lvl, n >> (lvl + 1)
        xr = ts.reshape(x, lead + (nb, 2, h))
        top, bot = xr[..., 0, :], xr[..., 1, :]
        f = ts.reshape(self.factors[lvl], (4, nb, h))
        a, b, c, d = f[0], f[1], f[2], f[3]
        if adjoint:  # the conjugate transpose of each 2x2 block
            cj = ts.conj if x.dtype.kind == "c" or f.dtype.kind == "c" else (lambda v: v)
            a, b, c, d = cj(a), cj(c), cj(b), cj(d)
        y = ts.stack([a * top + b * bot, c * top + d * bot], axis=-2)
        return ts.reshape(y, lead + (n,))

    def apply(self, x, adjoint=False):
        """B x (or B^H x) along the last axis of x (..., n)."""
        if x.shape[-1:] != (self.n,):
            raise ShapeError(f"[Butterfly] input {x.shape}: last dimension must be n={self.n}")
        # the recursion unrolled: its base case (2x2 blocks on adjacent pairs) runs first
        order = range(self.levels) if adjoint else reversed(range(self.levels))
        for lvl in order:
            x = self._level(x, lvl, adjoint)
        return x

    def _matvec(self, x):
        return self.apply(x)

    def _rmatvec(self, y):
        return self.apply(y, adjoint=True)

    def _default_name(self):
        return f"Butterfly({self.n})"
