"""CPU GEMMs split over the OpenMP pool (tessera.backend.cpu_gemm) against float64
NumPy: every layout BLAS reads in place, the fallbacks, and the thread decision."""
import os
import subprocess
import sys

import numpy as np
import pytest

import tessera as ts
from tessera.backend import cpu, cpu_gemm

pytestmark = pytest.mark.cpu_only("the CPU GEMM pool (OpenMP + CBLAS) and its fallbacks")

needs_pool = pytest.mark.skipif(cpu_gemm._pool() is None,
                                reason="no C compiler or no OpenBLAS CBLAS symbol here")


def _layouts(x):
    """x as C-ordered, Fortran-ordered, a transposed view of a copy, and a slice of a
    wider buffer (leading dimension > columns)."""
    wide = np.zeros((x.shape[0], x.shape[1] + 5), x.dtype)
    wide[:, 2:2 + x.shape[1]] = x
    return {"C": np.ascontiguousarray(x), "F": np.asfortranarray(x),
            "T-view": np.ascontiguousarray(x.T).T, "slice": wide[:, 2:2 + x.shape[1]]}


@needs_pool
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("mkn", [(64, 784, 256), (256, 64, 784), (97, 301, 130), (512, 16, 40)])
def test_matches_float64_reference(dtype, mkn):
    m, k, n = mkn
    rng = np.random.default_rng(m + k + n)
    a = rng.standard_normal((m, k)).astype(dtype)
    b = rng.standard_normal((k, n)).astype(dtype)
    want = a.astype(np.float64) @ b.astype(np.float64)
    tol = 1e-4 if dtype is np.float32 else 1e-12
    for la, xa in _layouts(a).items():
        for lb, xb in _layouts(b).items():
            got = cpu_gemm.matmul(xa, xb)
            assert got.dtype == dtype and got.shape == (m, n) and got.flags.c_contiguous
            np.testing.assert_allclose(got, want, rtol=tol, atol=tol * np.sqrt(k),
                                       err_msg=f"{la} @ {lb}")


@needs_pool
def test_big_products_use_the_pool_and_small_ones_do_not():
    if (cpu.blas_threads() or 1) > 1 or cpu_gemm._pool().max_threads() < 2:
        pytest.skip("one OpenMP thread, or OpenBLAS threads the call itself")
    assert cpu_gemm.threads_for(64, 256, 784) >= 2
    assert cpu_gemm.threads_for(8, 8, 8) == 1
    assert cpu_gemm.threads_for(16, 16, 1 << 20) == 1  # no slab wide enough to split


@needs_pool
def test_more_blas_threads_leaves_the_call_to_blas():
    prev = cpu.set_blas_threads(2)
    try:
        assert cpu_gemm.threads_for(64, 256, 784) == 1
    finally:
        cpu.set_blas_threads(prev)


@pytest.mark.parametrize("case", ["strided", "mixed-dtype", "int", "3-D", "empty"])
def test_falls_back_to_numpy(case):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((128, 256)).astype(np.float32)
    b = rng.standard_normal((256, 256)).astype(np.float32)
    if case == "strided":
        a = rng.standard_normal((128, 512)).astype(np.float32)[:, ::2]  # stride BLAS cannot read
    elif case == "mixed-dtype":
        b = b.astype(np.float64)
    elif case == "int":
        a, b = a.astype(np.int64), b.astype(np.int64)
    elif case == "3-D":
        a = np.stack([a, a])
    elif case == "empty":
        a = a[:0]
    np.testing.assert_array_equal(cpu_gemm.matmul(a, b), np.matmul(a, b))


def test_one_openmp_thread_runs_numpy():
    code = ("import numpy as np; from tessera.backend import cpu_gemm as g; "
            "print(g.threads_for(64, 256, 784))")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True).stdout.split()[-1]
    assert out == "1"


@needs_pool
def test_tessera_matmul_and_its_gradient_use_it():
    rng = np.random.default_rng(1)
    x = ts.asarray(rng.standard_normal((64, 784)).astype(np.float32), requires_grad=True)
    w = ts.asarray(rng.standard_normal((256, 784)).astype(np.float32), requires_grad=True)
    y = ts.matmul(x, w.mT)
    y.sum().backward()
    xn, wn = x.numpy().astype(np.float64), w.numpy().astype(np.float64)
    np.testing.assert_allclose(y.numpy(), xn @ wn.T, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(w.grad.numpy(), np.ones((64, 256)).T @ xn, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(x.grad.numpy(), np.ones((64, 256)) @ wn, rtol=1e-4, atol=1e-3)


@needs_pool
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_writes_into_a_slab_of_a_bigger_output(dtype):
    """`out=`: rows of a bigger buffer (the grouped MoE GEMM writes each expert's
    rows in place); an `out` BLAS cannot write goes to NumPy, which fills it."""
    rng = np.random.default_rng(3)
    a = rng.standard_normal((128, 256)).astype(dtype)
    b = rng.standard_normal((256, 192)).astype(dtype)
    want = a.astype(np.float64) @ b.astype(np.float64)
    tol = 1e-4 if dtype is np.float32 else 1e-12
    big = np.full((300, 192), 7.0, dtype)
    got = cpu_gemm.matmul(a, b, out=big[100:228])
    assert got is not None and np.shares_memory(got, big)
    np.testing.assert_allclose(big[100:228], want, rtol=tol, atol=tol * 16)
    assert (big[:100] == 7).all() and (big[228:] == 7).all()
    cols = np.zeros((192, 128), dtype).T  # column-major out: NumPy's job
    cpu_gemm.matmul(a, b, out=cols)
    np.testing.assert_allclose(cols, want, rtol=tol, atol=tol * 16)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shapes", [((4, 64, 256), (256, 128)),      # folded into one GEMM
                                    ((2, 3, 64, 256), (2, 3, 256, 128)),  # batch by batch
                                    ((3, 8, 16), (3, 16, 8)),             # small: NumPy
                                    ((2, 64, 256), (1, 256, 128))])       # broadcast: NumPy
def test_backend_batched_matmul(dtype, shapes):
    rng = np.random.default_rng(9)
    a, b = (rng.standard_normal(s).astype(dtype) for s in shapes)
    got = ts.matmul(ts.asarray(a), ts.asarray(b)).numpy()
    want = np.matmul(a.astype(np.float64), b.astype(np.float64))
    tol = 1e-4 if dtype is np.float32 else 1e-12
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol * np.sqrt(shapes[0][-1]))
