"""The Krylov iterations themselves: CG, MINRES, restarted GMRES and LSQR on
flat backend arrays (NumPy on the CPU, CuPy on a GPU: the same code), with the
operator and preconditioner given as buffer -> buffer functions.

They are the textbook recurrences (Hestenes-Stiefel CG, Paige-Saunders MINRES
and LSQR, Saad-Schultz GMRES with Givens rotations), written here from the
published algorithms. `solvers.py` wraps them into tessera functions with
argument checks, info results and implicit adjoints.
Each returns (x, iterations, residual_norm, code, reason) where code follows
SciPy: 0 converged, > 0 not converged after that many iterations, < 0 breakdown.
"""
from __future__ import annotations

import math

from .._config import STATE
from ..errors import NumericsError


def _bad(op, k, value):
    """NaN/Inf in a residual: raise under check_numerics, else stop with a breakdown."""
    if STATE.check_numerics:
        # The op that made the NaN may have been checked on the device (a fused
        # group on a GPU queues its check): report that finding, which names the
        # culprit and its line, before this solver's generic one.
        from ..numerics import sync_point
        sync_point()
        raise NumericsError(f"[{op}] the residual norm became {value} at iteration {k}: "
                            "the operator or the right-hand side produced NaN or Inf")
    return -2, f"residual norm became {value} at iteration {k}"


def _dot(xp, a, b):
    # einsum, not BLAS dot/vdot: a level-1 product gains nothing from BLAS threads,
    # and on a loaded CPU their spin-waits made each dot take ~30 ms instead of ~30 us
    if a.dtype.kind == "c":
        return float(xp.vdot(a, b).real)
    return float(xp.einsum("i,i->", a, b))


def cg(xp, mv, b, x, tol, maxiter, prec=None, callback=None):
    r = b - mv(x) if x.any() else b.copy()
    z = prec(r) if prec else r
    p = z.copy()
    rz = _dot(xp, r, z)
    rn = math.sqrt(_dot(xp, r, r))
    if not math.isfinite(rn):
        return (x, 0, rn) + _bad("cg", 0, rn)
    for k in range(maxiter):
        if rn <= tol:
            return x, k, rn, 0, "converged"
        q = mv(p)
        pq = _dot(xp, p, q)
        if pq == 0.0 or not math.isfinite(pq):
            if not math.isfinite(pq):
                return (x, k) + (pq,) + _bad("cg", k + 1, pq)
            return x, k, rn, -1, f"breakdown: p.Ap = 0 at iteration {k + 1} (singular operator?)"
        alpha = rz / pq
        x += alpha * p
        r -= alpha * q
        rn = math.sqrt(_dot(xp, r, r))
        if not math.isfinite(rn):
            return (x, k + 1, rn) + _bad("cg", k + 1, rn)
        if callback:
            callback(x, k + 1)
        if prec:
            z = prec(r)
            rz_new = _dot(xp, r, z)
        else:
            z, rz_new = r, rn * rn
        p *= rz_new / rz
        p += z
        rz = rz_new
    if rn <= tol:
        return x, maxiter, rn, 0, "converged"
    return x, maxiter, rn, maxiter, f"reached maxiter={maxiter} with residual {rn:.3e} > {tol:.3e}"


def minres(xp, mv, b, x, tol, maxiter, prec=None, callback=None):
    """Paige-Saunders MINRES for symmetric (possibly indefinite) operators; with a
    preconditioner (symmetric positive definite) the test uses its norm."""
    eps = 2.2e-16
    r1 = b - mv(x) if x.any() else b.copy()
    y = prec(r1) if prec else r1
    beta1 = _dot(xp, r1, y)
    if not math.isfinite(beta1):
        return (x, 0, beta1) + _bad("minres", 0, beta1)
    if beta1 < 0:
        return x, 0, float("nan"), -3, "the preconditioner is not positive definite"
    beta1 = math.sqrt(beta1)
    if beta1 <= tol:
        return x, 0, beta1, 0, "converged"
    oldb, beta, dbar, epsln, phibar = 0.0, beta1, 0.0, 0.0, beta1
    cs, sn = -1.0, 0.0
    w = xp.zeros_like(b)
    w2 = xp.zeros_like(b)
    r2 = r1
    for k in range(1, maxiter + 1):
        v = y / beta
        y = mv(v)
        if k >= 2:
            y = y - (beta / oldb) * r1
        alfa = _dot(xp, v, y)
        y = y - (alfa / beta) * r2
        r1, r2 = r2, y
        y = prec(r2) if prec else r2
        oldb = beta
        beta = _dot(xp, r2, y)
        if beta < 0:
            return x, k, phibar, -3, "the preconditioner is not positive definite"
        beta = math.sqrt(beta)
        oldeps = epsln
        delta = cs * dbar + sn * alfa
        gbar = sn * dbar - cs * alfa
        epsln = sn * beta
        dbar = -cs * beta
        gamma = max(math.hypot(gbar, beta), eps)
        cs, sn = gbar / gamma, beta / gamma
        phi = cs * phibar
        phibar = sn * phibar
        w1, w2 = w2, w
        w = (v - oldeps * w1 - delta * w2) / gamma
        x += phi * w
        if not math.isfinite(phibar):
            return (x, k, phibar) + _bad("minres", k, phibar)
        if callback:
            callback(x, k)
        if phibar <= tol:
            return x, k, phibar, 0, "converged"
        if beta == 0.0:  # invariant subspace: x is the exact solution there
            return x, k, phibar, 0 if phibar <= tol else -1, "Lanczos breakdown (beta = 0)"
    return x, maxiter, phibar, maxiter, \
        f"reached maxiter={maxiter} with residual {phibar:.3e} > {tol:.3e}"


