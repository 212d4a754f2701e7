"""Benchmark tessera's hand-written kernels against CuPy and PyTorch on one GPU.

Prints, per kernel, the achieved GB/s (memory-bound kernels) or TFLOP/s (matmul),
and speed ratios peer_time / tessera_time (> 1: tessera is faster) for CuPy and
PyTorch measured in the same run; plus the measured device-to-device copy bandwidth
and cuBLAS's bf16 rate, each as a share of the device's physical peak. Timing uses
CUDA events around several repetitions after a warm-up.

Before a kernel is timed its output is checked against a reference (CuPy, or NumPy
on the host): a kernel that fails or computes the wrong thing gets a FAILED/INVALID
row and no rate, so a broken kernel can never show a bandwidth. Rows are printed as
they are measured.

    python benchmarks/kernels.py [--quick]  # exits cleanly with a message without a GPU
"""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

from _common import SMOKE, cupy_module  # noqa: E402

# Vendor peaks (dense bf16 TFLOP/s, HBM GB/s), matched by substring of the device name.
PEAKS = [("H200", 989, 4800), ("H100 PCIe", 756, 2000), ("H100", 989, 3350),
         ("A100-SXM4-80GB", 312, 2039), ("A100", 312, 1555), ("L4", 121, 300), ("MI300X", 1307, 5300),
         ("MI250", 383, 3277), ("MI210", 181, 1638)]


def gpu_or_exit():
    try:
        import tessera as ts
        dev = ts.default_device()
        if dev.type != "cuda":
            raise RuntimeError(f"tessera's default device is {dev}")
        cupy = cupy_module(dev)
        if cupy.cuda.runtime.getDeviceCount() == 0:
            raise RuntimeError("no device")
        return cupy
    except Exception as e:  # noqa: BLE001 - any failure means: no usable GPU
        print(f"benchmarks/kernels.py: no CUDA/ROCm GPU with CuPy available ({e}); nothing to measure.")
        sys.exit(0)


def _host(cp, a):
    return cp.asnumpy(a)


def bf16_storage(cp):
    """The CuPy dtype tessera stores bf16 in on this CuPy: native bfloat16 where CuPy has
    it (CuPy 14), else uint16 words; the launchers insist on that one."""
    from tessera import dtypes
    from tessera.backend.cuda import cuda_storage
    return cuda_storage(dtypes.bf16, cp)


def bf16_to_f32(cp, a):
    """bf16 (native or uint16 words) -> fp32 (exact)."""
    return (a.view(cp.uint16).astype(cp.uint32) << 16).view(cp.float32)


