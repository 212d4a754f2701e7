"""An independent reference for tessera's cast table (tessera/precision/convert.py).

No NumPy, ml_dtypes or C conversion decides a result here: `round_exact` rounds with
Python's `fractions.Fraction` (round half to even), `to_int_exact` applies the integer
rule with Python ints, and `round_f64` is a vectorized float64 version of
`round_exact` built only from exact operations (scaling by powers of two and
`np.rint`), cross-checked against it in tests/precision/test_cast_rules.py.
Results are float64 values (every narrow float is exact in float64) or Python ints.
"""
import math
from fractions import Fraction

import numpy as np

# name: (mantissa bits, minimum normal exponent, largest finite value, has infinities)
FORMATS = {
    "fp64": (52, -1022, float.fromhex("0x1.fffffffffffffp+1023"), True),
    "fp32": (23, -126, float.fromhex("0x1.fffffep+127"), True),
    "fp16": (10, -14, 65504.0, True),
    "bf16": (7, -126, float.fromhex("0x1.fep+127"), True),
    "fp8_e4m3": (3, -6, 448.0, False),
    "fp8_e5m2": (2, -14, 57344.0, True),
}
INTS = {"int8": (8, True), "int16": (16, True), "int32": (32, True), "int64": (64, True),
        "uint8": (8, False)}


def _overflow(neg, fmt):
    has_inf = FORMATS[fmt][3]
    return (-math.inf if neg else math.inf) if has_inf else (-math.nan if neg else math.nan)


def round_exact(v, fmt):
    """int, float or Fraction `v` rounded once, to nearest even, into float format `fmt`
    (overflow: inf, or NaN for fp8_e4m3). Returns a Python float."""
    if isinstance(v, float):
        if math.isnan(v):
            return v
        if math.isinf(v):
            return _overflow(v < 0, fmt)
        if v == 0:
            return v  # keeps the sign of zero
    man, emin, mx, _ = FORMATS[fmt]
    q = Fraction(v)
    if q == 0:
        return 0.0
    neg, a = q < 0, abs(q)
    e = a.numerator.bit_length() - a.denominator.bit_length()  # 2**e <= a < 2**(e+2)
    if Fraction(2) ** e > a:
        e -= 1
    elif Fraction(2) ** (e + 1) <= a:
        e += 1
    ulp = Fraction(2) ** (max(e, emin) - man)
    r = round(a / ulp) * ulp  # Fraction.__round__: half to even
    if r > mx:
        return _overflow(neg, fmt)
    return -float(r) if neg else float(r)


def round_f64(v, fmt):
    """`round_exact` over a float64 array, with exact float64 operations only."""
    man, emin, mx, _ = FORMATS[fmt]
    v = np.asarray(v, np.float64)
    a = np.abs(v)
    with np.errstate(invalid="ignore", over="ignore"):  # inf and NaN are replaced below
        _, e = np.frexp(a)  # a = m * 2**e, m in [0.5, 1)
        e = np.maximum(e - 1, emin)
        r = np.ldexp(np.rint(np.ldexp(a, man - e)), e - man)  # both scalings exact; rint: half to even
    over = math.inf if FORMATS[fmt][3] else math.nan
    r = np.where(r > mx, over, r)
    r = np.where(np.isinf(a), over, r)
    r = np.where(np.isnan(a), np.nan, r)
    return np.copysign(r, v)


def to_int_exact(v, dst):
    """Float `v` (Python float) to integer dtype `dst` by the table's rule."""
    bits, signed = INTS[dst]
    wide = 64 if dst == "int64" else 32
    lo = -(2 ** (wide - 1))
    if math.isnan(v) or math.isinf(v):
        w = lo
    else:
        t = math.trunc(v)
        w = t if lo <= t < -lo else lo
    m = w % 2 ** bits
    return m - 2 ** bits if signed and m >= 2 ** (bits - 1) else m


def cast_exact(values, dst):
    """Exact source values (Python ints / floats) cast to `dst` by the table: a float64
    array for float and bool destinations, an int64 array (uint8 fits) for integers."""
    if dst == "bool":
        return np.array([bool(v != 0 or v != v) for v in values], np.float64)
    if dst in INTS:
        return np.array([to_int_exact(float(v), dst) if isinstance(v, float) else
                         _wrap_int(v, dst) for v in values], np.int64)
    return np.array([round_exact(v, dst) for v in values], np.float64)


def _wrap_int(n, dst):
    bits, signed = INTS[dst]
    m = int(n) % 2 ** bits
    return m - 2 ** bits if signed and m >= 2 ** (bits - 1) else m


def assert_same_values(got, ref, err_msg=""):
    """Equal as values, with the sign of zero and NaN-ness (any NaN payload) equal too."""
    got, ref = np.asarray(got, np.float64), np.asarray(ref, np.float64)
    gn, rn = np.isnan(got), np.isnan(ref)
    np.testing.assert_array_equal(gn, rn, err_msg=f"NaN positions {err_msg}")
    np.testing.assert_array_equal(got[~gn], ref[~rn], err_msg=err_msg)
    np.testing.assert_array_equal(np.signbit(got[~gn]), np.signbit(ref[~rn]), err_msg=f"signs {err_msg}")
