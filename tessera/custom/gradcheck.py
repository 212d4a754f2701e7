"""`op.gradcheck(my_op, *args)`: check an operator's adjoint (VJP) two ways and say
which input disagrees.

1. Finite differences, per input: for a random cotangent u, the adjoint's
   gradient of <u, f(x)> with respect to input i is compared with central
   differences of <u, f(x)> — every element for small inputs (at most
   `max_elements`), along `directions` random directions for larger ones.
2. The dot-product test: for random u and v (all inputs at once),
   <u, J v> (J v by central differences) must equal <J^T u, v> (the adjoint);
   the adjoint must also be linear in u: J^T(u1 + 2 u2) = J^T u1 + 2 J^T u2.

Runs in fp64 when the op accepts it (inputs are cast; an op whose signature pins
another dtype runs in that dtype, with step and tolerances to match).

    >>> import tessera as ts
    >>> from tessera import op
    >>> cube = op.custom("doc_cube", lambda x: x * x * x, replace=True)
    >>> op.gradcheck(cube, ts.asarray([0.5, -1.0, 2.0])).ok
    True
"""
from __future__ import annotations

import numpy as np

from ..errors import GradError
from ..tensor import Tensor

# (step, rtol, atol) per dtype of the run
_STEPS = {"fp64": (1e-6, 1e-5, 1e-8), "fp32": (1e-2, 2e-2, 1e-3),
          "fp16": (1e-1, 1e-1, 1e-1), "bf16": (1e-1, 2e-1, 2e-1)}


class GradcheckReport:
    """`ok`, and per input `inputs[i]` = {"max_error", "where", "checked"};
    `dot` = (lhs, rhs) of the dot-product test; `linear` = its max error."""

    def __init__(self):
        self.ok, self.inputs, self.dot, self.linear, self.problems = True, {}, None, 0.0, []

    def __bool__(self):
        return self.ok

    def __repr__(self):
        return f"GradcheckReport(ok={self.ok}, problems={self.problems})"


def _np(t):
    return np.asarray(t.numpy(), dtype=np.float64)


def gradcheck(fn, *args, seed=0, max_elements=64, directions=3, rtol=None, atol=None,
              raise_on_failure=True, **attrs):
    """Check `fn`'s adjoint at `args` (see the module docstring). Returns a
    GradcheckReport; raises GradError naming the input that disagrees unless
    `raise_on_failure=False`. Keyword arguments go to `fn` as attributes."""
    import tessera as ts
    from ..autograd.functional import vjp
    name = getattr(fn, "name", getattr(fn, "__name__", "fn"))
    sig = getattr(fn, "signature", None)
    xs = [a if type(a) is Tensor else ts.asarray(a) for a in args]
    run_dt = []
    for i, x in enumerate(xs):
        pinned = sig.inputs[i].dtype if sig is not None and i < len(sig.inputs) else None
        if x.dtype.kind == "f":
            dt = pinned or "fp64"
            xs[i] = x.detach().astype(dt)
            run_dt.append(dt)
    if not run_dt:
        raise GradError(f"[gradcheck] {name}: no floating-point input to check")
    worst = max(run_dt, key=lambda d: _STEPS.get(d, _STEPS["bf16"])[0])
    eps, rt, at = _STEPS.get(worst, _STEPS["bf16"])
    rt, at = rtol or rt, atol or at
    diff = [i for i, x in enumerate(xs) if x.dtype.kind == "f"]
    rng = np.random.default_rng(seed)

    def f_at(vals):
        full = list(xs)
        for i, v in zip(diff, vals):
            full[i] = ts.asarray(v, dtype=xs[i].dtype, device=xs[i].device)
        with ts.no_grad():
            return _np(fn(*full, **attrs))

    base = [_np(xs[i]) for i in diff]
    out0, pull = vjp(lambda *d: fn(*_merge(xs, diff, d), **attrs), *[xs[i] for i in diff])
    u = rng.standard_normal(out0.shape)
    ut = ts.asarray(u, dtype=out0.dtype, device=out0.device)

    def adjoint(cot):
        return [None if g is None else _np(g) for g in pull(cot)]
    g_u = adjoint(ut)
    rep = GradcheckReport()

    def phi(vals):
        return float(np.sum(u * f_at(vals)))

    # 1. finite differences, input by input
    for k, i in enumerate(diff):
        x0, ga = base[k], g_u[k] if g_u[k] is not None else np.zeros_like(base[k])
        dirs = ([np.eye(x0.size)[j].reshape(x0.shape) for j in range(x0.size)]
                if x0.size <= max_elements else
                [rng.standard_normal(x0.shape) for _ in range(directions)])
        worst_err, where = 0.0, None
        for j, d in enumerate(dirs):
            plus = [b + eps * d if kk == k else b for kk, b in enumerate(base)]
            minus = [b - eps * d if kk == k else b for kk, b in enumerate(base)]
            fd = (phi(plus) - phi(minus)) / (2 * eps)
            an = float(np.sum(ga * d))
            err = abs(fd - an)
            if err > at + rt * max(abs(fd), abs(an)) and err > worst_err:
                worst_err = err
                where = (np.unravel_index(j, x0.shape) if x0.size <= max_elements else f"direction {j}",
                         an, fd)
        rep.inputs[i] = {"max_error": worst_err, "where": where, "checked": len(dirs)}
        if where is not None:
            loc, an, fd = where
            rep.problems.append(f"input {i} (shape {tuple(x0.shape)}): the adjoint gives {an:.6g} "
                                f"at {loc}, finite differences {fd:.6g}")
    # 2. the dot-product test and linearity in the cotangent
    v = [rng.standard_normal(b.shape) for b in base]
    jv = (phi([b + eps * d for b, d in zip(base, v)]) - phi([b - eps * d for b, d in zip(base, v)])) / (2 * eps)
    jtu = sum(float(np.sum(g * d)) for g, d in zip(g_u, v) if g is not None)
    rep.dot = (jv, jtu)
    if abs(jv - jtu) > at + rt * max(abs(jv), abs(jtu)):
        rep.problems.append(f"dot-product test: <u, J v> = {jv:.6g} by finite differences but "
                            f"<J^T u, v> = {jtu:.6g} by the adjoint")
    u2 = ts.asarray(rng.standard_normal(out0.shape), dtype=out0.dtype, device=out0.device)
    g2, g12 = adjoint(u2), adjoint(ut + 2 * u2)
    for k, i in enumerate(diff):
        if g_u[k] is None:
            continue
        lin = float(np.max(np.abs(g12[k] - (g_u[k] + 2 * g2[k])), initial=0.0))
        scale = float(np.max(np.abs(g12[k]), initial=0.0))
        rep.linear = max(rep.linear, lin)
        if lin > at + rt * scale:
            rep.problems.append(f"input {i}: the adjoint is not linear in the cotangent "
                                f"(J^T(u1 + 2 u2) differs from J^T u1 + 2 J^T u2 by {lin:.3g})")
    rep.ok = not rep.problems
    if not rep.ok and raise_on_failure:
        raise GradError(f"[gradcheck] {name}: the adjoint disagrees:\n  " + "\n  ".join(rep.problems))
    return rep


def _merge(xs, diff, d):
    full = list(xs)
    for i, v in zip(diff, d):
        full[i] = v
    return full
