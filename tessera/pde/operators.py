"""PDE operators assembled from linop built-ins.

>>> import tessera as ts
>>> from tessera import pde
>>> A = pde.diffusion_operator(ts.ones((4,), dtype="fp64"), h=1.0)
>>> A.to_dense().tolist()
[[-2.0, 1.0, 0.0], [1.0, -2.0, 1.0], [0.0, 1.0, -2.0]]
"""
from __future__ import annotations

__all__ = ["diffusion_operator"]


def diffusion_operator(kappa, h=1.0):
    """u -> d/dx (kappa du/dx) on n cells with zero Dirichlet values outside, as
    -D^T diag(kappa) D with D the difference from the n cells to the n + 1 faces
    (kappa holds one value per face: n + 1 entries). Symmetric and negative
    definite for kappa > 0, declared so for the solvers."""
    from ..linop import diagonal, from_function
    from ..ops.manipulation import pad
    n = kappa.shape[0] - 1

    def grad_faces(u):  # n cells -> n + 1 faces, zero outside
        up = pad(u, [(1, 1)])
        return (up[1:] - up[:-1]) * (1.0 / h)
    D = from_function(grad_faces, (n,), (n + 1,), name="D")
    return (-(D.H @ diagonal(kappa, name="K") @ D)).declare(symmetric=True, definite="neg")
