"""Differentiable linear solvers: `cg`, `minres`, `gmres`, `lsqr` and `solve`.

Each returns `(x, info)` as SciPy's do (`info` a `SolveInfo`: converged,
iterations, residual norm, why it stopped, SciPy's integer code). A solver
that does not converge warns (`ConvergenceWarning`), or raises
`ConvergenceError` with `check=True`; a NaN residual raises `NumericsError`
under `check_numerics`.

Gradients through the solution use implicit differentiation, never the
unrolled iterations: for A(theta) x = b, the VJP of a cotangent g is one
adjoint solve A^H lam = g, then d/db = lam and d/dtheta = -<lam, dA/dtheta x>
(the VJP of theta -> A(theta) x, taken by autodiff on a copy of the operator
whose tensors are fresh leaves). Memory does not depend on the iteration count.

>>> import tessera as ts
>>> from tessera import linop
>>> A = linop.aslinearoperator(ts.asarray([[4.0, 1.0], [1.0, 3.0]], dtype="fp64"),
...                            symmetric=True, definite="pos")
>>> b = ts.asarray([1.0, 2.0], dtype="fp64", requires_grad=True)
>>> x, info = linop.cg(A, b, rtol=1e-12)
>>> info.converged, [round(v, 6) for v in x.tolist()]
(True, [0.090909, 0.636364])
>>> x.sum().backward(); [round(v, 6) for v in b.grad.tolist()]
[0.181818, 0.272727]
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

from ..errors import DTypeError, ShapeError, TesseraError
from ..tensor import Tensor, _new
from . import krylov
from .base import LinearOperator, PropertyError, _prod, adjoint, shape_str

__all__ = ["cg", "minres", "gmres", "lsqr", "solve", "SolveInfo", "ConvergenceWarning",
           "ConvergenceError"]


class ConvergenceWarning(UserWarning):
    """An iterative solver stopped before reaching its tolerance."""


class ConvergenceError(TesseraError, RuntimeError):
    """An iterative solver did not converge and `check=True` was asked."""


@dataclass
class SolveInfo:
    converged: bool
    iterations: int
    residual_norm: float
    reason: str
    method: str
    code: int  # SciPy's info: 0 converged, > 0 iterations used without converging, < 0 breakdown

    def __int__(self):
        return self.code


# ---------------------------------------------------------------------------
def _operator(op, A):
    from .builtins import aslinearoperator
    if not isinstance(A, LinearOperator):
        A = aslinearoperator(A)
    return A


def _rhs(op, A, b):
    from ..ops._dispatch import to_tensor
    b = to_tensor(op, b, device=A.device)
    if not b.dtype.is_differentiable:
        raise DTypeError(f"[{op}] right-hand side must be floating, got {b.dtype.name}")
    if b.shape != A.range_shape:
        if b.size != A.shape[0]:
            raise ShapeError(f"[{op}] operator {A!r} maps {shape_str(A)} but the right-hand "
                             f"side has shape {b.shape}")
        b = b.reshape(A.range_shape)
    return b


def _buffer_fn(f, shape, dtype, device):
    """A flat-buffer -> flat-buffer function from a tensor -> tensor one."""
    def mv(v):
        return f(_new(v.reshape(shape), shape, dtype, device)).data.reshape(-1)
    return mv


def _prec_fn(M, shape, dtype, device):
    if M is None:
        return None
    f = M.matvec if isinstance(M, LinearOperator) else M

    def g(t):
        y = f(t).reshape(shape)
        return y if y.dtype is dtype else y.astype(dtype)
    return _buffer_fn(g, shape, dtype, device)


def _finish(op, x, k, rn, code, reason, check):
    info = SolveInfo(code == 0, k, float(rn), reason, op, code)
    if code != 0:
        msg = f"[{op}] did not converge: {reason} (iterations {k}, residual norm {rn:.3e})"
        if check:
            raise ConvergenceError(msg)
        warnings.warn(msg, ConvergenceWarning, stacklevel=3)
    return info


def _run(op, A, b, x0, tol_of, loop, M, callback, adjoint_op=False):
    """Run `loop(xp, mv, b, x, tol, prec, cb)` on A's buffers without recording."""
    from ..autograd.grad_mode import no_grad
    dt, dev = b.dtype, b.device
    xp = dev.backend.xp
    dom = A.range_shape if adjoint_op else A.domain_shape
    with no_grad():
        f = A._rmatvec if adjoint_op else A._matvec
        mv = _buffer_fn(lambda t: f(t).reshape(-1), dom, dt, dev)
        bb = b.detach().data.reshape(-1).astype(xp.float64 if dt.name == "fp64" else
                                                 b.data.dtype, copy=True)
        if x0 is None:
            x = xp.zeros(_prod(dom), dtype=bb.dtype)
        else:
            x = x0.detach().data.reshape(-1).astype(bb.dtype, copy=True)
        prec = _prec_fn(M, dom, dt, dev)
        cb = None
        if callback is not None:
            def cb(xb, k):
                callback(_new(xb.reshape(dom), dom, dt, dev))
        bnorm = float(xp.linalg.norm(bb))
        out = loop(xp, mv, bb, x, tol_of(bnorm), prec, cb)
    x, rest = out[0], out[1:]
    return _new(x.reshape(dom), dom, dt, dev), rest


