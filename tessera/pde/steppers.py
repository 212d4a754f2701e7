"""Time stepping with adjoint-method gradients through the loop.

`integrate` advances du/dt = A(theta) u + s(t, theta) (+ rhs(u, t, theta)) by
explicit Euler, RK4, implicit Euler or Crank-Nicolson, with A a linear
operator. On the tape the whole loop is one node. Its VJP is the discrete
adjoint: lambda_N = dL/du_N, then lambda_i = (du_{i+1}/du_i)^T lambda_{i+1}
step by step backwards, with the parameter gradient summed on the way (each
step's VJP by autodiff; an implicit step's VJP is one adjoint linear solve).
States are not kept: the forward sweep stores a checkpoint every
`checkpoint_every` steps (default sqrt(n)) and the backward sweep recomputes
one segment at a time, so memory is O(n / c + c) states, not O(n).

>>> import tessera as ts
>>> from tessera import linop, pde
>>> k = ts.asarray(0.5, dtype="fp64", requires_grad=True)
>>> u0 = ts.ones((8,), dtype="fp64")
>>> uT = pde.integrate(u0, 0.01, 20, operator=lambda k: linop.laplacian(8, h=0.2) * k,
...                    params=(k,), method="crank_nicolson")
>>> uT.sum().backward(); k.grad.item() < 0
True
"""
from __future__ import annotations

import math

from ..errors import ShapeError
from ..tensor import Tensor

__all__ = ["integrate", "METHODS", "step"]

METHODS = ("euler", "rk4", "implicit_euler", "crank_nicolson")
_IMPLICIT = ("implicit_euler", "crank_nicolson")


def _f(A, rhs, source, u, t, params):
    out = None
    if A is not None:
        out = A.matvec(u)
    if rhs is not None:
        v = rhs(u, t, *params)
        out = v if out is None else out + v
    if source is not None:
        v = source(t, *params)
        out = v if out is None else out + v
    return out


def step(method, u, t, dt, A=None, rhs=None, source=None, params=(), solver_options=None):
    """One step u(t) -> u(t + dt) in tessera ops (differentiable)."""
    from ..linop import identity, solve
    if method == "euler":
        return u + dt * _f(A, rhs, source, u, t, params)
    if method == "rk4":
        k1 = _f(A, rhs, source, u, t, params)
        k2 = _f(A, rhs, source, u + (0.5 * dt) * k1, t + 0.5 * dt, params)
        k3 = _f(A, rhs, source, u + (0.5 * dt) * k2, t + 0.5 * dt, params)
        k4 = _f(A, rhs, source, u + dt * k3, t + dt, params)
        return u + (dt / 6.0) * (k1 + 2.0 * k2 + 2.0 * k3 + k4)
    opts = {"rtol": 1e-10, "probe": False, **(solver_options or {})}
    I = identity(A.domain_shape)
    if method == "implicit_euler":  # (I - dt A) u' = u + dt s(t + dt)
        b = u if source is None else u + dt * source(t + dt, *params)
        return solve(I - dt * A, b, **opts)
    # Crank-Nicolson: (I - dt/2 A) u' = (I + dt/2 A) u + dt/2 (s(t) + s(t + dt))
    b = u + (0.5 * dt) * A.matvec(u)
    if source is not None:
        b = b + (0.5 * dt) * (source(t, *params) + source(t + dt, *params))
    return solve(I - (0.5 * dt) * A, b, **opts)


