"""GPU half of benchmarks/fusion.py: tessera's generated CUDA kernels against CuPy op
by op, `cupy.fuse`, PyTorch eager and `torch.compile`, and the share of the measured
device-to-device copy bandwidth. Imported by fusion.py when the default device is a GPU."""
from __future__ import annotations

import numpy as np

import tessera as ts
from _common import table, timeit


def _copy_bandwidth(cp, n):
    a = cp.empty(n, cp.float32)
    b = cp.empty_like(a)
    t = timeit(lambda: cp.copyto(b, a), repeat=20, sync=cp.cuda.Device().synchronize)
    return 2 * a.nbytes / t


def run_gpu(quick):
    import cupy as cp
    from fusion import chains
    n_rows, n_cols = (1 << (22 if quick else 24)) // 1024, 1024
    sync = cp.cuda.Device().synchronize
    rng = np.random.default_rng(0)
    xn = rng.standard_normal((n_rows, n_cols)).astype(np.float32)
    bn = rng.standard_normal((1, n_cols)).astype(np.float32)
    x, b = ts.asarray(xn, device="cuda"), ts.asarray(bn, device="cuda")
    xc, bc = cp.asarray(xn), cp.asarray(bn)
    bw = _copy_bandwidth(cp, xn.size)
    print(f"GPU, {xn.size} fp32 elements; measured copy bandwidth {bw / 1e9:.0f} GB/s")

    class _CP:
        tanh, exp, max, sum, mean, sqrt = cp.tanh, cp.exp, cp.max, cp.sum, cp.mean, cp.sqrt

        @staticmethod
        def erf(v):
            import cupyx.scipy.special as sp
            return sp.erf(v)
    tsp, cpp = chains(ts), chains(_CP)
    torch = None
    try:
        import torch as _t
        torch = _t
        xt, bt = torch.as_tensor(xn, device="cuda"), torch.as_tensor(bn, device="cuda")

        class _T:
            tanh, exp, sqrt, erf = torch.tanh, torch.exp, torch.sqrt, torch.erf

            @staticmethod
            def max(v, axis, keepdims):
                return torch.amax(v, dim=axis, keepdim=keepdims)

            @staticmethod
            def sum(v, axis, keepdims):
                return torch.sum(v, dim=axis, keepdim=keepdims)

            @staticmethod
            def mean(v, axis, keepdims):
                return torch.mean(v, dim=axis, keepdim=keepdims)
        tp = chains(_T)
    except Exception as e:  # torch is optional
        print(f"(PyTorch unavailable: {e})")
    rows = []
    for name in tsp:
        r = {"program": name}
        t_ts = timeit(lambda: ts.realize(tsp[name](x, b)), repeat=20, sync=sync)
        t_cp = timeit(lambda: cpp[name](xc, bc), repeat=20, sync=sync)
        fused = cp.fuse(cpp[name]) if name in ("chain8", "bias_gelu") else None
        r["tessera ms"] = t_ts * 1e3
        r["% copy bw"] = 100 * (2 * xn.nbytes / t_ts) / bw
        r["vs cupy"] = t_cp / t_ts
        if fused is not None:
            r["vs cupy.fuse"] = timeit(lambda: fused(xc, bc), repeat=20, sync=sync) / t_ts
        if torch is not None:
            tf = tp[name]
            r["vs torch eager"] = timeit(lambda: tf(xt, bt), repeat=20, sync=sync) / t_ts
            try:
                tc = torch.compile(tf)
                tc(xt, bt)
                r["vs torch.compile"] = timeit(lambda: tc(xt, bt), repeat=20, sync=sync) / t_ts
            except Exception as e:
                r["vs torch.compile"] = f"n/a ({type(e).__name__})"
        rows.append(r)
    table(rows, ["program", "tessera ms", "% copy bw", "vs cupy", "vs cupy.fuse",
                 "vs torch eager", "vs torch.compile"])
    print("(ratios > 1 mean tessera is faster)")
