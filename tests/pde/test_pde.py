"""tessera.pde: steppers against exact solutions, adjoint-method gradients
through the time loop against finite differences (every method, with
checkpointing and intermediate observations), PINN derivatives (grad-of-grad)."""
import numpy as np
import pytest
import scipy.linalg

import tessera as ts
from tessera import linop, pde
from tests.helpers import check_grad

pytestmark = pytest.mark.usefixtures("device")  # every test runs on each device

rng = np.random.default_rng(2)


def T(a, **kw):
    return ts.asarray(np.asarray(a, dtype=np.float64), dtype="fp64", **kw)


@pytest.mark.parametrize("method,order", [("euler", 1), ("implicit_euler", 1),
                                          ("crank_nicolson", 2), ("rk4", 4)])
def test_convergence_order_against_expm(method, order):
    n = 10
    L = linop.laplacian(n, h=1 / (n + 1))
    u0 = rng.standard_normal(n)
    Tend = 0.002
    exact = scipy.linalg.expm(Tend * L.to_dense().numpy()) @ u0
    errs = []
    for steps in (8, 16):
        u = pde.integrate(T(u0), Tend / steps, steps, operator=L, method=method)
        errs.append(np.abs(u.numpy() - exact).max())
    rate = np.log2(errs[0] / errs[1])
    assert rate > order - 0.3, (errs, rate)


@pytest.mark.parametrize("method", ["euler", "rk4", "implicit_euler", "crank_nicolson"])
def test_adjoint_gradient_matches_fd(method):
    n = 8
    h = 1 / (n + 1)

    # source closes over s: pass it as a param so its gradient flows too
    def g(u0, logk, s):
        return pde.integrate(u0, 2e-4, 13,
                             operator=lambda lk, s: pde.diffusion_operator(ts.exp(lk), h),
                             params=(logk, s), source=lambda t, lk, s: s * (1.0 + t),
                             method=method, save_every=4, checkpoint_every=3,
                             solver_options={"rtol": 1e-13})
    out = g(T(rng.standard_normal(n)), T(rng.standard_normal(n + 1) * 0.1), T(np.ones(n)))
    assert out.shape == (3, n)
    check_grad(g, rng.standard_normal(n), rng.standard_normal(n + 1) * 0.1,
               rng.standard_normal(n), rtol=1e-6, atol=1e-9)


def test_nonlinear_rhs_rk4_gradient():
    # Burgers-like: u_t = nu u_xx - u u_x, periodic
    n = 12
    D = linop.first_derivative(n, h=0.1, bc="periodic", kind="central")
    L = linop.laplacian(n, h=0.1, bc="periodic")

    def f(u0, nu):
        return pde.integrate(u0, 1e-3, 10, rhs=lambda u, t, nu: nu * L.matvec(u) - u * D.matvec(u),
                             params=(nu,), method="rk4", checkpoint_every=4)
    check_grad(f, np.sin(np.linspace(0, 2 * np.pi, n, endpoint=False)), np.array(0.05), rtol=1e-6)


def test_checkpointing_recomputes_not_stores():
    """Only n/c checkpoints are kept on the tape node, however many steps."""
    calls = {"n": 0}
    L = linop.laplacian(6)

    def rhs(u, t):
        calls["n"] += 1
        return L.matvec(u)
    u0 = T(rng.standard_normal(6), requires_grad=True)
    out = pde.integrate(u0, 1e-3, 100, rhs=rhs, method="euler", checkpoint_every=10)
    node = out.grad_fn
    assert node.name == "pde.integrate" and node.saved == ()
    fwd = calls["n"]
    out.sum().backward()
    # backward: one recompute sweep per segment + one taped step per step
    assert calls["n"] - fwd == 200
    ref = np.linalg.matrix_power(np.eye(6) + 1e-3 * L.to_dense().numpy(), 100).T @ np.ones(6)
    np.testing.assert_allclose(u0.grad.numpy(), ref, rtol=1e-10)


def test_bad_input():
    with pytest.raises(ValueError, match=r"\[pde.integrate\] implicit_euler needs a linear"):
        pde.integrate(T(np.ones(3)), 0.1, 2, rhs=lambda u, t: u, method="implicit_euler")
    with pytest.raises(ts.ShapeError, match=r"\[pde.integrate\] operator .* \(4,\).*u0 has shape \(3,\)"):
        pde.integrate(T(np.ones(3)), 0.1, 2, operator=linop.laplacian(4))
    with pytest.raises(ValueError, match=r"unknown method"):
        pde.integrate(T(np.ones(3)), 0.1, 2, operator=linop.laplacian(3), method="leapfrog")


def test_pinn_derivatives_and_grad_of_grad():
    x = T(rng.uniform(-1, 1, (7, 2)))
    w = T(rng.standard_normal(2), requires_grad=True)

    def u_fn(x):
        return ts.sin(ts.matmul(x, w))
    u, du, d2u = pde.derivatives(u_fn, x)
    z = x.numpy() @ w.numpy()
    np.testing.assert_allclose(du.numpy(), np.cos(z)[:, None] * w.numpy()[None], rtol=1e-12)
    np.testing.assert_allclose(d2u.numpy(), -np.sin(z)[:, None] * w.numpy()[None] ** 2, rtol=1e-12)
    # the residual loss is differentiable in the weights (third-order tape)
    check_grad(lambda w: pde.laplacian(lambda x: ts.sin(ts.matmul(x, w)), x)[1],
               rng.standard_normal(2))
    r = pde.residual(u_fn, x, lambda x, u, du, d2u: d2u.sum(axis=1) + u * (w * w).sum())
    np.testing.assert_allclose(r.numpy(), 0.0, atol=1e-12)
    with pytest.raises(ts.ShapeError, match=r"\[pde.derivatives\]"):
        pde.derivatives(u_fn, T(np.ones(3)))
