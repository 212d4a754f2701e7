"""linop solvers: results against numpy.linalg.solve / lstsq, gradients by one
adjoint solve against finite differences, info/warnings/errors."""
import warnings

import numpy as np
import pytest

import tessera as ts
from tessera import linop
from tessera.errors import NumericsError
from tests.helpers import check_grad

pytestmark = pytest.mark.usefixtures("device")  # every test runs on each device

rng = np.random.default_rng(1)


def T(a, **kw):
    return ts.asarray(np.asarray(a, dtype=np.float64), dtype="fp64", **kw)


def spd(n, seed=0):
    r = np.random.default_rng(seed)
    Q = r.standard_normal((n, n))
    return Q @ Q.T + n * np.eye(n)


def sym_indef(n, seed=0):
    r = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(r.standard_normal((n, n)))
    return Q @ np.diag(np.linspace(-3, 4, n) + 0.1) @ Q.T


@pytest.mark.parametrize("method,make", [
    ("cg", spd), ("minres", sym_indef), ("gmres", lambda n, seed=0: spd(n) + np.triu(np.ones((n, n))))])
def test_against_numpy_solve(method, make):
    n = 12
    A = make(n)
    b = rng.standard_normal(n)
    op = linop.aslinearoperator(T(A), symmetric=method != "gmres")
    x, info = getattr(linop, method)(op, T(b), rtol=1e-12, maxiter=500)
    assert info.converged and info.code == 0 and info.method == method
    np.testing.assert_allclose(x.numpy(), np.linalg.solve(A, b), rtol=1e-8, atol=1e-10)
    # preconditioned (Jacobi), same answer
    M = linop.diagonal(T(1.0 / np.abs(np.diag(A))))
    x2, info2 = getattr(linop, method)(op, T(b), rtol=1e-12, M=M, maxiter=500)
    assert info2.converged
    np.testing.assert_allclose(x2.numpy(), np.linalg.solve(A, b), rtol=1e-8, atol=1e-10)


def test_lsqr_against_lstsq():
    A = rng.standard_normal((15, 6))
    b = rng.standard_normal(15)
    x, info = linop.lsqr(T(A), T(b), atol=1e-12, btol=1e-12)
    assert info.converged
    np.testing.assert_allclose(x.numpy(), np.linalg.lstsq(A, b, rcond=None)[0], rtol=1e-8)
    x, _ = linop.lsqr(T(A), T(b), damp=0.5, atol=1e-12, btol=1e-12)
    ref = np.linalg.solve(A.T @ A + 0.25 * np.eye(6), A.T @ b)
    np.testing.assert_allclose(x.numpy(), ref, rtol=1e-8)


@pytest.mark.cpu_only("covered on cuda by test_cg_on_device (cg on a Laplacian)")
def test_cg_poisson_and_callback():
    L = -linop.laplacian((20, 20), h=1 / 21)
    f = T(np.ones((20, 20)))
    seen = []
    u, info = linop.cg(L, f, rtol=1e-10, callback=lambda xk: seen.append(xk.shape))
    assert info.converged and len(seen) == info.iterations and seen[0] == (20, 20)
    np.testing.assert_allclose(L.matvec(u).numpy(), 1.0, atol=1e-7)
    assert info.residual_norm <= 1e-10 * 20


@pytest.mark.parametrize("method", ["cg", "minres", "gmres"])
def test_gradient_by_adjoint_solve(method):
    n = 6
    A0 = spd(n, 3)
    d0 = rng.uniform(1, 2, n)
    sym = method != "gmres"
    fn = getattr(linop, method)

    def f(b, M, d):
        A = linop.aslinearoperator(M, symmetric=sym) + linop.diagonal(d)
        return fn(A, b, rtol=1e-13, maxiter=200)[0]
    # symmetric methods: differentiate through a symmetric parametrization
    Mfun = (lambda M: (M + M.mT) * 0.5) if sym else (lambda M: M)
    check_grad(lambda b, M, d: f(b, Mfun(M), d), rng.standard_normal(n), A0, d0, rtol=1e-5)


def test_lsqr_gradient():
    A0 = rng.standard_normal((9, 4))
    check_grad(lambda b, A: linop.lsqr(A, b, atol=1e-14, btol=1e-14)[0],
               rng.standard_normal(9), A0, rtol=1e-5)
    check_grad(lambda b, A: linop.lsqr(A, b, damp=0.3, atol=1e-14, btol=1e-14)[0],
               rng.standard_normal(9), A0, rtol=1e-5)


