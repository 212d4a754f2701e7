"""Kernel logic checked on the CPU: the real .cu sources run under cpu_emu.h (one
std::thread per CUDA thread, barriers for __syncthreads and warp shuffles), built
with g++ -std=c++20, on awkward shapes; results are compared with NumPy here.

This covers indexing, tile edges, warp/block reductions, NaN and tie rules and the
multi-launch protocols (3-phase scan, layer-norm parameter partials) without a GPU.
The tensor-core (wmma) path is NVIDIA-only and is exercised by the GPU tests.
"""
import os
import shutil
import subprocess
from math import erf

import numpy as np
import pytest

pytestmark = pytest.mark.cpu_only("the .cu kernels under the C++ CPU emulator; no tensors")

HERE = os.path.dirname(os.path.abspath(__file__))
KERNELS = os.path.join(HERE, "..", "..", "tessera", "kernels")
CXX = shutil.which("g++")


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    if CXX is None:
        pytest.skip("g++ not available for the CPU kernel emulator")
    d = tmp_path_factory.mktemp("emu")
    exe = d / "emu"
    build = subprocess.run([CXX, "-std=c++20", "-O1", "-pthread", "-DTS_CPU_EMU=32", f"-I{KERNELS}", f"-I{HERE}",
                            os.path.join(HERE, "emu_harness.cpp"), "-o", str(exe)], capture_output=True, text=True)
    if build.returncode and "barrier" in build.stderr:
        pytest.skip("the C++ compiler lacks std::barrier (C++20)")
    assert build.returncode == 0, build.stderr[-3000:]
    subprocess.run([str(exe), str(d)], check=True, timeout=900)

    def load(name, dtype, shape=None):
        a = np.fromfile(d / f"{name}.bin", dtype=dtype)
        return a.reshape(shape) if shape else a
    return load


def test_row_reductions(out):
    for name, shape in [("sum_rows_warp", (37, 100)), ("sum_rows_block", (5, 2500))]:
        x = out(f"{name}.x", np.float32, shape).astype(np.float64)
        np.testing.assert_allclose(out(f"{name}.out", np.float32), x.sum(1), rtol=1e-5, atol=1e-4)
    x = out("var_rows.x", np.float64, (7, 3001))
    np.testing.assert_allclose(out("var_rows.out", np.float64), x.var(1, ddof=1), rtol=1e-12)
    x = out("lse_rows.x", np.float32, (9, 33)).astype(np.float64)
    ref = np.log(np.exp(x - x.max(1, keepdims=True)).sum(1)) + x.max(1)
    np.testing.assert_allclose(out("lse_rows.out", np.float32), ref, rtol=1e-6)
    assert (out("isum_rows.out", np.int64) == 3 * 4097).all()


def test_nan_and_tie_rules(out):
    x = out("argmax_rows.x", np.float32, (3, 6))
    assert out("argmax_rows.out", np.int64).tolist() == [3, 0, 0] == np.argmax(x, 1).tolist()
    assert out("argmin_rows.out", np.int64).tolist() == [3, 4, 0] == np.argmin(x, 1).tolist()
    m = out("max_rows.out", np.float32)
    assert np.isnan(m[0]) and m[1] == 5 and m[2] == -np.inf
    lse = out("lse_special.out", np.float32)
    assert np.isnan(lse[0]) and np.isclose(lse[1], np.log(3 * np.exp(5.0) + np.exp(1.0) + 1)) and lse[2] == -np.inf
    assert out("argmax_long.out", np.int64)[0] == 1234  # a NaN deep in a block-per-row reduction wins


def test_col_reductions(out):
    x = out("sum_cols.x", np.float32, (3, 77, 45)).astype(np.float64)
    np.testing.assert_allclose(out("sum_cols.out", np.float32).reshape(3, 45), x.sum(1), rtol=1e-5, atol=1e-4)
    x = out("argmin_cols.x", np.float32, (50, 33))
    assert (out("argmin_cols.out", np.int64) == x.argmin(0)).all()
    x = out("std_cols.x", np.float32, (2, 19, 40)).astype(np.float64)
    np.testing.assert_allclose(out("std_cols.out", np.float32).reshape(2, 40), x.std(1), rtol=1e-5)


