"""op.cast: round-to-nearest and saturating casts bit-exact against the exact reference
(tests/cast_reference.py, whatever ml_dtypes is installed), stochastic rounding (on the
grid, unbiased, seeded), gradients in the input dtype."""
import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, strategies as st

import tessera as ts
from cast_reference import assert_same_values, round_f64
from tessera import op
from tessera.random import Generator

pytestmark = pytest.mark.usefixtures("device")  # every test runs on each device

NARROW = {"bf16": ml_dtypes.bfloat16, "fp16": np.float16, "fp8_e4m3": ml_dtypes.float8_e4m3fn,
          "fp8_e5m2": ml_dtypes.float8_e5m2}
SPECIAL = np.array([0.0, -0.0, 1.0, -1.5, 3.4e38, -3.4e38, 1e-40, -1e-45, 448.0, 464.0, 480.0,
                    57344.0, 61440.0, 65504.0, 65520.0, 1e6, np.inf, -np.inf, np.nan], np.float32)


def _bits(a):
    a = np.ascontiguousarray(a)
    return a.view(np.uint8 if a.itemsize == 1 else np.uint16)


def _values(seed=0):
    rng = np.random.default_rng(seed)
    x = np.concatenate([SPECIAL, rng.standard_normal(200).astype(np.float32) * 10.0 ** rng.integers(-8, 8, 200)])
    return x.astype(np.float32)


@pytest.mark.parametrize("src", ["fp32", "fp64"])
@pytest.mark.parametrize("dst", sorted(NARROW))
def test_nearest_bit_exact(dst, src):
    x = _values().astype({"fp32": np.float32, "fp64": np.float64}[src])
    if src == "fp64":  # between fp32 values: fp64 -> fp32 -> dst would round twice
        x = np.concatenate([x, x * (1 + 2.0 ** -40), x * (1 - 2.0 ** -40)])
    y = op.cast(ts.asarray(x), dst).numpy()
    assert_same_values(y.astype(np.float64), round_f64(x.astype(np.float64), dst), f"{src} -> {dst}")


@pytest.mark.parametrize("src", ["fp32", "fp64"])
@pytest.mark.parametrize("dst", sorted(NARROW))
def test_saturate_bit_exact_with_clipped_reference(dst, src):
    x = _values(1).astype({"fp32": np.float32, "fp64": np.float64}[src])
    if src == "fp64":
        x = np.concatenate([x, x * (1 + 2.0 ** -40), [1e300, -1e300]])
    m = float(ml_dtypes.finfo(NARROW[dst]).max)
    y = op.cast(ts.asarray(x), dst, saturate=True).numpy().astype(np.float64)
    ref = round_f64(np.where(np.isnan(x), x, np.clip(x, -m, m)).astype(np.float64), dst)
    assert_same_values(y, ref, f"{src} -> {dst}")
    assert np.isfinite(y[~np.isnan(x)]).all()


def test_saturate_to_int_and_between_every_pair():
    x = ts.asarray([1e10, -1e10, 3.7, -3.7, np.nan])
    assert op.cast(x, "int8", saturate=True).tolist() == [127, -128, 3, -3, 0]
    assert op.cast(ts.asarray([300, -300, 5], dtype="int32"), "uint8", saturate=True).tolist() == [255, 0, 5]
    names = ["bool", "int8", "int32", "int64", "uint8", "fp16", "bf16", "fp32", "fp64", "fp8_e4m3", "fp8_e5m2"]
    src = np.array([0.0, 1.0, 2.5, 100.0], np.float32)
    for a in names:
        xa = ts.asarray(src).astype(a)
        for b in names:
            for kw in ({}, {"saturate": True}, {"rounding": "stochastic", "generator": Generator(0)}):
                y = op.cast(xa, b, **kw)
                assert y.dtype.name == b and y.shape == (4,)


def test_stochastic_rounding_lands_on_neighbours_and_is_unbiased():
    v = 1.0 + 2.0 ** -10  # 1/8 of the way from 1 to the next bf16, 1 + 2**-7
    x = ts.full((20000,), v)
    y = op.cast(x, "bf16", rounding="stochastic", generator=Generator(1)).numpy().astype(np.float64)
    assert set(np.unique(y)) <= {1.0, 1.0 + 2.0 ** -7}
    assert abs(y.mean() - v) < 4 * (2.0 ** -7) * np.sqrt(0.125 * 0.875 / y.size)
    # same seed, same draws
    y2 = op.cast(x, "bf16", rounding="stochastic", generator=Generator(1)).numpy().astype(np.float64)
    assert np.array_equal(y, y2)