def _param_grads(A, x, lam, extra=None):
    """-d/dtheta <lam, A(theta) x> for every tensor of A that requires grad (plus,
    for LSQR, the extra terms): autodiff on a copy of A with fresh leaves."""
    from ..autograd.engine import grad as _grad
    from ..autograd.grad_mode import enable_grad
    from ..ops.reduce import sum as _sum
    params = [t for t in A.tensors() if t.requires_grad]
    if not params:
        return []
    leaves = {}
    for t in params:
        leaf = t.detach()
        leaf.requires_grad = True
        leaves[id(t)] = leaf
    A2 = A.map_tensors(lambda t: leaves.get(id(t), t))
    with enable_grad():
        s = extra(A2) if extra is not None else -_sum(A2._matvec(x) * lam)
        gs = _grad(s, [leaves[id(t)] for t in params], allow_unused=True)
    if isinstance(gs, Tensor):
        gs = (gs,)
    return [g for g in gs]


def _attach(op, A, b, x, adjoint_solve, extra_grad=None):
    """Put the solve on the tape: inputs b and A's tensors, VJP by an adjoint solve."""
    from ..autograd.engine import needs_grad, record
    params = [t for t in A.tensors() if t.requires_grad]
    if not needs_grad(b, *params):
        return x
    xs = x.detach()

    def vjp(g):
        lam = adjoint_solve(g)
        if extra_grad is not None:
            gb, pg = extra_grad(lam, xs)
        else:
            gb = lam.reshape(A.range_shape)
            pg = _param_grads(A, xs, lam.reshape(A.range_shape))
        return (gb,) + tuple(pg)
    out = _new(x.data, x.shape, x.dtype, x.device)
    record(f"linop.{op}", (b, *params), out, vjp, saved=(xs,))
    return out


def _square(op, A):
    if A.shape[0] != A.shape[1]:
        raise ShapeError(f"[{op}] needs a square operator; {A!r} maps {shape_str(A)} "
                         "(use linop.lsqr for least squares)")


def _tol(rtol, atol):
    return lambda bnorm: max(rtol * bnorm, atol)


def _krylov(op, loop, A, b, x0, rtol, atol, maxiter, M, callback, check, adjoint_self):
    A = _operator(op, A)
    _square(op, A)
    b = _rhs(op, A, b)
    n = A.shape[0]
    maxiter = 10 * n if maxiter is None else int(maxiter)

    def go(rhs, adj):
        return _run(op, A, rhs, x0 if not adj else None, _tol(rtol, atol),
                    lambda xp, mv, bb, x, tol, prec, cb: loop(xp, mv, bb, x, tol, maxiter,
                                                             prec, cb),
                    M if not adj else (adjoint(M) if isinstance(M, LinearOperator) else M),
                    callback if not adj else None, adjoint_op=adj and not adjoint_self)
    x, (k, rn, code, reason) = go(b, False)
    info = _finish(op, x, k, rn, code, reason, check)

    def adjoint_solve(g):
        lam, (k2, rn2, code2, reason2) = go(g.reshape(A.domain_shape), True)
        _finish(op + " (adjoint solve)", lam, k2, rn2, code2, reason2, check)
        return lam
    return _attach(op, A, b, x, adjoint_solve), info


def cg(A, b, x0=None, *, rtol=1e-5, atol=0.0, maxiter=None, M=None, callback=None,
       check=False):
    """Conjugate gradients for a symmetric (positive or negative) definite A, as
    `scipy.sparse.linalg.cg`: stops when ||b - A x|| <= max(rtol ||b||, atol).
    `M` approximates A^{-1} (an operator or a function); `callback(xk)` runs
    after each iteration. Returns (x, SolveInfo); differentiable in b and in
    A's tensors by one adjoint CG solve."""
    return _krylov("cg", krylov.cg, A, b, x0, rtol, atol, maxiter, M, callback, check, True)


def minres(A, b, x0=None, *, rtol=1e-5, atol=0.0, maxiter=None, M=None, callback=None,
           check=False):
    """MINRES for a symmetric (possibly indefinite) A, as
    `scipy.sparse.linalg.minres` (`M` symmetric positive definite). Returns
    (x, SolveInfo); differentiable by one adjoint MINRES solve."""
    return _krylov("minres", krylov.minres, A, b, x0, rtol, atol, maxiter, M, callback, check,
                   True)


