"""quantize / dequantize / QuantizedTensor: the seed snippet, round-trip bounds per
scheme against a float64 reference, packing, errors, NaN handling, save/load, observers."""
import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, strategies as st

import tessera as ts
from tessera import op
from tessera.precision import QuantizedTensor, load, observer, quantize

pytestmark = pytest.mark.usefixtures("device")  # every test runs on each device


def test_seed_snippet_runs_as_written():
    x = op.tensor((1024, 1024), dtype="fp32")
    y = op.cast(x, "bf16")
    z = op.quantize(y, scheme="int8_per_channel")
    assert isinstance(z, QuantizedTensor) and z.shape == (1024, 1024) and z.dtype.name == "bf16"
    assert "int8_per_channel" in repr(z)
    assert np.all(op.dequantize(z).numpy().astype(np.float32) == 0)  # zeros: safe scale, exact


def _ref_scale(x, scheme, axis, gs, symmetric):
    """float64 reference scale broadcastable to x (grouped view for groups)."""
    qmax = {"int8": 127, "int4": 7}
    if scheme.startswith("fp8"):
        fmax = 448.0 if scheme == "fp8_e4m3" else 57344.0
        red = tuple(i for i in range(x.ndim) if i != axis) if axis is not None else None
        return np.maximum(np.abs(x).max(axis=red, keepdims=True) / fmax, 2.0 ** -126)
    bits = scheme[:4]
    if gs:
        xg = x.reshape(x.shape[:-1] + (x.shape[-1] // gs, gs))
        return np.maximum(np.abs(xg).max(axis=-1, keepdims=True) / qmax[bits], 2.0 ** -126)
    red = tuple(i for i in range(x.ndim) if i != axis) if axis is not None else None
    return np.maximum(np.abs(x).max(axis=red, keepdims=True) / qmax[bits], 2.0 ** -126)


CASES = [("int8_per_tensor", None, None), ("int8_per_channel", 0, None), ("int8_per_channel", 1, None),
         ("int8_per_channel", -1, None), ("int8_per_group", None, 8), ("int4_per_group", None, 4),
         ("fp8_e4m3", None, None), ("fp8_e5m2", 0, None)]


@pytest.mark.parametrize("scheme,axis,gs", CASES)
def test_round_trip_within_half_a_step(scheme, axis, gs):
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((6, 16)) * np.logspace(-3, 3, 16)).astype(np.float32)
    q = op.quantize(ts.asarray(x), scheme=scheme, axis=axis, group_size=gs)
    d = q.dequantize().numpy().astype(np.float64)
    x64 = x.astype(np.float64)
    ax = None if axis is None else axis % 2
    s = _ref_scale(x64, scheme, ax, gs, True)
    np.testing.assert_allclose(q.scale.numpy().reshape(s.shape[:-1] if gs else s.shape),
                               (s[..., 0] if gs else s).astype(np.float32), rtol=1e-6)
    if scheme.startswith("fp8"):
        d8 = {"fp8_e4m3": ml_dtypes.float8_e4m3fn, "fp8_e5m2": ml_dtypes.float8_e5m2}[scheme]
        sc = q.scale.numpy().astype(np.float64)
        ref = (x / sc.astype(np.float32)).astype(d8).astype(np.float64) * sc
        np.testing.assert_allclose(d, ref, rtol=1e-6)
        return
    err = np.abs(d - x64)
    if gs:
        err = err.reshape(err.shape[:-1] + (err.shape[-1] // gs, gs))
    assert np.all(err <= 0.5 * s * (1 + 1e-5) + 1e-30), float((err / s).max())


def test_int4_packs_two_codes_per_byte_and_nbytes():
    x = ts.asarray(np.arange(-8, 8, dtype=np.float32).reshape(2, 8))
    q = op.quantize(x, scheme="int4_per_group", group_size=8)
    assert q.data.dtype.name == "uint8" and q.data.shape == (2, 4)
    assert q.nbytes == 2 * 4 + 2 * 1 * 4  # codes + fp32 scales
    codes = q.int_repr().numpy()
    assert codes.min() >= -7 and codes.max() <= 7
    lo = q.data.numpy() & 0xF
    assert np.array_equal(((lo ^ 8).astype(np.int16) - 8), codes[:, 0::2])
    assert "group_size=8" in repr(q)


@pytest.mark.parametrize("scheme", ["int8_per_channel", "int8_per_tensor", "int4_per_group"])
def test_asymmetric_round_trip_and_zero_point(scheme):
    rng = np.random.default_rng(1)
    x = (rng.uniform(0.5, 3.0, (4, 32))).astype(np.float32)  # all positive: asymmetric pays off
    q = op.quantize(ts.asarray(x), scheme=scheme, symmetric=False, group_size=16 if "group" in scheme else None)
    assert q.zero_point is not None and "asymmetric" in repr(q)
    d = q.dequantize().numpy()
    sc = q.scale.numpy()
    sc = np.repeat(sc, 16, axis=-1) if "group" in scheme else sc
    assert np.all(np.abs(d - x) <= 0.5 * sc * (1 + 1e-5))


def test_all_zero_channel_gets_a_safe_scale_and_denormals_huge_values():
    x = np.zeros((3, 8), np.float32)
    x[1] = 1e-42   # denormal fp32
    x[2] = [3e38, -3e38, 1, 2, 3, 4, 5, 6]
    q = op.quantize(ts.asarray(x), scheme="int8_per_channel")
    s = q.scale.numpy().ravel()
    assert np.all(np.isfinite(s)) and np.all(s >= 2.0 ** -126)
    d = q.dequantize().numpy()
    assert np.all(d[0] == 0) and np.all(np.isfinite(d))
    assert abs(d[2, 0] - 3e38) <= 0.5 * s[2] * 1.0001


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_inf_raise_never_become_finite_codes(bad):
    x = np.ones((2, 4), np.float32)
    x[1, 2] = bad
    with pytest.raises(ts.NumericsError, match=r"\[quantize\] scheme int8_per_channel"):
        op.quantize(ts.asarray(x), scheme="int8_per_channel")
    q = op.quantize(ts.asarray(x), scheme="fp8_e5m2")  # fp8 has codes for them
    assert not np.isfinite(q.dequantize().numpy()[1, 2])
    assert np.isfinite(q.scale.numpy()).all()
    from tessera.numerics import check_numerics
    with check_numerics():
        with pytest.raises(ts.NumericsError):
            op.quantize(ts.asarray(x), scheme="fp8_e4m3")


def test_errors_name_op_scheme_and_shapes():
    x = ts.ones((4, 6))
    with pytest.raises(ValueError, match=r"\[quantize\] unknown scheme 'int3'"):
        op.quantize(x, scheme="int3")
    with pytest.raises(ts.ShapeError, match=r"\[quantize\] scheme int8_per_channel: axis 2 .*\(4, 6\)"):
        op.quantize(x, scheme="int8_per_channel", axis=2)
    with pytest.raises(ts.ShapeError, match=r"\[quantize\] scheme int8_per_group: group_size 4 .*\(4, 6\)"):
        op.quantize(x, scheme="int8_per_group", group_size=4)
    with pytest.raises(ts.ShapeError, match=r"int4_per_group.*even"):
        op.quantize(ts.ones((2, 3)), scheme="int4_per_group", group_size=3)
    with pytest.raises(ts.DTypeError, match=r"\[quantize\] scheme int8_per_tensor .* int32"):
        op.quantize(ts.ones((2, 2), dtype="int32"), scheme="int8_per_tensor")
    with pytest.raises(ts.ShapeError, match="axis"):
        op.quantize(x, scheme="int8_per_tensor", axis=0)
    with pytest.raises(ts.DTypeError, match=r"\[dequantize\]"):
        op.dequantize(x)


def test_save_load_round_trip(tmp_path):
    rng = np.random.default_rng(2)
    x = ts.asarray(rng.standard_normal((8, 32)).astype(np.float32)).astype("bf16")
    for scheme, kw in [("int8_per_channel", {}), ("int4_per_group", {"symmetric": False}), ("fp8_e4m3", {})]:
        q = op.quantize(x, scheme=scheme, **kw)
        p = tmp_path / f"{scheme}.npz"
        q.save(p)
        r = load(p)
        assert r.scheme == q.scheme and r.shape == q.shape and r.dtype is q.dtype and r.symmetric == q.symmetric
        assert np.array_equal(r.dequantize().numpy(), q.dequantize().numpy())


def test_transpose_moves_the_channel_axis():
    x = np.random.default_rng(3).standard_normal((5, 3)).astype(np.float32)
    q = op.quantize(ts.asarray(x), scheme="int8_per_channel", axis=0)
    assert q.T.axis == 1 and q.T.shape == (3, 5)
    assert np.array_equal(q.T.dequantize().numpy(), q.dequantize().numpy().T)


@given(st.integers(1, 4), st.integers(1, 6), st.integers(0, 1),
       st.sampled_from(["int8_per_tensor", "int8_per_channel", "int8_per_group", "int4_per_group"]),
       st.floats(-30, 30), st.booleans())
def test_hypothesis_shapes_axes_values(rows, groups, axis, scheme, log_mag, symmetric):
    rng = np.random.default_rng(rows * 7 + groups)
    gs = 2
    x = (rng.standard_normal((rows, groups * gs)) * 10.0 ** log_mag).astype(np.float32)
    kw = {"axis": axis} if scheme == "int8_per_channel" else {}
    if "group" in scheme:
        kw["group_size"] = gs
    q = quantize(ts.asarray(x), scheme, symmetric=symmetric, **kw)
    d = q.dequantize().numpy().astype(np.float64)
    sc = q.scale.numpy().astype(np.float64)
    if "group" in scheme:
        sc = np.repeat(sc, gs, axis=-1)
    assert np.all(np.abs(d - x) <= 0.5 * sc * (1 + 1e-5) + 1e-45)


def test_observers_choose_scales_from_calibration_data():
    rng = np.random.default_rng(4)
    batches = [rng.standard_normal((16, 8)).astype(np.float32) * (i + 1) for i in range(3)]
    mm = observer("minmax", scheme="int8_per_channel", axis=1)
    for b in batches:
        mm.observe(ts.asarray(b))
    allx = np.concatenate(batches)
    q = op.quantize(ts.asarray(batches[0]), observer=mm)
    np.testing.assert_allclose(q.scale.numpy().ravel(), np.abs(allx).max(0) / 127, rtol=1e-6)
    ma = observer("moving_average", scheme="int8_per_tensor", momentum=0.5)
    for b in batches:
        ma.observe(ts.asarray(b))
    lo, hi = batches[0].min(), batches[0].max()
    for b in batches[1:]:
        lo, hi = 0.5 * lo + 0.5 * b.min(), 0.5 * hi + 0.5 * b.max()
    qm = op.quantize(ts.asarray(batches[0]), observer=ma)
    np.testing.assert_allclose(float(qm.scale), max(hi, -lo) / 127, rtol=1e-5)
    assert q.scale.numpy().shape == (1, 8)
    pc = observer("percentile", scheme="int8_per_tensor", percentile=90.0)
    pc.observe(ts.asarray(batches[2]))
    qp = op.quantize(ts.asarray(batches[2]), observer=pc)
    np.testing.assert_allclose(float(qp.scale), np.percentile(np.abs(batches[2]), 90.0) / 127, rtol=1e-5)
    with pytest.raises(ValueError, match="has not observed"):
        op.quantize(ts.ones((2, 2)), observer=observer("minmax"))
    with pytest.raises(ValueError, match="unknown kind"):
        observer("median")
