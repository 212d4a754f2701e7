"""The launchers' host-side decisions (which kernels, with which arguments), tested
without a GPU: `_runtime.launch` is replaced by a recorder and arrays are NumPy's.

The values themselves are checked on a device by test_gpu_launchers.py; these tests pin
the argument choices that produced wrong results there (TRIAGE 2026-12-04 A2, A3).
"""
import importlib


import numpy as np
import pytest

import tessera as ts

from tessera.kernels.launchers import _runtime as rt

# the package re-exports the functions `matmul` and `reduce` under the modules' names
mm = importlib.import_module("tessera.kernels.launchers.matmul")
red = importlib.import_module("tessera.kernels.launchers.reduce")

# the host-side tests use no device: NumPy arrays stand in for CuPy's
_NO_CUPY = object()  # stands for a CuPy without bfloat16 arrays (the storage probe fails)
HOST = pytest.mark.cpu_only("launch arguments recorded from NumPy stand-ins; no device runs")


@pytest.fixture
def launches(monkeypatch):
    calls = []
    monkeypatch.setattr(rt, "launch", lambda f, name, grid, block, args, shared_mem=0:
                        calls.append((f, name, grid, block, args)))
    monkeypatch.setattr(rt, "empty", lambda shape, dt: np.empty(shape, ts.dtypes.get_dtype(dt).cuda_storage))
    # no CuPy: the storage probe finds no bfloat16 arrays, so bf16 is stored as words
    monkeypatch.setattr(rt, "cp", lambda: _NO_CUPY)
    monkeypatch.setattr(rt, "device_facts", lambda: {"platform": "cuda", "warp_size": 32,
                                                     "sm_count": 132, "cc": 90, "name": "fake"})
    return calls


@HOST
@pytest.mark.parametrize("shape", [(1, 1), (31, 33), (2, 4097), (1023, 1), (7,)])
def test_cumsum_one_segment_launch_writes_its_output(launches, shape):
    red.cumsum(np.ones(shape, np.float32))
    assert len(launches) == 1, "one segment per row: one launch"
    *_, args = launches[0]
    assert args[-1] is True, "scan.cu only stores when `write` is set"


@HOST
def test_cumsum_segmented_last_launch_writes_every_segment(launches):
    red.cumsum(np.ones((1, 10**6 + 3), np.float32))
    assert [a[-1] for *_, a in launches] == [False, True, True]
    _, _, grid, _, args = launches[-1]
    segs, seg_len = grid[0], int(args[4])
    assert segs > 1 and segs * seg_len >= 10**6 + 3


def _empty_like_cupy(shape):
    # CuPy gives every empty array strides of 0; NumPy would give contiguous ones
    return np.lib.stride_tricks.as_strided(np.zeros(1, np.float32), shape, (0,) * len(shape))


@HOST
@pytest.mark.parametrize("ashape, bshape, oshape", [((0, 3), (3, 4), (0, 4)),
                                                    ((2, 3), (3, 0), (2, 0)),
                                                    ((0, 2, 3), (3, 4), (0, 2, 4))])
def test_matmul_zero_size_result_returns_without_launch(launches, ashape, bshape, oshape):
    a = _empty_like_cupy(ashape) if 0 in ashape else np.ones(ashape, np.float32)
    b = _empty_like_cupy(bshape) if 0 in bshape else np.ones(bshape, np.float32)
    assert mm.matmul(a, b).shape == oshape
    assert launches == []


@HOST
def test_matmul_empty_inner_axis_launches_with_k_zero(launches):
    out = mm.matmul(_empty_like_cupy((4, 0)), _empty_like_cupy((0, 5)))
    assert out.shape == (4, 5) and len(launches) == 1
    args = launches[0][-1]
    M, N, K, lda, ldb = (int(v) for v in args[4:9])
    assert (M, N, K) == (4, 5, 0) and lda >= 1 and ldb == 5


@HOST
def test_matmul_still_rejects_a_strided_last_axis(launches):
    a = np.ones((4, 6), np.float32)[:, ::2]
    with pytest.raises(ValueError, match=r"\[matmul\] a needs a contiguous last axis"):
        mm.matmul(a, np.ones((3, 2), np.float32))


# ---- the same cases through the ops, on every device ------------------------------------
@pytest.mark.parametrize("shape", [(1, 1), (31, 33), (2, 4097)])
def test_cumulative_sum_values_on_device(device, shape):
    import tessera as ts
    x = np.random.default_rng(0).uniform(-1, 1, shape).astype(np.float32)
    got = ts.cumulative_sum(ts.asarray(x, device=device), axis=-1).numpy()
    np.testing.assert_allclose(got, np.cumsum(x.astype(np.float64), axis=-1), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("ashape, bshape", [((0, 3), (3, 4)), ((4, 0), (0, 5)), ((2, 0, 3), (3, 4))])
def test_matmul_zero_size_operands_on_device(device, ashape, bshape):
    import tessera as ts
    a, b = np.ones(ashape, np.float32), np.ones(bshape, np.float32)
    got = ts.matmul(ts.asarray(a, device=device), ts.asarray(b, device=device)).numpy()
    np.testing.assert_array_equal(got, a @ b)
