"""Elementwise ops against NumPy float64, over random shapes, dtypes, broadcasting
and non-contiguous layouts (transposed, strided, flipped views), with the
tolerance of tests/helpers.py TOL for the result dtype. The same checks run on
tensors big enough for the lazy fusion path (>= FUSE_MIN_SIZE elements) and with
fusion switched off, and the two must agree."""
import numpy as np
import pytest
import scipy.special
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

import tessera as ts
from tessera import dtypes as D
from cast_reference import cast_exact
from helpers import DEVICES, assert_close, shares_memory, tol, to_np64
from core_strategies import (BIG_SHAPES, FLOATS, FUSE_MIN, INTS, LAYOUTS, fusion_mode, make, shapes,
                             values)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


# name -> (numpy reference, low, high, accepts ints). Domains keep the op finite
# and away from its singularities.
UNARY = {
    "negative": (np.negative, -3, 3, True), "positive": (np.positive, -3, 3, True),
    "abs": (np.abs, -3, 3, True), "sign": (np.sign, -3, 3, True),
    "square": (np.square, -3, 3, True), "reciprocal": (np.reciprocal, 0.2, 3, False),
    "sqrt": (np.sqrt, 0, 3, True), "rsqrt": (lambda x: 1 / np.sqrt(x), 0.2, 3, False),
    "exp": (np.exp, -3, 3, True), "exp2": (np.exp2, -3, 3, True),
    "expm1": (np.expm1, -3, 3, False), "log": (np.log, 0.1, 3, True),
    "log1p": (np.log1p, -0.9, 3, False), "log2": (np.log2, 0.1, 3, False),
    "log10": (np.log10, 0.1, 3, False), "sin": (np.sin, -3, 3, True),
    "cos": (np.cos, -3, 3, True), "tan": (np.tan, -1.3, 1.3, False),
    "asin": (np.arcsin, -0.95, 0.95, False), "acos": (np.arccos, -0.95, 0.95, False),
    "atan": (np.arctan, -3, 3, False), "sinh": (np.sinh, -3, 3, False),
    "cosh": (np.cosh, -3, 3, False), "tanh": (np.tanh, -3, 3, True),
    "asinh": (np.arcsinh, -3, 3, False), "acosh": (np.arccosh, 1.1, 3, False),
    "atanh": (np.arctanh, -0.9, 0.9, False), "erf": (scipy.special.erf, -3, 3, True),
    "sigmoid": (_sigmoid, -6, 6, True), "floor": (np.floor, -3, 3, True),
    "ceil": (np.ceil, -3, 3, True), "trunc": (np.trunc, -3, 3, True),
    "round": (np.rint, -3, 3, True), "isnan": (np.isnan, -3, 3, True),
    "isinf": (np.isinf, -3, 3, True), "isfinite": (np.isfinite, -3, 3, True),
    "signbit": (np.signbit, -3, 3, False),
}
FLOAT_RULE = {"reciprocal", "sqrt", "rsqrt", "exp", "exp2", "expm1", "log", "log1p", "log2",
              "log10", "sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "tanh",
              "asinh", "acosh", "atanh", "erf", "sigmoid"}
PREDICATES = {"isnan", "isinf", "isfinite", "signbit"}


def expected_unary_dtype(name, dt):
    if name in PREDICATES:
        return D.bool_
    if name in FLOAT_RULE and dt.kind not in "fc":
        return D.fp32
    return dt