def integrate(u0, dt, n_steps, *, operator=None, rhs=None, source=None, params=(),
              method="rk4", t0=0.0, save_every=None, checkpoint_every=None,
              solver_options=None):
    """Integrate du/dt = A u + rhs(u, t, *params) + source(t, *params) from u0 for
    `n_steps` steps of `dt` (as `scipy.integrate.solve_ivp` with a fixed step).

    `operator`: a LinearOperator or a function `params -> LinearOperator` (so it
    may depend on learned tensors); implicit methods need it and no `rhs`.
    Returns u(t0 + n dt), or with `save_every=k` the states after steps k, 2k, ...
    stacked on a new leading axis. Gradients to u0 and `params` by the checkpointed
    discrete adjoint (see the module docstring)."""
    from ..autograd import engine
    from ..autograd.grad_mode import no_grad
    from ..ops.manipulation import stack
    if method not in METHODS:
        raise ValueError(f"[pde.integrate] unknown method {method!r}; accepted: {', '.join(METHODS)}")
    if method in _IMPLICIT and (operator is None or rhs is not None):
        raise ValueError(f"[pde.integrate] {method} needs a linear `operator` and no `rhs` "
                         "(use euler or rk4 for a nonlinear right-hand side)")
    if operator is None and rhs is None:
        raise ValueError("[pde.integrate] give an `operator`, an `rhs`, or both")
    n_steps = int(n_steps)
    if n_steps < 1:
        raise ValueError(f"[pde.integrate] n_steps must be >= 1, got {n_steps}")
    params = tuple(params)
    make = operator if (operator is not None and not hasattr(operator, "matvec")) else \
        (lambda *p: operator)
    if operator is not None:
        A0 = make(*params)
        if A0.domain_shape != tuple(u0.shape) or A0.range_shape != tuple(u0.shape):
            raise ShapeError(f"[pde.integrate] operator {A0!r} maps {A0.domain_shape} -> "
                             f"{A0.range_shape} but the state u0 has shape {u0.shape}")
    every = n_steps if save_every is None else int(save_every)
    saves = list(range(every, n_steps + 1, every))
    C = checkpoint_every or max(1, math.isqrt(n_steps))

    def run(u, i0, i1, Aop, ps, keep=False):
        states = [u] if keep else None
        for i in range(i0, i1):
            u = step(method, u, t0 + i * dt, dt, Aop, rhs, source, ps, solver_options)
            if keep:
                states.append(u)
        return u, states

    checkpoints, outs = {}, []
    with no_grad():
        A = make(*params) if operator is not None else None
        u = u0.detach()
        for i in range(n_steps):
            if i % C == 0:
                checkpoints[i] = u
            u, _ = run(u, i, i + 1, A, params)
            if (i + 1) in saves:
                outs.append(u)
    outs = [o.detach() for o in outs]
    inputs = (u0,) + tuple(p for p in params if type(p) is Tensor)
    if engine.needs_grad(*inputs):
        save_at = {s: j for j, s in enumerate(saves)}

        def vjp(*gs):
            from ..autograd.grad_mode import enable_grad
            leaves = []
            for p in params:
                if type(p) is Tensor:
                    q = p.detach()
                    q.requires_grad = p.requires_grad
                    leaves.append(q)
                else:
                    leaves.append(p)
            lp = tuple(leaves)
            tl = [q for q in lp if type(q) is Tensor and q.requires_grad]
            with enable_grad():
                Aop = make(*lp) if operator is not None else None
            lam = None
            acc = [None] * len(tl)
            for c in sorted(checkpoints, reverse=True):
                e = min(c + C, n_steps)
                with no_grad():
                    _, states = run(checkpoints[c], c, e, Aop, lp, keep=True)
                for i in range(e - 1, c - 1, -1):
                    if (i + 1) in save_at:
                        g = gs[save_at[i + 1]]
                        lam = g if lam is None else lam + g
                    if lam is None:
                        continue
                    ui = states[i - c].detach()
                    ui.requires_grad = True
                    with enable_grad():
                        un = step(method, ui, t0 + i * dt, dt, Aop, rhs, source, lp,
                                  solver_options)
                        res = engine.grad(un, [ui] + tl, grad_outputs=lam, retain_graph=True,
                                          allow_unused=True)
                    res = (res,) if type(res) is Tensor else res
                    lam = res[0].detach() if res[0] is not None else lam * 0.0
                    for j, g in enumerate(res[1:]):
                        if g is not None:
                            acc[j] = g.detach() if acc[j] is None else acc[j] + g.detach()
            it = iter(acc)
            pg = tuple(next(it) if (type(p) is Tensor and p.requires_grad) else None
                       for p in params if type(p) is Tensor)
            return (lam,) + pg
        engine.record("pde.integrate", inputs, tuple(outs), vjp)
    if save_every is None:
        return outs[-1]
    return stack(outs)
