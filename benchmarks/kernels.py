"""Benchmark tessera's hand-written kernels against CuPy and PyTorch on one GPU.

Prints, per kernel, the achieved GB/s (memory-bound kernels) or TFLOP/s (matmul),
and speed ratios peer_time / tessera_time (> 1: tessera is faster) for CuPy and
PyTorch measured in the same run; plus the measured device-to-device copy bandwidth
and cuBLAS's bf16 rate, each as a share of the device's physical peak. Timing uses
CUDA events around several repetitions after a warm-up.

    python benchmarks/kernels.py            # exits cleanly with a message without a GPU
"""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

# Vendor peaks (dense bf16 TFLOP/s, HBM GB/s), matched by substring of the device name.
PEAKS = [("H200", 989, 4800), ("H100 PCIe", 756, 2000), ("H100", 989, 3350),
         ("A100-SXM4-80GB", 312, 2039), ("A100", 312, 1555), ("L4", 121, 300), ("MI300X", 1307, 5300),
         ("MI250", 383, 3277), ("MI210", 181, 1638)]


def gpu_or_exit():
    try:
        import cupy
        if cupy.cuda.runtime.getDeviceCount() == 0:
            raise RuntimeError("no device")
        return cupy
    except Exception as e:  # noqa: BLE001 - any failure means: no usable GPU
        print(f"benchmarks/kernels.py: no CUDA/ROCm GPU with CuPy available ({e}); nothing to measure.")
        sys.exit(0)


def timer(cp):
    def run(fn, reps=20):
        fn()
        cp.cuda.Device().synchronize()
        s, e = cp.cuda.Event(), cp.cuda.Event()
        s.record()
        for _ in range(reps):
            fn()
        e.record()
        e.synchronize()
        return cp.cuda.get_elapsed_time(s, e) / reps / 1e3  # seconds
    return run


