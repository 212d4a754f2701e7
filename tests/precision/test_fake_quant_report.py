"""fake_quantize (values = quantize then dequantize; STE gradient; learned scale with
the LSQ gradient) and precision.report (rows per op, overflow, suggestions)."""
import numpy as np
import pytest

import tessera as ts
from tessera import op
from tessera.precision import report

pytestmark = pytest.mark.usefixtures("device")  # every test runs on each device

RNG = np.random.default_rng(0)


@pytest.mark.parametrize("scheme,kw", [("int8_per_channel", {}), ("int8_per_tensor", {}),
                                       ("int4_per_group", {"group_size": 4}), ("fp8_e4m3", {})])
def test_fake_quantize_values_and_straight_through_gradient(scheme, kw):
    x = RNG.standard_normal((3, 8)).astype(np.float32)
    t = ts.asarray(x, requires_grad=True)
    y = op.fake_quantize(t, scheme=scheme, **kw)
    np.testing.assert_array_equal(y.numpy(), op.quantize(ts.asarray(x), scheme=scheme, **kw).dequantize().numpy())
    g = RNG.standard_normal((3, 8)).astype(np.float32)
    ts.sum(y * ts.asarray(g)).backward()
    np.testing.assert_array_equal(t.grad.numpy(), g)  # the data's own range: nothing saturates


def test_ste_zero_where_an_observer_range_clips():
    from tessera.precision import observer
    obs = observer("minmax", scheme="int8_per_tensor")
    obs.observe(ts.asarray([-1.0, 1.0]))
    t = ts.asarray([0.5, 3.0, -2.0], requires_grad=True)
    y = op.fake_quantize(t, observer=obs)
    ts.sum(y).backward()
    assert t.grad.tolist() == [1.0, 0.0, 0.0]
    assert y.numpy()[1] == pytest.approx(1.0)


def test_learned_scale_gradient_is_lsq():
    x = np.array([0.1, 0.49, -2.0, 0.333], np.float32)
    s = ts.asarray(0.01, requires_grad=True)
    t = ts.asarray(x, requires_grad=True)
    y = op.fake_quantize(t, scheme="int8_per_tensor", scale=s)
    ts.sum(y).backward()
    v = x / np.float32(0.01)
    inside = np.abs(v) <= 127
    lsq = np.where(inside, np.round(v) - v, np.clip(np.round(v), -127, 127))
    assert float(s.grad) == pytest.approx(float(lsq.sum()), rel=1e-4)
    assert t.grad.tolist() == [1.0, 1.0, 0.0, 1.0]
    with pytest.raises(ts.ShapeError, match=r"\[fake_quantize\]"):
        op.fake_quantize(t, scheme="fp8_e4m3", scale=s)


def test_report_rows_and_suggestions():
    W = ts.asarray(RNG.standard_normal((16, 8)).astype(np.float32))
    x = ts.asarray(RNG.standard_normal((4, 16)).astype(np.float32))

    def f(x, W):
        h = ts.matmul(x, W)
        return ts.sum(ts.exp(h * 20.0))   # exp overflows fp16 (max 65504), not fp32
    r = report(f, x, W, dtypes=("bf16", "fp16", "int8_per_channel"), show=False)
    ops = [row["op"] for row in r.rows if row["candidate"] == "fp16"]
    assert ops == ["matmul", "multiply", "exp", "sum"]
    fp16 = {row["op"]: row for row in r.rows if row["candidate"] == "fp16"}
    assert fp16["exp"]["overflow"] > 0 and fp16["exp"]["keep_fp32"]
    assert not fp16["matmul"]["keep_fp32"] and fp16["matmul"]["rel_error"] < 1e-2
    assert "exp" in r.suggestions["fp16"] and "matmul" not in r.suggestions["fp16"]
    q = {row["op"]: row for row in r.rows if row["candidate"] == "int8_per_channel"}
    assert q["matmul"]["rel_error"] > fp16["matmul"]["rel_error"]  # int8 weights cost more
    assert "keep in fp32" in str(r)
    with pytest.raises(ValueError, match=r"\[report\] candidate 'int7'"):
        report(f, x, W, dtypes=("int7",), show=False)