# name -> (numpy reference, x range, y range, accepts ints)
BINARY = {
    "add": (np.add, (-3, 3), (-3, 3), True), "subtract": (np.subtract, (-3, 3), (-3, 3), True),
    "multiply": (np.multiply, (-3, 3), (-3, 3), True),
    "divide": (np.divide, (-3, 3), (0.5, 3), True),
    "floor_divide": (np.floor_divide, (-3, 3), (0.7, 3), True),
    "remainder": (np.remainder, (-3, 3), (0.7, 3), True),
    "pow": (np.power, (0.5, 2), (-2, 2), False),
    "maximum": (np.maximum, (-3, 3), (-3, 3), True),
    "minimum": (np.minimum, (-3, 3), (-3, 3), True),
    "atan2": (np.arctan2, (-3, 3), (-3, 3), False), "hypot": (np.hypot, (-3, 3), (-3, 3), False),
    "copysign": (np.copysign, (-3, 3), (-3, 3), False),
    "logaddexp": (np.logaddexp, (-3, 3), (-3, 3), False),
    "equal": (np.equal, (-1, 1), (-1, 1), True), "not_equal": (np.not_equal, (-1, 1), (-1, 1), True),
    "less": (np.less, (-3, 3), (-3, 3), True), "less_equal": (np.less_equal, (-1, 1), (-1, 1), True),
    "greater": (np.greater, (-3, 3), (-3, 3), True),
    "greater_equal": (np.greater_equal, (-1, 1), (-1, 1), True),
}
COMPARISONS = {"equal", "not_equal", "less", "less_equal", "greater", "greater_equal"}
INT_ONLY = {
    "bitwise_and": np.bitwise_and, "bitwise_or": np.bitwise_or, "bitwise_xor": np.bitwise_xor,
    "bitwise_left_shift": np.left_shift, "bitwise_right_shift": np.right_shift,
}
LOGICAL = {"logical_and": np.logical_and, "logical_or": np.logical_or,
           "logical_xor": np.logical_xor}
# dtype pairs, mixed ones included (promotion is checked on every result)
FLOAT_PAIRS = [(d, d) for d in FLOATS] + [("fp16", "fp32"), ("bf16", "fp16"), ("fp32", "fp64"),
                                          ("int32", "fp16"), ("bf16", "int8"), ("uint8", "fp32")]
INT_PAIRS = [(d, d) for d in INTS] + [("int8", "uint8"), ("int16", "int64"), ("uint8", "int32"),
                                      ("bool", "int8")]


def expected_binary_dtype(name, a, b):
    d = D.promote(a, b)
    if name in COMPARISONS:
        return D.bool_
    if name == "divide" or name in ("atan2", "hypot", "copysign", "logaddexp"):
        return d if d.kind == "f" else D.fp32
    return d


# The hypothesis sweeps over every op, dtype and layout run on the CPU; on every device the
# deterministic tests, the lazy-vs-eager sweeps and the test_*_on_device subset run.
SWEEP = pytest.mark.cpu_only("hypothesis sweep of every op, dtype and layout; a representative "
                             "subset runs on each device (test_*_on_device)")


def _check_result(out, ref, out_dt, compute_dt=None):
    """Compare with the float64 reference at the tolerance of the dtype the op
    computes in (int/bool results exactly)."""
    assert out.dtype is out_dt, (out.dtype, out_dt)
    if out_dt.kind in "biu":
        r = np.asarray(ref)
        np.testing.assert_array_equal(to_np64(out), r.astype(out_dt.np_storage) if r.dtype.kind in "biu"
                                      else r)
    else:
        assert_close(out, np.asarray(ref, dtype=np.float64), dtype=compute_dt or out_dt)


# ---- unary ------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(UNARY))
@SWEEP
@given(data=st.data())
def test_unary(name, data):
    ref_fn, lo, hi, ints = UNARY[name]
    dtypes = FLOATS + (INTS if ints and name not in ("sqrt", "log") else ())
    dtype = data.draw(st.sampled_from(dtypes), "dtype")
    if name in ("sqrt", "log") and dtype in INTS:
        lo = 1
    shape = data.draw(shapes(), "shape")
    layout = data.draw(st.sampled_from(LAYOUTS), "layout")
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), "seed"))
    x, rx = make(values(rng, shape, dtype, lo, hi), dtype, layout)
    out = getattr(ts, name)(x)
    out_dt = expected_unary_dtype(name, x.dtype)
    if out_dt.kind in "biu":
        ref = ref_fn(rx)
    else:
        ref = ref_fn(rx.astype(np.float64))
    _check_result(out, ref, out_dt)
    assert out.shape == shape


@pytest.mark.parametrize("name", ["isnan", "isinf", "isfinite", "signbit", "abs", "negative",
                                  "sign", "floor", "exp", "sqrt", "round"])
@pytest.mark.parametrize("dtype", FLOATS)
def test_unary_special_values(name, dtype, device):
    a = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 2.5, -2.5, 0.5, 1.5], np.float64)
    x = ts.asarray(a, dtype=dtype, device=device)
    with np.errstate(all="ignore"):
        ref = UNARY[name][0](to_np64(x))
    _check_result(getattr(ts, name)(x), ref, expected_unary_dtype(name, x.dtype))