@given(st.lists(st.floats(-1e4, 1e4, allow_nan=False, width=32), min_size=1, max_size=30),
       st.sampled_from(["bf16", "fp16", "fp8_e4m3", "fp8_e5m2", "int8"]))
def test_stochastic_result_brackets_the_value(vals, dst):
    x = np.array(vals, np.float32)
    y = op.cast(ts.asarray(x), dst, rounding="stochastic", saturate=True,
                generator=Generator(3)).numpy().astype(np.float64)
    if dst == "int8":
        lo, hi = np.clip(np.trunc(x), -128, 127), np.clip(np.trunc(x) + np.sign(x), -128, 127)
        assert np.all((y == lo) | (y == hi))
        return
    d = NARROW[dst]
    m = float(ml_dtypes.finfo(d).max)
    xc = np.clip(x.astype(np.float64), -m, m)
    assert np.array_equal(y.astype(d).astype(np.float64), y)  # on the destination's grid
    near = np.abs(xc).astype(d)
    bits = _bits(near).copy()
    # the grid gap above |nearest| (raw bits + 1), found without the code under test
    up = (bits + 1).astype(bits.dtype).view(d).astype(np.float64)
    gap = np.where(np.isfinite(up), up - near.astype(np.float64), np.inf)
    assert np.all(np.abs(y - xc) <= gap * 1.0000001)
    assert np.all((np.sign(y) == np.sign(xc)) | (y == 0) | (xc == 0))
    assert np.all(np.abs(y) <= m)


def test_gradient_flows_back_in_the_input_dtype():
    w = ts.asarray([0.5, 1.5], requires_grad=True)
    y = op.cast(w, "bf16", rounding="stochastic", generator=Generator(0))
    ts.sum(y * 2.0).backward()
    assert w.grad.dtype.name == "fp32" and w.grad.tolist() == [2.0, 2.0]
    w.grad = None
    ts.sum(op.cast(w, "fp8_e4m3", saturate=True).astype("fp32")).backward()
    assert w.grad.dtype.name == "fp32"


def test_bad_rounding_and_complex():
    with pytest.raises(ValueError, match=r"\[cast\] rounding"):
        op.cast(ts.ones(2), "bf16", rounding="up")
    with pytest.raises(ts.DTypeError, match=r"\[cast\]"):
        op.cast(ts.ones(2).astype("complex64"), "fp16", saturate=True)


@pytest.mark.cpu_only("NumPy's clip made strict as CuPy's: bounds must fit the array's dtype")
def test_saturating_int_casts_clip_within_the_source_range(monkeypatch):
    # CuPy converts Python-int clip bounds to the array's dtype and raises OverflowError
    # for int8 -> int32 (NumPy 2 accepts them) (TRIAGE 2026-12-04 A15)
    real = np.clip

    def cupy_clip(a, lo, hi, *args, **kw):
        if a.dtype.kind in "iu":
            r = np.iinfo(a.dtype)
            for b in (lo, hi):
                if isinstance(b, int) and not r.min <= b <= r.max:
                    raise OverflowError(f"Python integer {b} out of bounds for {a.dtype}")
        return real(a, lo, hi, *args, **kw)
    monkeypatch.setattr(np, "clip", cupy_clip)
    vals = {"int8": [-128, 5, 127], "uint8": [0, 5, 255], "int32": [-300, 5, 70000],
            "int64": [-2**40, 5, 2**40]}
    for a, v in vals.items():
        for b in ("int8", "uint8", "int32", "int64", "fp16", "fp32"):
            got = op.cast(ts.asarray(v, dtype=a), b, saturate=True).numpy().astype(np.float64)
            lo, hi = ((float(np.finfo(np.float16).min), float(np.finfo(np.float16).max)) if b == "fp16"
                      else (-np.inf, np.inf) if b == "fp32" else tuple(map(float, (np.iinfo(b).min,
                                                                                    np.iinfo(b).max))))
            np.testing.assert_array_equal(got, np.clip(np.array(v, np.float64), lo, hi), err_msg=f"{a}->{b}")
