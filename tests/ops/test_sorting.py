"""tessera.ops.sorting against NumPy: argsort/sort (stable, NaN last, both
directions), topk, take_along_axis, nonzero, searchsorted and the unique
family over random shapes, dtypes and layouts; gradients through the sorting
permutation (first and second order); every error path."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import tessera as ts
from tessera.autograd.engine import grad
from tessera.device import Device
from tessera.errors import DeviceError, DTypeError, IndexingError, ShapeError
from core_strategies import LAYOUTS, make, values
from helpers import assert_close, check_grad, raises_op as _raises

pytestmark = pytest.mark.usefixtures("device")  # every test runs on each device

DTYPES = ("fp32", "fp64", "fp16", "bf16", "int32", "int8", "uint8", "bool")


@st.composite
def operands(draw, dtypes=DTYPES, min_dims=1, nan=True):
    nd = draw(st.integers(min_dims, 3))
    shape = tuple(draw(st.lists(st.integers(1, 5), min_size=nd, max_size=nd)))
    dtype = draw(st.sampled_from(dtypes))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    a = values(rng, shape, dtype)
    if np.asarray(a).dtype.kind == "f":
        a = np.round(a)  # ties, to check stability
        if nan and a.size and draw(st.booleans()):
            a.flat[rng.integers(0, a.size, size=2)] = np.nan
    t, ref = make(a, dtype, draw(st.sampled_from(LAYOUTS)))
    return t, ref


def _np_argsort(r, axis, descending):
    if not descending:
        return np.argsort(r, axis=axis, kind="stable")
    key = -r if r.dtype.kind == "f" else -r.astype(np.int64)
    return np.argsort(key, axis=axis, kind="stable")


@given(operands(), st.data(), st.booleans())
def test_sort_and_argsort_match_numpy(x, data, descending):
    t, r = x
    axis = data.draw(st.integers(-t.ndim, t.ndim - 1))
    idx = _np_argsort(r, axis, descending)
    assert_close(ts.argsort(t, axis, descending=descending), idx)
    got = ts.sort(t, axis, descending=descending)
    assert got.dtype is t.dtype
    assert_close(got, np.take_along_axis(r, idx, axis), rtol=0, atol=0)


def test_nan_sorts_last_both_ways():
    x = ts.asarray([np.nan, 1.0, -np.inf, np.nan, 3.0])
    assert_close(ts.sort(x), np.array([-np.inf, 1, 3, np.nan, np.nan]))
    assert_close(ts.sort(x, descending=True), np.array([3, 1, -np.inf, np.nan, np.nan]))
    assert ts.argsort(x, descending=True).tolist() == [4, 1, 2, 0, 3]
    assert ts.sort(ts.asarray(2.0)).item() == 2.0 and ts.argsort(ts.asarray(2.0)).item() == 0


@given(operands(dtypes=("fp32", "fp64", "int32")), st.data(), st.booleans())
def test_topk_matches_numpy(x, data, largest):
    t, r = x
    axis = data.draw(st.integers(-t.ndim, t.ndim - 1))
    k = data.draw(st.integers(0, t.shape[axis]))
    vals, idx = ts.topk(t, k, axis, largest=largest)
    want = np.take(_np_argsort(r, axis, largest), np.arange(k), axis=axis)
    assert_close(idx, want)
    assert_close(vals, np.take_along_axis(r, want, axis), rtol=0, atol=0)


@given(operands(dtypes=("fp32", "fp64", "int32", "bf16"), nan=False), st.data())
def test_take_along_axis_matches_numpy(x, data):
    t, r = x
    axis = data.draw(st.integers(-t.ndim, t.ndim - 1))
    n = t.shape[axis]
    ishape = [data.draw(st.sampled_from([1, d])) for d in t.shape]
    ishape[axis] = data.draw(st.integers(0, 4))
    rng = np.random.default_rng(data.draw(st.integers(0, 100)))
    ind = rng.integers(-n, n, size=ishape)
    got = ts.take_along_axis(t, ts.asarray(ind), axis=axis)
    assert_close(got, np.take_along_axis(r, ind, axis), rtol=0, atol=0)


@given(operands(dtypes=("fp32", "int32", "bool", "fp16", "bf16"), nan=False))
def test_nonzero_matches_numpy(x):
    t, r = x
    got = ts.nonzero(t)
    want = np.nonzero(r)
    assert isinstance(got, tuple) and len(got) == len(want)
    for g, w in zip(got, want):
        assert g.dtype is ts.int64
        assert_close(g, w)


@given(st.data())
def test_searchsorted_matches_numpy(data):
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    d1 = data.draw(st.sampled_from(["fp32", "fp64", "int32", "bf16"]))
    d2 = data.draw(st.sampled_from(["fp32", "fp64", "int32"]))
    a = np.sort(np.round(rng.uniform(-5, 5, data.draw(st.integers(0, 8)))))
    v = np.round(rng.uniform(-6, 6, data.draw(st.lists(st.integers(0, 3), max_size=2))) * 2) / 2
    side = data.draw(st.sampled_from(["left", "right"]))
    x1 = ts.asarray(a, dtype=d1)
    x2 = ts.asarray(v, dtype=d2)
    r1, r2 = x1.numpy().astype(np.float64), x2.numpy().astype(np.float64)
    if data.draw(st.booleans()):
        perm = rng.permutation(a.size)
        inv = np.argsort(perm)
        got = ts.searchsorted(ts.asarray(r1[perm], dtype=d1), x2, side=side,
                              sorter=ts.asarray(inv))
    else:
        got = ts.searchsorted(x1, x2, side=side)
    assert got.dtype is ts.int64 and got.shape == x2.shape
    assert_close(got, np.searchsorted(r1, r2, side=side))


@given(operands(dtypes=("fp32", "fp64", "int32", "bool", "bf16"), min_dims=0))
def test_unique_family_matches_numpy(x):
    t, r = x
    want = np.unique_all(r)
    got = ts.unique_all(t)
    assert got.values.dtype is t.dtype
    assert got.inverse_indices.shape == t.shape
    for name in ("values", "indices", "inverse_indices", "counts"):
        assert_close(getattr(got, name), getattr(want, name).reshape(
            t.shape if name == "inverse_indices" else -1), rtol=0, atol=0)
    assert_close(ts.unique_values(t), want.values, rtol=0, atol=0)
    c = ts.unique_counts(t)
    assert_close(c.counts, want.counts)
    inv = ts.unique_inverse(t)
    assert_close(inv.values, want.values, rtol=0, atol=0)
    assert_close(inv.inverse_indices, want.inverse_indices.reshape(t.shape))


def test_unique_nans_are_distinct():
    u = ts.unique_counts(ts.asarray([np.nan, 1.0, np.nan, 1.0]))
    assert u.counts.tolist() == [2, 1, 1]
    assert np.isnan(u.values.numpy()[1:]).all()


# ---- gradients -----------------------------------------------------------------
X = np.random.default_rng(3).standard_normal((4, 5))


@pytest.mark.parametrize("fn", [
    lambda x: ts.sort(x),
    lambda x: ts.sort(x, axis=0, descending=True),
    lambda x: ts.sort(x.T, axis=-1) * ts.sort(x.T, axis=0),
    lambda x: ts.topk(x, 2, axis=1).values,
    lambda x: ts.topk(x, 3, axis=0, largest=False).values,
    lambda x: ts.take_along_axis(x, ts.asarray([[0, 0, 4, -1]]), axis=1),
    lambda x: ts.take_along_axis(x[:, :1], ts.asarray([[0, 0, 0]]), axis=1),
])
def test_gradients(fn):
    check_grad(fn, X)


def test_take_along_axis_second_order():
    idx = ts.asarray([[0, 0, 2], [1, 1, 1]])
    x = ts.asarray(np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]), requires_grad=True)
    (g,) = (grad((ts.take_along_axis(x, idx, axis=1) ** 3).sum(), x, create_graph=True),)
    counts = np.array([[2, 0, 1], [0, 3, 0]])
    assert_close(g, 3 * x.numpy() ** 2 * counts)
    assert_close(grad(g.sum(), x), 6 * x.numpy() * counts)


def test_sort_gradient_of_integer_input_is_not_recorded():
    assert not ts.sort(ts.asarray([3, 1, 2])).requires_grad


# ---- errors --------------------------------------------------------------------


def _elsewhere(t):
    u = ts.asarray(t.numpy())
    u.device = Device("cuda", 7)
    return u


def test_errors():
    x = ts.zeros((2, 3))
    i = ts.asarray([[0, 1, 2]])
    _raises(ShapeError, "argsort", lambda: ts.argsort(x, axis=2), "axis 2")
    _raises(ShapeError, "sort", lambda: ts.sort(x, axis=-3), "axis -3")
    _raises(ShapeError, "topk", lambda: ts.topk(x, 4), "k=4", "0..3")
    _raises(ShapeError, "topk", lambda: ts.topk(x, -1), "k=-1")
    _raises(ShapeError, "topk", lambda: ts.topk(ts.asarray(1.0), 1), "0-d")
    _raises(IndexingError, "take_along_axis", lambda: ts.take_along_axis(x, x, 1), "fp32")
    _raises(ShapeError, "take_along_axis", lambda: ts.take_along_axis(x, ts.asarray([0]), 1),
            "(2, 3)", "(1,)")
    _raises(IndexingError, "take_along_axis", lambda: ts.take_along_axis(x, i + 1, 1),
            "index 3")
    _raises(ShapeError, "take_along_axis",
            lambda: ts.take_along_axis(x, ts.zeros((3, 1), dtype="int64"), 1), "broadcast")
    _raises(DeviceError, "take_along_axis", lambda: ts.take_along_axis(x, _elsewhere(i), 1),
            "cuda:7")
    _raises(ShapeError, "nonzero", lambda: ts.nonzero(ts.asarray(1.0)), "0-d")
    s = ts.asarray([1.0, 2.0, 3.0])
    _raises(ShapeError, "searchsorted", lambda: ts.searchsorted(x, s), "1-D", "(2, 3)")
    _raises(ValueError, "searchsorted", lambda: ts.searchsorted(s, s, side="middle"),
            "'middle'")
    _raises(ShapeError, "searchsorted",
            lambda: ts.searchsorted(s, s, sorter=ts.asarray([0, 1])), "(2,)", "(3,)")
    _raises(IndexingError, "searchsorted", lambda: ts.searchsorted(s, s, sorter=s), "fp32")
    _raises(IndexingError, "searchsorted",
            lambda: ts.searchsorted(s, s, sorter=ts.asarray([0, 1, 5])), "index 5")
    _raises(DeviceError, "searchsorted", lambda: ts.searchsorted(s, _elsewhere(s)), "cuda:7")
    c = ts.asarray(np.array([1 + 1j, 2 + 0j]))
    _raises(DTypeError, "searchsorted", lambda: ts.searchsorted(c, c), "complex")