def test_round_half_to_even(device):
    x = ts.asarray([0.5, 1.5, 2.5, -0.5, -1.5], dtype="fp32")
    assert ts.round(x).tolist() == [0.0, 2.0, 2.0, -0.0, -2.0]


def test_sigmoid_does_not_overflow(device):
    x = ts.asarray([-1000.0, 0.0, 1000.0], dtype="fp32")
    assert ts.sigmoid(x).tolist() == [0.0, 0.5, 1.0]


def test_logical_not_and_invert(device):
    b = np.array([True, False])
    assert ts.logical_not(ts.asarray(b)).tolist() == [False, True]
    assert ts.logical_not(ts.asarray([0.0, 2.0])).tolist() == [True, False]
    i = np.array([0, 5, -3], np.int16)
    np.testing.assert_array_equal(ts.bitwise_invert(ts.asarray(i)).numpy(), np.invert(i))
    with pytest.raises(ts.DTypeError, match="bitwise_invert"):
        ts.bitwise_invert(ts.ones((2,)))


# ---- binary -----------------------------------------------------------------
def _binary_case(data, name, pairs, xr, yr, max_dims=3):
    da, db = data.draw(st.sampled_from(pairs), "dtypes")
    if data.draw(st.booleans(), "swap"):
        da, db = db, da
    (sa, sb), _ = data.draw(hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=max_dims,
                                                              max_side=4), "shapes")
    la = data.draw(st.sampled_from(LAYOUTS), "layout_a")
    lb = data.draw(st.sampled_from(LAYOUTS), "layout_b")
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), "seed"))
    x, rx = make(values(rng, sa, da, *xr), da, la)
    y, ry = make(values(rng, sb, db, *yr), db, lb)
    return x, rx, y, ry


def _binary_ref(name, ref_fn, rx, ry, out_dt):
    if out_dt.kind in "iu":
        st_ = out_dt.np_storage
        with np.errstate(all="ignore"):
            return ref_fn(rx.astype(st_), ry.astype(st_))
    return ref_fn(rx.astype(np.float64), ry.astype(np.float64))


@pytest.mark.parametrize("name", sorted(BINARY))
@SWEEP
@given(data=st.data())
def test_binary(name, data):
    ref_fn, xr, yr, ints = BINARY[name]
    pairs = FLOAT_PAIRS + (INT_PAIRS if ints else [])
    if name == "pow":
        pairs = FLOAT_PAIRS[:4]
    x, rx, y, ry = _binary_case(data, name, pairs, xr, yr)
    out_dt = expected_binary_dtype(name, x.dtype, y.dtype)
    if out_dt.kind == "b" and D.promote(x.dtype, y.dtype).kind == "b" and name not in COMPARISONS:
        return
    if name in ("floor_divide", "remainder") and out_dt.kind in "iu":
        ry = np.where(ry == 0, 1, ry)
        y = ts.asarray(ry, dtype=y.dtype)
    out = getattr(ts, name)(x, y)
    assert out.shape == np.broadcast_shapes(rx.shape, ry.shape)
    # comparisons are computed in the promoted dtype: compare values rounded to it
    cdt = D.promote(x.dtype, y.dtype)
    if name in COMPARISONS:
        rx, ry = [to_np64(ts.asarray(r, dtype=cdt)) for r in (rx, ry)]
    _check_result(out, _binary_ref(name, ref_fn, rx, ry, out_dt), out_dt)


@pytest.mark.parametrize("name", sorted(INT_ONLY))
@SWEEP
@given(data=st.data())
def test_bitwise(name, data):
    x, rx, y, ry = _binary_case(data, name, INT_PAIRS, (0, 10), (0, 3))
    out_dt = D.promote(x.dtype, y.dtype)
    if out_dt.kind == "b" and "shift" in name:
        return
    out = getattr(ts, name)(x, y)
    st_ = out_dt.np_storage
    _check_result(out, INT_ONLY[name](rx.astype(st_), ry.astype(st_)), out_dt)


@pytest.mark.parametrize("name", sorted(LOGICAL))
@SWEEP
@given(data=st.data())
def test_logical(name, data):
    x, rx, y, ry = _binary_case(data, name, [("bool", "bool"), ("fp32", "bool"), ("int8", "fp16")],
                                (-1, 1), (-1, 1))
    _check_result(getattr(ts, name)(x, y), LOGICAL[name](rx != 0, ry != 0), D.bool_)


