"""Hypothesis strategies shared by the core op tests: random shapes, dtypes and
memory layouts. A layout is how the tessera operand is laid out in storage:
"contiguous", "transposed" (a permute_dims view of a base with reversed shape),
"strided" (a [..., ::2] slice of a base twice as wide) or "flipped" (negative
strides: a flip view). The values are the same in every layout, so one NumPy
float64 reference serves all of them.
"""
import contextlib

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tessera as ts
from tessera._config import STATE
from helpers import to_np64

FLOATS = ("fp32", "fp64", "fp16", "bf16")
INTS = ("int8", "int16", "int32", "int64", "uint8")
LAYOUTS = ("contiguous", "transposed", "strided", "flipped")
from tessera.backend.cpu import CPUBackend  # noqa: E402

FUSE_MIN = CPUBackend.FUSE_MIN_SIZE


def shapes(min_dims=0, max_dims=3, min_side=1, max_side=5):
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side,
                            max_side=max_side)


def values(rng, shape, dtype, low=-3.0, high=3.0):
    """Random values for `dtype` in [low, high] (ints: small, so that no op in
    the tests overflows; uint8: non-negative)."""
    kind = ts.dtypes.get_dtype(dtype).kind
    if kind == "b":
        return rng.random(shape) < 0.5
    if kind in "iu":
        lo = max(int(np.ceil(low)), 0 if kind == "u" else -10)
        hi = min(int(np.floor(high)), 10)
        return rng.integers(lo, hi + 1, size=shape)
    return rng.uniform(low, high, size=shape)


def make(a, dtype, layout="contiguous", device=None):
    """A tessera tensor holding `a` (rounded to `dtype`) in `layout` on `device` (None: the
    default device, which tests/conftest.py pins to the test's own), and the float64 (or
    int/bool) NumPy reference of exactly the values it holds."""
    a = np.asarray(a)
    if a.ndim == 0 or layout == "contiguous":
        t = ts.asarray(a, dtype=dtype, device=device)
    elif layout == "transposed":
        base = ts.asarray(np.ascontiguousarray(np.transpose(a)), dtype=dtype, device=device)
        t = ts.permute_dims(base, tuple(reversed(range(a.ndim))))
    elif layout == "strided":
        big = np.repeat(a, 2, axis=-1)
        big[..., 1::2] = 0 if a.dtype.kind != "b" else False
        base = ts.asarray(big, dtype=dtype, device=device)
        t = base[..., ::2]
    elif layout == "flipped":
        base = ts.asarray(np.ascontiguousarray(np.flip(a)), dtype=dtype, device=device)
        t = ts.flip(base)
    else:
        raise AssertionError(layout)
    assert t.shape == a.shape
    return t, to_np64(t)


@st.composite
def tensors(draw, shape=None, dtypes=FLOATS, low=-3.0, high=3.0, layouts=LAYOUTS):
    """(tessera tensor, reference array, dtype name, layout)."""
    if shape is None:
        shape = draw(shapes())
    dtype = draw(st.sampled_from(dtypes))
    layout = draw(st.sampled_from(layouts))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    t, ref = make(values(rng, shape, dtype, low, high), dtype, layout)
    return t, ref, dtype, layout


@contextlib.contextmanager
def fusion_mode(mode):
    old = STATE.fusion_mode
    STATE.fusion_mode = mode
    try:
        yield
    finally:
        STATE.fusion_mode = old


# Shapes with at least FUSE_MIN_SIZE elements (the lazy fusion path).
BIG_SHAPES = st.sampled_from([(FUSE_MIN,), (256, 160), (4, 96, 100), (FUSE_MIN + 7,)])
