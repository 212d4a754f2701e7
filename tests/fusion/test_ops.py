"""Every elementwise op of the IR, for every dtype it supports, against NumPy
(NaN, +-inf, +-0 and subnormals included).  One multi-output kernel per
(dtype, op family) keeps the number of compiles small; each output is checked
under its op's name."""
import math

import numpy as np
import pytest

from tessera.fusion.ir import DTYPES, OPS, alu, inp, numpy_dtype
from tessera.fusion.runtime import run_cpu

from fusion_common import FLOATS, INTS, assert_close, special_floats

pytestmark = pytest.mark.cpu_only("the fusion IR run by the C kernel (run_cpu) on NumPy arrays")

UNARY = [o for o, i in OPS.items() if i.arity == 1 and i.result in ("same", "bool")]
BINARY = [o for o, i in OPS.items() if i.arity == 2]


def _supports(op, dtype):
    return DTYPES[dtype].kind in OPS[op].kinds


def _ref_fn(op):
    special = {
        "reciprocal": lambda x: 1 / x, "rsqrt": lambda x: 1 / np.sqrt(x),
        "sigmoid": lambda x: 1 / (1 + np.exp(-x)), "round": np.rint,
        "erf": np.vectorize(math.erf, otypes=[np.float64]),
        "bitwise_invert": np.invert, "pow": np.power,
        "bitwise_left_shift": np.left_shift, "bitwise_right_shift": np.right_shift,
    }
    return special.get(op) or getattr(np, op)


def _compute(x, dtype):
    """The values NumPy computes a `dtype` op on: float32 for narrow floats."""
    return x.astype(np.float32) if DTYPES[dtype].rnd else x


def _check_family(dtype, ops, arrays, shape):
    nodes = [inp(i, dtype) for i in range(len(arrays))]
    outs = [alu(op, *nodes) for op in ops]
    got = run_cpu(outs, arrays, shape)
    for op, g, o in zip(ops, got, outs):
        with np.errstate(all="ignore"):
            if op in ("floor", "ceil", "trunc", "round") and DTYPES[dtype].kind in "iu":
                ref = arrays[0]  # NumPy may go through float64; these are the identity on ints
            else:
                ref = _ref_fn(op)(*[_compute(a, dtype) for a in arrays])
            ref = np.asarray(ref).astype(numpy_dtype(o.dtype))
        assert_close(g, ref, o.dtype if o.dtype != "bool" else "bool", f"{op} on {dtype}")


def _int_values(dtype, n=64, seed=0):
    info = np.iinfo(numpy_dtype(dtype))
    rng = np.random.default_rng(seed)
    v = rng.integers(info.min, info.max, n, endpoint=True, dtype=np.int64)
    v[:8] = [0, 1, -1 if info.min < 0 else 2, info.min, info.max, 7, -7 if info.min < 0 else 9, 3]
    return v.astype(numpy_dtype(dtype))


@pytest.mark.parametrize("dtype", FLOATS)
def test_unary_float(dtype):
    x = special_floats(dtype, 256, -4, 4)
    _check_family(dtype, [o for o in UNARY if _supports(o, dtype)], [x], x.shape)


@pytest.mark.parametrize("dtype", INTS + ["bool"])
def test_unary_int_bool(dtype):
    x = _int_values(dtype) if dtype != "bool" else np.array([True, False] * 8)
    _check_family(dtype, [o for o in UNARY if _supports(o, dtype)], [x], x.shape)


@pytest.mark.parametrize("dtype", FLOATS)
def test_binary_float(dtype):
    a, b = special_floats(dtype, 40, -3, 3, seed=1), special_floats(dtype, 40, -3, 3, seed=2)
    A, B = np.meshgrid(a, b)  # every special against every special
    _check_family(dtype, [o for o in BINARY if _supports(o, dtype)], [A, B], A.shape)


@pytest.mark.parametrize("dtype", INTS + ["bool"])
def test_binary_int_bool(dtype):
    if dtype == "bool":
        A, B = np.meshgrid([False, True], [False, True])
        ops = [o for o in BINARY if _supports(o, dtype)]
        _check_family(dtype, ops, [A, B], A.shape)
        return
    a, b = _int_values(dtype, 40, 1), _int_values(dtype, 40, 2)
    A, B = np.meshgrid(a, b)
    ops = [o for o in BINARY if _supports(o, dtype) and o not in
           ("pow", "bitwise_left_shift", "bitwise_right_shift")]
    _check_family(dtype, ops, [A, B], A.shape)
    bits = numpy_dtype(dtype).itemsize * 8
    small = np.arange(0, bits + 3).astype(numpy_dtype(dtype))
    A, B = np.meshgrid(a, small)
    _check_family(dtype, ["bitwise_left_shift", "bitwise_right_shift"], [A, B], A.shape)
    A, B = np.meshgrid(a, np.arange(0, 6).astype(numpy_dtype(dtype)))
    _check_family(dtype, ["pow"], [A, B], A.shape)


def test_where_all_dtypes():
    c = np.array([True, False, True, False])
    for dt in FLOATS + INTS + ["bool"]:
        a = (np.arange(4) % 2 == 0) if dt == "bool" else np.arange(4).astype(numpy_dtype(dt))
        b = a[::-1].copy()
        got = run_cpu([alu("where", inp(0, "bool"), inp(1, dt), inp(2, dt))], [c, a, b], (4,))[0]
        np.testing.assert_array_equal(got, np.where(c, a, b), err_msg=dt)


@pytest.mark.parametrize("src", FLOATS + INTS + ["bool"])
def test_casts(src):
    if DTYPES[src].kind == "f":
        x = special_floats(src, 200, -100, 100)
    elif src == "bool":
        x = np.array([True, False, True])
    else:
        x = _int_values(src, 200)
    targets = FLOATS + INTS + ["bool"]
    got = run_cpu([alu("cast", inp(0, src), dtype=t) for t in targets], [x], x.shape)
    for t, g in zip(targets, got):
        with np.errstate(all="ignore"):
            ref = x.astype(numpy_dtype(t))
        mask = np.ones(x.shape, bool)
        if DTYPES[src].kind == "f" and DTYPES[t].kind in "iu":
            # NumPy leaves NaN / out-of-range float->int undefined: compare the defined part
            info = np.iinfo(numpy_dtype(t))
            xf = x.astype(np.float64)
            mask = np.isfinite(xf) & (xf > info.min - 1) & (xf < info.max + 1)
        assert_close(g[mask], ref[mask], t, f"cast {src}->{t}", rtol=0, atol=0)


def test_consts_inf_nan_and_negative_zero():
    from tessera.fusion.ir import const
    x = np.array([1.0, -2.0], np.float32)
    outs = [alu("add", inp(0, "fp32"), const(v, "fp32")) for v in (math.inf, -math.inf, math.nan)]
    outs.append(alu("copysign", inp(0, "fp32"), const(-0.0, "fp32")))
    got = run_cpu(outs, [x], x.shape)
    assert np.all(got[0] == np.inf) and np.all(got[1] == -np.inf) and np.all(np.isnan(got[2]))
    np.testing.assert_array_equal(got[3], [-1.0, -2.0])
