"""Movement ops against NumPy over random shapes, dtypes and layouts; views
share storage and the version counter with their base."""
import numpy as np
import pytest
from hypothesis import given, strategies as st
from hypothesis.extra import numpy as hnp

import tessera as ts
from helpers import assert_close, shares_memory
from core_strategies import FLOATS, INTS, LAYOUTS, make, shapes, values

pytestmark = pytest.mark.usefixtures("device")  # every test runs on each device

DTYPES = FLOATS + INTS + ("bool",)


@st.composite
def operand(draw, min_dims=0, max_dims=4):
    shape = draw(shapes(min_dims=min_dims, max_dims=max_dims, max_side=4))
    dtype = draw(st.sampled_from(DTYPES))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return make(values(rng, shape, dtype), dtype, draw(st.sampled_from(LAYOUTS)))


def _eq(out, ref):
    assert out.shape == ref.shape
    np.testing.assert_array_equal(np.asarray(out.numpy(), dtype=ref.dtype), ref)


@given(operand(), st.data())
def test_reshape(xr, data):
    x, rx = xr
    n = rx.size
    divisors = [d for d in range(1, n + 1) if n % d == 0]
    a = data.draw(st.sampled_from(divisors))
    shape = data.draw(st.sampled_from([(n,), (a, n // a), (n // a, 1, a), (-1, a), (a, -1),
                                       (1, -1)]))
    _eq(ts.reshape(x, shape), rx.reshape(shape))
    assert x.reshape(shape).dtype is x.dtype


@given(operand(min_dims=1), st.data())
def test_permute_dims_and_moveaxis(xr, data):
    x, rx = xr
    perm = data.draw(st.permutations(range(rx.ndim)))
    _eq(ts.permute_dims(x, tuple(perm)), np.transpose(rx, perm))
    src = data.draw(st.integers(-rx.ndim, rx.ndim - 1))
    dst = data.draw(st.integers(-rx.ndim, rx.ndim - 1))
    _eq(ts.moveaxis(x, src, dst), np.moveaxis(rx, src, dst))


@given(operand(max_dims=3), st.data())
def test_expand_dims_and_squeeze(xr, data):
    x, rx = xr
    ax = data.draw(st.integers(-rx.ndim - 1, rx.ndim))
    e = ts.expand_dims(x, ax)
    re = np.expand_dims(rx, ax)
    _eq(e, re)
    _eq(ts.squeeze(e, ax), rx)
    _eq(ts.squeeze(x), np.squeeze(rx))


@given(operand(max_dims=3), st.data())
def test_broadcast_to(xr, data):
    x, rx = xr
    lead = data.draw(st.lists(st.integers(1, 3), max_size=2))
    target = tuple(lead) + tuple(d if d != 1 else data.draw(st.integers(1, 3)) for d in rx.shape)
    _eq(ts.broadcast_to(x, target), np.broadcast_to(rx, target))


@given(st.data())
def test_broadcast_arrays(data):
    ss, _ = data.draw(hnp.mutually_broadcastable_shapes(num_shapes=3, max_side=3))
    rng = np.random.default_rng(0)
    arrs = [values(rng, s, "fp32") for s in ss]
    outs = ts.broadcast_arrays(*[ts.asarray(a, dtype="fp64") for a in arrs])
    for o, r in zip(outs, np.broadcast_arrays(*arrs)):
        _eq(o, r)


@given(operand(), st.data())
def test_flip(xr, data):
    x, rx = xr
    axis = data.draw(st.one_of(st.none(), st.integers(-max(rx.ndim, 1), max(rx.ndim, 1) - 1)
                               if rx.ndim else st.none()))
    _eq(ts.flip(x, axis=axis), np.flip(rx, axis=axis))


@given(operand(min_dims=1), st.data())
def test_roll(xr, data):
    x, rx = xr
    shift = data.draw(st.integers(-5, 5))
    axis = data.draw(st.one_of(st.none(), st.integers(-rx.ndim, rx.ndim - 1)))
    _eq(ts.roll(x, shift, axis=axis), np.roll(rx, shift, axis=axis))
    if rx.ndim >= 2:
        _eq(ts.roll(x, (1, -2), axis=(0, 1)), np.roll(rx, (1, -2), axis=(0, 1)))


@given(operand())
def test_copy_and_contiguous(xr):
    x, rx = xr
    c = ts.copy(x)
    _eq(c, rx)
    assert c.is_contiguous() and not shares_memory(c, x)
    k = ts.contiguous(x)
    _eq(k, rx)
    assert k.is_contiguous()
    if x.is_contiguous():
        assert k is x


VIEW_OPS = [
    ("reshape", lambda t: ts.reshape(t, (4, 3))),
    ("permute_dims", lambda t: ts.permute_dims(t, (1, 0))),
    ("expand_dims", lambda t: ts.expand_dims(t, 0)),
    ("flip", lambda t: ts.flip(t, 0)),
    ("T", lambda t: t.T),
    ("getitem", lambda t: t[1:, ::2]),
    ("squeeze", lambda t: ts.squeeze(ts.expand_dims(t, 1), 1)),
]


@pytest.mark.parametrize("name,fn", VIEW_OPS, ids=[v[0] for v in VIEW_OPS])
def test_views_share_storage_and_version(name, fn):
    base = ts.asarray(np.arange(12.0).reshape(3, 4), dtype="fp32")
    v = fn(base)
    assert shares_memory(v, base)
    assert v._version is base._version
    before = base._version.v
    v[...] = -1.0  # write through the view
    assert base._version.v == before + 1
    # the elements the view covers, found by applying it to the element numbers
    covered = fn(ts.asarray(np.arange(12).reshape(3, 4))).numpy().ravel()
    expect = np.arange(12.0).reshape(3, 4)
    expect[np.isin(np.arange(12).reshape(3, 4), covered)] = -1.0
    np.testing.assert_array_equal(base.numpy(), expect)


def test_broadcast_to_is_a_view_and_copy_is_not():
    base = ts.asarray([1.0, 2.0])
    b = ts.broadcast_to(base, (3, 2))
    assert shares_memory(b, base)
    c = ts.copy(base)
    c[0] = 9.0
    assert base.tolist() == [1.0, 2.0]


def test_reshape_of_noncontiguous_copies_but_keeps_values():
    a = np.arange(12.0).reshape(3, 4)
    x = ts.asarray(a).T
    r = ts.reshape(x, (12,))
    np.testing.assert_array_equal(r.numpy(), a.T.ravel())


@pytest.mark.parametrize("fn,match", [
    (lambda: ts.reshape(ts.ones((2, 3)), (4, 2)), r"\[reshape\] cannot reshape \(2, 3\)"),
    (lambda: ts.reshape(ts.ones((2, 3)), (-1, -1)), r"\[reshape\] only one dimension"),
    (lambda: ts.reshape(ts.ones((2, 3)), (-1, 4)), r"\[reshape\]"),
    (lambda: ts.reshape(ts.ones((2, 3)), (2.0, 3)), r"\[reshape\] shape must be integers"),
    (lambda: ts.permute_dims(ts.ones((2, 3)), (0, 0)), r"\[permute_dims\] axes \(0, 0\)"),
    (lambda: ts.permute_dims(ts.ones((2, 3)), (0, 2)), r"\[permute_dims\] axis 2 is out of range"),
    (lambda: ts.squeeze(ts.ones((2, 3)), 0), r"\[squeeze\] axis 0 of shape \(2, 3\) has size 2"),
    (lambda: ts.broadcast_to(ts.ones((2, 3)), (3, 3)), r"\[broadcast_to\]"),
    (lambda: ts.broadcast_to(ts.ones((2, 3)), (3,)), r"\[broadcast_to\]"),
    (lambda: ts.expand_dims(ts.ones((2,)), 3), r"\[expand_dims\] axis 3 is out of range"),
    (lambda: ts.flip(ts.ones((2,)), 1), r"\[flip\] axis 1 is out of range"),
    (lambda: ts.roll(ts.ones((2, 2)), (1, 2, 3), axis=(0, 1)), r"\[roll\]"),
    (lambda: ts.moveaxis(ts.ones((2, 2)), 0, 5), r"\[moveaxis\]"),
])
def test_movement_errors(fn, match):
    with pytest.raises(ts.ShapeError, match=match):
        fn()


def test_values_roundtrip_through_movement():
    a = np.arange(24.0).reshape(2, 3, 4)
    x = ts.asarray(a, dtype="fp64")
    y = ts.flip(ts.permute_dims(ts.reshape(x, (4, 3, 2)), (2, 0, 1)), axis=1)
    assert_close(y, np.flip(np.transpose(a.reshape(4, 3, 2), (2, 0, 1)), axis=1))
