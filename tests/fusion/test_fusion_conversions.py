"""Bit-exact storage conversions of functors.cuh (fp16/bf16/fp8 <-> float), exercised
through generated kernels (cast nodes load/store through the functors). Decoding is
checked against ml_dtypes/NumPy (widening is exact in every version); encoding against
the exact rounding of tests/cast_reference.py, so no ml_dtypes version decides it."""
import numpy as np
import pytest

from cast_reference import assert_same_values, round_exact, round_f64
from tessera.fusion.ir import alu, inp, numpy_dtype
from tessera.fusion.runtime import run_cpu

pytestmark = pytest.mark.cpu_only("the fusion IR run by the C kernel (run_cpu) on NumPy arrays")

NARROW = ["fp16", "bf16", "fp8_e4m3", "fp8_e5m2"]


@pytest.mark.parametrize("dt", NARROW)
def test_decode_every_pattern(dt):
    nbits = numpy_dtype(dt).itemsize * 8
    pats = np.arange(2 ** nbits, dtype=np.uint16 if nbits == 16 else np.uint8)
    x = pats.view(numpy_dtype(dt))
    got = run_cpu([alu("cast", inp(0, dt), dtype="fp32")], [x], x.shape)[0]
    ref = x.astype(np.float32)
    nan = np.isnan(ref)
    np.testing.assert_array_equal(np.isnan(got), nan)
    np.testing.assert_array_equal(got.view(np.uint32)[~nan], ref.view(np.uint32)[~nan])


def _f32_cases():
    rng = np.random.default_rng(1)
    bits = rng.integers(0, 2 ** 32, 400_000, dtype=np.uint64).astype(np.uint32)
    a = bits.view(np.float32)
    # plus dense coverage of the exponent ranges where rounding / subnormals / overflow happen
    b = (rng.uniform(-1, 1, 200_000) * 2.0 ** rng.integers(-30, 20, 200_000)).astype(np.float32)
    # exact halfway points of fp16 (ties to even)
    h = np.arange(0, 0x7c00, dtype=np.uint16).view(np.float16).astype(np.float32)
    mid = (h[:-1].astype(np.float64) + h[1:].astype(np.float64)) / 2
    sp = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 65504, 65519.99, 65520, 448, 464, 465, 480,
                   57344, 61439, 61440, 1e-45, -1e-45], np.float32)
    return np.concatenate([a, b, mid.astype(np.float32), -mid.astype(np.float32), sp])


@pytest.mark.parametrize("dt", NARROW)
def test_encode_from_f32(dt):
    x = _f32_cases()
    got = run_cpu([alu("cast", inp(0, "fp32"), dtype=dt)], [x], x.shape)[0]
    with np.errstate(invalid="ignore"):  # the random patterns hold signalling NaNs
        x64 = x.astype(np.float64)
    assert_same_values(got.astype(np.float64), round_f64(x64, dt), f"fp32 -> {dt}")


@pytest.mark.parametrize("dt", NARROW)
def test_encode_from_f64_rounds_once(dt):
    rng = np.random.default_rng(2)
    x = rng.uniform(-1, 1, 200_000) * 2.0 ** rng.integers(-28, 18, 200_000)
    h = np.arange(0, 0x7c00, dtype=np.uint16).view(np.float16).astype(np.float64)
    mid = (h[:-1] + h[1:]) / 2
    x = np.concatenate([x, mid, np.nextafter(mid, 0), np.nextafter(mid, 1e9)])
    # beside the ties by less than half an fp32 ulp: rounding through fp32 would land on the tie
    x = np.concatenate([x, mid * (1 + 2.0 ** -40), mid * (1 - 2.0 ** -40), [1 + 2.0 ** -8 + 2.0 ** -30]])
    got = run_cpu([alu("cast", inp(0, "fp64"), dtype=dt)], [x], x.shape)[0]
    assert_same_values(got.astype(np.float64), round_f64(x, dt), f"fp64 -> {dt}")
    if dt == "bf16":
        assert float(got[-1]) == round_exact(1 + 2 ** -8 + 2 ** -30, "bf16") == 1 + 2 ** -7


@pytest.mark.parametrize("dt", NARROW)
@pytest.mark.parametrize("src", ["int32", "int64"])
def test_encode_from_wide_ints_rounds_once(src, dt):
    top = 31 if src == "int32" else 63
    vals = [(k << s) + (1 << (s - 1)) + d for s in range(4, top - 11) for k in (129, 1025, 255)
            for d in (-1, 0, 1)]
    vals += [-v for v in vals] + [2 ** top - 1, -(2 ** top), 0, 65519, 65520]
    x = np.array(vals, np.int64).astype(src)
    got = run_cpu([alu("cast", inp(0, src), dtype=dt)], [x], x.shape)[0]
    assert_same_values(got.astype(np.float64), [round_exact(int(v), dt) for v in x], f"{src} -> {dt}")


def test_fp8_saturating_cast():
    x = np.array([1e6, -1e6, 500, np.inf, -np.inf, 1.0], np.float32)
    got = run_cpu([alu("cast", inp(0, "fp32"), dtype="fp8_e4m3", arg="saturate")], [x], x.shape)[0]
    np.testing.assert_array_equal(got.astype(np.float32), [448, -448, 448, 448, -448, 1.0])