def gmres(xp, mv, b, x, tol, maxiter, prec=None, callback=None, restart=20):
    """Restarted GMRES(restart), right-preconditioned (the residual it monitors
    is the true one); `maxiter` counts inner iterations."""
    import numpy as np
    n_it = 0
    r = b - mv(x) if x.any() else b.copy()
    rn = math.sqrt(_dot(xp, r, r))
    while n_it < maxiter:
        if rn <= tol:
            return x, n_it, rn, 0, "converged"
        if not math.isfinite(rn):
            return (x, n_it, rn) + _bad("gmres", n_it, rn)
        m = min(restart, maxiter - n_it)
        V = [r / rn]
        Z = []
        H = np.zeros((m + 1, m))
        cs, sn = np.zeros(m), np.zeros(m)
        g = np.zeros(m + 1)
        g[0] = rn
        j_done = 0
        for j in range(m):
            z = prec(V[j]) if prec else V[j]
            Z.append(z)
            w = mv(z)
            for i in range(j + 1):  # modified Gram-Schmidt
                H[i, j] = _dot(xp, V[i], w)
                w = w - H[i, j] * V[i]
            hn = H[j + 1, j] = math.sqrt(_dot(xp, w, w))
            for i in range(j):  # apply the earlier rotations to the new column
                t = cs[i] * H[i, j] + sn[i] * H[i + 1, j]
                H[i + 1, j] = -sn[i] * H[i, j] + cs[i] * H[i + 1, j]
                H[i, j] = t
            d = math.hypot(H[j, j], H[j + 1, j])
            if d == 0.0 or not math.isfinite(d):
                if not math.isfinite(d):
                    return (x, n_it, d) + _bad("gmres", n_it + 1, d)
                j_done = j
                break
            cs[j], sn[j] = H[j, j] / d, H[j + 1, j] / d
            H[j, j], H[j + 1, j] = d, 0.0
            g[j + 1] = -sn[j] * g[j]
            g[j] = cs[j] * g[j]
            n_it += 1
            j_done = j + 1
            if abs(g[j + 1]) <= tol or hn == 0.0:  # hn = 0: invariant subspace, exact
                break
            V.append(w / hn)
        k = j_done
        if k == 0:
            return x, n_it, rn, -1, "breakdown: the Krylov space did not grow"
        yk = np.linalg.solve(np.triu(H[:k, :k]), g[:k])
        for i in range(k):
            x += yk[i] * Z[i]
        r = b - mv(x)
        rn = math.sqrt(_dot(xp, r, r))
        if callback:
            callback(x, n_it)
    if rn <= tol:
        return x, n_it, rn, 0, "converged"
    return x, n_it, rn, n_it, f"reached maxiter={maxiter} with residual {rn:.3e} > {tol:.3e}"


def lsqr(xp, mv, rmv, b, x, atol, btol, maxiter, damp=0.0, callback=None):
    """Paige-Saunders LSQR for min ||A x - b||^2 + damp^2 ||x||^2. Stops when the
    residual is small (||r|| <= btol ||b|| + atol ||A|| ||x||) or the normal
    equations hold (||A^T r|| <= atol ||A|| ||r||). Returns the residual norm."""
    bnorm = math.sqrt(_dot(xp, b, b))
    u = b - mv(x) if x.any() else b.copy()
    beta = math.sqrt(_dot(xp, u, u))
    if not math.isfinite(beta):
        return (x, 0, beta) + _bad("lsqr", 0, beta)
    if beta == 0.0:
        return x, 0, 0.0, 0, "converged (b - A x0 = 0)"
    u = u / beta
    v = rmv(u)
    alfa = math.sqrt(_dot(xp, v, v))
    if alfa == 0.0:
        return x, 0, beta, 0, "converged (A^T b = 0: x = x0 is a least-squares solution)"
    v = v / alfa
    w = v.copy()
    phibar, rhobar = beta, alfa
    anorm2 = 0.0
    xnorm2 = 0.0
    rnorm = beta
    for k in range(1, maxiter + 1):
        u = mv(v) - alfa * u
        beta = math.sqrt(_dot(xp, u, u))
        if beta > 0:
            u = u / beta
        anorm2 += alfa * alfa + beta * beta + damp * damp
        v = rmv(u) - beta * v
        alfa = math.sqrt(_dot(xp, v, v))
        if alfa > 0:
            v = v / alfa
        rhobar1 = math.hypot(rhobar, damp)
        cs1, sn1 = rhobar / rhobar1, damp / rhobar1
        psi = sn1 * phibar
        phibar = cs1 * phibar
        rho = math.hypot(rhobar1, beta)
        cs, sn = rhobar1 / rho, beta / rho
        theta = sn * alfa
        rhobar = -cs * alfa
        phi = cs * phibar
        phibar = sn * phibar
        x += (phi / rho) * w
        w = v - (theta / rho) * w
        xnorm2 += (phi / rho) ** 2  # a cheap lower estimate of ||x||^2
        rnorm = math.hypot(phibar, psi)
        if not math.isfinite(rnorm):
            return (x, k, rnorm) + _bad("lsqr", k, rnorm)
        if callback:
            callback(x, k)
        anorm = math.sqrt(anorm2)
        arnorm = abs(phibar * alfa * cs)  # ||A^T r||, Paige-Saunders' estimate
        if rnorm <= btol * bnorm + atol * anorm * math.sqrt(xnorm2):
            return x, k, rnorm, 0, "converged: A x = b to within the tolerance"
        if arnorm <= atol * anorm * rnorm:
            return x, k, rnorm, 0, "converged: least-squares optimality (A^T r ~ 0)"
    return x, maxiter, rnorm, maxiter, f"reached maxiter={maxiter} (residual {rnorm:.3e})"
