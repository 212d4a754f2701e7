"""Fusion benchmark (issue 5): fused elementwise chains against op-by-op peers.

CPU: tessera (generated OpenMP C kernel) vs NumPy op by op.
GPU: tessera (generated CUDA) vs CuPy op by op, cupy.fuse, PyTorch eager and
torch.compile, plus the share of the measured copy bandwidth.
Also the cold cost (first-call compile) and the warm cost (a second process that
finds every kernel in the disk cache).

    python benchmarks/fusion.py [--quick] [--cold-child]
"""
from __future__ import annotations

import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import numpy as np  # noqa: E402

import tessera as ts  # noqa: E402
from _common import header, table, timeit  # noqa: E402


def chains(m):
    """The benchmark's programs, written once against an array module `m`
    (tessera or numpy/cupy/torch share these spellings through tiny shims)."""
    def chain8(x, b):
        y = x * 1.7 + b
        y = m.tanh(y) * 0.5
        y = y + m.exp(-x * x)
        return y * x - b

    def bias_gelu(x, b):
        y = x + b
        return 0.5 * y * (1.0 + m.erf(y * 0.7071067811865476))

    def softmax(x, b):
        e = m.exp(x - m.max(x, axis=-1, keepdims=True))
        return e / m.sum(e, axis=-1, keepdims=True)

    def layer_norm(x, b):
        mu = m.mean(x, axis=-1, keepdims=True)
        d = x - mu
        var = m.mean(d * d, axis=-1, keepdims=True)
        return d / m.sqrt(var + 1e-5) * b
    return {"chain8": chain8, "bias_gelu": bias_gelu, "softmax": softmax, "layer_norm": layer_norm}


class _NP:
    """NumPy under the names the chains use (erf from scipy)."""
    tanh, exp, max, sum, mean, sqrt = np.tanh, np.exp, np.max, np.sum, np.mean, np.sqrt

    @staticmethod
    def erf(x):
        from scipy.special import erf
        return erf(x)


def run_cpu(n_rows, n_cols, quick):
    rng = np.random.default_rng(0)
    xn = rng.standard_normal((n_rows, n_cols)).astype(np.float32)
    bn = rng.standard_normal((1, n_cols)).astype(np.float32)
    x, b = ts.asarray(xn), ts.asarray(bn)
    tsp, npp = chains(ts), chains(_NP)
    rows = []
    nbytes = 2 * xn.nbytes
    for name in tsp:
        def f_ts(name=name):
            ts.realize(tsp[name](x, b))

        def f_np(name=name):
            npp[name](xn, bn)
        t0 = time.perf_counter()
        f_ts()
        first = time.perf_counter() - t0
        t_ts = timeit(f_ts, repeat=3 if quick else 7)
        t_np = timeit(f_np, repeat=3 if quick else 5)
        err = float(np.max(np.abs(tsp[name](x, b).numpy().astype(np.float64) - npp[name](xn, bn))))
        rows.append({"program": name, "tessera ms": t_ts * 1e3, "numpy ms": t_np * 1e3,
                     "speedup vs numpy": t_np / t_ts, "GB/s": nbytes / t_ts / 1e9,
                     "first call ms": first * 1e3, "max |err|": err})
    table(rows, ["program", "tessera ms", "numpy ms", "speedup vs numpy", "GB/s",
                 "first call ms", "max |err|"])
    return rows


def warm_start_child():
    """Run every program once in a fresh process and report the time spent in
    compiles / disk-cache loads (the warm-start cost)."""
    from tessera.fusion import runtime
    events = []
    runtime.add_compile_listener(events.append)
    rng = np.random.default_rng(0)
    x = ts.asarray(rng.standard_normal((1024, 1024)).astype(np.float32))
    b = ts.asarray(rng.standard_normal((1, 1024)).astype(np.float32))
    t0 = time.perf_counter()
    for f in chains(ts).values():
        ts.realize(f(x, b))
    total = time.perf_counter() - t0
    kinds = {}
    for e in events:
        kinds[e["kind"]] = kinds.get(e["kind"], 0) + e.get("seconds", 0.0)
    print(f"warm-process: all programs {total * 1e3:.1f} ms; "
          + ", ".join(f"{k} {v * 1e3:.1f} ms" for k, v in sorted(kinds.items())))


def main():
    quick = "--quick" in sys.argv
    if "--warm-child" in sys.argv:
        warm_start_child()
        return
    header("fusion: fused elementwise chains vs op-by-op peers")
    dev = ts.default_device()
    if dev.type == "cuda":
        from fusion_gpu import run_gpu
        run_gpu(quick)
    else:
        n = 1 << (22 if quick else 24)
        print(f"CPU, {n} fp32 elements ({n // 1024} x 1024), bias broadcast over rows")
        run_cpu(n // 1024, 1024, quick)
    print("Cold/warm cost of the benchmark's kernels (second process, disk cache):")
    out = subprocess.run([sys.executable, __file__, "--warm-child"], capture_output=True,
                         text=True, env=dict(os.environ))
    print("  " + (out.stdout.strip() or out.stderr.strip()[-500:]))


if __name__ == "__main__":
    main()
