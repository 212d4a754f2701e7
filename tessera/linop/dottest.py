"""The dot-product test (PyLops' `dottest`): for random x and y,
<A x, y> must equal <x, A^H y> up to rounding. It catches a wrong hand-written
adjoint in one line, so every built-in and every combination is held to it.

>>> import tessera as ts
>>> from tessera import linop
>>> r = linop.dottest(linop.first_derivative(16, bc="periodic"))
>>> r.passed, r.rel_error < 1e-12
(True, True)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import NumericsError

__all__ = ["dottest", "DotTestResult", "DOTTEST_TOL", "check_symmetric"]

# Relative tolerance per dtype: inner products of random vectors lose about
# sqrt(n) ulps; these leave room for operators with long sums (FFTs, big stencils).
DOTTEST_TOL = {"fp64": 1e-10, "fp32": 1e-4, "fp16": 2e-2, "bf16": 1e-1,
               "complex128": 1e-10, "complex64": 1e-4}


@dataclass
class DotTestResult:
    passed: bool
    rel_error: float
    tol: float
    lhs: float  # <A x, y>
    rhs: float  # <x, A^H y>

    def __bool__(self):
        return self.passed


def _rand(shape, dtype, device, rng):
    from ..ops.creation import asarray
    return asarray(rng.standard_normal(shape), dtype=dtype, device=device)


def _inner(a, b):
    from ..ops.reduce import sum as _sum
    return float((_sum(a.astype("fp64") * b.astype("fp64"))).item())


def dottest(A, dtype=None, tol=None, seed=0, raise_error=True, device=None, verbose=False):
    """Check <A x, y> == <x, A^H y> on random x (A's domain) and y (its range).
    Returns a `DotTestResult` (truthy when it passed) with the relative error
    |lhs - rhs| / max(|lhs|, |rhs|); with `raise_error`, a failure raises
    `NumericsError` naming the operator and both values."""
    from ..autograd.grad_mode import no_grad
    dt = dtype or (A.dtype.name if A.dtype is not None else "fp64")
    dt = getattr(dt, "name", dt)
    tol = DOTTEST_TOL.get(dt, 1e-4) if tol is None else tol
    rng = np.random.default_rng(seed)
    dev = device or A.device
    with no_grad():
        x = _rand(A.domain_shape, dt, dev, rng)
        y = _rand(A.range_shape, dt, dev, rng)
        lhs = _inner(A.matvec(x), y)
        rhs = _inner(x, A.H.matvec(y))
    scale = max(abs(lhs), abs(rhs), 1e-300)
    err = abs(lhs - rhs) / scale
    res = DotTestResult(bool(err <= tol), err, tol, lhs, rhs)
    if verbose:
        print(f"dottest {A!r}: <Ax,y> = {lhs:.16g}, <x,A^H y> = {rhs:.16g}, "
              f"relative error {err:.3g} (tol {tol:g})")
    if raise_error and not res.passed:
        raise NumericsError(f"[dottest] {A!r} ({A.domain_shape} -> {A.range_shape}, {dt}): "
                            f"<A x, y> = {lhs!r} but <x, A^H y> = {rhs!r}; relative error "
                            f"{err:.3g} exceeds {tol:g}: the adjoint is not the adjoint")
    return res


def check_symmetric(A, dtype=None, tol=None, seed=1):
    """Probe a declared symmetric operator: <A x, y> == <x, A y> for random x, y.
    Raises `PropertyError` naming the operator when it does not hold."""
    from ..autograd.grad_mode import no_grad
    from .base import PropertyError
    dt = dtype or (A.dtype.name if A.dtype is not None else "fp64")
    dt = getattr(dt, "name", dt)
    tol = DOTTEST_TOL.get(dt, 1e-4) if tol is None else tol
    if A.domain_shape != A.range_shape and A.shape[0] != A.shape[1]:
        raise PropertyError(f"[linop.check_symmetric] {A!r} maps {A.domain_shape} -> "
                            f"{A.range_shape}: a symmetric operator must be square")
    rng = np.random.default_rng(seed)
    with no_grad():
        x = _rand(A.domain_shape, dt, A.device, rng)
        y = _rand(A.domain_shape, dt, A.device, rng)
        lhs = _inner(A.matvec(x).reshape(A.domain_shape), y)
        rhs = _inner(x, A.matvec(y).reshape(A.domain_shape))
    err = abs(lhs - rhs) / max(abs(lhs), abs(rhs), 1e-300)
    if err > tol:
        raise PropertyError(f"[linop.check_symmetric] {A!r} is declared symmetric but fails "
                            f"the probe: <A x, y> = {lhs:.6g}, <x, A y> = {rhs:.6g} "
                            f"(relative difference {err:.3g} > {tol:g})")
    return err
