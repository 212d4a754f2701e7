"""tessera's cast table (tessera/precision/convert.py) against an exact reference
(tests/cast_reference.py: Python fractions and ints), on every path a cast takes:
eager (the CPU's NumPy code, cast.cu on a GPU), fused (generated C / CUDA), `op.cast`
and `asarray(..., dtype=)`. Nothing here asks ml_dtypes or NumPy what a cast gives, so
the results are the same whichever ml_dtypes version is installed."""
import contextlib
import math

import numpy as np
import pytest

import tessera as ts
from tessera import fusion, op
from cast_reference import (FORMATS, assert_same_values, cast_exact, round_exact, round_f64,
                            to_int_exact)

NARROW = ["bf16", "fp16", "fp8_e4m3", "fp8_e5m2"]
FLOAT_SRC = ["fp64", "fp32", "fp16", "bf16", "fp8_e4m3", "fp8_e5m2"]
INT_DST = ["int8", "int16", "int32", "int64", "uint8"]
PATHS = ["eager", "fused"]
FUSE_MIN = 32768  # the CPU backend's FUSE_MIN_SIZE: casts this large are fused


def _grid(fmt, rng, n=3000):
    """Finite values of `fmt` (all of them for fp8, a sample of bf16/fp16, always
    including the extremes) as float64, sorted and non-negative."""
    man, emin, mx, _ = FORMATS[fmt]
    bits = 1 + (8 if fmt == "bf16" else 5 if fmt in ("fp16", "fp8_e5m2") else 4) + man
    codes = np.arange(2 ** (bits - 1)) if bits <= 8 else np.unique(np.concatenate(
        [rng.integers(0, 2 ** (bits - 1), n), np.arange(0, 64), np.arange(2 ** (bits - 1) - 64, 2 ** (bits - 1))]))
    e = codes >> man
    m = codes & ((1 << man) - 1)
    v = np.where(e == 0, np.ldexp(m.astype(np.float64), emin - man),
                 np.ldexp((m + (1 << man)).astype(np.float64), e.astype(np.int64) + emin - 1 - man))
    return np.unique(v[v <= mx])


def _fp64_cases(dst, seed=0):
    """fp64 values where a cast to `dst` is hard: ties, just beside ties by less than
    half an fp32 ulp (where rounding through fp32 goes wrong), overflow edges."""
    rng = np.random.default_rng(seed)
    g = _grid(dst, rng)
    mid = (g[:-1] + g[1:]) / 2  # exact in float64
    tiny = np.abs(mid) * 2.0 ** -40  # far below fp32's half ulp at mid
    man, emin, mx, _ = FORMATS[dst]
    top = mx + 2.0 ** (math.floor(math.log2(mx)) - man - 1)  # the tie above the largest value
    sp = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, mx, top, np.nextafter(top, 0), np.nextafter(top, np.inf),
                   1e300, 5e-324, 2.0 ** (emin - man - 1), np.nextafter(2.0 ** (emin - man - 1), 1),
                   1 + 2.0 ** -8 + 2.0 ** -30])
    x = np.concatenate([g, mid, mid + tiny, mid - tiny, np.nextafter(mid, 0), np.nextafter(mid, np.inf),
                        rng.uniform(-1, 1, 2000) * 2.0 ** rng.integers(emin - man - 2, 17, 2000), sp])
    return np.concatenate([x, -x])


def _int_cases(src, seed=0):
    """int32/int64 values at and beside the ties of bf16 (8 bits) and fp16 (11 bits)."""
    rng = np.random.default_rng(seed)
    top = 31 if src == "int32" else 63
    out = [0, 1, -1, 2 ** (top - 1), -(2 ** top), 2 ** top - 1, 65504, 65519, 65520, 448, 464, 465]
    for s in range(4, top - 1):
        for k in (2 ** 7 + 1, 2 ** 10 + 1, 2 ** 8 - 1, 3):
            base = k << s
            if base + (1 << (s - 1)) + 1 < 2 ** top:
                for d in (-1, 0, 1):
                    out += [base + (1 << (s - 1)) + d, -(base + (1 << (s - 1)) + d)]
    out += [int(v) for v in rng.integers(-(2 ** top), 2 ** top - 1, 2000, dtype=np.int64)]
    return out