def gmres(A, b, x0=None, *, rtol=1e-5, atol=0.0, restart=20, maxiter=None, M=None,
          callback=None, check=False):
    """Restarted GMRES for a general square A, right-preconditioned by `M`;
    `maxiter` counts inner iterations (SciPy counts restart cycles). Returns
    (x, SolveInfo); differentiable by one adjoint GMRES solve with A^H."""
    def loop(xp, mv, bb, x, tol, mx, prec, cb):
        return krylov.gmres(xp, mv, bb, x, tol, mx, prec, cb, restart=restart)
    return _krylov("gmres", loop, A, b, x0, rtol, atol, maxiter, M, callback, check, False)


def lsqr(A, b, x0=None, *, damp=0.0, atol=1e-8, btol=1e-8, maxiter=None, M=None,
         callback=None, check=False):
    """LSQR: min ||A x - b||^2 + damp^2 ||x||^2 for any A (as
    `scipy.sparse.linalg.lsqr`); `M` is a right preconditioner (x = M y).
    Returns (x, SolveInfo). Differentiable: the adjoint solves the normal
    equations (A^H A + damp^2 I) lam = g by CG (A must have full column rank)."""
    op = "lsqr"
    A = _operator(op, A)
    if M is not None and not isinstance(M, LinearOperator):
        from .builtins import from_function
        M = from_function(lambda v: M(v), A.domain_shape, A.domain_shape)
    Aeff = A if M is None else A @ M
    b = _rhs(op, A, b)
    maxiter = 2 * A.shape[1] + 10 if maxiter is None else int(maxiter)
    from ..autograd.grad_mode import no_grad
    dt, dev = b.dtype, b.device
    with no_grad():
        rmv = _buffer_fn(lambda t: Aeff._rmatvec(t).reshape(-1), Aeff.range_shape, dt, dev)

    def loop(xp, mv, bb, x, tol, prec, cb):
        return krylov.lsqr(xp, mv, rmv, bb, x, atol, btol, maxiter, damp, cb)
    y, (k, rn, code, reason) = _run(op, Aeff, b, None if M is not None else x0,
                                    lambda bn: 0.0, loop, None, callback)
    x = y if M is None else M.matvec(y)
    info = _finish(op, x, k, rn, code, reason, check)

    def adjoint_solve(g):
        from .builtins import identity
        N = A.H @ A
        if damp:
            N = N + damp * damp * identity(A.domain_shape)
        lam, inf2 = cg(N, g.reshape(A.domain_shape).detach(), rtol=min(btol, 1e-8) * 1e-2,
                       atol=0.0)
        return lam

    def extra_grad(lam, xs):
        from ..autograd.grad_mode import no_grad as _ng
        from ..ops.reduce import sum as _sum
        with _ng():
            Alam = A._matvec(lam).detach()
            r = (b.detach() - A._matvec(xs)).detach()

        def terms(A2):
            return _sum(A2._matvec(lam) * r) - _sum(A2._matvec(xs) * Alam)
        return Alam, _param_grads(A, xs, None, extra=terms)
    return _attach(op, A, b, x, adjoint_solve, extra_grad), info


def solve(A, b, x0=None, *, method=None, rtol=1e-8, atol=0.0, maxiter=None, M=None,
          check=True, probe=True, **kw):
    """Solve A x = b (least squares when A is not square), differentiably,
    picking the method from A's declared properties as lineax's `linear_solve`:
    symmetric definite -> cg, symmetric -> minres, square -> gmres, else lsqr.
    A declared symmetric operator is probed first (`probe=False` skips it).
    Returns x only; raises `ConvergenceError` when it does not converge
    (`check=False` warns instead)."""
    A = _operator("solve", A)
    if method is None:
        if not A.is_square:
            method = "lsqr"
        elif A.symmetric:
            method = "cg" if A.definite in ("pos", "neg") else "minres"
        else:
            method = "gmres"
    if probe and A.symmetric and method in ("cg", "minres"):
        from .dottest import check_symmetric
        try:
            check_symmetric(A)
        except PropertyError as e:
            raise PropertyError(f"[solve] {A!r} is declared symmetric, so {method} was "
                                f"picked, but: {e}") from None
    if method == "lsqr":
        x, _ = lsqr(A, b, x0, atol=rtol, btol=rtol, maxiter=maxiter, check=check, **kw)
        return x
    fns = {"cg": cg, "minres": minres, "gmres": gmres}
    if method not in fns:
        raise ValueError(f"[solve] unknown method {method!r}; accepted: cg, minres, gmres, lsqr")
    x, _ = fns[method](A, b, x0, rtol=rtol, atol=atol, maxiter=maxiter, M=M, check=check, **kw)
    return x