def test_softmax(out):
    x, dy = out("sm.x", np.float32, (33, 70)).astype(np.float64), out("sm.dy", np.float32, (33, 70))
    p = np.exp(x - x.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    np.testing.assert_allclose(out("sm.y", np.float32, (33, 70)), p, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(out("sm.ly", np.float32, (33, 70)), np.log(p), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out("sm.dx", np.float32, (33, 70)), p * (dy - (dy * p).sum(1, keepdims=True)),
                               rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(out("sm.ldx", np.float32, (33, 70)), dy - p * dy.sum(1, keepdims=True),
                               rtol=1e-4, atol=1e-5)


def test_layer_norm(out):
    R, C = 20, 2100
    x, g, b = out("ln.x", np.float32, (R, C)).astype(np.float64), out("ln.g", np.float32), out("ln.b", np.float32)
    dy = out("ln.dy", np.float32, (R, C)).astype(np.float64)
    mu, var = x.mean(1, keepdims=True), x.var(1, keepdims=True)
    rstd = 1 / np.sqrt(var + 1e-5)
    xhat = (x - mu) * rstd
    np.testing.assert_allclose(out("ln.y", np.float32, (R, C)), xhat * g + b, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(out("ln.mean", np.float32), mu[:, 0], atol=1e-6)
    np.testing.assert_allclose(out("ln.rstd", np.float32), rstd[:, 0], rtol=1e-5)
    gg = dy * g
    dx = rstd * (gg - gg.mean(1, keepdims=True) - xhat * (gg * xhat).mean(1, keepdims=True))
    np.testing.assert_allclose(out("ln.dx", np.float32, (R, C)), dx, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(out("ln.dg", np.float32), (dy * xhat).sum(0), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(out("ln.db", np.float32), dy.sum(0), rtol=1e-4, atol=1e-4)


def test_cross_entropy(out):
    N, C = 20, 37
    x, t, dl = out("ce.x", np.float32, (N, C)).astype(np.float64), out("ce.t", np.int64), out("ce.dl", np.float32)
    lse = np.log(np.exp(x).sum(1))
    tc = np.clip(t, 0, None)
    ref = np.where(t == -100, 0, lse - x[np.arange(N), tc])
    np.testing.assert_allclose(out("ce.loss", np.float32), ref, rtol=1e-5, atol=1e-6)
    p = np.exp(x - lse[:, None])
    oh = np.zeros_like(p)
    oh[np.arange(N), tc] = 1
    dx = np.where((t == -100)[:, None], 0, dl[:, None] * (p - oh))
    np.testing.assert_allclose(out("ce.dx", np.float32, (N, C)), dx, rtol=1e-5, atol=1e-6)


def test_scan(out):
    x = out("scan.x", np.float32, (2, 5000)).astype(np.float64)
    np.testing.assert_allclose(out("scan.out", np.float32, (2, 5000)), np.cumsum(x, 1), atol=2e-4)
    xi = out("iscan.x", np.int32, (3, 1500))
    assert (out("iscan.out", np.int64, (3, 1500)) == np.cumsum(xi, 1)).all()


def test_movement(out):
    x = np.arange(2 * 33 * 65, dtype=np.uint32).reshape(2, 33, 65)
    assert (out("tr.t", np.uint32, (2, 65, 33)) == x.transpose(0, 2, 1)).all()
    assert (out("tr.s", np.uint32, (65, 2, 33)) == x.transpose(2, 0, 1)).all()
    assert (out("is.out", np.uint32, (2, 5, 65)) == np.take(x, [0, -1, 7, 7, 32], 1)).all()
    assert out("is.err", np.int32).tolist() == [0, 1]
    off, src = out("sa.off", np.int64), out("sa.src", np.float16).astype(np.float64)
    ref = np.zeros(7)
    np.add.at(ref, off, src)
    np.testing.assert_allclose(out("sa.dst", np.float16), ref, atol=0.05)


def test_matmul_simt(out):
    M, N, K = 70, 45, 33
    a, b = out("mm.a", np.float32, (M, K)).astype(np.float64), out("mm.b", np.float32, (K, N)).astype(np.float64)
    bias = out("mm.bias", np.float32).astype(np.float64)
    z = a @ b
    np.testing.assert_allclose(out("mm.c0", np.float32, (M, N)), z, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(out("mm.c1", np.float32, (M, N)), np.maximum(0.5 * z + bias, 0), rtol=1e-5, atol=1e-4)
    gelu = np.vectorize(lambda v: 0.5 * v * (1 + erf(v / np.sqrt(2))))
    np.testing.assert_allclose(out("mm.c2", np.float32, (M, N)), gelu(z + bias), rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(out("mm.c3", np.float32, (M, N)), z / (1 + np.exp(-z)), rtol=1e-5, atol=1e-4)
    bf = lambda u: (u.astype(np.uint32) << 16).view(np.float32).astype(np.float64)  # noqa: E731
    ab, bb = bf(out("mmb.a", np.uint16, (3, M, K))), bf(out("mmb.b", np.uint16, (K, N)))
    np.testing.assert_allclose(bf(out("mmb.c", np.uint16, (3, M, N))), ab @ bb, rtol=1e-2, atol=5e-2)