def main():
    cp = gpu_or_exit()
    try:
        import torch
        torch_ok = torch.cuda.is_available()
    except Exception:  # noqa: BLE001
        torch, torch_ok = None, False
    from tessera.kernels import launchers as K
    t = timer(cp)
    props = cp.cuda.runtime.getDeviceProperties(cp.cuda.Device().id)
    name = props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"])
    peak_tf, peak_bw = next(((f, b) for key, f, b in PEAKS if key in name), (None, None))
    print(f"device: {name}; peaks: bf16 {peak_tf} TFLOP/s, memory {peak_bw} GB/s (vendor figures)")

    n = 1 << 28  # 1 GiB of fp32
    src, dst = cp.ones(n, cp.float32), cp.empty(n, cp.float32)
    sec = t(lambda: dst.__setitem__(Ellipsis, src), 10)
    bw = 2 * n * 4 / sec / 1e9
    print(f"device-to-device copy: {bw:.0f} GB/s" + (f" ({bw / peak_bw:.0%} of peak)" if peak_bw else ""))
    del src, dst
    if torch_ok:
        a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
        sec = t(lambda: a @ a, 10)
        tf = 2 * 8192 ** 3 / sec / 1e12
        print(f"cuBLAS bf16 matmul 8192^3 (via torch): {tf:.0f} TFLOP/s"
              + (f" ({tf / peak_tf:.0%} of peak)" if peak_tf else ""))
    else:
        print("cuBLAS bf16 rate: not measured (PyTorch unavailable; CuPy has no bf16 dtype)")

    rows = []

    def tt(x):
        return torch.as_tensor(x, device="cuda") if torch_ok else None

    def bench(label, work, unit, ours, cupy_fn=None, torch_fn=None):
        s = t(ours)
        rate = work / s / (1e12 if unit == "TFLOP/s" else 1e9)
        rc = f"{t(cupy_fn) / s:6.2f}" if cupy_fn else "     -"
        rt_ = f"{t(torch_fn) / s:6.2f}" if (torch_fn and torch_ok) else "     -"
        rows.append((label, f"{rate:8.1f} {unit}", rc, rt_))

    rng = cp.random.default_rng(0)
    for dt, cdt, tdt in [("fp32", cp.float32, "float32"), ("fp16", cp.float16, "float16")]:
        m = 4096
        a, b = rng.standard_normal((m, m), dtype=cp.float32).astype(cdt), rng.standard_normal((m, m), dtype=cp.float32).astype(cdt)
        ta, tb = tt(a), tt(b)
        bench(f"matmul {dt} {m}^3", 2 * m ** 3, "TFLOP/s", lambda: K.matmul(a, b), lambda: cp.matmul(a, b),
              (lambda: ta @ tb) if torch_ok else None)
    if torch_ok:
        m = 4096
        tb16 = torch.randn(m, m, device="cuda", dtype=torch.bfloat16)
        a16 = cp.asarray(tb16.view(torch.int16)).view(cp.uint16)
        bench(f"matmul bf16 {m}^3", 2 * m ** 3, "TFLOP/s", lambda: K.matmul(a16, a16, dtype="bf16"), None,
              lambda: tb16 @ tb16)
    x = rng.standard_normal((8192, 4096), dtype=cp.float32)
    tx = tt(x)
    nb = x.nbytes
    bench("sum rows fp32 8192x4096", nb, "GB/s", lambda: K.reduce(x, "sum"), lambda: x.sum(1),
          (lambda: tx.sum(1)) if torch_ok else None)
    bench("sum cols fp32 8192x4096", nb, "GB/s", lambda: K.reduce(x, "sum", "cols"), lambda: x.sum(0),
          (lambda: tx.sum(0)) if torch_ok else None)
    bench("argmax rows fp32", nb, "GB/s", lambda: K.reduce(x, "argmax"), lambda: x.argmax(1),
          (lambda: tx.argmax(1)) if torch_ok else None)
    bench("var rows fp32", nb, "GB/s", lambda: K.reduce(x, "var"), lambda: x.var(1),
          (lambda: tx.var(1, unbiased=False)) if torch_ok else None)

    def cupy_softmax():
        e = cp.exp(x - x.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)
    bench("softmax fp32 8192x4096", 2 * nb, "GB/s", lambda: K.softmax(x), cupy_softmax,
          (lambda: torch.softmax(tx, 1)) if torch_ok else None)
    g, bta = cp.ones(4096, cp.float32), cp.zeros(4096, cp.float32)
    bench("layer_norm fwd fp32", 2 * nb, "GB/s", lambda: K.layer_norm_forward(x, g, bta), None,
          (lambda: torch.nn.functional.layer_norm(tx, (4096,))) if torch_ok else None)
    tgt = rng.integers(0, 4096, 8192).astype(cp.int64)
    ttgt = tt(tgt)
    bench("cross_entropy fwd fp32", nb, "GB/s", lambda: K.cross_entropy_forward(x, tgt), None,
          (lambda: torch.nn.functional.cross_entropy(tx, ttgt, reduction="none")) if torch_ok else None)
    bench("transpose fp32 8192x4096", 2 * nb, "GB/s", lambda: K.permute_copy(x, (1, 0)),
          lambda: cp.ascontiguousarray(x.T), (lambda: tx.t().contiguous()) if torch_ok else None)
    bench("cumsum rows fp32", 2 * nb, "GB/s", lambda: K.cumsum(x), lambda: cp.cumsum(x, 1),
          (lambda: torch.cumsum(tx, 1)) if torch_ok else None)
    bench("cast fp32->fp16", nb + nb // 2, "GB/s", lambda: K.cast(x, "fp32", "fp16"), lambda: x.astype(cp.float16),
          (lambda: tx.half()) if torch_ok else None)
    idx = rng.integers(0, 8192, 8192).astype(cp.int64)
    tidx = tt(idx)
    bench("index_select rows fp32", 2 * nb, "GB/s", lambda: K.index_select(x, idx, 0), lambda: x.take(idx, 0),
          (lambda: tx.index_select(0, tidx)) if torch_ok else None)

    print(f"\n{'kernel':32s} {'tessera':>16s} {'vs CuPy':>8s} {'vs torch':>8s}   (ratio = peer time / tessera time)")
    for r in rows:
        print(f"{r[0]:32s} {r[1]:>16s} {r[2]:>8s} {r[3]:>8s}")


if __name__ == "__main__":
    main()