def test_implicit_gradient_is_one_node():
    """Implicit differentiation: the tape holds one node, whatever the iteration count."""
    L = -linop.laplacian((16, 16))
    b = T(rng.standard_normal((16, 16)), requires_grad=True)
    x, info = linop.cg(L, b, rtol=1e-12)
    assert info.iterations > 10
    assert x.grad_fn.name == "linop.cg" and len(x.grad_fn.next) == 1
    (x * x).sum().backward()
    ref = np.linalg.solve(L.to_dense().numpy(), 2 * x.numpy().ravel())
    np.testing.assert_allclose(b.grad.numpy().ravel(), ref, rtol=1e-7, atol=1e-10)


def test_solve_picks_method_and_probes_symmetry():
    n = 8
    A = T(spd(n))
    b = T(rng.standard_normal(n))
    for kw, ref in (({"symmetric": True, "definite": "pos"}, "cg"),
                    ({"symmetric": True}, "minres"), ({}, "gmres")):
        x = linop.solve(linop.aslinearoperator(A, **kw), b)
        np.testing.assert_allclose(x.numpy(), np.linalg.solve(spd(n), b.numpy()), rtol=1e-7)
    x = linop.solve(T(rng.standard_normal((12, n))), T(rng.standard_normal(12)))
    assert x.shape == (n,)
    bad = linop.aslinearoperator(T(np.triu(spd(n))), symmetric=True, definite="pos", name="U")
    with pytest.raises(linop.PropertyError, match=r"\[solve\] U is declared symmetric"):
        linop.solve(bad, b)


def test_non_convergence_warns_and_raises():
    L = -linop.laplacian((30, 30))
    f = T(np.ones((30, 30)))
    with pytest.warns(linop.ConvergenceWarning, match=r"\[cg\] did not converge.*maxiter=3"):
        x, info = linop.cg(L, f, maxiter=3)
    assert not info.converged and info.code == 3 and info.iterations == 3
    with pytest.raises(linop.ConvergenceError, match=r"\[gmres\] did not converge"):
        linop.gmres(L, f, maxiter=2, check=True)


def test_nan_residual_names_iteration():
    A = -linop.laplacian(5)
    b = np.ones(5)
    b[2] = np.nan  # bad data from outside: no checked op made it, the solver finds it
    for fn in (linop.cg, linop.minres, linop.gmres):
        with ts.check_numerics():
            with pytest.raises(NumericsError, match=r"residual norm became nan at iteration 0"):
                fn(A, T(b))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            x, info = fn(A, T(b))
        assert info.code < 0 and "iteration 0" in info.reason
    # NaN appearing mid-iteration inside the operator is caught at its op
    d = np.ones(5)
    d[2] = np.nan
    with ts.check_numerics():
        with pytest.raises(NumericsError, match=r"multiply produced 1 NaN"):
            linop.cg(linop.diagonal(T(d)), T(np.ones(5)))


def test_shape_mismatch_in_solver():
    with pytest.raises(ts.ShapeError, match=r"\[cg\] operator .* maps \(4,\) -> \(4,\) but the right-hand side has shape \(5,\)"):
        linop.cg(T(spd(4)), T(np.ones(5)))
    with pytest.raises(ts.ShapeError, match=r"\[cg\] needs a square operator"):
        linop.cg(T(np.ones((3, 4))), T(np.ones(3)))


def test_cg_on_device(device):
    """The same solver code on the device's array module (NumPy here, CuPy on a GPU)."""
    n = 24
    L = -linop.laplacian((n, n), h=1 / (n + 1))
    b = ts.asarray(rng.standard_normal((n, n)), dtype="fp64", device=device, requires_grad=True)
    x, info = linop.cg(L, b, rtol=1e-12)
    assert info.converged and x.device.type == device
    (x * x).sum().backward()
    D = L.to_dense(device="cpu").numpy()
    xr = np.linalg.solve(D, b.detach().cpu().numpy().ravel())
    np.testing.assert_allclose(x.cpu().numpy().ravel(), xr, rtol=1e-8)
    np.testing.assert_allclose(b.grad.cpu().numpy().ravel(), np.linalg.solve(D, 2 * xr), rtol=1e-7)
