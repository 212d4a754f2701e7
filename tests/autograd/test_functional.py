"""The JAX-style transforms (tessera.grad & co.) against analytic derivatives and
float64 central finite differences, including nested grad-of-grad."""
import numpy as np
import pytest

import tessera as ts
from helpers import assert_close

pytestmark = pytest.mark.usefixtures("device")  # every test runs on each device

RNG = np.random.default_rng(0)


def t64(a, requires_grad=False):
    return ts.asarray(np.asarray(a, dtype=np.float64), requires_grad=requires_grad)


def fd_grad(f, x, eps=1e-6):
    """Central differences of scalar f (NumPy in, float out) at x, all coordinates."""
    x = np.asarray(x, dtype=np.float64)
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[i] = eps
        g[i] = (f(x + e) - f(x - e)) / (2 * eps)
    return g


def scalar(f):
    return lambda a: float(f(t64(a)))


def softmax_c(x):
    e = ts.exp(x - ts.max(x, axis=-1, keepdims=True).detach())
    return e / ts.sum(e, axis=-1, keepdims=True)


CASES = {
    "tanh": lambda x: ts.sum(ts.tanh(x) * ts.tanh(x)),
    "exp_log": lambda x: ts.sum(ts.log(ts.exp(x) + 1.0) * x),
    "softmax": lambda x: ts.sum(softmax_c(x) * ts.arange(x.shape[-1], dtype="fp64")),
    "matmul": lambda x: ts.sum(ts.tanh(ts.matmul(x, x.T))),
    "pow_div": lambda x: ts.sum(x ** 3 / (x * x + 1.0)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_grad_vs_finite_difference(name):
    f = CASES[name]
    x = RNG.uniform(-1, 1, size=(3, 3))
    assert_close(ts.grad(f)(t64(x)), fd_grad(scalar(f), x), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("name", sorted(CASES))
def test_grad_of_grad_diagonal_vs_finite_difference(name):
    """d/dx_i of (grad f)_i, i.e. the Hessian diagonal, by nesting grad."""
    f = CASES[name]
    x = RNG.uniform(-1, 1, size=(2, 3))
    n = x.size

    def hess_row(i):
        def gi(xt):
            return ts.reshape(ts.grad(f)(xt), (n,))[i]
        return ts.reshape(ts.grad(gi)(t64(x)), (n,))[i].item()

    def gi_np(i):
        return lambda a: ts.reshape(ts.grad(f)(t64(a)), (n,))[i].item()
    for i in range(n):
        fd = fd_grad(gi_np(i), x, eps=1e-5).reshape(n)[i]
        assert abs(hess_row(i) - fd) < 1e-5 * (1 + abs(fd)), (name, i)


def test_second_derivatives_analytic():
    # d2/dx2 tanh = -2 tanh (1 - tanh^2)
    d2 = ts.grad(ts.grad(ts.tanh))
    for x in (-1.5, 0.0, 0.3, 2.0):
        t = np.tanh(x)
        assert abs(d2(t64(x)).item() - (-2 * t * (1 - t * t))) < 1e-12
    # third derivative of x^4 is 24 x; works from a Python float
    assert abs(ts.grad(ts.grad(ts.grad(lambda x: x ** 4)))(2.0).item() - 48.0) < 1e-3


def test_softmax_op_second_order_if_present():
    if not hasattr(ts, "softmax"):
        pytest.skip("tessera.softmax not available")
    w = t64(RNG.uniform(size=4))

    def f(x):
        return ts.sum(ts.softmax(x) * w)

    def fc(x):
        return ts.sum(softmax_c(x) * w)
    x = t64(RNG.uniform(-1, 1, size=4))
    v = t64(RNG.uniform(-1, 1, size=4))
    assert_close(ts.hvp(f, x, v), ts.hvp(fc, x, v).numpy(), rtol=1e-10, atol=1e-12)


def test_matmul_hessian_is_constant():
    # f(A) = sum((A B)^2) / 2 -> H v = v B B^T
    B = RNG.normal(size=(3, 4))
    f = lambda A: ts.sum(ts.matmul(A, t64(B)) ** 2) * 0.5  # noqa: E731
    A = RNG.normal(size=(2, 3))
    V = RNG.normal(size=(2, 3))
    assert_close(ts.hvp(f, t64(A), t64(V)), V @ B @ B.T, rtol=1e-12, atol=1e-12)
    # the same through grad(grad) along a direction
    g2 = ts.grad(lambda A: ts.sum(ts.grad(f)(A) * t64(V)))(t64(A))
    assert_close(g2, V @ B @ B.T, rtol=1e-12, atol=1e-12)


def test_value_and_grad_argnums_tuple_and_scalars():
    f = lambda x, y, z: ts.sum(x * y) + z  # noqa: E731
    x, y = t64([1.0, 2.0]), np.array([3.0, 4.0])
    v, (gx, gy) = ts.value_and_grad(f, argnums=(0, 1))(x, y, 5.0)
    assert v.item() == 16.0 and not v.requires_grad
    assert_close(gx, [3.0, 4.0])
    assert_close(gy, [1.0, 2.0])
    # a non-differentiated NumPy argument reaches the op as it is: fine on the CPU, an error
    # next to a GPU tensor (nothing is copied across devices silently)
    y = y if x.device.type == "cpu" else t64(y)
    assert_close(ts.grad(f, argnums=2)(x, y, 5.0), np.array(1.0, dtype=np.float32))
    assert_close(ts.grad(f, argnums=-1)(x, y, 5.0), np.array(1.0, dtype=np.float32))
    assert not x.requires_grad and x.grad is None  # inputs are left alone


def test_has_aux():
    def f(x):
        y = ts.sum(x * x)
        return y, {"y": y, "n": 3}
    g, aux = ts.grad(f, has_aux=True)(t64([1.0, 2.0]))
    assert_close(g, [2.0, 4.0])
    assert aux["n"] == 3 and aux["y"].item() == 5.0 and not aux["y"].requires_grad
    (v, aux), g = ts.value_and_grad(f, has_aux=True)(t64([1.0]))
    assert v.item() == 1.0 and g.item() == 2.0
    with pytest.raises(ts.GradError, match="has_aux"):
        ts.grad(lambda x: ts.sum(x), has_aux=True)(t64([1.0]))


def test_errors():
    with pytest.raises(ts.GradError, match="scalar"):
        ts.grad(lambda x: x * 2)(t64([1.0, 2.0]))
    with pytest.raises(ts.GradError, match="floating"):
        ts.grad(lambda x: ts.sum(x))(ts.asarray([1, 2]))
    with pytest.raises(ts.GradError, match="argnums"):
        ts.grad(lambda x: ts.sum(x), argnums=3)(t64([1.0]))


def test_unused_and_constant_give_zeros():
    g = ts.grad(lambda x, y: ts.sum(x), argnums=(0, 1))(t64([1.0]), t64([2.0, 3.0]))
    assert_close(g[1], [0.0, 0.0])
    # the derivative of a linear function's gradient is 0, not an error
    assert_close(ts.grad(ts.grad(lambda x: 3.0 * x))(t64(1.0)), np.array(0.0))


def test_vjp_and_jvp_against_jacobian():
    W = RNG.normal(size=(3, 4))
    f = lambda x: ts.tanh(ts.matmul(t64(W), x)) * x[:3]  # noqa: E731
    x = RNG.normal(size=4)
    J = ts.jacobian(f, t64(x)).numpy()
    assert J.shape == (3, 4)
    Jfd = np.stack([fd_grad(lambda a, i=i: ts.reshape(f(t64(a)), (3,))[i].item(), x)
                    for i in range(3)])
    np.testing.assert_allclose(J, Jfd, rtol=1e-6, atol=1e-8)
    out, vjp_fn = ts.vjp(f, t64(x))
    u = RNG.normal(size=3)
    (gx,) = vjp_fn(t64(u))
    assert_close(gx, u @ J, rtol=1e-12, atol=1e-12)
    (gx2,) = vjp_fn(u)  # callable twice, NumPy cotangent
    assert_close(gx2, u @ J, rtol=1e-12, atol=1e-12)
    v = RNG.normal(size=4)
    out2, tv = ts.jvp(f, (t64(x),), (t64(v),))
    assert_close(out2, out.numpy())
    assert_close(tv, J @ v, rtol=1e-12, atol=1e-12)


def test_jvp_two_inputs_and_linear():
    f = lambda a, b: a * b + ts.sin(a)  # noqa: E731
    a, b = RNG.normal(size=3), RNG.normal(size=3)
    va, vb = RNG.normal(size=3), RNG.normal(size=3)
    _, t = ts.jvp(f, (t64(a), t64(b)), (t64(va), t64(vb)))
    assert_close(t, (b + np.cos(a)) * va + a * vb, rtol=1e-12, atol=1e-12)
    _, t = ts.jvp(lambda a: a * 0.0 + 1.0, (t64(a),), (t64(va),))
    assert_close(t, np.zeros(3))


def test_hvp_quadratic_and_jacobian_tuple():
    A = RNG.normal(size=(3, 3))
    A = A + A.T
    f = lambda x: 0.5 * ts.sum(x * ts.matmul(t64(A), x))  # noqa: E731
    x, v = RNG.normal(size=3), RNG.normal(size=3)
    assert_close(ts.hessian_vector_product(f, t64(x), t64(v)), A @ v, rtol=1e-12, atol=1e-12)
    ja, jb = ts.jacobian(lambda a, b: a * b, (t64([1.0, 2.0]), t64([3.0, 4.0])))
    assert_close(ja, np.diag([3.0, 4.0]))
    assert_close(jb, np.diag([1.0, 2.0]))


def test_closure_over_outer_variable_stays_differentiable():
    # d/dw [ d/dx (w x^2) at x=3 ] = 2 x = 6: the inner grad must keep w's graph.
    def outer(w):
        return ts.grad(lambda x: w * x * x)(t64(3.0))
    assert abs(ts.grad(outer)(t64(2.0)).item() - 6.0) < 1e-12


def test_no_grad_context_still_differentiates():
    with ts.no_grad():
        g = ts.grad(lambda x: ts.sum(x * x))(t64([1.0, 2.0]))
    assert_close(g, [2.0, 4.0]) and not g.requires_grad


def test_autograd_namespace():
    x = t64([1.0, 2.0], requires_grad=True)
    (g,) = ts.autograd.grad(ts.sum(x * x), [x])
    assert_close(g, [2.0, 4.0])
    assert ts.grad is ts.autograd.functional.grad and ts.hvp is ts.hessian_vector_product
