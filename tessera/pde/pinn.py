"""Physics-informed residuals: derivatives of a pointwise model u(x) with
respect to its input coordinates, kept on the tape (create_graph) so that a
loss on the PDE residual can be differentiated again with respect to the
model's weights: grad-of-grad (and of grad) through tessera.autograd.

>>> import tessera as ts
>>> from tessera import pde
>>> x = ts.asarray([[0.5], [1.0]], dtype="fp64")
>>> u, du, d2u = pde.derivatives(lambda x: (x ** 3).sum(axis=1), x)
>>> du[:, 0].tolist(), d2u[:, 0].tolist()
([0.75, 3.0], [3.0, 6.0])
"""
from __future__ import annotations

from ..errors import ShapeError

__all__ = ["derivatives", "laplacian", "residual"]


def derivatives(u_fn, x, order=2):
    """(u, du, d2u) for a model evaluated pointwise on x of shape (N, d): u has
    shape (N,), du[n, i] = du/dx_i and d2u[n, i] = d2u/dx_i^2 at point n (the
    Hessian's diagonal; order=1 returns (u, du)). Because u at point n depends
    only on x[n], each is one VJP of a sum."""
    from ..autograd.engine import grad
    from ..autograd.grad_mode import enable_grad
    from ..ops.manipulation import stack
    if x.ndim != 2:
        raise ShapeError(f"[pde.derivatives] expects points of shape (N, d), got {x.shape}")
    if not x.requires_grad:
        x = x.detach()
        x.requires_grad = True
    with enable_grad():
        u = u_fn(x)
        if u.shape not in ((x.shape[0],), (x.shape[0], 1)):
            raise ShapeError(f"[pde.derivatives] the model must return one value per point, "
                             f"shape ({x.shape[0]},) or ({x.shape[0]}, 1); got {u.shape}")
        u = u.reshape((x.shape[0],))
        du = grad(u.sum(), x, create_graph=True)
        if order == 1:
            return u, du
        d2 = [grad(du[:, i].sum(), x, create_graph=True)[:, i] for i in range(x.shape[1])]
    return u, du, stack(d2, axis=1)


def laplacian(u_fn, x):
    """(u, sum_i d2u/dx_i^2) at the points x (N, d)."""
    u, _, d2u = derivatives(u_fn, x)
    return u, d2u.sum(axis=1)


def residual(u_fn, x, equation):
    """equation(x, u, du, d2u) evaluated with `derivatives`: e.g. for -u'' = f,
    `lambda x, u, du, d2u: -d2u[:, 0] - f(x)`."""
    u, du, d2u = derivatives(u_fn, x)
    return equation(x, u, du, d2u)
