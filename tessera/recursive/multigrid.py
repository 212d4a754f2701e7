"""`MultigridPreconditioner`: a geometric multigrid V-cycle for the Dirichlet
Poisson operator A = -laplacian(shape, h), defined by recursion on the grid:

    V_l(r) = S^T-smooth( x + P V_{l+1}(R (r - A_l x)) ),  x = S-smooth(0, r)

with weighted-Jacobi smoothing (omega, `steps` sweeps before and after), linear
interpolation P and full-weighting restriction R = P^T / 2^d, the coarse
operator rediscretized with spacing 2h, and an exact dense solve on the coarsest
grid. Grids have 2^L - 1 interior points per axis. Pre- and post-smoothing are
each other's adjoints and R is a multiple of P^T, so the V-cycle is symmetric
positive definite: its adjoint is the same recursion read backwards, and it is a
valid `M=` for `linop.cg`. `omega` is a tensor, so it can be tuned by autodiff.

>>> import tessera as ts
>>> from tessera import linop, recursive
>>> A = -linop.laplacian((31, 31), h=1 / 32)
>>> M = recursive.MultigridPreconditioner((31, 31), h=1 / 32)
>>> b = ts.ones((31, 31), dtype="fp64")
>>> x, info = linop.cg(A, b, M=M, rtol=1e-8)
>>> info.converged and info.iterations < 12
True
"""
from __future__ import annotations

import numpy as np

from ..errors import ShapeError
from ..linop.base import LinearOperator

__all__ = ["MultigridPreconditioner", "prolong", "restrict"]


def _ts():
    import tessera
    return tessera


def _last(x, ax):
    return _ts().moveaxis(x, ax, -1)


def prolong(c, axes=None):
    """Linear interpolation from a grid of m to 2m + 1 interior points along each
    of `axes` (default all), zero Dirichlet boundary values."""
    ts = _ts()
    axes = range(c.ndim) if axes is None else axes
    for ax in axes:
        v = _last(c, ax)
        m, lead = v.shape[-1], v.shape[:-1]
        z = ts.zeros(lead + (1,), dtype=v.dtype, device=v.device)
        vp = ts.concat([z, v, z], axis=-1)                       # boundaries are 0
        even = 0.5 * (vp[..., :-1] + vp[..., 1:])                 # m + 1 midpoints
        inter = ts.reshape(ts.stack([even[..., :m], v], axis=-1), lead + (2 * m,))
        c = ts.moveaxis(ts.concat([inter, even[..., m:]], axis=-1), -1, ax)
    return c


def restrict(f, axes=None):
    """Full weighting (1/4, 1/2, 1/4) from 2m + 1 to m points along each axis:
    P^T / 2 per axis, so the V-cycle stays symmetric."""
    axes = range(f.ndim) if axes is None else axes
    for ax in axes:
        v = _last(f, ax)
        v = 0.25 * v[..., 0:-2:2] + 0.5 * v[..., 1:-1:2] + 0.25 * v[..., 2::2]
        f = _ts().moveaxis(v, -1, ax)
    return f


class MultigridPreconditioner(LinearOperator):
    """An approximate inverse of -laplacian(shape, h) (Dirichlet) by one V-cycle.

    shape: 1-3 axes of 2^L - 1 points; levels: how many grids (default: down to
    at most 3 points per axis); steps: Jacobi sweeps before and after the
    coarse correction; omega: the Jacobi weight (default 2/3 in 1-D, 4/5 in 2-D,
    6/7 in 3-D: the smoothing-optimal weights)."""

    _tensor_attrs = ("omega",)

    def __init__(self, shape, h=1.0, levels=None, steps=2, omega=None, dtype="fp64", device=None):
        ts = _ts()
        from ..linop.stencils import Laplacian
        shape = (shape,) if isinstance(shape, int) else tuple(shape)
        for d in shape:
            if d < 1 or (d + 1) & d:
                raise ShapeError(f"[MultigridPreconditioner] grid {shape}: every axis needs "
                                 "2^L - 1 points (1, 3, 7, 15, 31, ...)")
        max_levels = min(d + 1 for d in shape).bit_length() - 1
        levels = max(1, max_levels - 1) if levels is None else levels
        if not 1 <= levels <= max_levels:
            raise ShapeError(f"[MultigridPreconditioner] levels={levels} for grid {shape}: "
                             f"accepted 1..{max_levels}")
        self.levels, self.steps = levels, steps
        if omega is None:
            omega = {1: 2 / 3, 2: 4 / 5, 3: 6 / 7}.get(len(shape), 0.8)
        self.omega = omega if isinstance(omega, ts.Tensor) else ts.asarray(float(omega), dtype=dtype,
                                                                           device=device)
        hs = (float(h),) * len(shape)
        self.ops, self.diag = [], []
        for lvl in range(levels):
            s = tuple((d + 1) // (1 << lvl) - 1 for d in shape)
            hl = tuple(v * (1 << lvl) for v in hs)
            self.ops.append(-Laplacian(s, hl))
            self.diag.append(2.0 * sum(1.0 / (v * v) for v in hl))
        Ac = self.ops[-1].to_dense(dtype=dtype, device=device).numpy()
        self.coarse_inv = ts.asarray(np.linalg.inv(Ac), dtype=dtype, device=device)
        self.ops = tuple(self.ops)
        super().__init__(shape, shape, ts.dtypes.get_dtype(dtype), symmetric=True, definite="pos")

    def _smooth(self, x, r, lvl):
        A, w = self.ops[lvl], self.omega / self.diag[lvl]
        for _ in range(self.steps):
            x = x + w * (r - A.matvec(x))
        return x

    def _vcycle(self, r, lvl):
        ts = _ts()
        if lvl == self.levels - 1:   # base case: an exact solve on the coarsest grid
            return ts.reshape(ts.matmul(self.coarse_inv, ts.reshape(r, (-1,))), r.shape)
        x = self._smooth(ts.zeros(r.shape, dtype=r.dtype, device=r.device), r, lvl)
        x = x + prolong(self._vcycle(restrict(r - self.ops[lvl].matvec(x)), lvl + 1))
        return self._smooth(x, r, lvl)

    def _matvec(self, r):
        return self._vcycle(r, 0)

    # the V-cycle is self-adjoint (see the module docstring); dottest checks it
    _rmatvec = _matvec

    def _default_name(self):
        return f"MultigridV({', '.join(map(str, self.domain_shape))}, levels={self.levels})"