@pytest.mark.parametrize("name", ["add", "subtract", "multiply", "divide", "maximum", "minimum",
                                  "pow", "less", "atan2"])
@SWEEP
@given(case=st.tuples(st.sampled_from(FLOATS + ("int16", "uint8")), shapes(),
                      st.sampled_from(LAYOUTS), st.integers(0, 2**32 - 1)),
       scalar=st.sampled_from([2, -1, 0.5, 2.5, True]), reflected=st.booleans())
def test_binary_with_python_scalar(name, case, scalar, reflected):
    dtype, shape, layout, seed = case
    if D.get_dtype(dtype).kind in "iu" and name in ("pow", "atan2"):
        return
    if name == "pow" and reflected:
        scalar = abs(scalar) if scalar is not True else 2
    rng = np.random.default_rng(seed)
    lo = 0.5 if name == "pow" and not reflected else -3
    x, rx = make(values(rng, shape, dtype, lo, 3), dtype, layout)
    if name == "divide" and reflected:
        rx = np.where(rx == 0, 1, rx)
        x = ts.asarray(rx, dtype=dtype)
    args = (scalar, x) if reflected else (x, scalar)
    if dtype == "uint8" and scalar == -1 and name != "divide":
        with pytest.raises(ts.DTypeError, match=f"\\[{name}\\] Python integer -1 is out of range"):
            getattr(ts, name)(*args)
        return
    out = getattr(ts, name)(*args)
    d = D.scalar_result(x.dtype, scalar)
    out_dt = expected_binary_dtype(name, d, d)
    nargs = (scalar, rx) if reflected else (rx, scalar)
    if out_dt.kind in "iu":
        ref = BINARY[name][0](*(np.asarray(a).astype(out_dt.np_storage) for a in nargs))
    else:
        ref = BINARY[name][0](*(np.asarray(a, dtype=np.float64) for a in nargs))
    _check_result(out, ref, out_dt)


@SWEEP
@given(data=st.data())
def test_where(data):
    (sc, sa, sb), _ = data.draw(hnp.mutually_broadcastable_shapes(num_shapes=3, max_dims=3,
                                                                  max_side=4))
    da, db = data.draw(st.sampled_from(FLOAT_PAIRS + INT_PAIRS[:3]))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    layouts = [data.draw(st.sampled_from(LAYOUTS)) for _ in range(3)]
    c, rc = make(values(rng, sc, "bool"), "bool", layouts[0])
    a, ra = make(values(rng, sa, da), da, layouts[1])
    b, rb = make(values(rng, sb, db), db, layouts[2])
    out = ts.where(c, a, b)
    _check_result(out, np.where(rc, ra, rb), D.promote(a.dtype, b.dtype))
    out2 = ts.where(c, a, 1.5 if a.dtype.kind == "f" else 7)
    _check_result(out2, np.where(rc, ra, 1.5 if a.dtype.kind == "f" else 7), a.dtype)


def test_where_needs_bool_condition(device):
    with pytest.raises(ts.DTypeError, match=r"\[where\] condition must be bool"):
        ts.where(ts.ones((2,)), 1.0, 2.0)


@SWEEP
@given(case=st.tuples(st.sampled_from(FLOATS + ("int8", "int32")), shapes(),
                      st.sampled_from(LAYOUTS), st.integers(0, 2**32 - 1)),
       lo=st.sampled_from([None, -1, -0.5]), hi=st.sampled_from([None, 1, 2.5]))
def test_clip(case, lo, hi):
    dtype, shape, layout, seed = case
    x, rx = make(values(np.random.default_rng(seed), shape, dtype), dtype, layout)
    out = ts.clip(x, lo, hi)
    assert out.dtype is x.dtype
    ref = np.clip(rx, lo if lo is not None else -np.inf, hi if hi is not None else np.inf)
    if x.dtype.kind in "iu":
        ref = ref.astype(np.int64)  # int tensor clipped to a float bound stays int (truncation)
    _check_result(out, ref, x.dtype)


