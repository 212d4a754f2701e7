"""Indexing against NumPy: random basic keys (ints, slices with any step,
ellipsis, None), integer-tensor and bool-mask keys, get and set, on every
layout; take / index_add / index_put; errors name the op and the axis."""
import numpy as np
import pytest
from hypothesis import given, strategies as st
from hypothesis.extra import numpy as hnp

import tessera as ts
from core_strategies import FLOATS, LAYOUTS, make, shapes, values
from helpers import shares_memory

pytestmark = pytest.mark.usefixtures("device")  # every test runs on each device


def _tkey(key):
    """The same key for tessera: NumPy index arrays become tensors."""
    if isinstance(key, tuple):
        return tuple(ts.asarray(k) if isinstance(k, np.ndarray) else k for k in key)
    return ts.asarray(key) if isinstance(key, np.ndarray) else key


@st.composite
def case(draw, min_dims=1):
    shape = draw(shapes(min_dims=min_dims, max_dims=4, max_side=5))
    dtype = draw(st.sampled_from(FLOATS + ("int32", "bool")))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x, rx = make(values(rng, shape, dtype), dtype, draw(st.sampled_from(LAYOUTS)))
    return x, rx


@given(case(), st.data())
def test_basic_getitem(xr, data):
    x, rx = xr
    key = data.draw(hnp.basic_indices(rx.shape, allow_newaxis=True, allow_ellipsis=True))
    out = x[key]
    ref = rx[key]
    assert out.shape == ref.shape and out.dtype is x.dtype
    np.testing.assert_array_equal(np.asarray(out.numpy(), ref.dtype), ref)
    if out.size:
        assert shares_memory(out, x)  # basic indexing gives a view


@given(case(), st.data())
def test_integer_array_getitem(xr, data):
    x, rx = xr
    key = data.draw(hnp.integer_array_indices(rx.shape, result_shape=hnp.array_shapes(
        min_dims=0, max_dims=2, max_side=3)))
    out = x[_tkey(key)]
    ref = rx[key]
    assert out.shape == ref.shape
    np.testing.assert_array_equal(np.asarray(out.numpy(), ref.dtype), ref)


@given(case(), st.data())
def test_mixed_advanced_getitem(xr, data):
    x, rx = xr
    ax = data.draw(st.integers(0, rx.ndim - 1))
    idx = np.asarray(data.draw(st.lists(st.integers(-rx.shape[ax], rx.shape[ax] - 1),
                                        min_size=1, max_size=4)))
    key = (slice(None),) * ax + (idx,)
    if data.draw(st.booleans()):
        key = key + (Ellipsis,)
    out = x[_tkey(key)]
    np.testing.assert_array_equal(np.asarray(out.numpy(), rx.dtype), rx[key])
    # take along the same axis
    np.testing.assert_array_equal(np.asarray(ts.take(x, ts.asarray(idx), axis=ax).numpy(),
                                             rx.dtype), np.take(rx, idx, axis=ax))


@given(case(), st.data())
def test_bool_mask_getitem(xr, data):
    x, rx = xr
    k = data.draw(st.integers(1, rx.ndim))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    lead = data.draw(st.integers(0, rx.ndim - k))
    mask = rng.random(rx.shape[lead:lead + k]) < 0.5
    key = (slice(None),) * lead + (mask,)
    out = x[_tkey(key)]
    np.testing.assert_array_equal(np.asarray(out.numpy(), rx.dtype), rx[key])


@given(case(), st.data())
def test_setitem_basic_and_advanced(xr, data):
    x, rx = xr
    kind = data.draw(st.sampled_from(["basic", "int", "mask"]))
    if kind == "basic":
        key = data.draw(hnp.basic_indices(rx.shape, allow_newaxis=True, allow_ellipsis=True))
    elif kind == "int":
        key = data.draw(hnp.integer_array_indices(rx.shape))
        # repeated indices in a set: NumPy's last write wins; keep them distinct
        flat = np.ravel_multi_index(tuple(np.mod(k, s) for k, s in zip(key, rx.shape)), rx.shape)
        if len(np.unique(flat)) != flat.size:
            return
    else:
        key = np.random.default_rng(0).random(rx.shape) < 0.5
    target_shape = rx[key].shape
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    scalar = data.draw(st.booleans())
    if scalar:
        v = rx.dtype.type(1)
        tv = True if x.dtype.kind == "b" else (1 if x.dtype.kind in "iu" else 1.0)
    else:
        v = values(rng, target_shape, x.dtype.name)
        tv = ts.asarray(v, dtype=x.dtype)
        v = np.asarray(tv.numpy(), rx.dtype)
    ref = rx.copy()
    ref[key] = v
    x[_tkey(key)] = tv
    np.testing.assert_array_equal(np.asarray(x.numpy(), rx.dtype), ref)


