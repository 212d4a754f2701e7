"""PDE operators assembled from linop built-ins.

>>> import tessera as ts
>>> from tessera import pde
>>> A = pde.diffusion_operator(ts.ones((4,), dtype="fp64"), h=1.0)
>>> (A.to_dense() + 0.0).tolist()
[[-2.0, 1.0, 0.0], [1.0, -2.0, 1.0], [0.0, 1.0, -2.0]]
"""
from __future__ import annotations

from ..linop.base import LinearOperator

__all__ = ["diffusion_operator", "FaceDifference"]


class FaceDifference(LinearOperator):
    """(D u)_f = (u[f] - u[f - 1]) / h from n cells to their n + 1 faces, zero
    outside (Dirichlet); the adjoint is minus the divergence, written by hand
    (a from_function VJP would cost a forward pass more per application)."""

    def __init__(self, n, h):
        super().__init__((n,), (n + 1,), None, "D")
        self.h = h

    def _matvec(self, u):
        from ..ops.manipulation import pad
        up = pad(u, [(1, 1)])
        return (up[1:] - up[:-1]) * (1.0 / self.h)

    def _rmatvec(self, q):
        return (q[:-1] - q[1:]) * (1.0 / self.h)


def diffusion_operator(kappa, h=1.0):
    """u -> d/dx (kappa du/dx) on n cells with zero Dirichlet values outside, as
    -D^T diag(kappa) D with D the difference from the n cells to the n + 1 faces
    (kappa holds one value per face: n + 1 entries). Symmetric and negative
    definite for kappa > 0, declared so for the solvers."""
    from ..linop import diagonal
    D = FaceDifference(kappa.shape[0] - 1, h)
    return (-(D.H @ diagonal(kappa, name="K") @ D)).declare(symmetric=True, definite="neg")
