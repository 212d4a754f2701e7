"""tessera.linop benchmarks.

1. CG on the 2-D Poisson problem (5-point Laplacian, Dirichlet) per iteration:
   tessera's matrix-free `linop.cg` against `scipy.sparse.linalg.cg` on the CSR
   matrix (CPU), and against `cupyx.scipy.sparse.linalg.cg` on a GPU when CuPy
   is present. Both run a fixed number of iterations (unreachable tolerance).
2. The gradient of a solve: implicit differentiation (one adjoint CG solve) vs
   differentiating the unrolled CG iterations on the tape, in time and in peak
   host memory (tracemalloc), as the iteration count grows.

    python benchmarks/operators.py [--n 512] [--iters 200] [--quick]

Both parts run on tessera's default device; the SciPy rows of part 1 are the
CPU reference (and are labelled so), the GPU row compares with CuPy on the same GPU.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import tracemalloc
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _common import SMOKE, cupy_module, cupyx_part, header, table, tessera_sync, timeit  # noqa: E402

import tessera as ts  # noqa: E402
from tessera import linop  # noqa: E402


def scipy_poisson(n, h):
    import scipy.sparse as sp
    T = sp.diags([-1.0, 2.0, -1.0], [-1, 0, 1], shape=(n, n))
    I = sp.identity(n)
    return ((sp.kron(T, I) + sp.kron(I, T)) / (h * h)).tocsr()


def tolerance_kw(cg, tol):
    """The relative-tolerance keyword this `cg` takes: SciPy >= 1.12 and CuPy 14 name it
    `rtol` (CuPy 14 rejects `tol`), older releases `tol`. Read from the signature, not
    from a version number."""
    import inspect
    try:
        params = inspect.signature(cg).parameters
    except (TypeError, ValueError):  # a compiled function without a signature
        return {"rtol": tol}
    return {"rtol": tol} if "rtol" in params else {"tol": tol}


def bench_cg(n, iters, repeat):
    import scipy.sparse.linalg as spl
    h = 1.0 / (n + 1)
    rng = np.random.default_rng(0)
    b = rng.standard_normal(n * n)
    A_ts = -linop.laplacian((n, n), h=h)
    A_sp = scipy_poisson(n, h)
    bt = ts.asarray(b.reshape(n, n), dtype="fp64", device="cpu")  # SciPy's device
    assert np.allclose(A_ts.matvec(bt).numpy().ravel(), A_sp @ b)

    def run_ts():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            x, info = linop.cg(A_ts, bt, rtol=1e-300, maxiter=iters)
            return x.realize(), info

    sp_tol = tolerance_kw(spl.cg, 1e-300)

    def run_sp():
        return spl.cg(A_sp, b, maxiter=iters, **sp_tol)
    x_ts, info = run_ts()
    x_sp, code = run_sp()
    agree = np.abs(x_ts.numpy().ravel() - x_sp).max() / np.abs(x_sp).max()
    t_ts = timeit(run_ts, repeat=repeat) / iters
    t_sp = timeit(run_sp, repeat=repeat) / iters
    mv_ts = timeit(lambda: A_ts.matvec(bt).realize(), repeat=repeat * 5, number=5)
    mv_sp = timeit(lambda: A_sp @ b, repeat=repeat * 5, number=5)
    rows = [{"what": f"CG per iteration ({n}x{n})", "tessera ms": t_ts * 1e3,
             "scipy ms": t_sp * 1e3, "tessera/scipy": t_ts / t_sp},
            {"what": f"matvec ({n}x{n})", "tessera ms": mv_ts * 1e3, "scipy ms": mv_sp * 1e3,
             "tessera/scipy": mv_ts / mv_sp}]
    print(f"CG, {iters} iterations, fp64, tessera on the CPU; solutions agree to {agree:.1e} "
          "(relative max)")
    table(rows, ["what", "tessera ms", "scipy ms", "tessera/scipy"])
    if not ts.cuda_is_available():
        print("no GPU (CuPy or a device missing): GPU comparison skipped\n")
        return
    gpu = ts.get_device("cuda")
    cp = cupy_module(gpu)
    bt_g = ts.asarray(b.reshape(n, n), dtype="fp64", device=gpu)
    sync, ts_sync = cp.cuda.Device().synchronize, tessera_sync(gpu)

    def run_tg():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            x, info = linop.cg(A_ts, bt_g, rtol=1e-300, maxiter=iters)
            return x.realize(), info
    x_tg, _ = run_tg()
    agree_s = float(np.abs(x_tg.numpy().ravel() - x_sp).max() / np.abs(x_sp).max())
    t_tg = timeit(run_tg, repeat=repeat, sync=ts_sync) / iters
    row = {"what": f"CG per iteration ({n}x{n}, GPU)", "tessera ms": t_tg * 1e3}
    try:
        csp = cupyx_part(gpu, "scipy.sparse")
        cspl = cupyx_part(gpu, "scipy.sparse.linalg")
        cg = cspl.cg
    except (ImportError, AttributeError) as e:
        print(f"GPU: tessera's CG agrees with SciPy's to {agree_s:.1e}; cupyx.scipy.sparse.linalg.cg "
              f"unavailable ({type(e).__name__}: {e}), no CuPy peer")
        row["cupy ms"] = "n/a"
    else:
        A_cp = csp.csr_matrix(A_sp)
        b_cp = cp.asarray(b)
        cp_tol = tolerance_kw(cg, 1e-300)
        x_cp, _ = cg(A_cp, b_cp, maxiter=iters, **cp_tol)
        agree_g = float(np.abs(x_tg.numpy().ravel() - cp.asnumpy(x_cp)).max() / np.abs(x_sp).max())
        print(f"GPU: tessera vs cupyx CG after {iters} iterations agree to {agree_g:.1e} "
              f"(relative max; vs SciPy {agree_s:.1e}); cupyx cg called with {list(cp_tol)[0]}=")
        t_cp = timeit(lambda: cg(A_cp, b_cp, maxiter=iters, **cp_tol), repeat=repeat,
                      sync=sync) / iters
        row.update({"cupy ms": t_cp * 1e3, "cupy/tessera": t_cp / t_tg})
    table([row], ["what", "tessera ms", "cupy ms", "cupy/tessera"])


def unrolled_cg(A, b, iters):
    """Plain CG in tessera ops, recorded on the tape step by step."""
    x = b * 0.0
    r = b
    p = r
    rr = (r * r).sum()
    for _ in range(iters):
        q = A.matvec(p)
        alpha = rr / (p * q).sum()
        x = x + alpha * p
        r = r - alpha * q
        rr_new = (r * r).sum()
        p = r + (rr_new / rr) * p
        rr = rr_new
    return x


def bench_grad(n, iter_list):
    h = 1.0 / (n + 1)
    A = -linop.laplacian((n, n), h=h)
    b0 = np.random.default_rng(1).standard_normal((n, n))
    rows = []
    for iters in iter_list:
        res = {}
        for kind in ("implicit", "unrolled"):
            b = ts.asarray(b0, dtype="fp64", requires_grad=True)
            tracemalloc.start()
            t = time.perf_counter()
            if kind == "implicit":
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    x, _ = linop.cg(A, b, rtol=1e-300, maxiter=iters)
            else:
                x = unrolled_cg(A, b, iters)
            with warnings.catch_warnings():  # the adjoint solve also stops at maxiter
                warnings.simplefilter("ignore")
                (x * x).sum().backward()
            _ = b.grad.numpy()
            el = time.perf_counter() - t
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            res[kind] = (el, peak / 2 ** 20)
        rows.append({"grid": f"{n}x{n}", "CG iterations": iters,
                     "implicit s": res["implicit"][0], "unrolled s": res["unrolled"][0],
                     "time unrolled/implicit": res["unrolled"][0] / res["implicit"][0],
                     "implicit MiB": res["implicit"][1], "unrolled MiB": res["unrolled"][1],
                     "memory unrolled/implicit": res["unrolled"][1] / res["implicit"][1]})
    dev = ts.default_device()
    print(f"gradient of sum(x^2), x = CG(A, b) on {dev}: implicit adjoint vs unrolled tape "
          "(forward + backward; peak host memory by tracemalloc"
          + (", which does not see GPU memory)" if dev.type != "cpu" else ")"))
    table(rows, ["grid", "CG iterations", "implicit s", "unrolled s", "time unrolled/implicit",
                 "implicit MiB", "unrolled MiB", "memory unrolled/implicit"])


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=512)
    ap.add_argument("--iters", type=int, default=200)
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    header("linop: CG on 2-D Poisson vs SciPy/CuPy; implicit vs unrolled solve gradients")
    if SMOKE:
        a.n, a.iters = 16, 5
    bench_cg(a.n, a.iters, 2 if SMOKE else 3 if a.quick else 7)
    bench_grad(8 if SMOKE else 64 if a.quick else 128,
               (5,) if SMOKE else (25, 100) if a.quick else (25, 100, 400))
