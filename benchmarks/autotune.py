"""Autotuner benchmark (issue 8): matmul and the fusion benchmark's kernels with the
default configuration, the autotuned one and the vendor library, plus how long the
search took.

CPU: the search space is the generated C kernels' OpenMP thread count x the fusion
mode (matmul itself is NumPy's BLAS there, so "vendor" is the same BLAS call and the
ratio shows tessera's overhead around it); the peer for the fused programs is NumPy
op by op. GPU: tessera's tiled matmul tile sizes (legal ones) x fusion mode, timed
with CUDA events; the peer is cuBLAS / CuPy op by op.

Ratios are against the default configuration measured in the same run
(> 1 = faster than default). The autotune cache goes to a fresh temporary
directory, so every search runs.

    python benchmarks/autotune.py [--quick] [--device cuda]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
os.environ.setdefault("TESSERA_CACHE_DIR", tempfile.mkdtemp(prefix="tessera-autotune-bench-"))
import numpy as np  # noqa: E402

import tessera as ts  # noqa: E402
from _common import SMOKE, cupy_module, cupyx_part, header, table  # noqa: E402
from fusion import _NP, chains  # noqa: E402
from tessera import schedule  # noqa: E402
from tessera.autotune import time_ms  # noqa: E402


def _vendor_module(dev):
    if dev.type == "cpu":
        return np, _NP
    cupy = cupy_module(dev)

    class _CP:
        tanh, exp, max, sum, mean, sqrt = cupy.tanh, cupy.exp, cupy.max, cupy.sum, cupy.mean, cupy.sqrt

        @staticmethod
        def erf(v):
            return cupyx_part(dev, "scipy.special").erf(v)
    return cupy, _CP


def _time_vendor(fn, dev, reps):
    if dev.type == "cpu":
        import time
        fn()
        ts_ = []
        for _ in range(reps):
            t0 = time.perf_counter()
            fn()
            ts_.append((time.perf_counter() - t0) * 1e3)
        return sorted(ts_)[len(ts_) // 2]
    cupy = cupy_module(dev)
    fn()
    s, e = cupy.cuda.Event(), cupy.cuda.Event()
    s.record()
    for _ in range(reps):
        fn()
    e.record()
    e.synchronize()
    return cupy.cuda.get_elapsed_time(s, e) / reps


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--device", default=None)
    a = ap.parse_args()
    dev = ts.get_device(a.device) if a.device else ts.default_device()
    header(f"autotune: default vs autotuned vs vendor library on {dev}")
    reps = 2 if SMOKE else 3 if a.quick else 7
    rng = np.random.default_rng(0)
    xp, vend = _vendor_module(dev)
    cases = []
    for n in ((32,) if SMOKE else (256, 512) if a.quick else (256, 512, 1024)):
        an = rng.standard_normal((n, n)).astype(np.float32)
        bn = rng.standard_normal((n, n)).astype(np.float32)
        av, bv = xp.asarray(an), xp.asarray(bn)
        cases.append((f"matmul {n}", lambda x, y: ts.matmul(x, y),
                      (ts.asarray(an, device=dev), ts.asarray(bn, device=dev)),
                      lambda av=av, bv=bv: av @ bv))
    rows_, cols_ = (16, 256) if SMOKE else (512, 1024) if a.quick else (2048, 1024)
    xn = rng.standard_normal((rows_, cols_)).astype(np.float32)
    bn = rng.standard_normal((1, cols_)).astype(np.float32)
    xv, bv = xp.asarray(xn), xp.asarray(bn)
    x, b = ts.asarray(xn, device=dev), ts.asarray(bn, device=dev)
    vprog = chains(vend)
    for name, prog in chains(ts).items():
        cases.append((f"{name} {rows_}x{cols_}", prog, (x, b),
                      lambda p=vprog[name]: p(xv, bv)))
    rows = []
    for label, fn, args, vendor in cases:
        try:
            r = schedule.autotune(fn, *args, reps=reps, force=True)
            t_def = t_tuned = t_vendor = float("inf")
            for _ in range(1 if SMOKE else 3):  # interleaved rounds, best of each: load bursts
                t_def = min(t_def, time_ms(lambda: fn(*args), dev, reps))
                with r.hint:
                    t_tuned = min(t_tuned, time_ms(lambda: fn(*args), dev, reps))
                try:
                    t_vendor = min(t_vendor, _time_vendor(vendor, dev, reps))
                except Exception:  # noqa: BLE001 - a missing vendor routine: no ratio
                    t_vendor = float("nan")
        except Exception as e:  # noqa: BLE001 - report the program, tune the others
            msg = str(e).strip().splitlines()
            rows.append({"program": label, "default ms": f"FAILED: {type(e).__name__}"
                         + (f": {msg[0][:70]}" if msg else "")})
            print(f"{label}: autotune failed: {type(e).__name__}", flush=True)
            continue
        rows.append({"program": label, "default ms": t_def, "autotuned ms": t_tuned,
                     "vendor ms": t_vendor, "tuned/default speedup": t_def / t_tuned,
                     "tuned vs vendor": t_vendor / t_tuned, "search s": r.search_seconds,
                     "configs": len(r.times_ms), "chosen": ";".join(f"{k}={v}" for k, v in sorted(r.config.items()))})
    table(rows, ["program", "default ms", "autotuned ms", "vendor ms", "tuned/default speedup",
                 "tuned vs vendor", "search s", "configs", "chosen"])
    print("speedups > 1: the autotuned configuration beats the default / the vendor library")
    failed = [r["program"] for r in rows if str(r["default ms"]).startswith("FAILED")]
    if failed:
        print(f"{len(failed)} program(s) failed: {', '.join(failed)}")
        sys.exit(1)


if __name__ == "__main__":
    main()
