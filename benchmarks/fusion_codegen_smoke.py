"""Fusion codegen smoke benchmark: one fused C kernel vs NumPy op by op (CPU).

    python benchmarks/fusion_codegen_smoke.py              # 8-op chain, 2^24 fp32
    python benchmarks/fusion_codegen_smoke.py --threshold  # OpenMP size threshold sweep
"""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import numpy as np  # noqa: E402

from tessera.fusion.ir import alu, const, inp  # noqa: E402
from tessera.fusion.runtime import run_cpu  # noqa: E402


def chain():
    x, b = inp(0, "fp32"), inp(1, "fp32")
    y = alu("add", alu("multiply", x, const(1.5, "fp32")), b)          # x*a + b
    y = alu("tanh", alu("exp", alu("multiply", y, const(0.25, "fp32"))))  # tanh(exp(y*c))
    y = alu("add", alu("multiply", y, x), const(0.5, "fp32"))           # * x + d
    y = alu("multiply", y, y)                                            # square
    return y


def numpy_chain(x, b):
    y = x * np.float32(1.5)
    y = y + b
    y = y * np.float32(0.25)
    y = np.exp(y)
    y = np.tanh(y)
    y = y * x
    y = y + np.float32(0.5)
    return y * y


def best(f, reps=7):
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t0)
    return min(ts)


def main():
    if "--threshold" in sys.argv:
        from tessera.fusion import render_c
        x, b = inp(0, "fp32"), inp(1, "fp32")
        y = alu("exp", alu("add", alu("multiply", x, const(1.5, "fp32")), b))
        for thr in (1 << 62, 0):  # serial vs always parallel
            render_c.OMP_MIN_ELEMENTS = thr
            from tessera.fusion import runtime
            runtime._c_kernels.clear()
            row = []
            for n in (4096, 16384, 32768, 65536, 131072, 262144):
                a = np.random.rand(n).astype(np.float32)
                bb = np.random.rand(n).astype(np.float32)
                run_cpu([y], [a, bb], a.shape)
                row.append((n, best(lambda: run_cpu([y], [a, bb], a.shape), 200) * 1e6))
            print("serial  " if thr else "parallel", " ".join(f"{n}:{t:.1f}us" for n, t in row))
        return
    M, N = (256, 256) if os.environ.get("TESSERA_BENCH_SMOKE", "") not in ("", "0") else (4096, 4096)  # 2^24
    rng = np.random.default_rng(0)
    x = rng.standard_normal((M, N), dtype=np.float32)
    b = np.broadcast_to(rng.standard_normal((1, N), dtype=np.float32), (M, N))
    y = chain()
    out = run_cpu([y], [x, b], x.shape)[0]
    ref = numpy_chain(x, b[:1])
    assert np.allclose(out, ref, rtol=1e-5, atol=1e-6), np.abs(out - ref).max()
    t_np = best(lambda: numpy_chain(x, b[:1]))
    t_f = best(lambda: run_cpu([y], [x, b], x.shape))
    print(f"{'case':40s} {'numpy ms':>9s} {'fused ms':>9s} {'speedup':>8s}")
    print(f"{f'8-op chain fp32 {M}x{N}, bias (1,N)':40s} {t_np*1e3:9.2f} {t_f*1e3:9.2f} {t_np/t_f:7.1f}x")
    s = alu("reduce_sum", alu("multiply", inp(0, "fp32"), inp(0, "fp32")), arg=(1,))
    run_cpu([s], [x], x.shape)
    t_np = best(lambda: np.sum(x * x, axis=1, keepdims=True))
    t_f = best(lambda: run_cpu([s], [x], x.shape))
    print(f"{f'sum(x*x, axis=1) fp32 {M}x{N}':40s} {t_np*1e3:9.2f} {t_f*1e3:9.2f} {t_np/t_f:7.1f}x")


if __name__ == "__main__":
    main()
