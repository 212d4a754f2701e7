"""GPU half of benchmarks/fusion.py: tessera's generated CUDA kernels against CuPy op
by op, `cupy.fuse`, PyTorch eager and `torch.compile`, and the share of the measured
device-to-device copy bandwidth. Imported by fusion.py when the default device is a GPU.
torch runs on the same GPU (its columns are skipped where this torch has no CUDA); the
torch.compile column comes in a second table, so a slow compile cannot hold back the first."""
from __future__ import annotations

import numpy as np

import tessera as ts
from _common import SMOKE, cupy_module, cupyx_part, table, tessera_sync, timeit, torch_device


def _copy_bandwidth(cp, n):
    a = cp.empty(n, cp.float32)
    b = cp.empty_like(a)
    t = timeit(lambda: cp.copyto(b, a), repeat=20, sync=cp.cuda.Device().synchronize)
    return 2 * a.nbytes / t


def run_gpu(quick, compile_=True):
    from fusion import chains
    dev = ts.default_device()
    cp = cupy_module(dev)
    n_rows, n_cols = (1 << (14 if SMOKE else 22 if quick else 24)) // 1024, 1024
    reps = 2 if SMOKE else 20
    sync, ts_sync = cp.cuda.Device().synchronize, tessera_sync(dev)
    rng = np.random.default_rng(0)
    xn = rng.standard_normal((n_rows, n_cols)).astype(np.float32)
    bn = rng.standard_normal((1, n_cols)).astype(np.float32)
    x, b = ts.asarray(xn, device=dev), ts.asarray(bn, device=dev)
    xc, bc = cp.asarray(xn), cp.asarray(bn)
    bw = _copy_bandwidth(cp, xn.size)
    print(f"GPU, {xn.size} fp32 elements; measured copy bandwidth {bw / 1e9:.0f} GB/s")

    class _CP:
        tanh, exp, max, sum, mean, sqrt = cp.tanh, cp.exp, cp.max, cp.sum, cp.mean, cp.sqrt

        @staticmethod
        def erf(v):
            return cupyx_part(dev, "scipy.special").erf(v)
    tsp, cpp = chains(ts), chains(_CP)
    torch, tdev, tsync = torch_device(dev)
    if tdev is None:
        print(f"(torch columns skipped: {tsync})")
        torch = None
    else:
        xt, bt = torch.from_numpy(xn).to(tdev), torch.from_numpy(bn).to(tdev)

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
    rows, t_tess = [], {}

    def ratio(fn, sync_, t_ts):
        try:
            return timeit(fn, repeat=reps, sync=sync_) / t_ts
        except Exception as e:  # noqa: BLE001 - a missing peer routine is not our failure
            return f"n/a ({type(e).__name__})"
    for name in tsp:
        r = {"program": name}
        try:
            t_ts = t_tess[name] = timeit(lambda: ts.realize(tsp[name](x, b)), repeat=reps, sync=ts_sync)
        except Exception as e:  # noqa: BLE001 - report the program, measure the others
            r["tessera ms"] = f"FAILED: {type(e).__name__}: {str(e).splitlines()[0][:60] if str(e) else ''}"
            rows.append(r)
            continue
        r["tessera ms"] = t_ts * 1e3
        r["% copy bw"] = 100 * (2 * xn.nbytes / t_ts) / bw
        r["vs cupy"] = ratio(lambda: cpp[name](xc, bc), sync, t_ts)
        if name in ("chain8", "bias_gelu") and hasattr(cp, "fuse"):
            fused = cp.fuse(cpp[name])
            r["vs cupy.fuse"] = ratio(lambda: fused(xc, bc), sync, t_ts)
        if torch is not None:
            r["vs torch eager"] = ratio(lambda: tp[name](xt, bt), tsync, t_ts)
        rows.append(r)
    table(rows, ["program", "tessera ms", "% copy bw", "vs cupy", "vs cupy.fuse", "vs torch eager"])
    print("(ratios > 1 mean tessera is faster)", flush=True)
    if torch is None or not compile_:
        print("torch.compile: not measured" + ("" if torch is None else " (--no-compile)"))
        return
    rows = []
    for name in t_tess:
        tf = tp[name]
        try:
            tc = torch.compile(tf)
            tc(xt, bt)
            rows.append({"program": name, "vs torch.compile":
                         timeit(lambda: tc(xt, bt), repeat=reps, sync=tsync) / t_tess[name]})
        except Exception as e:  # noqa: BLE001
            rows.append({"program": name, "vs torch.compile": f"n/a ({type(e).__name__})"})
    table(rows, ["program", "vs torch.compile"])