def _source(vals, src, device, reps):
    """A tensor of dtype `src` holding exactly `vals`, tiled `reps` times."""
    if src in ("int32", "int64"):
        a = np.tile(np.array(vals, np.int64), reps)
        return ts.asarray(a, device=device).astype(src)  # int64 -> int32: the values fit
    a = np.tile(np.asarray(vals, np.float64), reps)
    return ts.asarray(a, device=device).astype(src)  # exact: the values are on src's grid


def _cast(vals, src, dst, device, path):
    n = len(vals)
    reps = max(1, -(-FUSE_MIN // n)) if path == "fused" else 1
    x = _source(vals, src, device, reps)
    with fusion.mode("none") if path == "eager" else contextlib.nullcontext():
        y = ts.astype(x, dst)
    got = y.numpy()
    got = got.astype(np.float64) if y.dtype.kind == "f" else got.astype(np.int64)
    tiles = got.reshape(reps, n)
    np.testing.assert_array_equal(tiles, np.broadcast_to(tiles[0], tiles.shape))  # NaN == NaN here
    return tiles[0]


@pytest.mark.cpu_only("the reference itself: float64 rounding against Python fractions")
@pytest.mark.parametrize("fmt", list(FORMATS))
def test_reference_vectorized_equals_fractions(fmt):
    if fmt == "fp64":
        return
    x = _fp64_cases(fmt)[::7]
    assert_same_values(round_f64(x, fmt), [round_exact(float(v), fmt) for v in x], fmt)
    # and a few facts the table states, by hand
    assert round_exact(1 + 2 ** -8 + 2 ** -30, "bf16") == 1 + 2 ** -7
    assert round_exact(1 + 2 ** -8, "bf16") == 1.0
    assert round_exact(464.0, "fp8_e4m3") == 448.0 and math.isnan(round_exact(464.5, "fp8_e4m3"))
    assert round_exact(65520.0, "fp16") == math.inf
    assert to_int_exact(-1.0, "uint8") == 255 and to_int_exact(300.0, "uint8") == 44
    assert to_int_exact(math.nan, "uint8") == 0 and to_int_exact(math.nan, "int32") == -2 ** 31


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("dst", NARROW)
def test_fp64_to_narrow_rounds_once(dst, path, device):
    x = _fp64_cases(dst)
    assert_same_values(_cast(x, "fp64", dst, device, path), round_f64(x, dst), f"fp64 -> {dst} {path}")


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("dst", NARROW)
@pytest.mark.parametrize("src", ["int32", "int64"])
def test_wide_int_to_narrow_rounds_once(src, dst, path, device):
    vals = _int_cases(src)
    ref = [round_exact(v, dst) for v in vals]
    assert_same_values(_cast(vals, src, dst, device, path), ref, f"{src} -> {dst} {path}")


SPECIAL = [0.0, -0.0, 0.5, -0.5, 0.99, 1.0, -1.0, 1.5, -1.5, 2.5, 3.0, -3.0, 100.75, 127.0, 127.9, 128.0,
           -128.0, -129.0, 200.0, 255.0, 255.9, 256.0, 300.0, -300.0, 448.0, 40000.0, -40000.0, 57344.0,
           65535.0, 65536.0, 65504.0, 1e6, -1e6, 2.0 ** 31 - 128, 2.0 ** 31, -(2.0 ** 31), -(2.0 ** 31) - 1,
           2.0 ** 40, 2.0 ** 62, 2.0 ** 63, -(2.0 ** 63), 2.0 ** 64, 1e30, -1e30, 3e38, 1e300,
           math.inf, -math.inf, math.nan, -math.nan]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("dst", INT_DST)
@pytest.mark.parametrize("src", FLOAT_SRC)
def test_float_to_int_rule(src, dst, path, device):
    vals = round_f64(np.array(SPECIAL), src) if src != "fp64" else np.array(SPECIAL)
    ref = [to_int_exact(float(v), dst) for v in vals]
    np.testing.assert_array_equal(_cast(vals, src, dst, device, path), ref, err_msg=f"{src} -> {dst} {path}")


@pytest.mark.parametrize("path", PATHS)
def test_the_rule_by_example(path, device):
    """The cases that differed between ml_dtypes 0.5 and 0.7, and double rounding."""
    def one(v, src, dst):
        return _cast([v], src, dst, device, path)[0]
    assert one(-1.0, "bf16", "uint8") == 255 and one(-1.0, "fp8_e4m3", "uint8") == 255
    assert one(300.0, "bf16", "uint8") == 44 and one(-3.0, "fp8_e5m2", "uint8") == 253
    assert one(math.nan, "bf16", "uint8") == 0 and one(math.nan, "fp32", "int32") == -2 ** 31
    assert one(math.inf, "bf16", "int64") == -2 ** 63 and one(-math.inf, "fp16", "int16") == 0
    assert one(1 + 2 ** -8 + 2 ** -30, "fp64", "bf16") == 1 + 2 ** -7  # fp32 first would give 1.0
    assert one(2 ** 24 + 2 ** 16 + 1, "int32", "bf16") == 2 ** 24 + 2 ** 17
    assert one(2 ** 60 + 2 ** 52 + 1, "int64", "bf16") == 2 ** 60 + 2 ** 53


def test_op_cast_and_asarray_follow_the_table(device):
    x = _fp64_cases("bf16", seed=3)
    t = ts.asarray(x, device=device)
    m = float.fromhex("0x1.fep+127")
    clipped = np.where(np.isnan(x), x, np.clip(x, -m, m))
    got = op.cast(t, "bf16", saturate=True).numpy().astype(np.float64)
    assert_same_values(got, round_f64(clipped, "bf16"), "op.cast(saturate=True) fp64 -> bf16")
    got = op.cast(t, "bf16").numpy().astype(np.float64)
    assert_same_values(got, round_f64(x, "bf16"), "op.cast fp64 -> bf16")
    got = ts.asarray(x.tolist()[:500], dtype="bf16", device=device).numpy().astype(np.float64)
    assert_same_values(got, round_f64(x[:500], "bf16"), "asarray(list, dtype=bf16)")
    got = ts.asarray(x, dtype="fp8_e4m3", device=device).numpy().astype(np.float64)
    assert_same_values(got, round_f64(x, "fp8_e4m3"), "asarray(ndarray, dtype=fp8_e4m3)")
    sp = np.array(SPECIAL)
    got = ts.asarray(sp, dtype="uint8", device=device).numpy()
    np.testing.assert_array_equal(got, [to_int_exact(v, "uint8") for v in SPECIAL])
    # stochastic rounding to an integer leaves integers and NaN alone: the table decides
    got = op.cast(ts.asarray([-1.0, 300.0, math.nan], device=device), "uint8", rounding="stochastic").tolist()
    assert got == [255, 44, 0]
    # saturate=True is the other rule: clamp, NaN -> 0
    got = op.cast(ts.asarray([-1.0, 300.0, math.nan], device=device), "uint8", saturate=True).tolist()
    assert got == [0, 255, 0]


@pytest.mark.parametrize("dst", NARROW + INT_DST + ["fp32", "bool"])
def test_every_source_matches_the_table(dst, device):
    """All sources, small exact values plus the specials, eager: the whole table."""
    sources = FLOAT_SRC + ["int8", "int16", "int32", "int64", "uint8", "bool"]
    for src in sources:
        if src in FORMATS:
            vals = np.unique(round_f64(np.array(SPECIAL), src)).tolist() if src != "fp64" else SPECIAL
            x = ts.asarray(np.array(vals, np.float64), device=device).astype(src)
            exact = [float(v) for v in vals]
        else:
            ints = [0, 1, -1, 5, 100, 127, -128, 200, 255] + ([300, -300, 70000, -70000] if src in ("int32", "int64") else [])
            a = np.array(ints, np.int64)
            x = ts.asarray(a, device=device).astype(src)
            exact = [int(v) for v in x.numpy().astype(np.int64)]  # the stored values (wrapped)
        with fusion.mode("none"):
            y = ts.astype(x, dst)
        ref = cast_exact(exact, dst)
        got = y.numpy()
        if dst in FORMATS or dst == "bool":
            assert_same_values(got.astype(np.float64), ref, f"{src} -> {dst}")
        else:
            np.testing.assert_array_equal(got.astype(np.int64), ref, err_msg=f"{src} -> {dst}")
