"""Shared helpers for the fusion code-generation tests (tessera.fusion is tested standalone)."""
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))

from tessera.fusion.ir import DTYPES, numpy_dtype  # noqa: E402

FLOATS = ["fp64", "fp32", "fp16", "bf16", "fp8_e4m3", "fp8_e5m2"]
INTS = ["int8", "int16", "int32", "int64", "uint8"]
# relative tolerance of one op against a float64 reference, per dtype
# (about two units in the last place of the dtype)
RTOL = {"fp64": 1e-13, "fp32": 2e-6, "fp16": 2e-3, "bf16": 1.6e-2, "fp8_e4m3": 0.13,
        "fp8_e5m2": 0.26}


def have_nvrtc():
    try:
        from cuda.bindings import nvrtc  # noqa: F401
        return True
    except Exception:
        return False


needs_nvrtc = pytest.mark.skipif(not have_nvrtc(), reason="cuda.bindings (NVRTC) not installed")


def special_floats(dtype, n=64, lo=-3.0, hi=3.0, seed=0):
    """Ordinary values in [lo, hi] plus NaN, +-inf, +-0 and a subnormal, as `dtype`."""
    rng = np.random.default_rng(seed)
    v = rng.uniform(lo, hi, n)
    tiny = {"fp64": 5e-324, "fp32": 1e-40, "fp16": 6e-8, "bf16": 1e-40, "fp8_e4m3": 0.002,
            "fp8_e5m2": 2e-5}[dtype]
    sp = [np.nan, np.inf, -np.inf, 0.0, -0.0, tiny, -tiny, 0.5, -0.5, 1.0]
    if dtype == "fp8_e4m3":
        sp = [np.nan, 0.0, -0.0, tiny, -tiny, 0.5, -0.5, 1.0, 448.0, -448.0]
    v[: len(sp)] = sp
    return v.astype(numpy_dtype(dtype))


def assert_close(got, ref, dtype, what, rtol=None, atol=None):
    """Compare in float64 with NaN positions equal; ints/bools exactly."""
    kind = DTYPES[dtype].kind
    if kind in "iub":
        np.testing.assert_array_equal(got, ref, err_msg=what)
        return
    g = np.asarray(got).astype(np.float64)
    r = np.asarray(ref).astype(np.float64)
    rt = RTOL[dtype] if rtol is None else rtol
    np.testing.assert_allclose(g, r, rtol=rt, atol=rt if atol is None else atol, equal_nan=True,
                               err_msg=what)
