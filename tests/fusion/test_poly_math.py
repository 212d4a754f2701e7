"""The CPU kernels' own float exp/tanh (functors.cuh, `ts_libexpf`/`ts_libtanhf`):
<= 2 ulp against a float64 reference over a dense sweep of float32 bit patterns,
and exact at the special values (as numpy.exp / numpy.tanh)."""
import numpy as np
import pytest

from tessera.fusion.ir import alu, inp
from tessera.fusion.runtime import run_cpu

import fusion_common  # noqa: F401  (sys.path)

pytestmark = pytest.mark.cpu_only("the CPU kernels' own exp/tanh, through run_cpu on NumPy arrays")


def _sweep(lo, hi, n=1 << 22):
    """n float32 values evenly spread over the bit patterns of [lo, hi] (both signs)."""
    b_lo, b_hi = np.float32(lo).view(np.uint32), np.float32(hi).view(np.uint32)
    pos = np.linspace(int(b_lo), int(b_hi), n // 2).astype(np.uint32).view(np.float32)
    return np.concatenate([pos, -pos])


def _ulp_err(got, ref64):
    ref32 = ref64.astype(np.float32)
    ulp = np.spacing(np.abs(ref32)).astype(np.float64)
    ulp = np.maximum(ulp, 2.0 ** -149)
    return np.abs(got.astype(np.float64) - ref64) / ulp


@pytest.mark.parametrize("op,lo,hi,ref", [
    ("exp", 1e-30, 104.0, np.exp),
    ("tanh", 1e-30, 12.0, np.tanh),
    ("sigmoid", 1e-30, 104.0, lambda x: 1.0 / (1.0 + np.exp(-x))),
])
def test_poly_ulp(op, lo, hi, ref):
    x = _sweep(lo, hi)
    got = run_cpu([alu(op, inp(0, "fp32"))], [x], x.shape)[0]
    with np.errstate(over="ignore"):
        r = ref(x.astype(np.float64))
    finite = np.isfinite(r) & (np.abs(r) < 3.4e38)
    err = _ulp_err(got[finite], r[finite])
    bound = 3.0 if op == "sigmoid" else 2.0  # sigmoid rounds twice more (1/(1+e), e*r)
    assert err.max() <= bound, (op, float(err.max()), x[finite][np.argmax(err)])


def test_poly_special_values():
    sp = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 88.72283, 88.7229, 89.0, 1e30, -1e30,
                   -87.3, -103.9, -103.98, -104.0, -150.0, 9.0, -9.5, 1e-40, -1e-40], np.float32)
    for op, f in (("exp", np.exp), ("tanh", np.tanh)):
        got = run_cpu([alu(op, inp(0, "fp32"))], [sp], sp.shape)[0]
        with np.errstate(over="ignore"):
            want = f(sp.astype(np.float64)).astype(np.float32)
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want), err_msg=op)
        ok = ~np.isnan(want)
        assert np.all(np.signbit(got[ok]) == np.signbit(want[ok])), op
        inf = np.isinf(want)
        np.testing.assert_array_equal(got[inf], want[inf], err_msg=op)
        ok &= ~inf
        err = _ulp_err(got[ok], f(sp[ok].astype(np.float64)))
        assert err.max() <= 2.0, (op, sp[ok][np.argmax(err)], got[ok][np.argmax(err)])