def test_setitem_through_strided_view_writes_base():
    base = ts.zeros((4, 6), dtype="fp32")
    v = base[::2, ::-3]
    v[...] = ts.asarray([[1.0, 2.0], [3.0, 4.0]])
    ref = np.zeros((4, 6), np.float32)
    ref[::2, ::-3] = [[1.0, 2.0], [3.0, 4.0]]
    np.testing.assert_array_equal(base.numpy(), ref)


def test_setitem_broadcasts_value():
    x = ts.zeros((3, 4))
    x[:, 1:3] = ts.asarray([5.0, 6.0])
    ref = np.zeros((3, 4))
    ref[:, 1:3] = [5.0, 6.0]
    np.testing.assert_array_equal(x.numpy(), ref)


def test_setitem_shape_mismatch_raises():
    x = ts.zeros((3, 4))
    with pytest.raises(ts.ShapeError, match=r"\[setitem\] cannot assign a value of shape \(3,\)"):
        x[0] = ts.ones((3,))


def test_index_add_accumulates_repeats():
    x = ts.zeros((4,), dtype="fp64")
    out = ts.index_add(x, ts.asarray([0, 2, 0, 0]), ts.asarray([1.0, 2.0, 3.0, 4.0], dtype="fp64"))
    assert out.tolist() == [8.0, 0.0, 2.0, 0.0]
    assert x.tolist() == [0.0] * 4  # out of place
    out2 = ts.index_add(ts.ones((2, 3)), (slice(None), 1), 2.0)
    np.testing.assert_array_equal(out2.numpy(), [[1, 3, 1], [1, 3, 1]])


def test_index_put():
    x = ts.zeros((2, 3))
    out = ts.index_put(x, (1, ts.asarray([0, 2])), ts.asarray([7.0, 8.0]))
    np.testing.assert_array_equal(out.numpy(), [[0, 0, 0], [7, 0, 8]])
    assert float(ts.sum(x)) == 0.0


def test_take_flat_and_negative():
    a = np.arange(12.0).reshape(3, 4)
    x = ts.asarray(a)
    np.testing.assert_array_equal(ts.take(x, ts.asarray([11, -1, 0])).numpy(),
                                  np.take(a, [11, -1, 0]))
    np.testing.assert_array_equal(ts.take(x, ts.asarray([[0, 2]]), axis=1).numpy(),
                                  np.take(a, [[0, 2]], axis=1))


@pytest.mark.parametrize("key,match", [
    (5, r"\[getitem\] index 5 is out of range for axis 0 with size 3 \(shape \(3, 4\)\)"),
    (-4, r"\[getitem\] index -4 is out of range for axis 0"),
    ((0, 4), r"\[getitem\] index 4 is out of range for axis 1 with size 4"),
    ((0, 0, 0), r"\[getitem\] too many indices: 3 for a tensor of 2"),
    ((Ellipsis, Ellipsis), r"single ellipsis"),
    ("a", r"\[getitem\] unsupported index 'a'"),
    (1.5, r"\[getitem\] unsupported index 1.5"),
])
def test_getitem_errors(key, match):
    x = ts.zeros((3, 4))
    with pytest.raises(ts.IndexingError, match=match) as e:
        x[key]
    assert isinstance(e.value, IndexError)


@pytest.mark.parametrize("make_key,match", [
    (lambda: ts.asarray([0, 3]), r"\[getitem\] index 3 is out of range for axis 0 with size 3"),
    (lambda: (slice(None), ts.asarray([-5])), r"index -5 is out of range for axis 1 with size 4"),
    (lambda: ts.asarray([0.0, 1.0]), r"index tensors must be integer or bool, got fp32"),
    (lambda: ts.asarray([True, False]), r"boolean mask of shape \(2,\) does not match"),
    (lambda: [0.5], r"index arrays must be integer or bool"),
])
def test_advanced_index_errors(make_key, match):
    x = ts.zeros((3, 4))
    with pytest.raises(ts.IndexingError, match=match):
        x[make_key()]


def test_setitem_errors_name_setitem():
    x = ts.zeros((3, 4))
    with pytest.raises(ts.IndexingError, match=r"\[setitem\] index 3 is out of range"):
        x[3] = 1.0
    with pytest.raises(ts.IndexingError, match=r"\[setitem\] index 9 is out of range"):
        x[ts.asarray([0, 9])] = 1.0
    with pytest.raises(ts.IndexingError, match=r"\[take\]|\[getitem\]"):
        ts.take(x, ts.asarray([12]))
