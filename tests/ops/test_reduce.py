"""Reductions against NumPy float64 over random shapes, axes (None, int,
negative, tuples), keepdims, dtypes and layouts; accumulation dtypes; the lazy
path (a reduction of a pending elementwise producer) against fusion off."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tessera as ts
from helpers import assert_close, tol, to_np64
from core_strategies import (BIG_SHAPES, FLOATS, INTS, LAYOUTS, fusion_mode, make, shapes,
                             values)

pytestmark = pytest.mark.usefixtures("device")  # every test runs on each device


@st.composite
def axes_for(draw, ndim):
    kind = draw(st.sampled_from(["none", "int", "neg", "tuple"]))
    if kind == "none" or ndim == 0:
        return None
    if kind == "int":
        return draw(st.integers(0, ndim - 1))
    if kind == "neg":
        return draw(st.integers(-ndim, -1))
    return tuple(draw(st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True)))


def _logsumexp(x, axis=None, keepdims=False):
    # scipy's logsumexp gives a 0-d input with keepdims shape (1,); NumPy keeps ()
    m = np.max(x, axis=axis, keepdims=True)
    r = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    return r if keepdims else np.squeeze(r, axis=axis)


# name -> (numpy reference on float64, rtol scale, accepts ints)
REDUCE = {
    "sum": (np.sum, True), "prod": (np.prod, True), "mean": (np.mean, True),
    "max": (np.max, True), "min": (np.min, True), "var": (np.var, True), "std": (np.std, True),
    "logsumexp": (_logsumexp, False),
}


def expected_dtype(name, dt):
    if name in ("sum", "prod"):
        return ts.int64 if dt.kind in "biu" else dt
    if name in ("mean", "var", "std", "logsumexp"):
        return dt if dt.kind in "fc" else ts.fp32
    return dt


@pytest.mark.parametrize("name", sorted(REDUCE))
@given(data=st.data())
def test_reduction(name, data):
    ref_fn, ints = REDUCE[name]
    shape = data.draw(shapes(max_side=4), "shape")
    dtype = data.draw(st.sampled_from(FLOATS + (INTS if ints else ())), "dtype")
    layout = data.draw(st.sampled_from(LAYOUTS), "layout")
    axis = data.draw(axes_for(len(shape)), "axis")
    keepdims = data.draw(st.booleans(), "keepdims")
    lo, hi = (0.5, 1.5) if name == "prod" else (-3, 3)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), "seed"))
    x, rx = make(values(rng, shape, dtype, lo, hi), dtype, layout)
    out = getattr(ts, name)(x, axis=axis, keepdims=keepdims)
    ref = ref_fn(rx.astype(np.float64), axis=axis, keepdims=keepdims)
    odt = expected_dtype(name, x.dtype)
    assert out.dtype is odt, (out.dtype, odt)
    assert out.shape == np.shape(ref)
    if odt.kind in "iu":
        np.testing.assert_array_equal(out.numpy(), ref.astype(np.int64))
    else:
        # accumulation is at least fp32: only the final rounding to odt counts
        r, a = tol(odt)
        n = max(1, rx.size // max(1, np.size(ref)))
        assert_close(out, ref, rtol=r, atol=a * (1 + n ** 0.5))


@pytest.mark.parametrize("name", ["argmax", "argmin"])
@given(data=st.data())
def test_arg_reduction(name, data):
    shape = data.draw(shapes(min_dims=1, max_side=4))
    dtype = data.draw(st.sampled_from(FLOATS + INTS))
    layout = data.draw(st.sampled_from(LAYOUTS))
    axis = data.draw(st.one_of(st.none(), st.integers(-len(shape), len(shape) - 1)))
    keepdims = data.draw(st.booleans())
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    x, rx = make(values(rng, shape, dtype), dtype, layout)
    out = getattr(ts, name)(x, axis=axis, keepdims=keepdims)
    ref = getattr(np, name)(rx, axis=axis, keepdims=keepdims)
    assert out.dtype is ts.int64
    np.testing.assert_array_equal(out.numpy(), ref)  # first index on ties, as NumPy


@pytest.mark.parametrize("name", ["all", "any"])
@given(data=st.data())
def test_all_any(name, data):
    shape = data.draw(shapes(max_side=4))
    dtype = data.draw(st.sampled_from(("bool", "fp32", "int8")))
    axis = data.draw(axes_for(len(shape)))
    keepdims = data.draw(st.booleans())
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    a = values(rng, shape, dtype, -1, 1)
    x, rx = make(a, dtype, data.draw(st.sampled_from(LAYOUTS)))
    out = getattr(ts, name)(x, axis=axis, keepdims=keepdims)
    assert out.dtype is ts.bool_
    np.testing.assert_array_equal(out.numpy(), getattr(np, name)(rx, axis=axis, keepdims=keepdims))


@given(data=st.data())
def test_count_nonzero(data):
    shape = data.draw(shapes(max_side=4))
    axis = data.draw(axes_for(len(shape)))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    x, rx = make(values(rng, shape, "int8", -1, 1), "int8", data.draw(st.sampled_from(LAYOUTS)))
    np.testing.assert_array_equal(ts.count_nonzero(x, axis=axis).numpy(),
                                  np.count_nonzero(rx, axis=axis))


@given(data=st.data())
def test_cumulative_sum(data):
    shape = data.draw(shapes(min_dims=1, max_side=5))
    dtype = data.draw(st.sampled_from(FLOATS + ("int8", "int32", "bool")))
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    include_initial = data.draw(st.booleans())
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    x, rx = make(values(rng, shape, dtype), dtype, data.draw(st.sampled_from(LAYOUTS)))
    out = ts.cumulative_sum(x, axis=axis, include_initial=include_initial)
    ref = np.cumsum(rx.astype(np.float64 if x.dtype.kind == "f" else np.int64), axis=axis)
    if include_initial:
        pad = [(0, 0)] * ref.ndim
        pad[axis % ref.ndim] = (1, 0)
        ref = np.pad(ref, pad)
    assert out.dtype is (x.dtype if x.dtype.kind == "f" else ts.int64)
    r, a = tol(out.dtype)
    assert_close(out, ref, rtol=r, atol=a * 4)


def test_cumulative_sum_1d_default_axis_and_errors():
    assert ts.cumulative_sum(ts.asarray([1, 2, 3])).tolist() == [1, 3, 6]
    with pytest.raises(ts.ShapeError, match=r"\[cumulative_sum\] axis is required"):
        ts.cumulative_sum(ts.ones((2, 2)))


def test_int_sum_does_not_wrap():
    x = ts.full((1000,), 100, dtype="int8")
    s = ts.sum(x)
    assert s.dtype is ts.int64 and int(s) == 100000
    assert int(ts.sum(ts.full((300,), 200, dtype="uint8"))) == 60000
    assert ts.sum(ts.ones((3,), dtype="bool")).tolist() == 3
    assert ts.sum(ts.ones((4,), dtype="fp16"), dtype="fp32").dtype is ts.fp32


def test_half_precision_accumulates_in_fp32():
    # 4096 ones in fp16: an fp16 accumulator would stop at 2048
    x = ts.ones((4096,), dtype="fp16")
    assert float(ts.sum(x)) == 4096.0
    y = ts.full((10000,), 0.1, dtype="bf16")
    assert abs(float(ts.mean(y)) - float(np.float32(0.1).astype("bfloat16"))) < 1e-3


def test_var_correction():
    a = np.array([[1.0, 2.0, 4.0], [3.0, 5.0, 9.0]])
    x = ts.asarray(a, dtype="fp64")
    assert_close(ts.var(x, axis=1, correction=1), np.var(a, axis=1, ddof=1))
    assert_close(ts.std(x, correction=1), np.std(a, ddof=1))


def test_max_min_nan_propagates_and_empty_raises():
    x = ts.asarray([1.0, np.nan, 3.0])
    assert np.isnan(float(ts.max(x))) and np.isnan(float(ts.min(x)))
    with pytest.raises(ts.ShapeError, match=r"\[max\] zero-size reduction"):
        ts.max(ts.zeros((0, 3)), axis=0)
    with pytest.raises(ts.ShapeError, match=r"\[argmin\]"):
        ts.argmin(ts.zeros((0,)))
    assert ts.max(ts.zeros((0, 3)), axis=1).shape == (0,)


def test_empty_sum_and_mean():
    assert float(ts.sum(ts.zeros((0,)))) == 0.0
    assert float(ts.prod(ts.zeros((0,)))) == 1.0
    assert ts.sum(ts.zeros((2, 0)), axis=1).tolist() == [0.0, 0.0]
    assert np.isnan(float(ts.mean(ts.zeros((0,)))))


def test_logsumexp_is_stable():
    x = ts.asarray([1000.0, 1000.0, -np.inf], dtype="fp32")
    assert abs(float(ts.logsumexp(x)) - (1000 + np.log(2))) < 1e-3
    assert float(ts.logsumexp(ts.asarray([-np.inf, -np.inf]))) == -np.inf


@pytest.mark.parametrize("dtype", ["fp32", "fp64"])
def test_logsumexp_over_an_empty_axis_is_minus_inf(dtype):
    """As torch.logsumexp: the sum of no exps is 0 (NumPy's max raised a bare ValueError)."""
    x = ts.zeros((2, 0), dtype=dtype)
    r = ts.logsumexp(x, axis=1)
    assert r.shape == (2,) and r.dtype.name == dtype and r.tolist() == [-np.inf, -np.inf]
    assert ts.logsumexp(x, axis=1, keepdims=True).shape == (2, 1)
    assert ts.logsumexp(x, axis=0).shape == (0,)
    assert float(ts.logsumexp(ts.zeros((0,), dtype=dtype))) == -np.inf


@pytest.mark.parametrize("name", ["sum", "max", "min", "prod", "mean", "var", "logsumexp"])
@settings(max_examples=3)
@given(shape=BIG_SHAPES, dtype=st.sampled_from(FLOATS), layout=st.sampled_from(LAYOUTS),
       seed=st.integers(0, 2**32 - 1), last=st.booleans())
def test_reduction_of_lazy_producer(name, shape, dtype, layout, seed, last):
    rng = np.random.default_rng(seed)
    lo, hi = (0.99, 1.01) if name == "prod" else (-2, 2)
    x, rx = make(values(rng, shape, dtype, lo, hi), dtype, layout)
    axis = -1 if last else None

    def f(x):
        return getattr(ts, name)(x * 1.0 + 0.0, axis=axis)
    with fusion_mode("default"):
        prod_ = x * 1.0 + 0.0
        assert prod_.is_lazy
        lz = f(x)
    with fusion_mode("none"):
        eg = f(x)
    ref_fn = _logsumexp if name == "logsumexp" else getattr(np, name)
    ref = ref_fn(rx.astype(np.float64), axis=axis)
    n = rx.size // max(1, np.size(ref))
    r, a = tol(dtype)
    rtol = max(r, n * 1.2e-7) if name == "prod" else r
    for out in (lz, eg):
        assert out.dtype is x.dtype and out.shape == np.shape(ref)
        np.testing.assert_allclose(to_np64(out), ref, rtol=rtol, atol=a * (1 + n ** 0.5))


@pytest.mark.parametrize("name", ["sum", "prod", "mean", "max", "min", "var", "logsumexp", "all"])
@pytest.mark.parametrize("axis", [0, -1, (0,), ()])
def test_zero_d_accepts_axis_0_and_minus_1(name, axis):
    x = ts.asarray(2.0, dtype="fp64")
    out = getattr(ts, name)(x, axis=axis)
    assert out.shape == ()
    ref = {"var": 0.0, "all": True}.get(name, 2.0)
    assert out.item() == ref
    with pytest.raises(ts.ShapeError, match=rf"\[{name}\] axis 1 is out of range for a tensor "
                                            r"of 0 dimension\(s\); accepted: 0 or -1"):
        getattr(ts, name)(x, axis=1)
