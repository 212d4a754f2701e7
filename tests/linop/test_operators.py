"""linop operators: dot-product test for every built-in and random compositions,
values against NumPy float64 matrices, simplification rules, shape errors."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tessera as ts
from tessera import linop
from tessera.errors import NumericsError, ShapeError
from tests.helpers import assert_close, check_grad

pytestmark = pytest.mark.usefixtures("device")  # every test runs on each device

rng = np.random.default_rng(0)


def T(a):
    return ts.asarray(np.asarray(a, dtype=np.float64), dtype="fp64")


def builtins():
    M = T(rng.standard_normal((5, 4)))
    return {
        "matrix": linop.aslinearoperator(M),
        "diagonal": linop.diagonal(T(rng.standard_normal((3, 4)))),
        "identity": linop.identity((4, 3), dtype=ts.fp64),
        "zero": linop.zero(4, 6, dtype=ts.fp64),
        "restriction": linop.restriction((5, 4), [0, 3, 7, 7, 19]),
        "mask": linop.masking(rng.random((4, 5)) > 0.5),
        "from_function": linop.from_function(lambda x: ts.cumulative_sum(x, axis=0) * 2.0, (6, 2)),
        "conv_direct_same": linop.convolve(T(rng.standard_normal((3, 2))), (7, 5), mode="same"),
        "conv_direct_full": linop.convolve(T(rng.standard_normal(4)), (9,), mode="full"),
        "conv_direct_valid": linop.convolve(T(rng.standard_normal(3)), (9,), mode="valid"),
        "conv_fft_same": linop.convolve(T(rng.standard_normal((3, 3))), (8, 6), "same", "fft"),
        "conv_fft_valid": linop.convolve(T(rng.standard_normal(4)), (10,), "valid", "fft"),
        "csr": linop.csr([1.0, -2.0, 3.0, 4.0], [0, 2, 1, 2], [0, 2, 3, 4], (3, 3)),
        "kron": linop.kron(linop.aslinearoperator(T(rng.standard_normal((3, 2)))),
                           linop.first_derivative(4)),
        "kron_generic": linop.kron(linop.first_derivative(3, bc="periodic"), linop.diagonal(T([1.0, 2.0]))),
        "block": linop.block([[linop.aslinearoperator(M), None],
                              [linop.identity(4, ts.fp64), linop.aslinearoperator(T(rng.standard_normal((4, 3))))]]),
        "block_diag": linop.block_diag(linop.laplacian(3), linop.aslinearoperator(M)),
        **{f"d1_{k}_{bc}": linop.first_derivative((6, 5), axis=ax, h=0.3, bc=bc, kind=k)
           for k, ax in (("forward", 0), ("backward", 1), ("central", -1))
           for bc in ("dirichlet", "neumann", "periodic")},
        **{f"d2_{bc}": linop.second_derivative((7,), h=0.1, bc=bc)
           for bc in ("dirichlet", "neumann", "periodic")},
        **{f"lap{nd}d_{bc}": linop.laplacian((5, 4, 3)[:nd], h=(0.5, 1.0, 2.0)[:nd], bc=bc)
           for nd in (1, 2, 3) for bc in ("dirichlet", "neumann", "periodic")},
    }


def _names():
    prev = ts.default_device()
    ts.set_default_device("cpu")
    try:
        return sorted(builtins())
    finally:
        ts.set_default_device(prev)


# The names only: each test builds the operators on its own device (made at import, their
# tensors would be on the process's default device, CUDA on a GPU host).
OPS = _names()


@pytest.mark.parametrize("name", sorted(OPS))
def test_dottest_builtin(name):
    A = builtins()[name]
    r = linop.dottest(A)
    assert r.passed and r.rel_error < 1e-12, r
    # .H really is the transpose of the dense matrix
    D = A.to_dense().numpy()
    assert D.shape == A.shape
    np.testing.assert_allclose(A.H.to_dense().numpy(), D.T, atol=1e-12)


def test_dottest_fp32_and_failure():
    A = linop.laplacian((16,))
    assert linop.dottest(A, dtype="fp32").rel_error < 1e-4

    class Bad(linop.LinearOperator):
        def _matvec(self, x):
            return x * 2.0

        def _rmatvec(self, y):
            return y * 3.0
    with pytest.raises(NumericsError, match=r"\[dottest\]"):
        linop.dottest(Bad((4,)))
    assert not linop.dottest(Bad((4,)), raise_error=False)


def test_values_against_numpy():
    x = rng.standard_normal((7, 5))
    k = rng.standard_normal((3, 2))
    import scipy.signal as ss
    for method in ("direct", "fft"):
        for mode in ("full", "same", "valid"):
            C = linop.convolve(T(k), (7, 5), mode, method)
            assert_close(C.matvec(T(x)), ss.convolve(x, k, mode=mode), rtol=1e-10, atol=1e-12)
    u = rng.standard_normal(6)
    L = linop.laplacian(6, h=0.5, bc="periodic").matvec(T(u))
    assert_close(L, (np.roll(u, 1) - 2 * u + np.roll(u, -1)) / 0.25, rtol=1e-12, atol=1e-12)
    D = linop.first_derivative(6, bc="neumann", kind="forward").matvec(T(u))
    assert_close(D, np.append(np.diff(u), 0.0), rtol=1e-12, atol=1e-12)
    import scipy.sparse as sp
    S = sp.random(6, 5, density=0.5, random_state=1, format="csr")
    v = rng.standard_normal(5)
    assert_close(linop.aslinearoperator(S).matvec(T(v)), S @ v, rtol=1e-12, atol=1e-12)


def test_matvec_under_autodiff():
    d = rng.standard_normal(5)
    check_grad(lambda x, d: linop.diagonal(d).matvec(linop.laplacian(5).matvec(x)),
               rng.standard_normal(5), d)
    check_grad(lambda x, k: linop.convolve(k, (8,), "same", "fft").matvec(x),
               rng.standard_normal(8), rng.standard_normal(3))
    check_grad(lambda x, k: linop.convolve(k, (6, 4), "valid").H.matvec(x),
               rng.standard_normal((4, 3)), rng.standard_normal((3, 2)))
    check_grad(lambda x: linop.first_derivative((4, 3), axis=0, bc="neumann").H.matvec(x),
               rng.standard_normal((4, 3)))
    check_grad(lambda x, v: linop.csr(v, [0, 2, 1], [0, 2, 3], (2, 3)).H.matvec(x),
               rng.standard_normal(2), rng.standard_normal(3))
    # from_function: the adjoint is a VJP, and differentiable again
    check_grad(lambda y, w: linop.from_function(lambda x, w: ts.matmul(w, x), (3,), params=(w,)).H.matvec(y),
               rng.standard_normal(2), rng.standard_normal((2, 3)))


def test_simplification_rules():
    A = linop.aslinearoperator(T(rng.standard_normal((3, 4))), name="A")
    B = linop.aslinearoperator(T(rng.standard_normal((4, 2))), name="B")
    C = linop.aslinearoperator(T(rng.standard_normal((3, 4))), name="C")
    I4 = linop.identity(4)
    assert repr((A @ B).H) == "B.H @ A.H"
    assert A.H.H is A
    assert (I4.H is I4) and (A @ I4) is A and (linop.identity(3) @ A) is A
    assert repr((A + C).H) == "A.H + C.H"
    assert repr(2 * (3 * A)) == "6 * A"
    assert repr((2 * A).H) == "2 * A.H"
    assert repr(A + linop.zero(4, 3)) == "A"
    assert repr(A @ B @ linop.zero(2)) == "0"
    assert repr((A - C) @ B) == "(A + -1 * C) @ B"
    assert repr(linop.kron(A, B).H) == "kron(A.H, B.H)"
    L = linop.laplacian(4, name="L")
    assert L.H is L and repr(L ** 3) == "L @ L @ L" and (L ** 3).symmetric
    assert repr(L ** 0) == "I" and (L ** 1) is L
    N = A.H @ A
    assert N.symmetric and N.definite == "psd"
    nl = -linop.laplacian(4)
    assert nl.definite == "pos" and isinstance(nl, linop.Laplacian)
    d1, d2 = T([1.0, 2.0]), T([3.0, 4.0])
    P = linop.diagonal(d1) @ linop.diagonal(d2)
    assert isinstance(P, linop.Diagonal) and P.d.tolist() == [3.0, 8.0]
    assert "A.H @ A" in N.describe() and "positive semidefinite" in N.describe()


def test_shape_errors_name_operators():
    A = linop.aslinearoperator(T(np.ones((3, 4))), name="A")
    B = linop.aslinearoperator(T(np.ones((5, 2))), name="B")
    with pytest.raises(ShapeError, match=r"\[linop.matmul\] cannot compose A @ B.*\(4,\) -> \(3,\).*\(2,\) -> \(5,\)"):
        A @ B
    with pytest.raises(ShapeError, match=r"\[linop.add\].*A.*B"):
        A + B
    with pytest.raises(ShapeError, match=r"\[linop.matvec\] operator A expects .*\(4,\).*\(5,\)"):
        A @ T(np.ones(5))
    with pytest.raises(ShapeError, match=r"\[linop.power\]"):
        A ** 2
    with pytest.raises(ShapeError, match=r"\[linop.D\] axis 0 of shape \(0,\)"):
        linop.first_derivative(0)
    with pytest.raises(ShapeError, match=r"\[linop.restriction\]"):
        linop.restriction(4, [5])
    with pytest.raises(ValueError, match=r"\[linop.laplacian\] unknown boundary"):
        linop.laplacian(4, bc="robin")


# -- hypothesis: random operator trees pass the dot-product test -------------
def _leaf(draw, n):
    kind = draw(st.sampled_from(["mat", "diag", "lap", "d1", "conv", "id", "fn"]))
    r = np.random.default_rng(draw(st.integers(0, 10_000)))
    if kind == "mat":
        return linop.aslinearoperator(T(r.standard_normal((n, n))))
    if kind == "diag":
        return linop.diagonal(T(r.standard_normal(n)))
    if kind == "lap":
        return linop.laplacian(n, bc=draw(st.sampled_from(["dirichlet", "neumann", "periodic"])))
    if kind == "d1":
        return linop.first_derivative(n, bc=draw(st.sampled_from(["dirichlet", "neumann", "periodic"])),
                                      kind=draw(st.sampled_from(["forward", "backward", "central"])))
    if kind == "conv":
        return linop.convolve(T(r.standard_normal(3)), (n,), "same",
                              draw(st.sampled_from(["direct", "fft"])))
    if kind == "id":
        return linop.identity(n, ts.fp64)
    return linop.from_function(lambda x: ts.flip(x) * 2.0, (n,))


@st.composite
def trees(draw, n, depth=3):
    if depth == 0 or draw(st.booleans()):
        return _leaf(draw, n)
    op = draw(st.sampled_from(["@", "+", "*", "H", "pow"]))
    a = draw(trees(n, depth - 1))
    if op == "H":
        return a.H
    if op == "*":
        return draw(st.sampled_from([-2.0, 0.5, 3])) * a
    if op == "pow":
        return a ** draw(st.integers(0, 2))
    b = draw(trees(n, depth - 1))
    return a @ b if op == "@" else a + b


@settings(max_examples=40, deadline=None)
@given(st.integers(3, 7).flatmap(lambda n: trees(n)))
def test_dottest_random_trees(A):
    assert linop.dottest(A).passed
    D = A.to_dense().numpy()
    np.testing.assert_allclose(A.H.to_dense().numpy(), D.T, atol=1e-9)


def test_fft_fallback_ops_match_direct():
    """The xp FFT fallback (used when tessera.fft is absent) keeps its hand adjoints right."""
    import importlib
    cv = importlib.import_module("tessera.linop.convolve")
    x, k = rng.standard_normal((6, 5)), rng.standard_normal((3, 2))
    assert_close(cv._xp_fft_conv_full(T(x), T(k)), cv.conv_full_direct(T(x), T(k)).numpy(),
                 rtol=1e-10, atol=1e-12)
    check_grad(lambda x, k: cv._xp_fft_conv_full(x, k), x, k)
    g = rng.standard_normal((8, 6))
    check_grad(lambda g, k: cv._xp_fft_corr(g, k, (6, 5)), g, k)
    assert_close(cv._xp_fft_corr(T(g), T(k), (6, 5)), cv.fft_corr(T(g), T(k), (6, 5)).numpy(),
                 rtol=1e-10, atol=1e-12)
