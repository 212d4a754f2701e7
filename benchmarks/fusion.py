"""Fusion benchmark (issue 5): fused elementwise chains against op-by-op peers.

CPU: tessera (generated OpenMP C kernel) vs NumPy op by op.
GPU: tessera (generated CUDA) vs CuPy op by op, cupy.fuse, PyTorch eager and
torch.compile, plus the share of the measured copy bandwidth.
Also the cold cost (first-call compile) and the warm cost (a second process that
finds every kernel in the disk cache).

    python benchmarks/fusion.py [--quick] [--no-compile]    (GPU: --no-compile skips torch.compile)
"""
from __future__ import annotations

import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import numpy as np  # noqa: E402

import tessera as ts  # noqa: E402
from _common import SMOKE, header, table  # noqa: E402


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


def tmin(fn, repeat):
    """Best of `repeat` calls after one warm-up: other jobs share this machine, and the
    minimum is the least disturbed run (the load average is printed with the results)."""
    fn()
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


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
        t_ts = tmin(f_ts, 5 if quick else 15)
        t_np = tmin(f_np, 3 if quick else 7)
        err = float(np.max(np.abs(tsp[name](x, b).numpy().astype(np.float64) - npp[name](xn, bn))))
        row = {"program": name, "tessera ms": t_ts * 1e3, "numpy ms": t_np * 1e3,
               "speedup vs numpy": t_np / t_ts, "GB/s": nbytes / t_ts / 1e9,
               "first call ms": first * 1e3, "max |err|": err}
        if name in ("softmax", "layer_norm"):  # row programs: one kernel per program
            with ts.fusion.mode("aggressive"):
                f_ts()
                row["aggressive ms"] = tmin(f_ts, 5 if quick else 15) * 1e3
                row["aggr. speedup"] = t_np * 1e3 / row["aggressive ms"]
        rows.append(row)
    table(rows, ["program", "tessera ms", "numpy ms", "speedup vs numpy", "GB/s",
                 "first call ms", "max |err|", "aggressive ms", "aggr. speedup"])
    single_ops(quick)
    return rows


def single_ops(quick):
    """One big op (2^22 fp32) and reductions (2^24 fp32) against NumPy."""
    rng = np.random.default_rng(1)
    n1, rows2 = (1 << 14, 64) if SMOKE else (1 << 22, 16384)
    an = rng.standard_normal(n1).astype(np.float32)
    cn = rng.standard_normal(n1).astype(np.float32)
    xn = rng.standard_normal((rows2, 1024)).astype(np.float32)
    a, c, x = ts.asarray(an), ts.asarray(cn), ts.asarray(xn)
    two = np.float32(2)
    e1, e2 = n1.bit_length() - 1, (rows2 * 1024).bit_length() - 1
    cases = [(f"add 2^{e1}", lambda: ts.realize(a + c), lambda: an + cn),
             (f"exp 2^{e1}", lambda: ts.realize(ts.exp(a)), lambda: np.exp(an)),
             (f"tanh 2^{e1}", lambda: ts.realize(ts.tanh(a)), lambda: np.tanh(an)),
             (f"sum(x*2) full, 2^{e2}", lambda: ts.sum(x * 2.0).data, lambda: (xn * two).sum()),
             ("sum(x*2, axis=0)", lambda: ts.sum(x * 2.0, axis=0).data, lambda: (xn * two).sum(0)),
             ("sum(x*2, axis=1)", lambda: ts.sum(x * 2.0, axis=1).data, lambda: (xn * two).sum(1))]
    rows = []
    for name, f, g in cases:
        t_ts, t_np = tmin(f, 10 if quick else 30), tmin(g, 10 if quick else 30)
        rows.append({"op": name, "tessera ms": t_ts * 1e3, "numpy ms": t_np * 1e3,
                     "speedup vs numpy": t_np / t_ts})
    table(rows, ["op", "tessera ms", "numpy ms", "speedup vs numpy"])


def warm_start_child():
    """Run every program once in a fresh process and report the time spent in
    compiles / disk-cache loads (the warm-start cost)."""
    t_imp = time.perf_counter()
    from tessera.fusion import runtime
    t_imp = time.perf_counter() - t_imp
    events = []
    runtime.add_compile_listener(events.append)
    # time spent finding kernels: lowering, rendering, hashing and loading the cached .so
    lookup = [0.0, 0]
    inner = runtime._launch_for

    def timed(*a):
        t = time.perf_counter()
        try:
            return inner(*a)
        finally:
            lookup[0] += time.perf_counter() - t
            lookup[1] += 1
    runtime._launch_for = timed
    rng = np.random.default_rng(0)
    x = ts.asarray(rng.standard_normal((1024, 1024)).astype(np.float32))
    b = ts.asarray(rng.standard_normal((1, 1024)).astype(np.float32))
    t0 = time.perf_counter()
    progs = chains(ts)
    for name in list(progs):
        with ts.fusion.mode("aggressive"):
            ts.realize(progs[name](x, b))
        ts.realize(progs[name](x, b))
    total = time.perf_counter() - t0
    kinds = {}
    for e in events:
        kinds[e["kind"]] = kinds.get(e["kind"], 0) + e.get("seconds", 0.0)
    print(f"warm-process: finding {lookup[1]} kernels {lookup[0] * 1e3:.1f} ms ("
          + ", ".join(f"{k} {v * 1e3:.1f} ms" for k, v in sorted(kinds.items()))
          + f"); all programs incl. compute {total * 1e3:.1f} ms; importing the runtime "
          f"{t_imp * 1e3:.1f} ms")


def main():
    quick = "--quick" in sys.argv
    if "--warm-child" in sys.argv:
        warm_start_child()
        return
    header("fusion: fused elementwise chains vs op-by-op peers")
    print(f"# load average at start: {' '.join(f'{v:.2f}' for v in os.getloadavg())} "
          f"(timings: best of N)")
    dev = ts.default_device()
    if dev.type == "cuda":
        from fusion_gpu import run_gpu
        run_gpu(quick, compile_="--no-compile" not in sys.argv and not SMOKE)
    else:
        n = 1 << (14 if SMOKE else 22 if quick else 24)
        print(f"CPU, {n} fp32 elements ({n // 1024} x 1024), bias broadcast over rows")
        run_cpu(n // 1024, 1024, quick)
    print("Cold/warm cost of the benchmark's kernels (second process, disk cache):")
    out = subprocess.run([sys.executable, __file__, "--warm-child"], capture_output=True,
                         text=True, env=dict(os.environ))
    print("  " + (out.stdout.strip() or out.stderr.strip()[-500:]))
    print(f"# load average at end: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