@pytest.mark.parametrize("src", FLOATS + INTS + ("bool", "fp8_e4m3", "fp8_e5m2"))
@pytest.mark.parametrize("dst", FLOATS + INTS + ("bool", "fp8_e4m3", "fp8_e5m2"))
def test_astype(src, dst, device):
    rng = np.random.default_rng(0)
    a = values(rng, (3, 5), src, -3, 3)
    x, rx = make(a, src, "transposed", device=device)
    out = ts.astype(x, dst)
    assert out.dtype.name == dst and out.shape == x.shape
    # the reference: tessera's cast table, computed exactly from the source values
    # (tests/cast_reference.py), not NumPy's or ml_dtypes' cast (platform / version dependent)
    expect = cast_exact(rx.ravel().tolist(), dst).reshape(rx.shape)
    np.testing.assert_array_equal(to_np64(out), expect)
    if D.get_dtype(dst).kind == "f":
        np.testing.assert_array_equal(np.signbit(to_np64(out)), np.signbit(expect))


def test_astype_same_dtype_copies_unless_told(device):
    x = ts.ones((3,), device=device)
    y = ts.astype(x, "fp32")
    assert y is not x and not shares_memory(y, x)
    assert ts.astype(x, "fp32", copy=False) is x


def test_bool_arithmetic_rules(device):
    b = ts.asarray([True, False, True])
    assert (b + b).dtype is ts.bool_ and (b + b).tolist() == [True, False, True]
    assert (b * b).tolist() == [True, False, True]
    with pytest.raises(ts.DTypeError, match=r"\[subtract\]"):
        b - b
    assert ts.maximum(b, ts.asarray([False, True, False])).tolist() == [True, True, True]


def test_exp_of_int_is_fp32(device):
    out = ts.exp(ts.asarray([0, 1], dtype="int8"))
    assert out.dtype is ts.fp32
    assert_close(out, np.exp([0.0, 1.0]))


# ---- the lazy fusion path ---------------------------------------------------
LAZY_UNARY = ["negative", "abs", "exp", "log", "sqrt", "sin", "tanh", "sigmoid", "floor", "erf",
              "isfinite", "reciprocal", "expm1", "round"]
LAZY_BINARY = ["add", "subtract", "multiply", "divide", "maximum", "minimum", "pow", "less",
               "equal", "floor_divide", "remainder", "atan2", "logaddexp"]


def _both_modes(fn, *args):
    """fn under the default fusion mode (checking it went lazy) and with fusion off."""
    with fusion_mode("default"):
        lazy = fn(*args)
        was_lazy = lazy.is_lazy
        lazy.realize()
    with fusion_mode("none"):
        eager = fn(*args)
        assert not eager.is_lazy
    return lazy, eager, was_lazy


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", LAZY_UNARY)
@settings(max_examples=4)
@given(shape=BIG_SHAPES, dtype=st.sampled_from(FLOATS), layout=st.sampled_from(LAYOUTS),
       seed=st.integers(0, 2**32 - 1))
def test_unary_lazy_matches_eager(name, shape, dtype, layout, seed, device):
    ref_fn, lo, hi, _ = UNARY[name]
    x, rx = make(values(np.random.default_rng(seed), shape, dtype, lo, hi), dtype, layout,
                 device=device)
    lazy, eager, was_lazy = _both_modes(getattr(ts, name), x)
    assert was_lazy, "a tensor of FUSE_MIN_SIZE elements should take the lazy path"
    out_dt = expected_unary_dtype(name, x.dtype)
    ref = ref_fn(rx.astype(np.float64)) if out_dt.kind not in "bui" else ref_fn(rx)
    _check_result(lazy, ref, out_dt)
    _check_result(eager, ref, out_dt)
    if out_dt.kind == "b":
        np.testing.assert_array_equal(lazy.numpy(), eager.numpy())
    else:
        r, a = tol(out_dt)
        np.testing.assert_allclose(to_np64(lazy), to_np64(eager), rtol=r, atol=a)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", LAZY_BINARY)
@settings(max_examples=5)
@given(shape=BIG_SHAPES, pair=st.sampled_from(FLOAT_PAIRS + INT_PAIRS), layouts=st.tuples(
    st.sampled_from(LAYOUTS), st.sampled_from(LAYOUTS)), bcast=st.booleans(),
    seed=st.integers(0, 2**32 - 1))
