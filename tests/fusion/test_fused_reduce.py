"""Reduction roots: every op and dtype family, axes patterns, strided inputs, NaN, accuracy."""
import numpy as np
import pytest

from tessera.fusion.ir import alu, const, inp, numpy_dtype
from tessera.fusion.runtime import run_cpu

from fusion_common import assert_close

pytestmark = pytest.mark.cpu_only("the fusion IR run by the C kernel (run_cpu) on NumPy arrays")


@pytest.mark.parametrize("axes", [(0,), (1,), (2,), (0, 2), (0, 1, 2), (1, 2)])
@pytest.mark.parametrize("dtype", ["fp32", "fp64", "fp16", "bf16", "int32", "int8"])
def test_reduce_ops_axes(dtype, axes):
    rng = np.random.default_rng(0)
    shape = (5, 37, 33)
    x = (rng.uniform(0.5, 1.5, shape) if dtype.startswith(("fp", "bf"))
         else rng.integers(-3, 4, shape)).astype(numpy_dtype(dtype))
    x = x[:, ::-1, :]  # negative strides
    ops = ["reduce_sum", "reduce_max", "reduce_min"] + (["reduce_prod"] if dtype == "fp64" else [])
    xi = inp(0, dtype)
    got = run_cpu([alu(op, xi, arg=axes) for op in ops], [x], shape)
    acc = np.float64 if dtype[0] in "fb" else np.int64
    for op, g in zip(ops, got):
        f = {"reduce_sum": np.sum, "reduce_max": np.max, "reduce_min": np.min, "reduce_prod": np.prod}[op]
        kw = {"dtype": acc} if op in ("reduce_sum", "reduce_prod") else {}
        ref = f(x.astype(acc), axis=axes, keepdims=True, **kw).astype(numpy_dtype(dtype))
        assert g.shape == ref.shape
        assert_close(g, ref, dtype, f"{op} {dtype} axes={axes}")


def test_multi_root_sum_and_sumsq_with_broadcast():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((64, 300)).astype(np.float32)
    b = np.broadcast_to(rng.standard_normal((1, 300)).astype(np.float32), x.shape)
    y = alu("add", inp(0, "fp32"), inp(1, "fp32"))
    s, s2 = run_cpu([alu("reduce_sum", y, arg=(1,)), alu("reduce_sum", alu("multiply", y, y), arg=(1,))],
                    [x, b], x.shape)
    yy = (x + b).astype(np.float64)
    np.testing.assert_allclose(s, yy.sum(1, keepdims=True), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(s2, (yy * yy).sum(1, keepdims=True), rtol=1e-5)


def test_nan_propagates_in_max_min():
    x = np.array([[1.0, np.nan, 3.0], [1.0, 2.0, 3.0]], np.float32)
    mx, mn = run_cpu([alu("reduce_max", inp(0, "fp32"), arg=(1,)),
                      alu("reduce_min", inp(0, "fp32"), arg=(1,))], [x], x.shape)
    assert np.isnan(mx[0, 0]) and mx[1, 0] == 3 and np.isnan(mn[0, 0]) and mn[1, 0] == 1


def test_fp32_sum_accuracy_2_24():
    x = np.random.default_rng(2).uniform(0, 1, 2 ** 24).astype(np.float32)
    got = run_cpu([alu("reduce_sum", inp(0, "fp32"), arg=(0,))], [x], x.shape)[0][0]
    exact = x.astype(np.float64).sum()
    assert abs(float(got) - exact) / exact < 1e-6


def test_empty_and_size1_reductions():
    x = np.zeros((3, 0), np.float32)
    s = run_cpu([alu("reduce_sum", inp(0, "fp32"), arg=(1,))], [x], x.shape)[0]
    np.testing.assert_array_equal(s, np.zeros((3, 1), np.float32))
    with pytest.raises(ValueError):
        run_cpu([alu("reduce_max", inp(0, "fp32"), arg=(1,))], [x], x.shape)
    y = np.arange(3, dtype=np.float32).reshape(3, 1)
    s = run_cpu([alu("reduce_sum", alu("multiply", inp(0, "fp32"), const(2.0, "fp32")), arg=(1,))],
                [y], y.shape)[0]
    np.testing.assert_array_equal(s, 2 * y)


@pytest.mark.parametrize("axes", [(0,), (0, 1), (1,), (0, 2)])
def test_big_reductions_parallel_paths(axes):
    """Above the OpenMP threshold: full reductions split over threads (contiguous and
    strided), leading-axis reductions in column blocks, with a broadcast operand."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((96, 130, 70)).astype(np.float32)[:, ::-1, :]
    b = np.broadcast_to(rng.standard_normal((1, 1, 70)).astype(np.float32), x.shape)
    y = alu("multiply", inp(0, "fp32"), inp(1, "fp32"))
    s, mx = run_cpu([alu("reduce_sum", y, arg=axes), alu("reduce_max", y, arg=axes)], [x, b], x.shape)
    yy = x.astype(np.float64) * b
    np.testing.assert_allclose(s, yy.sum(axes, keepdims=True), rtol=1e-5, atol=1e-4)
    np.testing.assert_array_equal(mx, (x * b).max(axes, keepdims=True))
    full = run_cpu([alu("reduce_sum", y, arg=(0, 1, 2))], [x, b], x.shape)[0]
    assert abs(float(full.ravel()[0]) - yy.sum()) < 1e-5 * np.abs(yy).sum()


def test_output_pool_never_hands_out_a_live_buffer():
    from tessera.fusion import runtime
    x = np.ones(1 << 21, np.float32)  # 8 MB outputs: pooled
    node = alu("add", inp(0, "fp32"), const(1.0, "fp32"))
    a = run_cpu([node], [x], x.shape)[0]
    view = a[10:20]
    del a
    b = run_cpu([alu("multiply", inp(0, "fp32"), const(3.0, "fp32"))], [x], x.shape)[0]
    np.testing.assert_array_equal(view, 2.0)  # still alive through the view
    del view
    c = run_cpu([node], [x], x.shape)[0]
    assert b.ctypes.data != c.ctypes.data and np.all(b == 3.0) and np.all(c == 2.0)
    del c
    d = run_cpu([node], [x], x.shape)[0]  # the released block is reused
    assert any(d.base is raw for lst in runtime._pool.blocks.values() for raw in lst)