def check(cp, got, ref, kind):
    """None when `got` matches `ref` (CuPy or NumPy arrays), else a short reason.
    kind: "exact", or a relative tolerance on the Frobenius norm of the difference."""
    g, r = np.asarray(_host(cp, got)), np.asarray(_host(cp, ref))
    if g.shape != r.shape:
        return f"shape {g.shape}, expected {r.shape}"
    if kind == "exact":
        bad = int(np.count_nonzero(g != r))
        return None if bad == 0 else f"{bad} of {g.size} elements differ"
    g64, r64 = g.astype(np.float64), r.astype(np.float64)
    if not np.isfinite(g64).all():
        return f"{int(np.count_nonzero(~np.isfinite(g64)))} non-finite outputs"
    err = float(np.linalg.norm((g64 - r64).ravel()) / max(np.linalg.norm(r64.ravel()), 1e-30))
    return None if err <= kind else f"relative error {err:.2e} > {kind:g}"


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
    quick = "--quick" in sys.argv
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
    print(f"device: {name}; peaks: bf16 {peak_tf} TFLOP/s, memory {peak_bw} GB/s (vendor figures)"
          + ("  [SMOKE: tiny sizes, rates meaningless]" if SMOKE else ""))
    if not torch_ok:
        print("torch columns skipped: " + ("torch is not installed" if torch is None
                                           else f"this torch ({torch.__version__}) has no CUDA"))
    # sizes: full / --quick / smoke (smoke only checks that the script runs)
    copy_n = 1 << (12 if SMOKE else 26 if quick else 28)
    mm = 64 if SMOKE else 4096
    mm_cublas = 64 if SMOKE else (4096 if quick else 8192)
    R, C = (64, 256) if SMOKE else (8192, 4096)
    reps = 2 if SMOKE else (10 if quick else 20)

    src, dst = cp.ones(copy_n, cp.float32), cp.empty(copy_n, cp.float32)
    sec = t(lambda: dst.__setitem__(Ellipsis, src), reps)
    bw = 2 * copy_n * 4 / sec / 1e9
    print(f"device-to-device copy ({copy_n * 4 >> 20} MiB): {bw:.0f} GB/s"
          + (f" ({bw / peak_bw:.0%} of peak)" if peak_bw else ""), flush=True)
    del src, dst
    if torch_ok:
        a = torch.randn(mm_cublas, mm_cublas, device="cuda", dtype=torch.bfloat16)
        sec = t(lambda: a @ a, reps)
        tf = 2 * mm_cublas ** 3 / sec / 1e12
        print(f"cuBLAS bf16 matmul {mm_cublas}^3 (via torch): {tf:.0f} TFLOP/s"
              + (f" ({tf / peak_tf:.0%} of peak)" if peak_tf else ""))
    else:
        print("cuBLAS bf16 rate: not measured (PyTorch with CUDA unavailable)")

    print(f"\n{'kernel':32s} {'tessera':>16s} {'vs CuPy':>8s} {'vs torch':>8s}   "
          "(ratio = peer time / tessera time)", flush=True)
    bad = []

    def tt(x):
        return torch.as_tensor(x, device="cuda") if torch_ok else None

    def bench(label, work, unit, ours, cupy_fn=None, torch_fn=None, ref=None, pick=None, tol=1e-4):
        """Check ours() against ref() (pick: the array of ours()'s result to compare),
        then time it and its peers. A failing or wrong kernel gets no rate."""
        try:
            out = ours()
            why = check(cp, pick(out) if pick else out, ref(), tol) if ref is not None else None
        except Exception as e:  # noqa: BLE001 - report the kernel, measure the rest
            why = f"{type(e).__name__}: {str(e).splitlines()[0][:80] if str(e) else ''}"
            line = f"{label:32s} {'FAILED':>16s}   {why}"
        else:
            line = f"{label:32s} {'INVALID':>16s}   {why}" if why else None
        if line is not None:
            bad.append(label)
            print(line, flush=True)
            return
        s = t(ours, reps)
        rate = work / s / (1e12 if unit == "TFLOP/s" else 1e9)
        rc = f"{t(cupy_fn, reps) / s:6.2f}" if cupy_fn else "     -"
        rt_ = f"{t(torch_fn, reps) / s:6.2f}" if (torch_fn and torch_ok) else "     -"
        print(f"{label:32s} {f'{rate:8.1f} {unit}':>16s} {rc:>8s} {rt_:>8s}"
              + ("" if ref is not None else "   (output not checked)"), flush=True)

    rng = cp.random.default_rng(0)
    for dt, cdt, tol in [("fp32", cp.float32, 1e-4), ("fp16", cp.float16, 1e-2)]:
        m = mm
        a, b = rng.standard_normal((m, m), dtype=cp.float32).astype(cdt), rng.standard_normal((m, m), dtype=cp.float32).astype(cdt)
        ta, tb = tt(a), tt(b)
        bench(f"matmul {dt} {m}^3", 2 * m ** 3, "TFLOP/s", lambda: K.matmul(a, b), lambda: cp.matmul(a, b),
              (lambda: ta @ tb) if torch_ok else None,
              ref=lambda: a.astype(cp.float32) @ b.astype(cp.float32), tol=tol)
    m = mm
    a32 = rng.standard_normal((m, m), dtype=cp.float32)
    a16 = (a32.view(cp.uint32) >> 16).astype(cp.uint16).view(bf16_storage(cp))  # truncated
    tb16 = tt(a16.view(cp.int16)).view(torch.bfloat16) if torch_ok else None
    bench(f"matmul bf16 {m}^3", 2 * m ** 3, "TFLOP/s", lambda: K.matmul(a16, a16, dtype="bf16"), None,
          (lambda: tb16 @ tb16) if torch_ok else None,
          ref=lambda: bf16_to_f32(cp, a16) @ bf16_to_f32(cp, a16),
          pick=lambda o: bf16_to_f32(cp, o), tol=1e-2)
    x = rng.standard_normal((R, C), dtype=cp.float32)
    tx = tt(x)
    nb = x.nbytes
    shape = f"{R}x{C}"
    bench(f"sum rows fp32 {shape}", nb, "GB/s", lambda: K.reduce(x, "sum"), lambda: x.sum(1),
          (lambda: tx.sum(1)) if torch_ok else None, ref=lambda: x.sum(1))
    bench(f"sum cols fp32 {shape}", nb, "GB/s", lambda: K.reduce(x, "sum", "cols"), lambda: x.sum(0),
          (lambda: tx.sum(0)) if torch_ok else None, ref=lambda: x.sum(0))
    bench("argmax rows fp32", nb, "GB/s", lambda: K.reduce(x, "argmax"), lambda: x.argmax(1),
          (lambda: tx.argmax(1)) if torch_ok else None, ref=lambda: x.argmax(1),
          pick=lambda o: o.astype(cp.int64), tol="exact")
    bench("var rows fp32", nb, "GB/s", lambda: K.reduce(x, "var"), lambda: x.var(1),
          (lambda: tx.var(1, unbiased=False)) if torch_ok else None, ref=lambda: x.var(1))

    def cupy_softmax():
        e = cp.exp(x - x.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)
    bench(f"softmax fp32 {shape}", 2 * nb, "GB/s", lambda: K.softmax(x), cupy_softmax,
          (lambda: torch.softmax(tx, 1)) if torch_ok else None, ref=cupy_softmax)
    g, bta = cp.ones(C, cp.float32), cp.zeros(C, cp.float32)

    def ref_layer_norm():
        mu = x.mean(1, keepdims=True)
        return (x - mu) / cp.sqrt(x.var(1, keepdims=True) + 1e-5) * g + bta
    bench("layer_norm fwd fp32", 2 * nb, "GB/s", lambda: K.layer_norm_forward(x, g, bta), None,
          (lambda: torch.nn.functional.layer_norm(tx, (C,))) if torch_ok else None,
          ref=ref_layer_norm, pick=lambda o: o[0])
    tgt = rng.integers(0, C, R).astype(cp.int64)
    ttgt = tt(tgt)

    def ref_cross_entropy():
        mx = x.max(1, keepdims=True)
        lse = cp.log(cp.exp(x - mx).sum(1)) + mx[:, 0]
        return lse - x[cp.arange(R), tgt]
    bench("cross_entropy fwd fp32", nb, "GB/s", lambda: K.cross_entropy_forward(x, tgt), None,
          (lambda: torch.nn.functional.cross_entropy(tx, ttgt, reduction="none")) if torch_ok else None,
          ref=ref_cross_entropy, pick=lambda o: o[0])
    bench(f"transpose fp32 {shape}", 2 * nb, "GB/s", lambda: K.permute_copy(x, (1, 0)),
          lambda: cp.ascontiguousarray(x.T), (lambda: tx.t().contiguous()) if torch_ok else None,
          ref=lambda: cp.ascontiguousarray(x.T), tol="exact")
    bench("cumsum rows fp32", 2 * nb, "GB/s", lambda: K.cumsum(x), lambda: cp.cumsum(x, 1),
          (lambda: torch.cumsum(tx, 1)) if torch_ok else None,
          ref=lambda: np.cumsum(cp.asnumpy(x).astype(np.float64), 1))
    bench("cast fp32->fp16", nb + nb // 2, "GB/s", lambda: K.cast(x, "fp32", "fp16"), lambda: x.astype(cp.float16),
          (lambda: tx.half()) if torch_ok else None, ref=lambda: x.astype(cp.float16), tol="exact")
    idx = rng.integers(0, R, R).astype(cp.int64)
    tidx = tt(idx)
    bench("index_select rows fp32", 2 * nb, "GB/s", lambda: K.index_select(x, idx, 0), lambda: x.take(idx, 0),
          (lambda: tx.index_select(0, tidx)) if torch_ok else None, ref=lambda: x.take(idx, 0), tol="exact")
    if bad:
        print(f"\n{len(bad)} kernel(s) failed their output check and were not timed: {', '.join(bad)}")
        sys.exit(1)


if __name__ == "__main__":
    main()