def test_binary_lazy_matches_eager(name, shape, pair, layouts, bcast, seed, device):
    ref_fn, xr, yr, ints = BINARY[name]
    if name == "pow" or (not ints and pair in INT_PAIRS):
        pair = (pair[0], pair[0]) if pair[0] in FLOATS else ("fp32", "fp32")
    rng = np.random.default_rng(seed)
    x, rx = make(values(rng, shape, pair[0], *xr), pair[0], layouts[0], device=device)
    yshape = (1,) * (len(shape) - 1) + shape[-1:] if bcast else shape
    y, ry = make(values(rng, yshape, pair[1], *yr), pair[1], layouts[1], device=device)
    lazy, eager, was_lazy = _both_modes(getattr(ts, name), x, y)
    assert was_lazy
    out_dt = expected_binary_dtype(name, x.dtype, y.dtype)
    if name in COMPARISONS:
        cdt = D.promote(x.dtype, y.dtype)
        rx, ry = [to_np64(ts.asarray(r, dtype=cdt, device=device)) for r in (rx, ry)]
    ref = _binary_ref(name, ref_fn, rx, ry, out_dt)
    _check_result(lazy, ref, out_dt)
    _check_result(eager, ref, out_dt)


@pytest.mark.parametrize("device", DEVICES)
@settings(max_examples=6)
@given(shape=BIG_SHAPES, dtype=st.sampled_from(FLOATS), layout=st.sampled_from(LAYOUTS),
       hold=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_fused_chain_matches_eager(shape, dtype, layout, hold, seed, device):
    """A chain of elementwise ops with a reduction, some intermediates held by
    the user (they become extra outputs of the fused kernel)."""
    rng = np.random.default_rng(seed)
    x, rx = make(values(rng, shape, dtype, 0.1, 2), dtype, layout, device=device)
    y, ry = make(values(rng, shape[-1:], dtype, -1, 1), dtype, device=device)

    def chain(x, y):
        a = ts.exp(x) * y
        b = ts.sqrt(x) + a * 0.5
        c = ts.maximum(b, 0.25) - ts.tanh(a)
        s = ts.sum(c * c, axis=-1)
        return (c, s, a) if hold else (c, s)

    with fusion_mode("default"):
        lazy = chain(x, y)
        assert all(t.is_lazy for t in lazy)
        lazy = [t.realize() for t in lazy]
    with fusion_mode("none"):
        eager = chain(x, y)
    ra = np.exp(rx) * ry
    rb = np.sqrt(rx) + ra * 0.5
    rc = np.maximum(rb, 0.25) - np.tanh(ra)
    refs = [rc, np.sum(rc * rc, axis=-1), ra]
    r, a = tol(dtype)
    for lz, eg, ref in zip(lazy, eager, refs):
        assert lz.dtype is eg.dtype and lz.shape == eg.shape == ref.shape
        # a chain of roundings: allow a few times the one-op tolerance
        np.testing.assert_allclose(to_np64(lz), ref, rtol=8 * r, atol=8 * a * max(1, shape[-1] ** 0.5))
        np.testing.assert_allclose(to_np64(eg), ref, rtol=8 * r, atol=8 * a * max(1, shape[-1] ** 0.5))


@pytest.mark.parametrize("name", ["sum", "max", "min", "prod"])
@pytest.mark.parametrize("axis", [None, 0, -1, (0, 1)])
def test_fused_reduction_matches_eager(name, axis, device):
    rng = np.random.default_rng(1)
    a = rng.uniform(0.9, 1.1, (64, 40, 16))
    x = ts.asarray(a, dtype="fp32", device=device)
    fn = getattr(ts, name)
    with fusion_mode("default"):
        lz = fn(x * 1.0001, axis=axis)
        assert lz.is_lazy
    with fusion_mode("none"):
        eg = fn(x * 1.0001, axis=axis)
    ref = getattr(np, name)(to_np64(x) * 1.0001, axis=axis)
    assert lz.shape == eg.shape == ref.shape
    # fp32 accumulation: a product's relative error grows with the count (about n * eps)
    n = a.size // max(ref.size, 1)
    rtol = max(1e-4, n * 1.2e-7) if name == "prod" else 1e-4
    np.testing.assert_allclose(to_np64(lz), ref, rtol=rtol)
    np.testing.assert_allclose(to_np64(eg), ref, rtol=rtol)


def test_lazy_values_are_consistent_after_inplace_write(device):
    """A pending group that reads a buffer is computed before the buffer is
    written in place (the result must reflect the old value)."""
    a = np.linspace(0, 1, FUSE_MIN)
    x = ts.asarray(a.copy(), dtype="fp64", device=device)
    with fusion_mode("default"):
        y = x * 2.0
        assert y.is_lazy
        x[...] = 5.0
        np.testing.assert_allclose(y.numpy(), a * 2.0)


# ---- every device (the `device` fixture: cpu, and cuda when a GPU is present) ----
@pytest.mark.parametrize("name", ["exp", "sin", "sqrt", "tanh", "sigmoid", "floor", "isfinite"])
@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("n", [7, FUSE_MIN + 3])
def test_unary_on_device(device, name, dtype, n):
    ref_fn, lo, hi, _ = UNARY[name]
    rng = np.random.default_rng(0)
    x, rx = make(values(rng, (n,), dtype, lo, hi), dtype, "flipped", device=device)
    out = getattr(ts, name)(x)
    assert out.device == x.device
    _check_result(out.to("cpu"), ref_fn(rx.astype(np.float64)) if name != "isfinite"
                  else ref_fn(rx), expected_unary_dtype(name, x.dtype))


@pytest.mark.parametrize("name", ["add", "multiply", "divide", "maximum", "pow", "less"])
@pytest.mark.parametrize("pair", [("fp32", "fp32"), ("bf16", "fp16"), ("fp16", "fp32"),
                                  ("int8", "uint8")])
def test_binary_on_device(device, name, pair):
    ref_fn, xr, yr, ints = BINARY[name]
    if pair[0] in INTS and not ints:
        return
    rng = np.random.default_rng(0)
    x, rx = make(values(rng, (5, 8), pair[0], *xr), pair[0], "transposed", device=device)
    y, ry = make(values(rng, (8,), pair[1], *yr), pair[1], device=device)
    out = getattr(ts, name)(x, y)
    out_dt = expected_binary_dtype(name, x.dtype, y.dtype)
    if name in COMPARISONS:
        rx, ry = [to_np64(ts.asarray(r, dtype=D.promote(x.dtype, y.dtype))) for r in (rx, ry)]
    _check_result(out.to("cpu"), _binary_ref(name, ref_fn, rx, ry, out_dt), out_dt)


@pytest.mark.parametrize("dtype", ["fp32", "bf16", "int8"])
def test_where_clip_scalars_bitwise_logical_on_device(device, dtype):
    """The sweeps' other families (where, clip, Python scalars, bitwise, logical) once each
    per device, on a strided view."""
    rng = np.random.default_rng(0)
    x, rx = make(values(rng, (5, 8), dtype, -3, 3), dtype, "strided", device=device)
    c, rc = make(values(rng, (8,), "bool"), "bool", device=device)
    fill = 1.5 if x.dtype.kind == "f" else 7
    _check_result(ts.where(c, x, fill), np.where(rc, rx, fill), x.dtype)
    ref = np.clip(rx, -1, 2.5)
    _check_result(ts.clip(x, -1, 2.5), ref.astype(np.int64) if x.dtype.kind in "iu" else ref,
                  x.dtype)
    for name, scalar, reflected in [("add", 2, False), ("multiply", 0.5, True),
                                    ("maximum", True, False), ("less", 2.5, True)]:
        out = getattr(ts, name)(*((scalar, x) if reflected else (x, scalar)))
        d = D.scalar_result(x.dtype, scalar)
        out_dt = expected_binary_dtype(name, d, d)
        nargs = (scalar, rx) if reflected else (rx, scalar)
        if out_dt.kind in "iu":
            want = BINARY[name][0](*(np.asarray(a).astype(out_dt.np_storage) for a in nargs))
        else:
            want = BINARY[name][0](*(np.asarray(a, dtype=np.float64) for a in nargs))
        _check_result(out, want, out_dt)
    for name, fn in LOGICAL.items():
        _check_result(getattr(ts, name)(x, c), fn(rx != 0, rc), D.bool_)
    if dtype == "int8":
        y, ry = make(values(rng, (8,), "int8", 0, 3), "int8", device=device)
        for name, fn in INT_ONLY.items():
            _check_result(getattr(ts, name)(x, y), fn(rx.astype(np.int8), ry.astype(np.int8)),
                          x.dtype)
