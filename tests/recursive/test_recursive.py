"""Recursive operators against their dense matrices (NumPy / SciPy references),
dot-product tests, gradients against finite differences, training under autodiff,
and multigrid cutting CG's iteration count on Poisson."""
import numpy as np
import pytest
import scipy.linalg as sl

import tessera as ts
from tessera import linop
from tessera.recursive import HODLR, Butterfly, MultigridPreconditioner, bit_reversal, prolong, restrict
from tests.helpers import check_grad

pytestmark = pytest.mark.usefixtures("device")  # every test runs on each device

RNG = np.random.default_rng(0)


# -- butterfly ---------------------------------------------------------------------------
def test_butterfly_hadamard_and_fft_dense():
    assert np.allclose(Butterfly(16, init="hadamard", dtype="fp64").to_dense().numpy(),
                       sl.hadamard(16) / 4)
    F = Butterfly(32, init="fft").to_dense().numpy()
    np.testing.assert_allclose(F[:, bit_reversal(32)], np.fft.fft(np.eye(32), axis=0), atol=1e-12)
    x = RNG.standard_normal((3, 32))
    y = Butterfly(32, init="fft").apply(ts.asarray(x[:, bit_reversal(32)].astype(complex)))
    np.testing.assert_allclose(y.numpy(), np.fft.fft(x, axis=-1), atol=1e-12)


def _np_butterfly(f, x):
    """The recursion written directly: B_n x = M_n [B x_top; B' x_bot]."""
    n = x.shape[-1]
    L = f.shape[0]

    def rec(v, lvl, j):       # block j at depth lvl
        if lvl == L:
            return v
        h = len(v) // 2
        top, bot = rec(v[:h], lvl + 1, 2 * j), rec(v[h:], lvl + 1, 2 * j + 1)
        a, b, c, d = (f[lvl, i].reshape(1 << lvl, h)[j] for i in range(4))
        return np.concatenate([a * top + b * bot, c * top + d * bot])
    return rec(x, 0, 0) if n else x


@pytest.mark.parametrize("dtype", ["fp64", "complex128"])
def test_butterfly_matches_recursion_and_dottest(dtype):
    B = Butterfly(16, init="random", dtype=dtype, seed=3)
    f = B.factors.numpy()
    D = B.to_dense().numpy()
    np.testing.assert_allclose(D, np.stack([_np_butterfly(f, e) for e in np.eye(16)], 1), atol=1e-12)
    np.testing.assert_allclose(D @ D.conj().T, np.eye(16), atol=1e-12)   # rotations: orthogonal
    assert linop.dottest(B)
    assert linop.dottest(Butterfly(8, init="fft"))


def test_butterfly_gradients():
    f0 = Butterfly(8, init="random", dtype="fp64", seed=1).factors.numpy()
    check_grad(lambda f, x: Butterfly(8, factors=f).apply(x), f0, RNG.standard_normal((2, 8)))


def test_butterfly_learns_hadamard():
    target = Butterfly(16, init="hadamard", dtype="fp32")
    B = Butterfly(16, init="random", dtype="fp32", seed=2)
    opt = ts.optim.Adam([B.factors], lr=0.05)
    x = ts.asarray(RNG.standard_normal((64, 16)), dtype="fp32")
    with ts.no_grad():
        y = target.apply(x)
    losses = []
    for _ in range(150):
        opt.zero_grad()
        loss = ts.mean((B.apply(x) - y) ** 2)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.05 * losses[0], losses[::30]


def test_butterfly_bad_input():
    with pytest.raises(ts.errors.ShapeError, match=r"\[Butterfly\] n=12 must be a power of 2"):
        Butterfly(12)
    with pytest.raises(ts.errors.ShapeError, match=r"\[Butterfly\] input \(3, 4\)"):
        Butterfly(8).apply(ts.ones((3, 4)))
    with pytest.raises(ts.errors.DTypeError, match=r"\[Butterfly\] init='fft' needs a complex"):
        Butterfly(8, init="fft", dtype="fp32")


# -- HODLR -----------------------------------------------------------------------------------
def _np_hodlr(H):
    t = {k: getattr(H, k).numpy() for k in H._tensor_attrs}

    def rec(lvl, j, n):
        if lvl == H.levels:
            return t["leaves"][j]
        m = n // 2
        u, v = t[f"u{lvl}"][j], t[f"v{lvl}"][j]
        return np.block([[rec(lvl + 1, 2 * j, m), u[0] @ v[0].T],
                         [u[1] @ v[1].T, rec(lvl + 1, 2 * j + 1, m)]])
    return rec(0, 0, H.n)


def test_hodlr_dense_dottest_and_compression():
    H = HODLR(32, rank=3, leaf=4, dtype="fp64", seed=4)
    np.testing.assert_allclose(H.to_dense().numpy(), _np_hodlr(H), atol=1e-12)
    assert linop.dottest(H)
    x = RNG.standard_normal((5, 32))
    np.testing.assert_allclose(H.apply(ts.asarray(x)).numpy(), x @ _np_hodlr(H).T, atol=1e-12)
    A = RNG.standard_normal((8, 8))
    np.testing.assert_allclose(HODLR.from_dense(ts.asarray(A), rank=4, leaf=4).to_dense().numpy(),
                               A, atol=1e-10)   # full rank: exact
    i = np.linspace(0, 1, 64)
    K = np.exp(-np.abs(i[:, None] - i[None, :]))   # smooth off the diagonal: low rank
    assert np.abs(HODLR.from_dense(ts.asarray(K), rank=2, leaf=8).to_dense().numpy() - K).max() < 1e-6


