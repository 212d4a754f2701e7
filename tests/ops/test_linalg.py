"""Linear algebra against NumPy float64: matmul over random batch shapes
(broadcasting, 1-D operands), dtypes (mixed ones promote) and layouts;
tensordot, vecdot, outer, linear, matrix_transpose; shape errors name both
shapes."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import tessera as ts
from tessera import dtypes as D
from helpers import assert_close, shares_memory, tol
from core_strategies import FLOATS, LAYOUTS, make, values

pytestmark = pytest.mark.usefixtures("device")  # every test runs on each device

PAIRS = [(d, d) for d in FLOATS] + [("fp16", "fp32"), ("bf16", "fp16"), ("int32", "fp32"),
                                    ("int8", "int8"), ("int8", "uint8"), ("int64", "int32")]


@st.composite
def matmul_case(draw):
    m, k, n = (draw(st.integers(1, 5)) for _ in range(3))
    batch = draw(st.lists(st.integers(1, 3), max_size=2))
    ba = [d if draw(st.booleans()) else 1 for d in batch]
    bb = [d if draw(st.booleans()) else 1 for d in batch]
    ba = ba[draw(st.integers(0, len(ba))):]
    a_vec = draw(st.integers(0, 4)) == 0
    b_vec = draw(st.integers(0, 4)) == 0
    sa = (k,) if a_vec else tuple(ba) + (m, k)
    sb = (k,) if b_vec else tuple(bb) + (k, n)
    return sa, sb


@given(shapes=matmul_case(), pair=st.sampled_from(PAIRS), swap=st.booleans(),
       layouts=st.tuples(st.sampled_from(LAYOUTS), st.sampled_from(LAYOUTS)),
       seed=st.integers(0, 2**32 - 1))
def test_matmul(shapes, pair, swap, layouts, seed):
    sa, sb = shapes
    da, db = pair[::-1] if swap else pair
    rng = np.random.default_rng(seed)
    a, ra = make(values(rng, sa, da), da, layouts[0])
    b, rb = make(values(rng, sb, db), db, layouts[1])
    out = ts.matmul(a, b)
    ref = np.matmul(ra.astype(np.float64), rb.astype(np.float64))
    dt = D.promote(a.dtype, b.dtype)
    assert out.dtype is dt and out.shape == ref.shape
    if dt.kind in "iu":
        np.testing.assert_array_equal(out.numpy(), ref.astype(np.int64))
    else:
        r, at = tol(dt)
        k = sa[-1]
        assert_close(out, ref, rtol=r, atol=at * k * 3)  # |values| <= 3: sums of k products
    assert_close(a @ b, out.numpy().astype(np.float64) if dt.kind == "f" else out.numpy(),
                 rtol=0, atol=0)


def test_matmul_half_accumulates_in_fp32():
    a = ts.ones((1, 4096), dtype="fp16")
    b = ts.ones((4096, 1), dtype="fp16")
    assert float(ts.matmul(a, b)) == 4096.0


def test_matmul_errors():
    with pytest.raises(ts.ShapeError, match=r"\[matmul\] shapes \(3, 4\) and \(5, 6\): inner "
                                            r"dimensions 4 and 5 differ"):
        ts.matmul(ts.ones((3, 4)), ts.ones((5, 6)))
    with pytest.raises(ts.ShapeError, match=r"\[matmul\] operands must be at least 1-D"):
        ts.matmul(ts.asarray(2.0), ts.ones((2,)))
    with pytest.raises(ts.ShapeError, match=r"\[matmul\] shapes do not broadcast"):
        ts.matmul(ts.ones((2, 3, 4)), ts.ones((5, 4, 2)))
    with pytest.raises(ts.DTypeError, match=r"\[matmul\]"):
        ts.matmul(ts.ones((2, 2), dtype="bool"), ts.ones((2, 2), dtype="bool"))


@given(st.data())
def test_tensordot(data):
    s = data.draw(st.lists(st.integers(1, 4), min_size=2, max_size=4))
    n = data.draw(st.integers(0, min(2, len(s) - 1)))
    a_shape = tuple(s)
    b_shape = tuple(s[len(s) - n:]) + (data.draw(st.integers(1, 3)),)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    a, ra = make(values(rng, a_shape, "fp64"), "fp64", data.draw(st.sampled_from(LAYOUTS)))
    b, rb = make(values(rng, b_shape, "fp64"), "fp64")
    assert_close(ts.tensordot(a, b, axes=n), np.tensordot(ra, rb, axes=n))


def test_tensordot_explicit_axes_and_error():
    ra = np.arange(24.0).reshape(2, 3, 4)
    rb = np.arange(12.0).reshape(4, 3)
    a, b = ts.asarray(ra, dtype="fp64"), ts.asarray(rb, dtype="fp64")
    assert_close(ts.tensordot(a, b, axes=([1, 2], [1, 0])), np.tensordot(ra, rb, axes=([1, 2], [1, 0])))
    with pytest.raises(ts.ShapeError, match=r"\[tensordot\] contracted dimensions differ"):
        ts.tensordot(a, b, axes=([0], [0]))


@given(st.data())
def test_vecdot_outer_linear(data):
    n = data.draw(st.integers(1, 5))
    lead = tuple(data.draw(st.lists(st.integers(1, 3), max_size=2)))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    dtype = data.draw(st.sampled_from(FLOATS))
    x, rx = make(values(rng, lead + (n,), dtype), dtype, data.draw(st.sampled_from(LAYOUTS)))
    y, ry = make(values(rng, (n,), dtype), dtype)
    r, at = tol(dtype)
    assert_close(ts.vecdot(x, y), np.sum(rx * ry, axis=-1), rtol=r, atol=at * n * 3)
    assert_close(ts.outer(y, y), np.outer(ry, ry))
    w, rw = make(values(rng, (3, n), dtype), dtype)
    bias, rbias = make(values(rng, (3,), dtype), dtype)
    assert_close(ts.linear(x, w, bias), rx @ rw.T + rbias, rtol=r, atol=at * n * 4)
    assert_close(ts.linear(x, w), rx @ rw.T, rtol=r, atol=at * n * 4)


def test_matrix_transpose():
    a = np.arange(24.0).reshape(2, 3, 4)
    x = ts.asarray(a, dtype="fp64")
    t = ts.matrix_transpose(x)
    assert_close(t, np.swapaxes(a, -1, -2))
    assert shares_memory(t, x)


def test_vecdot_size_mismatch():
    with pytest.raises(ts.ShapeError, match=r"\[vecdot\] sizes along axis -1 differ"):
        ts.vecdot(ts.ones((3,)), ts.ones((4,)))
