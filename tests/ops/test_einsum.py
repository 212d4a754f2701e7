"""einsum, diagonal and trace against NumPy: a table of the classic forms plus
random subscripts (repeated and summed indices, '...' broadcasting, size-1
broadcasting) over dtypes and layouts; first-order gradients by directional
finite differences and second-order ones through `grad(create_graph=True)`;
every error path."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import tessera as ts
from tessera.autograd.engine import grad
from tessera.device import Device
from tessera.errors import DeviceError, ShapeError
from core_strategies import make
from helpers import assert_close, check_grad, tol, raises_op as _raises

pytestmark = pytest.mark.usefixtures("device")  # every test runs on each device

CASES = [
    ("ij,jk->ik", ((2, 3), (3, 4))),
    ("ij,jk", ((2, 3), (3, 4))),
    ("ii", ((3, 3),)),
    ("ii->i", ((3, 3),)),
    ("iij->j", ((3, 3, 4),)),
    ("iji->j", ((2, 3, 2),)),
    ("ij->ji", ((2, 3),)),
    ("ij->", ((2, 3),)),
    ("Ba", ((2, 3),)),
    ("bA", ((2, 3),)),
    ("i,i", ((4,), (4,))),
    ("i,j->ij", ((2,), (3,))),
    ("i,j,k", ((2,), (3,), (4,))),
    ("bij,bjk->bik", ((2, 3, 4), (2, 4, 5))),
    ("bij,bjk,bkl->bil", ((2, 3, 4), (2, 4, 5), (2, 5, 2))),
    ("ab,cd,bc->ad", ((2, 3), (4, 5), (3, 4))),
    ("ijk,kji", ((2, 3, 4), (4, 3, 2))),
    ("...ij,...jk->...ik", ((5, 2, 3), (3, 4))),
    ("i...,i...", ((2, 3), (2, 1))),
    ("...,...", ((2, 3), (3,))),
    ("ij,ij->ij", ((1, 3), (2, 3))),
    ("ij,jk", ((2, 1), (3, 3))),
    ("i,i", ((0,), (0,))),
    ("ij,jk", ((2, 0), (0, 3))),
    (" ij , jk -> ik ", ((2, 3), (3, 4))),
    ("ij,kl,jk->", ((2, 3), (4, 2), (3, 4))),
]


def _arrays(shapes, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s) for s in shapes]


@pytest.mark.parametrize("sub, shapes", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("dtype", ["fp64", "fp32"])
def test_einsum_matches_numpy(sub, shapes, dtype):
    arrs = _arrays(shapes)
    got = ts.einsum(sub, *[ts.asarray(a, dtype=dtype) for a in arrs])
    assert got.dtype is ts.dtypes.get_dtype(dtype)
    r, a = tol(dtype)
    assert_close(got, np.einsum(sub, *arrs), rtol=r * 10, atol=a * 10)


@st.composite
def einsum_problems(draw):
    """Random subscripts over labels 'abcd' (repeats allowed), 1-3 operands,
    sizes 1-3 with some operands using size 1 (broadcast), implicit or explicit
    output, optional leading '...'."""
    sizes = {l: draw(st.integers(1, 3)) for l in "abcd"}
    n = draw(st.integers(1, 3))
    ell = draw(st.integers(0, 2)) if draw(st.booleans()) else None
    terms, shapes = [], []
    for _ in range(n):
        labs = draw(st.lists(st.sampled_from("abcd"), max_size=3))
        shape = [sizes[l] for l in labs]
        if labs and draw(st.booleans()):  # a size-1 dimension broadcasting
            i = draw(st.integers(0, len(labs) - 1))
            if labs.count(labs[i]) == 1:
                shape[i] = 1
        term = "".join(labs)
        if ell is not None:
            k = draw(st.integers(0, ell))
            term = "..." + term
            shape = [draw(st.sampled_from([1, 2])) if j == 0 else 2 for j in range(k)] + shape
        terms.append(term)
        shapes.append(tuple(shape))
    used = sorted({l for t in terms for l in t if l != "."})
    if draw(st.booleans()):
        out = "".join(draw(st.permutations(used))[:draw(st.integers(0, len(used)))])
        sub = ",".join(terms) + "->" + ("..." if ell is not None else "") + out
    else:
        sub = ",".join(terms)
    return sub, shapes


@given(einsum_problems(), st.sampled_from(["fp64", "fp32", "int32"]),
       st.sampled_from(["contiguous", "transposed", "flipped"]), st.integers(0, 1000))
def test_random_einsum_matches_numpy(problem, dtype, layout, seed):
    sub, shapes = problem
    rng = np.random.default_rng(seed)
    ts_, refs = [], []
    for s in shapes:
        a = rng.integers(-3, 4, size=s) if dtype == "int32" else rng.standard_normal(s)
        t, r = make(a, dtype, layout)
        ts_.append(t)
        refs.append(r)
    try:
        want = np.einsum(sub, *refs)
    except ValueError:
        with pytest.raises(ShapeError, match=r"^\[einsum\]"):
            ts.einsum(sub, *ts_)
        return
    got = ts.einsum(sub, *ts_)
    assert got.dtype is ts_[0].dtype
    r, a = tol(dtype)
    assert_close(got, want, rtol=r * 10, atol=a * 10)


def test_bool_einsum():
    a = np.array([[True, False], [False, True]])
    b = np.array([[False, True], [False, False]])
    got = ts.einsum("ij,jk->ik", ts.asarray(a), ts.asarray(b))
    assert got.dtype is ts.bool_
    assert_close(got, np.einsum("ij,jk->ik", a, b))


@pytest.mark.parametrize("offset", [-2, -1, 0, 1, 3])
@pytest.mark.parametrize("axes", [(-2, -1), (0, 2), (2, 0), (1, 0)])
def test_diagonal_and_trace_match_numpy(offset, axes):
    t, r = make(np.arange(60.0).reshape(3, 4, 5), "fp32", "transposed")
    assert_close(ts.diagonal(t, offset, *axes), np.diagonal(r, offset, *axes))
    assert_close(ts.trace(t, offset, *axes), np.trace(r, offset, *axes))
    check_grad(lambda x: ts.diagonal(x, offset, *axes), r)


# ---- gradients -----------------------------------------------------------------
GRAD_CASES = [c for c in CASES if all(0 not in s for s in c[1])]


@pytest.mark.parametrize("sub, shapes", GRAD_CASES, ids=[c[0] for c in GRAD_CASES])
def test_einsum_gradients(sub, shapes):
    check_grad(lambda *xs: ts.einsum(sub, *xs), *_arrays(shapes, seed=1))


def check_second_order(fn, *arrays, eps=1e-6, seed=0):
    """d/dx <u, grad_x0 <w, fn(x)>> from the tape, double backward (create_graph),
    against central differences of the first-order tape gradient along v."""
    rng = np.random.default_rng(seed)
    out_shape = fn(*[ts.asarray(a) for a in arrays]).shape
    w = ts.asarray(rng.standard_normal(out_shape))
    u = ts.asarray(rng.standard_normal(np.shape(arrays[0])))
    vs = [rng.standard_normal(np.shape(a)) for a in arrays]

    def h(xs, create):
        g0 = grad((fn(*xs) * w).sum(), xs[0], create_graph=create)
        return (g0 * u).sum()
    xs = [ts.asarray(a, requires_grad=True) for a in arrays]
    hs = grad(h(xs, True), xs, allow_unused=True)
    analytic = sum(float((g.numpy() * v).sum()) for g, v in zip(hs, vs) if g is not None)

    def h_at(step):
        ys = [ts.asarray(a + step * v, requires_grad=True) for a, v in zip(arrays, vs)]
        return float(h(ys, False))
    numeric = (h_at(eps) - h_at(-eps)) / (2 * eps)
    assert np.isclose(analytic, numeric, rtol=1e-5, atol=1e-7), (analytic, numeric)
    assert abs(numeric) > 1e-3  # the second derivative is not trivially zero


@pytest.mark.parametrize("sub, shapes", [
    ("ij,jk->ik", ((2, 3), (3, 4))),
    ("ii,i->i", ((3, 3), (3,))),
    ("bij,bjk->bik", ((2, 3, 4), (2, 4, 5))),
    ("...ij,...j->...i", ((2, 3, 4), (4,))),
    ("ij,ij->", ((2, 3), (2, 3))),
    ("iij,jk->ik", ((3, 3, 2), (2, 4))),
])
def test_einsum_grad_of_grad(sub, shapes):
    check_second_order(lambda *xs: ts.einsum(sub, *xs), *_arrays(shapes, seed=2))


def test_einsum_grad_of_grad_single_operand_nonlinear():
    check_second_order(lambda x: ts.einsum("ii->", x) * ts.einsum("ij,ij->", x, x),
                       *_arrays([(3, 3)], seed=3))


# ---- errors --------------------------------------------------------------------


def test_einsum_errors():
    a, b = ts.zeros((2, 3)), ts.zeros((4, 5))
    _raises(ShapeError, "einsum", lambda: ts.einsum("ij,jk", a), "2 operand", "got 1")
    _raises(ShapeError, "einsum", lambda: ts.einsum("i1", a), "invalid subscripts")
    _raises(ShapeError, "einsum", lambda: ts.einsum("...i...", a), "invalid subscripts")
    _raises(ShapeError, "einsum", lambda: ts.einsum("i.j", a), "invalid subscripts")
    _raises(ShapeError, "einsum", lambda: ts.einsum("ijk", a), "2 dimension", "'ijk'")
    _raises(ShapeError, "einsum", lambda: ts.einsum("ijk...", a), "fewer")
    _raises(ShapeError, "einsum", lambda: ts.einsum("ij->k", a), "'k'")
    _raises(ShapeError, "einsum", lambda: ts.einsum("ij->ii", a), "repeat")
    _raises(ShapeError, "einsum", lambda: ts.einsum("ij->i->j", a), "more than one")
    _raises(ShapeError, "einsum", lambda: ts.einsum("ij->i!", a), "invalid output")
    _raises(ShapeError, "einsum", lambda: ts.einsum("ij,jk", a, b), "'j'", "(2, 3)", "(4, 5)")
    _raises(ShapeError, "einsum", lambda: ts.einsum("ii", a), "repeated", "(2, 3)")
    _raises(ShapeError, "einsum", lambda: ts.einsum("...j->j", ts.zeros((2, 3))), "'...'")
    _raises(ShapeError, "einsum", lambda: ts.einsum(3, a), "string")
    _raises(ShapeError, "einsum", lambda: ts.einsum("ij"), "at least one")
    other = ts.zeros((3, 4))
    other.device = Device("cuda", 7)
    _raises(DeviceError, "einsum", lambda: ts.einsum("ij,jk", a, other), "cuda:7")


def test_diagonal_errors():
    _raises(ShapeError, "diagonal", lambda: ts.diagonal(ts.zeros(3)), "(3,)")
    _raises(ShapeError, "diagonal", lambda: ts.diagonal(ts.zeros((2, 2)), 0, 1, -1), "same axis")
    _raises(ShapeError, "diagonal", lambda: ts.diagonal(ts.zeros((2, 2)), 0, 0, 2), "axis 2")