def test_hodlr_gradients_and_training():
    H = HODLR(16, rank=2, leaf=4, dtype="fp64", seed=5)
    t0 = {k: getattr(H, k).numpy() for k in H._tensor_attrs}
    names = list(t0)

    def f(x, *vals):
        return HODLR(16, 2, 4, tensors=dict(zip(names, vals))).apply(x)
    check_grad(f, RNG.standard_normal((3, 16)), *t0.values())
    i = np.linspace(0, 1, 16)
    K = ts.asarray(np.exp(-np.abs(i[:, None] - i[None, :])), dtype="fp32")
    H = HODLR(16, rank=2, leaf=4, dtype="fp32", seed=6)
    opt = ts.optim.Adam([getattr(H, k) for k in H._tensor_attrs], lr=0.02)
    x = ts.asarray(RNG.standard_normal((32, 16)), dtype="fp32")
    losses = []
    for _ in range(100):
        opt.zero_grad()
        loss = ts.mean((H.apply(x) - ts.matmul(x, ts.matrix_transpose(K))) ** 2)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.05 * losses[0]


def test_hodlr_bad_input():
    with pytest.raises(ts.errors.ShapeError, match=r"\[HODLR\] n=24 must be leaf \* 2\^L"):
        HODLR(24, 2, 4)
    with pytest.raises(ts.errors.ShapeError, match=r"\[HODLR\] rank=5 must be in 1\.\.2"):
        HODLR(16, 5, 2)
    with pytest.raises(ts.errors.ShapeError, match=r"\[HODLR.from_dense\] n=16, leaf=2, rank=8"):
        HODLR.from_dense(ts.ones((16, 16)), rank=8, leaf=2)


# -- multigrid ----------------------------------------------------------------------------------
def test_prolong_restrict_are_adjoint():
    P = np.stack([prolong(ts.asarray(e)).numpy().ravel() for e in np.eye(9).reshape(9, 3, 3)], 1)
    R = np.stack([restrict(ts.asarray(e)).numpy().ravel() for e in np.eye(49).reshape(49, 7, 7)], 1)
    np.testing.assert_allclose(R, P.T / 4)          # 2-D full weighting = P^T / 2^d
    np.testing.assert_allclose(prolong(ts.asarray([1.0, 1.0, 1.0])).numpy(),
                               [0.5, 1, 1, 1, 1, 1, 0.5])


@pytest.mark.parametrize("shape", [(31,), (15, 15), (7, 7, 7)])
def test_multigrid_is_spd_and_dottest(shape):
    M = MultigridPreconditioner(shape, h=1.0 / (shape[0] + 1))
    assert linop.dottest(M)
    if len(shape) < 3:
        D = M.to_dense().numpy()
        np.testing.assert_allclose(D, D.T, atol=1e-10)
        assert np.linalg.eigvalsh(D).min() > 0


def test_multigrid_cuts_cg_iterations_on_poisson():
    n = 63
    A = -linop.laplacian((n, n), h=1.0 / (n + 1))
    b = ts.asarray(RNG.standard_normal((n, n)))
    x0, plain = linop.cg(A, b, rtol=1e-8)
    x1, pre = linop.cg(A, b, rtol=1e-8, M=MultigridPreconditioner((n, n), h=1.0 / (n + 1)))
    assert plain.converged and pre.converged
    assert pre.iterations * 10 < plain.iterations, (pre.iterations, plain.iterations)
    np.testing.assert_allclose(x1.numpy(), x0.numpy(), rtol=1e-5, atol=1e-7)


def test_multigrid_omega_trains():
    r = RNG.standard_normal(15)

    def f(w):
        M = MultigridPreconditioner(15, h=1 / 16, levels=2, steps=1, omega=w[0])
        return M.matvec(ts.asarray(r))
    check_grad(f, np.array([0.6]))
    # tune omega for one V-cycle as a solver: err = x - V(A x)
    A = -linop.laplacian(15, h=1 / 16)
    w = ts.asarray(0.3, dtype="fp64", requires_grad=True)
    x = ts.asarray(RNG.standard_normal((15,)))
    b = A.matvec(x)
    first = None
    for _ in range(30):
        err = ts.sum((x - MultigridPreconditioner(15, h=1 / 16, levels=2, steps=1, omega=w).matvec(b)) ** 2)
        first = first if first is not None else err.item()
        w.grad = None
        err.backward()
        with ts.no_grad():
            w -= 0.5 * w.grad / (abs(w.grad.item()) + 1e-12) * 0.05
    assert err.item() < first


def test_multigrid_bad_input():
    with pytest.raises(ts.errors.ShapeError, match=r"\[MultigridPreconditioner\] grid \(10,\)"):
        MultigridPreconditioner(10)
    with pytest.raises(ts.errors.ShapeError, match=r"levels=9 for grid \(15,\): accepted 1\.\.4"):
        MultigridPreconditioner(15, levels=9)
